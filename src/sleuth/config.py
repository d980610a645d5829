"""Effective configuration: built-in defaults < `sleuth.toml` < `SLEUTH_*` environment.

Every setting has a dotted name (`net.allow_private`); its environment variable is that name
upper-cased with dots as underscores and the `SLEUTH_` prefix (`SLEUTH_NET_ALLOW_PRIVATE`).
Top-level names keep their own spelling (`data_dir` → `SLEUTH_DATA_DIR`). Each installed app
that declares settings has its section under its name (`[images]`, `SLEUTH_IMAGES_*`),
validated the same way.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sleuth.app import AppError, installed_apps

CONFIG_FILE_ENV = "SLEUTH_CONFIG"
DEFAULT_CONFIG_FILE = "sleuth.toml"


class ConfigError(ValueError):
    """A setting that cannot be parsed; the message names the setting and its source."""


@dataclass(frozen=True)
class NetSettings:
    """Limits and politeness of every outgoing HTTP request (see `sleuth.net`)."""

    allow_private: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 30.0
    max_bytes: int = 25 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 2
    per_host_concurrency: int = 8
    per_host_delay: float = 0.0
    user_agent: str = "sleuth/0.1 (+self-hosted crawler)"
    # Local addresses requests are sent from, in turn, each with its own rate-limit budgets
    # (several addresses of this machine); empty: the system chooses.
    source_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImagingSettings:
    """Decoding limits: anything larger is refused before it can exhaust memory."""

    max_pixels: int = 64_000_000


@dataclass(frozen=True)
class WorkerSettings:
    """How many concurrent I/O jobs and CPU processes one `sleuth worker` runs."""

    concurrency: int = 64
    processes: int = 0  # 0: one per CPU core
    lease_seconds: float = 60.0
    max_attempts: int = 5


@dataclass(frozen=True)
class WebSettings:
    """`sleuth serve`: where it listens, its server (`auto`: gunicorn where it can run, else
    waitress; or either by name), its web worker processes (gunicorn) and their threads, and
    the reverse proxies whose `X-Forwarded-For` is believed (comma-separated addresses or
    networks; empty: none)."""

    host: str = "127.0.0.1"
    port: int = 5000
    server: str = "auto"
    workers: int = 2
    threads: int = 8
    trusted_proxies: str = ""


@dataclass(frozen=True)
class SourcesSettings:
    """Where each connector in `sleuth.sources` sends its requests: the real sites by default,
    the offline web when `sleuth emulator env` says so. A user still gives the real URLs
    (an artwork page, a profile); only the requests go here. `{server}` in `mastodon_url` is
    the account's home server; `{name}` in `carrd_url` is the site's name. X needs an
    app-only bearer token: without one its connector is off, and says so."""

    x_api_url: str = "https://api.x.com"
    x_bearer_token: str = ""
    mastodon_url: str = "https://{server}"
    bluesky_appview_url: str = "https://public.api.bsky.app"
    bluesky_pds_url: str = "https://bsky.social"
    danbooru_url: str = "https://danbooru.donmai.us"
    derpibooru_url: str = "https://derpibooru.org"
    furbooru_url: str = "https://furbooru.org"
    deviantart_url: str = "https://www.deviantart.com"
    deviantart_oembed_url: str = "https://backend.deviantart.com/oembed"
    pixiv_url: str = "https://www.pixiv.net"
    linktree_url: str = "https://linktr.ee"
    carrd_url: str = "https://{name}.carrd.co"


def _app_sections() -> dict[str, Any]:
    """The default settings section of every installed app that declares one, by app name."""
    try:
        apps = installed_apps()
    except AppError as exc:
        raise ConfigError(str(exc)) from None
    core = {f.name for f in fields(Settings)}
    sections: dict[str, Any] = {}
    for app in apps:
        if app.name in core:
            raise ConfigError(f"app {app.name!r} is named like the core setting {app.name!r}")
        if app.settings is not None:
            sections[app.name] = app.settings()
    return sections


@dataclass(frozen=True)
class Settings:
    """The core settings, and under `apps` each installed app's own section (`[<name>]`)."""

    data_dir: Path = Path("sleuth-data")
    database_url: str = ""  # empty: SQLite file in data_dir
    queue_url: str = ""  # empty: SQLite queue file in data_dir
    blob_dir: Path | None = None  # None: data_dir / "blobs"
    net: NetSettings = field(default_factory=NetSettings)
    imaging: ImagingSettings = field(default_factory=ImagingSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    web: WebSettings = field(default_factory=WebSettings)
    sources: SourcesSettings = field(default_factory=SourcesSettings)
    apps: dict[str, Any] = field(default_factory=_app_sections, hash=False)

    def app(self, name: str) -> Any:
        """The settings section of the installed app `name`."""
        try:
            return self.apps[name]
        except KeyError:
            raise KeyError(f"app {name!r} declares no settings section") from None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'sleuth.db').resolve()}"

    @property
    def effective_queue_url(self) -> str:
        return self.queue_url or f"sqlite:///{(self.data_dir / 'queue.db').resolve()}"

    @property
    def effective_blob_dir(self) -> Path:
        return self.blob_dir if self.blob_dir is not None else self.data_dir / "blobs"


