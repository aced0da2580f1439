"""Keeper chaos: the ground truth the lease keeper is judged against, and the faults it meets.

- `ProbeChaos` stands between the keeper and the notebooks' Jupyter Servers: it fails probes at a
  rate, records what each notebook's truth was when the keeper probed it, runs the mid-pass events
  (a Keep click, a console stop or restart) and can kill the pass half way.
- `Oracle` judges every stop call the keeper makes, at the moment it makes it, and every lease the
  emulator lets run out, from the emulator's and the state table's truth (never the keeper's view).
- `ChaosSlack` is Slack for the keeper: it fails some posts and records when warnings arrived.
- `state_faults` makes the keeper's DynamoDB calls fail (at a rate, and during an outage).
"""

from __future__ import annotations

import json
import random
import re
import threading
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from nbkeeper.keeper.policy import Policy
from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper.records import ProjectState
from nbkeeper.slack.buttons import KEEP_ACTION, STOP_ACTION
from nbkeeper_local.emulator import ActivityPattern, Emulator
from nbkeeper_local.emulator.clock import from_ms
from nbkeeper_local.emulator.records import NotebookRecord
from tests.reliability.faults import Killed

_JUPYTER = re.compile(r"^/jupyter/[^/]+/([0-9a-f-]{36})/")
S = NotebookStatus


class Draws:
    """Fault decisions drawn from what a call is, not from when it comes: the keeper's notebook
    tasks interleave with worker threads (Slack posts) in no fixed order, so a shared random
    sequence would hand the same seed's faults to different calls from run to run. A repeated
    call (a retry) draws again: its count is part of what it is."""

    def __init__(self, seed: str) -> None:
        self.seed = seed
        self.seen: Counter[str] = Counter()
        self.time: object = None

    def __call__(self, now: object, *parts: object) -> float:
        if now != self.time:  # calls of an earlier moment never come again
            self.seen.clear()
            self.time = now
        key = ":".join(str(p) for p in (now, *parts))
        self.seen[key] += 1
        return random.Random(f"{self.seed}:{key}:{self.seen[key]}").random()


@dataclass(frozen=True)
class Truth:
    """What a notebook really was at a moment (emulator and state table)."""

    status: NotebookStatus
    active: bool
    unreadable: bool
    reserved: bool
    opted_out: bool
    started_ms: int


def truth(
    emulator: Emulator, record: NotebookRecord, state: ProjectState, policy: Policy, at_ms: int
) -> Truth:
    jupyter = record.jupyter
    moment = from_ms(at_ms)
    pattern = jupyter.pattern
    active = pattern in (ActivityPattern.ACTIVE, ActivityPattern.BUSY) or (
        pattern is ActivityPattern.IDLE
        and moment - from_ms(jupyter.effective_last_activity(at_ms))
        < policy.idle_threshold_at(moment)
    )
    reservation = state.reservations.get(record.id)
    tag = record.tags.get(policy.opt_out_tag.key)
    return Truth(
        status=record.status,
        active=active,
        unreadable=pattern is ActivityPattern.UNREACHABLE,
        reserved=reservation is not None and reservation.until > moment + timedelta(seconds=60),
        opted_out=policy.opt_out_tag.matches(tag),
        started_ms=jupyter.started_ms,
    )


@dataclass
class Delivered:
    notebook_id: str
    at_ms: int
    channel: str
    message: dict[str, Any]


@dataclass
class ChaosSlack:
    """The keeper's Slack: fails `failure_rate` of posts; records warnings as they arrive.

    The keeper posts from worker threads (asyncio.to_thread), in no fixed order, so whether a
    post fails is drawn from what it is (its text and the time), not from the order of calls:
    a seed replays the same failures."""

    clock_ms: Callable[[], int]
    seed: str
    failure_rate: float = 0.0
    warnings: list[Delivered] = field(default_factory=list)
    failures: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)
    by_notebook: dict[str, list[int]] = field(default_factory=dict)  # indexes into warnings

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        self.posts.append(body)
        path = request.url.path
        draw = random.Random(f"{self.seed}:{self.clock_ms()}:{request.content!r}").random()
        if path.endswith("chat.postMessage") and draw < self.failure_rate:
            self.failures += 1
            return httpx.Response(200, json={"ok": False, "error": "internal_error"})
        if path.endswith("conversations.open"):
            return httpx.Response(200, json={"ok": True, "channel": {"id": "D" + body["users"]}})
        notebook = _warned_notebook(body)
        if notebook is not None:
            self.by_notebook.setdefault(notebook, []).append(len(self.warnings))
            self.warnings.append(Delivered(notebook, self.clock_ms(), body["channel"], body))
        # The message's ts from what it is: its place among concurrent posts is not fixed.
        ts = f"{self.clock_ms() // 1000}.{zlib.crc32(request.content):010d}"
        return httpx.Response(200, json={"ok": True, "ts": ts})

    def last_warning(self, notebook_id: str, before_ms: int) -> tuple[int, Delivered] | None:
        """The latest warning about `notebook_id` delivered by `before_ms`, with its index."""
        for index in reversed(self.by_notebook.get(notebook_id, [])):
            if self.warnings[index].at_ms <= before_ms:
                return index, self.warnings[index]
        return None


def _warned_notebook(body: dict[str, Any]) -> str | None:
    for block in body.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") in (KEEP_ACTION, STOP_ACTION):
                return str(json.loads(element["value"])["notebook_id"])
    return None


