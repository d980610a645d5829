"""The art sites of a small ArtWorld, served over loopback, and settings pointing at them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sleuth.config import NetSettings, SourcesSettings
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.artworld import Account, ArtWorld
from sleuth.net.fetcher import Fetcher
from sleuth.sources.profiles import AccountRef

SEED = 1


def small_world() -> ArtWorld:
    """8 artists (link hubs of both kinds among them), 24 artworks on every art site."""
    return ArtWorld(seed=SEED, artists=8, artworks_per_artist=3, posts_per_account=3)


@dataclass(frozen=True)
class ArtWeb:
    world: ArtWorld
    url: str
    sources: SourcesSettings

    def fetcher(self) -> Fetcher:
        settings = NetSettings(retries=0, connect_timeout=10.0, read_timeout=30.0)
        return Fetcher(settings, allow_private=True, backoff=0.01)


def sources_for(url: str) -> SourcesSettings:
    return SourcesSettings(
        danbooru_url=f"{url}/danbooru",
        derpibooru_url=f"{url}/derpibooru",
        furbooru_url=f"{url}/furbooru",
        deviantart_url=f"{url}/deviantart",
        deviantart_oembed_url=f"{url}/deviantart-backend/oembed",
        pixiv_url=f"{url}/pixiv",
        linktree_url=f"{url}/linktree",
        carrd_url=f"{url}/carrd/{{name}}",
    )


def serve_art_web() -> Iterator[ArtWeb]:
    world = small_world()
    with EmulatorServer(create_imagehost_app(seed=SEED, world=world)) as url:
        yield ArtWeb(world, url, sources_for(url))


def ref(account: Account) -> AccountRef:
    """The ref a link finder must give for a world's account."""
    return AccountRef(account.network, account.server, account.username.lower())
