"""The link finder over the emulated art sites: every artwork of a small world found with
exactly its artist's accounts (the ground truth), and each of AOTF's error codes."""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import Any

import pytest

from sleuth.apps.finder.linkfinder import Exists, LinkFinder, LinkFinderError
from sleuth.emulator.artsites import DELETED_IMAGE_OFFSET, HIDDEN_POST_OFFSET, ArtSites
from sleuth.emulator.artworld import ArtWorld
from sleuth.sources.artpage import ArtPage
from sleuth.sources.profiles import AccountRef
from tests.sources.artweb import ArtWeb, ref

pytestmark = pytest.mark.anyio


def exists_in(world: ArtWorld, asked: list[AccountRef] | None = None) -> Exists:
    """The world's answer to "does this account exist?", as the social connectors give it."""

    async def exists(account: AccountRef) -> bool:
        if asked is not None:
            asked.append(account)
        found = world.account(account.network, account.username)
        return found is not None and found.server == account.server

    return exists


def truth_refs(entry: dict[str, Any]) -> set[AccountRef]:
    """The artwork's accounts as the ground truth writes them, as refs."""
    out = set()
    for account in entry["accounts"]:
        name, _, server = str(account["account"]).partition("@")
        network = account["network"]
        home = {"x": "x.com", "bluesky": "bsky.social"}.get(network, server)
        out.add(AccountRef(network, home, name.lower()))
    return out


async def test_every_artwork_page_gives_exactly_its_artists_accounts(art_web: ArtWeb) -> None:
    world = art_web.world
    truth = world.ground_truth()
    pages = 0
    async with art_web.fetcher() as fetcher:
        finder = LinkFinder(fetcher, art_web.sources, exists_in(world))
        for entry in truth:
            artwork = world.artworks[entry["artwork"]]
            for site, url in entry["page_urls"].items():
                result = await finder.find(url)
                assert result.site == site
                assert len(result.accounts) == len(set(result.accounts))
                assert set(result.accounts) == truth_refs(entry), (url, result.accounts)
                assert result.image_urls, url
                assert result.created_at is not None
                assert abs((result.created_at - artwork.created_at).total_seconds()) <= 3 * 3600
                pages += 1
    assert pages == sum(len(a.pages) for a in world.artworks.values()) >= 40


async def test_accounts_reached_only_through_a_hub_need_depth_two(art_web: ArtWeb) -> None:
    world = art_web.world
    artwork = next(
        a for a in world.artworks.values() if world.artists[a.artist].link_hub and a.pages
    )
    url = world.page_url(artwork, next(iter(artwork.pages)))
    async with art_web.fetcher() as fetcher:
        deep = LinkFinder(fetcher, art_web.sources, exists_in(world))
        assert (await deep.find(url)).accounts
        shallow = LinkFinder(fetcher, art_web.sources, exists_in(world), max_depth=1)
        with pytest.raises(LinkFinderError) as info:
            await shallow.find(url)
    assert info.value.code == "NO_TWITTER_ACCOUNT_FOUND"


async def test_an_unreadable_hub_is_skipped_not_fatal(art_web: ArtWeb) -> None:
    world = art_web.world
    artist = next(a for a in world.artists if a.link_hub == "linktree")
    url = world.page_url(
        world.artworks[artist.artworks[0]], next(iter(world.artworks[artist.artworks[0]].pages))
    )
    broken = replace(art_web.sources, linktree_url=f"{art_web.url}/carrd")  # no __NEXT_DATA__
    async with art_web.fetcher() as fetcher:
        finder = LinkFinder(fetcher, broken, exists_in(world))
        with pytest.raises(LinkFinderError) as info:
            await finder.find(url)
    assert info.value.code == "NO_TWITTER_ACCOUNT_FOUND"


