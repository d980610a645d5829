"""graph app: nodes, edges follower -> followed, per-(account, operation) cursors

Revision ID: graph_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "graph_0001"
down_revision = None
branch_labels = ("graph",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "graph_nodes",
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("handle", sa.String(255), nullable=False),
        sa.Column("native_id", sa.String(255)),
        sa.Column("followers_count", sa.Integer),
        sa.Column("following_count", sa.Integer),
        sa.Column("statuses_count", sa.Integer),
        sa.Column("lang", sa.String(16)),
        sa.Column("depth", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("first_seen", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("network", "account_id", name="pk_graph_nodes"),
    )
    op.create_index("ix_graph_nodes_handle", "graph_nodes", ["handle"])
    op.create_table(
        "graph_edges",
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("src", sa.String(255), nullable=False),
        sa.Column("dst", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("seen_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("network", "src", "dst", "kind", name="pk_graph_edges"),
    )
    op.create_index("ix_graph_edges_network_dst", "graph_edges", ["network", "dst"])
    op.create_table(
        "graph_cursors",
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("cursor", sa.Text),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("found", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("newest", sa.String(64)),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("network", "account_id", "operation", name="pk_graph_cursors"),
    )


def downgrade() -> None:
    op.drop_table("graph_cursors")
    op.drop_table("graph_edges")
    op.drop_table("graph_nodes")
