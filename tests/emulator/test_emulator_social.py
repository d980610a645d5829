"""The social emulators as wired into the one emulator app, the `env` and `world` commands,
the request budgets, and the ArtWorld's profile links and follower lists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from click.testing import CliRunner

from sleuth.config import SourcesSettings, load_settings
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.artworld import ArtWorld
from sleuth.emulator.cli import emulator
from sleuth.emulator.ratelimits import Limit, Limiter
from sleuth.emulator.x_api import EMULATOR_TOKEN
from tests.patience import PATIENCE


@pytest.fixture(scope="module")
def limited() -> Iterator[httpx.Client]:
    """The whole emulator app with its real rate limits."""
    with (
        EmulatorServer(create_imagehost_app(0)) as url,
        httpx.Client(base_url=url, timeout=PATIENCE) as http,
    ):
        yield http


def test_env_points_every_source_at_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(emulator, ["env", "--port", "9123"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split("=", 1) for line in result.output.splitlines())
    assert lines["SLEUTH_NET_ALLOW_PRIVATE"] == "true"
    for name, value in lines.items():
        monkeypatch.setenv(name, value)
    sources = load_settings().sources
    base = "http://127.0.0.1:9123"
    assert sources == SourcesSettings(
        x_api_url=f"{base}/x",
        x_bearer_token=EMULATOR_TOKEN,
        mastodon_url=f"{base}/mastodon/{{server}}",
        bluesky_appview_url=f"{base}/bsky",
        bluesky_pds_url=f"{base}/bsky-pds",
        danbooru_url=f"{base}/danbooru",
        derpibooru_url=f"{base}/derpibooru",
        furbooru_url=f"{base}/furbooru",
        deviantart_url=f"{base}/deviantart",
        deviantart_oembed_url=f"{base}/deviantart-backend/oembed",
        pixiv_url=f"{base}/pixiv",
        linktree_url=f"{base}/linktree",
        carrd_url=f"{base}/carrd/{{name}}",
    )


def test_world_json_is_the_ground_truth() -> None:
    result = CliRunner().invoke(emulator, ["world", "--json", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads(json.dumps(ArtWorld(3).ground_truth()))
    text = CliRunner().invoke(emulator, ["world"])
    assert text.exit_code == 0 and text.output.startswith("artwork 0 by artist000")


def test_each_api_answers_under_its_prefix_with_its_header_dialect(
    limited: httpx.Client,
) -> None:
    world = ArtWorld(0)
    masto = next(a for a in world.accounts if a.network == "mastodon")
    sky = next(a for a in world.accounts if a.network == "bluesky")
    answer = limited.get(
        f"/mastodon/{masto.server}/api/v1/accounts/lookup", params={"acct": masto.username}
    )
    assert answer.status_code == 200 and answer.json()["id"] == masto.id
    assert answer.headers["X-RateLimit-Limit"] == "300"
    datetime.fromisoformat(answer.headers["X-RateLimit-Reset"].replace("Z", "+00:00"))
    answer = limited.get("/bsky/xrpc/app.bsky.actor.getProfile", params={"actor": sky.id})
    assert answer.status_code == 200 and answer.headers["RateLimit-Policy"] == "3000;w=300"
    assert int(answer.headers["RateLimit-Reset"]) > 1e9
    answer = limited.get(
        "/x/2/users/by/username/artist000", headers={"Authorization": f"Bearer {EMULATOR_TOKEN}"}
    )
    assert answer.status_code == 200 and answer.headers["x-rate-limit-limit"] == "300"
    refused = limited.get("/x/2/users/by/username/artist000")
    assert refused.status_code == 401 and "x-rate-limit-limit" not in refused.headers
    assert limited.get("/mastodon/elsewhere.example/api/v1/accounts/1").status_code == 404


def test_limiter_counts_per_bucket_and_client_and_resets_with_the_window() -> None:
    now = [1000.0]
    limiter = Limiter(clock=lambda: now[0])
    limit = Limit(2, 60.0)
    first, second, third = (limiter.take("a", "c1", limit) for _ in range(3))
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert (first.remaining, third.remaining, third.reset_at) == (1, 0, 1020.0)
    assert limiter.take("a", "c2", limit).allowed and limiter.take("b", "c1", limit).allowed
    now[0] = 1020.0
    assert limiter.take("a", "c1", limit).remaining == 1


def test_profile_links_and_followers_are_deterministic() -> None:
    world, again = ArtWorld(0), ArtWorld(0)
    for account in world.accounts:
        artist = world.artists[account.artist or 0]
        others = {a.url for a in artist.accounts if a != account}
        links = world.profile_links(account)
        assert others <= set(links) and account.url not in links
        followers = world.followers(account)
        assert [a.id for a in followers] == [a.id for a in again.followers(account)]
        assert all(a.network == account.network and a != account for a in followers)
        for follower in followers:
            assert account in world.following(follower)
    assert any(world.hides_collections(a) for a in world.accounts)


def test_media_index_finds_every_post_image() -> None:
    world = ArtWorld(0)
    post = world.posts(world.accounts[0])[0]
    assert world.media(post.images[0].media_id) == (post, post.images[0])
    assert world.media("nope") is None
