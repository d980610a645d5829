"""`sleuth console`: AOTF's console commands and any sleuth command line, one per line, an
error printed and the console going on, the history kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sleuth.app import App


def console(tmp_path: Path, lines: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLEUTH_")}
    env["SLEUTH_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "sleuth.cli", "console"],
        input=lines,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_aotf_s_commands_run_and_an_error_does_not_end_the_console(tmp_path: Path) -> None:
    done = console(tmp_path, "help\nstats\nnonsense\nqueues\nquery --help\nstop\nstatus\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for name, line in [("query", "finder query"), ("threads", "workers"), ("stats", "status")]:
        assert f"{name}" in out and f"sleuth {line}" in out
    assert "finder    0 accounts indexed" in out  # stats ran `sleuth status`
    assert "No such command 'nonsense'" in done.stderr
    assert "no jobs queued" in out  # the line after the error ran
    assert "Find the posts that contain the artwork" in out  # query = finder query
    assert out.count("database ") == 1  # `stop` left before the last line
    assert (tmp_path / "data" / ".console_history").exists()


def test_end_of_input_leaves_the_console(tmp_path: Path) -> None:
    assert console(tmp_path, "queues\n").returncode == 0


def test_an_app_s_console_names_stand_for_its_own_commands() -> None:
    with pytest.raises(ValueError, match="console name 'crawl'"):
        App(name="pics", description="x", console=(("crawl", "images crawl"),))
