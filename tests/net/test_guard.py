"""The SSRF guard: the address classifier, resolution, and refusals through a real fetch."""

from __future__ import annotations

import ipaddress
import ssl
import uuid

import pytest

from sleuth.config import NetSettings
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher
from sleuth.net.guard import Guard, IPAddress, classify_address, parse_address
from tests.net.conftest import LocalServer, TlsFiles

FAST = NetSettings(retries=0, connect_timeout=5.0, total_timeout=10.0)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fe80::1", "link-local"),
        ("::ffff:127.0.0.1", "IPv4-mapped loopback (127.0.0.1)"),
        ("::ffff:10.0.0.1", "IPv4-mapped private (10.0.0.1)"),
        ("::ffff:169.254.169.254", "IPv4-mapped link-local (169.254.169.254)"),
        ("2002:7f00:1::", "6to4 loopback (127.0.0.1)"),
        ("2002:c0a8:101::1", "6to4 private (192.168.1.1)"),
        ("64:ff9b::a00:1", "NAT64 private (10.0.0.1)"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "shared address space (CGNAT)"),
        ("100.127.255.254", "shared address space (CGNAT)"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.1.2.3", "private"),
        ("192.0.2.1", "private"),
        ("2001:db8::1", "private"),
    ],
)
def test_non_public_addresses_are_classified(address: str, kind: str) -> None:
    assert classify_address(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
        "2002:808:808::1",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    """Classification only: nothing here is ever connected to."""
    assert classify_address(ipaddress.ip_address(address)) is None


def test_zoned_ipv6_address_is_parsed_without_its_zone() -> None:
    assert classify_address(parse_address("fe80::1%eth0")) == "link-local"


def _resolver(table: dict[str, list[str]], calls: list[str] | None = None):
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return table[host]

    return resolve


@pytest.mark.anyio
async def test_resolve_refuses_a_literal_loopback_with_a_hint() -> None:
    with pytest.raises(FetchError) as info:
        await Guard().resolve("127.0.0.1", 80)
    assert info.value.reason == "blocked_address"
    assert "127.0.0.1 is loopback" in info.value.detail
    assert "SLEUTH_NET_ALLOW_PRIVATE=1" in info.value.detail
    assert await Guard(allow_private=True).resolve("127.0.0.1", 80) == [
        ipaddress.ip_address("127.0.0.1")
    ]


@pytest.mark.anyio
async def test_resolve_refuses_a_name_with_any_private_address() -> None:
    guard = Guard(resolver=_resolver({"mixed.test": ["8.8.8.8", "10.0.0.1"]}))
    with pytest.raises(FetchError) as info:
        await guard.resolve("mixed.test", 80)
    assert info.value.reason == "blocked_address"
    assert "mixed.test resolves to 10.0.0.1, which is private" in info.value.detail


@pytest.mark.anyio
async def test_resolve_returns_checked_public_addresses() -> None:
    guard = Guard(resolver=_resolver({"public.test": ["8.8.8.8", "2001:4860:4860::8888"]}))
    assert await guard.resolve("public.test", 443) == [
        ipaddress.ip_address("8.8.8.8"),
        ipaddress.ip_address("2001:4860:4860::8888"),
    ]


@pytest.mark.anyio
async def test_localhost_resolves_and_is_refused_by_the_system_resolver() -> None:
    with pytest.raises(FetchError) as info:
        await Guard().resolve("localhost", 80)
    assert info.value.reason == "blocked_address"
    assert "localhost resolves to" in info.value.detail


@pytest.mark.anyio
async def test_unresolvable_name_is_a_dns_error() -> None:
    async with Fetcher(FAST) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.get("http://no-such-host.invalid/x.png")
    assert info.value.reason == "dns"
    assert "no-such-host.invalid does not resolve" in info.value.detail
    assert not info.value.retryable


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_fetch_of_loopback_is_refused_before_connecting(
    server: LocalServer, host: str
) -> None:
    path = f"/image.png/refused-{host}"
    async with Fetcher(FAST, allow_private=False) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.get(server.url(path, host=host))
    assert info.value.reason == "blocked_address"
    assert "loopback" in info.value.detail
    assert server.stats.hits[path] == 0


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]"])
async def test_disguised_loopback_is_refused(server: LocalServer, host: str) -> None:
    """Short, decimal, hex and IPv4-mapped spellings are judged by the address they reach."""
    path = f"/image.png/disguised-{host}"
    async with Fetcher(FAST, allow_private=False) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.get(server.url(path, host=host))
    assert info.value.reason == "blocked_address"
    assert "loopback" in info.value.detail
    assert server.stats.hits[path] == 0


