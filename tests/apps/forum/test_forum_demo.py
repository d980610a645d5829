"""The forum's `sleuth demo` step: the emulated forum crawled and analyzed whole, its counts
printed beside the forum's ground truth, and the dashboard it points at showing that forum."""

from __future__ import annotations

import dataclasses
import re
from contextlib import ExitStack
from pathlib import Path

import pytest

from sleuth.app import DemoRun
from sleuth.apps.forum.demo import SEED, demo_step
from sleuth.config import Settings
from sleuth.emulator.forums import Forum
from sleuth.services import Services
from sleuth.web.app import create_app


def test_the_demo_crawls_the_whole_forum_and_points_at_its_dashboard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = Settings(data_dir=tmp_path / "data")
    settings = dataclasses.replace(base, net=dataclasses.replace(base.net, allow_private=True))
    with ExitStack() as cleanup:
        services = Services(settings)
        cleanup.callback(services.close)
        folder = tmp_path / "forum"
        folder.mkdir()
        demo_step(DemoRun(services, folder, "http://127.0.0.1:9", 120, cleanup))
        shown = capsys.readouterr().out
        truth = Forum(SEED, 120).ground_truth()
        assert f"Crawled {truth.topics} topics (0 failed): {truth.topics} topics, " in shown
        assert f"{truth.posts} posts stored" in shown
        assert f"The forum holds {truth.topics} topics, {truth.posts} posts." in shown
        found = re.search(r"Open http://127\.0\.0\.1:9(/forum\?site=([0-9]+))", shown)
        assert found is not None, shown
        client = create_app(services).test_client()
        page = client.get(found.group(1))
        assert page.status_code == 200
        assert f'<option value="{found.group(2)}">' in page.text
        posts = client.get(f"/api/forum/daily-stats?site={found.group(2)}")
        assert sum(n["post_count"] for n in posts.get_json()["rows"].values()) == truth.posts
