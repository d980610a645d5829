"""Fixtures: the offline web (world 0) on loopback, settings that route every connector to it,
and a loopback-allowed fetcher; the art sites of a small world; readers of the recorded real
responses (copied into tests/fixtures/real with their licences)."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from sleuth.config import NetSettings, SourcesSettings
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.artworld import ArtWorld
from sleuth.emulator.cli import emulator_sources
from sleuth.net.fetcher import Fetcher
from tests.sources.artweb import ArtWeb, serve_art_web

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
"""The recorded real responses (see its README.md for where each comes from)."""
NET = NetSettings(retries=0, connect_timeout=5.0, read_timeout=10.0, total_timeout=20.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def world() -> ArtWorld:
    return ArtWorld(0)


@pytest.fixture(scope="session")
def emulator_url(world: ArtWorld) -> Iterator[str]:
    with EmulatorServer(create_imagehost_app(0, world=world, rate_limits=False)) as url:
        yield url


@pytest.fixture(scope="session")
def sources(emulator_url: str) -> SourcesSettings:
    return SourcesSettings(**emulator_sources(emulator_url))


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(NET, allow_private=True, backoff=0.01) as f:
        yield f


def no_token(sources: SourcesSettings) -> SourcesSettings:
    return replace(sources, x_bearer_token="")


def cassette(path: str) -> list[dict[str, Any]]:
    """A VCR cassette's interactions as (uri, status, headers, parsed JSON body)."""
    data = yaml.safe_load((REAL / path).read_text())
    out = []
    for item in data["interactions"]:
        response = item["response"]
        headers = {k.lower(): v[0] for k, v in response["headers"].items()}
        raw = response["body"]["string"]
        if isinstance(raw, bytes):
            raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            raw = raw.decode()
        body = json.loads(raw) if raw else None
        out.append(
            {
                "uri": item["request"]["uri"],
                "method": item["request"]["method"],
                "status": response["status"]["code"],
                "headers": headers,
                "body": body,
            }
        )
    return out


def recorded(path: str) -> dict[str, Any]:
    """An academictwitteR recording: status, headers and the JSON body."""
    data = json.loads((REAL / path).read_text())
    response = data["response"]
    return {
        "status": response["status"],
        "headers": {k.lower(): v for k, v in response["headers"]},
        "body": json.loads(response["body"]) if response["body"] else None,
    }


def jsonl(path: str) -> list[dict[str, Any]]:
    """twarc-csv lines without twarc's own `__twarc` key."""
    lines = (REAL / path).read_text().splitlines()
    out = []
    for line in lines:
        if line.strip():
            body = json.loads(line)
            body.pop("__twarc", None)
            out.append(body)
    return out


def shape(value: Any) -> Any:
    """The keys and JSON types of a value, recursively (lists by their first item), so an
    emulator's answer can be compared with a recording's."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if value is None:
        return None
    return type(value).__name__


def same_shape(ours: Any, real: Any, keys: list[str] | None = None, path: str = "") -> list[str]:
    """Where `ours` differs from `real` in type or in the keys named (all of `real`'s by
    default); a null on either side matches anything (optional fields)."""
    problems: list[str] = []
    if real is None or ours is None:
        return problems
    if isinstance(real, dict):
        if not isinstance(ours, dict):
            return [f"{path}: {type(ours).__name__} instead of an object"]
        for key in keys if keys is not None else list(real):
            if key not in ours:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += same_shape(ours[key], real[key], None, f"{path}.{key}")
        return problems
    if isinstance(real, list):
        if not isinstance(ours, list):
            return [f"{path}: {type(ours).__name__} instead of a list"]
        if real and ours:
            problems += same_shape(ours[0], real[0], keys, f"{path}[0]")
        return problems
    if (
        isinstance(real, bool) != isinstance(ours, bool)
        or (isinstance(real, (int, float)) != isinstance(ours, (int, float)))
        or isinstance(real, str) != isinstance(ours, str)
    ):
        return [f"{path}: {type(ours).__name__} instead of {type(real).__name__}"]
    return problems


LONG = 1e9
"""A rate-limit window (s) that no test run crosses: windows start at its multiples since the
epoch, the next in 2033, so a budget test never sees its count reset under it."""


@pytest.fixture(scope="session")
def art_web() -> Iterator[ArtWeb]:
    yield from serve_art_web()
