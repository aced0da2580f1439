"""Lease keeper pass over a large fleet: our async pass vs the floor and vs a naive SDK loop.

The emulator runs in a child process (so it does not share this process's GIL) and serves on
127.0.0.1 over real HTTP, with 50 ms latency on every call (ModelArts API and Jupyter) and a
50 requests/s token bucket on the ModelArts API. Its clock is stepped (frozen), so every phase
sees the same moment.

1. Our pass: `run_pass` with `AsyncModelArtsClient` (client-side rate limit 50 req/s, concurrent
   pages) and `JupyterProber` over `probe_transport` (100 probes in flight, keep-alive
   connections), over every RUNNING notebook, acting for real (renew, stop; warnings to an
   in-memory store, notifier without latency). The CPU time of this process and of the
   emulator's process during the pass is reported next to the wall time (both share 2 cores).
2. A fresh, identical fleet (same seed) in a new child process; a naive sequential loop with the
   official huaweicloudsdkmodelarts SDK makes the same decisions (same `decide`, same state) for
   a bounded sample of notebooks: SDK list pages, two Jupyter GETs per notebook, SDK renew/stop.
   Its time per notebook is extrapolated to the whole fleet.

Floor: the ModelArts calls our pass made, at 50 req/s, plus one 50 ms latency.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from nbkeeper.jupyter import JupyterProber, probe_transport
from nbkeeper.keeper.activity import ActivityResult
from nbkeeper.keeper.decide import Action, decide
from nbkeeper.keeper.passes import KeeperClient, run_pass
from nbkeeper.keeper.policy import load_policy_text
from nbkeeper.keeper.report import Delivered, PassReport, WarningNotice
from nbkeeper.memory import MemoryStateStore
from nbkeeper.modelarts.auth import Credentials, SignerAuth
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.schemas import Notebook
from nbkeeper.records import PendingWarning, ProjectRef

TITLE = "Lease keeper: one pass over a large fleet (emulator over loopback HTTP)"
SIZE = int(os.environ.get("BENCH_KEEPER_SIZE", "10000"))
NAIVE_SAMPLE = int(os.environ.get("BENCH_KEEPER_NAIVE_SAMPLE", "150"))
LATENCY_MS = 50.0
RATE = 50.0
SEED = 7
WARNED_EVERY = 10  # every 10th notebook has a due warning from an earlier pass
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, working hours
PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
POLICY = load_policy_text("default_price_per_hour: 1.0")


def _serve(size: int, queue: Any, stop: Any) -> None:
    """Child process: seed the fleet, serve it on 127.0.0.1, report (url, ids), wait for stop."""
    from nbkeeper.modelarts.schemas import NotebookStatus
    from nbkeeper_local.emulator import Emulator, EmulatorConfig, FleetSpec, SimClock
    from nbkeeper_local.emulator.server import serve_in_thread

    config = EmulatorConfig(latency_ms=LATENCY_MS, rate_limit=RATE, seed=SEED)
    emulator = Emulator(config, clock=SimClock.stepped(START))
    records = emulator.seed_fleet(
        FleetSpec(size=size, status_weights={NotebookStatus.RUNNING: 1.0}, seed=SEED)
    )
    with serve_in_thread(emulator) as url:
        queue.put((url, [r.id for r in records]))
        stop.wait()


class _Child:
    def __init__(self, size: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._queue = ctx.Queue()
        self._stop = ctx.Event()
        self._process = ctx.Process(target=_serve, args=(size, self._queue, self._stop))

    def cpu_seconds(self) -> float:
        """User + system CPU time of the emulator's process so far (from /proc/<pid>/stat)."""
        return _cpu_seconds(self._process.pid)

    def __enter__(self) -> tuple[str, list[str]]:
        self._process.start()
        url, ids = self._queue.get(timeout=600)
        return str(url), list(ids)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()


def _cpu_seconds(pid: int | None) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _stats(url: str) -> dict[str, int]:
    data = httpx.get(f"{url}/_emulator/state", timeout=30).json()
    stats: dict[str, int] = data.get("stats", {})
    return stats


def _api_calls(stats: dict[str, int]) -> int:
    return stats.get("api.total", 0)


