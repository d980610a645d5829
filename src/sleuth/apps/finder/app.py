"""The finder app's declaration: from an artwork's page to the posts that contain it, on the
artist's X, Mastodon and Bluesky accounts (Artists on Twitter Finder, rebuilt).

Imports only `sleuth.app` and the stdlib-only settings at first; the rest is imported when
the engine asks for it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sleuth.app import App
from sleuth.apps.finder.settings import NAME, FinderSettings

if TYPE_CHECKING:
    from flask import Blueprint


def _blueprints() -> Sequence[Blueprint]:
    from sleuth.apps.finder.aotf import blueprint

    return [blueprint]


app = App(
    name=NAME,
    description="The artwork finder: which posts of the artist's accounts contain an artwork.",
    settings=FinderSettings,
    migrations=Path(__file__).parent / "migrations",
    blueprints=_blueprints,
    inflight_blobs=("fquery",),  # aotf.QUERY_BLOB: an uploaded image waiting for its search
)
