"""Resume after kill -9: a crawl whose whole process tree is killed mid-way, run again with
the same command, ends with every line resolved once and every outcome counted once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import sqlalchemy as sa

from sleuth.apps.images.crawl import crawl_id_for
from sleuth.crawl.models import crawl_run_items
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from sleuth.emulator.urls import expected_outcomes
from tests.apps.images.test_crawl_e2e import CountingApp, run_cli, write_list
from tests.crawl.conftest import counted
from tests.distributed.cluster import resolved_lines
from tests.patience import PATIENCE, wait_for

LINES = 150


@pytest.mark.slow
def test_kill_9_then_the_same_command_resolves_and_counts_each_line_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    urls = tmp_path / "urls.txt"
    # A short lease, so the second run takes back the killed run's jobs soon.
    env = {"SLEUTH_WORKER_LEASE_SECONDS": "5"}
    host = CountingApp(create_imagehost_app(seed=0))
    host.hold_after = 40  # distinct images: the first run cannot end before it is killed
    with EmulatorServer(host) as base_url:
        lines = write_list(urls, base_url)[:LINES]
        urls.write_text("\n".join(lines) + "\n", encoding="utf-8")
        first = run_cli(["images", "crawl", str(urls)], data_dir, env_extra=env)
        database = data_dir / "sleuth.db"
        url = f"sqlite:///{database}"

        def ended_or_resolved_30() -> bool:
            # connecting before the command created its database would create an empty one
            return first.poll() is not None or (database.exists() and resolved_lines(url) >= 30)

        wait_for(ended_or_resolved_30, "30 lines resolved by the first run", interval=0.2)
        assert first.poll() is None, "the first run ended before it could be killed"
        os.killpg(first.pid, signal.SIGKILL)  # the process and its workers, without a word
        first.communicate(timeout=PATIENCE)
        assert 30 <= resolved_lines(url) < LINES
        host.release.set()

        second = run_cli(["images", "crawl", str(urls)], data_dir, env_extra=env)
        out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out
    assert f"{LINES} of {LINES} lines in" in out, out
    assert f"Which lines and why: sleuth images errors --crawl {crawl_id_for(str(urls))}" in out
    expected = expected_outcomes(lines)
    engine = sa.create_engine(url)
    assert counted(engine, "images") == {k: n for k, n in expected.items() if n}
    with engine.connect() as conn:
        states = dict(
            conn.execute(
                sa.select(crawl_run_items.c.state, sa.func.count())
                .where(crawl_run_items.c.run_id == crawl_id_for(str(urls)))
                .group_by(crawl_run_items.c.state)
            ).all()
        )
    engine.dispose()
    assert states == {
        "done": expected["success"] + expected["duplicate"],
        "failed": expected["error"],
    }