def _store(ids: list[str]) -> MemoryStateStore:
    store = MemoryStateStore()
    for notebook_id in ids[::WARNED_EVERY]:
        store.put_warning(
            PendingWarning(
                project_id=PROJECT_ID,
                notebook_id=notebook_id,
                kind="idle",
                warned_at=START - timedelta(minutes=20),
                stop_after=START - timedelta(minutes=5),
            )
        )
    return store


def _auth() -> SignerAuth:
    from nbkeeper_local.emulator import DEMO_ACCESS_KEY, DEMO_SECRET_KEY

    return SignerAuth(Credentials(DEMO_ACCESS_KEY, DEMO_SECRET_KEY), PROJECT_ID)


class _Told:
    """Every warning reaches its owner at once (the pass, not Slack, is measured)."""

    async def warn(self, notice: WarningNotice) -> Delivered:
        return Delivered(channel=notice.owner or "C0BENCH")

    async def summary(self, report: PassReport) -> None:
        return None


async def _our_pass(url: str, store: MemoryStateStore) -> tuple[PassReport, float, float]:
    """The pass; returns (report, wall seconds, CPU seconds of this process)."""
    client = AsyncModelArtsClient(
        url, PROJECT_ID, _auth(), rate_limit=RATE, max_concurrency=10, page_concurrency=4
    )

    def client_for(project: ProjectRef) -> KeeperClient:
        return client

    project = ProjectRef(region="cn-north-4", project_id=PROJECT_ID)
    async with (
        client,
        probe_transport(POLICY.probe_concurrency) as http,
    ):
        prober = JupyterProber(http, concurrency=POLICY.probe_concurrency, timeout=30)
        started, cpu = time.perf_counter(), time.process_time()
        report = await run_pass([project], client_for, prober, store, _Told(), POLICY, START)
        return report, time.perf_counter() - started, time.process_time() - cpu


@dataclass
class Naive:
    seconds: float
    notebooks: int
    api_calls: int
    decisions: dict[str, Action]