async def test_block_list_and_the_sites_own_accounts_are_dropped(art_web: ArtWeb) -> None:
    world = art_web.world
    artwork = next(
        a
        for a in world.artworks.values()
        if "deviantart" in a.pages and world.artists[a.artist].link_hub is None
    )
    artist = world.artists[artwork.artist]
    url = world.page_url(artwork, "deviantart")
    first, *rest = artist.accounts
    asked: list[AccountRef] = []
    async with art_web.fetcher() as fetcher:
        finder = LinkFinder(
            fetcher, art_web.sources, exists_in(world, asked), block_list=[str(ref(first))]
        )
        result = await finder.find(url)
        by_name = LinkFinder(
            fetcher, art_web.sources, exists_in(world), block_list=[f"@{artist.name.upper()}"]
        )
        named = await by_name.find(url)
        everyone = LinkFinder(
            fetcher,
            art_web.sources,
            exists_in(world),
            block_list=[str(r) for r in await finder.accounts(await finder.page(url))],
        )
        with pytest.raises(LinkFinderError) as info:
            await everyone.find(url)
    assert set(result.accounts) == {ref(a) for a in rest}
    # A bare name blocks it on every network.
    assert {r.username for r in named.accounts} == {a.username for a in artist.accounts} - {
        "artist001"
    }
    # `twitter.com/deviantart` is on the page, but never asked about.
    assert "deviantart" not in {r.username for r in asked}
    assert info.value.code == "NO_TWITTER_ACCOUNT_FOUND"


async def test_no_valid_account_when_none_exists(art_web: ArtWeb) -> None:
    world = art_web.world
    artwork = next(iter(world.artworks.values()))
    url = world.page_url(artwork, next(iter(artwork.pages)))

    async def nobody(_: AccountRef) -> bool:
        return False

    async with art_web.fetcher() as fetcher:
        with pytest.raises(LinkFinderError) as info:
            await LinkFinder(fetcher, art_web.sources, nobody).find(url)
    assert info.value.code == "NO_VALID_TWITTER_ACCOUNT_FOUND"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/art/1",
        "https://www.artstation.com/artwork/abc",
        "https://x.com/someone/status/1",
        "ftp//nothing",
    ],
)
async def test_unsupported_websites(art_web: ArtWeb, url: str) -> None:
    async with art_web.fetcher() as fetcher:
        with pytest.raises(LinkFinderError) as info:
            await LinkFinder(fetcher, art_web.sources, exists_in(art_web.world)).find(url)
    assert info.value.code == "UNSUPPORTED_WEBSITE"


async def test_pages_that_are_no_artwork(art_web: ArtWeb) -> None:
    world = art_web.world
    booru = next(a for a in world.artworks.values() if "danbooru" in a.pages)
    derpi = next(a for a in world.artworks.values() if "derpibooru" in a.pages)
    work = next(a for a in world.artworks.values() if "pixiv" in a.pages)
    pixiv_url = world.page_url(work, "pixiv")
    urls = [
        "https://danbooru.donmai.us/artists/5",  # a page of the site, not a post
        "https://danbooru.donmai.us/posts/1",  # 404
        f"https://danbooru.donmai.us/posts/{int(booru.pages['danbooru']) + HIDDEN_POST_OFFSET}",
        f"https://derpibooru.org/images/{int(derpi.pages['derpibooru']) + DELETED_IMAGE_OFFSET}",
        "https://www.deviantart.com/someone/art/Missing-1",
        "https://www.deviantart.com/someone",
        f"{pixiv_url}#201",  # beyond AOTF's 200
        f"{pixiv_url}#{2 + work.id % 3}",  # beyond this work's images
        "https://www.pixiv.net/artworks/1",
    ]
    async with art_web.fetcher() as fetcher:
        finder = LinkFinder(fetcher, art_web.sources, exists_in(world))
        for url in urls:
            with pytest.raises(LinkFinderError) as info:
                await finder.find(url)
            assert info.value.code == "NOT_AN_ARTWORK_PAGE", url


async def test_pixiv_image_choice(art_web: ArtWeb) -> None:
    world = art_web.world
    work = next(a for a in world.artworks.values() if "pixiv" in a.pages and a.id % 3)
    url = world.page_url(work, "pixiv")
    async with art_web.fetcher() as fetcher:
        finder = LinkFinder(fetcher, art_web.sources, exists_in(world))
        first, second = await finder.find(url), await finder.find(url + "#2")
    assert first.image_urls[0].endswith("_p0.png") and second.image_urls[0].endswith("_p1.png")
    assert second.image_headers == {"Referer": "https://www.pixiv.net/"}


