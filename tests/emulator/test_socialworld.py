"""The generated social world: about the accounts asked for, deterministic from its seed, a
power-law follow graph whose ground truth is what the APIs' follower lists say."""

from __future__ import annotations

from collections import Counter

from sleuth.emulator.socialworld import SocialWorld


def test_size_determinism_and_ground_truth() -> None:
    world = SocialWorld(3, accounts=3000, follows=4)
    assert 2700 <= len(world.accounts) <= 3300
    again = SocialWorld(3, accounts=3000, follows=4)
    other = SocialWorld(4, accounts=3000, follows=4)
    for network in ("x", "mastodon", "bluesky"):
        edges = world.follow_edges(network)
        assert edges == again.follow_edges(network) != other.follow_edges(network)
        members = [a for a in world.accounts if a.network == network]
        listed = {(f.id, a.id) for a in members for f in world.followers(a)}
        assert listed == edges == {(a.id, g.id) for a in members for g in world.following(a)}
        assert all(len(world.following(a)) <= 4 for a in members)
        assert len(edges) == sum(min(4, i) for i in range(len(members)))


def test_the_degree_distribution_has_a_heavy_tail() -> None:
    world = SocialWorld(0, accounts=10_000)
    members = [a for a in world.accounts if a.network == "bluesky"]
    degrees = sorted((len(world.followers(a)) for a in members), reverse=True)
    counted = Counter(degrees)
    assert degrees[0] > 100 * max(1, degrees[len(degrees) // 2])  # hubs and a crowd
    assert counted[0] > counted[1] > counted[2] > counted[4] > counted[8]  # decaying...
    assert sum(n for d, n in counted.items() if d >= 50) > 10  # ...but far out
