"""The one exception every fetch failure becomes, with a stable machine-readable reason.

Callers branch on `reason` (recorded in the database, counted by `/monitoring`) and on
`retryable`/`retry_after` (the job layer reschedules instead of sleeping), never on message text.
"""

from __future__ import annotations

REASONS = frozenset(
    {
        "bad_url",  # malformed, not http(s), no host, too long
        "blocked_address",  # the SSRF guard refused a resolved address
        "dns",  # the host name does not resolve
        "connect",  # refused, unreachable, or the connection was lost
        "tls",  # TLS handshake or certificate verification failed
        "timeout",  # connect, read, write, DNS or total; the detail says which
        "too_large",  # Content-Length or streamed body over the size cap
        "too_many_redirects",  # over the redirect limit, or a redirect loop
        "http_status",  # a 4xx or 5xx answer; `status` holds it
        "not_image",  # an image was expected and the bytes are not one
        "bad_json",  # JSON was expected and the body does not parse
        "bad_xml",  # XML was expected and the body does not parse or declares entities
        "rate_limited",  # the host's announced budget is spent; `retry_after` says until when
        "protocol",  # broken HTTP: truncated body, bad framing, bad encoding
    }
)

# How much of an error answer's body a `FetchError` keeps.
ERROR_BODY_BYTES = 4096

_TRANSIENT_REASONS = frozenset({"timeout", "connect", "rate_limited"})


class FetchError(Exception):
    """A failed fetch: `reason` is one of `REASONS`, `detail` says what happened, for people;
    `body` is the start of an error answer's body (an API's error document, for its client
    to read: X's problem type, Bluesky's error name), decoded, at most `ERROR_BODY_BYTES`."""

    def __init__(
        self,
        reason: str,
        detail: str,
        status: int | None = None,
        retry_after: float | None = None,
        body: bytes = b"",
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown fetch error reason {reason!r}")
        super().__init__(reason, detail, status, retry_after, body)
        self.reason = reason
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.body = body

    @property
    def retryable(self) -> bool:
        """Whether trying again later can succeed: timeouts, lost connections, a spent budget,
        5xx and 429."""
        if self.reason in _TRANSIENT_REASONS:
            return True
        if self.reason == "http_status" and self.status is not None:
            return self.status >= 500 or self.status == 429
        return False

    def __str__(self) -> str:
        text = f"{self.reason}: {self.detail}"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g} s)"
        return text
