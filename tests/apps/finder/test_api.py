"""The finder's own JSON API (`/api/finder/...`): queries with HTTP errors, the indexed
accounts and an account's posts, keyset-paged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from sleuth.apps.finder.models import accounts, images, posts
from sleuth.services import Services
from tests.apps.finder.test_aotf_api import ARTWORK, make_client


@pytest.fixture
def free(tmp_path: Path) -> Iterator[tuple[FlaskClient, Services]]:
    yield from make_client(tmp_path, request_interval=0.0)


def add_account(services: Services, n: int, posts_count: int = 0) -> None:
    with services.engine.begin() as conn:
        conn.execute(
            sa.insert(accounts).values(
                network="mastodon",
                account_id=str(1000 + n),
                username=f"artist{n}@art.example",
                server="art.example",
                url=f"https://art.example/@artist{n}",
                scanned_at=1_700_000_000.0,
            )
        )
        for p in range(posts_count):
            post_id = str(5000 + p)
            conn.execute(
                sa.insert(posts).values(
                    network="mastodon",
                    post_id=post_id,
                    account_id=str(1000 + n),
                    url=f"https://art.example/@artist{n}/{post_id}",
                    created_at=1_700_000_000.0 + p,
                    images_count=1,
                )
            )
            conn.execute(
                sa.insert(images).values(
                    network="mastodon",
                    post_id=post_id,
                    position=1,
                    account_id=str(1000 + n),
                    media_url=f"https://art.example/media/{post_id}.png",
                    state="indexed" if p % 2 else "gone",
                    updated_at=1_700_000_000.0,
                )
            )


def test_a_query_in_sleuth_s_shape_and_its_errors_as_http_errors(
    free: tuple[FlaskClient, Services],
) -> None:
    client, _ = free
    answer = client.get("/api/finder/query", query_string={"url": ARTWORK})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "WAIT_LINK_FINDER" and body["url"] == ARTWORK
    assert body["accounts"] == [] and body["results"] == [] and body["finished_at"] is None
    bad = client.get("/api/finder/query", query_string={"url": "not a URL"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "not_an_url"
    assert client.get("/api/finder/query").get_json()["error"]["code"] == "no_url_field"


def test_accounts_are_paged_by_network_and_id(free: tuple[FlaskClient, Services]) -> None:
    client, services = free
    for n in range(5):
        add_account(services, n)
    first = client.get("/api/finder/accounts", query_string={"limit": 3}).get_json()
    assert [a["account_id"] for a in first["accounts"]] == ["1000", "1001", "1002"]
    assert first["accounts"][0]["scanned_at"] == "2023-11-14T22:13:20Z"
    rest = client.get(
        "/api/finder/accounts", query_string={"limit": 3, "after": first["next"]}
    ).get_json()
    assert [a["account_id"] for a in rest["accounts"]] == ["1003", "1004"] and rest["next"] is None
    bad = client.get("/api/finder/accounts", query_string={"after": "nonsense"})
    assert bad.status_code == 400


def test_an_account_s_posts_newest_first_with_each_image_s_state(
    free: tuple[FlaskClient, Services],
) -> None:
    client, services = free
    add_account(services, 7, posts_count=3)
    url = "/api/finder/accounts/mastodon/1007/posts"
    first = client.get(url, query_string={"limit": 2}).get_json()
    assert first["account"]["account_name"] == "artist7@art.example"
    assert [p["post_id"] for p in first["posts"]] == ["5002", "5001"]
    assert first["posts"][1]["images"] == [
        {"position": 1, "media_url": "https://art.example/media/5001.png", "state": "indexed"}
    ]
    rest = client.get(url, query_string={"limit": 2, "before": first["next"]}).get_json()
    assert [p["post_id"] for p in rest["posts"]] == ["5000"] and rest["next"] is None
    assert rest["posts"][0]["images"][0]["state"] == "gone"
    assert client.get("/api/finder/accounts/mastodon/999/posts").status_code == 404
    assert client.get("/api/finder/accounts/myspace/1/posts").status_code == 404
