"""Installs an app for a test the way pip would: a `*.dist-info` folder whose
`entry_points.txt` names it in the `sleuth.apps` group, on `sys.path` and in the
`PYTHONPATH` of the commands the test runs."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sleuth.app import ENTRY_POINT_GROUP, installed_apps

REPO = Path(__file__).resolve().parents[3]


@contextmanager
def installed(folder: Path, dist: str, entries: dict[str, str]) -> Iterator[dict[str, str]]:
    """Install the distribution `dist` with `entries` (app name → `module:attribute`) until
    the block ends; yields the environment a `sleuth` subprocess needs to see it too."""
    info = folder / f"{dist}-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0\n")
    lines = [f"[{ENTRY_POINT_GROUP}]", *(f"{name} = {value}" for name, value in entries.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    sys.path.insert(0, str(folder))
    installed_apps.cache_clear()
    paths = [str(folder), str(REPO), os.environ.get("PYTHONPATH", "")]
    try:
        yield {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    finally:
        sys.path.remove(str(folder))
        installed_apps.cache_clear()


@pytest.fixture
def sample_app(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The sample app installed beside the real ones; yields the subprocess environment."""
    with installed(tmp_path / "site", "sample_app", {"sample": "tests.apps.sample.app:app"}) as env:
        yield env
