"""The one HTTP client of sleuth: GET, POST or HEAD a URL within limits, politely, and say clearly
why not.

Every source is fetched through `Fetcher` (image downloads, API paging), so every request gets
the same guarantees: the SSRF guard on every hop (redirects are followed here, not by httpx, so
each hop is checked, counted and made polite), a size cap enforced while streaming, connect/read
timeouts plus a total timeout that also covers a server dripping its body, the rate-limit budget
the host announced (`net.budgets`, shared by all workers), spread over the local source
addresses configured, retries with jittered backoff for transient failures, and a 429 never
retried before the time it names: a wait too long to sleep goes back to the caller as
`retry_after`, for the job layer to postpone the job.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Any, Self, TypedDict, TypeVar, Unpack

import httpx

from sleuth.config import NetSettings
from sleuth.net.body import ACCEPT, Expect, decode, discard_body, read_body
from sleuth.net.budgets import Budget, BudgetStore, MemoryBudgets, budget_key, observe
from sleuth.net.errors import FetchError
from sleuth.net.guard import Guard
from sleuth.net.politeness import Politeness, host_key
from sleuth.net.ratelimit import RateLimit, parse_rate_limit, parse_retry_after
from sleuth.net.transport import GuardedTransport

MAX_URL_LENGTH = 8192
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Methods a retry cannot make happen twice; others are retried only after a 429 (not served).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Never sent on to another origin: a redirect must not carry an API token elsewhere.
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")
_HOST_LABELS = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_-]{1,63})*\.?$")
# The name of one of a host's budgets (`RequestOptions.budget`); "" is the host's own.
_BUDGET_NAME = re.compile(r"[A-Za-z0-9_:/.-]{0,120}")
_T = TypeVar("_T")


def parse_url(url: str) -> httpx.URL:
    """Validate a fetch target: an http(s) URL with a well-formed host and port, or `bad_url`."""
    if not isinstance(url, str):
        raise FetchError("bad_url", f"URL must be a string, not {type(url).__name__}")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise FetchError("bad_url", f"URL is {len(url)} characters, over {MAX_URL_LENGTH}")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError("bad_url", f"{url[:200]!r} is malformed: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        scheme = parsed.scheme or "no scheme"
        raise FetchError("bad_url", f"{url[:200]!r}: {scheme} is not http or https")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise FetchError("bad_url", f"{url[:200]!r} has no host")
    if ":" not in host and (len(host) > 253 or not _HOST_LABELS.match(host)):
        raise FetchError("bad_url", f"{url[:200]!r}: {host!r} is not a valid host name")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise FetchError("bad_url", f"{url[:200]!r}: port {parsed.port} is out of range")
    return parsed


@dataclass(frozen=True)
class SourceProfile:
    """How one source wants to be asked: its user agent, extra headers and bearer token.

    The token is sent as `Authorization: Bearer ...`, never to another origin after a
    redirect, and never shown (not in `repr`, not in any error); the headers, which may hold
    a key too (Discourse's `Api-Key`), are not in `repr` either."""

    name: str
    user_agent: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    # The least gap between request starts to the source's host, for a source whose limits
    # are known but never announced in its answers (Discourse: 200 a minute per IP), kept by
    # the host clock every worker shares; the settings' per-host delay still applies if longer.
    min_interval: float = 0.0

    def __post_init__(self) -> None:
        if self.min_interval < 0:
            raise ValueError(f"min_interval must not be negative, not {self.min_interval}")

    def request_headers(self) -> list[tuple[str, str]]:
        out = list(self.headers.items())
        if self.user_agent:
            out.append(("User-Agent", self.user_agent))
        if self.bearer_token:
            out.append(("Authorization", f"Bearer {self.bearer_token}"))
        return out


@dataclass(frozen=True)
class Validators:
    """What makes a request conditional: a 304 answers it when the resource is unchanged."""

    etag: str | None = None
    last_modified: str | None = None

    def request_headers(self) -> list[tuple[str, str]]:
        out = []
        if self.etag:
            out.append(("If-None-Match", self.etag))
        if self.last_modified:
            out.append(("If-Modified-Since", self.last_modified))
        return out


class RequestOptions(TypedDict, total=False):
    """Keyword options of every request method (see `Fetcher.request`)."""

    params: Mapping[str, str | int]
    headers: Mapping[str, str]
    json: Any
    content: bytes
    profile: SourceProfile
    validators: Validators
    expect: Expect
    max_bytes: int
    budget: str


@dataclass(frozen=True)
class FetchResult:
    """A 2xx (or, for a conditional request, 304) answer, its whole body read within limits.

    `redirects` lists the URLs that redirected, in order (`final_url` is where they led);
    `elapsed` is the wall time of the whole call, retries and waits included; `source_address`
    is the local address it was sent from ("" for the system's choice); `rate_limit` is what its
    headers said about the budget; `image_type` the sniffed format when an image was expected;
    `data` the parsed document when JSON (any value) or XML (an `Element`) was expected."""

    url: str
    final_url: str
    method: str
    status: int
    headers: httpx.Headers
    body: bytes
    content_type: str
    elapsed: float
    redirects: tuple[str, ...]
    source_address: str = ""
    rate_limit: RateLimit = field(default_factory=RateLimit)
    image_type: str | None = None
    data: Any = None

    @property
    def not_modified(self) -> bool:
        """Whether a conditional request was answered 304: what the caller has is current."""
        return self.status == 304

    @property
    def validators(self) -> Validators:
        """The ETag and Last-Modified to make the next request for this resource conditional."""
        return Validators(self.headers.get("ETag"), self.headers.get("Last-Modified"))


@dataclass(frozen=True)
class _Request:
    method: str
    headers: httpx.Headers
    content: bytes | None
    expect: Expect | None
    cap: int
    gap: float = 0.0  # the profile's min_interval
    budget: str = ""  # which of the target host's budgets: "" its only one


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes
    content_type: str
    image_type: str | None
    rate_limit: RateLimit


class Fetcher:
    """Keep-alive connection pools with sleuth's limits, one per source address; use
    `async with Fetcher(...)`.

    `allow_private` overrides `settings.allow_private`; pass a `guard` instead to choose the
    resolver or address policy, a `politeness` to share host limits between fetchers, and
    `budgets` to share rate-limit budgets (default: this process's own). `backoff` is the first
    retry delay (doubled each time, jittered); `max_retry_wait` is the longest sleep before a
    retry or for a budget: a longer wait is raised to the caller as `retry_after` instead.
    """

    def __init__(
        self,
        settings: NetSettings | None = None,
        *,
        allow_private: bool | None = None,
        guard: Guard | None = None,
        politeness: Politeness | None = None,
        budgets: BudgetStore | None = None,
        ssl_context: ssl.SSLContext | None = None,
        backoff: float = 0.5,
        max_retry_wait: float = 60.0,
        max_connections: int = 512,
    ) -> None:
        self.settings = settings or NetSettings()
        s = self.settings
        if guard is not None and allow_private is not None:
            raise ValueError("give allow_private either to the Fetcher or to its guard, not both")
        self.guard = guard or Guard(s.allow_private if allow_private is None else allow_private)
        self.politeness = politeness or Politeness(s.per_host_concurrency, s.per_host_delay)
        self.budgets: BudgetStore = budgets or MemoryBudgets()
        self.backoff = backoff
        self.max_retry_wait = max_retry_wait
        self.sources: tuple[str, ...] = tuple(s.source_addresses) or ("",)
        self._turns: dict[str, Iterator[int]] = {}
        self._closed = False
        self._clients = {
            source: self._client(source, max_connections, ssl_context) for source in self.sources
        }

    def _client(
        self, source: str, max_connections: int, ssl_context: ssl.SSLContext | None
    ) -> httpx.AsyncClient:
        s = self.settings
        # A crawler has no session to keep: a jar that refuses every cookie stops one host's
        # cookies reaching the next request and the jar growing with every host crawled.
        no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        return httpx.AsyncClient(
            transport=GuardedTransport(
                self.guard,
                max_connections=max_connections,
                max_keepalive=max(1, max_connections // 2),
                ssl_context=ssl_context,
                local_address=source or None,
            ),
            timeout=httpx.Timeout(
                connect=s.connect_timeout, read=s.read_timeout, write=s.read_timeout, pool=None
            ),
            # Only the encodings `body._Decoder` decodes within the size cap.
            headers={"User-Agent": s.user_agent, "Accept-Encoding": "gzip, deflate"},
            cookies=no_cookies,
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment would bypass the guard's pinning
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every pooled connection; the fetcher cannot be used afterwards."""
        self._closed = True
        for client in self._clients.values():
            await client.aclose()

    def wait_time(self, url: str, budget: str = "") -> float:
        """Seconds until `url`'s host may be sent a request (its start gap, and its budget on
        the source address freest for it), so a job can be delayed instead of holding a
        worker; 0 for a malformed URL (its fetch fails at once with `bad_url`). Blocking when
        the clock or budgets are shared: call it off the event loop."""
        try:
            target = parse_url(url)
        except FetchError:
            return 0.0
        host = host_key(target)
        now = time.time()
        keys = [host] if not budget else [host, budget_key(host, budget)]
        soonest = min(max(self._peek(key, source, now) for key in keys) for source in self.sources)
        return max(self.politeness.wait_time(host), soonest)

    def _peek(self, key: str, source: str, now: float) -> float:
        if self.budgets.surely_absent(key, source, now):
            return 0.0
        return self.budgets.peek(key, source, now)

    async def block(self, url: str, until: float) -> None:
        """Send nothing to `url`'s host, from any source address and on any of its budgets,
        before `until` (epoch seconds): for a limit a source says in its body, not in headers
        (X's usage cap)."""
        host = host_key(parse_url(url))
        now = time.time()
        for source in self.sources:
            await self._budget_call(
                self.budgets.observe, host, source, RateLimit(retry_at=until), 429, now
            )

    async def get(self, url: str, **options: Unpack[RequestOptions]) -> FetchResult:
        return await self.request("GET", url, **options)

    async def post(self, url: str, **options: Unpack[RequestOptions]) -> FetchResult:
        return await self.request("POST", url, **options)

    async def head(self, url: str, **options: Unpack[RequestOptions]) -> FetchResult:
        return await self.request("HEAD", url, **options)

    async def request(
        self, method: str, url: str, **options: Unpack[RequestOptions]
    ) -> FetchResult:
        """Send `method` to `url` (with `params` merged into its query), following redirects;
        raise `FetchError` for anything but a 2xx answer or a conditional request's 304.

        `json` or `content` is the body; `profile` adds a source's user agent, headers and
        token, `headers` the call's own; `validators` makes the request conditional; `expect`
        ("image", "json", "xml") asks for that type and checks the body: an image by its first
        bytes (not the Content-Type, else `not_image`), a document parsed into `data` (else
        `bad_json`/`bad_xml`); `max_bytes` overrides the size cap of the settings; `budget`
        names the rate-limit budget the request draws on, for a host that counts some requests
        apart (X each endpoint, Mastodon its API): requests to the target's host share
        `budget_key(host, budget)`'s."""
        if self._closed:
            raise RuntimeError("this Fetcher is closed")
        method = method.upper()
        if method not in METHODS:
            raise ValueError(f"HTTP method must be one of {sorted(METHODS)}, not {method!r}")
        target = parse_url(url)
        if "params" in options:
            target = target.copy_merge_params(dict(options["params"]))
        prepared = self._prepare(method, options)
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                answer, final, redirects, source = await self._follow(target, prepared)
            except FetchError as exc:
                if not self._may_retry(exc, method, attempt):
                    raise
                wait = self._retry_wait(exc, attempt)
                if wait > self.max_retry_wait:
                    raise
                attempt += 1
                await asyncio.sleep(wait)
                continue
            return FetchResult(
                url=url,
                final_url=str(final),
                method=method,
                status=answer.status,
                headers=answer.headers,
                body=answer.body,
                content_type=answer.content_type,
                elapsed=time.monotonic() - started,
                redirects=redirects,
                source_address=source,
                rate_limit=answer.rate_limit,
                image_type=answer.image_type,
                data=decode(prepared.expect, answer.body, final)
                if answer.status != 304 and method != "HEAD"
                else None,
            )

    def _prepare(self, method: str, options: RequestOptions) -> _Request:
        """The headers and body of every attempt: the profile's, then the call's, then what
        `expect` and `validators` ask for; malformed options are refused here."""
        cap = options.get("max_bytes", self.settings.max_bytes)
        if cap < 0:
            raise ValueError(f"max_bytes must not be negative, not {cap}")
        if "json" in options and "content" in options:
            raise ValueError("give a request body as json or as content, not both")
        headers = httpx.Headers()
        if "profile" in options:
            for name, value in options["profile"].request_headers():
                headers[name] = value
        headers.update(options.get("headers", {}))
        content = options.get("content")
        if "json" in options:
            content = json.dumps(options["json"], separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json")
        expect = options.get("expect")
        if expect is not None and expect not in ACCEPT:
            raise ValueError(f"expect must be one of {sorted(ACCEPT)} or None, not {expect!r}")
        if expect is not None:
            headers.setdefault("Accept", ACCEPT[expect])
            if expect == "image":  # images do not compress: ask for them as they are
                headers.setdefault("Accept-Encoding", "identity")
        if "validators" in options:
            headers.update(options["validators"].request_headers())
        budget = options.get("budget", "")
        if not _BUDGET_NAME.fullmatch(budget):
            raise ValueError(f"a budget is named by up to 120 of [A-Za-z0-9_:/.-], not {budget!r}")
        gap = options["profile"].min_interval if "profile" in options else 0.0
        return _Request(method, headers, content, expect, cap, gap, budget)

    def _may_retry(self, exc: FetchError, method: str, attempt: int) -> bool:
        """Transient failures of requests that may be repeated, while retries are left."""
        if not exc.retryable or attempt >= self.settings.retries:
            return False
        return method in IDEMPOTENT_METHODS or exc.status == 429 or exc.reason == "rate_limited"

    def _retry_wait(self, exc: FetchError, attempt: int) -> float:
        """A server's `Retry-After`, else exponential backoff with jitter, so many workers
        failing together do not retry together. After a 429 with several source addresses,
        none: the next attempt's budget claim picks an address whose budget is not blocked."""
        if exc.status == 429 and len(self.sources) > 1:
            return 0.0
        if exc.retry_after is not None:
            return exc.retry_after
        return float(self.backoff * (2**attempt) * random.uniform(0.5, 1.0))

    async def _budget_call(self, call: Callable[..., _T], *args: Any) -> _T:
        """A budget store call, off the event loop when the store is a round trip away."""
        if self.budgets.shared:
            return await asyncio.to_thread(call, *args)
        return call(*args)

    async def _acquire(self, host: str, budget: str) -> str:
        """Claim one request of `host`'s budget (or of its endpoint `budget`, when `host`'s own
        does not block it) on a source address, trying them in turn from a rotating start;
        sleep when every one is spent, or raise `rate_limited` when the soonest is further
        away than `max_retry_wait`."""
        key = budget_key(host, budget)
        turns = self._turns.get(host)
        if turns is None:
            turns = self._turns[host] = itertools.cycle(range(len(self.sources)))
            if len(self._turns) > 4096:  # forget hosts crawled long ago
                self._turns = {host: turns}
        while True:
            first = next(turns)
            waits = []
            for i in range(len(self.sources)):
                source = self.sources[(first + i) % len(self.sources)]
                now = time.time()
                wait = 0.0
                if key != host and not self.budgets.surely_absent(host, source, now):
                    wait = await self._budget_call(self.budgets.peek, host, source, now)
                if wait <= 0:
                    if self.budgets.surely_absent(key, source, now):
                        return source
                    wait = await self._budget_call(self.budgets.claim, key, source, now)
                if wait <= 0:
                    return source
                waits.append(wait)
            soonest = min(waits)
            if soonest > self.max_retry_wait:
                raise FetchError(
                    "rate_limited",
                    f"{key}: the rate-limit budget of every source address is spent",
                    retry_after=soonest,
                )
            await asyncio.sleep(soonest)

    async def _follow(
        self, target: httpx.URL, request: _Request
    ) -> tuple[_Answer, httpx.URL, tuple[str, ...], str]:
        """One attempt: every hop from `target` to a final answer.

        The total timeout covers the network time of all hops together (connect, headers and
        body), but not the time spent waiting for a budget or a host's politeness slot."""
        timeout = self.settings.total_timeout
        current = target
        redirects: list[str] = []
        visited = {str(target)}
        while True:
            host = host_key(current)
            budget = request.budget if same_origin(current, target) else ""
            source = await self._acquire(host, budget)
            async with self.politeness.slot(host, request.gap):
                hop_started = time.monotonic()
                try:
                    async with asyncio.timeout(timeout):
                        outcome = await self._exchange(current, request, source, budget)
                except TimeoutError:
                    raise FetchError(
                        "timeout",
                        f"total timeout: {target} took more than {self.settings.total_timeout:g} s",
                    ) from None
                timeout -= time.monotonic() - hop_started
            if isinstance(outcome, _Answer):
                return outcome, current, tuple(redirects), source
            status, location = outcome
            redirects.append(str(current))
            if str(location) in visited:
                raise FetchError("too_many_redirects", f"redirect loop: {current} -> {location}")
            if len(redirects) > self.settings.max_redirects:
                raise FetchError(
                    "too_many_redirects",
                    f"{target} redirected more than {self.settings.max_redirects} times",
                )
            visited.add(str(location))
            request = _redirected(request, status, same_origin(current, location))
            current = location

    async def _exchange(
        self, url: httpx.URL, request: _Request, source: str, budget: str
    ) -> _Answer | tuple[int, httpx.URL]:
        """One request: the answer, or a redirect's status and the URL it points to. Its
        rate-limit headers go into the budget it drew on, whatever the status."""
        client = self._clients[source]
        built = client.build_request(
            request.method, url, headers=request.headers, content=request.content
        )
        response = await client.send(built, stream=True)
        try:
            status = response.status_code
            unread = b""
            if status in REDIRECT_STATUSES or not (200 <= status < 300 or status == 304):
                unread = await discard_body(response, url)
            news = await self._observe(url, source, budget, response)
            if status in REDIRECT_STATUSES:
                return status, _redirect_target(url, status, response.headers.get("Location"))
            if not (200 <= status < 300 or status == 304):
                raise _status_error(url, response, news, source, unread)
            declared = response.headers.get("Content-Length", "")
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if request.method == "HEAD" or status == 304:
                return _Answer(status, response.headers, b"", content_type, None, news)
            if declared.isdigit() and int(declared) > request.cap:
                raise FetchError(
                    "too_large", f"{url} declares {declared} bytes, over the cap of {request.cap}"
                )
            body, image_type = await read_body(
                response, url, request.cap, request.expect, content_type
            )
            return _Answer(status, response.headers, body, content_type, image_type, news)
        finally:
            await response.aclose()

    async def _observe(
        self, url: httpx.URL, source: str, budget: str, response: httpx.Response
    ) -> RateLimit:
        now = time.time()
        news = parse_rate_limit(response.headers, now)
        if news.known or response.status_code == 429:
            key = budget_key(host_key(url), budget)
            await self._budget_call(
                self.budgets.observe, key, source, news, response.status_code, now
            )
        return news


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def _redirected(request: _Request, status: int, same: bool) -> _Request:
    """The request a redirect asks for: a 303, or a 301/302 after a POST, becomes a GET
    without its body (as browsers do); credentials never go on to another origin."""
    method, content = request.method, request.content
    headers = request.headers
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, content = "GET", None
        headers = httpx.Headers(
            [(k, v) for k, v in headers.multi_items() if k not in ("content-type",)]
        )
    if not same:
        headers = httpx.Headers(
            [(k, v) for k, v in headers.multi_items() if k not in CREDENTIAL_HEADERS]
        )
    return _Request(
        method, headers, content, request.expect, request.cap, request.gap, request.budget
    )


def _status_error(
    url: httpx.URL, response: httpx.Response, news: RateLimit, source: str, body: bytes
) -> FetchError:
    """The error of a 4xx/5xx answer, with the start of its body; a 429 says when its budget
    may be used again (its `Retry-After`, else its reset, else a default), a 5xx its
    `Retry-After` if any."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429 and retry_after is None:
        now = time.time()
        blocked = observe(Budget(host_key(url), source), news, status, now)
        assert blocked is not None and blocked.blocked_until is not None  # a 429 always blocks
        retry_after = max(0.0, blocked.blocked_until - now)
    elif status < 500 and status != 429:
        retry_after = None
    return FetchError(
        "http_status",
        f"{url} answered {status} {response.reason_phrase}".rstrip(),
        status=status,
        retry_after=retry_after,
        body=body,
    )


def _redirect_target(url: httpx.URL, status: int, location: str | None) -> httpx.URL:
    """The absolute, validated URL a redirect leads to."""
    if not location:
        raise FetchError("protocol", f"{url} answered {status} without a Location")
    try:
        joined = str(url.join(location))
    except httpx.InvalidURL as exc:
        raise FetchError("bad_url", f"{url} redirects to a malformed {location!r}: {exc}") from None
    try:
        return parse_url(joined)
    except FetchError as exc:
        raise FetchError("bad_url", f"{url} redirects to a bad URL: {exc.detail}") from None
