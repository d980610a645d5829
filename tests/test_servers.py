"""A test server that cannot be reached skips its tests on a developer's machine, and fails
them under CI, where `.ci/run` has started every server: never a silent pass."""

from __future__ import annotations

import socket

import pytest

from tests.servers import require


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("kind", ["postgresql", "mysql", "redis"])
def test_a_missing_server_fails_under_ci_and_skips_elsewhere(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"scheme://127.0.0.1:{closed_port()}/x"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"{kind} not reachable"):
        require(kind, url)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="or set SLEUTH_TEST_"):
        require(kind, url)
