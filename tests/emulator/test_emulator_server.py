"""The server machinery with a small Flask app: keep-alive, framing, draining, resets, stop."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from flask import Flask, Response, request

from sleuth.emulator.server import AbortConnection, EmulatorServer, stopping
from tests.patience import PATIENCE, wait_for


def _app() -> Flask:
    app = Flask(__name__)

    @app.get("/hello")
    def hello() -> str:
        return "hello"

    @app.post("/ignore-body")
    def ignore_body() -> str:
        return "ignored"

    @app.post("/echo")
    def echo() -> bytes:
        return request.get_data()

    @app.get("/stream")
    def stream() -> Response:
        return Response((b"part%d;" % i for i in range(5)), mimetype="text/plain")

    @app.get("/short")
    def short() -> Response:
        return Response(iter([b"abc"]), headers={"Content-Length": "10"}, direct_passthrough=True)

    @app.get("/reset")
    def reset() -> Response:
        def body() -> Iterator[bytes]:
            yield b"x" * 1000
            raise AbortConnection

        return Response(body(), headers={"Content-Length": "5000"}, direct_passthrough=True)

    @app.get("/forever")
    def forever() -> Response:
        stop = stopping(request.environ)

        def body() -> Iterator[bytes]:
            while not stop.wait(0.05):
                yield b"."

        return Response(body(), mimetype="text/plain")

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("the app failed")

    return app


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with EmulatorServer(_app()) as url:
        yield url


def _connect(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=PATIENCE)
    return sock


class _Reader:
    """Reads HTTP/1.1 responses off one socket, as a keep-alive client would."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb")

    def response(self) -> tuple[int, dict[str, str], bytes]:
        status = int(self.file.readline().split()[1])
        headers: dict[str, str] = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            return status, headers, self.file.read(int(headers["content-length"]))
        body = b""
        if headers.get("transfer-encoding") == "chunked":
            while size := int(self.file.readline().strip(), 16):
                body += self.file.read(size)
                self.file.readline()
            self.file.readline()
        return status, headers, body


def test_port_zero_picks_a_free_port_and_stop_frees_it() -> None:
    first, second = EmulatorServer(_app()), EmulatorServer(_app())
    url_a, url_b = first.start(), second.start()
    try:
        assert url_a != url_b
        assert httpx.get(url_a + "/hello", timeout=PATIENCE).text == "hello"
    finally:
        first.stop()
        second.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url_a + "/hello", timeout=PATIENCE)


def test_one_connection_serves_many_requests(base_url: str) -> None:
    with _connect(base_url) as sock:
        reader = _Reader(sock)
        for _ in range(3):
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = reader.response()
            assert (status, body) == (200, b"hello")
            assert headers.get("connection") != "close"
            assert "date" in headers


def test_pipelined_requests_are_answered_in_order(base_url: str) -> None:
    with _connect(base_url) as sock:
        reader = _Reader(sock)
        sock.sendall(
            b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"
        )
        assert reader.response()[2] == b"hello"
        assert reader.response()[2] == b"abcd"


def test_an_unread_request_body_is_drained_before_the_next_request(base_url: str) -> None:
    with _connect(base_url) as sock:
        reader = _Reader(sock)
        sock.sendall(b"POST /ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        sock.sendall(b"y" * 5000)
        assert reader.response()[2] == b"ignored"
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.response()[2] == b"hello"


def test_chunked_request_bodies_are_read(base_url: str) -> None:
    response = httpx.post(base_url + "/echo", content=iter([b"ab", b"cd", b"ef"]), timeout=PATIENCE)
    assert response.content == b"abcdef"


def test_a_body_without_length_is_sent_chunked(base_url: str) -> None:
    with _connect(base_url) as sock:
        reader = _Reader(sock)
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        _, headers, body = reader.response()
        assert headers["transfer-encoding"] == "chunked"
        assert body == b"part0;part1;part2;part3;part4;"
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.response()[2] == b"hello"


def test_http_1_0_clients_get_the_connection_closed(base_url: str) -> None:
    with _connect(base_url) as sock:
        sock.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Connection: close" in head
    assert b"Transfer-Encoding" not in head
    assert body == b"part0;part1;part2;part3;part4;"


def test_connection_close_is_honoured(base_url: str) -> None:
    with _connect(base_url) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.endswith(b"hello")
    assert b"Connection: close" in data


def test_a_body_shorter_than_its_length_closes_the_connection(base_url: str) -> None:
    with _connect(base_url) as sock:
        sock.sendall(b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.endswith(b"\r\n\r\nabc")


def test_abort_connection_resets_mid_body(base_url: str) -> None:
    with _connect(base_url) as sock:
        sock.sendall(b"GET /reset HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        with pytest.raises(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    assert b"Content-Length: 5000" in received
    assert len(received.partition(b"\r\n\r\n")[2]) == 1000


def test_malformed_requests_get_400(base_url: str) -> None:
    with _connect(base_url) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")
    with _connect(base_url) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\n\r\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")
    with _connect(base_url) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")
    with _connect(base_url) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: -3\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")


def test_expect_100_continue(base_url: str) -> None:
    with _connect(base_url) as sock:
        reader = _Reader(sock)
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        assert reader.response()[0] == 100
        sock.sendall(b"xyz")
        assert reader.response()[2] == b"xyz"


def test_an_app_error_is_a_500_and_the_server_goes_on(base_url: str) -> None:
    assert httpx.get(base_url + "/boom", timeout=PATIENCE).status_code == 500
    assert httpx.get(base_url + "/hello", timeout=PATIENCE).text == "hello"


def test_many_concurrent_keep_alive_connections(base_url: str) -> None:
    sockets = [_connect(base_url) for _ in range(200)]
    try:
        readers = [_Reader(sock) for sock in sockets]
        for _ in range(2):  # every connection stays open and is served again
            for sock in sockets:
                sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            assert all(reader.response()[2] == b"hello" for reader in readers)
    finally:
        for sock in sockets:
            sock.close()


def test_stop_ends_idle_connections_and_endless_streams() -> None:
    server = EmulatorServer(_app())
    url = server.start()
    idle = _connect(url)
    idle.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    _Reader(idle).response()
    streaming = _connect(url)
    streaming.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
    assert streaming.recv(65536)
    handlers = server._server
    assert handlers is not None
    server.stop()
    # Every connection's handler ended, the endless stream's too: none was left running.
    wait_for(lambda: not handlers._open, "every connection handler ended")
    for sock in (idle, streaming):
        sock.settimeout(PATIENCE)  # a connection left open would raise TimeoutError here
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(65536):
                pass
        sock.close()


def test_stopping_outside_the_server_is_never_set() -> None:
    assert not stopping({}).is_set()


def test_start_twice_is_refused() -> None:
    server = EmulatorServer(_app())
    server.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
    finally:
        server.stop()
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.base_url


def test_stop_after_bind_only_and_stop_from_another_thread() -> None:
    bound = EmulatorServer(_app())
    bound.bind()
    bound.stop()  # never served: must not wait for a serving loop

    server = EmulatorServer(_app())
    url = server.bind()
    runner = threading.Thread(target=server.run)
    runner.start()
    assert httpx.get(url + "/hello", timeout=PATIENCE).text == "hello"
    server.stop()
    runner.join(timeout=PATIENCE)
    assert not runner.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/hello", timeout=PATIENCE)
