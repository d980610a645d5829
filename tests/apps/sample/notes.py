"""The sample app's table and its one task: save a note once, or refuse it (too long, or a
blocked word)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine

from sleuth.jobs.tasks import Task
from sleuth.jobs.worker import JobContext, JobKind
from sleuth.observe.counters import count_outcome
from sleuth.runner import app_queues, run_worker
from sleuth.services import Services
from sleuth.store.upsert import insert_ignore
from tests.apps.sample.app import NAME, NOTE_QUEUE, SampleSettings

# Its own MetaData: the sample app is installed only in its tests, so its table stays off
# the engine's `metadata`, which other tests compare with the migrated database.
metadata = sa.MetaData()
notes = sa.Table(
    "sample_notes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("text", sa.String(400), nullable=False),
    sa.Column("saved_at", sa.Double, nullable=False),
)


@dataclass(frozen=True)
class Note:
    """The payload of the sample app's one task."""

    id: str
    text: str


NOTE = Task(NOTE_QUEUE, Note, max_attempts=3)


def note_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def acceptable(settings: SampleSettings, text: str) -> bool:
    words = set(text.lower().split())
    return len(text) <= settings.max_length and words.isdisjoint(settings.blocked)


def save_note(engine: Engine, settings: SampleSettings, payload: Note) -> str | None:
    """Save the note and count its outcome in the same transaction; None when it was saved
    before (a job run twice counts once)."""
    note, text = payload.id, payload.text
    with engine.begin() as conn:
        if not acceptable(settings, text):
            outcome = "rejected"
        elif insert_ignore(conn, notes, {"id": note, "text": text, "saved_at": time.time()}):
            outcome = "saved"
        else:
            return None
        count_outcome(conn, NAME, outcome)
    return outcome


def note_kind(services: Services) -> JobKind[Note]:
    settings: SampleSettings = services.settings.app(NAME)

    async def handle(note: Note, ctx: JobContext) -> None:
        await asyncio.to_thread(save_note, services.engine, settings, note)

    return JobKind(NOTE, handle)


def count_notes(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(notes)).scalar_one()


def add_notes(services: Services, texts: Sequence[str]) -> tuple[int, int]:
    """Queue the notes and run a worker on the sample app's queues until none is left;
    returns how many of them are stored and how many were rejected."""
    ids = []
    for text in texts:
        note = Note(note_id(text), text)
        services.queue.send(NOTE, note, dedup_key=note.id)
        ids.append(note.id)

    def done() -> bool:
        return services.queue.pending([NOTE_QUEUE]) == 0

    asyncio.run(run_worker(services, queues=app_queues(NAME), until=done, handle_signals=False))
    with services.engine.connect() as conn:
        stored = conn.execute(
            sa.select(sa.func.count()).select_from(notes).where(notes.c.id.in_(ids))
        ).scalar_one()
    settings = services.settings.app(NAME)
    return stored, sum(not acceptable(settings, t) for t in texts)
