"""`sleuth emulator ...`: serve the offline web and write URL lists against it."""

from __future__ import annotations

from typing import TextIO

import click

from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import serve_forever
from sleuth.emulator.urls import seed_shaped_urls

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


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
def serve(host: str, port: int, seed: int, log_requests: bool) -> None:
    """Serve the image host (picsum.photos paths) until Ctrl-C."""

    def ready(url: str) -> None:
        click.echo(f"Serving the offline web (seed {seed}) at {url} - Ctrl-C to stop")

    try:
        serve_forever(
            create_imagehost_app(seed),
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
