"""The sample app, plugged in by its declaration alone (no engine file names it), gets its
tables, queues, periodic job, CLI, pages, monitoring, status, settings and demo step; and an
app's own command runs workers for that app's queues only."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from sleuth.app import AppError, migration_dirs
from sleuth.config import Settings
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from sleuth.emulator.urls import seed_shaped_urls
from sleuth.observe.registry import workers
from sleuth.runner import all_queues, app_queues, periodic_jobs, run_worker
from sleuth.services import Services
from sleuth.store.db import make_engine, migrate
from sleuth.web.app import create_app
from tests.apps.sample.app import NOTE_QUEUE
from tests.apps.sample.notes import Note, count_notes, note_id, notes, save_note
from tests.apps.sample.plugin import installed

IMAGE_QUEUES = ["images.fetch", "images.md5", "images.grayscale", "images.store"]


def _sleuth(env: dict[str, str], data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sleuth.cli", *args],
        env={**env, "SLEUTH_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _worker_queues(services: Services) -> list[list[str]]:
    with services.engine.connect() as conn:
        return [json.loads(q) for q in conn.execute(sa.select(workers.c.queues)).scalars()]


def test_its_table_comes_from_its_own_migration(sample_app: object, database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine, migration_dirs())
    migrate(engine, migration_dirs())  # a second run changes nothing
    columns = {c["name"] for c in sa.inspect(engine).get_columns("sample_notes")}
    assert columns == {"id", "text", "saved_at"}
    with engine.begin() as conn:
        conn.execute(sa.insert(notes).values(id="n", text="stored", saved_at=1.0))
    assert count_notes(engine) == 1
    engine.dispose()


def test_its_task_and_periodic_job_run_in_every_worker(sample_app: object, tmp_path: Path) -> None:
    services = Services(Settings(data_dir=tmp_path / "data"))
    try:
        assert NOTE_QUEUE in all_queues()
        assert app_queues("sample") == [NOTE_QUEUE, "sleuth.cleanup"]
        periodic = {p.name: p for p in periodic_jobs(services.settings)}
        assert (periodic["sample.greeting"].task.queue, periodic["sample.greeting"].every) == (
            NOTE_QUEUE,
            3600.0,
        )
        # The cleanup sweeps the in-flight blob kinds the apps declare (the sample has none).
        assert sorted(periodic["cleanup"].payload.inflight_exts) == ["fquery", "orig"]
        services.queue.enqueue(NOTE_QUEUE, {"id": "n1", "text": "a note"})
        services.queue.enqueue(NOTE_QUEUE, {"id": "n2", "text": "x" * 41})  # too long: refused

        def done() -> bool:
            with services.engine.connect() as conn:
                ids = set(conn.execute(sa.select(notes.c.id)).scalars())
            return ids == {"n1", "greeting"} and services.queue.pending([NOTE_QUEUE]) == 0

        # `sleuth worker` serves every installed app: the sample's jobs and its schedule too.
        asyncio.run(run_worker(services, until=done, handle_signals=False))
        # A job run twice changes nothing and is not counted again.
        section = services.settings.app("sample")
        assert save_note(services.engine, section, Note("n1", "a note")) is None
        client = create_app(services).test_client()
        totals = client.get("/monitoring?format=json&app=sample").get_json()["totals"]
        assert totals == {"saved": 2, "rejected": 1, "total": 3}
        listed = client.get("/api/sample/notes").get_json()["notes"]
        assert sorted(n["id"] for n in listed) == ["greeting", "n1"]
        assert "/api/sample/notes" in client.get("/openapi.json").get_json()["paths"]
    finally:
        services.close()


def test_its_command_status_config_and_pages(sample_app: dict[str, str], tmp_path: Path) -> None:
    env = {**sample_app, "SLEUTH_SAMPLE_BLOCKED": "spam", "SLEUTH_SAMPLE_API_TOKEN": "s3cret"}
    data = tmp_path / "data"
    helped = _sleuth(env, data, "--help")
    assert "sample " in helped.stdout and "Notes, the worked example" in helped.stdout
    services = Services(Settings(data_dir=data))
    try:
        # Another app's job waits in the queue: `sleuth sample add` must leave it there.
        services.queue.enqueue("images.fetch", {"crawl": "c", "line": 1, "url": "http://x/"})
        added = _sleuth(env, data, "sample", "add", "a first note", "spam and eggs")
        assert added.returncode == 0, added.stderr
        assert added.stdout.strip() == "1 stored, 1 rejected"
        assert services.queue.pending(["images.fetch"]) == 1
        assert _worker_queues(services) == [[NOTE_QUEUE, "sleuth.cleanup"]]
        status = _sleuth(env, data, "status")
        assert f"notes     {count_notes(services.engine)} saved" in status.stdout
        assert "images    0 stored, 0 source URLs" in status.stdout
        config = json.loads(_sleuth(env, data, "config").stdout)
        assert config["sample"]["blocked"] == ["spam"] and config["sample"]["api_token"] == "***"
        worker = _sleuth(env, data, "worker", "--queues", "nope")
        assert worker.returncode == 2 and "sample.note" in worker.stderr
    finally:
        services.close()


def test_an_app_command_runs_only_its_own_queues(
    sample_app: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    services = Services(Settings(data_dir=data))
    try:
        services.queue.enqueue(NOTE_QUEUE, {"id": note_id("waits"), "text": "waits"})
        with EmulatorServer(create_imagehost_app(seed=0)) as host:
            urls = tmp_path / "urls.txt"
            urls.write_text("\n".join(seed_shaped_urls(host, count=3)) + "\n")
            env = {**sample_app, "SLEUTH_NET_ALLOW_PRIVATE": "1", "SLEUTH_WORKER_PROCESSES": "1"}
            crawled = _sleuth(env, data, "images", "crawl", str(urls))
        assert crawled.returncode == 0, crawled.stdout + crawled.stderr
        assert crawled.stdout.startswith("3 of 3 lines")
        assert _worker_queues(services) == [[*IMAGE_QUEUES, "sleuth.cleanup"]]
        assert count_notes(services.engine) == 0  # the sample's job was not run
        assert services.queue.pending([NOTE_QUEUE]) >= 1
    finally:
        services.close()


@pytest.mark.slow
def test_the_demo_runs_each_app_s_step(sample_app: dict[str, str], tmp_path: Path) -> None:
    args = ("demo", "--no-serve", "--port", "0", "--count", "4")
    shown = _sleuth(sample_app, tmp_path / "data", *args)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "[images]" in shown.stdout and "Crawled 4 lines" in shown.stdout
    assert "[sample]" in shown.stdout and "sample notes: 2 saved, 0 rejected" in shown.stdout


def test_a_database_migrated_by_an_app_not_installed_here_is_refused_clearly(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with installed(tmp_path / "site", "sample_app", {"sample": "tests.apps.sample.app:app"}):
        Services(Settings(data_dir=data)).engine.dispose()  # migrated with the sample's table
    with pytest.raises(AppError, match=r"revisions \['sample_0001'\] that no installed"):
        Services(Settings(data_dir=data)).engine  # noqa: B018  (opening it migrates)
    status = _sleuth(dict(os.environ), data, "status")
    assert status.returncode == 1 and "Traceback" not in status.stderr
    assert "Error: the database has schema revisions ['sample_0001']" in status.stderr
