"""The forum app's job kinds: one `forum.topic` job per changed topic, on the crawl layer, and
`forum.analytics`, the periodic pass over what the crawls changed.

A crawl is a run of the forum app; each changed topic the listing finds is an item keyed by
its id, whose target holds the topic as listed (JSON), so that the item alone gives its job
again (`retry-errors`). The job crawls the topic and resolves its item in the transaction
that writes the topic and its checkpoint. A failure that waiting may cure (a timeout, a 5xx,
a 429 longer than the fetcher sleeps) is raised for the queue to retry later; any other (a 404,
a document that is not what the API sends) fails the item with its reason.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection

from sleuth.apps.forum.analytics import analyze
from sleuth.apps.forum.app import ANALYTICS_QUEUE, CRAWLED, NAME, TOPIC_QUEUE
from sleuth.apps.forum.crawl import crawl_bb_thread, crawl_discourse_topic
from sleuth.apps.forum.records import checkpoints
from sleuth.crawl import runs
from sleuth.jobs.tasks import Task
from sleuth.jobs.worker import JobContext, JobKind
from sleuth.net.errors import FetchError
from sleuth.net.fetcher import Fetcher
from sleuth.services import Services
from sleuth.sources.bbxml import BbClient
from sleuth.sources.discourse import DiscourseClient, profile
from sleuth.sources.forumtypes import ForumFormatError, ForumTopic


@dataclass(frozen=True)
class TopicJob:
    """A changed topic to crawl: its run and item key, and the item's target (see
    `topic_target`)."""

    run: str
    key: str
    target: str


TOPIC = Task(TOPIC_QUEUE, TopicJob, lease=120.0)


@dataclass(frozen=True)
class Analyze:
    """Recompute the statistics the crawls changed (`reason`: who asked, for the logs)."""

    reason: str


ANALYZE = Task(ANALYTICS_QUEUE, Analyze, lease=600.0)


def topic_target(kind: str, base: str, site: int, topic: ForumTopic) -> str:
    """An item's target: where the topic is and what the listing said of it."""
    return json.dumps({"kind": kind, "base": base, "site": site, "topic": asdict(topic)})


def _read_target(target: str) -> tuple[str, str, int, ForumTopic]:
    data: dict[str, Any] = json.loads(target)
    return data["kind"], data["base"], int(data["site"]), ForumTopic(**data["topic"])


def item_job(item: runs.RunItem) -> runs.ItemJob:
    """A topic's job: what a crawl queues and `retry-errors` queues again."""
    return runs.ItemJob(
        TOPIC, TopicJob(item.run, item.key, item.target), f"topic:{item.run}:{item.key}"
    )


def topic_kind(services: Services, fetcher: Fetcher) -> JobKind[TopicJob]:
    engine = services.engine
    pace = profile(services.settings.app(NAME).discourse_per_minute)

    async def handle(job: TopicJob, ctx: JobContext) -> None:
        kind, base, site, listed = _read_target(job.target)

        def settle(conn: Connection) -> None:
            runs.resolve(conn, NAME, job.run, job.key, CRAWLED)

        try:
            if kind == "discourse":
                await crawl_discourse_topic(
                    engine, DiscourseClient(fetcher, base, pace), site, listed, settle
                )
            else:
                with engine.connect() as conn:
                    stored = checkpoints(conn, site, [listed.topic_id])
                posts = stored.get(listed.topic_id, (0, None))[0]
                await crawl_bb_thread(engine, BbClient(fetcher, base), site, listed, posts, settle)
        except FetchError as exc:
            if exc.retryable:
                raise
            with engine.begin() as conn:
                runs.fail(conn, NAME, job.run, job.key, exc.reason, str(exc), exc.status)
        except ForumFormatError as exc:
            with engine.begin() as conn:
                runs.fail(conn, NAME, job.run, job.key, "bad_document", str(exc))

    return JobKind(TOPIC, handle)


def analytics_kind(services: Services) -> JobKind[Analyze]:
    engine = services.engine

    async def handle(job: Analyze, ctx: JobContext) -> None:
        await asyncio.to_thread(analyze, engine)

    return JobKind(ANALYZE, handle)
