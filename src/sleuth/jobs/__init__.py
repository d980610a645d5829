"""Durable job queue: one interface (`base`), SQLite and Redis backends, the worker runtime."""

from sleuth.jobs.factory import open_queue

__all__ = ["open_queue"]
