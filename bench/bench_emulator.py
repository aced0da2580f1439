"""Emulator at 10,000 notebooks: in-process list (page of 50) and show latencies.

The last row lists with loose replies on (docs/emulator.md): what tolerance costs the emulator.

Signed requests through httpx.ASGITransport, so each figure includes signing, signature
verification, routing, validation, serialization and the httpx client round trip.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time

import httpx

from nbkeeper.modelarts.auth import Credentials, SignerAuth
from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper_local.emulator import (
    DEMO_ACCESS_KEY,
    DEMO_PROJECT_ID,
    DEMO_SECRET_KEY,
    Emulator,
    FleetSpec,
    SimClock,
)

TITLE = "ModelArts emulator: list and show at 10,000 notebooks (in-process)"
FLEET = 10_000
CALLS = 300
WARMUP = 20
BASE = f"/v1/{DEMO_PROJECT_ID}/notebooks"
LOOSE_RATE = 0.05
LOOSE_CASE = f"list /notebooks/all, limit 50, random offset, loose replies at {LOOSE_RATE:.0%}"


def _summary(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000, statistics.mean(ordered) * 1000


async def _measure() -> list[tuple[str, list[float]]]:
    emulator = Emulator(clock=SimClock.stepped())
    started = time.perf_counter()
    records = emulator.seed_fleet(FleetSpec(size=FLEET, seed=1))
    seed_s = time.perf_counter() - started
    running = sum(r.status is NotebookStatus.RUNNING for r in records)
    rng = random.Random(2)
    auth = SignerAuth(Credentials(DEMO_ACCESS_KEY, DEMO_SECRET_KEY), DEMO_PROJECT_ID)
    results: list[tuple[str, list[float]]] = []
    async with httpx.AsyncClient(
        transport=emulator.asgi_transport(), base_url="http://emulator", auth=auth
    ) as client:
        cases = [
            (
                "list /notebooks/all, limit 50, random offset",
                lambda: client.get(
                    f"{BASE}/all", params={"limit": 50, "offset": rng.randrange(0, FLEET, 50)}
                ),
            ),
            (
                "list /notebooks/all?status=RUNNING, limit 50",
                lambda: client.get(
                    f"{BASE}/all",
                    params={
                        "limit": 50,
                        "status": "RUNNING",
                        "offset": rng.randrange(0, running, 50),
                    },
                ),
            ),
            (
                "list /notebooks/all?tags=team\\|nlp, limit 50 (filter cached)",
                lambda: client.get(f"{BASE}/all", params={"limit": 50, "tags": "team|nlp"}),
            ),
            (
                "show /notebooks/{id}, random id",
                lambda: client.get(f"{BASE}/{rng.choice(records).id}"),
            ),
            (
                LOOSE_CASE,
                lambda: client.get(
                    f"{BASE}/all", params={"limit": 50, "offset": rng.randrange(0, FLEET, 50)}
                ),
            ),
        ]
        for name, call in cases:
            emulator.set_loose_rate(LOOSE_RATE if name == LOOSE_CASE else 0.0)
            for _ in range(WARMUP):
                (await call()).raise_for_status()
            samples = []
            for _ in range(CALLS):
                t0 = time.perf_counter()
                response = await call()
                samples.append(time.perf_counter() - t0)
                response.raise_for_status()
            results.append((name, samples))
    results.insert(0, (f"seed {FLEET} notebooks ({running} RUNNING)", [seed_s]))
    return results


def run() -> str:
    results = asyncio.run(_measure())
    (seed_name, [seed_s]), rest = results[0], results[1:]
    lines = [
        f"Fleet: {seed_name}, seeded in {seed_s:.2f} s. Each row: {CALLS} signed calls after "
        f"{WARMUP} warm-up calls, one at a time, through `httpx.ASGITransport` "
        "(signing + signature check + validation + JSON included).",
        "",
        "| call | median ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|",
    ]
    for name, samples in rest:
        median, p99, mean = _summary(samples)
        lines.append(f"| {name} | {median:.2f} | {p99:.2f} | {mean:.2f} |")
    return "\n".join(lines)
