"""The fan-in interface: branches of one piece of work meet before the next step runs.

Every queue backend has one (`QueueBackend.fanin`), stored beside its jobs so that a group
survives what the jobs survive; the conformance suite in `tests/jobs/` specifies it."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from sleuth.jobs.base import JSON

Entry = tuple[str, str, JSON]  # (group key, part, value)


class FanIn(abc.ABC):
    """Groups of named parts, complete once every part is in."""

    def join(
        self, key: str, part: str, value: JSON, parts: Sequence[str]
    ) -> dict[str, JSON] | None:
        """Record `value` as `part` of the group `key` (idempotent: a second put of the same
        part overwrites it). Returns every part's value once all of `parts` are present, else
        None. Every caller that completes the set gets the values, so the follow-up job must be
        sent with a dedup key and be idempotent itself. Groups that never complete are dropped
        a day after their first part."""
        return self.join_many([(key, part, value)], parts)[0]

    @abc.abstractmethod
    def join_many(
        self, entries: Sequence[Entry], parts: Sequence[str]
    ) -> list[dict[str, JSON] | None]:
        """`join` each (key, part, value) in one round trip, in order; one result each."""

    def forget(self, key: str) -> None:
        """Drop a finished group."""
        self.forget_many([key])

    @abc.abstractmethod
    def forget_many(self, keys: Sequence[str]) -> None:
        """Drop finished groups in one round trip."""
