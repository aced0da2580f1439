"""Command soak with faults: signed Slack requests -> the real webhook -> moto FIFO queue ->
the real worker (killed mid-batch and mid-record now and then) -> the emulator injecting 429s,
5xx, slow replies, dropped connections, lost replies and loose replies.

Checks: every queued command ends completed or reported to its author as failed; no notebook or
action twice; per FIFO group nothing completes before a command sent earlier; every notebook
ends as the reference model (tests/reliability/model.py) says; every DLQ message is explained.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from nbkeeper.commands import CreateCommand, NotebookCommand
from nbkeeper.dynamo import DynamoStateStore
from nbkeeper.tags import OWNER_TAG
from nbkeeper_local.emulator import FaultKind
from nbkeeper_local.harness import MAX_RECEIVE_COUNT
from tests.reliability import model
from tests.reliability.conftest import suite_figures
from tests.reliability.faults import MUTATING, AfterFaults
from tests.reliability.figures import Report, SuiteFigures
from tests.reliability.simworld import (
    KILL_KINDS,
    LAST_RECEIVE_LOST,
    PROJECT_ID,
    WORKER_TIMEOUT_S,
    EventSource,
    Kills,
    World,
    root_id,
    world,
)
from tests.reliability.soak import ADMIN, DEAD_LETTER_PERIOD_S, USERS, Soak

pytestmark = pytest.mark.reliability

SIZES = {
    "bounded": {"target": 150, "concurrency": 12},
    "full": {"target": 1000, "concurrency": 40},
}
EMULATOR_FAULT_RATE = 0.10  # of ModelArts requests, spread evenly over the five kinds below
EMULATOR_FAULTS = (
    FaultKind.THROTTLE,
    FaultKind.ERROR_500,
    FaultKind.ERROR_503,
    FaultKind.SLOW,
    FaultKind.DROP,
)
AFTER_FAULTS = AfterFaults(reply_lost=0.01, timeout_after=0.005, loose=0.05)
# Every kind of kill at least once, even in a short run: forced after 20 invocations if the
# draws have not made it happen by then.
KILLS = Kills(in_record=0.03, between=0.03, each_after=20)
# Longer than the worker's timeout (simworld.WORKER_TIMEOUT_S), as Lambda requires of an event
# source's queue: a killed invocation's record is no longer in progress when it comes back.
VISIBILITY_S = 150
CAP_S = 45 * 60  # no new commands after this much simulated time (leases last >= 1 h)
DRAIN_S = (MAX_RECEIVE_COUNT + 1) * VISIBILITY_S  # a command queued at the cap reaches the DLQ


@pytest.fixture
def figures(reliability: Report) -> Iterator[SuiteFigures]:
    yield from suite_figures(reliability, "soak", __doc__)


def test_command_soak(size: str, seed: int, figures: SuiteFigures) -> None:
    config = SIZES[size]
    rng = random.Random(f"{seed}:soak")
    env = {
        "SLACK_ALLOWED_USERS": ",".join(USERS),
        "SLACK_ADMINS": ADMIN,
        "NBKEEPER_TIMEZONE": "UTC",
    }
    with world(seed, env=env, after_faults=AFTER_FAULTS, visibility_s=VISIBILITY_S) as w:
        w.emulator.set_fault_rate(EMULATOR_FAULT_RATE, EMULATOR_FAULTS, seed)
        source = EventSource(w, KILLS)
        soak = Soak(w, source, config["target"], config["concurrency"], rng)
        poison = send_poison(w, soak)
        start_ms = w.now_ms
        soak.run(CAP_S, DRAIN_S)
        w.emulator.set_fault_rate(0.0)
        record_figures(figures, w, soak, source, poison, start_ms)
    assert not figures.failures, figures.failure_message()


def send_poison(w: World, soak: Soak) -> dict[str, str]:
    """Two messages from "another producer": unreadable, and a command type nobody knows."""
    url = "https://hooks.slack.com/commands/T0REL/poison/RURLPOISON"
    bodies = {
        "poison.unreadable": "{not json",
        "poison.unknown-type": json.dumps(
            {
                "type": "teleport",
                "command_id": "poison.unknown-type",
                "requested_at": w.emulator.now().isoformat(),
                "requested_by": {"user_id": USERS[0], "response_url": url},
            }
        ),
    }
    for command_id, body in bodies.items():
        w.sqs.send_message(
            QueueUrl=w.queue_url,
            MessageBody=body,
            MessageGroupId=command_id,
            MessageDeduplicationId=command_id,
        )
    soak.by_url[url] = "poison.unknown-type"
    return bodies


def outcomes_of(soak: Soak) -> dict[str, model.Outcome]:
    found: dict[str, model.Outcome] = {}
    for command_id, reports in soak.final_reports().items():
        texts = [r.text for r in reports]
        if any("dead-letter" in t for t in texts):
            kind = "dlq"
        else:
            kind = "ok" if reports[-1].ok else "refused"
        found[command_id] = model.Outcome(kind, texts)
    return found


def actual_state(w: World) -> dict[str, model.Actual]:
    store = DynamoStateStore(w.modules["notebook_worker"].wiring.state_table)
    state = store.load_project(PROJECT_ID, w.emulator.now())
    found: dict[str, model.Actual] = {}
    with w.emulator.store.lock:
        w.emulator.store.now_ms()
        records = list(w.emulator.store.project(PROJECT_ID).records.values())
    for r in records:
        owner = state.owners.get(r.id)
        reservation = state.reservations.get(r.id)
        running = r.status.value == "RUNNING" and r.lease_enable
        found[r.id] = model.Actual(
            status=r.status.value,
            owner_record=owner.user_id if owner else None,
            owner_tag=r.tags.get(OWNER_TAG),
            flavor=r.flavor,
            storage=int(r.volume.get("capacity", 0)),
            description=r.description,
            deadline_ms=r.deadline_ms if running else None,
            reservation=reservation.until if reservation else None,
        )
    return found


def record_figures(
    figures: SuiteFigures,
    w: World,
    soak: Soak,
    source: EventSource,
    poison: dict[str, str],
    start_ms: int,
) -> None:
    sent = [s for s in w.sent if s.command.command_id in soak.issued]
    types = Counter(s.command.type for s in sent)
    outcomes = outcomes_of(soak)
    windows = model.Windows.of(w.executions)
    calls = w.transports["notebook_worker"].calls
    actual = actual_state(w)

    figures.add(
        "commands queued (through the webhook)",
        len(sent),
        ", ".join(f"{t} {n}" for t, n in sorted(types.items())),
    )
    figures.check("commands queued >= target", len(sent) >= SIZES[soak_size(soak)]["target"], True)
    figures.add("Slack requests sent (slash commands and clicks)", soak.requests)
    figures.add("answered at the ack, nothing queued", dict(sorted(soak.at_ack.items())))
    figures.add("notebooks", len(soak.plans))
    figures.add("simulated time (min)", round((w.now_ms - start_ms) / 60000, 1))
    injected = {k.value: n for k, n in w.emulator.faults.injected.items() if n}
    injected.update(dict(w.transports["notebook_worker"].injected))
    for name, n in w.transports["slack_commands"].injected.items():
        injected[f"{name} (webhook)"] = n
    figures.add(
        "faults injected",
        injected,
        f"emulator: {EMULATOR_FAULT_RATE:.0%} of requests, evenly 429/500/503/slow/drop; "
        f"after processing: {AFTER_FAULTS.reply_lost:.1%} reply lost, "
        f"{AFTER_FAULTS.timeout_after:.1%} timeout, {AFTER_FAULTS.loose:.0%} loose reply",
    )
    figures.add("worker invocations", source.invocations)
    figures.add(
        "invocations killed",
        {kind: source.killed[kind] for kind in KILL_KINDS},
        f"drawn: {KILLS.in_record:.0%} inside a record, {KILLS.between:.0%} between records "
        f"(or before the first); forced: {dict(source.forced) or 'none'}",
    )
    for kind in KILL_KINDS:
        figures.check(f"invocations killed {kind} >= 1", source.killed[kind] >= 1, True)
    figures.check(
        f"invocations killed {LAST_RECEIVE_LOST} >= 1",
        source.killed[LAST_RECEIVE_LOST] >= 1,
        True,
        note="its author can only hear from the dead-letter reader",
    )
    figures.add("receives", len(source.receives))
    figures.add(
        "redeliveries (receive count > 1)",
        source.redeliveries,
        f"visibility {VISIBILITY_S} s, worker timeout {WORKER_TIMEOUT_S} s (simulated)",
    )
    figures.check("redeliveries >= 1", source.redeliveries >= 1, True)
    early = early_redeliveries(source)
    figures.check(
        "redeliveries before the visibility timeout ran out",
        len(early),
        note="a message comes back only once its last receive's visibility timeout passed",
    )
    for line in early[:5]:
        figures.detail(f"early redelivery: {line}")

    lost = [s.command for s in sent if outcomes.get(s.command.command_id) is None]
    figures.check(
        "lost (queued, never answered)",
        len(lost),
        note="every command ends completed or reported to its author as failed",
    )
    for command in lost[:20]:
        figures.detail(
            f"lost: {command.type} {command.command_id} by {command.requested_by.user_id}"
        )
    told = Counter(o.kind for cid, o in outcomes.items() if cid in soak.issued)
    figures.add("final answers", dict(sorted(told.items())))
    figures.add("answers by DM instead of response_url", soak.dm_reports)

    twice = {cid: len(r) for cid, r in soak.final_reports().items() if len(r) > 1}
    figures.check("commands answered more than once", len(twice))
    duplicate_notebooks(figures, w, soak, calls)
    duplicate_actions(figures, calls)
    order = model.out_of_order(sent, w.executions)
    figures.check(
        "out of order (completed before an earlier command of its group)",
        len(order),
        note="issue 10 #1",
    )
    for _, _, line in order[:20]:
        figures.detail(f"out of order: {line}")
    overtaken = {cid for pair in order for cid in pair[:2]}
    why = Causes(calls, w.executions, overtaken, outcomes)
    why.twins = {cid for p in soak.plans for cid in p.creates[1:]}
    check_model(figures, soak, sent, outcomes, windows, actual, calls, why)
    explain_dlq(figures, w, soak, source, poison)
    for line in soak.odd_answers:
        figures.detail(f"other answer at the ack: {line}")
    figures.check("unhandled exceptions (HTTP 5xx from the webhook)", len(soak.unhandled))
    for line in soak.unhandled[:10]:
        figures.detail(f"unhandled: {line}")


def early_redeliveries(source: EventSource) -> list[str]:
    last: dict[str, int] = {}
    early = []
    for r in source.receives:
        before = last.get(r.message_id)
        if before is not None and r.at_ms - before < VISIBILITY_S * 1000:
            early.append(f"{r.command_id} receive {r.count} after {(r.at_ms - before) / 1000} s")
        last[r.message_id] = r.at_ms
    return early


def soak_size(soak: Soak) -> str:
    return "full" if soak.target >= SIZES["full"]["target"] else "bounded"


def duplicate_notebooks(figures: SuiteFigures, w: World, soak: Soak, calls: list[Any]) -> None:
    made: dict[str, set[str]] = {}
    for call in calls:
        if call.op == "create" and call.created_id and call.command_id:
            made.setdefault(root_id(call.command_id), set()).add(call.created_id)
    names: Counter[str] = Counter()
    with w.emulator.store.lock:
        for record in w.emulator.store.project(PROJECT_ID).records.values():
            names[record.name] += 1
    extra = sum(n - 1 for n in names.values() if n > 1)
    twice = {cid: ids for cid, ids in made.items() if len(ids) > 1}
    figures.check("duplicated notebooks (same name twice at the end)", extra, note="issue 10 #2")
    figures.check(
        "creates that made more than one notebook",
        len(twice),
        note="issue 10 #2, #3: a redelivered create adopts what it made, nothing else",
    )
    adopted = {c.command_id: c.notebook_id for c in calls if c.op == "tag" and c.status < 300}
    for cid, ids in twice.items():
        others = sorted(
            {root_id(k) for k, nb in adopted.items() if nb in ids and root_id(k) != cid}
        )
        figures.detail(
            f"one create, {len(ids)} notebooks: {cid} made {sorted(ids)}; also tagged by {others}"
        )
    firsts = {p.creates[0] for p in soak.plans if p.creates}
    twins = [cid for p in soak.plans for cid in p.creates[1:]]
    twin_made = [cid for cid in twins if made.get(cid)]
    figures.add("second creates of a name (double Enter)", len(twins))
    figures.check(
        "second creates that made a notebook",
        len(twin_made),
        note="issue 10 #2: a create whose name is taken is refused",
    )
    for name, n in names.items():
        if n > 1:
            figures.detail(f"duplicate: {n} notebooks called {name}")
    orphans = [cid for cid in made if cid not in firsts and cid not in twins]
    figures.check("notebooks made by no create the users sent", len(orphans))


def duplicate_actions(figures: SuiteFigures, calls: list[Any]) -> None:
    effects: Counter[tuple[str, str, str | None]] = Counter()
    for call in calls:
        if call.op in MUTATING and call.status < 300 and call.command_id:
            effects[(root_id(call.command_id), call.op, call.notebook_id)] += 1
    repeated = {k: n for k, n in effects.items() if n > 1}
    changes = {k: n for k, n in repeated.items() if k[1] in ("start", "stop", "delete", "create")}
    figures.check("state changes applied twice by one command (start, stop, delete)", len(changes))
    for (cid, op, nb), n in list(changes.items())[:10]:
        figures.detail(f"applied twice: {op} x{n} on {nb} by {cid}")
    same = Counter(k[1] for k in repeated if k not in changes)
    figures.add(
        "idempotent calls repeated after a lost reply or a kill (renew, update, tag)",
        dict(same),
        "same values again: no change of state",
    )


def check_model(
    figures: SuiteFigures,
    soak: Soak,
    sent: list[Any],
    outcomes: dict[str, model.Outcome],
    windows: model.Windows,
    actual: dict[str, model.Actual],
    calls: list[Any],
    why: Causes,
) -> None:
    verdicts, modelled = judge_plans(soak, sent, outcomes, windows, actual, calls)
    wrong = [v for v in verdicts if v.mismatches]
    misreported = [v for v in verdicts if v.misreported]
    figures.add("notebooks compared with the reference model", len(modelled))
    figures.check("notebooks whose final state differs from the model", len(wrong))
    figures.check(
        "commands whose answer contradicts the model",
        sum(len(v.misreported) for v in verdicts),
        note="by cause below; a lost reply or a kill: test_findings.py, finding 1",
    )
    by_cause = Counter(why.summary(n.split()[0]) for v in verdicts for n in v.misreported)
    figures.add("answers contradicting the model, by what happened to the command", dict(by_cause))
    state_causes = Counter(why.summary(*(c.command_id for c in v.trace)) for v in wrong)
    figures.add(
        "notebooks differing from the model, by what happened to their commands",
        dict(state_causes),
    )
    for v in wrong[:15]:
        trace = ", ".join(
            f"{c.type} {why.told(c.command_id)}{why.tags(c.command_id)}" for c in v.trace
        )
        figures.detail(f"state: {v.notebook_id}: {'; '.join(v.mismatches)} <- {trace}")
    for v in misreported[:40]:
        notes = [
            f"{n} [{why.summary(n.split()[0])}] runs: {'; '.join(why.history.get(n.split()[0], []))[:200]}"
            for n in v.misreported[:3]
        ]
        figures.detail(f"answer: {v.notebook_id}: {'; '.join(notes)}")
    unmodelled = [nb for nb in actual if nb not in modelled]
    figures.add("notebooks outside the model (second creates)", len(unmodelled))


def effects_of(calls: list[Any]) -> tuple[dict[str, list[str]], dict[str, set[str]]]:
    """Per command: the notebooks its creates made, and the ModelArts changes that took effect."""
    made: dict[str, list[str]] = {}
    effects: dict[str, set[str]] = {}
    for c in calls:
        if not c.command_id or c.status >= 300:
            continue
        if c.op == "create" and c.created_id:
            made.setdefault(root_id(c.command_id), []).append(c.created_id)
        if c.op in MUTATING:
            effects.setdefault(root_id(c.command_id), set()).add(c.op)
    return made, effects


def judge_plans(
    soak: Soak,
    sent: list[Any],
    outcomes: dict[str, model.Outcome],
    windows: model.Windows,
    actual: dict[str, model.Actual],
    calls: list[Any],
) -> tuple[list[model.Verdict], set[str]]:
    """Each plan's notebook (made by its first create) against the model; second creates must
    have been refused."""
    commands: dict[str, list[NotebookCommand]] = {}
    for s in sent:
        if isinstance(s.command, NotebookCommand):
            commands.setdefault(s.command.notebook_id, []).append(s.command)
    made, effects = effects_of(calls)
    by_id = {s.command.command_id: s.command for s in sent}
    verdicts: list[model.Verdict] = []
    modelled: set[str] = set()
    for plan in soak.plans:
        if not plan.creates:
            continue
        create = by_id[plan.creates[0]]
        assert isinstance(create, CreateCommand)
        outcome = outcomes.get(create.command_id, model.Outcome("lost")).kind
        for twin in plan.creates[1:]:
            if outcomes.get(twin, model.Outcome("lost")).kind == "ok":
                verdicts.append(model.Verdict(plan.name, 1, [], [f"{twin} create: told ok"]))
        if not made.get(create.command_id):
            if outcome == "ok":
                verdicts.append(
                    model.Verdict(
                        plan.name, 1, [], [f"{create.command_id} create: told ok, made none"]
                    )
                )
            continue
        notebook_id = made[create.command_id][0]
        modelled.add(notebook_id)
        start = model.created(create, windows.root.get(create.command_id, (0, 0)))
        verdicts.append(
            model.judge(
                notebook_id,
                start,
                commands.get(notebook_id, []),
                outcomes,
                windows,
                actual.get(notebook_id),
                outcome,
                effects,
            )
        )
    return verdicts, modelled


class Causes:
    """What happened to a command on its way: overtaken or overtaking in its group, a reply lost
    after ModelArts processed its call, its invocation killed while it ran."""

    def __init__(
        self,
        calls: list[Any],
        executions: list[Any],
        overtaken: set[str],
        outcomes: dict[str, model.Outcome],
    ) -> None:
        self.outcomes = outcomes
        self.overtaken = overtaken
        self.lost: Counter[str] = Counter()
        self.faulted: Counter[str] = Counter()
        for call in calls:
            if call.command_id and call.fault in ("reply_lost", "timeout_after"):
                self.lost[root_id(call.command_id)] += 1
            if call.command_id and call.status in (429, 500, 503):  # the emulator's faults
                self.faulted[root_id(call.command_id)] += 1
        self.killed: Counter[str] = Counter(
            root_id(e.command_id) for e in executions if e.error == "Killed"
        )
        self.twins: set[str] = set()
        self.history: dict[str, list[str]] = {}
        for e in executions:
            result = (
                e.error or f"{(e.result or {}).get('outcome')} {(e.result or {}).get('detail')}"
            )
            self.history.setdefault(root_id(e.command_id), []).append(
                f"{e.command_id.rpartition('.')[2]}@{e.start_ms // 1000 % 100000}: {result}"
            )

    def of(self, command_id: str) -> list[str]:
        found = ["second create of the name"] if command_id in self.twins else []
        if command_id in self.overtaken:
            found.append("out of order")
        if self.lost[command_id]:
            found.append("reply lost after processing")
        if self.killed[command_id]:
            found.append("killed while running")
        if self.faulted[command_id]:
            found.append("ModelArts 429/5xx while running")
        return found

    def tags(self, command_id: str) -> str:
        found = self.of(command_id)
        return f" [{', '.join(found)}]" if found else ""

    def told(self, command_id: str) -> str:
        return self.outcomes.get(command_id, model.Outcome("lost")).kind

    def summary(self, *command_ids: str) -> str:
        found = sorted({c for command_id in command_ids for c in self.of(command_id)})
        return " + ".join(found) or "nothing injected"


def explain_dlq(
    figures: SuiteFigures, w: World, soak: Soak, source: EventSource, poison: dict[str, str]
) -> None:
    dead = [("commands", m) for m in w.drain_queue(w.dlq_url)]
    dead += [("follow-ups", m) for m in w.drain_queue(w.followup_dlq_url)]
    figures.add("DLQ messages", len(dead))
    runs = source.dead_letter_runs
    outcomes = sum((Counter(run) for run in runs), Counter())
    outcomes.pop("read", None)
    figures.add(
        "dead-letter reader runs",
        len(runs),
        f"every {DEAD_LETTER_PERIOD_S // 60} simulated minutes and once at the end; "
        f"letters by outcome: {dict(sorted(outcomes.items())) or 'none'}",
    )
    unexplained = 0
    reports = soak.final_reports()
    for queue, message in dead:
        body = message["Body"]
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        command_id = data.get("command_id") if isinstance(data, dict) else None
        receives = [r for r in source.receives if r.message_id == message["MessageId"]]
        errors = [a.error for a in w.attempts if a.command_id == command_id and a.error]
        kinds = Counter((e or "").split(":")[0] for e in errors)
        if body == poison.get("poison.unreadable"):
            figures.detail(
                f"DLQ ({queue}): unreadable body from another producer, failed "
                f"{len(receives)} receives, no author to tell (logged as poison)"
            )
            continue
        root = root_id(command_id) if command_id else None
        told = [r.text for r in reports.get(root or "", [])]
        issued = soak.issued.get(root or "")
        what = f"{data.get('type')} {command_id}" if isinstance(data, dict) else "?"
        who = issued.user if issued else (data or {}).get("requested_by", {}).get("user_id")
        done = any(e.error is None for e in w.executions if e.command_id == command_id)
        if not told:
            unexplained += 1
        why = dict(kinds) or "none raised"
        if receives and receives[-1].fate == "killed before it ran":
            # The worker tells the author on the last receive; an invocation that died before
            # running this record on that receive leaves it to the dead-letter reader.
            why = f"{why}, last receive lost to an invocation that died before running it"
        if done and not any("failed after" in t for t in told):
            # It ran (its result is in the idempotency table), but the invocation that ran it
            # died before deleting it, on its last receive: a redrive replays the result.
            why = f"{why}, then completed but not deleted (invocation killed)"
        fates = "; ".join(f"{r.count}: {r.fate}" for r in receives)
        figures.detail(
            f"DLQ ({queue}): {what} from {who}: {len(receives)} receives ({fates}); "
            f"failures {why}; author {'told: ' + told[-1][:170] if told else 'NOT told'}"
        )
    figures.check(
        "DLQ messages whose author was not told",
        unexplained,
        note="each DLQ message is listed below",
    )
