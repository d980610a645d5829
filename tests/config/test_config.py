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


def test_source_addresses_from_file_and_environment(tmp_path: Path) -> None:
    toml = tmp_path / "sleuth.toml"
    toml.write_text('[net]\nsource_addresses = ["127.0.0.2", "::1"]\n')
    assert load_settings(toml, environ={}).net.source_addresses == ("127.0.0.2", "::1")
    env = {"SLEUTH_NET_SOURCE_ADDRESSES": "127.0.0.2, 127.0.0.3"}
    assert load_settings(environ=env).net.source_addresses == ("127.0.0.2", "127.0.0.3")
    assert load_settings(environ={}).net.source_addresses == ()
    shown = as_dict(load_settings(environ=env))["net"]["source_addresses"]
    assert list(shown) == ["127.0.0.2", "127.0.0.3"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [("127.0.0.2,eth0", "'eth0' is not an IP address"), ("::1 ::1", "::1 is given twice")],
)
def test_bad_source_addresses_are_refused_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"SLEUTH_NET_SOURCE_ADDRESSES": value})
    assert str(info.value).startswith("net.source_addresses from environment: ")
    assert reason in str(info.value)


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


def test_distributed_settings_from_file_and_environment(tmp_path: Path) -> None:
    toml = tmp_path / "sleuth.toml"
    toml.write_text(
        'database_url = "postgresql://sleuth:pw@db.example/sleuth"\n'
        'queue_url = "redis://queue.example:6379/2"\n'
        'blob_dir = "/mnt/shared/blobs"\n'
    )
    s = load_settings(toml, environ={"SLEUTH_QUEUE_URL": "redis://other.example/3?prefix=a"})
    assert s.effective_database_url == "postgresql://sleuth:pw@db.example/sleuth"
    assert s.effective_queue_url == "redis://other.example/3?prefix=a"  # environment wins
    assert s.effective_blob_dir == Path("/mnt/shared/blobs")
    s = load_settings(
        environ={
            "SLEUTH_DATA_DIR": "/srv/s",
            "SLEUTH_DATABASE_URL": "mysql+pymysql://root@127.0.0.1/test",
            "SLEUTH_BLOB_DIR": "/mnt/b",
        }
    )
    assert s.effective_database_url == "mysql+pymysql://root@127.0.0.1/test"
    assert s.effective_queue_url == "sqlite:////srv/s/queue.db"  # the embedded default
    assert s.effective_blob_dir == Path("/mnt/b")
    assert load_settings(environ={"SLEUTH_DATA_DIR": "/srv/s"}).effective_blob_dir == Path(
        "/srv/s/blobs"
    )


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("SLEUTH_DATABASE_URL", "nonsense", "not a database URL"),
        ("SLEUTH_DATABASE_URL", "oracle://u:hunter2@h/db", "unsupported database 'oracle'"),
        ("SLEUTH_QUEUE_URL", "amqp://u:hunter2@h/", "unsupported queue URL"),
        ("SLEUTH_QUEUE_URL", "redis://u:hunter2@h:99999/0", "port is not a number"),
        ("SLEUTH_QUEUE_URL", "redis://h/0?prefix=a*b", "prefix must be"),
        ("SLEUTH_QUEUE_URL", "sqlite://relative.db", "has no host"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(variable: str, value: str, reason: str) -> None:
    setting = variable.removeprefix("SLEUTH_").lower()
    with pytest.raises(ConfigError, match=rf"{setting} from environment: .*{reason}") as refused:
        load_settings(environ={variable: value})
    assert "hunter2" not in str(refused.value)


def test_an_installed_app_has_its_section_from_file_and_environment(
    sample_app: object, tmp_path: Path
) -> None:
    assert load_settings(environ={}).app("sample").max_length == 40  # the declared default
    toml = tmp_path / "sleuth.toml"
    toml.write_text('[sample]\nmax_length = 12\nblocked = ["spam", "eggs"]\ngreeting = "hi"\n')
    env = {"SLEUTH_SAMPLE_MAX_LENGTH": "20", "SLEUTH_SAMPLE_API_TOKEN": "t0ken"}
    section = load_settings(toml, environ=env).app("sample")
    assert (section.max_length, section.greeting, section.api_token) == (20, "hi", "t0ken")
    assert section.blocked == ("spam", "eggs")
    env = {"SLEUTH_SAMPLE_BLOCKED": "spam, ham,"}
    assert load_settings(toml, environ=env).app("sample").blocked == ("spam", "ham")
    with pytest.raises(KeyError, match="app 'images' declares no settings section"):
        load_settings(environ={}).app("images")


def test_an_app_section_is_validated_like_the_rest(sample_app: object, tmp_path: Path) -> None:
    toml = tmp_path / "sleuth.toml"
    for text, reason in [
        ("[sample]\nmax_length = 'long'\n", r"sample\.max_length from .*sleuth\.toml"),
        ("[sample]\nnope = 1\n", r"unknown setting sample\.nope"),
        ("sample = 3\n", "sample in .* must be a table"),
        ("[images]\nx = 1\n", "unknown setting images"),  # images declares no settings
        ("apps = 1\n", "unknown setting apps"),
    ]:
        toml.write_text(text)
        with pytest.raises(ConfigError, match=reason):
            load_settings(toml, environ={})
    with pytest.raises(ConfigError, match=r"sample\.greeting_every from environment"):
        load_settings(environ={"SLEUTH_SAMPLE_GREETING_EVERY": "hourly"})


def test_config_dump_shows_app_sections_with_secrets_masked(sample_app: object) -> None:
    env = {"SLEUTH_SAMPLE_API_TOKEN": "s3cret", "SLEUTH_SAMPLE_BLOCKED": "spam"}
    data = as_dict(load_settings(environ=env))
    assert data["sample"] == {
        "max_length": 40,
        "blocked": ["spam"],
        "greeting": "hello from the scheduler",
        "greeting_every": 3600.0,
        "api_token": "***",
    }
    assert "apps" not in data and "s3cret" not in str(data)


def test_source_urls_and_the_x_token_from_environment_token_masked() -> None:
    s = load_settings(
        environ={
            "SLEUTH_SOURCES_X_BEARER_TOKEN": "AAAA-secret",
            "SLEUTH_SOURCES_MASTODON_URL": "http://127.0.0.1:8000/mastodon/{server}",
        }
    )
    assert s.sources.mastodon_url == "http://127.0.0.1:8000/mastodon/{server}"
    assert s.sources.x_api_url == "https://api.x.com"
    dumped = as_dict(s)
    assert dumped["sources"]["x_bearer_token"] == "***"
    assert "AAAA-secret" not in repr(dumped)
