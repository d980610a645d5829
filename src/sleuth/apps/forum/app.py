"""The forum app's declaration: what the engine runs, serves and shows for it.

The engine reads it whenever settings load, so it imports only `sleuth.app` at first; the
crawlers and the command are imported when the engine asks for them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sleuth.app import App, StatusLine

if TYPE_CHECKING:
    from sleuth.services import Services

NAME = "forum"


def _status(services: Services) -> list[StatusLine]:
    """Crawled forums and what they hold."""
    import sqlalchemy as sa

    from sleuth.apps.forum.models import forum_posts, forum_sites, forum_topics, forum_users

    def count(conn: sa.Connection, table: sa.Table) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    with services.engine.connect() as conn:
        sites, topics = count(conn, forum_sites), count(conn, forum_topics)
        posts, users = count(conn, forum_posts), count(conn, forum_users)
    return [StatusLine("forums", f"{sites} crawled: {topics} topics, {posts} posts, {users} users")]


app = App(
    name=NAME,
    description="Forums (Discourse, the bB XML API) crawled into SQL, for their statistics.",
    migrations=Path(__file__).parent / "migrations",
    status=_status,
)
