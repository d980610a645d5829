"""The generated forum: deterministic, growing with its clock, its ground truth consistent."""

from __future__ import annotations

import itertools

from sleuth.emulator.forums import EPOCH, MAX_POSTS, POST_ID_STRIDE, Forum


def test_same_seed_same_forum_other_seed_other_forum() -> None:
    a, b, c = Forum(3, 500), Forum(3, 500), Forum(4, 500)
    assert a.ground_truth() == b.ground_truth()
    assert [a.post(t, 1) for t in a.topics_by_activity()[:5]] == [
        b.post(t, 1) for t in b.topics_by_activity()[:5]
    ]
    assert a.ground_truth().posts_by_user != c.ground_truth().posts_by_user


def test_ground_truth_sums_agree_and_size_is_about_right() -> None:
    forum = Forum(0, 1500)
    truth = forum.ground_truth()
    assert 750 < truth.posts < 2250  # about `size`: long topics are still growing
    assert truth.topics == forum.topic_count()
    for counter in (
        truth.posts_by_user,
        truth.posts_by_board,
        truth.posts_by_year,
        truth.posts_by_day,
        truth.posts_by_weekday,
        truth.posts_by_hour,
    ):
        assert sum(counter.values()) == truth.posts
    assert sum(truth.topics_by_board.values()) == truth.topics
    assert sum(truth.topics_by_user.values()) == truth.topics
    assert sum(t.count for t in forum.topics_by_activity()) == truth.posts
    assert truth.quote_pairs and truth.reply_pairs and truth.edited_posts
    assert {kind for _, kind in truth.links} == {"link", "image", "video"}
    assert ("forum.example", "link") in truth.links  # relative links count for the forum itself


def test_posts_are_in_order_and_ids_unique() -> None:
    forum = Forum(1, 800)
    ids = set()
    for topic in forum.topics_by_activity():
        posts = forum.posts(topic)
        assert [p.number for p in posts] == list(range(1, topic.count + 1))
        assert all(a.created < b.created for a, b in itertools.pairwise(posts))
        assert posts[-1].created == topic.last_posted <= forum.now
        assert posts[0].created == topic.created >= EPOCH
        assert topic.count <= topic.total <= MAX_POSTS
        for post in posts:
            assert forum.post_by_id(post.id) == post
            assert post.id // POST_ID_STRIDE == topic.index
            for quote in post.quotes:
                assert quote.number < post.number
                assert forum.post_by_id(quote.post_id).user_id == quote.poster_id  # type: ignore[union-attr]
            assert all(e.at <= forum.now for e in post.edits)
            ids.add(post.id)
    assert len(ids) == forum.ground_truth().posts


def test_advancing_the_clock_adds_replies_topics_edits_and_renames() -> None:
    forum = Forum(2, 1000)
    before = forum.ground_truth()
    counts = {t.id: t.count for t in forum.topics_by_activity()}
    names = {uid: forum.username(uid) for uid in range(1, forum.user_count + 1)}
    then = forum.now
    forum.advance(3 * 365 * 86400)
    after = forum.ground_truth()
    assert after.posts > before.posts and after.topics > before.topics
    assert after.edits >= before.edits
    grown = forum.topics_by_activity()
    assert all(t.count >= counts.get(t.id, 0) for t in grown)
    assert any(t.id in counts and t.count > counts[t.id] for t in grown)  # bumped old topics
    assert grown[0].last_posted > then
    renamed = [uid for uid, name in names.items() if forum.username(uid) != name]
    assert renamed
    uid = renamed[0]
    assert forum.username(uid, at=EPOCH) == names[uid]
    # what existed before is unchanged apart from edits
    topic = forum.topic_by_id(next(iter(counts)))
    assert topic is not None
    old = Forum(2, 1000).post(topic, 1)
    new = forum.post(topic, 1)
    assert old is not None and new is not None
    assert (old.words, old.created, old.user_id) == (new.words, new.created, new.user_id)


def test_a_huge_forum_costs_nothing_until_read() -> None:
    forum = Forum(0, 10_000_000)
    assert forum.topic_count() > 500_000
    topic = forum.topic(forum.topic_count() - 10)
    assert topic is not None and forum.post(topic, 1) is not None
    assert forum.topic(forum.topic_count()) is None
