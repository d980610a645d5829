"""The malloc arena cap of the `sleuth` command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sleuth.cli.malloc import ARENAS, limit_malloc_arenas

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="the arena cap exists only in glibc",
)


def _run(code: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@glibc_only
def test_cap_is_set_here_and_passed_to_children() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    code = (
        "import os, subprocess, sys\n"
        "from sleuth.cli.malloc import limit_malloc_arenas\n"
        "print(limit_malloc_arenas())\n"
        "print(subprocess.run([sys.executable, '-c', 'import os; "
        'print(os.environ["MALLOC_ARENA_MAX"])\'], capture_output=True, text=True).stdout)'
    )
    assert _run(code, env).split() == ["True", str(ARENAS)]


def test_a_value_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "6")
    assert limit_malloc_arenas() is False
    assert os.environ["MALLOC_ARENA_MAX"] == "6"
