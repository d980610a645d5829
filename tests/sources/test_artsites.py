"""Each art-site connector against its emulator over loopback: images largest first, dates,
artists, profile links, and every stated failure."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from sleuth.emulator.artsites import (
    DELETED_IMAGE_OFFSET,
    HIDDEN_POST_OFFSET,
    LINKTREE_ACCOUNT_BASE,
    MERGED_IMAGE_OFFSET,
    PIXIV_USER_BASE,
    ArtSites,
)
from sleuth.emulator.artworld import Artwork
from sleuth.net.errors import FetchError
from sleuth.sources import danbooru, deviantart, philomena, pixiv
from sleuth.sources.artpage import ArtSiteError
from sleuth.sources.linkhubs import HubRef, LinkHubs, hub_of, linktree_links
from sleuth.sources.profiles import parse_profile_url
from tests.sources.artweb import ArtWeb, ref

pytestmark = pytest.mark.anyio


def on(web: ArtWeb, site: str, hub: bool = False) -> list[Artwork]:
    """The artworks on `site` whose artist has (`hub`) or has not a link hub."""
    return [
        a
        for a in web.world.artworks.values()
        if site in a.pages and (web.world.artists[a.artist].link_hub is not None) == hub
    ]


def on_danbooru(web: ArtWeb) -> list[Artwork]:
    return [a for a in web.world.artworks.values() if "danbooru" in a.pages]


async def test_danbooru_post_gives_files_largest_first_date_and_active_links(
    art_web: ArtWeb,
) -> None:
    artwork = next(a for a in on(art_web, "danbooru") if art_web.world.original_quirk(a) is None)
    artist = art_web.world.artists[artwork.artist]
    page = artwork.pages["danbooru"]
    async with art_web.fetcher() as fetcher:
        client = danbooru.Danbooru(fetcher, art_web.sources.danbooru_url)
        got = await client.page(art_web.world.page_url(artwork, "danbooru"), page)
        sizes = []
        for url in got.image_urls:
            result = await fetcher.get(url, expect="image")
            sizes.append(len(result.body))
            if url == got.image_urls[0]:
                assert result.image_type == "png"
    assert "/original/" in got.image_urls[0]
    assert "/720x720/" in got.image_urls[-1]
    assert sizes == sorted(sizes, reverse=True)
    assert got.artists == (artist.name,)
    assert got.created_at is not None and got.created_at.utcoffset() is not None
    assert abs((got.created_at - artwork.created_at).total_seconds()) <= 3 * 3600
    # The dead link (is_active false) is skipped; each active one names an account or hub.
    assert not any(link.endswith("_old") for link in got.links)
    named = {parse_profile_url(link) for link in got.links} - {None}
    assert named == {ref(a) for a in artist.accounts}


async def test_an_artist_with_a_link_hub_lists_only_the_hub(art_web: ArtWeb) -> None:
    artwork = on(art_web, "danbooru", hub=True)[0]
    artist = art_web.world.artists[artwork.artist]
    async with art_web.fetcher() as fetcher:
        client = danbooru.Danbooru(fetcher, art_web.sources.danbooru_url)
        got = await client.page("u", artwork.pages["danbooru"])
    assert [hub_of(link) for link in got.links] == [HubRef(str(artist.link_hub), artist.name)]


async def test_danbooru_hidden_and_missing_posts(art_web: ArtWeb) -> None:
    page = on(art_web, "danbooru")[0].pages["danbooru"]
    hidden = str(int(page) + HIDDEN_POST_OFFSET)
    async with art_web.fetcher() as fetcher:
        client = danbooru.Danbooru(fetcher, art_web.sources.danbooru_url)
        with pytest.raises(ArtSiteError) as info:
            await client.page("https://danbooru.donmai.us/posts/" + hidden, hidden)
        assert info.value.reason == "hidden"
        with pytest.raises(ArtSiteError) as info:
            await client.page("https://danbooru.donmai.us/posts/1", "1")
        assert info.value.reason == "not_found" and info.value.status == 404
        assert await client.artist_urls("nobody") == []


async def test_an_untagged_danbooru_post_finds_its_artist_by_its_source(art_web: ArtWeb) -> None:
    sites = ArtSites(art_web.world)
    artwork = next(
        a
        for a in on_danbooru(art_web)
        if sites.danbooru_untagged(a) and sites.danbooru_knows(sites.artist(a))
    )
    artist = sites.artist(artwork)
    async with art_web.fetcher() as fetcher:
        client = danbooru.Danbooru(fetcher, art_web.sources.danbooru_url)
        got = await client.page("u", artwork.pages["danbooru"])
        by_url = await client.artist_urls(got.sources[0], key="url_matches")
        unknown = await client.artist_urls("https://www.pixiv.net/artworks/1", key="url_matches")
    assert got.artists == ()
    assert got.sources[0] == sites.danbooru_source(artwork)
    assert "/artworks/" in got.sources[0] or "/art/" in got.sources[0]
    assert got.links and set(got.links) == set(by_url)
    named = {parse_profile_url(link) for link in got.links} - {None}
    hubs = {hub_of(link) for link in got.links} - {None}
    assert named == {ref(a) for a in artist.accounts} or hubs
    assert unknown == []


async def test_an_artist_danbooru_does_not_know_leaves_only_the_source(art_web: ArtWeb) -> None:
    sites = ArtSites(art_web.world)
    artwork = next(a for a in on_danbooru(art_web) if not sites.danbooru_knows(sites.artist(a)))
    async with art_web.fetcher() as fetcher:
        client = danbooru.Danbooru(fetcher, art_web.sources.danbooru_url)
        got = await client.page("u", artwork.pages["danbooru"])
    assert got.links == ()
    assert got.sources and got.sources[0] == sites.danbooru_source(artwork)


async def test_a_danbooru_post_taken_from_x_cites_the_post(art_web: ArtWeb) -> None:
    sites = ArtSites(art_web.world)
    artwork = next(
        a
        for a in on_danbooru(art_web)
        if sites.danbooru_source(a).startswith("https://twitter.com/")
    )
    async with art_web.fetcher() as fetcher:
        client = danbooru.Danbooru(fetcher, art_web.sources.danbooru_url)
        got = await client.page("u", artwork.pages["danbooru"])
        by_url = await client.artist_urls(got.sources[0], key="url_matches")
    x = next(a for a in sites.artist(artwork).accounts if a.network == "x")
    assert got.sources[0].startswith(f"https://twitter.com/{x.username}/status/")
    assert parse_profile_url(got.sources[0]) == ref(x)
    assert set(by_url) == set(got.links)


def test_danbooru_recognises_post_urls() -> None:
    assert danbooru.post_id(urlsplit("https://danbooru.donmai.us/posts/123?q=x")) == "123"
    assert danbooru.post_id(urlsplit("https://danbooru.donmai.us/posts/123.json")) == "123"
    assert danbooru.post_id(urlsplit("https://danbooru.donmai.us/artists/5")) is None
    assert danbooru.post_id(urlsplit("https://danbooru.donmai.us/posts")) is None


@pytest.mark.parametrize("site", ["derpibooru", "furbooru"])
async def test_philomena_image_its_merged_copy_and_a_deleted_one(
    art_web: ArtWeb, site: str
) -> None:
    artwork = on(art_web, site)[0]
    artist = art_web.world.artists[artwork.artist]
    page = artwork.pages[site]
    base = getattr(art_web.sources, f"{site}_url")
    async with art_web.fetcher() as fetcher:
        client = philomena.Philomena(fetcher, site, base)
        got = await client.page(art_web.world.page_url(artwork, site), page)
        merged_id = str(int(page) + MERGED_IMAGE_OFFSET)
        merged = await client.page(f"https://{site}.org/images/{merged_id}", merged_id)
        deleted_id = str(int(page) + DELETED_IMAGE_OFFSET)
        with pytest.raises(ArtSiteError) as deleted:
            await client.page(f"https://{site}.org/{deleted_id}", deleted_id)
        with pytest.raises(ArtSiteError) as missing:
            await client.page(f"https://{site}.org/1", "1")
    assert got.image_urls[0].endswith(f"/img/view/{page}.png") or art_web.world.original_quirk(
        artwork
    )
    assert got.image_urls[-1].endswith(f"/img/{page}/large.jpg")
    assert merged.image_urls == got.image_urls and merged.artists == (artist.name,)
    assert got.created_at is not None
    assert deleted.value.reason == "not_found" and "Rule #1" in deleted.value.detail
    assert missing.value.reason == "not_found"
    assert {parse_profile_url(u) for u in got.links} == {ref(a) for a in artist.accounts}


def test_philomena_recognises_image_urls() -> None:
    assert philomena.image_id(urlsplit("https://derpibooru.org/images/2234605")) == "2234605"
    assert philomena.image_id(urlsplit("https://derpibooru.org/2234605")) == "2234605"
    assert philomena.image_id(urlsplit("https://derpibooru.org/tags/safe")) is None


async def test_deviantart_oembed_and_about_page(art_web: ArtWeb) -> None:
    artwork = on(art_web, "deviantart")[0]
    artist = art_web.world.artists[artwork.artist]
    url = art_web.world.page_url(artwork, "deviantart")
    work = deviantart.deviation(urlsplit(url))
    assert work == url
    async with art_web.fetcher() as fetcher:
        client = deviantart.DeviantArt(
            fetcher, art_web.sources.deviantart_url, art_web.sources.deviantart_oembed_url
        )
        got = await client.page(url, url)
        image = await fetcher.get(got.image_urls[0], expect="image")
        with pytest.raises(ArtSiteError) as missing:
            await client.page(url, url.replace(f"-{artwork.pages['deviantart']}", "-1"))
        assert await client.about_links("nobody") == []
    assert image.image_type == "png"
    assert got.artists == (artist.name,)
    assert got.created_at is not None and got.created_at.utcoffset() is not None
    assert missing.value.reason == "not_found"
    # The about page lists noise too (the site's own account, X's pages, other sites).
    assert "https://twitter.com/deviantart" in got.links
    named = {parse_profile_url(u) for u in got.links} - {None}
    # The site's own account is read too: the link finder drops it (EXCLUDED_NAMES).
    site_account = parse_profile_url("https://x.com/deviantart")
    assert named == {ref(a) for a in artist.accounts} | {site_account}


def test_deviantart_recognises_both_url_forms() -> None:
    new = "https://www.deviantart.com/someone/art/Title-Words-12345"
    assert deviantart.deviation(urlsplit(new)) == new
    assert deviantart.deviation(urlsplit("https://someone.deviantart.com/art/Title-12345")) == (
        "https://www.deviantart.com/someone/art/Title-12345"
    )
    assert deviantart.deviation(urlsplit("https://www.deviantart.com/someone")) is None


async def test_deviantart_oembed_that_is_not_json_is_a_bad_response(art_web: ArtWeb) -> None:
    artwork = on(art_web, "deviantart")[0]
    url = art_web.world.page_url(artwork, "deviantart")
    async with art_web.fetcher() as fetcher:
        # An HTML page where the oEmbed JSON should be.
        wrong = f"{art_web.url}/deviantart/{art_web.world.artists[artwork.artist].name}/about"
        client = deviantart.DeviantArt(fetcher, art_web.sources.deviantart_url, wrong)
        with pytest.raises(ArtSiteError) as info:
            await client.page(url, url)
    assert info.value.reason == "bad_response"


def test_pixiv_recognises_artworks_and_image_numbers() -> None:
    def parse(url: str) -> pixiv.IllustRef | None:
        return pixiv.illust_ref(urlsplit(url))

    assert parse("https://www.pixiv.net/artworks/82699500") == ("82699500", 1)
    assert parse("https://www.pixiv.net/en/artworks/82699500#3") == ("82699500", 3)
    assert parse("https://www.pixiv.net/artworks/82699500#200") == ("82699500", 200)
    assert parse("https://www.pixiv.net/member_illust.php?illust_id=5&mode=medium") == ("5", 1)
    for bad in ("#0", "#201", "#x"):
        assert parse("https://www.pixiv.net/artworks/82699500" + bad) is None
    assert parse("https://www.pixiv.net/users/123") is None


async def test_pixiv_pages_user_links_and_the_referer_downloads_need(art_web: ArtWeb) -> None:
    works = on(art_web, "pixiv")
    artwork = next(a for a in works if a.id % 3 and art_web.world.original_quirk(a) is None)
    artist = art_web.world.artists[artwork.artist]
    illust = artwork.pages["pixiv"]
    async with art_web.fetcher() as fetcher:
        client = pixiv.Pixiv(fetcher, art_web.sources.pixiv_url)
        first = await client.page("u", pixiv.IllustRef(illust, 1))
        second = await client.page("u", pixiv.IllustRef(illust, 2))
        with pytest.raises(ArtSiteError) as beyond:
            await client.page("u", pixiv.IllustRef(illust, 1 + 1 + artwork.id % 3))
        with pytest.raises(ArtSiteError) as missing:
            await client.page("u", pixiv.IllustRef("1", 1))
        with pytest.raises(FetchError) as refused:
            await fetcher.get(first.image_urls[0], expect="image")
        image = await fetcher.get(first.image_urls[0], expect="image", headers=first.image_headers)
        assert await client.user_links("1") == ([], [])
        banned = PIXIV_USER_BASE + len(art_web.world.artists)
        assert await client.user_links(str(banned)) == ([], [])  # 403: suspended
        with pytest.raises(FetchError) as suspended:
            await fetcher.get(f"{art_web.sources.pixiv_url}/ajax/user/{banned}")
        assert suspended.value.status == 403
    assert first.image_urls[0].endswith(f"/{illust}_p0.png")
    assert first.image_urls[1].endswith(f"/{illust}_p0_master1200.jpg")
    assert second.image_urls[0].endswith(f"/{illust}_p1.png")
    assert beyond.value.reason == "no_such_image"
    assert missing.value.reason == "not_found"
    assert refused.value.status == 403
    assert image.image_type == "png"
    assert first.image_headers == {"Referer": "https://www.pixiv.net/"}
    assert first.artists == (artist.name,)
    assert first.created_at is not None


async def test_link_hubs(art_web: ArtWeb) -> None:
    hubbed = [a for a in art_web.world.artists if a.link_hub]
    assert {a.link_hub for a in hubbed} == {"linktree", "carrd"}
    async with art_web.fetcher() as fetcher:
        hubs = LinkHubs(fetcher, art_web.sources)
        for artist in hubbed:
            for kind in ("linktree", "carrd"):
                links = await hubs.links(HubRef(kind, artist.name))
                named = {parse_profile_url(u) for u in links} - {None}
                assert named == {ref(a) for a in artist.accounts}
        with pytest.raises(ArtSiteError) as missing:
            await hubs.links(HubRef("linktree", "nobody"))
        # A carrd page where a Linktree page should be: no __NEXT_DATA__.
        wrong = LinkHubs(fetcher, replace(art_web.sources, linktree_url=f"{art_web.url}/carrd"))
        with pytest.raises(ArtSiteError) as unreadable:
            await wrong.links(HubRef("linktree", hubbed[0].name))
    assert missing.value.reason == "not_found"
    assert unreadable.value.reason == "bad_response"


async def test_linktree_sensitive_links_are_unlocked_through_the_gates(art_web: ArtWeb) -> None:
    artist = next(a for a in art_web.world.artists if a.link_hub and a.index % 2 == 0)
    gated = {ref(a) for a in artist.accounts if a.network != "x"}
    assert gated
    async with art_web.fetcher() as fetcher:
        page = await fetcher.get(f"{art_web.sources.linktree_url}/{artist.name}")
        tree = linktree_links(page.body.decode())
        hubs = LinkHubs(fetcher, art_web.sources)
        unlocked = await hubs.unlock(artist.name, LINKTREE_ACCOUNT_BASE + artist.index, tree.locked)
        links = await hubs.links(HubRef("linktree", artist.name))
        with pytest.raises(ArtSiteError) as nobody:
            await hubs.unlock("nobody", LINKTREE_ACCOUNT_BASE - 1, tree.locked)
        gates = f"{art_web.sources.linktree_url}/api/profiles/validation/gates"
        with pytest.raises(FetchError) as bad:
            await fetcher.post(gates, json={"accountId": "x"})
    assert tree.account_id == LINKTREE_ACCOUNT_BASE + artist.index
    assert len(tree.locked) == len(gated)
    assert not {parse_profile_url(u) for u in tree.urls} & gated  # the page hides them
    assert {parse_profile_url(u) for u in unlocked} == gated
    assert {parse_profile_url(u) for u in links} - {None} == {ref(a) for a in artist.accounts}
    assert nobody.value.reason == "not_found"
    assert bad.value.status == 400


def test_a_linktree_page_without_locked_links_needs_no_gate() -> None:
    data = {
        "props": {
            "pageProps": {
                "account": {"id": 7, "socialLinks": [{"type": "X", "url": "https://x.com/a"}]},
                "links": [{"id": "5", "url": "https://bsky.app/profile/a.bsky.social"}],
            }
        }
    }
    html = f'<script id="__NEXT_DATA__">{json.dumps(data)}</script>'
    assert linktree_links(html) == (
        ["https://bsky.app/profile/a.bsky.social", "https://x.com/a"],
        7,
        [],
    )
    locked = {**data["props"]["pageProps"]["links"][0], "url": None, "locked": True}
    data["props"]["pageProps"]["links"] = [locked]
    assert linktree_links(f'<script id="__NEXT_DATA__">{json.dumps(data)}</script>').locked == [5]


def test_hub_urls() -> None:
    assert hub_of("https://linktr.ee/Reubenwu") == HubRef("linktree", "reubenwu")
    assert hub_of("linktr.ee/someone") == HubRef("linktree", "someone")
    assert hub_of("https://someone.carrd.co/#links") == HubRef("carrd", "someone")
    assert hub_of("https://linktr.ee/") is None
    assert hub_of("https://carrd.co") is None
    assert hub_of("https://x.com/someone") is None


async def test_an_unreachable_site_is_unavailable_and_retryable(art_web: ArtWeb) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with art_web.fetcher() as fetcher:
        client = danbooru.Danbooru(fetcher, f"http://127.0.0.1:{port}")
        with pytest.raises(ArtSiteError) as info:
            await client.page("u", "1")
    assert info.value.reason == "unavailable" and info.value.retryable


async def test_a_document_of_the_wrong_shape_is_a_bad_response(art_web: ArtWeb) -> None:
    # A base whose every "post" is the artists search's answer: a JSON list, not a post.
    wrong = f"{art_web.sources.danbooru_url}/artists.json?"
    async with art_web.fetcher() as fetcher:
        with pytest.raises(ArtSiteError) as info:
            await danbooru.Danbooru(fetcher, wrong).page("u", "1")
    assert info.value.reason == "bad_response"
    assert "is list, not dict" in info.value.detail
