"""`sleuth emulator ...`: serve the offline web and write URL lists against it."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import TextIO

import click

from sleuth.config import SourcesSettings
from sleuth.emulator.artworld import ArtWorld
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import serve_forever
from sleuth.emulator.urls import seed_shaped_urls
from sleuth.emulator.x_api import EMULATOR_TOKEN

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
SOURCE_PREFIXES = {
    "x_api_url": "/x",
    "mastodon_url": "/mastodon/{server}",
    "bluesky_appview_url": "/bsky",
    "bluesky_pds_url": "/bsky-pds",
    "danbooru_url": "/danbooru",
    "derpibooru_url": "/derpibooru",
    "furbooru_url": "/furbooru",
    "deviantart_url": "/deviantart",
    "deviantart_oembed_url": "/deviantart-backend/oembed",
    "pixiv_url": "/pixiv",
    "linktree_url": "/linktree",
    "carrd_url": "/carrd/{name}",
}
"""Where the emulator serves each `SourcesSettings` URL."""


def emulator_sources(base_url: str) -> dict[str, str]:
    """Every `SourcesSettings` field pointed at the emulator at `base_url`, and its X token."""
    values = {name: base_url.rstrip("/") + prefix for name, prefix in SOURCE_PREFIXES.items()}
    values["x_bearer_token"] = EMULATOR_TOKEN
    missing = {f.name for f in fields(SourcesSettings)} - set(values)
    if missing:
        raise RuntimeError(f"no emulator prefix for [sources] {sorted(missing)}")
    return values


@click.group("emulator")
def emulator() -> None:
    """The offline web: local servers imitating real sources, for tests, benchmarks and demos."""


@emulator.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="0: any."
)
@click.option(
    "--seed", default=0, show_default=True, type=click.IntRange(min=0), help="World seed."
)
@click.option("--log-requests", is_flag=True, help="Log every request.")
@click.option(
    "--no-rate-limits",
    is_flag=True,
    help="Turn the social APIs' real rate limits off (benchmarks).",
)
@click.option(
    "--window-scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.0, min_open=True),
    help="Scale the rate-limit windows (0.05: Mastodon's 5 minutes as 15 s).",
)
@click.option(
    "--quota-scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.0, min_open=True),
    help="Scale the requests each window allows (with --window-scale: the real rate).",
)
def serve(
    host: str,
    port: int,
    seed: int,
    log_requests: bool,
    no_rate_limits: bool,
    window_scale: float,
    quota_scale: float,
) -> None:
    """Serve the image host (picsum.photos paths) and the emulated APIs until Ctrl-C."""

    def ready(url: str) -> None:
        scale = f", rate-limit windows x{window_scale:g}, counts x{quota_scale:g}"
        scaled = scale if (window_scale, quota_scale) != (1.0, 1.0) else ""
        click.echo(f"Serving the offline web (seed {seed}{scaled}) at {url} - Ctrl-C to stop")

    try:
        app = create_imagehost_app(
            seed,
            rate_limits=not no_rate_limits,
            window_scale=window_scale,
            quota_scale=quota_scale,
        )
        serve_forever(
            app,
            host,
            port,
            on_ready=ready,
            log_requests=log_requests,
        )
    except OSError as exc:
        reason = exc.strerror or exc
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from None
    click.echo("Stopped.")


@emulator.command()
@click.option(
    "--shape",
    type=click.Choice(["seed"]),
    default="seed",
    show_default=True,
    help="seed: image_crawler's urls.txt (valid sizes, repeats, /error/100, oversized).",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="Lines to write in the same proportions; without it, the seed's exact 650 lines.",
)
@click.option(
    "--base-url", default=DEFAULT_BASE_URL, show_default=True, help="The emulator's base URL."
)
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option(
    "-o",
    "--output",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="File to write (default: stdout).",
)
def urls(shape: str, count: int | None, base_url: str, seed: int, output: TextIO) -> None:
    """Write a list of image URLs shaped like the seed's urls.txt."""
    del shape  # the only shape so far
    try:
        lines = list(seed_shaped_urls(base_url, count, seed))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--base-url") from None
    output.write("\n".join(lines) + "\n")


@emulator.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The emulator's address.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Its port."
)
def env(host: str, port: int) -> None:
    """Print the SLEUTH_* lines that point every connector at the emulator
    (`export $(sleuth emulator env)`); loopback targets need the SSRF guard's private
    addresses allowed, so that line comes too."""
    click.echo("SLEUTH_NET_ALLOW_PRIVATE=true")
    for name, value in emulator_sources(f"http://{host}:{port}").items():
        click.echo(f"SLEUTH_SOURCES_{name.upper()}={value}")


@emulator.command()
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--json", "as_json", is_flag=True, help="The whole ground truth as JSON.")
def world(seed: int, as_json: bool) -> None:
    """The ground truth of the artists' world: each artwork's pages and the posts holding it."""
    truth = ArtWorld(seed).ground_truth()
    if as_json:
        click.echo(json.dumps(truth, indent=2))
        return
    for artwork in truth:
        pages = ", ".join(f"{site} {page}" for site, page in artwork["pages"].items())
        click.echo(f"artwork {artwork['artwork']} by {artwork['artist']} ({pages})")
        for post in artwork["posts"]:
            flag = " mirrored" if post["mirrored"] else ""
            click.echo(f"  {post['network']:8} {post['post_url']} [{post['image_position']}]{flag}")
