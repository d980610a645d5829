"""Fixtures: the image host of world 0, served over loopback for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sleuth.emulator import EmulatorServer, create_imagehost_app
from tests.patience import PATIENCE


@pytest.fixture(scope="session")
def imagehost_url() -> Iterator[str]:
    with EmulatorServer(create_imagehost_app(seed=0)) as url:
        yield url


@pytest.fixture
def client(imagehost_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=imagehost_url, timeout=PATIENCE) as http:
        yield http
