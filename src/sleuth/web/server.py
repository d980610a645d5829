"""`sleuth serve`'s process tree: the web app on gunicorn, and the job worker processes beside it.

The `sleuth serve` process is gunicorn's arbiter. Its web workers (gthread: `web.workers`
processes of `web.threads` threads) build their own `Services` after the fork, so no database
connection crosses a fork (the arbiter opens none: with the database down, the web still starts
and `/healthz` says so). The job workers start through `spawn_workers` once the socket
listens; one that dies on its own is started again (after a pause that grows while its
successors keep dying). Every child exits with the arbiter, even a killed one
(`exit_with_parent`).

Signals to the arbiter: SIGTERM stops the web workers gracefully, SIGINT and SIGQUIT at once;
either way the job workers then stop, finishing or handing back their jobs. SIGHUP reloads:
the settings are read again, new web workers start and the old ones finish their requests, and
the job workers are stopped (their jobs handed back) and started again on the new settings.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from sleuth.config import ConfigError, Settings
from sleuth.jobs.parent import exit_with_parent
from sleuth.jobs.processes import forget_inherited_workers
from sleuth.services import Services
from sleuth.web.app import create_app
from sleuth.web.proxies import TrustedProxies, parse_proxies
from sleuth.web.serving import GRACE, JobWorkers, check_web_settings, freeze_heap, shown_url

log = logging.getLogger(__name__)


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Arbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's arbiter, which also restarts a job worker that died."""

    def manage_workers(self) -> None:
        super().manage_workers()
        self.app.job_workers.keep()


class WebServer(BaseApplication):  # type: ignore[misc]
    """`sleuth serve` on gunicorn. `reload_settings` reads the settings again on SIGHUP;
    `announce` receives the URL once the socket listens; `access_log`: a file, "-" for
    stderr, None for none."""

    def __init__(
        self,
        settings: Settings,
        reload_settings: Callable[[], Settings],
        *,
        run_workers: bool,
        announce: Callable[[str], None],
        access_log: str | None = None,
    ) -> None:
        check_web_settings(settings)
        self.settings = settings
        self.reload_settings = reload_settings
        self.announce = announce
        self.access_log = access_log
        self.job_workers = JobWorkers(settings, enabled=run_workers)
        super().__init__()

    # -- gunicorn's interface ------------------------------------------------------------------

    def load_config(self) -> None:
        web = self.settings.web
        proxies = ",".join(str(net) for net in parse_proxies(web.trusted_proxies))
        options: dict[str, Any] = {
            "bind": [_bind(web.host, web.port)],
            "workers": web.workers,
            "threads": web.threads,
            "worker_class": "gthread",
            "graceful_timeout": GRACE,
            "proc_name": "sleuth-web",
            "errorlog": "-",
            "loglevel": "warning",
            "accesslog": self.access_log,
            "forwarded_allow_ips": proxies,
            "when_ready": self._when_ready,
            "on_reload": self._on_reload,
            "on_exit": self._on_exit,
            "post_fork": self._post_fork,
        }
        if "control_socket_disable" in self.cfg.settings:  # one socket per user would clash
            options["control_socket_disable"] = True
        for name, value in options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        """The WSGI app, built in each web worker after the fork."""
        app = create_app(Services(self.settings))
        wsgi = TrustedProxies(app.wsgi_app, parse_proxies(self.settings.web.trusted_proxies))
        freeze_heap()  # the worker's started heap, out of the collector's full collections
        return wsgi

    def reload(self) -> None:
        try:
            settings = self.reload_settings()
            check_web_settings(settings)
        except (ConfigError, ValueError) as exc:
            log.error("reload: keeping the running settings: %s", exc)
        else:
            self.settings = settings
        super().reload()

    def run(self) -> None:
        try:
            _Arbiter(self).run()
        except RuntimeError as exc:  # what gunicorn's own run reports (e.g. cannot listen)
            print(f"\nError: {exc}\n", file=sys.stderr)
            sys.exit(1)

    # -- hooks ---------------------------------------------------------------------------------

    def _when_ready(self, server: Any) -> None:
        host, port = server.LISTENERS[0].sock.getsockname()[:2]
        self.job_workers.start()
        self.announce(shown_url(host, port))

    def _on_reload(self, server: Any) -> None:
        self.job_workers.restart(self.settings)

    def _on_exit(self, server: Any) -> None:
        self.job_workers.stop()

    def _post_fork(self, server: Any, worker: Any) -> None:
        forget_inherited_workers()
        exit_with_parent(server.pid)
