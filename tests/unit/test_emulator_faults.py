"""Fault injection, latency and the token-bucket rate limit. Fake sleep and monotonic time."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from nbkeeper_local.emulator import Emulator, EmulatorConfig, FaultKind, Scope, SimClock
from nbkeeper_local.emulator.faults import FaultInjector, TokenBucket
from tests.emulator_fixtures import (
    CREATE_BODY,
    EMULATOR_BASE_URL,
    EMULATOR_START,
    NOTEBOOKS,
    ApiCaller,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def emulator(emulator_config: EmulatorConfig, fake_time: FakeTime) -> Emulator:
    return Emulator(
        emulator_config,
        clock=SimClock.stepped(EMULATOR_START),
        monotonic=fake_time.monotonic,
        sleep=fake_time.sleep,
    )


def test_scripted_throttle_is_429_with_retry_after_and_apig_0308(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    emulator.inject(FaultKind.THROTTLE)
    response = emulator_api("GET", NOTEBOOKS)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json()["error_code"] == "APIG.0308"
    assert emulator_api("GET", NOTEBOOKS).status_code == 200  # only the next one


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [(FaultKind.ERROR_500, 500, "ModelArts.0010"), (FaultKind.ERROR_503, 503, "APIG.0203")],
)
def test_scripted_server_errors(
    emulator_api: ApiCaller, emulator: Emulator, kind: FaultKind, status: int, code: str
) -> None:
    emulator.inject(kind, count=2)
    replies = [emulator_api("GET", NOTEBOOKS) for _ in range(3)]
    assert [r.status_code for r in replies] == [status, status, 200]
    assert replies[0].json()["error_code"] == code
    assert replies[0].headers["X-Request-Id"]


def test_scripted_fault_only_hits_matching_requests(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    emulator.inject(FaultKind.ERROR_503, method="PATCH", path=r"/lease$")
    assert emulator_api("GET", NOTEBOOKS).status_code == 200
    response = emulator_api("PATCH", f"{NOTEBOOKS}/x/lease", json={"duration": 3_600_000})
    assert response.status_code == 503


def test_dropped_connection_in_process_is_a_remote_protocol_error(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    emulator.inject(FaultKind.DROP)
    with pytest.raises(httpx.RemoteProtocolError):
        emulator_api("GET", NOTEBOOKS)
    assert emulator_api("GET", NOTEBOOKS).status_code == 200


def test_lost_reply_in_process_happens_then_is_a_remote_protocol_error(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    emulator.inject(FaultKind.REPLY_LOST, method="POST", path=rf"{NOTEBOOKS}$")
    with pytest.raises(httpx.RemoteProtocolError):
        emulator_api("POST", NOTEBOOKS, json=CREATE_BODY)
    (made,) = emulator_api("GET", NOTEBOOKS).json()["data"]  # the create happened
    assert made["name"] == CREATE_BODY["name"]
    assert emulator.stats["fault.reply_lost"] == 1


def test_slow_reply_waits_then_answers(
    emulator_api: ApiCaller, emulator: Emulator, fake_time: FakeTime
) -> None:
    emulator.faults.slow_s = 7.5
    emulator.inject(FaultKind.SLOW)
    assert emulator_api("GET", NOTEBOOKS).status_code == 200
    assert fake_time.slept == [7.5]


def test_latency_applies_to_api_and_jupyter_separately(
    emulator_api: ApiCaller, emulator: Emulator, fake_time: FakeTime
) -> None:
    emulator.set_latency(50, jupyter_ms=5)
    emulator_api("GET", NOTEBOOKS)
    emulator_api("GET", "/jupyter/p/n/api/status", auth=None)
    assert fake_time.slept == [0.05, 0.005]


def test_fault_rate_is_reproducible_for_a_seed() -> None:
    def run(seed: int) -> list[FaultKind | None]:
        injector = FaultInjector(seed=seed)
        injector.set_rate(0.3)
        return [injector.decide("GET", "/v1/p/notebooks", Scope.API) for _ in range(200)]

    first, again = run(7), run(7)
    assert first == again
    assert 30 <= sum(kind is not None for kind in first) <= 90
    assert run(8) != first


def test_fault_rate_spares_jupyter_probes() -> None:
    injector = FaultInjector(seed=1)
    injector.set_rate(1.0)
    assert injector.decide("GET", "/jupyter/p/n/api/status", Scope.JUPYTER) is None


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(fault_rate=1.0)])
def test_configured_fault_rate_fails_api_calls(emulator_api: ApiCaller) -> None:
    assert emulator_api("GET", NOTEBOOKS).status_code in (429, 500, 503)


def test_rate_limit_allows_a_burst_then_429s_then_refills(
    emulator_api: ApiCaller, emulator: Emulator, fake_time: FakeTime
) -> None:
    emulator.set_rate_limit(2, burst=2)
    codes = [emulator_api("GET", NOTEBOOKS).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    throttled = emulator_api("GET", NOTEBOOKS)
    assert throttled.json()["error_code"] == "APIG.0308"
    assert "limit:2" in throttled.json()["error_msg"]
    assert int(throttled.headers["Retry-After"]) >= 1
    fake_time.now += 0.5  # one token at 2/s
    assert emulator_api("GET", NOTEBOOKS).status_code == 200
    assert emulator_api("GET", NOTEBOOKS).status_code == 429


def test_rate_limit_does_not_count_unauthenticated_requests(
    emulator_api: ApiCaller, emulator: Emulator
) -> None:
    emulator.set_rate_limit(1, burst=1)
    assert emulator_api("GET", NOTEBOOKS, auth=None).status_code == 401
    assert emulator_api("GET", NOTEBOOKS).status_code == 200


def test_token_bucket_wait_hint() -> None:
    now = [0.0]
    bucket = TokenBucket(4, burst=1, monotonic=lambda: now[0])
    assert bucket.take() is None
    wait = bucket.take()
    assert wait == pytest.approx(0.25)
    assert bucket.rejected == 1


def test_control_route_scripts_faults(emulator: Emulator) -> None:
    async def go() -> list[Any]:
        async with httpx.AsyncClient(
            transport=emulator.asgi_transport(), base_url=EMULATOR_BASE_URL
        ) as client:
            await client.post(
                "/_emulator/faults", json={"script": [{"kind": "throttle", "count": 1}]}
            )
            reply = await client.get(NOTEBOOKS)
            state = (await client.get("/_emulator/state")).json()
            return [reply.status_code, state["faults_injected"]]

    assert asyncio.run(go()) == [429, {"throttle": 1}]
