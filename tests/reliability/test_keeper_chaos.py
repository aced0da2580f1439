"""Keeper chaos: the real lease keeper handler, every 5 simulated minutes over a day, against a
large seeded fleet, while probes fail, ModelArts throttles, the state table errors (and has an
outage), schedule events arrive late and twice, owners press Keep mid-pass, notebooks are stopped
and restarted from the console mid-pass, Slack drops warnings, and some passes are killed half way
and re-run.

Judged on the emulator's and the state table's truth at the moment of each stop call and of each
lease running out: 0 active, reserved, opted-out, transient or unreadable notebooks stopped; no
stop without the full warning lead in the notebook's current run; no lease of a kept notebook
left to run out; an interrupted pass re-run reaches a fixpoint.
"""

from __future__ import annotations

import random
import weakref
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from nbkeeper.dynamo import DynamoStateStore
from nbkeeper.keeper.policy import load_policy_file
from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper.records import Owner, ProjectState, Reservation
from nbkeeper.settings import DEFAULT_POLICY_PATH
from nbkeeper.slack.buttons import KEEP_ACTION
from nbkeeper.tags import OWNER_TAG
from nbkeeper_local.emulator import ActivityPattern
from nbkeeper_local.emulator.clock import from_ms
from tests.reliability import slackreq
from tests.reliability.chaos import (
    ChaosSlack,
    Draws,
    Probe,
    ProbeChaos,
    api_faults,
    judge_stop,
    state_faults,
    truth,
)
from tests.reliability.conftest import suite_figures
from tests.reliability.faults import Killed, operation
from tests.reliability.figures import Report, SuiteFigures
from tests.reliability.simworld import PROJECT_ID, SIM_START, Context, EventSource, World, world

pytestmark = pytest.mark.reliability

SIZES = {
    "bounded": {"fleet": 150, "hours": (9, 15)},
    "full": {"fleet": 2000, "hours": (7, 22)},
}
PASS_EVERY = timedelta(minutes=5)
API_FAULT_RATE = 0.04  # 429 and 503, retried by the client
PROBE_FAULT_RATE = 0.03
STATE_FAULT_RATE = 0.01
OUTAGE = (14 * 60, 14 * 60 + 40)  # minutes of the day: every state-table call fails
BACKLOG = (10 * 60 + 30, 11 * 60 + 30)  # events arrive 25 minutes late
LATE = timedelta(minutes=25)
SLACK_FAILURE_RATE = 0.03
DUPLICATE_EVENT = 0.05
LATE_RETRY = 0.02
MID_PASS = {"keep": 0.3, "console stop": 0.05, "restart": 0.05}
MID_PASS_PER_PASS = 3  # at most this many mid-pass events in one pass
CLICKS_BETWEEN_PASSES = 2  # at most this many Keep clicks on fresh warnings between passes
KILLED_PASSES = (9 * 60 + 30, 15 * 60 + 5, 21 * 60 + 10)
RULES = {
    "reserved notebook stopped (Keep pressed during the pass)": "issue 10 #6",
    "stopped without the full warning lead": "on the wall clock; issue 10 #4 (late events)",
    "lease of a kept notebook ran out": "issue 10 #4 (late events), #5 (state-table outage)",
}


@pytest.fixture
def figures(reliability: Report) -> Iterator[SuiteFigures]:
    yield from suite_figures(reliability, "chaos", __doc__)


def test_keeper_chaos(size: str, seed: int, figures: SuiteFigures, tmp_path: Path) -> None:
    config = SIZES[size]
    rng = random.Random(f"{seed}:chaos")
    policy_path = tmp_path / "policy.yaml"
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    data.update(warning_channel="C0WARN", summary_channel="C0SUM", admins=["UADMIN"])
    policy_path.write_text(yaml.safe_dump(data))
    policy = load_policy_file(policy_path)
    start = SIM_START.replace(hour=config["hours"][0])
    env = {"POLICY_PATH": str(policy_path), "SLACK_ADMINS": "UADMIN"}
    handlers = ("slack_commands", "notebook_worker", "lease_keeper")
    with world(seed, env=env, handlers=handlers, start=start) as w:
        day = Day(w, policy, rng, config["fleet"])
        day.run(start.replace(hour=0) + timedelta(hours=config["hours"][1]))
        day.record(figures)
    assert not figures.failures, figures.failure_message()


