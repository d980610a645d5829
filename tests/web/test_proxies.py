"""`X-Forwarded-For` believed only from trusted proxies (`web.proxies`)."""

from __future__ import annotations

from typing import Any

import pytest

from sleuth.web.proxies import TrustedProxies, parse_proxies


def remote_addr(proxies: str, peer: str, forwarded: str | None) -> tuple[str, str]:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return []

    environ = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    TrustedProxies(app, parse_proxies(proxies))(environ, lambda *a: None)
    return seen["REMOTE_ADDR"], seen["sleuth.peer_addr"]


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "client"),
    [
        ("", "10.0.0.5", "1.2.3.4", "10.0.0.5"),  # no proxy trusted: the header is ignored
        ("10.0.0.5", "10.0.0.6", "1.2.3.4", "10.0.0.6"),  # not from the proxy
        ("10.0.0.5", "10.0.0.5", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.5", "10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "10.0.0.5", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # a claim before the client
        ("10.0.0.0/24", "10.0.0.5", "1.2.3.4, 10.0.0.9", "1.2.3.4"),  # two trusted hops
        ("10.0.0.0/24", "10.0.0.5", "10.0.0.8, 10.0.0.9", "10.0.0.8"),  # all trusted
        ("10.0.0.5", "10.0.0.5", "unknown", "10.0.0.5"),  # not an address: stop there
        ("::1", "::1", "2001:db8::7", "2001:db8::7"),
        ("10.0.0.5", "::ffff:10.0.0.5", "1.2.3.4", "1.2.3.4"),  # IPv4-mapped peer
    ],
)
def test_the_client_is_the_first_address_not_a_trusted_proxy(
    proxies: str, peer: str, forwarded: str | None, client: str
) -> None:
    assert remote_addr(proxies, peer, forwarded) == (client, peer)


def test_a_bad_proxy_entry_is_refused_with_its_reason() -> None:
    with pytest.raises(ValueError, match=r"web.trusted_proxies: 'nope' is not an IP address"):
        parse_proxies("10.0.0.1, nope")
    assert [str(n) for n in parse_proxies(" 10.0.0.1 , 10.1.0.0/16,,::1")] == [
        "10.0.0.1/32",
        "10.1.0.0/16",
        "::1/128",
    ]


@pytest.mark.parametrize(
    ("peer", "proto", "scheme"),
    [
        ("10.0.0.5", "https", "https"),  # the trusted proxy terminated TLS
        ("10.0.0.6", "https", "http"),  # anyone else's claim is ignored
        ("10.0.0.5", "gopher", "http"),  # not a scheme of ours
    ],
)
def test_the_scheme_comes_from_a_trusted_proxy_only(peer: str, proto: str, scheme: str) -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return []

    environ = {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_PROTO": proto, "wsgi.url_scheme": "http"}
    TrustedProxies(app, parse_proxies("10.0.0.5"))(environ, lambda *a: None)
    assert seen["wsgi.url_scheme"] == scheme
