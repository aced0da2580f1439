"""The soak's reference model: what the queued commands, applied in order per notebook, say each
notebook should be, and the checks that compare it with what happened.

The model knows nbkeeper's and ModelArts' rules, not the code: a stop applies to a running
notebook, a start to a stopped one, a prolong renews a running notebook's lease from the moment
it runs, a keep reserves (and renews a running notebook whose lease ends before the reservation),
an update applies to a stopped notebook when storage grows (or already has every requested
value), a confirmed stop-update-start ends
running with the change, a delete removes. Only the moments of execution come from the run (lease
arithmetic is "from when it ran"), as windows. A command that ended in the DLQ may or may not
have taken effect: the model forks there, and a notebook is right when one branch matches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from nbkeeper.commands import (
    CreateCommand,
    DeleteCommand,
    KeepCommand,
    NotebookCommand,
    ProlongCommand,
    StartCommand,
    StopCommand,
    UpdateCommand,
)
from nbkeeper.modelarts.schemas import HOUR_MS
from nbkeeper.timefmt import to_ms
from tests.reliability.simworld import Execution, Sent

LEASE_TOLERANCE_MS = 60_000
Window = tuple[int, int]


@dataclass(frozen=True)
class NbState:
    exists: bool
    status: str  # RUNNING | STOPPED (settled); meaningless when not exists
    owner: str
    flavor: str
    storage: int
    description: str
    run_length: Window  # what a start without hours runs for (ms)
    lease: Window | None  # when the lease ends (epoch ms), while running
    reservation: datetime | None


@dataclass
class Outcome:
    """What the author was finally told about one command."""

    kind: str  # ok | refused | dlq | lost
    texts: list[str] = field(default_factory=list)


@dataclass
class Windows:
    """When each command ran (root executions) and when its follow-ups ran, by root id."""

    root: dict[str, Window]
    follow: dict[str, Window]

    @classmethod
    def of(cls, executions: Iterable[Execution]) -> Windows:
        root: dict[str, Window] = {}
        follow: dict[str, Window] = {}
        for e in executions:
            base, sep, last = e.command_id.rpartition(".f")
            into, key = (follow, base) if sep and last.isdigit() else (root, e.command_id)
            lo, hi = into.get(key, (e.start_ms, e.end_ms))
            into[key] = (min(lo, e.start_ms), max(hi, e.end_ms))
        return cls(root, follow)


def _plus(window: Window, span: Window) -> Window:
    return (window[0] + span[0], window[1] + span[1])


def _union(a: Window | None, b: Window | None) -> Window | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), max(a[1], b[1]))


def created(command: CreateCommand, when: Window) -> NbState:
    hours = command.hours * HOUR_MS
    return NbState(
        exists=True,
        status="RUNNING",
        owner=command.requested_by.user_id,
        flavor=command.flavor,
        storage=command.storage_gb,
        description=command.description or "",
        run_length=(hours, hours),
        lease=_plus(when, (hours, hours)),
        reservation=None,
    )


def step(state: NbState, command: NotebookCommand, w: Windows) -> list[tuple[NbState, str]]:
    """The states `command` may leave, each with what its author should be told."""
    cid = command.command_id
    when = w.root.get(cid, (0, 0))
    if isinstance(command, DeleteCommand):
        return [(replace(state, exists=False), "ok")]
    if not state.exists:
        return [(state, "refused")]
    running = state.status == "RUNNING"
    if isinstance(command, StopCommand):
        return [(replace(state, status="STOPPED", lease=None), "ok" if running else "refused")]
    if isinstance(command, StartCommand):
        if running:
            return [(state, "refused")]
        run = (command.hours * HOUR_MS,) * 2 if command.hours else state.run_length
        return [(replace(state, status="RUNNING", run_length=run, lease=_plus(when, run)), "ok")]
    if isinstance(command, ProlongCommand):
        if not running:
            return [(state, "refused")]
        run = (command.hours * HOUR_MS,) * 2
        return [(replace(state, run_length=run, lease=_plus(when, run)), "ok")]
    if isinstance(command, KeepCommand):
        return [(s, "ok") for s in _keep(state, command, when)]
    if isinstance(command, UpdateCommand):
        return [_update(state, command, when, w.follow.get(cid, when))]
    raise AssertionError(f"no rule for {command.type}")


def _keep(state: NbState, command: KeepCommand, when: Window) -> list[NbState]:
    reserved = replace(state, reservation=command.until)
    if state.status != "RUNNING" or state.lease is None:
        return [reserved]
    until = to_ms(command.until)
    # The worker renews when the lease ends before the reservation: to max(until, now + 1 h).
    renewed_lease = (max(until, when[0] + HOUR_MS), max(until, when[1] + HOUR_MS))
    duration = (renewed_lease[0] - when[1], renewed_lease[1] - when[0])
    renewed = replace(reserved, lease=renewed_lease, run_length=duration)
    if state.lease[1] < until:
        return [renewed]
    if state.lease[0] >= until:
        return [reserved]
    return [reserved, renewed]  # too close to call from the windows: either is right


def _update(
    state: NbState, command: UpdateCommand, when: Window, later: Window
) -> tuple[NbState, str]:
    changes = command.changes
    # ModelArts refuses a storage size that does not grow (6331); the worker then reads the
    # notebook, and one that already shows every requested value counts as updated (it cannot
    # tell that from its own earlier call whose reply was lost: nbkeeper.worker.outcomes).
    shown = (
        changes.storage_new_size == state.storage
        and changes.flavor in (None, state.flavor)
        and changes.description in (None, state.description)
    )
    if (
        changes.storage_new_size is not None
        and changes.storage_new_size <= state.storage
        and not shown
    ):
        stopped = command.restart and state.status == "RUNNING"
        return (replace(state, status="STOPPED", lease=None) if stopped else state), "refused"
    if state.status != "STOPPED" and not command.restart:
        return state, "refused"
    changed = replace(
        state,
        flavor=changes.flavor or state.flavor,
        storage=changes.storage_new_size or state.storage,
        description=state.description if changes.description is None else changes.description,
    )
    if not command.restart:
        return changed, "ok"
    start = later if state.status == "RUNNING" else when
    return replace(changed, status="RUNNING", lease=_plus(start, state.run_length)), "ok"


@dataclass
class Actual:
    """A notebook as the emulator and the state table have it at the end."""

    status: str
    owner_record: str | None
    owner_tag: str | None
    flavor: str
    storage: int
    description: str
    deadline_ms: int | None
    reservation: datetime | None


def differences(model: NbState, actual: Actual | None) -> list[str]:
    if not model.exists:
        return [] if actual is None else [f"should be deleted, is {actual.status}"]
    if actual is None:
        return ["should exist, is gone"]
    diffs = []
    for name, want, got in (
        ("status", model.status, actual.status),
        ("owner record", model.owner, actual.owner_record),
        ("owner tag", model.owner, actual.owner_tag),
        ("flavor", model.flavor, actual.flavor),
        ("storage", model.storage, actual.storage),
        ("description", model.description, actual.description),
    ):
        if want != got:
            diffs.append(f"{name} {got!r}, expected {want!r}")
    if model.status == "RUNNING" and model.lease is not None and actual.deadline_ms is not None:
        lo, hi = model.lease[0] - LEASE_TOLERANCE_MS, model.lease[1] + LEASE_TOLERANCE_MS
        if not lo <= actual.deadline_ms <= hi:
            diffs.append(
                f"lease ends {(actual.deadline_ms - hi) / 60000:+.0f} min from the expected "
                f"window ({(actual.deadline_ms - model.lease[0]) / HOUR_MS:.2f} h after its start)"
            )
    want_res = int(model.reservation.timestamp()) if model.reservation else None
    got_res = int(actual.reservation.timestamp()) if actual.reservation else None
    if want_res != got_res:
        diffs.append(f"reservation until {got_res}, expected {want_res}")
    return diffs


@dataclass
class Verdict:
    """One notebook: the best-matching branch of the model and what differs from it."""

    notebook_id: str
    commands: int
    mismatches: list[str]
    misreported: list[str]
    trace: list[NotebookCommand] = field(default_factory=list)


def judge(
    notebook_id: str,
    start: NbState,
    commands: list[NotebookCommand],
    outcomes: dict[str, Outcome],
    windows: Windows,
    actual: Actual | None,
    create_outcome: str = "ok",
    effects: dict[str, set[str]] | None = None,
) -> Verdict:
    """Fold `commands` (send order) over `start`; forks at DLQ'd commands (and at a DLQ'd
    create, whose notebook may or may not exist). `effects`: per command, the ModelArts calls
    of its own that took effect (when its answer says it failed, the model follows them)."""
    effects = effects or {}
    branches: list[tuple[NbState, list[str]]] = [(start, [])]
    if create_outcome == "dlq":
        branches.append((replace(start, exists=False), []))
    for command in commands:
        outcome = outcomes.get(command.command_id, Outcome("lost")).kind
        grown: list[tuple[NbState, list[str]]] = []
        for state, wrong in branches:
            for after, expected in step(state, command, windows):
                if outcome == "dlq":
                    grown += [(after, wrong), (state, wrong)]
                elif outcome == "lost" or outcome == expected:
                    grown.append((after if outcome != "lost" else state, wrong))
                else:
                    note = f"{command.command_id} {command.type}: told {outcome}, model {expected}"
                    applied = after
                    if outcome != "ok":  # told it failed: go on from what did take effect
                        took = partial(state, command, effects.get(command.command_id, set()))
                        applied = took if took is not None else after
                    grown.append((applied, [*wrong, note]))
        branches = _dedupe(grown)[:64]
    best: tuple[list[str], list[str]] | None = None
    for state, wrong in branches:
        diffs = differences(state, actual)
        if best is None or len(diffs) + len(wrong) < len(best[0]) + len(best[1]):
            best = (diffs, wrong)
    assert best is not None
    return Verdict(notebook_id, len(commands), best[0], best[1], commands)


def partial(state: NbState, command: NotebookCommand, ops: set[str]) -> NbState | None:
    """The state after the calls of `command` that took effect (`ops`), for a command whose
    author was told it failed. None: use the full effect (lease arithmetic needs its window)."""
    if not ops or not state.exists:
        return state
    if isinstance(command, DeleteCommand):
        if "delete" in ops:
            return replace(state, exists=False)
        return replace(state, status="STOPPED", lease=None) if "stop" in ops else state
    if isinstance(command, UpdateCommand):
        changes = command.changes
        changed = state
        if "update" in ops:
            changed = replace(
                state,
                flavor=changes.flavor or state.flavor,
                storage=changes.storage_new_size or state.storage,
                description=state.description
                if changes.description is None
                else changes.description,
            )
        if "start" in ops:
            return None
        stopped = "stop" in ops or state.status == "STOPPED"
        return replace(changed, status="STOPPED", lease=None) if stopped else changed
    principal = {StopCommand: "stop", StartCommand: "start", ProlongCommand: "renew"}
    return None if principal.get(type(command)) in ops else state


def _dedupe(branches: list[tuple[NbState, list[str]]]) -> list[tuple[NbState, list[str]]]:
    seen: dict[NbState, list[str]] = {}
    for state, wrong in branches:
        if state not in seen or len(wrong) < len(seen[state]):
            seen[state] = wrong
    return sorted(seen.items(), key=lambda item: len(item[1]))


# ---------------------------------------------------------------- order


def out_of_order(sent: list[Sent], executions: Iterable[Execution]) -> list[tuple[str, str, str]]:
    """Commands that completed before a command sent earlier in the same FIFO group:
    (the command, the earlier one it overtook, a description)."""
    done: dict[str, int] = {}
    for e in executions:
        if e.error is None and e.command_id not in done:
            done[e.command_id] = e.end_ms
    groups: dict[str, list[Sent]] = {}
    for s in sent:
        groups.setdefault(s.group, []).append(s)
    found = []
    for group, items in groups.items():
        latest: tuple[int, Sent] | None = None
        for s in items:
            finished = done.get(s.command.command_id)
            if finished is None:
                continue
            if latest is not None and finished < latest[0]:
                earlier = latest[1].command
                found.append(
                    (
                        s.command.command_id,
                        earlier.command_id,
                        f"{s.command.type} {s.command.command_id} completed "
                        f"{(latest[0] - finished) / 1000:.0f} s before {earlier.type} "
                        f"{earlier.command_id}, sent {(s.at_ms - latest[1].at_ms) / 1000:.0f} s "
                        f"earlier in group {group}",
                    )
                )
            if latest is None or finished > latest[0]:
                latest = (finished, s)
    return found


def summary_of(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items())