def state_faults(
    table: Any,
    draw: Draws,
    clock_ms: Callable[[], int],
    rate: Callable[[], float],
    outage: Callable[[], bool],
    counter: Counter[str],
) -> None:
    """The keeper's DynamoDB calls fail at `rate()`, and all of them while `outage()` holds."""
    from botocore.exceptions import ClientError

    def fail(event_name: str, params: Any = None, **kwargs: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        body = params.get("body") if isinstance(params, dict) else None  # the request, no more
        what = body if isinstance(body, bytes | str) else ""
        if operation == "BatchWriteItem":  # audit batches are filled in no fixed order: the
            what = ""  # n-th batch of a moment draws the same, whatever it holds
        if outage() or draw(clock_ms(), operation, what) < rate():
            counter[operation] += 1
            raise ClientError(
                {
                    "Error": {
                        "Code": "ProvisionedThroughputExceededException",
                        "Message": "injected by the reliability suite",
                    }
                },
                operation,
            )

    table.meta.client.meta.events.register("before-call.dynamodb.*", fail)


# ---------------------------------------------------------------- probes and mid-pass events


@dataclass
class Probe:
    notebook_id: str
    at_ms: int
    truth_active: bool
    failed: bool


MidPass = Callable[[str], None]  # notebook id -> an event happens (in another thread)


@dataclass
class ProbeChaos(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport
    emulator: Emulator
    policy: Policy
    clock_ms: Callable[[], int]
    draw: Draws
    failure_rate: float = 0.0
    probes: list[Probe] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    mid_pass: MidPass | None = None
    # Whether something is planned for this notebook mid-pass (only then is a thread started).
    planned: Callable[[str], bool] = lambda notebook_id: True
    kill_after: int = 0  # > 0: the pass is killed after this many more probes
    _probed: set[str] = field(default_factory=set)

    def new_pass(self) -> None:
        self._probed = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        match = _JUPYTER.match(request.url.path)
        notebook_id = match.group(1) if match else ""
        now = self.clock_ms()
        if notebook_id and notebook_id not in self._probed:
            self._probed.add(notebook_id)
            if self.mid_pass is not None and self.planned(notebook_id):
                run_elsewhere(self.mid_pass, notebook_id)
        if self.kill_after > 0:
            self.kill_after -= 1
            if self.kill_after == 0:
                raise Killed("keeper pass killed half way")
        fault = None
        roll = self.draw(now, request.url.path)
        if roll < self.failure_rate:
            fault = ("503", "drop", "timeout")[int(roll / self.failure_rate * 3) % 3]
            self.injected[fault] += 1
        active = self._active(notebook_id, now)
        unreachable = self._unreachable(notebook_id)
        self.probes.append(Probe(notebook_id, now, active, fault is not None or unreachable))
        if fault == "503":
            return httpx.Response(503, text="503: Service Unavailable", request=request)
        if fault == "drop":
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        if fault == "timeout":
            raise httpx.ReadTimeout("probe timed out", request=request)
        return await self.inner.handle_async_request(request)

    def _active(self, notebook_id: str, now: int) -> bool:
        try:
            record = self.emulator.find(notebook_id)
        except KeyError:
            return False
        empty = ProjectState()
        return truth(self.emulator, record, empty, self.policy, now).active

    def _unreachable(self, notebook_id: str) -> bool:
        try:
            return self.emulator.find(notebook_id).jupyter.pattern is ActivityPattern.UNREACHABLE
        except KeyError:
            return False


def api_faults(
    draw: Draws, clock_ms: Callable[[], int], rate: Callable[[], float], counter: Counter[str]
) -> Callable[[httpx.Request], httpx.Response | None]:
    """ModelArts answering 429 (throttled) or 503 before processing, at `rate()`."""

    def fault(request: httpx.Request) -> httpx.Response | None:
        roll = draw(clock_ms(), request.method, request.url.path, request.url.query)
        if roll >= rate():
            return None
        if roll < rate() / 2:
            counter["throttle"] += 1
            body = {
                "error_code": "APIG.0308",
                "error_msg": "The throttling threshold has been reached",
            }
            return httpx.Response(429, json=body, headers={"Retry-After": "1"}, request=request)
        counter["error_503"] += 1
        body = {"error_code": "APIG.0203", "error_msg": "Backend timeout or unavailable"}
        return httpx.Response(503, json=body, request=request)

    return fault


def run_elsewhere(action: MidPass, notebook_id: str) -> None:
    """Run a mid-pass event to completion in another thread (it drives handlers with their own
    event loops; the keeper's loop waits, as if the event happened between two of its steps)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            action(notebook_id)
        except BaseException as exc:  # reported in the keeper's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="mid-pass")
    thread.start()
    thread.join()
    if errors:
        raise RuntimeError(f"mid-pass event failed: {errors[0]!r}") from errors[0]


@dataclass
class Verdict:
    at: datetime
    notebook_id: str
    problems: list[str]


def judge_stop(
    truth_now: Truth,
    probe: Probe | None,
    warning: Delivered | None,
    at_ms: int,
    lead: timedelta,
    status_at_pass_start: NotebookStatus | None,
    changed_mid_pass: bool,
) -> list[str]:
    """Why a keeper stop call at `at_ms` is wrong (empty: it is right)."""
    problems = []
    if probe is not None and probe.truth_active:
        problems.append("active when probed")
    if probe is None or probe.failed:
        problems.append("activity unreadable in this pass")
    if truth_now.reserved:
        problems.append("reserved")
    if truth_now.opted_out:
        problems.append("opted out")
    if status_at_pass_start is not S.RUNNING and not changed_mid_pass:
        problems.append(f"{status_at_pass_start} at the pass start (transient)")
    if warning is None or warning.at_ms < truth_now.started_ms:
        problems.append("no warning delivered in this run of the notebook")
    elif timedelta(milliseconds=at_ms - warning.at_ms) < lead:
        ahead = (at_ms - warning.at_ms) / 60000
        problems.append(f"warned only {ahead:.1f} min before (lead {lead.total_seconds() / 60:g})")
    return problems
