"""`sleuth queues`, `workers`, `stacks`, `metrics` and `dead-letter` against a real monitored
worker on the same install as the commands (as a worker process on another machine would be),
for both ways of running: embedded (SQLite) and distributed (Redis + PostgreSQL)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sleuth.cli.introspect import seconds
from sleuth.cli.main import cli
from sleuth.services import Services
from tests.observe.helpers import FAIL, GATES, SLOW, TIMED, running_worker
from tests.patience import PATIENCE, wait_for


@pytest.fixture
def runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deployment: dict[str, str]
) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    for name, value in deployment.items():
        monkeypatch.setenv(name, value)
    return CliRunner()


@pytest.fixture
def services(runner: CliRunner, deployed_services: Services) -> Services:
    """The worker's own services on the same install as the commands."""
    return deployed_services


def sleuth(runner: CliRunner, *args: str, code: int = 0) -> Result:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


def test_commands_on_an_install_without_workers(runner: CliRunner) -> None:
    assert "no worker registered" in sleuth(runner, "workers").output
    assert json.loads(sleuth(runner, "workers", "--all", "--json").output) == []
    assert "no job timings recorded yet" in sleuth(runner, "metrics").output
    assert "no dead jobs" in sleuth(runner, "dead-letter", "list").output
    stacks = sleuth(runner, "stacks", code=1)
    assert "no live worker to ask" in stacks.output
    assert not Path("stacktrace.log").exists()


def test_workers_stacks_and_metrics_of_a_running_worker(
    runner: CliRunner, services: Services
) -> None:
    queue = services.queue
    queue.enqueue_many(TIMED, [({"seconds": 0.01}, None) for _ in range(4)])
    GATES["cli"] = gate = threading.Event()
    slow = queue.enqueue(SLOW, {"gate": "cli"})
    with running_worker(services.engine, queue, "cli:1"):

        def busy() -> list[dict] | None:
            found = json.loads(sleuth(runner, "workers", "--json").output)
            return found if found and found[0]["current"] else None

        (worker,) = wait_for(busy)
        assert worker["consumer"] == "cli:1" and worker["state"] == "live"
        assert worker["current"][0]["job_id"] == slow
        table = sleuth(runner, "workers").output
        assert "cli:1" in table and f"job {slow} of {SLOW}, running for" in table

        out = Path("dumps/stacks.txt")
        out.parent.mkdir()
        result = sleuth(runner, "stacks", "-o", str(out), "--timeout", f"{PATIENCE:g}")
        assert f"stacks of 1 worker(s) written to {out}" in result.output
        text = out.read_text()
        assert text.startswith("sleuth stacks requested at ")
        assert "=== worker cli:1:" in text and "in slow_handler_at_the_gate" in text
        assert "did not answer" not in text

        def timed() -> dict | None:
            stages = json.loads(sleuth(runner, "metrics", "--json", "--live").output)
            return next((s for s in stages if s["queue"] == TIMED and s["count"] == 4), None)

        stage = wait_for(timed)
        assert stage["errors"] == 0 and stage["p50"] <= stage["p99"] <= stage["max"]
        table = sleuth(runner, "metrics", "--queue", TIMED).output
        assert table.splitlines()[1].split()[:3] == [TIMED, "4", "0"]
        gate.set()
    assert "no worker registered" in sleuth(runner, "workers").output
    assert "stopped" in sleuth(runner, "workers", "--all").output
    assert sleuth(runner, "metrics", "--live").output.strip() == "no job timings recorded yet"


def test_a_worker_that_does_not_answer_is_named(runner: CliRunner, services: Services) -> None:
    """A live worker that does not answer in time (its first look for requests comes
    `PATIENCE` seconds after it registered) is named in the output and in the file, and the
    command fails."""
    with running_worker(
        services.engine, services.queue, "cli:gone", interval=PATIENCE, poll=PATIENCE
    ):
        result = sleuth(runner, "stacks", "--timeout", "0.3", code=1)
    assert "no answer within 0.3 s from: cli:gone" in result.output
    text = Path("stacktrace.log").read_text()
    assert "0 worker(s) answered" in text and "did not answer in time: cli:gone" in text


