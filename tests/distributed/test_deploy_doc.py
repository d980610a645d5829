"""docs/deploy.md, run as written on loopback: every `sh` block, in order, in one shell, with
the site values of its first block replaced by private servers on free ports. A block after
`<!-- loopback: mariadb -->` is the MariaDB variant, run on its own against the MariaDB server
of the tests."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.distributed.cluster import (
    GRACE,
    PostgresServer,
    clean_environ,
    expected_snapshot,
    free_port,
    gone,
    small_urls,
    snapshot,
    write_list,
)
from tests.patience import PATIENCE, wait_for
from tests.servers import MYSQL_URL, require

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
BLOCK = re.compile(r"(?:<!-- loopback: (?P<tag>\w+)[^>]*-->\n)?```sh\n(?P<code>.*?)```", re.S)
PIDS = ("worker.pid", "gray.pid", "web.pid")
REDIS_PASSWORD = "loopback-secret"
DB_PASSWORD = "loopback-db-secret"


def blocks(tag: str | None) -> list[str]:
    """The doc's `sh` blocks with this loopback tag (None: the untagged ones), in order."""
    return [m["code"] for m in BLOCK.finditer(DOC.read_text(encoding="utf-8")) if m["tag"] == tag]


def run_script(code: str, cwd: Path, site: dict[str, str], timeout: float) -> str:
    """Run `code` under bash -eu -o pipefail after the site values; returns its output."""
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in site.items())
    env = {
        **clean_environ(),
        "PATH": f"{Path(sys.executable).parent}:{clean_environ().get('PATH', '')}",
        "HOME": str(cwd / "home"),
        # Test-only: the image host is on loopback, and the machine has 2 cores.
        "SLEUTH_NET_ALLOW_PRIVATE": "1",
        "SLEUTH_WORKER_PROCESSES": "1",
    }
    done = subprocess.run(
        ["bash", "-eu", "-o", "pipefail", "-c", exports + code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_the_doc_has_the_blocks_this_test_expects() -> None:
    assert len(blocks("site")) == 1
    assert len(blocks("mariadb")) == 1
    commands = "\n".join(blocks(None))
    for command in (
        "redis-server",
        "psql",
        "sleuth worker >>",
        "sleuth worker --queues images.grayscale",
        "sleuth serve --no-workers",
        "sleuth images crawl urls.txt --workers 0",
        "sleuth queues",
        "sleuth workers",
        "sleuth stacks",
        "kill -TERM",
    ):
        assert command in commands, command


@pytest.fixture
def redis_port() -> Iterator[int]:
    """A free port for the doc's own redis-server; shut down (and its folder gone) after."""
    port = free_port()
    yield port
    client = ["redis-cli", "-p", str(port), "-a", REDIS_PASSWORD, "--no-auth-warning"]
    subprocess.run([*client, "shutdown", "nosave"], capture_output=True, timeout=PATIENCE)


def stop_leftovers(data_dir: Path) -> None:
    """Kill what the doc started and a failed run left running."""
    for name in PIDS:
        pid_file = data_dir / name
        if pid_file.exists():
            subprocess.run(["kill", "-KILL", pid_file.read_text().strip()], capture_output=True)


@pytest.mark.slow
def test_every_command_of_the_deploy_doc_works_on_loopback(
    tmp_path: Path, image_host: str, postgres_server: PostgresServer, redis_port: int
) -> None:
    lines = small_urls(image_host, 120)
    write_list(tmp_path / "urls.txt", lines)
    (tmp_path / "home").mkdir()
    site = {
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(redis_port),
        "REDIS_PASSWORD": REDIS_PASSWORD,
        "REDIS_DIR": str(tmp_path / "redis"),
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(postgres_server.port),
        "DB_NAME": "sleuth",
        "DB_USER": "sleuth",
        "DB_PASSWORD": DB_PASSWORD,
        "SHARED": str(tmp_path / "shared"),
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(free_port()),
    }
    data_dir = tmp_path / "home" / "sleuth-data"
    try:
        output = run_script("\n".join(blocks(None)), tmp_path, site, timeout=300)
        # The stop block sent SIGTERM: every process is gone within the grace period.
        pids = [int((data_dir / name).read_text()) for name in PIDS]
        wait_for(lambda: all(gone(pid) for pid in pids), "stopped by SIGTERM", GRACE + PATIENCE)
    finally:
        stop_leftovers(data_dir)

    assert "appendonly\nyes" in output
    assert "120 of 120 lines in" in output, output
    assert '"database_url": "postgresql://sleuth:***@127.0.0.1' in output
    assert DB_PASSWORD not in output and REDIS_PASSWORD not in output
    assert "stacks of 2 worker(s) written to stacks.txt" in output
    assert "0 of 0 dead job(s) sent back" in output
    database = f"postgresql+psycopg://sleuth@127.0.0.1:{postgres_server.port}/sleuth"
    assert snapshot(database) == expected_snapshot(lines)
    gray = list((tmp_path / "shared" / "blobs").rglob("*.gray"))
    assert len(gray) == len(snapshot(database).images)


def test_the_mariadb_variant_of_the_deploy_doc(tmp_path: Path) -> None:
    require("mysql", MYSQL_URL)
    name = f"sleuth_doc_{uuid.uuid4().hex[:8]}"
    server = sa.engine.make_url(MYSQL_URL)
    site = {
        "DB_HOST": server.host or "127.0.0.1",
        "DB_PORT": str(server.port or 3306),
        "DB_NAME": name,
        "DB_USER": name,
        "DB_PASSWORD": DB_PASSWORD,
    }
    (tmp_path / "home").mkdir()
    admin = sa.create_engine(MYSQL_URL, isolation_level="AUTOCOMMIT")
    try:
        output = run_script(blocks("mariadb")[0], tmp_path, site, timeout=120)
        assert f"database  mysql+pymysql://{name}:***@" in output, output
        with admin.connect() as conn:
            tables = set(conn.execute(sa.text(f"SHOW TABLES FROM {name}")).scalars())
        assert {"images", "crawl_run_items", "workers"} <= tables
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(sa.text(f"DROP USER IF EXISTS '{name}'@'%'"))
        admin.dispose()
