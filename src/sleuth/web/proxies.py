"""Client addresses behind a reverse proxy: `X-Forwarded-For` believed only from trusted proxies.

Anyone can send the header, so it says nothing unless the peer that sent it is one of the
proxies the operator named (`web.trusted_proxies`). The chain is read from the right: each hop
added by a trusted proxy is believed, and the first address that is not a trusted proxy is the
client. `X-Forwarded-Proto` from a trusted proxy sets the URL scheme (gunicorn also reads it,
configured with the same list; waitress is told to leave both headers to this middleware)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
WSGIApp = Any  # a WSGI callable: (environ, start_response) -> iterable of bytes


def parse_proxies(text: str) -> tuple[Network, ...]:
    """`"10.0.0.5, 10.1.0.0/16, ::1"` → networks; a bad entry is refused with its reason."""
    out: list[Network] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            out.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(
                f"web.trusted_proxies: {entry!r} is not an IP address or network ({exc})"
            ) from None
    return tuple(out)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.5 is 10.0.0.5
    return mapped or address


class TrustedProxies:
    """WSGI middleware: sets `REMOTE_ADDR` to the client a trusted proxy forwarded for; the
    peer's own address stays in `sleuth.peer_addr`. Without trusted proxies it changes nothing."""

    def __init__(self, app: WSGIApp, proxies: Iterable[Network]) -> None:
        self.app = app
        self.proxies = tuple(proxies)

    def trusted(self, text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in net for net in self.proxies)

    def client(self, peer: str, forwarded_for: str) -> str:
        """The client's address, given the peer's and the `X-Forwarded-For` header."""
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        client = peer
        while hops and self.trusted(client):
            hop = hops.pop()
            if _address(hop) is None:
                break  # a hop that is no address ends what can be believed
            client = hop
        return client

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        peer = environ.get("REMOTE_ADDR", "")
        environ["sleuth.peer_addr"] = peer
        header = environ.get("HTTP_X_FORWARDED_FOR", "")
        if self.proxies and header:
            environ["REMOTE_ADDR"] = self.client(peer, header)
        proto = environ.get("HTTP_X_FORWARDED_PROTO", "").rsplit(",", 1)[-1].strip().lower()
        if proto in ("http", "https") and self.trusted(peer):
            environ["wsgi.url_scheme"] = proto
        return self.app(environ, start_response)
