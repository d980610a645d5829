"""images app: crawls and their lines move to the crawl layer's tables

Every crawl becomes a run of the images app, every line an item keyed by its line number
(the URL its target, the MD5 its result), and every failed line a failure record; then the
app's own `crawls` and `crawl_items` go.

Revision ID: images_0002_crawl
Revises: images_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "images_0002_crawl"
down_revision = "images_0001"
branch_labels = None
depends_on = "core_0004"

APP = "images"

crawls = sa.table(
    "crawls",
    sa.column("id", sa.String),
    sa.column("source", sa.Text),
    sa.column("created_at", sa.Double),
    sa.column("lines_total", sa.Integer),
)
crawl_items = sa.table(
    "crawl_items",
    sa.column("crawl_id", sa.String),
    sa.column("line_no", sa.Integer),
    sa.column("url", sa.Text),
    sa.column("outcome", sa.String),
    sa.column("reason", sa.String),
    sa.column("detail", sa.Text),
    sa.column("http_status", sa.Integer),
    sa.column("md5", sa.String),
    sa.column("finished_at", sa.Double),
)
runs = sa.table(
    "crawl_runs",
    sa.column("id", sa.String),
    sa.column("app", sa.String),
    sa.column("name", sa.Text),
    sa.column("created_at", sa.Double),
    sa.column("finished_at", sa.Double),
    sa.column("total", sa.Integer),
)
items = sa.table(
    "crawl_run_items",
    sa.column("run_id", sa.String),
    sa.column("item_key", sa.String),
    sa.column("target", sa.Text),
    sa.column("state", sa.String),
    sa.column("outcome", sa.String),
    sa.column("result", sa.String),
    sa.column("finished_at", sa.Double),
)
failures = sa.table(
    "crawl_failures",
    sa.column("run_id", sa.String),
    sa.column("item_key", sa.String),
    sa.column("reason", sa.String),
    sa.column("message", sa.Text),
    sa.column("http_status", sa.Integer),
    sa.column("attempts", sa.Integer),
    sa.column("first_failed_at", sa.Double),
    sa.column("last_failed_at", sa.Double),
)


def _of_crawl(*columns: sa.ColumnElement) -> sa.ScalarSelect:
    return sa.select(*columns).where(crawl_items.c.crawl_id == crawls.c.id).scalar_subquery()


def upgrade() -> None:
    conn = op.get_bind()
    resolved = _of_crawl(sa.func.count(crawl_items.c.outcome))
    finished = sa.case(
        (
            sa.and_(crawls.c.lines_total.is_not(None), resolved >= crawls.c.lines_total),
            _of_crawl(sa.func.max(crawl_items.c.finished_at)),
        ),
        else_=sa.null(),
    )
    conn.execute(
        runs.insert().from_select(
            ["id", "app", "name", "created_at", "finished_at", "total"],
            sa.select(
                crawls.c.id,
                sa.literal(APP),
                crawls.c.source,
                crawls.c.created_at,
                finished,
                crawls.c.lines_total,
            ),
        )
    )
    key = sa.cast(crawl_items.c.line_no, sa.String(255))
    state = sa.case(
        (crawl_items.c.outcome.is_(None), "queued"),
        (crawl_items.c.outcome == "error", "failed"),
        else_="done",
    )
    conn.execute(
        items.insert().from_select(
            ["run_id", "item_key", "target", "state", "outcome", "result", "finished_at"],
            sa.select(
                crawl_items.c.crawl_id,
                key,
                crawl_items.c.url,
                state,
                crawl_items.c.outcome,
                crawl_items.c.md5,
                crawl_items.c.finished_at,
            ),
        )
    )
    when = sa.func.coalesce(crawl_items.c.finished_at, 0.0)
    conn.execute(
        failures.insert().from_select(
            [
                "run_id",
                "item_key",
                "reason",
                "message",
                "http_status",
                "attempts",
                "first_failed_at",
                "last_failed_at",
            ],
            sa.select(
                crawl_items.c.crawl_id,
                key,
                sa.func.coalesce(crawl_items.c.reason, "unknown"),
                sa.func.coalesce(crawl_items.c.detail, ""),
                crawl_items.c.http_status,
                sa.literal(1),
                when,
                when,
            ).where(crawl_items.c.outcome == "error"),
        )
    )
    op.drop_table("crawl_items")
    op.drop_table("crawls")


def downgrade() -> None:
    """Back to the app's own tables, with the same rows (a retried line's failure count and
    first failure time are lost: the old tables had no place for them)."""
    op.create_table(
        "crawls",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("lines_total", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_crawls"),
    )
    op.create_table(
        "crawl_items",
        sa.Column("crawl_id", sa.String(40), nullable=False),
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("md5", sa.String(32), nullable=True),
        sa.Column("finished_at", sa.Double, nullable=True),
        sa.PrimaryKeyConstraint("crawl_id", "line_no", name="pk_crawl_items"),
    )
    op.create_index("ix_crawl_items_crawl_id_outcome", "crawl_items", ["crawl_id", "outcome"])
    conn = op.get_bind()
    ours = sa.select(runs.c.id).where(runs.c.app == APP)
    conn.execute(
        crawls.insert().from_select(
            ["id", "source", "created_at", "lines_total"],
            sa.select(runs.c.id, runs.c.name, runs.c.created_at, runs.c.total).where(
                runs.c.app == APP
            ),
        )
    )
    failure = sa.and_(failures.c.run_id == items.c.run_id, failures.c.item_key == items.c.item_key)
    conn.execute(
        crawl_items.insert().from_select(
            [
                "crawl_id",
                "line_no",
                "url",
                "outcome",
                "reason",
                "detail",
                "http_status",
                "md5",
                "finished_at",
            ],
            sa.select(
                items.c.run_id,
                sa.cast(items.c.item_key, sa.Integer),
                items.c.target,
                sa.case((items.c.state == "queued", sa.null()), else_=items.c.outcome),
                sa.case((items.c.state == "failed", failures.c.reason), else_=sa.null()),
                sa.case((items.c.state == "failed", failures.c.message), else_=sa.null()),
                sa.case((items.c.state == "failed", failures.c.http_status), else_=sa.null()),
                items.c.result,
                items.c.finished_at,
            )
            .select_from(items.outerjoin(failures, failure))
            .where(items.c.run_id.in_(ours)),
        )
    )
    conn.execute(failures.delete().where(failures.c.run_id.in_(ours)))
    conn.execute(items.delete().where(items.c.run_id.in_(ours)))
    conn.execute(runs.delete().where(runs.c.app == APP))
