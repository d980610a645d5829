"""The emulated social APIs enforce their real ceilings per client source address: each
loopback address (127.0.0.2, 127.0.0.3) has its own budget, Mastodon's paged requests a
stricter one, Bluesky's 429 says `Retry-After`, X counts per endpoint; scaled windows keep the
real rate, and the limiters count what each address was served and refused."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.artworld import ArtWorld
from sleuth.emulator.imagehost import SOCIAL
from sleuth.emulator.ratelimits import Limit
from sleuth.emulator.x_api import EMULATOR_TOKEN
from tests.patience import PATIENCE

# Windows 1000 times longer than the real ones (no window can end during a test) and 1/100
# of their requests: Mastodon allows 3 a window, Bluesky 30, X's endpoints 3.
WINDOWS, QUOTAS = 1000.0, 0.01
WORLD = ArtWorld(0)
MASTO = next(a for a in WORLD.accounts if a.network == "mastodon")
SKY = next(a for a in WORLD.accounts if a.network == "bluesky")
X_USER = next(a for a in WORLD.accounts if a.network == "x")


@pytest.fixture
def served() -> Iterator[tuple[str, dict[str, object]]]:
    """A fresh emulator (fresh budgets) with scaled limits, and its social emulators."""
    app = create_imagehost_app(0, world=WORLD, window_scale=WINDOWS, quota_scale=QUOTAS)
    with EmulatorServer(app) as url:
        yield url, app.extensions[SOCIAL]


def client(url: str, address: str) -> httpx.Client:
    """A client whose requests leave from `address` (the whole of 127/8 is loopback)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=url, transport=transport, timeout=PATIENCE)


def test_scaled_limits_keep_the_rate_and_refuse_nonsense() -> None:
    assert Limit(300, 300.0).scaled(0.05, 0.05) == Limit(15, 15.0)
    assert Limit(300, 900.0).scaled(1 / 60) == Limit(300, 15.0)
    assert Limit(3, 60.0).scaled(1.0, 0.01) == Limit(1, 60.0)
    with pytest.raises(ValueError, match="positive"):
        Limit(3, 60.0).scaled(0.0)


def test_mastodon_budgets_are_per_address_and_paged_requests_have_the_longer_window(
    served: tuple[str, dict[str, object]],
) -> None:
    url, social = served
    path = f"/mastodon/{MASTO.server}/api/v1/accounts/{MASTO.id}/followers"
    with client(url, "127.0.0.2") as first, client(url, "127.0.0.3") as second:
        paged = [first.get(path, params={"max_id": "99999999999999999999"}) for _ in range(4)]
        assert [a.status_code for a in paged] == [200, 200, 200, 429]
        assert paged[-1].headers["X-RateLimit-Remaining"] == "0"
        # The paged budget is spent, and so is the whole one (every request counts there).
        plain = first.get(path)
        assert plain.status_code == 429
        # The other address has both budgets whole.
        other = second.get(path)
        assert other.status_code == 200 and other.headers["X-RateLimit-Remaining"] == "2"
        other_paged = second.get(path, params={"max_id": "99999999999999999999"})
        assert other_paged.status_code == 200
    # The headers of a paged request describe the closest budget: the paged one, whose
    # window is three times the other's (15 min against 5, both scaled alike).
    unpaged_reset = other.headers["X-RateLimit-Reset"]
    paged_reset = other_paged.headers["X-RateLimit-Reset"]
    assert paged_reset >= unpaged_reset
    limiter = social["mastodon"].limiter  # type: ignore[attr-defined]
    by_client: dict[str, int] = {}
    for (bucket, who, _start), count in limiter.served().items():
        if bucket == MASTO.server:
            by_client[who] = by_client.get(who, 0) + count
    assert by_client == {"127.0.0.2": 3, "127.0.0.3": 2}
    refused = {(b, who): n for (b, who, _start), n in limiter.refused().items()}
    assert refused == {(MASTO.server, "127.0.0.2"): 2, (MASTO.server + " paging", "127.0.0.2"): 1}


def test_bluesky_refuses_with_retry_after_per_address(
    served: tuple[str, dict[str, object]],
) -> None:
    url, _social = served
    path = "/bsky/xrpc/app.bsky.actor.getProfile"
    with client(url, "127.0.0.2") as first, client(url, "127.0.0.3") as second:
        answers = [first.get(path, params={"actor": SKY.id}) for _ in range(31)]
        assert [a.status_code for a in answers] == [200] * 30 + [429]
        refused = answers[-1]
        assert refused.json()["error"] == "RateLimitExceeded"
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert refused.headers["RateLimit-Policy"] == f"30;w={int(300 * WINDOWS)}"
        retry_after = int(refused.headers["Retry-After"])
        assert 0 < retry_after <= 300 * WINDOWS
        assert refused.headers["RateLimit-Reset"] == answers[0].headers["RateLimit-Reset"]
        assert second.get(path, params={"actor": SKY.id}).status_code == 200


def test_x_counts_each_endpoint_per_address(served: tuple[str, dict[str, object]]) -> None:
    url, _social = served
    auth = {"Authorization": f"Bearer {EMULATOR_TOKEN}"}
    followers = f"/x/2/users/{X_USER.id}/followers"
    with client(url, "127.0.0.2") as first, client(url, "127.0.0.3") as second:
        answers = [first.get(followers, headers=auth) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[2].headers["x-rate-limit-remaining"] == "0"
        assert answers[3].json()["title"] == "Too Many Requests"
        # Another endpoint's budget, and the same endpoint from another address, are whole.
        user = first.get(f"/x/2/users/by/username/{X_USER.username}", headers=auth)
        assert user.status_code == 200 and user.headers["x-rate-limit-remaining"] == "2"
        assert second.get(followers, headers=auth).status_code == 200
