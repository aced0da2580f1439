"""Live one notebook's month under a strategy, every 5 minutes, and count what it cost.

Each 5-minute tick, in this order:

1. the ModelArts lease (when the strategy keeps it on) stops the notebook once its deadline has
   come;
2. people act: someone who comes to a stopped notebook starts it (with the lease they habitually
   ask for), someone who leaves stops it by hand if they are tidy and nothing else needs it
   (no run, no demo hold); their work and chatty runs are Jupyter activity;
3. the strategy acts (`Controller.on_pass`): nbkeeper calls the real `decide()`;
4. the tick is billed when the notebook runs.

A stop by the lease or by the strategy is an **interruption** when, at that moment, a kernel was
busy (the run is lost: its busy hours so far count as lost), the user was working, a demo was
waiting for its slot, or the user comes back within `COME_BACK_MINUTES`. A stop by the owner
(by hand, or with the warning's Stop now button) never is. The oracle runs each notebook exactly
while it is needed: sessions, runs and holds, with gaps shorter than `COME_BACK_MINUTES` filled
(stopping in such a gap is an interruption by the definition above).
"""

from __future__ import annotations

import hashlib
import math
from array import array
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal, Protocol

from bench.savings_model import (
    HORIZON,
    MONTH_START,
    SEES_WARNING_AT_WORK,
    SEES_WARNING_OFF_WORK,
    TICK,
    Hold,
    Run,
    Trace,
    is_local_work_time,
)
from bench.savings_nbkeeper import (
    Action,
    Activity,
    Notebook,
    PendingWarning,
    Policy,
    Reservation,
    decide,
)

COME_BACK_MINUTES = 60  # a stop this close before the user comes back interrupts them
NOTICE_MINUTES = 30  # lease-only: people notice the lease countdown in its last 30 minutes...
NOTICE_CHANCE = 0.5  # ...with this chance per 5 minutes while they work
LEASE_CAP_HOURS = 72  # ModelArts: one lease (or renewal) runs 1 to 72 h from now
NEVER = 10 * HORIZON

StopCause = Literal["owner", "lease", "strategy"]
Interruption = Literal["busy kernel", "working", "demo hold", "came back"]


