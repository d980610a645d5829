"""`sleuth images errors` and `retry-errors` after a real crawl of the offline web's hostile
cases: exactly the URLs that failed, with their reasons, in each format; retried once."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sleuth.apps.images.cli import crawl_list
from sleuth.apps.images.crawl import crawl_id_for
from sleuth.cli.main import cli
from sleuth.config import load_settings
from sleuth.crawl.failures import FIELDS
from sleuth.crawl.runs import open_run
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from sleuth.services import Services
from sleuth.web.app import create_app
from tests.apps.images.test_crawl_e2e import loopback_services

GOOD = ["/64/48", "/65/48", "/64/48"]
BAD = ["/error/100", "/hostile/not-image", "/hostile/html-as-jpeg", "/hostile/redirect-loop"]


@pytest.fixture
def crawled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path, str]]:
    """A list of good and failing URLs, crawled to its end: (base URL, list file, crawl id)."""
    monkeypatch.setenv("SLEUTH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLEUTH_NET_ALLOW_PRIVATE", "1")
    with EmulatorServer(create_imagehost_app(seed=0)) as base_url:
        urls = tmp_path / "urls.txt"
        urls.write_text("".join(f"{base_url}{path}\n" for path in GOOD + BAD), encoding="utf-8")
        crawl_id = crawl_id_for(str(urls))
        crawl(tmp_path / "data", urls)
        yield base_url, urls, crawl_id


def crawl(data_dir: Path, urls: Path) -> None:
    services = loopback_services(data_dir, processes=1)
    try:
        with urls.open(encoding="utf-8") as stream:
            final = crawl_list(services, crawl_id_for(str(urls)), stream)
        assert final.finished and final.error == len(BAD)
    finally:
        services.close()


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, ["images", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_errors_lists_exactly_the_failed_urls_in_each_format(
    crawled: tuple[str, Path, str],
) -> None:
    base_url, _, crawl_id = crawled
    rows = json.loads(run("errors", "--format", "json"))
    assert sorted(r["target"] for r in rows) == sorted(base_url + p for p in BAD)
    by_path = {r["target"].removeprefix(base_url): r for r in rows}
    assert by_path["/error/100"]["reason"] == "http_status"
    assert by_path["/error/100"]["http_status"] in (400, 404)
    assert by_path["/hostile/not-image"]["reason"] == "not_image"
    assert all(r["crawl"] == crawl_id and r["attempts"] == 1 and r["message"] for r in rows)
    assert {r["item"] for r in rows} == {str(len(GOOD) + i + 1) for i in range(len(BAD))}
    assert all(set(r) == set(FIELDS) for r in rows)

    table = run("errors")
    assert table.splitlines()[0].split()[:4] == ["crawl", "item", "reason", "http"]
    for path in BAD:
        assert base_url + path in table
    assert f"{len(BAD)} failed items." in table

    parsed = list(csv.DictReader(io.StringIO(run("errors", "--format", "csv"))))
    assert [dict(r) for r in parsed] == [
        {k: "" if v is None else str(v) for k, v in row.items()} for row in rows
    ]

    only = json.loads(
        run("errors", "--reason", "http_status", "--crawl", crawl_id, "--format", "json")
    )
    assert [r["target"] for r in only] == [base_url + "/error/100"]
    assert json.loads(run("errors", "--reason", "no_such_reason", "--format", "json")) == []
    assert "No failed items." in run("errors", "--reason", "no_such_reason")
    assert run("errors", "--reason", "no_such_reason", "--format", "csv") == ",".join(FIELDS) + "\n"


def test_the_images_api_and_monitoring_show_the_same_failures(
    crawled: tuple[str, Path, str],
) -> None:
    services = Services(load_settings())
    try:
        client = create_app(services).test_client()
        body = client.get("/api/images/errors?limit=2").get_json()
        rest = client.get(f"/api/images/errors?cursor={body['next']}").get_json()
        monitoring = client.get("/monitoring?format=json").get_json()
    finally:
        services.close()
    rows = json.loads(run("errors", "--format", "json"))
    assert body["errors"] + rest["errors"] == rows
    assert rest["next"] is None
    assert monitoring["failures_by_reason"] == dict(Counter(r["reason"] for r in rows))
    assert sum(monitoring["failures_by_reason"].values()) == len(BAD)


def test_a_crawl_is_named_by_its_id_or_the_start_of_it(crawled: tuple[str, Path, str]) -> None:
    _, _, crawl_id = crawled
    full = json.loads(run("errors", "--crawl", crawl_id, "--format", "json"))
    assert len(full) == len(BAD)
    assert json.loads(run("errors", "--crawl", crawl_id[:12], "--format", "json")) == full
    services = Services(load_settings())
    try:  # two crawls whose ids start alike
        open_run(services.engine, "ab" + "1" * 38, "images", "one")
        open_run(services.engine, "ab" + "2" * 38, "images", "two")
    finally:
        services.close()
    for args, words in ((["--crawl", "ab"], "several images crawls"), (["--crawl", ""], "empty")):
        result = CliRunner().invoke(cli, ["images", "errors", *args])
        assert result.exit_code == 2 and words in result.output, result.output
    assert run("errors", "--crawl", "ab1") == "No failed items.\n"


def test_an_unknown_crawl_or_format_is_refused(crawled: tuple[str, Path, str]) -> None:
    for args in (["errors", "--crawl", "f" * 40], ["retry-errors", "--crawl", "nope"]):
        result = CliRunner().invoke(cli, ["images", *args])
        assert result.exit_code == 2
        assert "no images crawl with id" in result.output
    result = CliRunner().invoke(cli, ["images", "errors", "--format", "xml"])
    assert result.exit_code == 2 and "xml" in result.output


def test_retry_errors_requeues_once_and_the_crawl_runs_them_again(
    crawled: tuple[str, Path, str], tmp_path: Path
) -> None:
    _, urls, _ = crawled
    assert run("retry-errors", "--reason", "http_status").startswith("1 failed item re-queued.")
    assert run("retry-errors").startswith(f"{len(BAD) - 1} failed items re-queued.")
    assert run("retry-errors").startswith("0 failed items re-queued.")  # idempotent
    crawl(tmp_path / "data", urls)  # the same command again runs the re-queued lines
    rows = json.loads(run("errors", "--format", "json"))
    assert len(rows) == len(BAD)
    assert all(r["attempts"] == 2 for r in rows)
    assert all(r["first_failed"] <= r["last_failed"] for r in rows)
