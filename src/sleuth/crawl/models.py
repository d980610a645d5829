"""Tables of the crawl layer: runs, their items (each the unit of work and of outcome
counting) and the record of every item that failed."""

from __future__ import annotations

import sqlalchemy as sa

from sleuth.store.schema import metadata

# Item states: waiting for its job, resolved with an outcome, or failed (see `crawl_failures`).
QUEUED, DONE, FAILED = "queued", "done", "failed"

crawl_runs = sa.Table(
    "crawl_runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("app", sa.String(32), nullable=False),
    sa.Column("name", sa.Text, nullable=False),  # what was crawled: a list file, seed accounts
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("finished_at", sa.Double, nullable=True),  # every item resolved
    sa.Column("total", sa.Integer, nullable=True),  # known once every item is listed
    sa.Index("ix_crawl_runs_app_created_at", "app", "created_at"),
)

crawl_run_items = sa.Table(
    "crawl_run_items",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    # The item's natural key in its run: a list's line number, an account, a topic id.
    sa.Column("item_key", sa.String(255), primary_key=True),
    sa.Column("target", sa.Text, nullable=False),  # what it is: a URL, a handle
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("result", sa.String(255), nullable=True),  # what it produced (images: the MD5)
    sa.Column("finished_at", sa.Double, nullable=True),
    sa.Index("ix_crawl_run_items_run_id_state", "run_id", "state"),
)

# SQLite numbers rows itself only for an INTEGER PRIMARY KEY.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

crawl_failures = sa.Table(
    "crawl_failures",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),  # the paging order
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("item_key", sa.String(255), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),  # a stable code: not_image, http_404
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),  # failures of the item so far
    sa.Column("first_failed_at", sa.Double, nullable=False),
    sa.Column("last_failed_at", sa.Double, nullable=False),
    sa.Column("resolved_at", sa.Double, nullable=True),  # set when a retry succeeds
    sa.UniqueConstraint("run_id", "item_key"),
    sa.Index("ix_crawl_failures_reason", "reason"),
)