async def test_an_unreachable_site_is_a_retryable_processing_error(art_web: ArtWeb) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = replace(art_web.sources, danbooru_url=f"http://127.0.0.1:{port}")
    async with art_web.fetcher() as fetcher:
        with pytest.raises(LinkFinderError) as info:
            await LinkFinder(fetcher, down, exists_in(art_web.world)).find(
                "https://danbooru.donmai.us/posts/1"
            )
    assert info.value.code == "PROCESSING_ERROR" and info.value.retryable


async def test_an_artist_danbooru_does_not_know_is_found_through_the_post_source(
    art_web: ArtWeb,
) -> None:
    world = art_web.world
    sites = ArtSites(world)
    artwork = next(
        a
        for a in world.artworks.values()
        if "danbooru" in a.pages and not sites.danbooru_knows(sites.artist(a))
    )
    url = world.page_url(artwork, "danbooru")
    async with art_web.fetcher() as fetcher:
        finder = LinkFinder(fetcher, art_web.sources, exists_in(world))
        page = await finder.page(url)
        result = await finder.find(url)
    assert page.links == () and page.sources  # nothing but the work it was taken from
    assert set(result.accounts) == {ref(a) for a in sites.artist(artwork).accounts}


async def test_a_source_gets_one_more_hop_than_a_link(art_web: ArtWeb) -> None:
    world = art_web.world
    artwork = next(
        a
        for a in world.artworks.values()
        if "pixiv" in a.pages and world.artists[a.artist].link_hub
    )
    work = world.page_url(artwork, "pixiv")
    # The Pixiv profile names only the hub: depth 2 from a source, still followed at MAX_DEPTH 2.
    as_source = ArtPage(
        "danbooru", "https://danbooru.donmai.us/posts/1", (), None, (), sources=(work,)
    )
    as_link = replace(as_source, links=(work,), sources=())
    async with art_web.fetcher() as fetcher:
        finder = LinkFinder(fetcher, art_web.sources, exists_in(world))
        found = await finder.accounts(as_source)
        not_followed = await finder.accounts(as_link)
        shallow = await LinkFinder(
            fetcher, art_web.sources, exists_in(world), max_depth=1
        ).accounts(as_source)
    assert set(found) == {ref(a) for a in world.artists[artwork.artist].accounts}
    assert not_followed == []  # a plain link to a work is no account, and not read
    assert shallow == []  # the source's hub is at depth 2, beyond 1 + 1


async def test_sources_that_cannot_be_read_are_skipped(art_web: ArtWeb) -> None:
    world = art_web.world
    artist = next(a for a in world.artists if any(x.network == "x" for x in a.accounts))
    x = next(a for a in artist.accounts if a.network == "x")
    page = ArtPage(
        "derpibooru",
        "https://derpibooru.org/images/1",
        (),
        None,
        (),
        sources=(
            "https://www.pixiv.net/artworks/1",  # 404
            "https://example.com/art/1",  # no site the finder reads
            f"https://twitter.com/{x.username}/status/123",  # a post names its account
        ),
    )
    async with art_web.fetcher() as fetcher:
        found = await LinkFinder(fetcher, art_web.sources, exists_in(world)).accounts(page)
    assert found == [ref(x)]


async def test_gated_linktree_links_are_found(art_web: ArtWeb) -> None:
    world = art_web.world
    artist = next(a for a in world.artists if a.link_hub == "linktree" and a.index % 2 == 0)
    artwork = world.artworks[artist.artworks[0]]
    url = world.page_url(artwork, next(iter(artwork.pages)))
    async with art_web.fetcher() as fetcher:
        result = await LinkFinder(fetcher, art_web.sources, exists_in(world)).find(url)
    gated = {ref(a) for a in artist.accounts if a.network != "x"}
    assert gated and gated <= set(result.accounts)
