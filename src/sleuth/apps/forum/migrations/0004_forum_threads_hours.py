"""forum app: thread times per topic and their totals per (board, year), the hour totals over
every year, and the keys and scopes that make them stale

Revision ID: forum_0004
Revises: forum_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "forum_0004"
down_revision = "forum_0003"
branch_labels = None
depends_on = None

TIMES = ("first_response", "lifetime")
SCOPES = ((), ("board_id",), ("year",), ("board_id", "year"))


def _key(name: str, kind: type = sa.BigInteger) -> sa.Column:
    return sa.Column(name, kind, nullable=False)


def _marked(name: str, *keys: sa.Column) -> None:
    """A table of keys with the mark of whoever set them last."""
    op.create_table(
        name,
        *keys,
        sa.Column("mark", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(*(k.name for k in keys), name=f"pk_{name}"),
    )


def upgrade() -> None:
    op.create_index(
        "ix_forum_day_totals_site_id_board_id_week_weekday",
        "forum_day_totals",
        ["site_id", "board_id", "week", "weekday"],
    )
    op.create_table(
        "forum_hour_totals",
        _key("site_id", sa.Integer),
        _key("board_id"),
        _key("week", sa.Integer),
        _key("weekday", sa.Integer),
        _key("hour", sa.Integer),
        sa.Column("post_count", sa.Integer, nullable=False),
        sa.Column("edit_count", sa.Integer, nullable=False),
        sa.Column("length_sum", sa.BigInteger, nullable=False),
        sa.Column("threads_created", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "site_id", "board_id", "week", "weekday", "hour", name="pk_forum_hour_totals"
        ),
    )
    _marked("forum_dirty_topics", _key("site_id", sa.Integer), _key("topic_id"))
    op.create_table(
        "forum_topic_times",
        _key("site_id", sa.Integer),
        _key("topic_id"),
        _key("board_id"),
        _key("year", sa.Integer),
        sa.Column("first_response", sa.Double, nullable=True),
        sa.Column("lifetime", sa.Double, nullable=True),
        sa.PrimaryKeyConstraint("site_id", "topic_id", name="pk_forum_topic_times"),
    )
    for time in TIMES:
        for by in SCOPES:
            columns = ["site_id", *by, time]
            op.create_index(
                f"ix_forum_topic_times_{'_'.join(columns)}", "forum_topic_times", columns
            )
    op.create_table(
        "forum_thread_totals",
        _key("site_id", sa.Integer),
        _key("board_id"),
        _key("year", sa.Integer),
        sa.Column("threads", sa.Integer, nullable=False),
        *(
            column
            for time in TIMES
            for column in (
                sa.Column(f"{time}_count", sa.Integer, nullable=False),
                sa.Column(f"{time}_sum", sa.Double, nullable=False),
                sa.Column(f"{time}_median", sa.Double, nullable=True),
            )
        ),
        sa.PrimaryKeyConstraint("site_id", "board_id", "year", name="pk_forum_thread_totals"),
    )
    op.create_table(
        "forum_thread_versions",
        _key("site_id", sa.Integer),
        _key("year", sa.Integer),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("site_id", "year", name="pk_forum_thread_versions"),
    )
    _marked(
        "forum_stale_threads",
        _key("site_id", sa.Integer),
        _key("board_id"),
        _key("year", sa.Integer),
    )
    # what was computed before this revision: every topic's times, and every day's hour totals,
    # are made by the next analytics
    op.execute(
        "INSERT INTO forum_dirty_topics (site_id, topic_id, mark)"
        " SELECT site_id, topic_id, 0 FROM forum_topics"
    )
    op.execute(
        "INSERT INTO forum_stale (site_id, board_id, day, user_id, mark)"
        " SELECT DISTINCT site_id, board_id, day, user_id, 0 FROM forum_activity a"
        " WHERE NOT EXISTS (SELECT 1 FROM forum_stale s WHERE s.site_id = a.site_id"
        " AND s.board_id = a.board_id AND s.day = a.day AND s.user_id = a.user_id)"
    )


def downgrade() -> None:
    for table in (
        "forum_stale_threads",
        "forum_thread_versions",
        "forum_thread_totals",
        "forum_topic_times",
        "forum_dirty_topics",
        "forum_hour_totals",
    ):
        op.drop_table(table)
    op.drop_index(
        "ix_forum_day_totals_site_id_board_id_week_weekday", table_name="forum_day_totals"
    )
