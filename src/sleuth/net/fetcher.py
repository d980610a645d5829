"""The one HTTP client of sleuth: GET a URL within limits, politely, and say clearly why not.

Every app fetches through `Fetcher` (image downloads, API paging), so every request gets the same
guarantees: the SSRF guard on every hop (redirects are followed here, not by httpx, so each hop is
checked, counted and made polite), a size cap enforced while streaming, connect/read timeouts plus
a total timeout that also covers a server dripping its body, retries with backoff for transient
failures, and `Retry-After` honoured or handed to the job layer when it is too long to sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import math
import random
import re
import ssl
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Any, Self

import httpx

from sleuth.config import NetSettings
from sleuth.imaging.sniff import SNIFF_BYTES, sniff_image_type
from sleuth.net.errors import FetchError
from sleuth.net.guard import Guard
from sleuth.net.politeness import Politeness, host_key
from sleuth.net.transport import GuardedTransport

MAX_URL_LENGTH = 8192
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Redirect and error bodies up to this size are read to keep their connection alive.
DISCARD_LIMIT = 64 * 1024
# Never sent on to another origin: a redirect must not carry an API token elsewhere.
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")
IMAGE_ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8"
_HOST_LABELS = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_-]{1,63})*\.?$")


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


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delay-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class FetchResult:
    """A successful (2xx) answer, its whole body read within the limits.

    `redirects` lists the URLs that redirected, in order (`final_url` is where they led);
    `elapsed` is the wall time of the whole `fetch` call, retries and politeness waits included;
    `image_type` is the sniffed format ("png", "jpeg", ...) when an image was expected."""

    url: str
    final_url: str
    status: int
    headers: httpx.Headers
    body: bytes
    content_type: str
    elapsed: float
    redirects: tuple[str, ...]
    image_type: str | None = None

    def json(self) -> Any:
        """The body parsed as JSON, or `bad_json` saying where it broke."""
        try:
            return json.loads(self.body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            raise FetchError("bad_json", f"{self.final_url} is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes
    content_type: str
    image_type: str | None


class Fetcher:
    """One keep-alive connection pool with sleuth's limits; use `async with Fetcher(...)`.

    `allow_private` overrides `settings.allow_private`; pass a `guard` instead to choose the
    resolver or address policy, and a `politeness` to share host limits between fetchers.
    `backoff` is the first retry delay (doubled each time, jittered); `max_retry_wait` is the
    longest sleep before a retry: a longer `Retry-After` is raised to the caller instead.
    """

    def __init__(
        self,
        settings: NetSettings | None = None,
        *,
        allow_private: bool | None = None,
        guard: Guard | None = None,
        politeness: Politeness | None = None,
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
        self.backoff = backoff
        self.max_retry_wait = max_retry_wait
        self._closed = False
        # A crawler has no session to keep: a jar that refuses every cookie stops one host's
        # cookies reaching the next request and the jar growing with every host crawled.
        no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(
                self.guard,
                max_connections=max_connections,
                max_keepalive=max(1, max_connections // 2),
                ssl_context=ssl_context,
            ),
            timeout=httpx.Timeout(
                connect=s.connect_timeout, read=s.read_timeout, write=s.read_timeout, pool=None
            ),
            # Only the encodings `_Decoder` decodes within the size cap.
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
        await self._client.aclose()

    def wait_time(self, url: str) -> float:
        """Seconds until `url`'s host may be sent a request, so a job can be delayed instead of
        holding a worker; 0 for a malformed URL (its fetch fails at once with `bad_url`)."""
        try:
            target = parse_url(url)
        except FetchError:
            return 0.0
        return self.politeness.wait_time(host_key(target))

    async def fetch(
        self,
        url: str,
        *,
        expect_image: bool = False,
        max_bytes: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> FetchResult:
        """GET `url`, following redirects; raise `FetchError` for anything but a 2xx answer.

        `expect_image` checks the first bytes (not the Content-Type) and fails with `not_image`;
        `max_bytes` overrides the size cap of the settings."""
        if self._closed:
            raise RuntimeError("this Fetcher is closed")
        target = parse_url(url)
        cap = self.settings.max_bytes if max_bytes is None else max_bytes
        if cap < 0:
            raise ValueError(f"max_bytes must not be negative, not {cap}")
        request_headers = httpx.Headers(headers)
        if expect_image:
            request_headers.setdefault("Accept", IMAGE_ACCEPT)
            # Images do not compress: ask for them as they are.
            request_headers.setdefault("Accept-Encoding", "identity")
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                answer, final, redirects = await self._follow(
                    target, request_headers, expect_image, cap
                )
            except FetchError as exc:
                if not exc.retryable or attempt >= self.settings.retries:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else self._backoff(attempt)
                if wait > self.max_retry_wait:
                    raise
                attempt += 1
                await asyncio.sleep(wait)
                continue
            return FetchResult(
                url=url,
                final_url=str(final),
                status=answer.status,
                headers=answer.headers,
                body=answer.body,
                content_type=answer.content_type,
                elapsed=time.monotonic() - started,
                redirects=redirects,
                image_type=answer.image_type,
            )

    async def fetch_json(
        self,
        url: str,
        *,
        max_bytes: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """GET `url` and parse its body as JSON; malformed JSON raises `bad_json`."""
        request_headers = httpx.Headers(headers)
        request_headers.setdefault("Accept", "application/json")
        result = await self.fetch(url, max_bytes=max_bytes, headers=request_headers)
        return result.json()

    def _backoff(self, attempt: int) -> float:
        """Exponential delay with jitter, so many workers failing together do not retry together."""
        return self.backoff * (2**attempt) * random.uniform(0.5, 1.0)

    async def _follow(
        self, target: httpx.URL, headers: httpx.Headers, expect_image: bool, cap: int
    ) -> tuple[_Answer, httpx.URL, tuple[str, ...]]:
        """One attempt: every hop from `target` to a final answer.

        The total timeout covers the network time of all hops together (connect, headers and
        body), but not the time spent queueing for a host's politeness slot."""
        budget = self.settings.total_timeout
        current = target
        hop_headers = headers
        redirects: list[str] = []
        visited = {str(target)}
        while True:
            async with self.politeness.slot(host_key(current)):
                hop_started = time.monotonic()
                try:
                    async with asyncio.timeout(budget):
                        outcome = await self._exchange(current, hop_headers, expect_image, cap)
                except TimeoutError:
                    raise FetchError(
                        "timeout",
                        f"total timeout: {target} took more than {self.settings.total_timeout:g} s",
                    ) from None
                budget -= time.monotonic() - hop_started
            if isinstance(outcome, _Answer):
                return outcome, current, tuple(redirects)
            redirects.append(str(current))
            if str(outcome) in visited:
                raise FetchError("too_many_redirects", f"redirect loop: {current} -> {outcome}")
            if len(redirects) > self.settings.max_redirects:
                raise FetchError(
                    "too_many_redirects",
                    f"{target} redirected more than {self.settings.max_redirects} times",
                )
            visited.add(str(outcome))
            if (outcome.scheme, outcome.host, outcome.port) != (
                current.scheme,
                current.host,
                current.port,
            ):
                hop_headers = httpx.Headers(
                    [(k, v) for k, v in hop_headers.multi_items() if k not in CREDENTIAL_HEADERS]
                )
            current = outcome

    async def _exchange(
        self, url: httpx.URL, headers: httpx.Headers, expect_image: bool, cap: int
    ) -> _Answer | httpx.URL:
        """One request: the answer, or the URL a redirect points to."""
        request = self._client.build_request("GET", url, headers=headers)
        response = await self._client.send(request, stream=True)
        try:
            status = response.status_code
            if status in REDIRECT_STATUSES:
                await _discard_body(response)
                return _redirect_target(url, status, response.headers.get("Location"))
            if not 200 <= status < 300:
                await _discard_body(response)
                retry_after = None
                if status == 429 or status >= 500:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raise FetchError(
                    "http_status",
                    f"{url} answered {status} {response.reason_phrase}".rstrip(),
                    status=status,
                    retry_after=retry_after,
                )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > cap:
                raise FetchError(
                    "too_large", f"{url} declares {declared} bytes, over the cap of {cap}"
                )
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            body, image_type = await _read_body(response, url, cap, expect_image, content_type)
            return _Answer(status, response.headers, body, content_type, image_type)
        finally:
            await response.aclose()


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


