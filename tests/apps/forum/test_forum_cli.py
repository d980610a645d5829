"""`sleuth forum crawl` on the job queue: runs of the crawl layer, workers, resumable and
incremental, against the emulated forums."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from sleuth.apps.forum.app import ForumSettings
from sleuth.apps.forum.cli import crawl_forum
from sleuth.apps.forum.models import forum_posts
from sleuth.cli.main import cli
from sleuth.config import Settings
from sleuth.crawl.models import crawl_failures
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.forums import Forum, Forums
from sleuth.services import Services
from tests.apps.forum.helpers import Failing


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path)
    settings = dataclasses.replace(
        settings,
        net=dataclasses.replace(settings.net, allow_private=True),
        worker=dataclasses.replace(settings.worker, processes=1),
        apps={**settings.apps, "forum": ForumSettings(discourse_per_minute=0)},
    )
    services = Services(settings)
    yield services
    services.close()


@pytest.fixture
def served() -> Iterator[tuple[str, Forum, Forums]]:
    forum = Forum(11, 900)
    forums = Forums({"main": forum}, rate_limits=False)
    with EmulatorServer(create_imagehost_app(seed=0, forums=forums)) as url:
        yield url, forum, forums


def _posts_by_user(services: Services) -> Counter[int]:
    with services.engine.connect() as conn:
        return Counter(conn.execute(sa.select(forum_posts.c.user_id)).scalars())


def test_discourse_crawl_on_workers_then_incremental(
    services: Services, served: tuple[str, Forum, Forums]
) -> None:
    url, forum, forums = served
    final = crawl_forum(services, f"{url}/discourse/main/t/anything/3")
    truth = forum.ground_truth()
    assert final.finished and final.count("crawled") == truth.topics == final.total
    assert _posts_by_user(services) == truth.posts_by_user

    before = forums.requests[("discourse", "main")]
    again = crawl_forum(services, f"{url}/discourse/main")
    assert again.finished and again.total == 0
    assert forums.requests[("discourse", "main")] - before == 2

    forum.advance(forum.topic_gap * 5)
    update = crawl_forum(services, f"{url}/discourse/main")
    assert update.finished and 0 < update.count("crawled") < truth.topics
    assert _posts_by_user(services) == forum.ground_truth().posts_by_user


def test_bb_board_crawl_on_workers(services: Services, served: tuple[str, Forum, Forums]) -> None:
    url, forum, _ = served
    board = forum.boards[0].id
    final = crawl_forum(services, f"{url}/bb/main/", board)
    expected = Counter(p.user_id for t in forum.topics_by_activity(board) for p in forum.posts(t))
    assert final.finished and final.count("crawled") == len(forum.topics_by_activity(board))
    assert _posts_by_user(services) == expected


def test_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: tuple[str, Forum, Forums]
) -> None:
    url, forum, _ = served
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLEUTH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLEUTH_NET_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("SLEUTH_WORKER_PROCESSES", "1")
    monkeypatch.setenv("SLEUTH_FORUM_DISCOURSE_PER_MINUTE", "0")
    runner = CliRunner()
    result = runner.invoke(cli, ["forum", "crawl", "--bbxml", f"{url}/bb/main/"])
    assert result.exit_code == 2 and "--bbxml needs --board ID" in result.output
    result = runner.invoke(cli, ["forum", "crawl", "--board", "3", f"{url}/discourse/main"])
    assert result.exit_code == 2 and "give --bbxml URL" in result.output
    result = runner.invoke(cli, ["forum", "crawl", f"{url}/discourse/main/latest"])
    assert result.exit_code == 0, result.output
    assert f"{forum.topic_count()} topics crawled, 0 failed" in result.output
    assert "Statistics: " in result.output  # what the workers' periodic pass left, recomputed
    posts = forum.ground_truth().posts
    result = runner.invoke(cli, ["forum", "analytics"])
    assert result.exit_code == 0 and "0 (board, day, user) keys" in result.output
    result = runner.invoke(cli, ["forum", "analytics", "--full"])
    assert result.exit_code == 0 and f"({posts} posts read)" in result.output
    result = runner.invoke(cli, ["forum", "crawl", "--bbxml", f"{url}/bb/main", "--board", "99"])
    assert result.exit_code == 1 and "has no board 99" in result.output


def test_a_topic_that_fails_is_recorded_and_crawled_again_next_time(services: Services) -> None:
    forum = Forum(12, 400)
    victim = forum.topics_by_activity()[3]
    app = Failing(
        create_imagehost_app(seed=0, forums=Forums({"main": forum}, rate_limits=False)),
        f"/discourse/main/t/{victim.id}.json",
    )
    with EmulatorServer(app) as url:
        first = crawl_forum(services, f"{url}/discourse/main")
        assert first.finished and first.count("error") == 1
        assert first.count("crawled") == forum.topic_count() - 1
        with services.engine.connect() as conn:
            failure = conn.execute(sa.select(crawl_failures)).one()
        assert (failure.item_key, failure.reason, failure.http_status) == (
            str(victim.id),
            "http_status",
            404,
        )
        app.on = False
        second = crawl_forum(services, f"{url}/discourse/main")  # the mark did not move
    assert second.finished and second.count("crawled") == 1 and second.total == 1
    assert _posts_by_user(services) == forum.ground_truth().posts_by_user
