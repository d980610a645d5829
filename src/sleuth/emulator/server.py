"""Run any emulator WSGI app on a real HTTP server over loopback.

Werkzeug's own request handler answers every response with `Connection: close`, so each request
costs a TCP handshake and a new thread; crawlers keep connections alive, and a benchmark against
such a server measures connection setup instead of the crawler. `KeepAliveHandler` replaces
werkzeug's `run_wsgi` with one that frames every response (Content-Length or chunked), drains the
unread request body and keeps HTTP/1.1 connections open, while reusing werkzeug's WSGI environ.

One thread serves each connection, so one process tops out at a core (the GIL): about
1,300-1,700 small Flask responses/s, or 800+ cached 200 kB images/s, on a 2-core VM.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from http import HTTPStatus
from types import TracebackType
from typing import Any, BinaryIO

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

log = logging.getLogger(__name__)

STOPPING_KEY = "sleuth.emulator.stopping"
"""WSGI environ key of a `threading.Event` set when the server stops (see `stopping`)."""

KEEPALIVE_TIMEOUT = 75.0
"""Seconds an idle keep-alive connection is kept open (nginx's default)."""

CLOSE_WAIT = 5.0
"""Seconds a stopping server waits for its woken connection handlers to end."""

_MAX_DRAIN = 1 << 20
_MAX_LINE = 65536
_MAX_HEADERS = 100
_NO_BODY_STATUSES = frozenset({204, 304})


class AbortConnection(Exception):
    """Raise it while streaming a response body to reset the TCP connection at that point.

    The server then closes the socket with SO_LINGER 0, so the client sees a reset (RST) in the
    middle of the body, as from a crashed or killed origin.
    """


def stopping(environ: dict[str, Any]) -> threading.Event:
    """The event that a slow streaming response waits on, so that stopping never waits for it.

    Outside `EmulatorServer` (Flask's test client) it is an event that is never set.
    """
    event = environ.get(STOPPING_KEY)
    return event if isinstance(event, threading.Event) else threading.Event()


class _BodyReader:
    """`wsgi.input` limited to the declared Content-Length, counting what the app left unread."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        want = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self._stream.read(want)
        self.remaining -= len(data)
        if len(data) < want:
            self.remaining = 0
        return data

    def readline(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        want = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self._stream.readline(want)
        self.remaining -= len(data)
        return data

    def __iter__(self) -> _BodyReader:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class _RequestHeaders:
    """The request's header fields: as much of `http.client.HTTPMessage` as werkzeug uses.

    The standard library parses headers with the email package (~85 us here, a fifth of a small
    request's cost); a header block needs only a split per line.
    """

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields

    def items(self) -> list[tuple[str, str]]:
        return self._fields

    def get(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        for key, value in self._fields:
            if key.lower() == wanted:
                return value
        return default


class _BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header, formatted once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


class KeepAliveHandler(WSGIRequestHandler):
    """A WSGI request handler that keeps HTTP/1.1 connections alive between requests."""

    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # so that a bad request line gets a status line back
    disable_nagle_algorithm = True
    timeout = KEEPALIVE_TIMEOUT
    server: EmulatorWSGIServer

    def parse_request(self) -> bool:
        """Parse the request line and headers (`http.server` semantics, without email parsing)."""
        self.command = None  # type: ignore[assignment]
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        try:
            words = self.requestline.split()
            if not words:
                return False
            if len(words) != 3:
                raise _BadRequest(
                    HTTPStatus.BAD_REQUEST, f"Bad request syntax ({self.requestline!r})"
                )
            command, path, version = words
            major, _, minor = version.removeprefix("HTTP/").partition(".")
            if not (version.startswith("HTTP/") and major.isdigit() and minor.isdigit()):
                raise _BadRequest(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
            if (int(major), int(minor)) >= (2, 0):
                raise _BadRequest(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "Invalid HTTP version")
            self.request_version = version
            self.close_connection = (int(major), int(minor)) < (1, 1)
            self.command, self.path = command, path
            if path.startswith("//"):
                self.path = "/" + path.lstrip("/")
            self.headers = _RequestHeaders(self._read_fields())  # type: ignore[assignment]
        except _BadRequest as exc:
            self.send_error(exc.status, str(exc))
            return False
        connection = (self.headers.get("Connection") or "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        return True

    def _read_fields(self) -> list[tuple[str, str]]:
        fields: list[tuple[str, str]] = []
        while True:
            line = self.rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                raise _BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
            if line in (b"\r\n", b"\n", b""):
                return fields
            text = line.decode("iso-8859-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and fields:
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {text.strip()}")
                continue
            name, colon, value = text.partition(":")
            if not colon or not name or name != name.strip():
                raise _BadRequest(HTTPStatus.BAD_REQUEST, f"Bad header line ({text!r})")
            fields.append((name, value.strip()))
            if len(fields) > _MAX_HEADERS:
                raise _BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")

    def run_wsgi(self) -> None:
        if (self.headers.get("Expect") or "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.make_environ()
        self.environ = environ
        environ[STOPPING_KEY] = self.server.stopping
        body: Any = environ["wsgi.input"]
        if not environ.get("wsgi.input_terminated"):
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                self._send_plain(400, b"Invalid Content-Length\n")
                return
            body = _BodyReader(self.rfile, length)
            environ["wsgi.input"] = body
            environ["wsgi.input_terminated"] = True
        try:
            self._respond(environ)
        except AbortConnection:
            self._abort()
            return
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            return
        if not self.close_connection:
            self._drain(body)

    def _respond(self, environ: dict[str, Any]) -> None:
        """Run the app and write its response with explicit framing."""
        head_only = environ["REQUEST_METHOD"] == "HEAD"
        started: list[Any] = []
        sent_head = False
        chunked = False
        body_allowed = True
        declared: int | None = None
        written = 0
        code = 500

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            if exc_info is not None and sent_head:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return write

        def head_bytes() -> bytes:
            nonlocal chunked, declared, code, body_allowed
            status, headers = started
            code = int(status.split(None, 1)[0])
            names = set()
            lines = [f"HTTP/1.1 {status}"]
            for name, value in headers:
                lower = name.lower()
                if lower in {"connection", "transfer-encoding", "keep-alive"}:
                    continue
                names.add(lower)
                if lower == "content-length":
                    declared = int(value)
                lines.append(f"{name}: {value}")
            if "date" not in names:
                lines.append(f"Date: {_http_date()}")
            if "server" not in names:
                lines.append(f"Server: {self.server_version}")
            body_allowed = not head_only and code not in _NO_BODY_STATUSES and code >= 200
            if declared is None and body_allowed:
                if self.request_version == "HTTP/1.1":
                    chunked = True
                    lines.append("Transfer-Encoding: chunked")
                else:
                    self.close_connection = True
            if self.close_connection:
                lines.append("Connection: close")
            elif self.request_version != "HTTP/1.1":
                lines.append("Connection: keep-alive")
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

        def write(data: bytes) -> None:
            nonlocal sent_head, written
            if not started:
                raise AssertionError("write() before start_response()")
            out = b""
            if not sent_head:
                out = head_bytes()
                sent_head = True
            if data and body_allowed:
                if declared is not None and written + len(data) > declared:
                    data = data[: declared - written]
                    self.close_connection = True
                written += len(data)
                if chunked and data:
                    out += b"%x\r\n" % len(data) + data + b"\r\n"
                else:
                    out += data
            if out:
                self.wfile.write(out)

        result: Iterable[bytes] = ()
        try:
            result = self.server.app(environ, start_response)
            for data in result:
                write(data)
            if not sent_head:
                write(b"")
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            if declared is not None and body_allowed and written < declared:
                self.close_connection = True
        except (AbortConnection, ConnectionError, TimeoutError):
            raise
        except Exception:
            log.exception("emulator app failed on %s", environ.get("PATH_INFO"))
            self.close_connection = True
            if not sent_head:
                self._send_plain(500, b"Internal Server Error\n")
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        self.log_request(code, written)

    def _send_plain(self, code: int, text: bytes) -> None:
        reason = self.responses.get(code, ("",))[0]
        head = (
            f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n"
        )
        self.close_connection = True
        self.wfile.write(head.encode("latin-1") + text)

    def _drain(self, body: Any) -> None:
        """Read what the app left of the request body, so the next request line is found."""
        total = 0
        while True:
            data = body.read(65536)
            if not data:
                return
            total += len(data)
            if total > _MAX_DRAIN:
                self.close_connection = True
                return

    def _abort(self) -> None:
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The socket really closes (RST) when `finish` closes rfile/wfile; the server's
        # shutdown(SHUT_WR), which would send a clean FIN first, then fails harmlessly.
        self.connection.close()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.server.log_requests:
            log.info('%s "%s" %s %s', self.client_address[0], self.requestline, code, size)

    def log_error(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class EmulatorWSGIServer(ThreadedWSGIServer):
    """Werkzeug's threaded server with a deeper backlog and tracking of open connections.

    It binds the listening socket itself: werkzeug would print a message and call `sys.exit`
    when the port is taken, where a library must raise `OSError`.
    """

    request_queue_size = 1024

    def __init__(
        self, host: str, port: int, app: Callable[..., Any], *, log_requests: bool = False
    ) -> None:
        self.stopping = threading.Event()
        self.log_requests = log_requests
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, socket.SOCK_STREAM) as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(self.request_queue_size)
            # werkzeug keeps a duplicate of the descriptor; this one closes on leaving
            super().__init__(host, port, app, handler=KeepAliveHandler, fd=listener.fileno())

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self._open_lock:
            self._open.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("emulator connection from %s failed", client_address)

    def close_connections(self) -> None:
        """Wake every handler thread (idle keep-alive or streaming) and wait for them to end,
        up to `CLOSE_WAIT` seconds: a handler stuck in the app is left to its daemon thread."""
        self.stopping.set()
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + CLOSE_WAIT
        while time.monotonic() < deadline:
            with self._open_lock:
                if not self._open:
                    return
            time.sleep(0.01)


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class EmulatorServer:
    """One emulator app on a real HTTP server; `start()` serves it in a thread, returns its URL.

    Port 0 picks a free port, so tests can run in parallel. Use it as a context manager.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_requests: bool = False,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.log_requests = log_requests
        self._server: EmulatorWSGIServer | None = None
        self._serving = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        server = self._server
        if server is None:
            raise RuntimeError("the emulator server is not started")
        return _base_url(self.host, server.server_address[1])

    def bind(self) -> str:
        """Open the listening socket (connections queue from now on); return the base URL."""
        if self._server is not None:
            raise RuntimeError("the emulator server is already started")
        self._server = EmulatorWSGIServer(
            self.host, self.port, self.app, log_requests=self.log_requests
        )
        return self.base_url

    def start(self) -> str:
        """Serve in a daemon thread; return the base URL, e.g. `http://127.0.0.1:41234`."""
        url = self.bind()
        self._thread = threading.Thread(target=self._serve, name=f"emulator {url}", daemon=True)
        self._thread.start()
        return url

    def run(self) -> None:
        """Serve in the calling thread until `stop()` from another thread or Ctrl-C."""
        if self._server is None:
            self.bind()
        try:
            self._serve()
        except KeyboardInterrupt:
            pass
        finally:
            self._close()

    def _serve(self) -> None:
        server = self._server
        if server is None:
            raise RuntimeError("the emulator server is not bound")
        self._serving = True
        server.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop accepting, end open connections and streaming responses, free the port."""
        server = self._server
        if server is None:
            return
        if self._serving:
            server.shutdown()  # returns once the serving loop has ended
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._close()

    def _close(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            self._serving = False
        if server is not None:
            server.server_close()
            server.close_connections()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    app: Callable[..., Any],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    on_ready: Callable[[str], None] | None = None,
    log_requests: bool = False,
) -> None:
    """Serve `app` in the calling thread until Ctrl-C (SIGINT) or SIGTERM; `on_ready` gets the
    base URL once bound.

    Both signals are taken over explicitly: a process started from a non-interactive shell's
    background job inherits SIGINT as *ignored*, and Python then installs no KeyboardInterrupt
    handler of its own, so Ctrl-C would do nothing."""
    _stop_on_signals()
    server = EmulatorServer(app, host, port, log_requests=log_requests)
    url = server.bind()
    if on_ready is not None:
        on_ready(url)
    server.run()


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _stop_on_signals() -> None:
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _raise_interrupt)
