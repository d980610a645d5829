"""`sleuth sample add TEXT...`: save notes with workers for the sample app's queue only."""

from __future__ import annotations

import click

from sleuth.cli.context import Context, pass_context
from tests.apps.sample.notes import add_notes


@click.group()
def sample() -> None:
    """Notes, the worked example of docs/apps.md."""


@sample.command()
@click.argument("texts", nargs=-1, required=True)
@pass_context
def add(ctx: Context, texts: tuple[str, ...]) -> None:
    """Save each TEXT as a note (one longer than sample.max_length, or with a word of
    sample.blocked, is rejected)."""
    stored, rejected = add_notes(ctx.services, texts)
    click.echo(f"{stored} stored, {rejected} rejected")
