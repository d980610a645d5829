"""The `sleuth` command's engine-wide commands, run through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sleuth.cli.main import cli


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLEUTH_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def test_help_lists_every_command(runner: CliRunner) -> None:
    out = runner.invoke(cli, ["--help"]).output
    for name in ("config", "demo", "emulator", "images", "queues", "serve", "status", "worker"):
        assert name in out


def test_config_prints_effective_settings_with_secrets_masked(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLEUTH_DATABASE_URL", "postgresql://u:s3cret@127.0.0.1/db")
    monkeypatch.setenv("SLEUTH_NET_ALLOW_PRIVATE", "1")
    result = runner.invoke(cli, ["config"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["database_url"] == "postgresql://u:***@127.0.0.1/db"
    assert data["net"]["allow_private"] is True
    assert "s3cret" not in result.output


def test_bad_configuration_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "sleuth.toml").write_text("[net]\nretries = 'x'\n")
    result = runner.invoke(cli, ["config"])
    assert result.exit_code == 2
    assert "net.retries" in result.output


def test_status_and_queues_on_an_empty_install(runner: CliRunner) -> None:
    status = runner.invoke(cli, ["status"])
    assert status.exit_code == 0, status.output
    assert "images    0 stored, 0 source URLs" in status.output
    queues = runner.invoke(cli, ["queues"])
    assert queues.exit_code == 0 and "no jobs queued" in queues.output


def test_list_is_queued_once_and_queues_shows_it(runner: CliRunner, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/a.jpg\n\n# a comment\nhttp://127.0.0.1:9/b.jpg\n")
    queues = runner.invoke(cli, ["queues", "--json"])
    assert json.loads(queues.output) == []
    from sleuth.config import load_settings
    from sleuth.services import Services

    services = Services(load_settings())
    from sleuth.apps.images.crawl import crawl_id_for, enqueue_list, open_crawl

    crawl_id = crawl_id_for(str(urls))
    open_crawl(services.engine, crawl_id, str(urls))
    with urls.open() as stream:
        assert enqueue_list(services.engine, services.queue, crawl_id, stream) == 2
    with urls.open() as stream:  # a second pass queues nothing twice
        enqueue_list(services.engine, services.queue, crawl_id, stream)
    services.close()
    rows = json.loads(runner.invoke(cli, ["queues", "--json"]).output)
    assert [(r["queue"], r["ready"]) for r in rows] == [("images.fetch", 2)]


def test_worker_rejects_unknown_queue(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["worker", "--queues", "images.nope"])
    assert result.exit_code == 2
    assert "unknown queue" in result.output
