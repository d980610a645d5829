"""The declaration of an app, and the one place installed apps are found.

An app (`images`, or one from another package) is a single `App` object published in the
`sleuth.apps` entry-point group. The engine reads everything it needs from it (settings
section, migrations, job kinds, periodic jobs, blueprints, CLI group, status lines,
monitoring outcomes, in-flight blob kinds, demo step) and never imports an app by name.

The heavy parts (handlers, blueprints, CLI) are factories, so reading the declarations (which
loading the settings does) imports no app code beyond the declaration module itself."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, fields, is_dataclass
from functools import cache
from importlib.metadata import EntryPoint, EntryPoints, entry_points
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click
    from flask import Blueprint

    from sleuth.config import Settings
    from sleuth.crawl.runs import JobFor
    from sleuth.jobs.schedule import Periodic
    from sleuth.jobs.worker import Kind
    from sleuth.net.fetcher import Fetcher
    from sleuth.services import Services

ENTRY_POINT_GROUP = "sleuth.apps"
ENGINE_DISTRIBUTION = "sleuth"
APP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class AppError(RuntimeError):
    """An installed app that cannot be used; the message names the app and the reason."""


@dataclass(frozen=True)
class Outcome:
    """One outcome an app counts per minute (`observe.counters`); `colour` (`#rrggbb`) and
    `label` are how the monitoring page draws it."""

    name: str
    label: str
    colour: str

    def __post_init__(self) -> None:
        if not APP_NAME.fullmatch(self.name):
            raise ValueError(f"outcome name must be a lower-case word, not {self.name!r}")
        if self.name == "total":
            raise ValueError("outcome name 'total' is taken by the sum of all outcomes")
        if not _COLOUR.match(self.colour):
            raise ValueError(f"outcome {self.name!r}: colour must be #rrggbb, not {self.colour!r}")


@dataclass(frozen=True)
class StatusLine:
    """One labelled line of `sleuth status` (`images    12 stored, 14 source URLs`)."""

    label: str
    text: str


@dataclass(frozen=True)
class DemoRun:
    """What an app's `sleuth demo` step gets: fresh embedded services (private addresses
    allowed, for the offline web on loopback), the demo folder, the served web's URL, how
    much input to make (None: the app's own default), and a stack to register what must be
    stopped when the demo ends (emulators)."""

    services: Services
    folder: Path
    web_url: str
    count: int | None
    cleanup: ExitStack


@dataclass(frozen=True)
class App:
    """Everything the engine needs to run an app.

    `settings`: a frozen dataclass of defaults, read from `[<name>]` in sleuth.toml and
    `SLEUTH_<NAME>_<FIELD>`, reached with `settings.app(name)`. `migrations`: the app's
    Alembic version folder (its branch label is the app's name). `queues`: the queues of its
    job kinds, declared statically so commands can choose queues without building handlers;
    `job_kinds(services, fetcher)` must serve exactly these. `periodic(settings)`: the jobs
    its scheduler declares. `inflight_blobs`: blob extensions of work in progress that the
    cleanup job removes when stale. `outcomes`: what it counts per minute, in drawing order,
    each outcome being one of `outcome_unit` (plural, for the monitoring page: "images").
    `crawl_jobs()`: for an app that crawls on the crawl layer (`sleuth.crawl`), the function
    giving the job that (re)runs one of its items; with it the engine adds `sleuth <name>
    errors` and `retry-errors` to the app's group and serves `GET /api/<name>/errors`.
    `console`: short names `sleuth console` offers for the app's commands, as (name, the
    command line it stands for) pairs (`("query", "finder query")`). `pages`: its HTML pages
    the top bar of every page links, as (label, path) pairs (`("forum", "/forum")`).
    """

    name: str
    description: str
    settings: type | None = None
    migrations: Path | None = None
    queues: tuple[str, ...] = ()
    job_kinds: Callable[[Services, Fetcher], Sequence[Kind]] | None = None
    periodic: Callable[[Settings], Sequence[Periodic]] | None = None
    blueprints: Callable[[], Sequence[Blueprint]] | None = None
    cli: Callable[[], click.Group] | None = None
    status: Callable[[Services], Sequence[StatusLine]] | None = None
    outcomes: tuple[Outcome, ...] = ()
    outcome_unit: str = "items"
    inflight_blobs: tuple[str, ...] = ()
    demo: Callable[[DemoRun], None] | None = None
    crawl_jobs: Callable[[], JobFor] | None = None
    console: tuple[tuple[str, str], ...] = ()
    pages: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not APP_NAME.fullmatch(self.name):
            raise ValueError(
                f"app name must match {APP_NAME.pattern} (it names a table prefix, a"
                f" configuration section and a command), not {self.name!r}"
            )
        if self.settings is not None and not (
            is_dataclass(self.settings)
            and isinstance(self.settings, type)
            and self.settings.__dataclass_params__.frozen  # type: ignore[attr-defined]
        ):
            raise ValueError(f"app {self.name!r}: settings must be a frozen dataclass class")
        if self.settings is not None:
            for f in fields(self.settings):
                if f.default is f.default_factory:  # both MISSING: no default
                    raise ValueError(f"app {self.name!r}: setting {f.name!r} needs a default value")
        if self.migrations is not None and not self.migrations.is_dir():
            raise ValueError(f"app {self.name!r}: no migration folder at {self.migrations}")
        if bool(self.queues) != (self.job_kinds is not None):
            raise ValueError(f"app {self.name!r}: declare queues and job_kinds together")
        for label, path in self.pages:
            if not label or not path.startswith("/"):
                raise ValueError(f"app {self.name!r}: a page is (label, /path), not {label, path}")
        if len(set(self.queues)) != len(self.queues):
            raise ValueError(f"app {self.name!r}: a queue is declared twice in {self.queues}")
        for alias, line in self.console:
            if not APP_NAME.fullmatch(alias) or not line.startswith(f"{self.name} "):
                raise ValueError(
                    f"app {self.name!r}: console name {alias!r} must be a word standing for"
                    f" one of its own commands (`{self.name} ...`), not {line!r}"
                )
        names = [o.name for o in self.outcomes]
        if len(set(names)) != len(names):
            raise ValueError(f"app {self.name!r}: an outcome is declared twice in {names}")

    def outcome_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outcomes)


def _load(point: EntryPoint) -> App:
    try:
        app = point.load()
    except Exception as exc:
        raise AppError(
            f"app plugin {point.name!r} ({point.value}) failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(app, App):
        raise AppError(
            f"app plugin {point.name!r} ({point.value}) is a {type(app).__name__}, not a"
            " sleuth.app.App"
        )
    if app.name != point.name:
        raise AppError(
            f"app plugin {point.name!r} ({point.value}) declares the app {app.name!r}; the"
            " entry point must carry the app's name"
        )
    return app


def _ordered(points: EntryPoints) -> list[EntryPoint]:
    """sleuth's own apps first, in the order its pyproject.toml lists them (so the first, the
    monitoring page's default, stays the same when apps are added), then other packages'
    apps by name."""
    from sleuth.apps import OWN_ORDER  # the package's docstring and this tuple, no app code

    own = [p for p in points if p.dist is not None and p.dist.name == ENGINE_DISTRIBUTION]
    rank = {name: i for i, name in enumerate(OWN_ORDER)}
    own.sort(key=lambda p: (rank.get(p.name, len(rank)), p.name))
    others = sorted((p for p in points if p not in own), key=lambda p: (p.name, p.value))
    return [*own, *others]


@cache
def installed_apps() -> tuple[App, ...]:
    """Every app installed in this Python environment (entry-point group `sleuth.apps`), in
    `_ordered`'s order; cached, so `installed_apps.cache_clear()` after installing one."""
    points = _ordered(entry_points(group=ENTRY_POINT_GROUP))
    seen: dict[str, str] = {}
    for point in points:
        if point.name in seen and seen[point.name] != point.value:
            raise AppError(
                f"two app plugins are named {point.name!r}: {seen[point.name]} and {point.value}"
            )
        seen[point.name] = point.value
    apps = tuple(_load(p) for p in points if seen.pop(p.name, None) is not None)
    queue_owner: dict[str, str] = {}
    for app in apps:
        for queue in app.queues:
            if queue in queue_owner:
                raise AppError(
                    f"apps {queue_owner[queue]!r} and {app.name!r} both declare queue {queue!r}"
                )
            queue_owner[queue] = app.name
    return apps


def get_app(name: str) -> App:
    """The installed app called `name`; a `KeyError` names the installed ones."""
    for app in installed_apps():
        if app.name == name:
            return app
    known = ", ".join(a.name for a in installed_apps()) or "none"
    raise KeyError(f"no installed app {name!r} (installed: {known})")


def migration_dirs() -> list[Path]:
    """The Alembic version folders of every installed app, applied with the core's."""
    return [app.migrations for app in installed_apps() if app.migrations is not None]