class Day:
    def __init__(self, w: World, policy: Any, rng: random.Random, fleet: int) -> None:
        self.w, self.policy, self.rng = w, policy, rng
        self.keeper = w.modules["lease_keeper"]
        self.source = EventSource(w)
        import boto3

        self.table = boto3.resource("dynamodb").Table(w.env["STATE_TABLE"])  # no faults: truth
        self.truth_store = DynamoStateStore(self.table)
        draw = Draws(str(rng.random()))
        self.slack = ChaosSlack(w.clock.now_ms, str(rng.random()), SLACK_FAILURE_RATE)
        self.keeper.seams.slack_transport = httpx.MockTransport(self.slack)
        self.probes = ProbeChaos(
            w.emulator.asgi_transport(), w.emulator, policy, w.clock.now_ms, draw, PROBE_FAULT_RATE
        )
        self.probes.mid_pass = self.mid_pass
        self.probes.planned = lambda notebook_id: notebook_id in self.planned
        self.keeper.seams.jupyter_transport = self.probes
        self.keeper.seams.modelarts_transport.hooks.append(self.on_keeper_request)
        self.keeper.seams.modelarts_transport.after.append(self.on_keeper_reply)
        # A stop request's problems, until it is answered (a cancelled one is forgotten).
        self.judged: weakref.WeakKeyDictionary[httpx.Request, list[str]] = (
            weakref.WeakKeyDictionary()
        )
        self.state_errors: Counter[str] = Counter()
        self.calm = False  # True: no injected faults (the convergence check's extra run)
        state_faults(
            self.keeper.wiring.state_table,
            draw,
            w.clock.now_ms,
            lambda: 0.0 if self.calm else STATE_FAULT_RATE,
            lambda: not self.calm and self.in_outage(),
            self.state_errors,
        )
        self.api_errors: Counter[str] = Counter()
        self.keeper.seams.modelarts_transport.before = api_faults(
            draw, w.clock.now_ms, lambda: 0.0 if self.calm else API_FAULT_RATE, self.api_errors
        )
        self.records = w.emulator.seed_fleet(size=fleet, seed=rng.randrange(1 << 30))
        self.owners = self.seed_owners()
        self.seed_reservations()
        self.handled_warnings: set[int] = set()
        self.kept_mid_pass: set[str] = set()
        self.planned: dict[str, tuple[str, dict[str, Any]]] = {}
        self.store_expiry_spy()
        # What happened, for the figures.
        self.counts: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()
        self.violations: dict[str, list[str]] = {}
        self.pass_start: dict[str, NotebookStatus] = {}
        self.changed_mid_pass: set[str] = set()
        self.converged: list[bool] = []
        self.unconverged: list[str] = []
        self.unhandled: list[str] = []
        self.warned_twice = 0

    # ------------------------------------------------------------ setup

    def seed_owners(self) -> dict[str, str]:
        """Every notebook was created through nbkeeper (its owner tag); a tenth also has an owner
        record (the two places the keeper and the directory look)."""
        owners = {}
        store = DynamoStateStore(self.table)
        for record in self.records:
            user = "U" + record.user.user_name.upper()
            owners[record.id] = user
            record.tags[OWNER_TAG] = user
            if self.rng.random() < 0.1:
                store.put_owner(
                    Owner(
                        project_id=PROJECT_ID,
                        notebook_id=record.id,
                        user_id=user,
                        created_at=from_ms(record.create_at),
                    )
                )
        return owners

    def seed_reservations(self) -> None:
        now = self.w.emulator.now()
        for record in self.records:
            if self.rng.random() < 0.05:
                until = now + timedelta(minutes=self.rng.randint(30, 12 * 60))
                self.truth_store.put_reservation(
                    Reservation(
                        project_id=PROJECT_ID, notebook_id=record.id, until=until, by_user="UX"
                    )
                )

    def state_of(self, notebook_id: str) -> ProjectState:
        """The notebook's reservation as the table has it now (one read, no faults)."""
        item = self.table.get_item(
            Key={"pk": f"PROJECT#{PROJECT_ID}", "sk": f"RES#{notebook_id}"}
        ).get("Item")
        state = ProjectState()
        if item:
            state.reservations[notebook_id] = Reservation(
                project_id=PROJECT_ID,
                notebook_id=notebook_id,
                until=from_ms(int(item["until"]) * 1000),
                by_user=str(item["by_user"]),
            )
        return state

    def in_outage(self) -> bool:
        minute = self.minute_of_day(self.w.now_ms)
        return OUTAGE[0] <= minute < OUTAGE[1]

    @staticmethod
    def minute_of_day(at_ms: int) -> int:
        moment = from_ms(at_ms)
        return moment.hour * 60 + moment.minute

    def store_expiry_spy(self) -> None:
        store = self.w.emulator.store
        expire = store._expire

        def spy(record: Any, at_ms: int) -> None:
            if record.status is NotebookStatus.RUNNING:
                self.counts["leases run out"] += 1
                seen = truth(self.w.emulator, record, self.state_of(record.id), self.policy, at_ms)
                why = [
                    name
                    for name, flag in (
                        ("active", seen.active),
                        ("reserved", seen.reserved),
                        ("opted out", seen.opted_out),
                    )
                    if flag
                ]
                if why:
                    self.violate(
                        "lease of a kept notebook ran out",
                        f"{from_ms(at_ms):%H:%M} {record.id} ({'/'.join(why)}, "
                        f"{record.jupyter.pattern.value})",
                    )
            expire(record, at_ms)

        store._expire = spy  # type: ignore[method-assign]

    def violate(self, kind: str, what: str) -> None:
        self.violations.setdefault(kind, []).append(what)

    # ------------------------------------------------------------ the day

    def run(self, end: Any) -> None:
        while self.w.emulator.now() < end:
            now = self.w.emulator.now()
            self.scenario(now)
            self.scheduled_pass(now)
            self.w.advance(PASS_EVERY.total_seconds())

    def scenario(self, now: Any) -> None:
        """People between passes: patterns change on the hour, some press Keep on a warning,
        some restart a stopped notebook from the console."""
        emulator = self.w.emulator
        if now.minute == 0 and 8 <= now.hour < 20:
            for record in self.records:
                if record.status is not NotebookStatus.RUNNING or self.rng.random() > 0.1:
                    continue
                pattern = self.rng.choice(
                    (ActivityPattern.IDLE, ActivityPattern.ACTIVE, ActivityPattern.BUSY)
                )
                emulator.set_activity(record.id, pattern=pattern, last_activity=now)
                self.counts["activity changes"] += 1
        fresh = sorted(
            (w for w in self.slack.warnings[-200:] if w.at_ms >= self.w.now_ms - 5 * 60_000),
            key=lambda w: (w.at_ms, w.notebook_id),
        )
        clicked = 0
        for warning in fresh:
            if clicked < CLICKS_BETWEEN_PASSES and self.rng.random() < 0.1:
                self.click_keep(warning.notebook_id, warning.message)
                self.counts["Keep clicks between passes"] += 1
                clicked += 1
        if now.minute == 30:
            for record in self.records:
                if record.status is NotebookStatus.STOPPED and self.rng.random() < 0.02:
                    emulator.store.start(record.project_id, record.id)
                    self.counts["console restarts"] += 1
        self.drain()

    def drain(self) -> None:
        for _ in range(5):
            worked = self.source.poll(self.w.queue_url) + self.source.poll(self.w.followup_url)
            if not worked:
                break

    def click_keep(self, notebook_id: str, message: dict[str, Any]) -> None:
        value = slackreq.button(message, KEEP_ACTION)
        if value is None:
            return
        user = self.owners.get(notebook_id, "UADMIN")
        n = len(self.slack.posts) + self.counts["clicks"]
        self.counts["clicks"] += 1
        event = slackreq.click(
            user,
            KEEP_ACTION,
            value,
            f"https://hooks.slack.com/actions/T0REL/{n}/keep",
            secret=self.w.env["SLACK_SIGNING_SECRET"],
            at=self.w.now_ms / 1000,
            message_ts=f"{n}.000200",
        )
        handler = self.w.modules["slack_commands"].lambda_handler
        if handler(event, Context(function_name="slack-commands"))["statusCode"] != 200:
            self.unhandled.append(f"Keep click on {notebook_id}: webhook failed")

    def plan_mid_pass(self) -> None:
        """Before a pass: which notebooks due for a stop (their warning's lead has passed) will
        see something happen while the keeper works on them, and what. Decided here, from the
        warnings, so the pass's own order of work (which varies) does not change the plan."""
        now = self.w.now_ms
        self.planned = {}
        for notebook_id in sorted(self.slack.by_notebook):
            found = self.slack.last_warning(notebook_id, now)
            if found is None or len(self.planned) >= MID_PASS_PER_PASS:
                continue
            index, warning = found
            if (
                index in self.handled_warnings
                or not 14 * 60_000 <= now - warning.at_ms < 40 * 60_000
            ):
                continue
            self.handled_warnings.add(index)
            roll = self.rng.random()
            for kind, chance in MID_PASS.items():
                if roll < chance:
                    self.planned[notebook_id] = (kind, warning.message)
                    break
                roll -= chance

    def mid_pass(self, notebook_id: str) -> None:
        """The keeper is probing `notebook_id`: what was planned for it happens now (its owner
        presses Keep, or someone stops or restarts it from the console)."""
        kind, message = self.planned.pop(notebook_id, ("", {}))
        if kind == "keep":
            self.click_keep(notebook_id, message)
            self.drain()
            self.counts["Keep clicks mid-pass"] += 1
            self.kept_mid_pass.add(notebook_id)
            return
        if not kind:
            return
        store = self.w.emulator.store
        try:
            record = self.w.emulator.find(notebook_id)
        except KeyError:
            return
        if record.status is not NotebookStatus.RUNNING:
            return
        if kind == "console stop":
            store.stop(PROJECT_ID, notebook_id)
            self.counts["console stops mid-pass"] += 1
        else:
            store.force_status(PROJECT_ID, notebook_id, NotebookStatus.STOPPED)
            store.start(PROJECT_ID, notebook_id)
            self.counts["console restarts mid-pass"] += 1
        self.changed_mid_pass.add(notebook_id)

    def scheduled_pass(self, now: Any) -> None:
        minute = now.hour * 60 + now.minute
        at = now - LATE if BACKLOG[0] <= minute < BACKLOG[1] else now
        times = [at]
        if self.rng.random() < DUPLICATE_EVENT:
            times.append(at)
            self.counts["events delivered twice"] += 1
        if self.rng.random() < LATE_RETRY:
            times.append(now - LATE)
            self.counts["late retries of an old event"] += 1
        if at != now:
            self.counts["events 25 min late (backlog)"] += 1
        for index, moment in enumerate(times):
            kill = index == 0 and minute in KILLED_PASSES
            self.invoke(moment, kill)

    def invoke(self, moment: Any, kill: bool) -> None:
        summary = self._pass(moment, kill)
        if summary is None:  # killed half way: Lambda retries the same event
            self.counts["passes killed half way"] += 1
            # The retry and one more run at the same time, without new faults: the retry must
            # finish what the killed pass left (the run after it has nothing left to do).
            self.set_calm(True)
            rerun = self._pass(moment, kill=False) or {}
            self._tally(rerun)
            again = self._pass(moment, kill=False)
            self.set_calm(False)
            moves = {k: int((again or {}).get(k, 0)) for k in ("prolong", "warn", "stop")}
            settled = again is not None and sum(moves.values()) == 0
            self.converged.append(settled)
            if not settled:
                self.unconverged.append(
                    f"{moment:%H:%M}: the run after the retry still did {moves}"
                )
            return
        self._tally(summary)

    def _pass(self, moment: Any, kill: bool) -> dict[str, Any] | None:
        self.pass_start = self._statuses()
        self.changed_mid_pass = set()
        self.kept_mid_pass = set()
        self.plan_mid_pass()
        self.probes.new_pass()
        self.probes.probes.clear()
        running = sum(1 for s in self.pass_start.values() if s is NotebookStatus.RUNNING)
        self.probes.kill_after = max(1, running // 2) if kill else 0
        event = {"source": "aws.scheduler", "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
        self.counts["keeper invocations"] += 1
        summary = self._call(event)
        self.probes.kill_after = 0
        return summary

    def _tally(self, summary: dict[str, Any]) -> None:
        for key in ("prolong", "warn", "stop"):
            self.actions[key] += int(summary.get(key, 0))
        self.counts["project errors"] += int(summary.get("project_errors", 0))
        self.counts["action failures"] += int(summary.get("failures", 0))

    def set_calm(self, calm: bool) -> None:
        self.calm = calm
        self.probes.failure_rate = 0.0 if calm else PROBE_FAULT_RATE
        self.slack.failure_rate = 0.0 if calm else SLACK_FAILURE_RATE

    def _call(self, event: dict[str, Any]) -> dict[str, Any] | None:
        try:
            summary: dict[str, Any] = self.keeper.lambda_handler(
                event, Context(function_name="lease-keeper")
            )
        except Killed:
            return None
        except Exception as exc:
            self.unhandled.append(f"keeper at {event['time']}: {type(exc).__name__}: {exc}"[:200])
            return {}
        finally:
            self.drain()
        return summary

    def _statuses(self) -> dict[str, NotebookStatus]:
        store = self.w.emulator.store
        with store.lock:
            store.now_ms()
            return {r.id: r.status for r in store.project(PROJECT_ID).records.values()}

    # ------------------------------------------------------------ the oracle

    def on_keeper_request(self, request: httpx.Request) -> None:
        path = request.url.path
        if operation(request.method, path) != "stop":
            return
        notebook_id = path.rstrip("/").split("/")[-2]
        now = self.w.now_ms
        self.counts["keeper stop calls"] += 1
        try:
            record = self.w.emulator.find(notebook_id)
        except KeyError:
            return
        seen = truth(self.w.emulator, record, self.state_of(notebook_id), self.policy, now)
        probe = self._probe(notebook_id)
        last = self.slack.last_warning(notebook_id, now)
        problems = judge_stop(
            seen,
            probe,
            last[1] if last else None,
            now,
            self.policy.warning_lead,
            self.pass_start.get(notebook_id),
            notebook_id in self.changed_mid_pass,
        )
        if record.status is not NotebookStatus.RUNNING:
            self.counts["keeper stop calls ModelArts refused (not running)"] += 1
            return  # ModelArts refuses it: nothing is stopped
        marked = [
            "reserved (Keep pressed during this pass)"
            if p == "reserved" and notebook_id in self.kept_mid_pass
            else p
            for p in problems
        ]
        self.judged[request] = [f"{from_ms(now):%H:%M} {notebook_id}: {p}" for p in marked]

    def on_keeper_reply(self, request: httpx.Request, status: int) -> None:
        """A stop counts once ModelArts took it (a 503 before processing stopped nothing)."""
        problems = self.judged.pop(request, None)
        if problems is None or status >= 300:
            return
        self.counts["keeper stops taken"] += 1
        for line in problems:
            self.violate(_kind(line.split(": ", 1)[1]), line)

    def _probe(self, notebook_id: str) -> Probe | None:
        found = [p for p in self.probes.probes if p.notebook_id == notebook_id]
        if not found:
            return None
        return Probe(
            notebook_id,
            found[0].at_ms,
            found[0].truth_active,
            any(p.failed for p in found),
        )

    # ------------------------------------------------------------ figures

    def record(self, figures: SuiteFigures) -> None:
        figures.add("fleet", len(self.records), "seeded notebooks (60% running at the start)")
        figures.add("keeper invocations", self.counts["keeper invocations"])
        figures.add("keeper actions (from pass summaries)", dict(self.actions))
        figures.add(
            "Jupyter probe faults injected", dict(self.probes.injected), f"{PROBE_FAULT_RATE:.0%}"
        )
        figures.add(
            "ModelArts faults injected (keeper)",
            dict(self.api_errors),
            f"{API_FAULT_RATE:.0%} of its calls answered 429 or 503 before processing",
        )
        figures.add(
            "state-table errors injected",
            dict(self.state_errors),
            f"{STATE_FAULT_RATE:.0%}, and every call {_hhmm(OUTAGE[0])}-{_hhmm(OUTAGE[1])}",
        )
        figures.add(
            "Slack warnings lost", self.slack.failures, f"{SLACK_FAILURE_RATE:.0%} of posts"
        )
        figures.add("warnings delivered", len(self.slack.warnings))
        figures.add("scenario events", dict(sorted(self.counts.items())))
        kinds = (
            "active notebook stopped",
            "reserved notebook stopped (reserved before the pass)",
            "reserved notebook stopped (Keep pressed during the pass)",
            "opted-out notebook stopped",
            "transient notebook stopped",
            "unreadable notebook stopped",
            "stopped without the full warning lead",
            "lease of a kept notebook ran out",
        )
        for kind in kinds:
            figures.check(kind, len(self.violations.get(kind, [])), note=RULES.get(kind, ""))
        for kind, lines in self.violations.items():
            hours = Counter(line[:2] + ":00" for line in lines)
            figures.detail(f"{kind}: {len(lines)}, by hour {dict(sorted(hours.items()))}")
            for line in lines[:8]:
                figures.detail(f"{kind}: {line}")
            if len(lines) > 8:
                figures.detail(f"{kind}: ... {len(lines) - 8} more")
        figures.check(
            "interrupted passes that did not converge on re-run",
            sum(1 for c in self.converged if not c),
            note=f"{len(self.converged)} passes killed half way, re-run with the same event",
        )
        for line in self.unconverged:
            figures.detail(f"not converged: {line}")
        figures.check("unhandled exceptions", len(self.unhandled))
        for line in self.unhandled[:10]:
            figures.detail(f"unhandled: {line}")


def _kind(problem: str) -> str:
    if problem.startswith("active"):
        return "active notebook stopped"
    if problem.startswith("reserved (Keep"):
        return "reserved notebook stopped (Keep pressed during the pass)"
    if problem.startswith("reserved"):
        return "reserved notebook stopped (reserved before the pass)"
    if problem.startswith("opted out"):
        return "opted-out notebook stopped"
    if "transient" in problem:
        return "transient notebook stopped"
    if problem.startswith("activity unreadable"):
        return "unreadable notebook stopped"
    if problem.startswith(("warned only", "no warning")):
        return "stopped without the full warning lead"
    return problem


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