_PASSWORD = re.compile(r"(://[^/@:]*:)[^@]*@")
_SECRET = re.compile(r"(^|_)(token|password|secret|key)$")  # shown as *** by `sleuth config`
DATABASES = ("sqlite", "postgresql", "mysql", "mariadb")


def check_database_url(url: str) -> None:
    """Refuse, with the reason, a `database_url` that no supported database answers to."""
    example = "postgresql://user:password@host:5432/db, mysql+pymysql://user@host/db"
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        raise ValueError(
            f"not a database URL: {mask_url(url)!r}; expected e.g. {example}"
        ) from None
    if backend not in DATABASES:
        raise ValueError(
            f"unsupported database {backend!r} in {mask_url(url)!r}; use one of {DATABASES}"
        )


def check_queue_url(url: str) -> None:
    """Refuse, with the reason, a `queue_url` that names no supported queue (read in full by
    the queue layer's own parser)."""
    from sleuth.jobs.urls import parse_queue_url

    parse_queue_url(url)


def parse_source_addresses(value: Any) -> tuple[str, ...]:
    """Local addresses from a TOML list or a comma- or space-separated string, each an IP
    address literal given once."""
    items = value if isinstance(value, list) else str(value).replace(",", " ").split()
    out: list[str] = []
    for item in items:
        try:
            address = str(ipaddress.ip_address(str(item).strip()))
        except ValueError:
            raise ValueError(
                f"{item!r} is not an IP address; give this machine's own addresses,"
                " e.g. 192.0.2.10,192.0.2.11"
            ) from None
        if address in out:
            raise ValueError(f"{address} is given twice")
        out.append(address)
    return tuple(out)


_CHECKS = {"database_url": check_database_url, "queue_url": check_queue_url}


def _parse(value: Any, kind: Any, name: str, source: str) -> Any:
    """Convert a TOML or environment value to the setting's declared type."""
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
        if name == "net.source_addresses":
            return parse_source_addresses(value)
        if kind is str:
            text = str(value)
            if text and name in _CHECKS:
                _CHECKS[name](text)
            return text
        if kind in (Path, Path | None):
            return Path(str(value)).expanduser() if str(value) else None
        if kind == tuple[str, ...]:  # a TOML array, or comma-separated in the environment
            items = value if isinstance(value, list) else str(value).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
    except ValueError as exc:
        raise ConfigError(f"{name} from {source}: {exc}") from None
    raise ConfigError(f"{name} from {source}: unsupported type {kind!r}")


def _members(obj: Any) -> dict[str, Any]:
    """The settings of one level by name: a section's fields; at the top, the core settings
    and each installed app's section, which sleuth.toml and the environment name alike."""
    members = {f.name: getattr(obj, f.name) for f in fields(obj)}
    if isinstance(obj, Settings):
        del members["apps"]
        members.update(obj.apps)
    return members


def _replace(obj: Any, changes: dict[str, Any]) -> Any:
    if isinstance(obj, Settings):
        sections = {k: v for k, v in changes.items() if k in obj.apps}
        core = {k: v for k, v in changes.items() if k not in sections}
        return replace(obj, **core, apps={**obj.apps, **sections})
    return replace(obj, **changes)


def _apply(obj: Any, values: dict[str, Any], source: str, prefix: str = "") -> Any:
    hints = get_type_hints(type(obj))
    members = _members(obj)
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in members:
            raise ConfigError(f"unknown setting {prefix}{key} in {source}")
        current = members[key]
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{key} in {source} must be a table")
            changes[key] = _apply(current, value, source, f"{prefix}{key}.")
        else:
            changes[key] = _parse(value, hints[key], prefix + key, source)
    return _replace(obj, changes)


def _env_values(obj: Any, environ: dict[str, str], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, current in _members(obj).items():
        if is_dataclass(current):
            nested = _env_values(current, environ, f"{prefix}{name}_")
            if nested:
                out[name] = nested
        else:
            var = f"SLEUTH_{prefix}{name}".upper()
            if var in environ:
                out[name] = environ[var]
    return out


def load_settings(
    config_file: Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Build the effective settings; a missing default `sleuth.toml` is not an error."""
    env = dict(os.environ if environ is None else environ)
    settings = Settings()
    path = config_file or Path(env.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        settings = _apply(settings, data, str(path))
    elif config_file is not None or CONFIG_FILE_ENV in env:
        raise ConfigError(f"configuration file not found: {path}")
    return _apply(settings, _env_values(settings, env), "environment")


def mask_url(url: str) -> str:
    """Hide the password of a URL such as `postgresql://user:secret@host/db`, even of one too
    broken to parse (a bad port), which an error message may quote."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return _PASSWORD.sub(r"\1***@", url, count=1)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if port:
        netloc += f":{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def as_dict(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain values, secrets masked, for `sleuth config`."""

    def walk(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in _members(obj).items():
            if is_dataclass(value):
                out[name] = walk(value)
            elif isinstance(value, Path):
                out[name] = str(value)
            elif isinstance(value, tuple):
                out[name] = list(value)
            elif name.endswith("_url") and isinstance(value, str):
                out[name] = mask_url(value)
            elif _SECRET.search(name) and value:
                out[name] = "***"
            else:
                out[name] = value
        return out

    data = walk(settings)
    data["database_url"] = mask_url(settings.effective_database_url)
    data["queue_url"] = mask_url(settings.effective_queue_url)
    data["blob_dir"] = str(settings.effective_blob_dir)
    return data
