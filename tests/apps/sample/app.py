"""The sample app's declaration: notes, saved by one task, shown by one route and command.

It is the worked example of docs/apps.md and plugs in through the `sleuth.apps` entry-point
group (`plugin.py` installs it for a test), with no engine file naming it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sleuth.app import App, DemoRun, Outcome, StatusLine

if TYPE_CHECKING:
    import click
    from flask import Blueprint

    from sleuth.config import Settings
    from sleuth.jobs.schedule import Periodic
    from sleuth.jobs.worker import Kind
    from sleuth.net.fetcher import Fetcher
    from sleuth.services import Services

NAME = "sample"
NOTE_QUEUE = "sample.note"


@dataclass(frozen=True)
class SampleSettings:
    """`[sample]` in sleuth.toml, `SLEUTH_SAMPLE_*` in the environment."""

    max_length: int = 40  # a longer note is rejected
    blocked: tuple[str, ...] = ()  # so is a note with one of these words
    greeting: str = "hello from the scheduler"  # the note the periodic job saves
    greeting_every: float = 3600.0
    api_token: str = ""  # shown masked by `sleuth config`


def _job_kinds(services: Services, fetcher: Fetcher) -> Sequence[Kind]:
    from tests.apps.sample.notes import note_kind

    return [note_kind(services)]


def _periodic(settings: Settings) -> Sequence[Periodic]:
    from sleuth.jobs.schedule import Periodic
    from tests.apps.sample.notes import NOTE, Note

    section: SampleSettings = settings.app(NAME)
    greeting = Note("greeting", section.greeting)
    return [Periodic("sample.greeting", NOTE, greeting, section.greeting_every)]


def _blueprints() -> Sequence[Blueprint]:
    from tests.apps.sample.api import blueprint

    return [blueprint]


def _cli() -> click.Group:
    from tests.apps.sample.cli import sample

    return sample


def _status(services: Services) -> Sequence[StatusLine]:
    from tests.apps.sample.notes import count_notes

    return [StatusLine("notes", f"{count_notes(services.engine)} saved")]


def _demo(run: DemoRun) -> None:
    import click

    from tests.apps.sample.notes import add_notes

    saved, rejected = add_notes(run.services, ["a first note", "a second note"])
    click.echo(f"sample notes: {saved} saved, {rejected} rejected; {run.web_url}/api/sample/notes")


app = App(
    name=NAME,
    description="Notes, the worked example of docs/apps.md.",
    settings=SampleSettings,
    migrations=Path(__file__).parent / "migrations",
    queues=(NOTE_QUEUE,),
    job_kinds=_job_kinds,
    periodic=_periodic,
    blueprints=_blueprints,
    cli=_cli,
    status=_status,
    outcomes=(Outcome("saved", "saved", "#1b9e77"), Outcome("rejected", "refused", "#d95f02")),
    outcome_unit="notes",
    demo=_demo,
)
