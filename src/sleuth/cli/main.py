"""The `sleuth` command: engine-wide commands here, each installed app's in its own group."""

from __future__ import annotations

import importlib
import json
import logging
import signal
import sys
from pathlib import Path

import click

from sleuth import __version__
from sleuth.app import App, AppError, installed_apps
from sleuth.cli.context import Context, pass_context
from sleuth.cli.malloc import limit_malloc_arenas
from sleuth.config import ConfigError, as_dict, load_settings
from sleuth.store.db import MissingDriver

# The engine's commands other than `config`: imported only when named (or listed), so that a
# command loads what it needs and no more (`sleuth images crawl` neither Flask nor the emulator).
ENGINE_COMMANDS = {
    "console": "sleuth.cli.console:console",
    "dead-letter": "sleuth.cli.introspect:dead_letter",
    "demo": "sleuth.cli.demo:demo",
    "emulator": "sleuth.emulator.cli:emulator",
    "metrics": "sleuth.cli.introspect:metrics",
    "queues": "sleuth.cli.ops:queues",
    "serve": "sleuth.cli.serve:serve",
    "stacks": "sleuth.cli.introspect:stacks",
    "status": "sleuth.cli.ops:status",
    "worker": "sleuth.cli.serve:worker",
    "workers": "sleuth.cli.introspect:workers",
}


def _engine_command(name: str) -> click.Command | None:
    target = ENGINE_COMMANDS.get(name)
    if target is None:
        return None
    module, attr = target.split(":")
    command = getattr(importlib.import_module(module), attr)
    assert isinstance(command, click.Command) and command.name == name, target
    return command


class SleuthGroup(click.Group):
    """The engine's commands, and one group per installed app under the app's name, both
    looked up when asked for: a command imports only its own modules, and an app installed
    later (or a broken one) is seen then."""

    def _apps(self) -> dict[str, App]:
        try:
            apps = installed_apps()
        except AppError as exc:
            raise click.ClickException(str(exc)) from None
        out: dict[str, App] = {}
        for app in apps:
            if app.cli is None:
                continue
            if app.name in self.commands or app.name in ENGINE_COMMANDS:
                raise click.ClickException(
                    f"app {app.name!r} is named like the engine command `sleuth {app.name}`"
                )
            out[app.name] = app
        return out

    def _app_group(self, app: App) -> click.Command:
        assert app.cli is not None
        group = app.cli()
        if group.name != app.name:
            raise click.ClickException(
                f"app {app.name!r}: its click group is named {group.name!r}; name it"
                f" {app.name!r} so that `sleuth {app.name}` runs it"
            )
        if app.crawl_jobs is not None:
            from sleuth.crawl.cli import error_commands

            for command in error_commands(app.name, app.crawl_jobs()):
                group.add_command(command)
        return group

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except AppError as exc:  # an installation problem, not a bug: one line
            raise click.ClickException(str(exc)) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*self.commands, *ENGINE_COMMANDS, *self._apps()])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = self.commands.get(cmd_name) or _engine_command(cmd_name)
        if found is not None:
            return found
        app = self._apps().get(cmd_name)
        return None if app is None else self._app_group(app)


@click.group(
    cls=SleuthGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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


def main() -> None:
    # SIGINT stops every command, also one started as a non-interactive shell's background job
    # (a CI script's, a supervisor's): such a job inherits SIGINT as ignored, and Python then
    # installs no KeyboardInterrupt handler of its own, so `kill -INT` would do nothing.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    limit_malloc_arenas()
    try:
        cli(prog_name="sleuth")
    except MissingDriver as exc:  # a setup problem, not a bug: one line, no traceback
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
