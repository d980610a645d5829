"""The Bluesky connector against the emulated AppView and PDS over loopback, and the recorded
real answers (MarshalX/atproto's) read by its parsers and compared with the emulator's."""

from __future__ import annotations

import json

import httpx
import pytest
from flask import Flask

from sleuth.config import SourcesSettings
from sleuth.emulator import EmulatorServer
from sleuth.emulator.artworld import Account, ArtWorld
from sleuth.emulator.bluesky import BlueskyEmulator, bluesky_blueprints
from sleuth.emulator.ratelimits import Limit
from sleuth.net.fetcher import Fetcher
from sleuth.sources import bluesky
from sleuth.sources.social import SourceError
from tests.sources.conftest import LONG, REAL, same_shape

pytestmark = pytest.mark.anyio


def bluesky_account(world: ArtWorld) -> Account:
    return next(a for a in world.accounts if a.network == "bluesky" and world.followers(a))


def emulator_app(emulator: BlueskyEmulator) -> Flask:
    app = Flask(__name__)
    for blueprint in bluesky_blueprints(emulator):
        app.register_blueprint(blueprint)
    return app


async def test_profile_by_handle_did_and_url(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    truth = bluesky_account(world)
    account = await bluesky.get_profile(fetcher, sources, f"@{truth.username}")
    assert (account.id, account.username) == (truth.id, truth.username)
    assert set(world.profile_links(truth)) <= set(account.links)
    assert account.followers_count == len(world.followers(truth))
    same = await bluesky.get_profile(fetcher, sources, truth.id)
    by_url = await bluesky.get_profile(
        fetcher, sources, f"https://bsky.app/profile/{truth.username}"
    )
    assert same == by_url == account


async def test_unknown_actor_is_not_found(fetcher: Fetcher, sources: SourcesSettings) -> None:
    with pytest.raises(SourceError) as info:
        await bluesky.get_profile(fetcher, sources, "nobody.bsky.social")
    assert info.value.reason == "not_found"
    with pytest.raises(SourceError) as bad:
        await bluesky.get_profile(fetcher, sources, "no spaces allowed")
    assert bad.value.reason == "bad_input"


async def test_get_profiles_batches_by_25(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    handles = [a.username for a in world.accounts if a.network == "bluesky"]
    wanted = [*(handles * 3)[:30], "nobody.bsky.social"]  # two calls; the unknown left out
    found = await bluesky.get_profiles(fetcher, sources, wanted)
    assert [a.username for a in found] == (handles * 3)[:30]


async def test_author_feed_pages_with_every_embed_shape_and_original_blobs(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    truth = bluesky_account(world)
    account = await bluesky.get_profile(fetcher, sources, truth.username)
    posts, cursor = [], None
    while True:
        page = await bluesky.author_feed(fetcher, sources, account, cursor, limit=9)
        posts += page.items
        if page.next is None:
            break
        cursor = page.next
    listed = [p for p in world.posts(truth) if not p.deleted]
    assert [p.id for p in posts] == [p.id for p in listed]
    assert {p.id for p in posts if p.is_repost} == {p.id for p in listed if p.repost_of}
    # every post's images are all there, in order, whatever embed shape carried them
    for post, expected in zip(posts, listed, strict=True):
        assert [(i.width, i.height) for i in post.images] == [
            (i.width, i.height) for i in expected.images
        ]
        assert all(i.url.startswith(sources.bluesky_pds_url) for i in post.images)
    image = next(i for i in listed if not i.images[0].gone).images[0]
    post = posts[[p.id for p in listed].index(next(p for p in listed if p.images[0] == image).id)]
    async with httpx.AsyncClient() as http:
        blob = await http.get(post.images[0].url)
    assert blob.status_code == 200 and blob.content == world.post_image_bytes(image)


async def test_followers_and_follows(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    truth = bluesky_account(world)
    account = await bluesky.get_profile(fetcher, sources, truth.username)
    got, cursor = [], None
    while True:
        page = await bluesky.followers(fetcher, sources, account, cursor, limit=2)
        got += [a.id for a in page.items]
        if page.next is None:
            break
        cursor = page.next
    assert got == [a.id for a in world.followers(truth)]
    follows = await bluesky.follows(fetcher, sources, account)
    assert [a.id for a in follows.items] == [a.id for a in world.following(truth)]


async def test_a_cursor_that_does_not_advance_stops(fetcher: Fetcher, world: ArtWorld) -> None:
    with EmulatorServer(emulator_app(BlueskyEmulator(world, stuck_cursor=True))) as url:
        settings = SourcesSettings(bluesky_appview_url=url + "/bsky")
        truth = bluesky_account(world)
        account = await bluesky.get_profile(fetcher, settings, truth.username)
        first = await bluesky.author_feed(fetcher, settings, account, limit=100)
        assert first.next is None or first.next  # a short feed ends on its first page
        page = await bluesky.author_feed(fetcher, settings, account, limit=10)
        cursor = page.next
        with pytest.raises(SourceError) as info:
            while cursor is not None:
                cursor = (await bluesky.author_feed(fetcher, settings, account, cursor, 10)).next
        assert info.value.reason == "stuck_cursor"


async def test_rate_limit_headers_and_429(fetcher: Fetcher, world: ArtWorld) -> None:
    with EmulatorServer(emulator_app(BlueskyEmulator(world, limit=Limit(2, LONG)))) as url:
        settings = SourcesSettings(bluesky_appview_url=url + "/bsky")
        truth = bluesky_account(world)
        async with httpx.AsyncClient() as http:
            answer = await http.get(
                f"{url}/bsky/xrpc/app.bsky.actor.getProfile", params={"actor": truth.id}
            )
        assert answer.headers["RateLimit-Limit"] == "2"
        assert answer.headers["RateLimit-Policy"] == f"2;w={int(LONG)}"
        await bluesky.get_profile(fetcher, settings, truth.id)
        with pytest.raises(SourceError) as info:
            await bluesky.get_profile(fetcher, settings, truth.id)
        assert info.value.reason == "rate_limited" and info.value.retry_after


# -- the recorded real answers --------------------------------------------------------------


def load(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((REAL / "bluesky" / name).read_text())


def test_recorded_follows_parse() -> None:
    data = load("get_follows.json")
    accounts = [bluesky.parse_profile(p) for p in data["follows"]]
    assert accounts[0].username == "why.bsky.team" and accounts[0].id.startswith("did:plc:")
    assert bluesky.parse_profile(data["subject"]).id.startswith("did:")


def test_recorded_record_with_media_post_parses() -> None:
    view = load("thread_view_post_with_embed_media.json")["thread"]["post"]
    post = bluesky.parse_post(view)
    assert post.id == "3kaheyt6vpc22" and len(post.images) == 1
    assert post.images[0].url.startswith("https://cdn.bsky.app/img/feed_fullsize/")
    settings = SourcesSettings()
    original = bluesky.parse_post(view, settings).images[0].url
    assert original == (
        "https://bsky.social/xrpc/com.atproto.sync.getBlob?did=did:plc:kvwvcn5iqfooopmyzvb4qzba"
        "&cid=bafkreic3cp5ky525vsukjvrzxsc2h3jka2gud74l2hgeatw2rhj2qycnmq"
    )


def test_gallery_and_repost_shapes() -> None:
    view = load("thread_view_post_with_embed_media.json")["thread"]["post"]
    gallery = {
        "$type": "app.bsky.embed.gallery#view",
        "items": [
            {"thumbnail": "https://cdn.bsky.app/img/feed_thumbnail/plain/did:plc:a/bafkreia@jpeg"},
            {"thumbnail": "https://cdn.bsky.app/img/feed_thumbnail/plain/did:plc:a/bafkreib@jpeg"},
        ],
    }
    item = {
        "post": dict(view, embed=gallery),
        "reason": {"$type": bluesky.REPOST, "by": view["author"]},
    }
    post = bluesky.parse_post(item)
    assert post.is_repost and [i.label for i in post.images] == ["1/2", "2/2"]


def test_emulated_answers_have_the_recorded_shape(world: ArtWorld) -> None:
    emulator = BlueskyEmulator(world)
    truth = bluesky_account(world)
    base = "http://127.0.0.1/bsky"
    real = load("get_follows.json")
    ours = emulator.profile(truth, base, detailed=False)
    keys = [
        "did",
        "handle",
        "displayName",
        "avatar",
        "labels",
        "createdAt",
        "description",
        "indexedAt",
    ]
    assert same_shape(ours, real["follows"][0], keys) == []
    real_post = load("thread_view_post_with_embed_media.json")["thread"]["post"]
    post = next(p for p in world.posts(truth) if not p.deleted)
    view = emulator.post_view(post, 1, base)  # sequence 1: recordWithMedia, as recorded
    keys = [
        "uri",
        "cid",
        "author",
        "record",
        "embed",
        "replyCount",
        "repostCount",
        "likeCount",
        "indexedAt",
        "labels",
    ]
    assert same_shape(view, real_post, keys) == []
    assert view["embed"]["$type"] == real_post["embed"]["$type"]
    assert same_shape(view["embed"]["media"], real_post["embed"]["media"]) == []


async def test_emulated_follows_page_matches_the_recording(
    sources: SourcesSettings, world: ArtWorld
) -> None:
    real = load("get_follows.json")
    truth = next(
        a for a in world.accounts if a.network == "bluesky" and len(world.following(a)) > 1
    )
    async with httpx.AsyncClient() as http:
        answer = await http.get(
            f"{sources.bluesky_appview_url}/xrpc/app.bsky.graph.getFollows",
            params={"actor": truth.id, "limit": 1},
        )
    body = answer.json()
    # the recording is a last page (no cursor); this one has more to come
    assert set(real) == {"subject", "follows"} and set(body) == {"subject", "follows", "cursor"}
    assert same_shape(body["subject"], real["subject"], keys=["did", "handle"]) == []
    keys = ["did", "handle", "displayName", "avatar", "labels", "createdAt", "indexedAt"]
    assert same_shape(body["follows"][0], real["follows"][0], keys) == []
