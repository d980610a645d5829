"""The offline web: local servers that imitate real sources, for tests, benchmarks and demos.

`server` runs any emulator WSGI app over loopback; `world` generates everything from a seed;
`imagehost` is the picsum.photos-shaped image host; `artworld` the artists' world and its
ground truth, served by `artsites` (Danbooru, Philomena, DeviantArt, Pixiv, link hubs);
`socialworld` the same grown to thousands of accounts with a power-law follow graph;
`urls` writes seed-shaped URL lists and the outcomes a crawl of them must report.
"""

from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer, serve_forever
from sleuth.emulator.urls import expected_outcomes, seed_shaped_urls
from sleuth.emulator.world import photo, photo_jpeg

__all__ = [
    "EmulatorServer",
    "create_imagehost_app",
    "expected_outcomes",
    "photo",
    "photo_jpeg",
    "seed_shaped_urls",
    "serve_forever",
]
