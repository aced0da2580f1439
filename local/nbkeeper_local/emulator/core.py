"""`Emulator`: the emulated service (engine.py) with its ASGI app (app.py)."""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp

from .app import create_app
from .engine import EmulatorEngine
from .faults import ConnectionDroppedError


class Emulator(EmulatorEngine):
    """A local ModelArts notebook service with simulated time, faults and Jupyter activity.

    `clock` defaults to real time; tests pass `SimClock.stepped(start)` and call `advance`.
    `realtime` (signature date check), `monotonic` (rate limit) and `sleep` (latency, slow
    replies) are injectable so unit tests never wait.
    """

    _app: ASGIApp | None = None

    @property
    def app(self) -> ASGIApp:
        if self._app is None:
            self._app = create_app(self)
        return self._app

    def asgi_transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport to the emulator in-process; DROP faults become RemoteProtocolError."""
        return _DroppingASGITransport(self.app)


class _DroppingASGITransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except ConnectionDroppedError:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
