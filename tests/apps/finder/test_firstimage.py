"""Downloading an artwork's image: the largest URL that works, past an original over the cap,
a decompression bomb or a gone file; a clear error when none works."""

from __future__ import annotations

import pytest

from sleuth.apps.finder.firstimage import NoUsableImage, fetch_first_image
from sleuth.apps.finder.linkfinder import LinkFinder
from sleuth.emulator.artworld import Artwork
from sleuth.sources.profiles import AccountRef
from tests.sources.artweb import ArtWeb

pytestmark = pytest.mark.anyio


async def _anyone(_: AccountRef) -> bool:
    return True


def quirky(web: ArtWeb, quirk: str | None, site: str) -> Artwork:
    return next(
        a
        for a in web.world.artworks.values()
        if site in a.pages and web.world.original_quirk(a) == quirk
    )


async def image_urls(web: ArtWeb, artwork: Artwork, site: str) -> tuple[str, ...]:
    async with web.fetcher() as fetcher:
        result = await LinkFinder(fetcher, web.sources, _anyone).find(
            web.world.page_url(artwork, site)
        )
    return result.image_urls


async def test_the_original_comes_first(art_web: ArtWeb) -> None:
    artwork = quirky(art_web, None, "danbooru")
    urls = await image_urls(art_web, artwork, "danbooru")
    async with art_web.fetcher() as fetcher:
        got = await fetch_first_image(fetcher, urls)
    assert got.url == urls[0] and got.skipped == ()
    assert (got.width, got.height) == (artwork.width, artwork.height)
    assert got.image_type == "png"


@pytest.mark.parametrize(
    ("quirk", "site", "why"),
    [
        ("oversized", "danbooru", "too_large"),
        ("bomb", "danbooru", "too_many_pixels"),
        ("oversized", "pixiv", "too_large"),
        ("bomb", "furbooru", "too_many_pixels"),
    ],
)
async def test_an_unusable_original_falls_back_to_the_next_size(
    art_web: ArtWeb, quirk: str, site: str, why: str
) -> None:
    artwork = quirky(art_web, quirk, site)
    urls = await image_urls(art_web, artwork, site)
    headers = {"Referer": "https://www.pixiv.net/"} if site == "pixiv" else None
    async with art_web.fetcher() as fetcher:
        got = await fetch_first_image(fetcher, urls, headers=headers)
    assert got.url == urls[1]
    assert [url for url, _ in got.skipped] == [urls[0]]
    assert got.skipped[0][1].startswith(why)
    assert got.width < artwork.width or got.height < artwork.height or site == "pixiv"


async def test_a_gone_file_is_skipped(art_web: ArtWeb) -> None:
    artwork = quirky(art_web, None, "danbooru")
    urls = await image_urls(art_web, artwork, "danbooru")
    gone = f"{art_web.url}/danbooru/data/original/999999.png"
    async with art_web.fetcher() as fetcher:
        got = await fetch_first_image(fetcher, [gone, *urls])
    assert got.url == urls[0]
    assert "404" in got.skipped[0][1]


async def test_none_usable_says_why_for_each(art_web: ArtWeb) -> None:
    artwork = quirky(art_web, None, "pixiv")
    urls = await image_urls(art_web, artwork, "pixiv")
    async with art_web.fetcher() as fetcher:
        with pytest.raises(NoUsableImage) as info:
            await fetch_first_image(fetcher, urls)  # without Pixiv's Referer
        with pytest.raises(NoUsableImage) as empty:
            await fetch_first_image(fetcher, [])
    assert [url for url, _ in info.value.failures] == list(urls)
    assert all("403" in why for _, why in info.value.failures)
    assert str(info.value).startswith("no usable image: ")
    assert str(empty.value) == "no usable image: no image URL"