def test_dead_letter_list_and_retry_round_trip(runner: CliRunner, services: Services) -> None:
    queue = services.queue
    keys = [f"cli-{uuid.uuid4().hex[:8]}" for _ in range(3)]  # fail on first delivery
    with running_worker(services.engine, queue, "cli:dead"):
        for key in keys:
            queue.enqueue(FAIL, {"key": key})
        wait_for(lambda: len(queue.dead_letters(FAIL)) == 3)

        listed = json.loads(sleuth(runner, "dead-letter", "list", "--json").output)
        assert [d["queue"] for d in listed] == [FAIL] * 3
        assert {d["payload"]["key"] for d in listed} == set(keys)
        assert all(d["attempts"] == 1 for d in listed)
        assert listed[0]["summary"].startswith("failed 1 times; last error: ValueError: bad input")
        table = sleuth(runner, "dead-letter", "list", "--queue", FAIL, "--limit", "2").output
        lines = table.splitlines()
        assert len(lines) == 3 and lines[1].split()[:3] == [listed[0]["id"], FAIL, "1"]
        assert "second line" not in table  # only the reason's first line

        # The failing handler succeeds on a second delivery: retried jobs finish for good.
        one = sleuth(runner, "dead-letter", "retry", listed[0]["id"])
        assert "1 of 1 dead job(s) sent back" in one.output
        wait_for(lambda: len(queue.dead_letters(FAIL)) == 2 and queue.pending([FAIL]) == 0)
        rest = sleuth(runner, "dead-letter", "retry", "--all", "--queue", FAIL)
        assert "2 of 2 dead job(s) sent back" in rest.output
        wait_for(lambda: not queue.dead_letters() and queue.pending([FAIL]) == 0)
    assert "no dead jobs" in sleuth(runner, "dead-letter", "list").output
    unknown = sleuth(runner, "dead-letter", "retry", "424242", code=1)
    assert "0 of 1" in unknown.output and "1 stayed dead" in unknown.output
    assert "0 of 0" in sleuth(runner, "dead-letter", "retry", "--all").output


def test_queues_per_queue_and_priority(runner: CliRunner, services: Services) -> None:
    """Ready, delayed, in flight per worker, dead and the oldest ready job's age, for each
    queue and priority, as both backends count them."""
    queue = services.queue
    queue.enqueue_many(TIMED, [({"i": i}, None) for i in range(3)])
    queue.enqueue(TIMED, {"later": True}, delay=600)
    for i in range(4):
        queue.enqueue(SLOW, {"i": i}, priority=5)
    held = queue.reserve([SLOW], 2, 600, "cli:holder")
    queue.reserve([SLOW], 1, 600, "cli:other")
    [doomed] = queue.reserve([TIMED], 1, 600, "cli:holder")
    queue.dead_letter(doomed, "gave up")
    time.sleep(0.05)  # so the oldest ready job has an age

    rows = json.loads(sleuth(runner, "queues", "--json").output)
    by_key = {(r["queue"], r["priority"]): r for r in rows}
    assert set(by_key) == {(SLOW, 5), (TIMED, 0)}
    slow, timed = by_key[(SLOW, 5)], by_key[(TIMED, 0)]
    assert (slow["ready"], slow["delayed"], slow["in_flight"], slow["dead"]) == (1, 0, 3, 0)
    assert slow["in_flight_by_consumer"] == {"cli:holder": len(held), "cli:other": 1}
    assert (timed["ready"], timed["delayed"], timed["in_flight"], timed["dead"]) == (2, 1, 0, 1)
    assert timed["in_flight_by_consumer"] == {}
    assert 0 < timed["oldest_ready_age"] < 600 and 0 < slow["oldest_ready_age"] < 600

    lines = sleuth(runner, "queues").output.splitlines()
    assert lines[0].split() == ["queue", "prio", "ready", "delayed", "flight", "dead", "oldest"]
    assert [line.split()[:6] for line in lines if line.startswith("test.")] == [
        [SLOW, "5", "1", "0", "3", "0"],
        [TIMED, "0", "2", "1", "0", "1"],
    ]
    per_worker = [line.strip() for line in lines if "in flight at" in line]
    assert per_worker == ["in flight at cli:holder: 2", "in flight at cli:other: 1"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dead-letter", "retry"], "give dead job ids, or --all"),
        (["dead-letter", "retry", "1", "--all"], "give dead job ids, or --all"),
        (["dead-letter", "retry", "1", "--queue", "q"], "--queue goes with --all"),
        (["dead-letter", "list", "--limit", "0"], "--limit"),
        (["stacks", "--timeout", "0"], "--timeout"),
    ],
)
def test_bad_arguments_are_usage_errors(runner: CliRunner, args: list[str], message: str) -> None:
    result = sleuth(runner, *args, code=2)
    assert message in result.output


def test_durations_read_well() -> None:
    assert [seconds(v) for v in (None, 0.0004, 0.012, 0.5, 1.234, 12.34, 123, 7400)] == [
        "-", "0.4ms", "12ms", "500ms", "1.23s", "12.3s", "2m03s", "2h03m"
    ]  # fmt: skip
