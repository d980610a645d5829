"""`sleuth serve` on waitress: one process whose `web.threads` threads serve the web, with the
job worker process beside it as under gunicorn. It runs where gunicorn cannot (no `fork`:
Windows) or when `web.server = "waitress"`; `sleuth demo` serves its pages with it too, from
a thread of its own process.

Signals: SIGTERM and SIGINT stop taking connections, give the requests in progress up to
GRACE seconds, then stop the job worker, which finishes or hands back its jobs. SIGHUP (where
the system has it) reads the settings again: new requests are served by an app built on
them and the job worker is restarted; a changed host or port takes a restart."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import IO, Any

from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

from sleuth.config import ConfigError, Settings
from sleuth.services import Services
from sleuth.web.app import create_app
from sleuth.web.proxies import TrustedProxies, WSGIApp, parse_proxies
from sleuth.web.serving import GRACE, JobWorkers, check_web_settings, freeze_heap, shown_url

log = logging.getLogger(__name__)

KEEP_EVERY = 1.0  # seconds between two looks at the job worker


def listen(app: WSGIApp, host: str, port: int, threads: int) -> BaseWSGIServer:
    """A waitress server bound to (host, port) (port 0: any free one), not yet serving."""
    server = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="sleuth",
        clear_untrusted_proxy_headers=False,  # web.proxies.TrustedProxies reads them
    )
    if isinstance(server, MultiSocketServer):  # only for several listen addresses: not ours
        raise RuntimeError("one listening address expected")
    return server


def serve_in_thread(server: BaseWSGIServer) -> str:
    """Serve from a daemon thread; returns the URL."""
    threading.Thread(target=server.run, daemon=True, name="sleuth-web").start()
    return shown_url(str(server.effective_host), int(server.effective_port))


def stop(server: BaseWSGIServer, grace: float = GRACE) -> None:
    """Stop listening and give the requests in progress `grace` seconds to finish."""
    server.close()
    server.task_dispatcher.shutdown(cancel_pending=False, timeout=grace)


class _Swappable:
    """The WSGI app of the moment: SIGHUP puts one built on the new settings in its place,
    while requests already running finish on the old one."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self.app(environ, start_response)


class _AccessLog:
    """One line per request, in the common log format gunicorn writes (client first)."""

    def __init__(self, app: WSGIApp, out: IO[str]) -> None:
        self.app = app
        self.out = out
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        seen: dict[str, str] = {}

        def recording(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            seen["status"] = status.split(" ", 1)[0]
            seen["length"] = next((v for k, v in headers if k.lower() == "content-length"), "-")
            return start_response(status, headers, *exc)

        body: Iterable[bytes] = self.app(environ, recording)
        path = environ.get("PATH_INFO", "") + (
            "?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else ""
        )
        when = time.strftime("%d/%b/%Y:%H:%M:%S %z")
        line = (
            f'{environ.get("REMOTE_ADDR", "-")} - - [{when}] "{environ.get("REQUEST_METHOD")}'
            f' {path} {environ.get("SERVER_PROTOCOL")}" {seen.get("status", "-")}'
            f" {seen.get('length', '-')}\n"
        )
        with self.lock:
            self.out.write(line)
            self.out.flush()
        return body


class ThreadedServer:
    """`sleuth serve` on waitress; the same interface as `web.server.WebServer`."""

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
        self._wake = threading.Event()
        self._stopping = False
        self._reloading = False
        self._log: IO[str] | None = None

    def _app(self, settings: Settings, cleanup: ExitStack) -> WSGIApp:
        """The app on `settings`: Flask's, logged, behind the trusted proxies' addresses."""
        services = Services(settings)
        cleanup.callback(services.close)
        app: WSGIApp = create_app(services).wsgi_app
        if self._log is not None:
            app = _AccessLog(app, self._log)
        return TrustedProxies(app, parse_proxies(settings.web.trusted_proxies))

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == getattr(signal, "SIGHUP", None):
            self._reloading = True
        else:
            self._stopping = True
        self._wake.set()

    def run(self) -> None:
        with ExitStack() as cleanup:
            if self.access_log == "-":
                self._log = sys.stderr
            elif self.access_log is not None:
                self._log = cleanup.enter_context(open(self.access_log, "a", encoding="utf-8"))
            current = _Swappable(self._app(self.settings, cleanup))
            freeze_heap()  # the started heap, out of the collector's full collections
            web = self.settings.web
            try:
                server = listen(current, web.host, web.port, web.threads)
            except OSError as exc:
                print(f"\nError: cannot listen on {web.host}:{web.port}: {exc}\n", file=sys.stderr)
                sys.exit(1)
            for name in ("SIGTERM", "SIGINT", "SIGHUP"):
                if hasattr(signal, name):
                    signal.signal(getattr(signal, name), self._on_signal)
            url = serve_in_thread(server)
            self.job_workers.start()
            cleanup.callback(self.job_workers.stop)
            self.announce(url)
            while not self._stopping:
                self._wake.wait(KEEP_EVERY)
                self._wake.clear()
                if self._reloading and not self._stopping:
                    self._reloading = False
                    self._reload(current, cleanup)
                self.job_workers.keep()
            stop(server)

    def _reload(self, current: _Swappable, cleanup: ExitStack) -> None:
        try:
            settings = self.reload_settings()
            check_web_settings(settings)
        except (ConfigError, ValueError) as exc:
            log.error("reload: keeping the running settings: %s", exc)
            return
        old, new = self.settings.web, settings.web
        if (new.host, new.port) != (old.host, old.port):
            log.warning("reload: a new web.host or web.port takes a restart; still on the old")
        self.settings = settings
        current.app = self._app(settings, cleanup)
        self.job_workers.restart(settings)
