"""The graph app's tables: the accounts met (nodes), who follows whom (edges), and where each
paged operation on an account stands (cursors).

A node is keyed by (network, account id): the X numeric id, the Bluesky DID, and on Mastodon
the account's `user@home` (an id is per server, so the same account has as many ids as
servers that know it; its address has one). An edge points follower -> followed and is unique
on (network, src, dst, kind), so a page read twice, or a follow seen from both ends, is one
row. A cursor row is what a paged operation (followers, following, timeline) on one account has
done: the next page's cursor, committed with that page's edges, so a killed job resumes there.
"""

from __future__ import annotations

import sqlalchemy as sa

from sleuth.store.schema import metadata

SEEN, SELECTED, REJECTED = "seen", "selected", "rejected"
"""A node's state: met in a list, chosen for the traversal (a seed, or by the analysis), not
chosen by the analysis."""
RUNNING, DONE, HIDDEN = "running", "done", "hidden"
"""A cursor's state: pages remain, the list is read to its end, the owner hides it."""
FOLLOW = "follow"  # the one edge kind so far

graph_nodes = sa.Table(
    "graph_nodes",
    metadata,
    sa.Column("network", sa.String(16), primary_key=True),
    sa.Column("account_id", sa.String(255), primary_key=True),
    sa.Column("handle", sa.String(255), nullable=False),  # as people write it
    sa.Column("native_id", sa.String(255), nullable=True),  # Mastodon: the id on its home
    sa.Column("followers_count", sa.Integer, nullable=True),  # as the network last said
    sa.Column("following_count", sa.Integer, nullable=True),
    sa.Column("statuses_count", sa.Integer, nullable=True),
    sa.Column("lang", sa.String(16), nullable=True),  # the most frequent of its posts'
    sa.Column("depth", sa.Integer, nullable=False),  # the fewest hops from a seed seen
    sa.Column("state", sa.String(16), nullable=False),  # SEEN, SELECTED or REJECTED
    sa.Column("first_seen", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Index("ix_graph_nodes_handle", "handle"),
)

graph_edges = sa.Table(
    "graph_edges",
    metadata,
    sa.Column("network", sa.String(16), primary_key=True),
    sa.Column("src", sa.String(255), primary_key=True),  # the follower
    sa.Column("dst", sa.String(255), primary_key=True),  # the followed
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("seen_at", sa.Double, nullable=False),
    sa.Index("ix_graph_edges_network_dst", "network", "dst"),
)

graph_cursors = sa.Table(
    "graph_cursors",
    metadata,
    sa.Column("network", sa.String(16), primary_key=True),
    sa.Column("account_id", sa.String(255), primary_key=True),
    sa.Column("operation", sa.String(16), primary_key=True),  # followers, following, timeline
    sa.Column("cursor", sa.Text, nullable=True),  # the next page's; None: the first or none
    sa.Column("pages", sa.Integer, nullable=False),  # pages committed
    sa.Column("found", sa.Integer, nullable=False),  # accounts or posts those pages held
    sa.Column("state", sa.String(16), nullable=False),  # RUNNING, DONE or HIDDEN
    sa.Column("newest", sa.String(64), nullable=True),  # timeline: the newest post id stored
    sa.Column("updated_at", sa.Double, nullable=False),
)
