"""The finder's tables: the indexed accounts, their posts and images, and the requests.

Natural keys everywhere, so that a scan or a request run twice writes the same rows:
an account is (network, account_id), a post (network, post_id), an image (network, post_id,
position). AOTF kept requests in its shared memory; here they are rows, so every web process
and worker sees the same request."""

from __future__ import annotations

import sqlalchemy as sa

from sleuth.store.schema import metadata

NETWORK = sa.String(16)  # "x", "mastodon", "bluesky"
ACCOUNT_ID = sa.String(96)  # X id, Mastodon id, Bluesky DID
POST_ID = sa.String(64)

accounts = sa.Table(
    "finder_accounts",
    metadata,
    sa.Column("network", NETWORK, primary_key=True),
    sa.Column("account_id", ACCOUNT_ID, primary_key=True),
    sa.Column("username", sa.String(255), nullable=False),  # lower-cased
    sa.Column("server", sa.String(255), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    # The newest post whose images are all indexed: where the next update starts. Written
    # only once every listed post is indexed, so a kill leaves the account consistent.
    sa.Column("cursor", POST_ID),
    sa.Column("scanned_at", sa.Double),  # the last scan's end; NULL: never scanned
    # A scan was asked for at this time; the account is being scanned while scanned_at is
    # older (or NULL). Requests wait for that; a failed scan leaves its reason in scan_error.
    sa.Column("scan_wanted_at", sa.Double),
    sa.Column("scan_error", sa.Text),
    # The newest post id a scan listed, kept until all its images are indexed; then it
    # becomes `cursor`. NULL: the scan is listing (or none runs).
    sa.Column("pending_cursor", POST_ID),
    # One scan of an account at a time: the job that holds it, and until when.
    sa.Column("scan_owner", sa.String(64)),
    sa.Column("scan_owner_until", sa.Double),
    sa.Column("last_use", sa.Double),
    sa.Column("uses_count", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_finder_accounts_scanned_at", "scanned_at"),
)

posts = sa.Table(
    "finder_posts",
    metadata,
    sa.Column("network", NETWORK, primary_key=True),
    sa.Column("post_id", POST_ID, primary_key=True),
    sa.Column("account_id", ACCOUNT_ID, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("images_count", sa.Integer, nullable=False),
    sa.Index("ix_finder_posts_account", "network", "account_id"),
)

IMAGE_STATES = ("pending", "indexed", "gone", "failed")

images = sa.Table(
    "finder_images",
    metadata,
    sa.Column("network", NETWORK, primary_key=True),
    sa.Column("post_id", POST_ID, primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),  # 1-based, as "i/n" shows it
    sa.Column("account_id", ACCOUNT_ID, nullable=False),
    sa.Column("media_url", sa.Text, nullable=False),
    sa.Column("state", sa.String(8), nullable=False),  # one of IMAGE_STATES
    sa.Column("phash", sa.BigInteger),  # signed 64 bits, as images stores them
    sa.Column("phash_mirror", sa.BigInteger),  # the pHash of its left-right mirror
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Index("ix_finder_images_account", "network", "account_id", "state"),
    sa.Index("ix_finder_images_state", "state", "updated_at"),
)

requests = sa.Table(
    "finder_requests",
    metadata,
    # "q" + sha1 of the artwork URL (AOTF identifies a user request by its URL), or "s" + the
    # identifier of an image search.
    sa.Column("id", sa.String(48), primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),  # "query" or "search"
    sa.Column("url", sa.Text),
    sa.Column("ip", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),  # index into STATUSES; -1: none yet
    sa.Column("error", sa.String(48)),
    sa.Column("has_first_time_scan", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("accounts", sa.Text, nullable=False),  # JSON
    sa.Column("results", sa.Text, nullable=False),  # JSON
    sa.Column("account_name", sa.String(255)),  # a search limited to one account
    sa.Column("phash", sa.BigInteger),  # the artwork's (or uploaded image's) pHash, signed
    sa.Column("phash_mirror", sa.BigInteger),
    sa.Column("artwork_at", sa.Double),  # when the artwork was made, if its site says
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("finished_at", sa.Double),
    sa.Column("expires_at", sa.Double),  # finished requests are forgotten after this
    sa.Index("ix_finder_requests_ip", "ip", "finished_at"),
    sa.Index("ix_finder_requests_expires", "expires_at"),
)

ip_limits = sa.Table(
    "finder_ip_limits",
    metadata,
    sa.Column("ip", sa.String(64), primary_key=True),
    sa.Column("accepted_at", sa.Double, nullable=False),  # the last request let through
)
