"""What both of `sleuth serve`'s servers share: which one runs, and the checks of its settings.

gunicorn is the server where it can run (it needs `fork`: not on Windows); waitress, one
process of threads, is the other (`web.server`: "auto", "gunicorn" or "waitress"). This module
imports neither, so that the choice is made before either is loaded."""

from __future__ import annotations

import gc
import logging
import os
import time

from sleuth.config import Settings
from sleuth.jobs.processes import WorkerProcesses, spawn_workers
from sleuth.runner import worker_process_main
from sleuth.web.proxies import parse_proxies

log = logging.getLogger(__name__)

SERVERS = ("auto", "gunicorn", "waitress")
GRACE = 10  # seconds the requests in progress get to finish on a graceful stop
MAX_RESTART_PAUSE = 60.0  # seconds: the longest pause before a dead job worker's successor


def chosen_server(settings: Settings) -> str:
    """ "gunicorn" or "waitress": what `web.server` names, "auto" being gunicorn where it runs."""
    name = settings.web.server
    if name == "auto":
        return "gunicorn" if hasattr(os, "fork") else "waitress"
    return name


def check_web_settings(settings: Settings) -> None:
    """Refuse, with the reason, web settings the server could not run with."""
    web = settings.web
    if web.server not in SERVERS:
        raise ValueError(f"web.server must be one of {', '.join(SERVERS)}, not {web.server!r}")
    if web.server == "gunicorn" and not hasattr(os, "fork"):
        raise ValueError("web.server: gunicorn needs fork, which this system lacks; use waitress")
    if web.workers < 1:
        raise ValueError(f"web.workers must be >= 1, not {web.workers}")
    if web.threads < 1:
        raise ValueError(f"web.threads must be >= 1, not {web.threads}")
    if not 0 <= web.port <= 65535:
        raise ValueError(f"web.port must be 0 to 65535, not {web.port}")
    parse_proxies(web.trusted_proxies)


def freeze_heap() -> None:
    """Move everything a serving process holds once it has started (modules, the app, its
    routes and schemas) out of the collector's reach: a full collection otherwise walks that
    whole long-lived heap, and it is what made the slow answers slow (a 900 kB hourly answer's
    p99 was the collector's, not the query's). Objects made later are collected as before."""
    gc.collect()
    gc.freeze()


def shown_url(host: str, port: int) -> str:
    """The URL a listening socket is reached at (an IPv6 host in brackets)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class JobWorkers:
    """The job worker process beside the web, kept running: one that dies on its own is
    started again after a pause that doubles (up to MAX_RESTART_PAUSE) while its successors
    keep dying within that time (a database that is down)."""

    def __init__(self, settings: Settings, *, enabled: bool) -> None:
        self.settings = settings
        self.enabled = enabled
        self.processes: WorkerProcesses | None = None
        self._started_at = 0.0
        self._pause = 1.0

    def start(self) -> None:
        if self.enabled:
            self._started_at = time.monotonic()
            self.processes = spawn_workers(
                1, worker_process_main, (self.settings,), name="worker", grace=float(GRACE)
            )

    def stop(self) -> None:
        """Stop them; they finish or hand back their jobs."""
        if self.processes is not None:
            self.processes.stop()
            self.processes = None

    def restart(self, settings: Settings) -> None:
        self.stop()
        self.settings = settings
        self.start()

    def keep(self) -> None:
        """Start the job worker again if it died (not stopped by us), after a pause."""
        if self.processes is None or self.processes.alive():
            return
        lived = time.monotonic() - self._started_at
        if lived < self._pause:
            return
        pids = ", ".join(map(str, self.processes.pids))
        log.error("the job worker (pid %s) ended on its own; starting another", pids)
        self._pause = min(MAX_RESTART_PAUSE, self._pause * 2) if lived < MAX_RESTART_PAUSE else 1.0
        self.start()
