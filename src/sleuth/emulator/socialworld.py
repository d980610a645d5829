"""A social world for the graph crawler: the artists' world grown to thousands of accounts whose
follow graph has a power-law degree distribution, with its ground truth.

Everything else (accounts, posts, images, the emulated APIs that serve them) is `ArtWorld`'s;
only who follows whom differs. Per network, accounts join one after the other and each follows
`follows` of those already there, chosen in proportion to their followers plus one
(preferential attachment), so a few accounts gather most followers and most have few: the
shape of real follower counts, which a breadth-first crawl meets as a few huge lists among
many small ones. Like `ArtWorld`, a pure function of (seed, parameters).
"""

from __future__ import annotations

import math

from sleuth.emulator.artworld import NETWORKS, Account, ArtWorld, _Follows

ACCOUNTS_PER_ARTIST = 2.4  # ArtWorld gives an artist an account on each network 80% of the time


class SocialWorld(ArtWorld):
    """About `accounts` accounts over the three networks, each following `follows` others
    on its network (fewer for the first to join)."""

    def __init__(self, seed: int = 0, accounts: int = 10_000, follows: int = 5) -> None:
        if accounts < 3 or follows < 1:
            raise ValueError("need accounts >= 3 and follows >= 1")
        self.follows_each = follows
        artists = max(1, math.ceil(accounts / ACCOUNTS_PER_ARTIST))
        super().__init__(seed, artists=artists, artworks_per_artist=1, posts_per_account=4)

    def _follow_graph(self) -> tuple[_Follows, _Follows]:
        if self._follows is None:
            followers: _Follows = {}
            following: _Follows = {}
            for network in NETWORKS:
                self._attach(network, followers, following)
            for lists in (followers, following):
                for people in lists.values():
                    people.reverse()  # newest follow first, as the APIs list them
            self._follows = (followers, following)
        return self._follows

    def _attach(self, network: str, followers: _Follows, following: _Follows) -> None:
        rng = self._rng("social", network)
        joined: list[Account] = []
        weighted: list[int] = []  # each account's index once, and once more per follower
        for account in (a for a in self.accounts if a.network == network):
            chosen: set[int] = set()
            while len(chosen) < min(self.follows_each, len(joined)):
                chosen.add(weighted[rng.randrange(len(weighted))])
            for index in sorted(chosen):
                followed = joined[index]
                followers.setdefault((network, followed.id), []).append(account)
                following.setdefault((network, account.id), []).append(followed)
                weighted.append(index)
            weighted.append(len(joined))
            joined.append(account)

    def follow_edges(self, network: str) -> set[tuple[str, str]]:
        """The ground truth: every follow on `network` as (follower id, followed id)."""
        edges, _ = self._follow_graph()
        return {
            (follower.id, followed_id)
            for (net, followed_id), people in edges.items()
            if net == network
            for follower in people
        }
