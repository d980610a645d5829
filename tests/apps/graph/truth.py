"""The graph a crawl of world 0 must find, computed from the world itself."""

from __future__ import annotations

from sleuth.emulator.artworld import Account, ArtWorld
from sleuth.emulator.mastodon import MastodonEmulator


def node(account: Account) -> str:
    """The graph's id of a world account (Mastodon: `user@home`)."""
    return account.acct if account.network == "mastodon" else account.id


def followers(world: ArtWorld, account: Account) -> list[Account]:
    """Who the emulated API lists as following `account`: none for a hidden list, and on
    Mastodon only the accounts its home server knows."""
    if world.hides_collections(account):
        return []
    people = world.followers(account)
    if account.network == "mastodon":
        known = MastodonEmulator(world)
        people = [p for p in people if known.by_acct(account.server, p.acct)]
    return people


def follower_graph(
    world: ArtWorld, seeds: list[Account], depth: int
) -> tuple[set[str], set[tuple[str, str]]]:
    """The nodes and edges (follower -> followed) of reading followers from `seeds` out to
    `depth` hops, every account met selected."""
    nodes = {node(s) for s in seeds}
    edges: set[tuple[str, str]] = set()
    frontier, done = list(seeds), set()
    for hop in range(depth + 1):
        following: list[Account] = []
        for account in frontier:
            if node(account) in done:
                continue
            done.add(node(account))
            for other in followers(world, account):
                edges.add((node(other), node(account)))
                nodes.add(node(other))
                following.append(other)
        frontier = following if hop < depth else []
    return nodes, edges
