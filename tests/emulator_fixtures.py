"""Pytest fixtures for the ModelArts emulator (registered in tests/conftest.py).

- `emulator`: an `Emulator` on a stepped clock starting at `EMULATOR_START` (Monday 09:00 UTC);
  move time with `emulator.advance(seconds)`. Override `emulator_config` to change settings.
- `emulator_transport`: `httpx` transport into it, in-process (DROP faults -> RemoteProtocolError).
- `emulator_http`: the same emulator served over real HTTP on 127.0.0.1; yields the base URL.
- `emulator_auth`: SDK-HMAC-SHA256 auth with the demo credentials and project.
- `emulator_api`: synchronous signed request in-process: `emulator_api("GET", NOTEBOOKS)` ->
  `httpx.Response` (pass `auth=None` for unsigned, e.g. Jupyter probes).
- `emulator_client`: factory for `AsyncModelArtsClient` against `emulator_transport`
  (call it inside the coroutine that uses the client; keyword arguments pass through).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from nbkeeper.modelarts.auth import Credentials, SignerAuth
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper_local.emulator import (
    DEMO_ACCESS_KEY,
    DEMO_PROJECT_ID,
    DEMO_SECRET_KEY,
    Emulator,
    EmulatorConfig,
    SimClock,
)
from nbkeeper_local.emulator.server import serve_in_thread

EMULATOR_START = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
EMULATOR_BASE_URL = "http://modelarts.emulator"
PROJECT_ID = DEMO_PROJECT_ID
NOTEBOOKS = f"/v1/{PROJECT_ID}/notebooks"
ACCESS_KEY = DEMO_ACCESS_KEY
SECRET_KEY = DEMO_SECRET_KEY
IMAGE_ID = "e1a07296-22a8-4f05-8bc8-e936c8e54090"
CREATE_BODY: dict[str, Any] = {
    "name": "nb-test",
    "image_id": IMAGE_ID,
    "flavor": "modelarts.vm.cpu.2u",
    "volume": {"category": "EVS", "ownership": "MANAGED", "capacity": 5},
}

ClientFactory = Callable[..., AsyncModelArtsClient]
ApiCaller = Callable[..., httpx.Response]
_DEFAULT_AUTH = object()


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig()


@pytest.fixture
def emulator_clock() -> SimClock:
    return SimClock.stepped(EMULATOR_START)


@pytest.fixture
def emulator(emulator_config: EmulatorConfig, emulator_clock: SimClock) -> Emulator:
    return Emulator(emulator_config, clock=emulator_clock)


@pytest.fixture
def emulator_transport(emulator: Emulator) -> httpx.AsyncBaseTransport:
    return emulator.asgi_transport()


@pytest.fixture
def emulator_auth() -> httpx.Auth:
    return SignerAuth(Credentials(ACCESS_KEY, SECRET_KEY), PROJECT_ID)


@pytest.fixture
def emulator_http(emulator: Emulator) -> Iterator[str]:
    with serve_in_thread(emulator) as base_url:
        yield base_url


@pytest.fixture
def emulator_client(
    emulator_transport: httpx.AsyncBaseTransport, emulator_auth: httpx.Auth
) -> ClientFactory:
    def make(**kwargs: Any) -> AsyncModelArtsClient:
        return AsyncModelArtsClient(
            EMULATOR_BASE_URL, PROJECT_ID, emulator_auth, transport=emulator_transport, **kwargs
        )

    return make


@pytest.fixture
def emulator_api(
    emulator_transport: httpx.AsyncBaseTransport, emulator_auth: httpx.Auth
) -> ApiCaller:
    def call(method: str, path: str, *, auth: Any = _DEFAULT_AUTH, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=emulator_transport,
                base_url=EMULATOR_BASE_URL,
                auth=emulator_auth if auth is _DEFAULT_AUTH else auth,
            ) as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(go())

    return call


async def no_sleep(seconds: float) -> None:
    """The client's `sleep` in tests: retries and backoff happen without waiting."""
    return None
