"""forum app: the totals by (board, year, weekday), which the boards, weekday and year answers
read in a few rows (every day computed before this revision is made stale, so the next
analytics fills them); the day totals' whole days in order, which the daily answer reads

Revision ID: forum_0007
Revises: forum_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "forum_0007"
down_revision = "forum_0006"
branch_labels = None
depends_on = None


def _key(name: str, kind: type = sa.BigInteger) -> sa.Column:
    return sa.Column(name, kind, nullable=False)


def upgrade() -> None:
    op.create_table(
        "forum_weekday_totals",
        _key("site_id", sa.Integer),
        _key("board_id"),
        _key("year", sa.Integer),
        _key("weekday", sa.Integer),
        sa.Column("post_count", sa.Integer, nullable=False),
        sa.Column("edit_count", sa.Integer, nullable=False),
        sa.Column("length_sum", sa.BigInteger, nullable=False),
        sa.Column("threads_created", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "site_id", "board_id", "year", "weekday", name="pk_forum_weekday_totals"
        ),
    )
    op.create_index(
        "ix_forum_day_totals_whole_days",
        "forum_day_totals",
        ["site_id", "board_id", "hour", "year", "day"],
    )
    op.execute(
        "INSERT INTO forum_stale (site_id, board_id, day, user_id, mark)"
        " SELECT DISTINCT site_id, board_id, day, user_id, 0 FROM forum_activity a"
        " WHERE NOT EXISTS (SELECT 1 FROM forum_stale s WHERE s.site_id = a.site_id"
        " AND s.board_id = a.board_id AND s.day = a.day AND s.user_id = a.user_id)"
    )


def downgrade() -> None:
    op.drop_index("ix_forum_day_totals_whole_days", table_name="forum_day_totals")
    op.drop_table("forum_weekday_totals")
