"""forum app: statistics per (board, day, user), their dirty keys, and the quote-target indexes

Revision ID: forum_0002
Revises: forum_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "forum_0002"
down_revision = "forum_0001"
branch_labels = None
depends_on = None


def _keys() -> list[sa.Column]:
    return [
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("board_id", sa.BigInteger, nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "forum_dirty",
        *_keys(),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("mark", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("site_id", "board_id", "day", "user_id", name="pk_forum_dirty"),
    )
    op.create_table(
        "forum_activity",
        *_keys(),
        sa.Column("hour", sa.Integer, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("week", sa.Integer, nullable=False),
        sa.Column("weekday", sa.Integer, nullable=False),
        sa.Column("post_count", sa.Integer, nullable=False),
        sa.Column("edit_count", sa.Integer, nullable=False),
        sa.Column("length_sum", sa.BigInteger, nullable=False),
        sa.Column("threads_created", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "site_id", "board_id", "day", "hour", "user_id", name="pk_forum_activity"
        ),
    )
    op.create_index("ix_forum_activity_site_id_year", "forum_activity", ["site_id", "year"])
    op.create_index("ix_forum_activity_site_id_user_id", "forum_activity", ["site_id", "user_id"])
    op.create_table(
        "forum_pair_days",
        *_keys(),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target_user_id", sa.BigInteger, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "site_id",
            "board_id",
            "day",
            "user_id",
            "kind",
            "target_user_id",
            name="pk_forum_pair_days",
        ),
    )
    op.create_index("ix_forum_pair_days_site_id_year", "forum_pair_days", ["site_id", "year"])
    op.create_table(
        "forum_link_days",
        *_keys(),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "site_id", "board_id", "day", "user_id", "kind", "domain", name="pk_forum_link_days"
        ),
    )
    op.create_index("ix_forum_link_days_site_id_year", "forum_link_days", ["site_id", "year"])
    op.create_table(
        "forum_stats_versions",
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("site_id", "year", name="pk_forum_stats_versions"),
    )
    op.create_index(
        "ix_forum_quotes_site_id_target_post_id", "forum_quotes", ["site_id", "target_post_id"]
    )
    op.create_index(
        "ix_forum_quotes_site_id_target_topic_id_target_number",
        "forum_quotes",
        ["site_id", "target_topic_id", "target_number"],
    )
    op.drop_index("ix_forum_posts_site_id_user_id", table_name="forum_posts")
    op.create_index(
        "ix_forum_posts_site_id_user_id_created_at",
        "forum_posts",
        ["site_id", "user_id", "created_at"],
    )
    _mark_crawled_posts()


def _mark_crawled_posts() -> None:
    """Posts crawled before this revision: each of their keys is computed by the next analytics
    (in Python, since the dialects disagree on flooring a float)."""
    conn = op.get_bind()
    posts = sa.table(
        "forum_posts",
        sa.column("site_id"),
        sa.column("topic_id"),
        sa.column("user_id"),
        sa.column("created_at"),
    )
    topics = sa.table(
        "forum_topics", sa.column("site_id"), sa.column("topic_id"), sa.column("board_id")
    )
    dirty = sa.table(
        "forum_dirty",
        sa.column("site_id"),
        sa.column("board_id"),
        sa.column("day"),
        sa.column("user_id"),
        sa.column("mark"),
    )
    query = sa.select(posts.c.site_id, topics.c.board_id, posts.c.created_at, posts.c.user_id).join(
        topics, (topics.c.site_id == posts.c.site_id) & (topics.c.topic_id == posts.c.topic_id)
    )
    keys = {(int(s), int(b), int(c // 86400), int(u)) for s, b, c, u in conn.execute(query)}
    rows = [
        {"site_id": s, "board_id": b, "day": d, "user_id": u, "mark": 0}
        for s, b, d, u in sorted(keys)
    ]
    for start in range(0, len(rows), 1000):
        conn.execute(dirty.insert(), rows[start : start + 1000])


def downgrade() -> None:
    op.drop_index("ix_forum_posts_site_id_user_id_created_at", table_name="forum_posts")
    op.create_index("ix_forum_posts_site_id_user_id", "forum_posts", ["site_id", "user_id"])
    op.drop_index("ix_forum_quotes_site_id_target_topic_id_target_number", "forum_quotes")
    op.drop_index("ix_forum_quotes_site_id_target_post_id", "forum_quotes")
    for table in (
        "forum_stats_versions",
        "forum_link_days",
        "forum_pair_days",
        "forum_activity",
        "forum_dirty",
    ):
        op.drop_table(table)
