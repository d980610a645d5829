"""An httpx transport whose every new connection goes through the SSRF guard, pinned.

Pinning happens where the socket is opened: httpcore asks the network backend for a connection
to a host name, and `GuardedBackend` resolves that name itself, checks every address and connects
to one of those same addresses. The URL keeps its host name, so the Host header, TLS SNI and
certificate verification are those of the name, and the connection pool (keyed by name) reuses a
connection only to an address that was checked when it was opened. A DNS answer that changes
after the check (rebinding) is never used.

Transport failures leave here already as `FetchError`, so the fetcher has one error type to handle.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from sleuth.net.errors import FetchError
from sleuth.net.guard import Guard


@contextmanager
def map_transport_errors(timeouts: Mapping[str, float | None]) -> Iterator[None]:
    """Turn httpcore's exceptions into `FetchError` with a reason and a readable detail."""
    try:
        yield
    except httpcore.ConnectTimeout as exc:
        detail = f"connect timeout: no connection within {timeouts.get('connect')} s"
        raise FetchError("timeout", detail) from exc
    except httpcore.ReadTimeout as exc:
        detail = f"read timeout: no data for {timeouts.get('read')} s"
        raise FetchError("timeout", detail) from exc
    except httpcore.WriteTimeout as exc:
        detail = f"write timeout: could not send for {timeouts.get('write')} s"
        raise FetchError("timeout", detail) from exc
    except httpcore.PoolTimeout as exc:
        detail = f"pool timeout: no free connection within {timeouts.get('pool')} s"
        raise FetchError("timeout", detail) from exc
    except httpcore.ConnectError as exc:
        # httpcore's pool re-raises `from None`, so the SSL error is left only as the context.
        origin = exc.__cause__ or exc.__context__
        if isinstance(origin, ssl.SSLError):
            raise FetchError("tls", f"TLS failed: {origin}") from exc
        raise FetchError("connect", f"cannot connect: {exc or 'connection failed'}") from exc
    except (httpcore.ReadError, httpcore.WriteError) as exc:
        raise FetchError("connect", f"connection lost: {exc or 'reset by peer'}") from exc
    except httpcore.UnsupportedProtocol as exc:
        raise FetchError("bad_url", str(exc)) from exc
    except httpcore.ProtocolError as exc:
        raise FetchError("protocol", f"broken HTTP: {exc}") from exc


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the guard resolved and accepted."""

    def __init__(self, guard: Guard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.guard = guard
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.guard.resolve(host, port)
        except TimeoutError:
            raise FetchError(
                "timeout", f"DNS timeout: {host} did not resolve within {timeout} s"
            ) from None
        failure: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolve() returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise FetchError("bad_url", "Unix sockets are not fetch targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _ResponseStream(httpx.AsyncByteStream):
    """The body of a response, its read errors mapped like the request's."""

    def __init__(self, stream: Any, timeouts: Mapping[str, float | None]) -> None:
        self._stream = stream
        self._timeouts = timeouts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with map_transport_errors(self._timeouts):
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        with map_transport_errors(self._timeouts):
            await self._stream.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive connection pool on a `GuardedBackend`, its connections made from
    `local_address` when one is given (one of several source addresses)."""

    def __init__(
        self,
        guard: Guard,
        *,
        max_connections: int,
        max_keepalive: int,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        local_address: str | None = None,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive,
            keepalive_expiry=keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(guard),
            local_address=local_address,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: Mapping[str, float | None] = request.extensions.get("timeout", {})
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with map_transport_errors(timeouts):
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream, timeouts),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
