from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.config import ConfigError, as_dict, load_settings


def test_defaults_file_then_environment(tmp_path: Path) -> None:
    toml = tmp_path / "sleuth.toml"
    toml.write_text('data_dir = "/srv/s"\n[net]\nmax_redirects = 2\nread_timeout = 3.5\n')
    s = load_settings(toml, environ={"SLEUTH_NET_MAX_REDIRECTS": "7"})
    assert s.data_dir == Path("/srv/s")
    assert s.net.read_timeout == 3.5  # from the file
    assert s.net.max_redirects == 7  # environment wins over the file
    assert s.net.allow_private is False  # default
    assert s.effective_database_url == "sqlite:////srv/s/sleuth.db"


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("yes", True), ("0", False)])
def test_allow_private_from_environment(value: str, expected: bool) -> None:
    s = load_settings(environ={"SLEUTH_NET_ALLOW_PRIVATE": value})
    assert s.net.allow_private is expected


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(environ={"SLEUTH_CONFIG": str(tmp_path / "absent.toml")})


def test_errors_name_the_setting(tmp_path: Path) -> None:
    toml = tmp_path / "sleuth.toml"
    toml.write_text("[net]\nretries = 'many'\n")
    with pytest.raises(ConfigError, match=r"net\.retries"):
        load_settings(toml, environ={})
    toml.write_text("nonsense = 1\n")
    with pytest.raises(ConfigError, match="unknown setting nonsense"):
        load_settings(toml, environ={})
    with pytest.raises(ConfigError, match=r"worker\.concurrency from environment"):
        load_settings(environ={"SLEUTH_WORKER_CONCURRENCY": "x"})


def test_config_dump_masks_secrets() -> None:
    s = load_settings(
        environ={"SLEUTH_DATABASE_URL": "postgresql://bob:hunter2@db.example:5432/sleuth"}
    )
    dumped = as_dict(s)
    assert dumped["database_url"] == "postgresql://bob:***@db.example:5432/sleuth"
    assert "hunter2" not in repr(dumped)
