"""A database URL whose driver is not installed: one line naming the extra, exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Runs `sleuth ARGS` with the drivers' imports blocked, as on an install without the extra.
BLOCKED = """
import sys
for name in ("psycopg", "psycopg2", "pymysql", "MySQLdb"):
    sys.modules[name] = None  # `import name` now fails as it does when it is not installed
from sleuth.cli.main import main
sys.argv = ["sleuth", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("postgresql://u:secret@127.0.0.1:5432/test", "postgres"),
        ("mysql://root:secret@127.0.0.1:3306/test", "mysql"),
        ("mariadb+pymysql://root@127.0.0.1:3306/test", "mysql"),
    ],
)
def test_missing_driver_names_the_extra_to_install(url: str, extra: str, tmp_path: Path) -> None:
    env = {"SLEUTH_DATA_DIR": str(tmp_path), "SLEUTH_DATABASE_URL": url, "PATH": "/usr/bin"}
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED, "status"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"pip install 'sleuth[{extra}]'" in lines[0]
    assert "secret" not in done.stderr + done.stdout
