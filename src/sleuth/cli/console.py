"""`sleuth console`: an interactive shell for the `sleuth` command, with line editing and
history (readline), as AOTF's server console had: its `query`, `scan`, `search`, `stats`,
`threads`, `queues`, `metrics`, `stacks`, `stop` and `help`, and every other sleuth command
line besides (`images crawl urls.txt`). Each line runs as `sleuth LINE` would; an error is
printed and the console goes on. The short names are the engine's and those the installed
apps declare (`App.console`)."""

from __future__ import annotations

import contextlib
import shlex
from pathlib import Path

import click

from sleuth.app import installed_apps
from sleuth.cli.context import Context, pass_context

ENGINE_NAMES = {
    "stats": "status",  # AOTF's stats: what is indexed and in progress
    "threads": "workers",  # AOTF's threads: who is working on what
    "queues": "queues",
    "metrics": "metrics",
    "stacks": "stacks",
}
LEAVE = ("stop", "exit", "quit")
HISTORY = ".console_history"
HISTORY_LINES = 1000


def console_names() -> dict[str, str]:
    """Short name → the command line it stands for."""
    names = dict(ENGINE_NAMES)
    for app in installed_apps():
        names.update(app.console)
    return names


def _help(names: dict[str, str]) -> str:
    width = max(len(n) for n in names)
    lines = [f"  {name:<{width}}  sleuth {line}" for name, line in sorted(names.items())]
    return "\n".join(
        [
            "Commands (each with --help):",
            *lines,
            f"  {'stop':<{width}}  leave the console (also exit, quit, Ctrl-D)",
            "Any other sleuth command line works too, e.g. `images crawl urls.txt`.",
        ]
    )


def _open_history(path: Path) -> None:
    try:
        import readline
    except ImportError:  # no readline on this system: no line editing, still a console
        return
    readline.set_history_length(HISTORY_LINES)
    with contextlib.suppress(OSError):  # no history yet
        readline.read_history_file(path)


def _save_history(path: Path) -> None:
    try:
        import readline
    except ImportError:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(path)
    except OSError as exc:
        click.echo(f"could not save the history to {path}: {exc}", err=True)


def run_line(root: click.Group, words: list[str], names: dict[str, str]) -> None:
    """Run one console line as `sleuth WORDS`; errors are printed, never raised."""
    if words[0] in names:
        words = [*shlex.split(names[words[0]]), *words[1:]]
    try:
        root.main(words, prog_name="sleuth", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
    except click.ClickException as exc:
        exc.show()
    except SystemExit:
        pass  # --help, or a command that exits: the console stays


@click.command()
@pass_context
def console(ctx: Context) -> None:
    """An interactive shell: AOTF's console commands and every sleuth command, with line
    editing and history. `help` lists them; `stop` (or Ctrl-D) leaves."""
    root = click.get_current_context().find_root().command
    assert isinstance(root, click.Group)
    names = console_names()
    history = ctx.settings.data_dir / HISTORY
    _open_history(history)
    click.echo("sleuth console: `help` lists the commands, `stop` leaves.")
    try:
        while True:
            try:
                line = input("sleuth> ")
            except EOFError:
                click.echo()
                break
            except KeyboardInterrupt:
                click.echo()
                continue
            try:
                words = shlex.split(line)
            except ValueError as exc:
                click.echo(f"Error: {exc}", err=True)
                continue
            if not words:
                continue
            if words[0] in LEAVE:
                break
            if words[0] == "help" and len(words) == 1:
                click.echo(_help(names))
                continue
            run_line(root, words, names)
    finally:
        _save_history(history)
