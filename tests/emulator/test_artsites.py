"""The emulated art sites answer in the real APIs' shapes (field names from
research/sources.md §C), with their hidden, merged and missing cases."""

from __future__ import annotations

import json
import re

import httpx

from sleuth.emulator.artsites import (
    HIDDEN_POST_OFFSET,
    LINKTREE_ACCOUNT_BASE,
    MERGED_IMAGE_OFFSET,
    PIXIV_REFERER,
    ArtSites,
)
from sleuth.emulator.artworld import ArtWorld

WORLD = ArtWorld(0)  # what the session's image host serves


def first_on(site: str) -> str:
    return next(a.pages[site] for a in WORLD.artworks.values() if site in a.pages)


def test_danbooru_post_fields_and_the_hidden_copy(client: httpx.Client) -> None:
    post = first_on("danbooru")
    shown = client.get(f"/danbooru/posts/{post}.json").json()
    for name in (
        "id", "created_at", "source", "md5", "rating", "image_width", "image_height",
        "file_ext", "file_size", "tag_string", "tag_string_artist", "pixiv_id", "parent_id",
        "has_large", "file_url", "large_file_url", "preview_file_url", "media_asset",
    ):  # fmt: skip
        assert name in shown, name
    assert {v["type"] for v in shown["media_asset"]["variants"]} >= {"180x180", "original"}
    hidden = client.get(f"/danbooru/posts/{int(post) + HIDDEN_POST_OFFSET}.json").json()
    for name in ("file_url", "large_file_url", "preview_file_url", "md5"):
        assert name not in hidden
    assert hidden["tag_string_artist"] == shown["tag_string_artist"]
    missing = client.get("/danbooru/posts/1.json")
    assert missing.status_code == 404 and missing.json()["success"] is False


def test_danbooru_artist_urls_include_a_dead_one(client: httpx.Client) -> None:
    name = WORLD.artists[0].name
    (artist,) = client.get("/danbooru/artists.json", params={"search[name]": name}).json()
    assert artist["name"] == name
    assert [u["is_active"] for u in artist["urls"]].count(False) == 1
    assert client.get("/danbooru/artists.json", params={"search[name]": "nobody"}).json() == []


def test_philomena_merged_image_shows_only_where_it_went(client: httpx.Client) -> None:
    image = first_on("derpibooru")
    merged = client.get(f"/derpibooru/api/v1/json/images/{int(image) + MERGED_IMAGE_OFFSET}")
    body = merged.json()["image"]
    assert body["duplicate_of"] == int(image) and "representations" not in body
    shown = client.get(f"/derpibooru/api/v1/json/images/{image}").json()
    assert set(shown["image"]["representations"]) == {
        "thumb_tiny", "thumb_small", "thumb", "small", "medium", "large", "tall", "full",
    }  # fmt: skip
    assert any(t.startswith("artist:") for t in shown["image"]["tags"])
    assert client.get("/derpibooru/api/v1/json/images/1").status_code == 404


def test_philomena_search_pages_at_most_fifty(client: httpx.Client) -> None:
    artist = next(
        a for a in WORLD.artists if any("furbooru" in WORLD.artworks[w].pages for w in a.artworks)
    )
    found = client.get(
        "/furbooru/api/v1/json/search/images",
        params={"q": f"artist:{artist.name}", "per_page": 500},
    ).json()
    assert found["total"] == len(found["images"]) >= 1
    assert set(found) == {"images", "interactions", "total"}


def test_deviantart_oembed(client: httpx.Client) -> None:
    artwork = next(a for a in WORLD.artworks.values() if "deviantart" in a.pages)
    url = WORLD.page_url(artwork, "deviantart")
    body = client.get("/deviantart-backend/oembed", params={"url": url}).json()
    assert body["type"] == "photo" and body["provider_name"] == "DeviantArt"
    assert body["author_url"] == f"https://www.deviantart.com/{WORLD.artists[artwork.artist].name}"
    assert client.get("/deviantart-backend/oembed", params={"url": url + "0"}).status_code == 404
    page = client.get(url.replace("https://www.deviantart.com", "/deviantart"))
    assert 'rel="preload" as="image"' in page.text


def test_pixiv_images_need_the_referer(client: httpx.Client) -> None:
    illust = next(
        a.pages["pixiv"]
        for a in WORLD.artworks.values()
        if "pixiv" in a.pages and WORLD.original_quirk(a) is None
    )
    body = client.get(f"/pixiv/ajax/illust/{illust}").json()["body"]
    original = body["urls"]["original"]
    assert client.get(original).status_code == 403
    shown = client.get(original, headers={"Referer": PIXIV_REFERER})
    assert shown.status_code == 200 and shown.content[:4] == b"\x89PNG"
    missing = client.get("/pixiv/ajax/illust/1")
    assert missing.status_code == 404 and missing.json()["error"] is True
    user = client.get(f"/pixiv/ajax/user/{body['userId']}", params={"full": 1}).json()["body"]
    assert {"webpage", "social", "comment"} <= set(user)


def test_an_untagged_danbooru_post_and_its_artist_by_url_matches(client: httpx.Client) -> None:
    sites = ArtSites(WORLD)
    artwork = next(
        a
        for a in WORLD.artworks.values()
        if "danbooru" in a.pages and sites.danbooru_untagged(a)
        and sites.danbooru_knows(sites.artist(a))
    )  # fmt: skip
    post = client.get(f"/danbooru/posts/{artwork.pages['danbooru']}.json").json()
    assert post["tag_string_artist"] == "" and post["tag_string_meta"] == "artist_request"
    assert "artist_request" in post["tag_string"].split()
    assert post["source"] == sites.danbooru_source(artwork)
    (artist,) = client.get(
        "/danbooru/artists.json", params={"search[url_matches]": post["source"]}
    ).json()
    assert artist["name"] == sites.artist(artwork).name
    nobody = {"search[url_matches]": "https://www.pixiv.net/artworks/1"}
    assert client.get("/danbooru/artists.json", params=nobody).json() == []


def test_linktree_gates_unlock_the_sensitive_links(client: httpx.Client) -> None:
    artist = next(a for a in WORLD.artists if a.link_hub and a.index % 2 == 0)
    page = client.get(f"/linktree/{artist.name}").text
    script = re.search(r'<script id="__NEXT_DATA__"[^>]*>(.*?)</script>', page, re.S)
    assert script is not None
    data = json.loads(script.group(1))
    props = data["props"]["pageProps"]
    locked = [link for link in props["links"] if link["locked"]]
    assert locked and all(link["url"] is None for link in locked)
    gates = "/linktree/api/profiles/validation/gates"
    body = {
        "accountId": props["account"]["id"],
        "validationInput": {"acceptedSensitiveContent": [link["id"] for link in locked]},
        "requestSource": {"referrer": None},
    }
    unlocked = client.post(gates, json=body).json()["links"]
    assert [link["id"] for link in unlocked] == [link["id"] for link in locked]
    assert all(link["url"].startswith("https://") for link in unlocked)
    assert client.post(gates, json={"accountId": 1}).status_code == 400
    assert (
        client.post(gates, json={**body, "accountId": LINKTREE_ACCOUNT_BASE - 1}).status_code == 404
    )
