"""forum app: the totals the API reads (all boards / all years / all kinds rows included), the
keys whose totals are stale, and the indexes that recompute them for a few users

Revision ID: forum_0003
Revises: forum_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "forum_0003"
down_revision = "forum_0002"
branch_labels = None
depends_on = None

ORDERED = ("post_count", "edit_count", "avg_post_length", "threads_created")


def _key(name: str, kind: type = sa.BigInteger) -> sa.Column:
    return sa.Column(name, kind, nullable=False)


def _measures() -> list[sa.Column]:
    return [
        sa.Column("post_count", sa.Integer, nullable=False),
        sa.Column("edit_count", sa.Integer, nullable=False),
        sa.Column("length_sum", sa.BigInteger, nullable=False),
        sa.Column("threads_created", sa.Integer, nullable=False),
    ]


def _counted(name: str, *keys: sa.Column) -> None:
    """A totals table of `keys` and a count, with its index for the most counted first."""
    op.create_table(
        name,
        *keys,
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(*(k.name for k in keys), name=f"pk_{name}"),
    )
    op.create_index(
        f"ix_{name}_site_id_board_id_year_kind_count",
        name,
        ["site_id", "board_id", "year", "kind", "count"],
    )


def _scope() -> list[sa.Column]:
    return [_key("site_id", sa.Integer), _key("board_id"), _key("year", sa.Integer)]


def upgrade() -> None:
    op.create_table(
        "forum_poster_totals",
        *_scope(),
        _key("user_id"),
        *_measures(),
        sa.Column("avg_post_length", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(
            "site_id", "board_id", "year", "user_id", name="pk_forum_poster_totals"
        ),
    )
    for column in ORDERED:
        op.create_index(
            f"ix_forum_poster_totals_{column}",
            "forum_poster_totals",
            ["site_id", "board_id", "year", column, "user_id"],
        )
    op.create_table(
        "forum_day_totals",
        _key("site_id", sa.Integer),
        _key("board_id"),
        _key("day", sa.Integer),
        _key("hour", sa.Integer),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("week", sa.Integer, nullable=False),
        sa.Column("weekday", sa.Integer, nullable=False),
        *_measures(),
        sa.PrimaryKeyConstraint("site_id", "board_id", "day", "hour", name="pk_forum_day_totals"),
    )
    op.create_index(
        "ix_forum_day_totals_site_id_board_id_year",
        "forum_day_totals",
        ["site_id", "board_id", "year"],
    )
    kind = sa.Column("kind", sa.String(8), nullable=False)
    _counted("forum_pair_totals", *_scope(), kind, _key("user_id"), _key("target_user_id"))
    _counted(
        "forum_user_domain_totals",
        *_scope(),
        sa.Column("kind", sa.String(8), nullable=False),
        _key("user_id"),
        sa.Column("domain", sa.String(255), nullable=False),
    )
    _counted(
        "forum_domain_totals",
        *_scope(),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
    )
    op.create_table(
        "forum_stale",
        _key("site_id", sa.Integer),
        _key("board_id"),
        _key("day", sa.Integer),
        _key("user_id"),
        sa.Column("mark", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("site_id", "board_id", "day", "user_id", name="pk_forum_stale"),
    )
    op.create_index("ix_forum_activity_site_id_day", "forum_activity", ["site_id", "day"])
    for table in ("forum_pair_days", "forum_link_days"):
        op.create_index(f"ix_{table}_site_id_user_id", table, ["site_id", "user_id"])
    # every day computed before this revision: its totals are made by the next analytics
    op.execute(
        "INSERT INTO forum_stale (site_id, board_id, day, user_id, mark)"
        " SELECT DISTINCT site_id, board_id, day, user_id, 0 FROM forum_activity"
    )


def downgrade() -> None:
    for table in ("forum_pair_days", "forum_link_days"):
        op.drop_index(f"ix_{table}_site_id_user_id", table_name=table)
    op.drop_index("ix_forum_activity_site_id_day", table_name="forum_activity")
    for table in (
        "forum_stale",
        "forum_domain_totals",
        "forum_user_domain_totals",
        "forum_pair_totals",
        "forum_day_totals",
        "forum_poster_totals",
    ):
        op.drop_table(table)
