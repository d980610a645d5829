"""What the forum tests share."""

from __future__ import annotations

import asyncio

from sleuth.apps.forum.crawl import crawl_discourse
from sleuth.net.fetcher import Fetcher
from sleuth.services import Services
from sleuth.sources.discourse import DiscourseClient, forum_base, profile


class Failing:
    """WSGI middleware answering 404 for one path while `on`: a crawl that dies partway."""

    def __init__(self, app, path: str) -> None:  # type: ignore[no-untyped-def]
        self.app, self.path, self.on = app, path, True

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        if self.on and environ["PATH_INFO"] == self.path:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"gone\n"]
        return self.app(environ, start_response)


def crawl_emulated(services: Services, url: str, name: str = "main") -> None:
    """Crawl the emulated Discourse forum `name` served at `url`, as `sleuth forum crawl`."""

    async def go() -> None:
        async with Fetcher(allow_private=True) as fetcher:
            base = forum_base(f"{url}/discourse/{name}/latest")
            await crawl_discourse(services.engine, DiscourseClient(fetcher, base, profile(0)))

    asyncio.run(go())
