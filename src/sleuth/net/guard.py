"""SSRF guard: a fetch may only reach globally routable addresses unless private ones are allowed.

URLs come from users and from crawled pages, so without this a crawl list or a redirect could make
sleuth read cloud metadata (169.254.169.254), an admin page on 127.0.0.1 or a LAN device. The
guard resolves a host itself and refuses it if *any* resolved address is not public; the
transport (`sleuth.net.transport`) then connects only to the addresses the guard returned, so a
DNS answer that changes between check and connect (rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

from sleuth.net.errors import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
Policy = Callable[[IPAddress], str | None]

_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
_NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix

ALLOW_HINT = "set net.allow_private (SLEUTH_NET_ALLOW_PRIVATE=1) to allow private addresses"


def _plain_kind(ip: IPAddress) -> str | None:
    """Why a native address is not a public unicast one, or None when it is."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED_ADDRESS_SPACE:
        return "shared address space (CGNAT)"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not globally routable"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which is where it leads."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip in _NAT64_PREFIX:
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify_address(ip: IPAddress) -> str | None:
    """Why `ip` must not be fetched from ("loopback", "IPv4-mapped private", ...), or None.

    IPv6 forms that embed an IPv4 address are judged by that address, so `::ffff:127.0.0.1`
    is loopback and a NAT64 address of a public host is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            form, inner = embedded
            kind = _plain_kind(inner)
            return None if kind is None else f"{form} {kind} ({inner})"
    return _plain_kind(ip)


def parse_address(text: str) -> IPAddress:
    """An address from getaddrinfo, without an IPv6 zone (`fe80::1%eth0`)."""
    return ipaddress.ip_address(text.split("%", 1)[0])


async def system_resolver(host: str, port: int) -> list[str]:
    """Addresses of `host` from the system resolver, in its preference order, without repeats."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


class Guard:
    """Resolves hosts and refuses any whose addresses are not all public (unless allowed).

    `resolver` and `policy` are injectable so tests can give a name a chosen address or treat
    one loopback address as public; production uses the system resolver and `classify_address`.
    """

    def __init__(
        self,
        allow_private: bool = False,
        *,
        resolver: Resolver = system_resolver,
        policy: Policy = classify_address,
    ) -> None:
        self.allow_private = allow_private
        self._resolver = resolver
        self._policy = policy

    def check(self, host: str, ip: IPAddress) -> None:
        """Raise `blocked_address` when `ip` (an address of `host`) may not be reached."""
        if self.allow_private:
            return
        kind = self._policy(ip)
        if kind is not None:
            shown = host if host == str(ip) else f"{host} resolves to {ip}, which"
            raise FetchError("blocked_address", f"{shown} is {kind}; {ALLOW_HINT}")

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The checked addresses to connect to for `host`; raises `dns` or `blocked_address`.

        Every address is checked, not only the first: a name answering with one public and
        one private address could otherwise be reached at the private one on a retry."""
        try:
            literal: IPAddress | None = parse_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            self.check(host, literal)
            return [literal]
        try:
            texts = await self._resolver(host, port)
        except socket.gaierror as exc:
            raise FetchError("dns", f"{host} does not resolve: {exc.strerror}") from None
        except UnicodeError as exc:
            raise FetchError("bad_url", f"host name {host!r} cannot be encoded: {exc}") from None
        if not texts:
            raise FetchError("dns", f"{host} resolves to no address")
        addresses = [parse_address(text) for text in texts]
        for ip in addresses:
            self.check(host, ip)
        return addresses
