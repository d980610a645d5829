"""`sleuth.app`: the declaration refuses what the engine could not use, and discovery finds
apps through the `sleuth.apps` entry points, naming a broken plugin in its error."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from sleuth.app import App, AppError, Outcome, get_app, installed_apps, migration_dirs
from sleuth.cli.main import cli
from sleuth.config import ConfigError, Settings, load_settings
from sleuth.net.fetcher import Fetcher
from sleuth.runner import app_queues, job_kinds
from sleuth.services import Services
from tests.apps.sample.plugin import installed


def test_the_images_app_is_installed_by_its_entry_point() -> None:
    images = get_app("images")
    assert images in installed_apps()
    assert images.queues == ("images.fetch", "images.md5", "images.grayscale", "images.store")
    assert images.outcome_names() == ("success", "duplicate", "error")
    assert images.migrations in migration_dirs()
    with pytest.raises(KeyError, match="no installed app 'nope' \\(installed: images"):
        get_app("nope")


def test_installed_apps_are_cached_until_cleared(sample_app: object) -> None:
    assert installed_apps() is installed_apps()
    assert [a.name for a in installed_apps()] == ["images", "finder", "forum", "graph", "sample"]


def test_sleuth_s_own_apps_come_first_then_others_by_name(tmp_path: Path) -> None:
    entries = {"sample": "tests.apps.sample.app:app", "alpha": "tests.apps.sample.twin:alpha"}
    with installed(tmp_path, "more_apps", entries):
        assert [a.name for a in installed_apps()] == [
            "images",
            "finder",
            "forum",
            "graph",
            "alpha",
            "sample",
        ]


@dataclass(frozen=True)
class Good:
    limit: int = 1


@dataclass
class Mutable:
    limit: int = 1


@dataclass(frozen=True)
class NoDefault:
    limit: int


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"name": "Images"}, "app name must match"),
        ({"name": "a-b"}, "app name must match"),
        ({"settings": Mutable}, "frozen dataclass"),
        ({"settings": dict}, "frozen dataclass"),
        ({"settings": NoDefault}, "setting 'limit' needs a default"),
        ({"migrations": Path("/nonexistent/migrations")}, "no migration folder"),
        ({"queues": ("x.a",)}, "declare queues and job_kinds together"),
        ({"queues": ("x.a", "x.a"), "job_kinds": lambda s, f: []}, "declared twice"),
        ({"outcomes": (Outcome("ok", "ok", "#000000"),) * 2}, "outcome is declared twice"),
    ],
)
def test_a_declaration_the_engine_cannot_use_is_refused(fields: dict, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        App(**{"name": "x", "description": "x", **fields})
    App(name="x", description="a good one", settings=Good)


@pytest.mark.parametrize(
    ("name", "colour", "reason"),
    [("Bad", "#000000", "lower-case"), ("total", "#000000", "taken"), ("ok", "red", "#rrggbb")],
)
def test_an_outcome_needs_a_word_for_a_name_and_a_colour(
    name: str, colour: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        Outcome(name, name, colour)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            {"gone": "tests.apps.broken.fails:app"},
            r"app plugin 'gone' \(tests.apps.broken.fails:app\) failed to load: ImportError:"
            " No module named 'a_dependency_not_installed'",
        ),
        ({"gone": "tests.apps.broken.nowhere:app"}, "app plugin 'gone' .* ModuleNotFoundError"),
        ({"gone": "tests.apps.broken.plugins:missing"}, "app plugin 'gone' .* AttributeError"),
        ({"gone": "tests.apps.broken.plugins:not_an_app"}, "is a dict, not a sleuth.app.App"),
        ({"gone": "tests.apps.broken.plugins:misnamed"}, "declares the app 'elsewhere'"),
        ({"images": "tests.apps.sample.app:app"}, "two app plugins are named 'images'"),
    ],
)
def test_a_broken_plugin_is_named_in_a_clear_error(
    tmp_path: Path, entries: dict[str, str], message: str
) -> None:
    with installed(tmp_path, "broken_app", entries) as env:
        with pytest.raises(AppError, match=message):
            installed_apps()
        # The command says the same in one line, with no traceback.
        result = subprocess.run(
            [sys.executable, "-m", "sleuth.cli", "--help"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 1, result.stdout
        assert "Traceback" not in result.stderr
        assert re.search(message, result.stderr), result.stderr
    assert [a.name for a in installed_apps()] == [
        "images",
        "finder",
        "forum",
        "graph",
    ]  # uninstalled: gone again


def test_two_apps_may_not_share_a_queue(tmp_path: Path) -> None:
    entries = {"sample": "tests.apps.sample.app:app", "twin": "tests.apps.sample.twin:app"}
    with installed(tmp_path, "twins", entries), pytest.raises(AppError, match="both declare"):
        installed_apps()


def test_an_app_may_not_take_the_name_of_a_core_setting(tmp_path: Path) -> None:
    clash = pytest.raises(ConfigError, match="app 'web' is named like the core setting")
    with installed(tmp_path, "web_app", {"web": "tests.apps.broken.plugins:web"}), clash:
        load_settings(environ={})


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("worker", "app 'worker' is named like the engine command `sleuth worker`"),
        ("regrouped", "its click group is named 'x'; name it 'regrouped'"),
    ],
)
def test_an_app_group_must_carry_the_app_name(tmp_path: Path, entry: str, message: str) -> None:
    with installed(tmp_path, "cli_app", {entry: f"tests.apps.broken.plugins:{entry}"}):
        result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 1 and message in result.output


def test_job_kinds_must_serve_the_declared_queues(tmp_path: Path) -> None:
    entries = {
        "sample": "tests.apps.sample.app:app",
        "mismatched": "tests.apps.broken.plugins:mismatched",
    }
    with installed(tmp_path, "mismatched_app", entries):
        services = Services(Settings(data_dir=tmp_path / "data"))
        try:
            assert app_queues("mismatched") == ["mismatched.q", "sleuth.cleanup"]
            asyncio.run(_check_job_kinds(services))
        finally:
            services.close()


async def _check_job_kinds(services: Services) -> None:
    async with Fetcher(services.settings.net) as fetcher:
        with pytest.raises(AppError, match=r"declares queues \['mismatched.q'\] but its job"):
            job_kinds(services, fetcher)
        # The queues of the other apps are built without it.
        assert [k.queue for k in job_kinds(services, fetcher, ["sample.note"])] == ["sample.note"]
        with pytest.raises(ValueError, match=r"unknown queue\(s\) \['nope'\]"):
            job_kinds(services, fetcher, ["nope"])
