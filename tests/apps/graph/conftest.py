"""Fixtures: the offline web of world 0 on loopback and fresh embedded services whose
connectors it answers, as the graph crawler's tests and its kill/resume test share them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from sleuth.apps.graph.app import GraphSettings
from sleuth.config import Settings, SourcesSettings
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.artworld import ArtWorld
from sleuth.emulator.bluesky import BlueskyEmulator, bluesky_blueprints
from sleuth.emulator.cli import emulator_sources
from sleuth.services import Services


@pytest.fixture(scope="session")
def world() -> ArtWorld:
    return ArtWorld(0)


@pytest.fixture(scope="session")
def emulator_url(world: ArtWorld) -> Iterator[str]:
    with EmulatorServer(create_imagehost_app(0, world=world, rate_limits=False)) as url:
        yield url


@pytest.fixture(scope="session")
def big_world() -> ArtWorld:
    """A world whose Bluesky accounts have more followers than one page holds."""
    return ArtWorld(1, artists=300)


@pytest.fixture(scope="session")
def stuck_url(big_world: ArtWorld) -> Iterator[str]:
    """A Bluesky AppView whose last page of every list sends its cursor back (the known bug)."""
    app = Flask(__name__)
    emulator = BlueskyEmulator(big_world, limit=None, stuck_cursor=True)
    for blueprint in bluesky_blueprints(emulator):
        app.register_blueprint(blueprint)
    with EmulatorServer(app) as url:
        yield url


def graph_settings(data: Path, emulator: str, **graph: object) -> Settings:
    settings = Settings(data_dir=data)
    return dataclasses.replace(
        settings,
        net=dataclasses.replace(settings.net, allow_private=True, retries=0),
        sources=SourcesSettings(**emulator_sources(emulator)),
        worker=dataclasses.replace(settings.worker, processes=1),
        apps={**settings.apps, "graph": dataclasses.replace(GraphSettings(), **graph)},
    )


@pytest.fixture
def services(tmp_path: Path, emulator_url: str) -> Iterator[Services]:
    services = Services(graph_settings(tmp_path, emulator_url))
    yield services
    services.close()
