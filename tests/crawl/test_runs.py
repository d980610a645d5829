"""Runs and items on SQLite, PostgreSQL and MariaDB: items queued once however often they
are added, resolved once however often their job runs, each outcome counted once."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from sleuth.crawl import runs
from sleuth.crawl.runs import RunError, RunItem
from sleuth.jobs.base import QueueBackend
from tests.crawl.conftest import APP, counted, drain, toy_job

RUN = runs.run_id_for("toy seeds")


def items(*keys: str) -> list[RunItem]:
    return [RunItem(RUN, key, f"https://toy.example/{key}") for key in keys]


def test_items_are_queued_once_and_resolved_ones_not_again(
    engine: Engine, queue: QueueBackend
) -> None:
    runs.open_run(engine, RUN, APP, "toy seeds")
    assert runs.add_items(engine, queue, items("a", "b", "c"), toy_job) == 3
    # Listed again while queued (a resumed crawl): the dedup keys hold, nothing is added.
    assert runs.add_items(engine, queue, items("a", "b", "c"), toy_job) == 0
    assert [p["key"] for p in drain(queue)] == ["a", "b", "c"]
    with engine.begin() as conn:
        assert runs.resolve(conn, APP, RUN, "a", "success", result="r-a")
        assert runs.fail(conn, APP, RUN, "b", "http_status", "404 Not Found", 404)
    # Listed again after a kill lost the queue's job of "c": only "c" is queued again.
    assert runs.add_items(engine, queue, items("a", "b", "c", "d"), toy_job) == 2
    assert [p["key"] for p in drain(queue)] == ["c", "d"]
    assert runs.is_resolved(engine, RUN, "a") and runs.is_resolved(engine, RUN, "b")
    assert not runs.is_resolved(engine, RUN, "c")
    assert not runs.is_resolved(engine, RUN, "never-added")


def test_a_job_run_twice_resolves_and_counts_once(engine: Engine, queue: QueueBackend) -> None:
    runs.open_run(engine, RUN, APP, "toy seeds")
    runs.add_items(engine, queue, items("a", "b"), toy_job)
    for _ in range(2):  # the second delivery of each job changes nothing
        with engine.begin() as conn:
            runs.resolve(conn, APP, RUN, "a", "success")
            runs.fail(conn, APP, RUN, "b", "timeout", "no answer")
    with engine.begin() as conn:
        assert not runs.resolve(conn, APP, RUN, "a", "duplicate")
        assert not runs.resolve(conn, APP, RUN, "b", "success")  # failed: only a retry
        assert not runs.fail(conn, APP, RUN, "a", "timeout", "late")
    assert counted(engine) == {"success": 1, "error": 1}


def test_a_rolled_back_resolve_leaves_nothing_counted(engine: Engine, queue: QueueBackend) -> None:
    runs.open_run(engine, RUN, APP, "toy seeds")
    runs.add_items(engine, queue, items("a"), toy_job)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        runs.resolve(conn, APP, RUN, "a", "success")
        raise RuntimeError("the job died before its transaction committed")
    assert counted(engine) == {}
    assert not runs.is_resolved(engine, RUN, "a")


def test_progress_and_finish(engine: Engine, queue: QueueBackend) -> None:
    runs.open_run(engine, RUN, APP, "toy seeds")
    runs.add_items(engine, queue, items("a", "b", "c"), toy_job)
    p = runs.progress(engine, RUN)
    assert (p.total, p.listed, p.done, p.finished) == (None, 3, 0, False)
    runs.set_total(engine, RUN, 3)
    with engine.begin() as conn:
        runs.resolve(conn, APP, RUN, "a", "success")
        runs.resolve(conn, APP, RUN, "b", "duplicate")
    assert not runs.mark_finished(engine, RUN)
    with engine.begin() as conn:
        runs.fail(conn, APP, RUN, "c", "not_image", "an HTML page")
    p = runs.progress(engine, RUN)
    assert (p.total, p.done, p.finished) == (3, 3, True)
    assert dict(p.outcomes) == {"success": 1, "duplicate": 1, "error": 1}
    assert runs.mark_finished(engine, RUN)
    with engine.connect() as conn:
        assert runs.app_outcomes(conn, APP) == {"success": 1, "duplicate": 1, "error": 1}


def test_a_run_belongs_to_one_app(engine: Engine) -> None:
    runs.open_run(engine, RUN, APP, "toy seeds")
    runs.open_run(engine, RUN, APP, "toy seeds")  # opening it again resumes it
    with pytest.raises(RunError, match=f"belongs to the {APP} app, not to other"):
        runs.open_run(engine, RUN, "other", "toy seeds")
    with engine.connect() as conn:
        assert runs.run_exists(conn, APP, RUN)
        assert not runs.run_exists(conn, "other", RUN)


def test_run_ids_come_from_names() -> None:
    assert runs.run_id_for("a") == runs.run_id_for("a") != runs.run_id_for("b")
    assert runs.run_id_for("a", fresh=True) != runs.run_id_for("a")
    assert len(runs.run_id_for("\udcff surrogate")) == 40


def test_a_failure_counts_under_the_outcome_its_app_names(
    engine: Engine, queue: QueueBackend
) -> None:
    """An app may call its failures something else than `error` (any outcome it declares;
    the images app's `duplicate` stands in for one here)."""
    runs.open_run(engine, RUN, APP, "toy seeds")
    runs.add_items(engine, queue, items("a"), toy_job)
    with engine.begin() as conn:
        assert runs.fail(conn, APP, RUN, "a", "gone", "HTTP 410", 410, outcome="duplicate")
    assert counted(engine) == {"duplicate": 1}
    assert dict(runs.progress(engine, RUN).outcomes) == {"duplicate": 1}
    assert runs.is_resolved(engine, RUN, "a")


def test_runs_are_found_by_the_start_of_their_id(engine: Engine) -> None:
    for run in ("a_b1", "axb2", "a%c3", "a_b4"):
        runs.open_run(engine, run, APP, run)
    runs.open_run(engine, "a_b5", "other", "a_b5")
    with engine.connect() as conn:
        assert runs.runs_named(conn, APP, "a_b") == ["a_b1", "a_b4"]  # `_` is no wildcard
        assert runs.runs_named(conn, APP, "a%") == ["a%c3"]
        assert len(runs.runs_named(conn, APP, "a")) == 2  # of four: two tell ambiguity
        assert runs.runs_named(conn, APP, "z") == []
