"""The artists' world: deterministic, its ground truth true to the posts it generates."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from PIL import Image

from sleuth.emulator.artworld import ArtWorld, tid


def test_the_same_seed_gives_the_same_world_and_another_seed_another() -> None:
    assert ArtWorld(seed=3).ground_truth() == ArtWorld(seed=3).ground_truth()
    assert ArtWorld(seed=3).ground_truth() != ArtWorld(seed=4).ground_truth()


def test_the_ground_truth_lists_every_listed_post_with_the_artwork() -> None:
    world = ArtWorld(seed=1)
    truth = {entry["artwork"]: entry for entry in world.ground_truth()}
    for account in world.accounts:
        for post in world.posts(account):
            for position, image in enumerate(post.images, start=1):
                if image.artwork is None:
                    continue
                listed = [p["post_id"] for p in truth[image.artwork]["posts"]]
                assert (post.id in listed) == (not post.deleted and post.repost_of is None)
                if post.id in listed:
                    [hit] = [p for p in truth[image.artwork]["posts"] if p["post_id"] == post.id]
                    assert hit["image_position"] == f"{position}/{len(post.images)}"
                    assert hit["post_url"] == post.url


def test_posts_are_newest_first_with_ids_that_sort_by_time() -> None:
    world = ArtWorld(seed=2)
    for account in world.accounts:
        posts = world.posts(account)
        assert len(posts) == account.posts_count
        moments = [p.created_at for p in posts]
        assert moments == sorted(moments, reverse=True)
        if account.network == "bluesky":
            assert [p.id for p in posts] == sorted((p.id for p in posts), reverse=True)
        else:
            assert [int(p.id) for p in posts] == sorted((int(p.id) for p in posts), reverse=True)
        if account.private:
            assert all(i.artwork is None for p in posts for i in p.images)


def test_a_post_image_is_served_at_its_stated_size() -> None:
    world = ArtWorld(seed=0, artists=2)
    images = [i for a in world.accounts for p in world.posts(a) for i in p.images]
    copy = next(i for i in images if i.artwork is not None and i.transform.crop)
    for image in (copy, images[0]):
        with Image.open(io.BytesIO(world.post_image_bytes(image))) as decoded:
            assert decoded.size == (image.width, image.height)


def test_a_bluesky_record_key_is_13_sortable_characters() -> None:
    early, late = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    assert len(tid(early, 0)) == 13 and tid(early, 5) < tid(late, 0)
