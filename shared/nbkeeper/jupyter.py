"""Asking Jupyter Servers about activity over HTTP: the prober and its lean transport.

What the replies mean is `nbkeeper.keeper.activity`; this module only fetches them, bounded in
concurrency, with the notebook's token in the `Authorization` header and never in a result, a log
line or an error text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import httpcore
import httpx

from nbkeeper.keeper.activity import (
    ActivityResult,
    ProbeError,
    activity_from_replies,
    lease_fallback,
    needs_kernels,
    parse_jupyter_time,
)
from nbkeeper.modelarts.schemas import Notebook

logger = logging.getLogger(__name__)

USER_AGENT = "nbkeeper-lease-keeper"


# httpcore's errors as httpx's, most specific first (what httpx's own transport raises).
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProxyError, httpx.ProxyError),
)
# A reused keep-alive connection the server closed meanwhile fails like this before any reply.
_STALE = (httpcore.RemoteProtocolError, httpcore.ReadError, httpcore.WriteError)


def _as_httpx(exc: Exception, request: httpx.Request) -> httpx.TransportError | None:
    for source, target in _ERRORS:
        if isinstance(exc, source):
            return target(str(exc), request=request)
    return None


class ProbeTransport(httpx.AsyncBaseTransport):
    """A lean keep-alive HTTP/1.1 transport for the prober's many small GETs.

    httpx's default pool (httpcore's `AsyncConnectionPool`) rescans every connection on every
    request, polling each idle socket; with `max_keepalive_connections` below `max_connections`
    it also closes nearly every connection after one request (httpcore 1.0 counts all
    connections, not only idle ones, against the keep-alive limit). In the keeper benchmark
    that cost 1.3 ms of CPU per probe with 20 kept alive and 11 ms with 100. Here each origin
    keeps a stack of idle `httpcore.AsyncHTTPConnection`s: taking and returning one is O(1).

    At most `limits.max_connections` requests are in flight and connections open; at most
    `limits.max_keepalive_connections` stay idle, each for `limits.keepalive_expiry` seconds.
    Replies are read whole before the connection is returned (probe replies are small). A GET
    that fails on a reused connection before any reply (the server closed it while idle) is
    sent once more on a new connection. Proxies from the environment are not used (as with
    any httpx client given a transport).
    """

    def __init__(
        self,
        limits: httpx.Limits | None = None,
        *,
        verify: ssl.SSLContext | bool = True,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        limits = limits or httpx.Limits()
        self._max = limits.max_connections
        self._keep = limits.max_keepalive_connections
        self._expiry = limits.keepalive_expiry
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None
        self._backend = network_backend
        self._slots = asyncio.Semaphore(self._max) if self._max else None
        # Idle connections by origin (scheme, host, port): httpcore.Origin is not hashable.
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTPConnection]] = {}
        self._idle_count = 0
        self._busy = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(
                f"unsupported URL scheme {url.scheme!r}", request=request
            )
        port = url.port or (443 if scheme == b"https" else 80)
        origin = httpcore.Origin(scheme, url.raw_host, port)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=scheme, host=url.raw_host, port=port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        await self._acquire(request)
        self._busy += 1
        try:
            reply, body = await self._send(origin, core, retry=request.method == "GET")
        except Exception as exc:
            mapped = _as_httpx(exc, request)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            self._busy -= 1
            if self._slots is not None:
                self._slots.release()
        response = httpx.Response(
            reply.status,
            headers=reply.headers,
            stream=httpx.ByteStream(body),
            extensions=reply.extensions,
            request=request,
        )
        response.read()  # already in memory: makes `.content` and `.json()` available
        return response

    async def _acquire(self, request: httpx.Request) -> None:
        if self._slots is None:
            return
        if not self._slots.locked():
            await self._slots.acquire()
            return
        timeout = request.extensions.get("timeout", {}).get("pool")
        try:
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no connection free in time", request=request) from None

    async def _send(
        self,
        origin: httpcore.Origin,
        request: httpcore.Request,
        *,
        retry: bool,
        fresh: bool = False,
    ) -> tuple[httpcore.Response, bytes]:
        connection, reused = await self._checkout(origin, fresh=fresh)
        try:
            reply = await connection.handle_async_request(request)
            try:
                body = await reply.aread()
            finally:
                await reply.aclose()
        except BaseException as exc:
            await connection.aclose()
            if retry and reused and isinstance(exc, _STALE):
                return await self._send(origin, request, retry=False, fresh=True)
            raise
        await self._checkin(origin, connection)
        return reply, body

    async def _checkout(
        self, origin: httpcore.Origin, *, fresh: bool = False
    ) -> tuple[httpcore.AsyncHTTPConnection, bool]:
        stack = None if fresh else self._idle.get((origin.scheme, origin.host, origin.port))
        while stack:
            connection = stack.pop()
            self._idle_count -= 1
            if connection.is_available() and not connection.has_expired():
                return connection, True
            await connection.aclose()
        if self._max is not None and self._idle_count and self._busy + self._idle_count > self._max:
            await self._evict()
        if origin.scheme == b"https" and self._ssl is None:
            self._ssl = httpx.create_ssl_context(verify=self._verify)
        connection = httpcore.AsyncHTTPConnection(
            origin,
            ssl_context=self._ssl if origin.scheme == b"https" else None,
            keepalive_expiry=self._expiry,
            network_backend=self._backend,
        )
        return connection, False

    async def _checkin(
        self, origin: httpcore.Origin, connection: httpcore.AsyncHTTPConnection
    ) -> None:
        keep = self._keep is None or self._idle_count < self._keep
        if keep and connection.is_idle():
            key = (origin.scheme, origin.host, origin.port)
            self._idle.setdefault(key, []).append(connection)
            self._idle_count += 1
        else:
            await connection.aclose()

    async def _evict(self) -> None:
        """Close the oldest idle connection of some origin, to open one for another."""
        for key, stack in self._idle.items():
            if stack:
                self._idle_count -= 1
                await stack.pop(0).aclose()
                if not stack:
                    del self._idle[key]
                return

    async def aclose(self) -> None:
        idle, self._idle, self._idle_count = self._idle, {}, 0
        for stack in idle.values():
            for connection in stack:
                await connection.aclose()


def probe_transport(concurrency: int, *, verify: ssl.SSLContext | bool = True) -> ProbeTransport:
    """The prober's transport: `concurrency` connections, all kept alive between probes."""
    return ProbeTransport(
        httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        verify=verify,
    )