def draw(seed: int, *key: object) -> float:
    """A uniform number in [0, 1) fixed by `seed` and `key` (the same in every run and process)."""
    digest = hashlib.blake2b(repr((seed, *key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


_MOMENTS = [MONTH_START + timedelta(minutes=m) for m in range(0, HORIZON + TICK, TICK)]


def moment(minute: int) -> datetime:
    """The UTC datetime `minute` minutes into the month (grid points are built once)."""
    if minute % TICK == 0 and 0 <= minute <= HORIZON:
        return _MOMENTS[minute // TICK]
    return MONTH_START + timedelta(minutes=minute)


def minute_of(when: datetime) -> int:
    return int((when - MONTH_START).total_seconds() // 60)


def _merge(intervals: list[tuple[int, int]], fill: int) -> list[tuple[int, int]]:
    """Union of [start, end) intervals, joining those less than `fill` minutes apart."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start - merged[-1][1] < fill:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class Timeline:
    """A trace spread over the month's ticks (computed once, shared by every strategy)."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        ticks = HORIZON // TICK
        self.ticks = ticks
        self.present = bytearray(ticks)  # someone works in the notebook during this tick
        self.leaves_stopping = bytearray(ticks)  # a session ended here and its owner stops it
        self.run_at = array("i", [-1]) * ticks  # index of the run busy during this tick
        self.hold_at = array("i", [-1]) * ticks  # index of the hold covering this tick
        self.need = bytearray(ticks)  # the oracle's running time
        for s in trace.sessions:
            self.present[s.start // TICK : s.end // TICK] = b"\x01" * ((s.end - s.start) // TICK)
            if s.stop_after and s.end < HORIZON:
                self.leaves_stopping[s.end // TICK] = 1
        for index, run in enumerate(trace.runs):
            for i in range(run.start // TICK, run.end // TICK):
                self.run_at[i] = index
        for index, hold in enumerate(trace.holds):
            for i in range(hold.start // TICK, hold.end // TICK):
                self.hold_at[i] = index
        spans = [(s.start, s.end) for s in trace.sessions]
        spans += [(r.start, r.end) for r in trace.runs] + [(h.start, h.end) for h in trace.holds]
        for start, end in _merge(spans, COME_BACK_MINUTES):
            self.need[start // TICK : end // TICK] = b"\x01" * ((end - start) // TICK)
        self.session_starts = [s.start for s in trace.sessions]
        # What the owner knows, while working, the notebook must run to without them: the
        # expected end of a run going on (or started) in this session, or the end of the demo
        # whose hold follows it (`hold_ahead`, which they reserve under nbkeeper).
        self.unattended_until = array("i", [-1]) * ticks
        self.hold_ahead = array("i", [-1]) * ticks
        for s in trace.sessions:
            ahead = max([h.reserve_until for h in trace.holds if h.start == s.end] + [-1])
            until = max(
                [r.expected_end for r in trace.runs if r.start < s.end and r.end > s.start]
                + [ahead]
            )
            for i in range(s.start // TICK, s.end // TICK):
                self.hold_ahead[i] = ahead
                if until > s.end:
                    self.unattended_until[i] = until

    def next_session_start(self, minute: int) -> int:
        """The first session start at or after `minute` (NEVER when there is none)."""
        index = bisect_left(self.session_starts, minute)
        return self.session_starts[index] if index < len(self.session_starts) else NEVER

    @cached_property
    def next_present(self) -> array[int]:
        """For each tick, the next tick (itself included) someone works in the notebook."""
        nxt = array("i", [self.ticks]) * (self.ticks + 1)
        for i in range(self.ticks - 1, -1, -1):
            nxt[i] = i if self.present[i] else nxt[i + 1]
        return nxt

    @cached_property
    def next_need(self) -> array[int]:
        nxt = array("i", [self.ticks]) * (self.ticks + 1)
        for i in range(self.ticks - 1, -1, -1):
            nxt[i] = i if self.need[i] else nxt[i + 1]
        return nxt

    def hold(self, i: int) -> Hold | None:
        index = self.hold_at[i]
        return self.trace.holds[index] if index >= 0 else None


@dataclass
class Outcome:
    """What one notebook's month cost and whom it bothered, under one strategy."""

    run_minutes: int = 0
    interruptions: Counter[str] = field(default_factory=Counter)
    lost_busy_minutes: int = 0
    stops: Counter[str] = field(default_factory=Counter)
    warnings: int = 0
    keeps: int = 0
    stop_nows: int = 0
    prolongs: int = 0
    starts: int = 0


class Sim:
    """One notebook under one strategy: its state, and the actions strategies and people take."""

    def __init__(self, timeline: Timeline, strategy: Strategy, seed: int) -> None:
        self.tl = timeline
        self.trace = timeline.trace
        self.strategy = strategy
        self.seed = seed
        self.running = False
        self.started = 0
        self.deadline: int | None = None  # lease end (minutes), None: no auto-stop
        self.last_activity = 0
        self.killed: set[int] = set()  # runs lost to a stop
        self.out = Outcome()

    def live_run(self, i: int) -> Run | None:
        index = self.tl.run_at[i]
        if index < 0 or index in self.killed:
            return None
        return self.trace.runs[index]

    def start(self, t: int) -> None:
        self.running = True
        self.started = t
        self.last_activity = t  # the Jupyter Server's start is its first activity
        self.deadline = t + self.trace.lease_hours * 60 if self.strategy.lease else None
        self.out.starts += 1

    def stop(self, t: int, cause: StopCause) -> None:
        """Stop at `t`; a stop by the lease or the strategy is judged for interruption."""
        i = t // TICK
        self.running = False
        self.out.stops[cause] += 1
        run = self.live_run(i)
        if run is not None:
            self.killed.add(self.tl.run_at[i])
            self.out.lost_busy_minutes += t - run.start
        if cause == "owner":
            return
        why: Interruption | None = None
        if run is not None:
            why = "busy kernel"
        elif self.tl.present[i] and i > 0 and self.tl.present[i - 1]:
            why = "working"  # (someone arriving just now is "came back", below)
        elif self.tl.hold_at[i] >= 0:
            why = "demo hold"
        elif self.tl.next_session_start(t) - t < COME_BACK_MINUTES:
            why = "came back"
        if why is not None:
            self.out.interruptions[why] += 1

    def prolong_to(self, deadline: int) -> None:
        self.deadline = deadline
        self.out.prolongs += 1


class Controller(Protocol):
    def on_pass(self, sim: Sim, i: int, t: int) -> None: ...


class Strategy(Protocol):
    """A way to control notebooks: `lease` keeps ModelArts' auto-stop on; `people_act`: people
    start and stop notebooks themselves (everything but the oracle)."""

    @property
    def name(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def lease(self) -> bool: ...
    @property
    def people_act(self) -> bool: ...

    def controller(self, timeline: Timeline, seed: int) -> Controller: ...


def _people(sim: Sim, i: int, t: int) -> None:
    tl = sim.tl
    if tl.present[i] and not sim.running:
        sim.start(t)
    if (
        tl.leaves_stopping[i]
        and sim.running
        and sim.live_run(i) is None
        and tl.hold_at[i] < 0
        and not tl.present[i]
    ):
        sim.stop(t, "owner")


def _activity(sim: Sim, i: int, t: int) -> None:
    tl = sim.tl
    if tl.present[i] or (i > 0 and tl.present[i - 1]):
        sim.last_activity = t
        return
    run = sim.live_run(i)
    ended = sim.live_run(i - 1) if i > 0 else None
    if (run is not None and run.chatty) or (ended is not None and ended is not run):
        # A chatty run prints progress; any run's kernel reports going idle when it ends.
        sim.last_activity = t


def simulate(timeline: Timeline, strategy: Strategy, seed: int) -> Outcome:
    """The month of `timeline`'s notebook under `strategy`."""
    sim = Sim(timeline, strategy, seed)
    controller = strategy.controller(timeline, seed)
    ticks = timeline.ticks
    jump = timeline.next_present if strategy.people_act else timeline.next_need
    i = 0
    while i < ticks:
        t = i * TICK
        if sim.running and sim.deadline is not None and sim.deadline <= t:
            sim.stop(
                t, "lease"
            )  # deadlines fall on the grid, and a running notebook is seen every tick
        if strategy.people_act:
            _people(sim, i, t)
        if sim.running:
            _activity(sim, i, t)
        controller.on_pass(sim, i, t)
        if sim.running:
            sim.out.run_minutes += TICK
            i += 1
        else:
            # Nothing happens to a stopped notebook until someone comes (or the oracle needs it).
            i = max(i + 1, jump[i + 1])
    return sim.out


# ---------------------------------------------------------------------- simple strategies


class _Nothing:
    def on_pass(self, sim: Sim, i: int, t: int) -> None:
        return None


@dataclass(frozen=True)
class NoControl:
    """No lease, no tool: notebooks stop only when their owner stops them."""

    name: str = "no control"
    family: str = "baseline"
    lease: bool = False
    people_act: bool = True

    def controller(self, timeline: Timeline, seed: int) -> Controller:
        return _Nothing()


@dataclass(frozen=True)
class Oracle:
    """Each notebook runs exactly while it is needed."""

    name: str = "oracle"
    family: str = "baseline"
    lease: bool = False
    people_act: bool = False

    def controller(self, timeline: Timeline, seed: int) -> Controller:
        return _OracleCtl()


class _OracleCtl:
    def on_pass(self, sim: Sim, i: int, t: int) -> None:
        needed = sim.tl.need[i]
        if needed and not sim.running:
            sim.start(t)
        elif not needed and sim.running:
            sim.stop(t, "strategy")


@dataclass(frozen=True)
class LeaseOnly:
    """ModelArts' lease alone: the owner asks for their usual lease when starting, prolongs it
    when they notice the countdown while working, and (knowing their plans) sets it to cover a
    run or a demo they leave behind."""

    name: str = "ModelArts lease only"
    family: str = "lease"
    lease: bool = True
    people_act: bool = True

    def controller(self, timeline: Timeline, seed: int) -> Controller:
        return _LeaseCtl(seed)


def _whole_hours_from(t: int, until: int) -> int:
    """The deadline of a lease asked at `t` to reach `until`: whole hours, 1 to 72."""
    hours = min(LEASE_CAP_HOURS, max(1, math.ceil((until - t) / 60)))
    return t + hours * 60


class _LeaseCtl:
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_pass(self, sim: Sim, i: int, t: int) -> None:
        if not sim.running or sim.deadline is None or not sim.tl.present[i]:
            return
        until = sim.tl.unattended_until[i]
        if until >= 0 and sim.deadline < until + 30:
            sim.prolong_to(_whole_hours_from(t, until + 30))
        elif (
            sim.deadline - t <= NOTICE_MINUTES
            and draw(self.seed, sim.trace.notebook_id, t, "notice") < NOTICE_CHANCE
        ):
            sim.prolong_to(t + sim.trace.lease_hours * 60)


@dataclass(frozen=True)
class Schedule:
    """Instance Scheduler style, stop-only and not enforced: running notebooks are stopped when
    a working period ends (Mon-Fri 08:00-20:00, no holidays); a notebook started outside the
    period runs until the next period end. `zone`: one timezone for all, or each owner's."""

    name: str
    zone: str | None  # None: the owner's own zone (a per-notebook schedule tag)
    family: str = "schedule"
    lease: bool = False
    people_act: bool = True

    def controller(self, timeline: Timeline, seed: int) -> Controller:
        return _ScheduleCtl(period_ticks(self.zone or timeline.trace.zone))


_PERIODS: dict[str, bytearray] = {}


def period_ticks(zone: str) -> bytearray:
    """1 for every tick inside Mon-Fri 08:00-20:00 in `zone` (holidays are not skipped)."""
    if zone not in _PERIODS:
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(zone)
        marks = bytearray(HORIZON // TICK)
        for i in range(len(marks)):
            local = moment(i * TICK).astimezone(tz)
            marks[i] = local.weekday() < 5 and 8 <= local.hour < 20
        _PERIODS[zone] = marks
    return _PERIODS[zone]


class _ScheduleCtl:
    def __init__(self, period: bytearray) -> None:
        self.period = period

    def on_pass(self, sim: Sim, i: int, t: int) -> None:
        if sim.running and i > 0 and self.period[i - 1] and not self.period[i]:
            sim.stop(t, "strategy")


@dataclass(frozen=True)
class Culler:
    """jupyterhub-idle-culler: stop a server whose last activity is older than `timeout`
    minutes, checked every timeout/2 (its default `--cull-every`). A silent busy kernel is no
    activity; there is no warning."""

    name: str
    timeout: int
    family: str = "culler"
    lease: bool = False
    people_act: bool = True

    def controller(self, timeline: Timeline, seed: int) -> Controller:
        return _CullerCtl(self.timeout, max(TICK, self.timeout // 2 // TICK * TICK))


class _CullerCtl:
    def __init__(self, timeout: int, every: int) -> None:
        self.timeout = timeout
        self.every = every

    def on_pass(self, sim: Sim, i: int, t: int) -> None:
        if sim.running and t % self.every == 0 and t - sim.last_activity > self.timeout:
            sim.stop(t, "strategy")


# ---------------------------------------------------------------------- nbkeeper


@dataclass(frozen=True)
class Nbkeeper:
    """nbkeeper: the real `decide()` under `policy`, every 5 minutes, on every running notebook.

    The lease stays on (people start with their usual lease; the keeper prolongs it). Warnings
    reach the owner, who may press Keep (a reservation of `extend_by_hours`, as the button does)
    or Stop now; a demo's owner reserves the notebook until the end of the demo.
    """

    name: str
    policy: Policy
    family: str = "nbkeeper"
    lease: bool = True
    people_act: bool = True

    def controller(self, timeline: Timeline, seed: int) -> Controller:
        return _KeeperCtl(self.policy, timeline.trace, seed)


# ModelArts keeps a notebook's lease create_at across restarts: its creation, before the month.
CREATED_MS = round((MONTH_START - timedelta(days=30)).timestamp() * 1000)
MONTH_START_MS = round(MONTH_START.timestamp() * 1000)
PROJECT = "savings"


class _KeeperCtl:
    def __init__(self, policy: Policy, trace: Trace, seed: int) -> None:
        self.policy = policy
        self.trace = trace
        self.seed = seed
        self.keep_hours = max(1, round(policy.extend_by_hours))  # the button's "Keep Nh more"
        self.warning: PendingWarning | None = None
        self.reservation: Reservation | None = None
        self.click: tuple[int, Literal["keep", "stop"]] | None = None
        self._notebook: tuple[int | None, Notebook] | None = None
        self._last: tuple[tuple[int, bool, bool, int], Activity] | None = None

    def notebook(self, deadline: int | None) -> Notebook:
        """The notebook as ModelArts would list it, RUNNING with its lease (built on change)."""
        if self._notebook is None or self._notebook[0] != deadline:
            lease: dict[str, object] = {"create_at": CREATED_MS, "type": "TIMING"}
            if deadline is None:
                lease["enable"] = False
            else:
                lease["enable"] = True
                lease["duration"] = MONTH_START_MS + deadline * 60_000 - CREATED_MS
            built = Notebook.model_validate(
                {
                    "id": self.trace.notebook_id,
                    "name": self.trace.notebook_id,
                    "status": "RUNNING",
                    "flavor": self.trace.flavor,
                    "lease": lease,
                }
            )
            self._notebook = (deadline, built)
        return self._notebook[1]

    def reserve(self, until: int, by: str) -> None:
        self.reservation = Reservation(
            project_id=PROJECT, notebook_id=self.trace.notebook_id, until=moment(until), by_user=by
        )

    def on_pass(self, sim: Sim, i: int, t: int) -> None:
        tl = sim.tl
        demo_end = tl.hold_ahead[i]
        if demo_end >= 0:
            # A demo's owner reserves it, while warming it up, until the demo is over.
            current = self.reservation
            if current is None or minute_of(current.until) < demo_end:
                self.reserve(demo_end, self.trace.owner)
        if self.click is not None and self.click[0] <= i:
            _, what = self.click
            self.click = None
            if what == "keep":
                self.reserve(t + self.keep_hours * 60, self.trace.owner)
                sim.out.keeps += 1
            elif sim.running:
                sim.out.stop_nows += 1
                sim.stop(t, "owner")
        if not sim.running:
            return
        self._decide(sim, i, t)

    def _activity(self, sim: Sim, i: int) -> Activity:
        """What Jupyter's status and kernels would say (the same object while nothing changes:
        it is frozen, and most idle ticks repeat the last one)."""
        key = (
            sim.last_activity,
            sim.live_run(i) is not None,
            bool(sim.tl.present[i]),
            sim.started,
        )
        if self._last is None or self._last[0] != key:
            last, busy, present, started = key
            activity = Activity(
                last_activity=moment(last),
                kernels=1,
                busy_kernels=1 if busy else 0,
                connections=1 if present else 0,
                started=moment(started),
            )
            self._last = (key, activity)
        return self._last[1]

    def _decide(self, sim: Sim, i: int, t: int) -> None:
        now = moment(t)
        decision = decide(
            self.notebook(sim.deadline),
            self._activity(sim, i),
            self.reservation,
            self.warning,
            self.policy,
            now,
        )
        if decision.clear_warning:
            self.warning = None
        if decision.action is Action.PROLONG:
            assert decision.new_deadline is not None
            sim.prolong_to(minute_of(decision.new_deadline))
        elif decision.action is Action.STOP:
            self.warning = None  # the keeper deletes the warning it acted on
            sim.stop(t, "strategy")
        elif decision.action is Action.WARN:
            assert decision.warning_kind is not None and decision.stop_after is not None
            self.warning = PendingWarning(
                project_id=PROJECT,
                notebook_id=self.trace.notebook_id,
                kind=decision.warning_kind,
                warned_at=now,
                stop_after=decision.stop_after,
            )
            sim.out.warnings += 1
            self._react(sim, i, t, minute_of(decision.stop_after))

    def _react(self, sim: Sim, i: int, t: int, stop_after: int) -> None:
        """The owner's answer to a warning, if they read it in time (see the usage model)."""
        trace = self.trace
        lead = stop_after - t
        at_work = is_local_work_time(t, trace.zone)
        sees = SEES_WARNING_AT_WORK if at_work else SEES_WARNING_OFF_WORK
        if lead <= 0 or draw(self.seed, trace.notebook_id, t, "sees") >= sees:
            return
        back_soon = sim.tl.next_session_start(t) - t <= self.keep_hours * 60
        if back_soon and trace.reaction in ("keeper", "tidy"):
            what: Literal["keep", "stop"] = "keep"
        elif not back_soon and trace.reaction == "tidy":
            what = "stop"
        else:
            return
        delay = 1 + int(draw(self.seed, trace.notebook_id, t, "delay") * lead)
        self.click = (-(-(t + min(delay, lead)) // TICK), what)
