"""No output of any command shows a password of the database or queue URL: the commands run
on a real PostgreSQL and a real Redis user with a password, verbose, and every line is read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa

from tests.jobs.conftest import delete_prefix
from tests.patience import wait_for
from tests.servers import REDIS_URL, require, scratch_database

PASSWORD = "pw-" + uuid.uuid4().hex  # unique: found only if some output leaks it
DEADLINE = 90.0
SLEUTH = [sys.executable, "-m", "sleuth.cli", "-vv"]


@pytest.fixture
def secret_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """SLEUTH_* URLs with passwords: a Redis user of the test's own (its keys only), and a
    scratch PostgreSQL database (trust authentication ignores the password, the URL has it)."""
    require("redis", REDIS_URL)
    prefix = f"sleuth-test-{uuid.uuid4().hex[:12]}"
    user = f"{prefix}-user"
    admin = redis.Redis.from_url(REDIS_URL)
    admin.execute_command("ACL", "SETUSER", user, "on", f">{PASSWORD}", f"~{prefix}:*", "+@all")
    host = redis.connection.parse_url(REDIS_URL)
    queue_url = (
        f"redis://{user}:{PASSWORD}@{host.get('host', '127.0.0.1')}:{host.get('port', 6379)}"
        f"/{host.get('db', 0)}?prefix={prefix}"
    )
    try:
        with scratch_database("postgresql") as database:
            url = sa.engine.make_url(database).set(password=PASSWORD)
            env = {k: v for k, v in os.environ.items() if not k.startswith("SLEUTH_")}
            env.update(
                SLEUTH_DATA_DIR=str(tmp_path / "data"),
                SLEUTH_DATABASE_URL=url.render_as_string(hide_password=False),
                SLEUTH_QUEUE_URL=queue_url,
                SLEUTH_WORKER_PROCESSES="1",
                SLEUTH_WEB_WORKERS="1",
            )
            yield env
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()
        delete_prefix(prefix)


def run(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [*SLEUTH, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=DEADLINE
    )
    return done.stdout + done.stderr


def run_until_stopped(env: dict[str, str], cwd: Path, ready: str, *args: str) -> str:
    """Start a long-running command, wait for `ready` in its output, then SIGTERM it."""
    log = cwd / f"{args[0]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*SLEUTH, *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: ready in log.read_text() or process.poll() is not None, DEADLINE)
        if args[0] == "serve":
            url = log.read_text().split("sleuth serving on ")[1].split()[0]
            for path in ("metrics", "api/engine/workers", "healthz"):
                log.open("a").write(httpx.get(f"{url}{path}", timeout=DEADLINE).text)
        process.send_signal(signal.SIGTERM)
        process.wait(DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return log.read_text()


def test_no_output_shows_a_password(secret_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    outputs = {
        "config": run(secret_env, tmp_path, "config"),
        "status": run(secret_env, tmp_path, "status"),
        "queues": run(secret_env, tmp_path, "queues"),
        "workers": run(secret_env, tmp_path, "workers", "--json"),
        "crawl": run(secret_env, tmp_path, "images", "crawl", "empty.txt", "--workers", "0"),
        "worker": run_until_stopped(secret_env, tmp_path, "worker serving", "worker"),
        "serve": run_until_stopped(
            secret_env, tmp_path, "sleuth serving on", "serve", "--port", "0"
        ),
    }
    bad_port = {**secret_env, "SLEUTH_QUEUE_URL": f"redis://u:{PASSWORD}@127.0.0.1:99999/0"}
    outputs["bad queue url"] = run(bad_port, tmp_path, "config")
    bad_db = {**secret_env, "SLEUTH_DATABASE_URL": f"nosuchdb://u:{PASSWORD}@127.0.0.1/x"}
    outputs["bad database url"] = run(bad_db, tmp_path, "status")
    assert "worker serving" in outputs["worker"] and "***" in outputs["worker"]
    assert "sleuth serving on" in outputs["serve"]
    assert "99999" in outputs["bad queue url"] and "nosuchdb" in outputs["bad database url"]
    leaked = [name for name, text in outputs.items() if PASSWORD in text]
    assert leaked == [], {name: outputs[name][-2000:] for name in leaked}