class JupyterProber:
    """Probes Jupyter Servers, at most `concurrency` at once.

    `http` is an `httpx.AsyncClient` or, leaner, a transport (`probe_transport`), which the two
    fixed GETs are handed to directly: they use none of a client's layers (base URL, default
    headers, auth, cookies, redirects, event hooks). Either way each request carries its own
    headers and timeouts.

    `idle_after` (per call) is the moment from which activity counts as recent: when given,
    kernels are only listed for notebooks whose status looks idle, saving a call per active one.
    """

    def __init__(
        self,
        http: httpx.AsyncClient | httpx.AsyncBaseTransport,
        *,
        concurrency: int = 100,
        timeout: float = 5.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._send: Callable[[httpx.Request], Awaitable[httpx.Response]] = (
            http.send if isinstance(http, httpx.AsyncClient) else http.handle_async_request
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        self.calls = 0

    async def probe_many(
        self, notebooks: Iterable[Notebook], idle_after: datetime | None = None
    ) -> dict[str, ActivityResult]:
        """Probe every notebook concurrently (bounded); results by notebook id."""
        items = list(notebooks)
        results = await asyncio.gather(*(self.probe(nb, idle_after) for nb in items))
        return {nb.id: result for nb, result in zip(items, results, strict=True)}

    async def probe(self, notebook: Notebook, idle_after: datetime | None = None) -> ActivityResult:
        """One notebook's activity; never raises for transport or HTTP failures."""
        base = notebook.server_base
        token = notebook.token.get_secret_value() if notebook.token else None
        if not base or not token:
            return lease_fallback(notebook, "the notebook has no Jupyter URL or token")
        headers = {
            "Authorization": f"token {token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        async with self._slots:
            try:
                status = await self._get_json(f"{base}/api/status", headers)
                if not isinstance(status, Mapping):
                    raise ProbeError("/api/status did not return a JSON object")
                kernels = None
                if needs_kernels(status, idle_after):
                    # no_track_activity: listing kernels must not itself count as activity.
                    reply = await self._get_json(f"{base}/api/kernels?no_track_activity=1", headers)
                    if not isinstance(reply, list):
                        raise ProbeError("/api/kernels did not return a JSON array")
                    kernels = [k for k in reply if isinstance(k, Mapping)]
            except ProbeError as exc:
                return lease_fallback(notebook, f"Jupyter not readable: {exc}")
        activity = activity_from_replies(status, kernels)
        if not activity.busy_kernels and parse_jupyter_time(status.get("last_activity")) is None:
            # Jupyter always reports last_activity: a reply without it is not proof of idleness.
            return lease_fallback(
                notebook, "Jupyter not readable: /api/status has no valid last_activity"
            )
        return activity

    async def _get_json(self, url: str, headers: dict[str, str]) -> Any:
        self.calls += 1
        try:
            request = httpx.Request("GET", url, headers=headers, extensions=self._extensions)
        except httpx.InvalidURL:
            raise ProbeError("the notebook's Jupyter URL is not valid") from None
        try:
            response = await self._send(request)
            try:
                # A bare transport hands back an unread stream; a client (or ProbeTransport) a
                # read body, for which this is free. Closing returns the connection to the pool.
                await response.aread()
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise ProbeError(f"{request.url.path} timed out") from None
        except httpx.HTTPError as exc:
            raise ProbeError(f"{request.url.path} failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise ProbeError(f"{request.url.path} answered HTTP {response.status_code}")
        try:
            return json.loads(response.content)
        except ValueError:
            raise ProbeError(f"{request.url.path} did not return JSON") from None