@pytest.mark.anyio
async def test_fetch_of_loopback_is_allowed_when_private_is_allowed(server: LocalServer) -> None:
    async with Fetcher(FAST, allow_private=True) as fetcher:
        result = await fetcher.get(server.url("/image.png", host="localhost"))
    assert result.body == server.png


def _only_127_0_0_1_is_public(ip: IPAddress) -> str | None:
    """A policy for tests: the test server's address counts as public, all else as usual."""
    return None if ip == ipaddress.ip_address("127.0.0.1") else classify_address(ip)


@pytest.mark.anyio
async def test_redirect_to_a_private_address_is_refused_at_the_hop(server: LocalServer) -> None:
    guard = Guard(policy=_only_127_0_0_1_is_public)
    target = f"http://127.0.0.2:{server.port}/image.png"
    first_hop = f"/redirect-to?url={target}&case=literal"
    async with Fetcher(FAST, guard=guard) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.get(server.url(first_hop))
    assert info.value.reason == "blocked_address"
    assert "127.0.0.2 is loopback" in info.value.detail
    assert server.stats.hits[first_hop] == 1


@pytest.mark.anyio
@pytest.mark.parametrize(("method", "status"), [("POST", 307), ("POST", 303), ("HEAD", 308)])
async def test_every_method_and_its_redirects_are_guarded(
    server: LocalServer, method: str, status: int
) -> None:
    target = f"http://127.0.0.2:{server.port}/peer"
    first_hop = f"/redirect-to?url={target}&status={status}&k={uuid.uuid4().hex}"
    async with Fetcher(FAST) as fetcher:  # private addresses not allowed
        with pytest.raises(FetchError) as direct:
            await fetcher.request(method, server.url("/peer"), json={"a": 1})
    async with Fetcher(FAST, guard=Guard(policy=_only_127_0_0_1_is_public)) as fetcher:
        with pytest.raises(FetchError) as hop:
            await fetcher.request(method, server.url(first_hop), json={"a": 1})
    assert direct.value.reason == hop.value.reason == "blocked_address"
    assert "127.0.0.2 is loopback" in hop.value.detail
    assert server.stats.hits[first_hop] == 1


@pytest.mark.anyio
async def test_redirect_to_a_name_of_a_private_address_is_refused_at_the_hop(
    server: LocalServer,
) -> None:
    resolve = _resolver({"public.test": ["127.0.0.1"], "internal.test": ["127.0.0.2"]})
    guard = Guard(resolver=resolve, policy=_only_127_0_0_1_is_public)
    target = f"http://internal.test:{server.port}/image.png"
    async with Fetcher(FAST, guard=guard) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.get(server.url(f"/redirect-to?url={target}", host="public.test"))
    assert info.value.reason == "blocked_address"
    assert "internal.test resolves to 127.0.0.2, which is loopback" in info.value.detail


@pytest.mark.anyio
async def test_same_redirect_without_the_guard_reaches_the_network(server: LocalServer) -> None:
    """Control for the two tests above: allowed, the hop is tried and nothing listens there."""
    target = f"http://127.0.0.2:{server.port}/image.png"
    async with Fetcher(FAST, allow_private=True) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.get(server.url(f"/redirect-to?url={target}&case=control"))
    assert info.value.reason == "connect"


@pytest.mark.anyio
async def test_connection_is_pinned_to_the_checked_address(server: LocalServer) -> None:
    """A rebinding resolver answers a checked address once and a refused one after. The fetch
    succeeds with one resolution: the socket went to the address that was checked, and the
    name (known to no real DNS) stayed in the Host header."""
    calls: list[str] = []
    answers = iter([["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers, ["127.0.0.2"])

    guard = Guard(resolver=rebinding, policy=_only_127_0_0_1_is_public)
    async with Fetcher(FAST, guard=guard) as fetcher:
        first = await fetcher.get(server.url("/echo", host="pinned.test"), expect="json")
        second = await fetcher.get(server.url("/echo", host="pinned.test"), expect="json")
    assert first.data["host"] == f"pinned.test:{server.port}"
    assert second.data["host"] == f"pinned.test:{server.port}"
    assert calls == ["pinned.test"]  # the kept-alive connection needed no new resolution


@pytest.mark.anyio
async def test_tls_verifies_the_name_while_connecting_to_the_pinned_address(
    tls_server: LocalServer, tls_files: TlsFiles
) -> None:
    trust = ssl.create_default_context(cafile=str(tls_files.cert))
    async with Fetcher(FAST, allow_private=True, ssl_context=trust) as fetcher:
        result = await fetcher.get(tls_server.url("/image.png", host="localhost"))
        assert result.body == tls_server.png
        with pytest.raises(FetchError) as info:
            await fetcher.get(tls_server.url("/image.png", host="127.0.0.1"))
    assert info.value.reason == "tls"
    assert "certificate" in info.value.detail.lower()
