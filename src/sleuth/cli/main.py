"""The `sleuth` command: engine-wide commands here, each app's commands in its own group."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from sleuth import __version__
from sleuth.cli.context import Context, pass_context
from sleuth.cli.malloc import limit_malloc_arenas
from sleuth.config import ConfigError, as_dict, load_settings
from sleuth.store.db import MissingDriver


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Configuration file (default: ./sleuth.toml, or $SLEUTH_CONFIG).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(__version__, prog_name="sleuth")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, verbose: int) -> None:
    """sleuth: a self-hosted crawler and image finder.

    Data lives in ./sleuth-data/ unless SLEUTH_DATA_DIR or the configuration says otherwise.
    Start with `sleuth demo`.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(config_file)
    except ConfigError as exc:
        raise click.UsageError(f"configuration: {exc}") from None
    ctx.obj = Context(settings)
    ctx.call_on_close(ctx.obj.close)


@cli.command("config")
@pass_context
def config_cmd(ctx: Context) -> None:
    """Print the effective configuration (defaults < sleuth.toml < SLEUTH_* environment)."""
    click.echo(json.dumps(as_dict(ctx.settings), indent=2))


def _register() -> None:
    from sleuth.apps.images.cli import images
    from sleuth.cli.demo import demo
    from sleuth.cli.introspect import dead_letter, metrics, stacks, workers
    from sleuth.cli.ops import queues, status
    from sleuth.cli.serve import serve, worker
    from sleuth.emulator.cli import emulator

    engine = (workers, stacks, metrics, dead_letter)
    for command in (images, emulator, demo, serve, worker, status, queues, *engine):
        cli.add_command(command)


_register()


def main() -> None:
    limit_malloc_arenas()
    try:
        cli(prog_name="sleuth")
    except MissingDriver as exc:  # a setup problem, not a bug: one line, no traceback
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
