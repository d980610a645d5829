"""The X connector against the emulated API v2 over loopback, and the recorded real answers
(tweepy, academictwitteR, twarc-csv) read by its parsers and compared with the emulator's."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime

import httpx
import pytest
from flask import Flask

from sleuth.config import SourcesSettings
from sleuth.emulator import EmulatorServer
from sleuth.emulator.artworld import Account, ArtWorld
from sleuth.emulator.ratelimits import Limit
from sleuth.emulator.x_api import EMULATOR_TOKEN, LIMITS, XEmulator, x_blueprint
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher
from sleuth.sources import x
from sleuth.sources.social import SourceError
from tests.sources.conftest import LONG, cassette, jsonl, recorded, same_shape

pytestmark = pytest.mark.anyio


def x_account(world: ArtWorld, private: bool = False) -> Account:
    return next(a for a in world.accounts if a.network == "x" and a.private == private)


def x_app(emulator: XEmulator) -> Flask:
    app = Flask(__name__)
    app.register_blueprint(x_blueprint(emulator))
    return app


async def test_without_a_token_every_call_is_disabled(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    off = replace(sources, x_bearer_token="")
    account = x.parse_user({"id": "1", "username": "someone", "name": ""})
    for call in (
        x.user(fetcher, off, "artist000"),
        x.timeline(fetcher, off, account),
        x.tweets(fetcher, off, ["1"]),
        x.followers(fetcher, off, account),
    ):
        with pytest.raises(SourceError) as info:
            await call
        assert info.value.reason == "disabled"
        assert "SLEUTH_SOURCES_X_BEARER_TOKEN" in info.value.message


async def test_a_wrong_token_is_unauthorized(fetcher: Fetcher, sources: SourcesSettings) -> None:
    with pytest.raises(SourceError) as info:
        await x.user(fetcher, replace(sources, x_bearer_token="wrong"), "artist000")
    assert (info.value.reason, info.value.status) == ("unauthorized", 401)


async def test_user_lookup_and_links(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    truth = x_account(world)
    account = await x.user(fetcher, sources, f"https://twitter.com/{truth.username.upper()}")
    assert (account.id, account.username) == (truth.id, truth.username)
    assert set(account.links) == set(world.profile_links(truth))
    with pytest.raises(SourceError) as info:
        await x.user(fetcher, sources, "nobody_here")
    assert info.value.reason == "not_found"
    with pytest.raises(SourceError) as bad:
        await x.user(fetcher, sources, "way_too_long_for_x_names")
    assert bad.value.reason == "bad_input"


async def test_timeline_pages_own_photos_only(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    truth = x_account(world)
    account = await x.user(fetcher, sources, truth.username)
    posts, token = [], None
    while True:
        page = await x.timeline(fetcher, sources, account, pagination_token=token, limit=7)
        posts += page.items
        if page.next is None:
            break
        token = page.next
    expected = [p for p in world.posts(truth) if not (p.deleted or p.repost_of or p.reply_to)]
    assert [p.id for p in posts] == [p.id for p in expected]
    for post, want in zip(posts, expected, strict=True):
        assert [(i.width, i.height, i.label) for i in post.images] == [
            (i.width, i.height, f"{n}/{len(want.images)}") for n, i in enumerate(want.images, 1)
        ]
        assert post.url == want.url
    newer = await x.timeline(fetcher, sources, account, since_id=expected[3].id)
    assert [p.id for p in newer.items] == [p.id for p in expected[:3]]
    image = next(p for p in expected if not p.images[0].gone)
    served = posts[expected.index(image)].images[0].url
    async with httpx.AsyncClient() as http:
        answer = await http.get(served)
    assert answer.content == world.post_image_bytes(image.images[0])


async def test_the_3200_post_window(fetcher: Fetcher) -> None:
    world = ArtWorld(0, artists=1, posts_per_account=5, big_account_posts=3300)
    with EmulatorServer(x_app(XEmulator(world, limits=None))) as url:
        settings = SourcesSettings(x_api_url=url + "/x", x_bearer_token=EMULATOR_TOKEN)
        truth = next(a for a in world.accounts if a.network == "x")
        account = await x.user(fetcher, settings, truth.username)
        posts = [p for p in world.posts(truth) if not p.deleted]  # gone from X: not counted
        for exclude_replies, window in ((True, 800), (False, 3200)):
            count, token = 0, None
            while True:
                page = await x.timeline(
                    fetcher,
                    settings,
                    account,
                    pagination_token=token,
                    exclude_replies=exclude_replies,
                )
                count += len(page.items)
                if page.next is None:
                    break
                token = page.next
            kept = [p for p in posts[:window] if not p.repost_of]
            if exclude_replies:
                kept = [p for p in kept if not p.reply_to]
            assert count == len(kept)
        assert len(posts) > x.TIMELINE_WINDOW


async def test_protected_user_and_tweet_lookup_errors(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    protected = x_account(world, private=True)
    account = await x.user(fetcher, sources, protected.username)
    assert account.private
    with pytest.raises(SourceError) as info:
        await x.timeline(fetcher, sources, account)
    assert info.value.reason == "private"
    public = x_account(world)
    listed = [p for p in world.posts(public) if not p.deleted]
    deleted = next(
        p for a in world.accounts if a.network == "x" for p in world.posts(a) if p.deleted
    )
    hidden = world.posts(protected)[0]
    page = await x.tweets(fetcher, sources, [listed[0].id, deleted.id, hidden.id])
    assert [p.id for p in page.items] == [listed[0].id]
    assert page.items[0].url == listed[0].url
    assert page.errors[0].startswith(f"{deleted.id}: not_found")
    assert page.errors[1].startswith(f"{hidden.id}: private")


async def test_followers_and_a_tier_without_them(
    fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld
) -> None:
    truth = x_account(world)
    account = await x.user(fetcher, sources, truth.username)
    ids, token = [], None
    while True:
        page = await x.followers(fetcher, sources, account, token, limit=2)
        ids += [a.id for a in page.items]
        if page.next is None:
            break
        token = page.next
    assert ids == [a.id for a in world.followers(truth)]
    following = await x.following(fetcher, sources, account)
    assert [a.id for a in following.items] == [a.id for a in world.following(truth)]
    with EmulatorServer(x_app(XEmulator(world, followers_allowed=False))) as url:
        settings = replace(sources, x_api_url=url + "/x")
        with pytest.raises(SourceError) as info:
            await x.followers(fetcher, settings, account)
    assert info.value.reason == "forbidden" and "Project" in info.value.message


async def test_rate_limit_headers_and_429(fetcher: Fetcher, world: ArtWorld) -> None:
    limits = dict(LIMITS, **{"users/by/username": Limit(2, LONG)})
    with EmulatorServer(x_app(XEmulator(world, limits=limits))) as url:
        settings = SourcesSettings(x_api_url=url + "/x", x_bearer_token=EMULATOR_TOKEN)
        async with httpx.AsyncClient() as http:
            answer = await http.get(
                f"{url}/x/2/users/by/username/artist000",
                headers={"Authorization": f"Bearer {settings.x_bearer_token}"},
            )
        assert answer.headers["x-rate-limit-limit"] == "2"
        assert answer.headers["x-rate-limit-reset"].isdigit()
        await x.user(fetcher, settings, "artist000")
        with pytest.raises(SourceError) as info:
            await x.user(fetcher, settings, "artist000")
        assert info.value.reason == "rate_limited" and info.value.retry_after


# -- the recorded real answers --------------------------------------------------------------


def test_recorded_user_and_users_parse() -> None:
    user = cassette("x/tweepy/test_client_get_user.yaml")[0]
    assert x.parse_user(user["body"]["data"]).username == "Twitter"
    full = recorded("x/academictwitter/users_lookup_ids_full_fields.json")["body"]["data"]
    accounts = [x.parse_user(u) for u in full]
    assert all(a.followers_count is not None for a in accounts)
    users = jsonl("x/twarc-csv/users.jsonl")[0]["data"]
    linked = [x.parse_user(u) for u in users if u.get("entities", {}).get("url")]
    assert linked and all(not link.startswith("https://t.co/") for a in linked for link in a.links)
    assert any(x.parse_user(u).private for u in users)


def test_recorded_timeline_pages_parse() -> None:
    page = cassette("x/tweepy/test_client_get_users_tweets.yaml")[0]["body"]
    assert len(x.parse_tweets(page)) == page["meta"]["result_count"]
    withheld = jsonl("x/twarc-csv/withheld.jsonl")[3]
    posts = x.parse_tweets(withheld)
    assert len(posts) == 100 and any(p.images for p in posts)
    assert all(i.url.startswith("https://pbs.twimg.com/") for p in posts for i in p.images)
    assert any(p.is_repost for p in posts)


def test_recorded_lookup_with_photo_and_video() -> None:
    photo = x.parse_tweets(jsonl("x/twarc-csv/edited_before.jsonl")[0])
    assert [len(p.images) for p in photo] and photo[0].images[0].width
    video = x.parse_tweets(jsonl("x/twarc-csv/media_tweet.jsonl")[0])
    assert all(not p.images for p in video)  # a video is no photo to hash


def test_recorded_partial_errors() -> None:
    unknown = recorded("x/academictwitter/users_tweets_unknown_user_200_errors_only.json")
    assert unknown["status"] == 200
    assert x.problem_error(unknown["body"]["errors"][0]).reason == "not_found"
    suspended = recorded("x/academictwitter/users_mentions_suspended_user_200_errors_only.json")
    assert x.problem_error(suspended["body"]["errors"][0]).reason == "suspended"
    empty = recorded("x/academictwitter/users_mentions_empty_result.json")["body"]
    assert x.parse_tweets(empty) == []
    unauthorized = recorded("x/academictwitter/search_all_401_unauthorized.json")
    assert "x-rate-limit-limit" not in unauthorized["headers"]
    body = json.dumps(unauthorized["body"]).encode()
    error = x.classify_error(FetchError("http_status", "recorded", 401, body=body))
    assert error is not None and error.reason == "unauthorized"
    invalid = recorded("x/academictwitter/users_lookup_400_invalid_request.json")
    exc = FetchError("http_status", "recorded", 400, body=json.dumps(invalid["body"]).encode())
    assert x.classify_error(exc) is None  # the generic reading: bad_input


def test_emulated_answers_have_the_recorded_shape(world: ArtWorld) -> None:
    emulator = XEmulator(world)
    truth = x_account(world)
    base = "http://127.0.0.1/x"
    real_user = recorded("x/academictwitter/users_lookup_ids_full_fields.json")["body"]["data"][0]
    keys = [
        "id",
        "name",
        "username",
        "created_at",
        "protected",
        "description",
        "url",
        "profile_image_url",
        "public_metrics",
        "verified",
    ]
    assert same_shape(emulator.user(truth, base), real_user, keys) == []
    real_page = jsonl("x/twarc-csv/withheld.jsonl")[3]
    post = next(p for p in world.posts(truth) if p.images and not p.repost_of)
    ours = {"data": [emulator.tweet(post)], "includes": {"media": emulator.media(post, base)}}
    assert (
        same_shape(ours["data"], real_page["data"], ["id", "text", "author_id", "created_at"]) == []
    )
    photo = next(m for m in real_page["includes"]["media"] if m["type"] == "photo")
    assert same_shape(ours["includes"]["media"][0], photo) == []
    real_401 = recorded("x/academictwitter/search_all_401_unauthorized.json")["body"]
    from sleuth.emulator.x_api import UNAUTHORIZED

    assert real_401 == UNAUTHORIZED


async def test_the_monthly_post_cap_blocks_every_endpoint_until_the_next_month(
    fetcher: Fetcher, world: ArtWorld
) -> None:
    emulator = XEmulator(world, post_cap=10)
    with EmulatorServer(x_app(emulator)) as url:
        settings = SourcesSettings(x_api_url=url + "/x", x_bearer_token=EMULATOR_TOKEN)
        account = await x.user(fetcher, settings, x_account(world).username)
        await x.timeline(fetcher, settings, account, limit=10)
        with pytest.raises(x.UsageCapped) as info:
            await x.timeline(fetcher, settings, account, limit=10)
        asked = sum(emulator.limiter.served().values()) + sum(emulator.limiter.refused().values())
        with pytest.raises(SourceError) as after:  # another endpoint: nothing is sent
            await x.user(fetcher, settings, x_account(world).username)
        assert (
            sum(emulator.limiter.served().values()) + sum(emulator.limiter.refused().values())
            == asked
        )
    capped = info.value
    assert capped.reason == "rate_limited" and "usage cap reached (monthly)" in capped.message
    # not the window's reset, which would not help: the first instant of the next UTC month
    assert capped.until == x.cap_period_end("Monthly", time.time())
    assert capped.retry_after is not None and capped.retry_after > 0
    assert after.value.reason == "rate_limited"
    assert after.value.retry_after is not None and after.value.retry_after > 0


def test_cap_periods_end_at_the_next_utc_month_or_day() -> None:
    def at(text: str) -> float:
        return datetime.fromisoformat(text).timestamp()

    assert x.cap_period_end("Monthly", at("2026-12-15T10:00:00+00:00")) == at("2027-01-01T00:00Z")
    assert x.cap_period_end("Monthly", at("2026-03-31T23:59:59+00:00")) == at("2026-04-01T00:00Z")
    assert x.cap_period_end("Daily", at("2026-12-31T10:00:00+00:00")) == at("2027-01-01T00:00Z")
    assert x.cap_period_end("", at("2026-02-28T00:00:00+00:00")) == at("2026-03-01T00:00Z")


def test_each_endpoint_has_its_own_budget_named_as_xs_table() -> None:
    assert x.endpoint("users/by/username/artist_0") == "users/by/username"
    assert x.endpoint("users/123/followers") == "users/:id/followers"
    assert x.endpoint("users/123/tweets") == "users/:id/tweets"
    assert x.endpoint("users/123") == "users/:id"
    assert x.endpoint("tweets") == "tweets"


async def test_an_invalid_id_is_bad_input(fetcher: Fetcher, sources: SourcesSettings) -> None:
    with pytest.raises(SourceError) as info:
        await x.tweets(fetcher, sources, ["NA"])
    assert (info.value.reason, info.value.status) == ("bad_input", 400)


def test_recorded_followers_and_lookup_pages_parse(world: ArtWorld) -> None:
    page = cassette("x/tweepy/test_client_get_users_followers.yaml")[0]
    accounts = [x.parse_user(u) for u in page["body"]["data"]]
    assert len(accounts) == page["body"]["meta"]["result_count"] == 100
    tweets = cassette("x/tweepy/test_client_get_tweets.yaml")[0]["body"]
    assert [p.id for p in x.parse_tweets(tweets)] == [t["id"] for t in tweets["data"]]
    partial = recorded("x/academictwitter/users_by_usernames_partial_not_found.json")["body"]
    assert [x.parse_user(u).username for u in partial["data"]]
    assert x.problem_error(partial["errors"][0]).reason == "not_found"


def test_emulated_errors_have_the_recorded_shape(world: ArtWorld) -> None:
    from sleuth.emulator.x_api import not_found

    partial = recorded("x/academictwitter/users_by_usernames_partial_not_found.json")["body"]
    ours = not_found("user", "usernames", "adljfhjsd", "usernames")
    assert ours == partial["errors"][0] | {"detail": ours["detail"]}
    assert ours["detail"] == partial["errors"][0]["detail"]
    unknown = recorded("x/academictwitter/users_tweets_unknown_user_200_errors_only.json")["body"]
    ident = unknown["errors"][0]["value"]
    assert not_found("user", "id", ident, "id") == unknown["errors"][0]


async def test_emulated_invalid_request_matches_the_recording(sources: SourcesSettings) -> None:
    real = recorded("x/academictwitter/users_lookup_400_invalid_request.json")
    async with httpx.AsyncClient() as http:
        answer = await http.get(
            f"{sources.x_api_url}/2/tweets",
            params={"ids": "NA,NA,NA"},
            headers={"Authorization": f"Bearer {sources.x_bearer_token}"},
        )
    assert answer.status_code == real["status"] == 400
    assert answer.headers["content-type"] == real["headers"]["content-type"]
    assert same_shape(answer.json(), real["body"]) == []
    assert set(answer.json()) == set(real["body"])


async def test_emulated_followers_page_matches_the_recording(
    sources: SourcesSettings, world: ArtWorld
) -> None:
    real = cassette("x/tweepy/test_client_get_users_followers.yaml")[0]["body"]
    truth = x_account(world)
    async with httpx.AsyncClient() as http:
        answer = await http.get(
            f"{sources.x_api_url}/2/users/{truth.id}/followers",
            params={"max_results": 1},
            headers={"Authorization": f"Bearer {sources.x_bearer_token}"},
        )
    body = answer.json()
    assert same_shape(body, real) == [] and set(body["meta"]) == set(real["meta"])


async def test_emulated_timeline_page_matches_the_recording(
    sources: SourcesSettings, world: ArtWorld
) -> None:
    real = cassette("x/tweepy/test_client_get_users_tweets.yaml")[0]
    truth = x_account(world)
    async with httpx.AsyncClient() as http:
        answer = await http.get(
            f"{sources.x_api_url}/2/users/{truth.id}/tweets",
            headers={"Authorization": f"Bearer {sources.x_bearer_token}"},
        )
    body = answer.json()
    assert set(body) == set(real["body"]) and set(body["meta"]) == set(real["body"]["meta"])
    assert same_shape(body["data"], real["body"]["data"]) == []
    assert answer.headers["content-type"] == real["headers"]["content-type"]
    assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= set(
        real["headers"]
    )


async def test_user_by_id(fetcher: Fetcher, sources: SourcesSettings, world: ArtWorld) -> None:
    truth = x_account(world)
    assert (await x.user_by_id(fetcher, sources, truth.id)).username == truth.username
    with pytest.raises(SourceError) as info:
        await x.user_by_id(fetcher, sources, "1")
    assert info.value.reason == "not_found"
    with pytest.raises(SourceError) as bad:
        await x.user_by_id(fetcher, sources, "artist000")
    assert bad.value.reason == "bad_input"