class _Decoder:
    """Undoes a Content-Encoding with a bound on the output, so a small compressed body that
    expands to gigabytes (a decompression bomb) is stopped at the size cap, not in memory."""

    def __init__(self, encoding: str, url: httpx.URL) -> None:
        self._url = url
        self._encoding = encoding.strip().lower()
        self._zlib: Any = None
        if self._encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._encoding not in ("", "identity", "deflate"):
            raise FetchError("protocol", f"{url}: unsupported Content-Encoding {encoding!r}")

    def feed(self, data: bytes, room: int) -> bytes:
        """Decode the next raw chunk into at most `room` bytes (more means over the cap)."""
        if self._encoding in ("", "identity"):
            return data
        if self._zlib is None:  # deflate: zlib-wrapped as the RFC says, or raw as some send
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        try:
            return self._zlib.decompress(data, room)
        except zlib.error as exc:
            raise FetchError("protocol", f"{self._url}: bad {self._encoding} body: {exc}") from None

    def check_complete(self) -> None:
        if self._zlib is not None and not self._zlib.eof:
            raise FetchError("protocol", f"{self._url}: {self._encoding} body is truncated")


async def _read_body(
    response: httpx.Response, url: httpx.URL, cap: int, expect_image: bool, content_type: str
) -> tuple[bytes, str | None]:
    """Read the body, raw bytes and decoded bytes each within `cap`; sniff it early if it must
    be an image, so a large HTML page served as image/jpeg is abandoned after its first bytes.

    A network read returns up to 64 KiB, so at most one such chunk past the cap is received
    before the connection is dropped; nothing past the cap is kept."""
    decoder = _Decoder(response.headers.get("Content-Encoding", ""), url)
    chunks: list[bytes] = []
    raw = size = 0
    image_type: str | None = None
    sniffed = not expect_image
    async for data in response.aiter_raw():
        raw += len(data)
        chunk = decoder.feed(data, cap - size + 1)
        size += len(chunk)
        if raw > cap or size > cap:
            raise FetchError("too_large", f"{url} sent more than the cap of {cap} bytes")
        chunks.append(chunk)
        if not sniffed and size >= SNIFF_BYTES:
            image_type = _sniff(b"".join(chunks)[:SNIFF_BYTES], url, content_type)
            sniffed = True
    decoder.check_complete()
    body = b"".join(chunks)
    if not sniffed:
        image_type = _sniff(body, url, content_type)
    return body, image_type


async def _discard_body(response: httpx.Response) -> None:
    """Read a small redirect or error body to its end, so its connection stays reusable;
    a large or broken one is left to `aclose`, which drops the connection."""
    read = 0
    with contextlib.suppress(FetchError):
        async for data in response.aiter_raw():
            read += len(data)
            if read > DISCARD_LIMIT:
                return


def _sniff(head: bytes, url: httpx.URL, content_type: str) -> str:
    kind = sniff_image_type(head)
    if kind is None:
        served = content_type or "no Content-Type"
        raise FetchError(
            "not_image", f"{url} is served as {served} but starts with {head[:16]!r}, no image"
        )
    return kind
