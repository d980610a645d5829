"""Fixtures: the art sites of a small world over loopback, for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sources.artweb import ArtWeb, serve_art_web


@pytest.fixture(scope="session")
def art_web() -> Iterator[ArtWeb]:
    yield from serve_art_web()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
