"""The Redis Lua scripts of the queue layer, kept as `.lua` files in `jobs/lua/` (package data)
so that they read, diff and lint as Lua; each is read from the package once per process."""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def lua(name: str) -> str:
    """The text of `jobs/lua/<name>.lua`."""
    return resources.files("sleuth.jobs").joinpath("lua", f"{name}.lua").read_text("utf-8")
