"""The Redis Lua scripts, kept as `.lua` files in a package's `lua/` folder (package data: the
queue layer's in `jobs/lua/`, the host clock's in `net/lua/`) so that they read, diff and lint
as Lua; each is read from its package once per process."""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def lua(name: str, package: str = "sleuth.jobs") -> str:
    """The text of `<package>/lua/<name>.lua`."""
    return resources.files(package).joinpath("lua", f"{name}.lua").read_text("utf-8")
