"""The Mastodon connector against the emulated instances over loopback, and the recorded real
answers (Mastodon.py's cassettes) read by its parsers and compared with the emulator's."""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest

from sleuth.config import SourcesSettings
from sleuth.emulator import EmulatorServer
from sleuth.emulator.artworld import Account, ArtWorld
from sleuth.emulator.mastodon import MastodonEmulator, mastodon_blueprint
from sleuth.emulator.ratelimits import Limit
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher
from sleuth.sources import mastodon
from sleuth.sources.social import SourceError
from tests.sources.conftest import LONG, REAL, cassette, same_shape

pytestmark = pytest.mark.anyio


def artist_account(world: ArtWorld) -> Account:
    """A public Mastodon account that shows its followers."""
    for account in world.accounts:
        public = account.network == "mastodon" and not account.private
        if public and not world.hides_collections(account):
            return account
    raise AssertionError("no such Mastodon account in world 0")


async def all_statuses(fetcher: Fetcher, sources: SourcesSettings, account, **kw):  # type: ignore[no-untyped-def]
    posts, cursor = [], None
    while True:
        page = await mastodon.statuses(fetcher, sources, account, max_id=cursor, **kw)
        posts += page.items
        if page.next is None:
            return posts
        cursor = page.next


async def test_lookup_reads_the_home_server(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    truth = artist_account(world)
    account = await mastodon.lookup(fetcher, sources, f"@{truth.username}@{truth.server}")
    assert (account.id, account.server, account.acct) == (truth.id, truth.server, truth.acct)
    by_url = await mastodon.lookup(fetcher, sources, f"https://{truth.server}/@{truth.username}")
    assert by_url.id == truth.id
    # the profile fields link to the artist's other accounts
    assert set(world.profile_links(truth)) <= set(account.links)
    assert account.followers_count == len(world.followers(truth))


async def test_statuses_page_by_link_header_and_match_the_world(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    truth = artist_account(world)
    account = await mastodon.lookup(fetcher, sources, truth.acct)
    posts = await all_statuses(fetcher, sources, account, limit=7)
    expected = [p for p in world.posts(truth) if not p.deleted and not p.repost_of]
    assert [p.id for p in posts] == [p.id for p in expected]
    first = posts[0]
    assert first.url == expected[0].url and not first.is_repost
    assert [i.label for i in first.images] == [
        f"{n}/{len(expected[0].images)}" for n in range(1, len(expected[0].images) + 1)
    ]
    assert (first.images[0].width, first.images[0].height) == (
        expected[0].images[0].width,
        expected[0].images[0].height,
    )
    # the media URL serves the image's bytes (or 404 when the world deleted it)
    async with httpx.AsyncClient() as http:
        answer = await http.get(first.images[0].url)
    assert answer.status_code == (404 if expected[0].images[0].gone else 200)


async def test_since_id_and_reblogs(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    truth = artist_account(world)
    account = await mastodon.lookup(fetcher, sources, truth.acct)
    listed = [p for p in world.posts(truth) if not p.deleted]
    newer = await mastodon.statuses(
        fetcher, sources, account, since_id=listed[5].id, exclude_reblogs=False
    )
    assert [p.id for p in newer.items] == [p.id for p in listed[:5]]
    everything = await all_statuses(fetcher, sources, account, exclude_reblogs=False)
    reblogs = {p.id for p in everything if p.is_repost}
    assert reblogs == {p.id for p in listed if p.repost_of}


async def test_remote_account_is_read_on_its_home_server(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    truth = artist_account(world)
    other = next(s for s in ("mastodon.example", "art.example") if s != truth.server)
    # Seen from the other server the account is remote: another id, few statuses.
    async with httpx.AsyncClient() as http:
        base = mastodon.base_url(sources, other)
        seen = (
            await http.get(f"{base}/api/v1/accounts/lookup", params={"acct": truth.acct})
        ).json()
        partial = (await http.get(f"{base}/api/v1/accounts/{seen['id']}/statuses")).json()
    assert seen["id"] != truth.id and seen["acct"] == truth.acct
    assert partial and all(m["remote_url"] for s in partial for m in s["media_attachments"])
    remote = mastodon.parse_account(seen, other)
    assert remote.server == truth.server
    account = await mastodon.lookup(fetcher, sources, remote.acct)
    assert account.id == truth.id


async def test_unknown_account_and_bad_handle(fetcher: Fetcher, sources: SourcesSettings) -> None:
    with pytest.raises(SourceError) as info:
        await mastodon.lookup(fetcher, sources, "nobody@mastodon.example")
    assert (info.value.reason, info.value.status) == ("not_found", 404)
    with pytest.raises(SourceError) as bad:
        await mastodon.lookup(fetcher, sources, "not a handle")
    assert bad.value.reason == "bad_input"


async def test_followers_pages_drop_duplicates_and_hidden_lists_say_so(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    truth = artist_account(world)
    account = await mastodon.lookup(fetcher, sources, truth.acct)
    ids, cursor = [], None
    while True:
        page = await mastodon.followers(fetcher, sources, account, max_id=cursor, limit=3)
        assert len({a.id for a in page.items}) == len(page.items)
        ids += [a.acct for a in page.items]
        if page.next is None:
            break
        cursor = page.next
    expected = [a.acct for a in world.followers(truth) if a.network == "mastodon"]
    assert ids == expected
    hider = next(a for a in world.accounts if world.hides_collections(a) and world.followers(a))
    hidden = await mastodon.followers(
        fetcher, sources, await mastodon.lookup(fetcher, sources, hider.acct)
    )
    assert hidden.items == [] and hidden.hidden


async def test_closed_instance_and_rate_limit(fetcher: Fetcher, world: ArtWorld) -> None:
    from flask import Flask

    app = Flask(__name__)
    app.register_blueprint(
        mastodon_blueprint(
            MastodonEmulator(
                world, limits=(Limit(3, LONG), Limit(300, LONG)), closed_servers=["art.example"]
            )
        )
    )
    with EmulatorServer(app) as url:
        settings = SourcesSettings(mastodon_url=url + "/mastodon/{server}")
        with pytest.raises(SourceError) as closed:
            await mastodon.lookup(fetcher, settings, "artist001@art.example")
        assert closed.value.reason == "unauthorized"
        assert mastodon.ANONYMOUS_REFUSED in closed.value.message
        for _ in range(3):
            try:
                await mastodon.lookup(fetcher, settings, "artist000@mastodon.example")
            except SourceError as exc:
                assert exc.reason == "not_found"
        with pytest.raises(SourceError) as limited:
            await mastodon.lookup(fetcher, settings, "artist000@mastodon.example")
        assert limited.value.reason == "rate_limited"
        assert limited.value.retry_after is not None and limited.value.retry_after > 0
        # The spent budget is this instance's API's: a media file on the same host is not held
        # back, nor is the other instance that the emulator serves from the same host and port.
        host = url.split("/")[2]
        assert {b.host for b in fetcher.budgets.listing()} == {f"{host} api:mastodon.example"}
        api = url + "/mastodon/{}/api/v1/accounts/lookup"
        spent = mastodon.api_budget("mastodon.example")
        assert fetcher.wait_time(api.format("mastodon.example"), spent) > 0
        assert fetcher.wait_time(api.format("art.example"), mastodon.api_budget("art.example")) == 0
        assert fetcher.wait_time(url + "/mastodon/mastodon.example/system/a.png") == 0.0


# -- the recorded real answers --------------------------------------------------------------


def test_recorded_accounts_parse() -> None:
    for name in ("test_account.yaml", "test_account_lookup.yaml", "test_accounts.yaml"):
        for item in cassette(f"mastodon/{name}"):
            if item["status"] != 200:
                continue
            bodies = item["body"] if isinstance(item["body"], list) else [item["body"]]
            for body in bodies:
                account = mastodon.parse_account(body, "localhost:3000")
                assert account.id == body["id"] and account.acct.endswith("@localhost:3000")


def test_recorded_lookup_404_and_ratelimit_reset_is_iso() -> None:
    items = cassette("mastodon/test_account_lookup.yaml")
    missing = next(i for i in items if i["status"] == 404)
    assert missing["body"] == {"error": "Record not found"}
    assert "T" in missing["headers"]["x-ratelimit-reset"]


def test_recorded_statuses_parse_and_link_header() -> None:
    items = cassette("mastodon/test_account_pinned.yaml")
    listing = next(i for i in items if "statuses?pinned" in i["uri"])
    posts = [mastodon.parse_status(s) for s in listing["body"]]
    assert posts and all(p.account_id == "117020565966271181" for p in posts)
    # only a prev link: the last page, so no next cursor
    assert mastodon.next_max_id(listing["headers"]["link"]) is None


def test_recorded_empty_follower_list() -> None:
    items = cassette("mastodon/test_account_followers.yaml")
    assert next(i for i in items if i["uri"].endswith("/followers"))["body"] == []


def test_emulated_entities_have_the_recorded_shape(world: ArtWorld) -> None:
    emulator = MastodonEmulator(world)
    truth = artist_account(world)
    base = "http://127.0.0.1/mastodon"
    real_account = cassette("mastodon/test_account_lookup.yaml")[2]["body"]
    ours = emulator.account_entity(truth, truth.server, base)
    keys = [k for k in real_account if k not in ("source", "role")]  # the owner's view only
    assert same_shape(ours, real_account, keys) == []
    real_status = next(i for i in cassette("mastodon/test_status.yaml") if i["method"] == "GET")
    post = next(p for p in world.posts(truth) if not p.deleted and not p.repost_of)
    status = emulator.status_entity(post, truth.server, base)
    # fields that exist only for a logged-in viewer or for features the world has not
    own = ("filtered", "application", "pinned", "tagged_collections", "quote", "quote_approval")
    keys = [k for k in real_status["body"] if k not in own]
    assert same_shape(status, real_status["body"], keys) == []


def test_recorded_401_text() -> None:
    item = cassette("mastodon/test_home_tl_anonymous_throws.yaml")[0]
    assert item["status"] == 401 and "error" in item["body"]


def test_settings_route_each_server(sources: SourcesSettings) -> None:
    assert mastodon.base_url(sources, "art.example").endswith("/mastodon/art.example")
    real = replace(sources, mastodon_url="https://{server}")
    assert mastodon.base_url(real, "mastodon.social") == "https://mastodon.social"


def test_every_recorded_account_and_status_parses() -> None:
    names = sorted(p.name for p in (REAL / "mastodon").glob("*.yaml"))
    accounts = statuses = 0
    for name in names:
        for item in cassette(f"mastodon/{name}"):
            if item["status"] != 200:
                continue
            for body in item["body"] if isinstance(item["body"], list) else [item["body"]]:
                if isinstance(body, dict) and "username" in body:
                    assert mastodon.parse_account(body, "localhost:3000").id == body["id"]
                    accounts += 1
                elif isinstance(body, dict) and "media_attachments" in body:
                    post = mastodon.parse_status(body)
                    assert post.id == body["id"] and post.is_repost == (body["reblog"] is not None)
                    statuses += 1
    assert accounts >= 10 and statuses >= 10


def test_recorded_errors_are_read_by_the_connector() -> None:
    cases = {
        "test_status_missing.yaml": "not_found",
        "test_timeline_link_fails.yaml": "not_found",
        "test_account_lookup.yaml": "not_found",
        "test_home_tl_anonymous_throws.yaml": "unauthorized",
    }
    for name, reason in cases.items():
        item = next(i for i in cassette(f"mastodon/{name}") if i["status"] >= 400)
        exc = FetchError(
            "http_status", "recorded", item["status"], body=json.dumps(item["body"]).encode()
        )
        error = mastodon.classify_error(exc)
        assert error is not None and error.reason == reason
        assert error.message == item["body"]["error"]


def test_paged_requests_have_their_own_stricter_budget(world: ArtWorld) -> None:
    from flask import Flask

    app = Flask(__name__)
    app.register_blueprint(
        mastodon_blueprint(MastodonEmulator(world, limits=(Limit(10, LONG), Limit(2, LONG))))
    )
    truth = artist_account(world)
    with EmulatorServer(app) as url, httpx.Client(base_url=url) as http:
        path = f"/mastodon/{truth.server}/api/v1/accounts/{truth.id}/statuses"
        first = http.get(path, params={"max_id": "99999999999999999999"})
        assert first.headers["X-RateLimit-Limit"] == "2"  # the closest limit is the paging one
        assert http.get(path, params={"max_id": "99999999999999999999"}).status_code == 200
        assert http.get(path, params={"max_id": "99999999999999999999"}).status_code == 429
        plain = http.get(path)  # an unpaged request still has budget left
        assert plain.status_code == 200 and plain.headers["X-RateLimit-Limit"] == "10"


async def test_account_by_id_on_its_server(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    truth = artist_account(world)
    found = await mastodon.account(fetcher, sources, truth.server, truth.id)
    assert found.acct == truth.acct
    with pytest.raises(SourceError) as info:
        await mastodon.account(fetcher, sources, truth.server, "1")
    assert info.value.reason == "not_found"
