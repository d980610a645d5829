"""The composition root: the database, blob store and job queue that a configuration names.

The CLI, the web app and every worker build their `Services` here, so the embedded default
and a distributed deployment differ only by configuration."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine

from sleuth.app import migration_dirs
from sleuth.config import Settings
from sleuth.jobs import open_queue
from sleuth.jobs.base import QueueBackend
from sleuth.store.blobs import BlobStore
from sleuth.store.db import make_engine, migrate


@dataclass
class Services:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.settings.effective_database_url)
        migrate(engine, migration_dirs())
        return engine

    @cached_property
    def blobs(self) -> BlobStore:
        return BlobStore(self.settings.effective_blob_dir)

    @cached_property
    def queue(self) -> QueueBackend:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return open_queue(self.settings.effective_queue_url)

    def close(self) -> None:
        if "queue" in self.__dict__:
            self.queue.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