def _naive(url: str, store: MemoryStateStore, sample: int) -> Naive:
    """The obvious loop with the official SDK: one thing at a time."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.http.http_config import HttpConfig
    from huaweicloudsdkmodelarts.v1 import (
        LeaseReq,
        ListAllNotebooksRequest,
        ModelArtsClient,
        RenewLeaseRequest,
        StopNotebookRequest,
    )

    from nbkeeper.keeper.activity import activity_from_replies, lease_fallback
    from nbkeeper_local.emulator import DEMO_ACCESS_KEY, DEMO_SECRET_KEY

    config = HttpConfig.get_default_config()
    config.timeout = (10, 30)
    sdk = (
        ModelArtsClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(DEMO_ACCESS_KEY, DEMO_SECRET_KEY, PROJECT_ID))
        .with_endpoints([url])
        .build()
    )
    state = store.load_project(PROJECT_ID, START)
    decisions: dict[str, Action] = {}
    calls = 0
    started = time.perf_counter()
    with httpx.Client(timeout=30) as http:
        offset = 0
        while len(decisions) < sample:
            page = sdk.list_all_notebooks(
                ListAllNotebooksRequest(status="RUNNING", limit=50, offset=offset)
            )
            calls += 1
            if not page.data:
                break
            offset += len(page.data)
            for item in page.data:
                if len(decisions) >= sample:
                    break
                notebook = Notebook.model_validate(item.to_dict())
                base = notebook.server_base
                token = notebook.token.get_secret_value() if notebook.token else ""
                headers = {"Authorization": f"token {token}"}
                status = http.get(f"{base}/api/status", headers=headers)
                kernels = http.get(
                    f"{base}/api/kernels", headers=headers, params={"no_track_activity": "1"}
                )
                activity: ActivityResult
                if status.status_code == 200 and kernels.status_code == 200:
                    activity = activity_from_replies(status.json(), kernels.json())
                else:
                    activity = lease_fallback(notebook, f"HTTP {status.status_code}")
                decision = decide(
                    notebook,
                    activity,
                    state.reservations.get(notebook.id),
                    state.warnings.get(notebook.id),
                    POLICY,
                    START,
                )
                if decision.action is Action.PROLONG:
                    sdk.renew_lease(
                        RenewLeaseRequest(
                            id=notebook.id,
                            body=LeaseReq(duration=decision.extend_ms, type="TIMING"),
                        )
                    )
                    calls += 1
                elif decision.action is Action.STOP:
                    sdk.stop_notebook(StopNotebookRequest(id=notebook.id))
                    calls += 1
                decisions[notebook.id] = decision.action
    return Naive(time.perf_counter() - started, len(decisions), calls, decisions)


def run() -> str:
    child = _Child(SIZE)
    with child as (url, ids):
        before = _stats(url)
        emulator_cpu = child.cpu_seconds()
        report, seconds, our_cpu = asyncio.run(_our_pass(url, _store(ids)))
        emulator_cpu = child.cpu_seconds() - emulator_cpu
        after = _stats(url)
    api_calls = _api_calls(after) - _api_calls(before)
    throttled = after.get("status.429", 0) - before.get("status.429", 0)
    jupyter = after.get("jupyter.requests", 0) - before.get("jupyter.requests", 0)
    notebooks = len(report.outcomes)
    floor = api_calls / RATE + LATENCY_MS / 1000
    counts = report.counts
    ours = {o.notebook_id: o.action for o in report.outcomes}

    with _Child(SIZE) as (url, ids):
        before = _stats(url)
        naive = _naive(url, _store(ids), NAIVE_SAMPLE)
        after = _stats(url)
    naive_throttled = after.get("status.429", 0) - before.get("status.429", 0)
    per_notebook = naive.seconds / max(1, naive.notebooks)
    naive_total = per_notebook * notebooks
    agree = sum(1 for i, a in naive.decisions.items() if ours.get(i) is a)

    lines = [
        f"Fleet: {SIZE:,} notebooks, all RUNNING (seed {SEED}); every {WARNED_EVERY}th has a due "
        f"idle warning. Emulator in a child process on 127.0.0.1: {LATENCY_MS:g} ms latency on "
        f"every call, ModelArts API limited to {RATE:g} requests/s.",
        "",
        "| | value |",
        "|---|---|",
        f"| notebooks in the pass | {notebooks:,} |",
        f"| decisions | {counts['prolong']} prolong, {counts['warn']} warn, "
        f"{counts['stop']} stop, {counts['noop']} noop; {len(report.failures)} failed |",
        f"| wall time, our pass | **{seconds:.1f} s** |",
        f"| ModelArts calls (list pages + renew + stop) | {api_calls} "
        f"({api_calls / max(1, notebooks):.3f} per notebook) |",
        f"| Jupyter calls | {jupyter:,} ({jupyter / max(1, notebooks):.2f} per notebook) |",
        f"| floor: ModelArts calls / {RATE:g} req/s + {LATENCY_MS:g} ms | {floor:.1f} s |",
        f"| our pass / floor (goal <= 1.5) | **{seconds / floor:.2f}x** |",
        f"| HTTP 429 seen by our pass (goal 0) | **{throttled}** |",
        f"| CPU during our pass: our process / emulator process | {our_cpu:.1f} s / "
        f"{emulator_cpu:.1f} s ({our_cpu / seconds:.0%} / {emulator_cpu / seconds:.0%} of "
        "one core) |",
        f"| naive SDK loop: measured on a sample | {naive.notebooks} notebooks in "
        f"{naive.seconds:.1f} s = {per_notebook * 1000:.0f} ms per notebook "
        f"({naive.api_calls} ModelArts calls, {naive_throttled} HTTP 429) |",
        f"| naive SDK loop: extrapolated to {notebooks:,} notebooks | {naive_total:,.0f} s |",
        f"| speed-up vs naive (goal >= 20x) | **{naive_total / seconds:.0f}x** |",
        f"| naive decisions equal to ours on the sample | {agree}/{naive.notebooks} |",
        "",
        "The naive loop is measured on a bounded sample (the first "
        f"{naive.notebooks} RUNNING notebooks of an identical, freshly seeded fleet, same state "
        "and `now`) and **extrapolated per notebook** to the full fleet; it was not run over all "
        f"{notebooks:,}. It lists pages with the official SDK, reads each notebook's Jupyter "
        "status and kernels one after the other, decides with the same `decide`, and renews or "
        "stops through the SDK.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
