"""What to do with one notebook now: a pure function of its state, activity, reservation,
pending warning, the policy and the time. No I/O; `now` is an argument.

Rules, in order:
1. Only RUNNING notebooks are considered. Transient states (and any other) are left alone, and
   nothing is ever started or deleted. A notebook being saved as an image (SNAPSHOTTING) is
   neither stopped nor prolonged: the save ends by itself, and a pending warning waits for it.
2. A notebook is *kept* when it is active (a busy kernel, or Jupyter activity within the idle
   threshold that applies now: `idle_threshold_minutes` in working hours, the shorter
   `off_hours_idle_minutes` outside them and on holidays), reserved (a reservation not yet ended) or opted out by tag. A kept notebook whose
   lease ends within `renew_before` is prolonged by `extend_by`, capped by the 72 h maximum a
   single renewal may ask for, the runtime cap (`max_runtime_hours` since the Jupyter Server
   started), and (when only the reservation keeps it) the end of the reservation. A pending idle/off-hours warning is cleared.
3. When the runtime cap leaves no room for another hour (ModelArts' minimum lease), the owner is
   warned once (`max_runtime`) and the lease is left to run out: the keeper itself never stops a
   kept notebook.
4. When activity cannot be read from Jupyter, nothing is warned or stopped.
5. When nbkeeper's state (reservations, warnings) cannot be read, nothing is warned or stopped,
   and since a reservation nobody can see may keep any notebook, a lease that ends within
   `renew_before` is prolonged all the same: a kept notebook as in rule 2, any other by the
   shortest renewal that outlasts `renew_before` (ModelArts' 1 h minimum, else `extend_by`),
   within the runtime cap. Once the state is back the other rules apply again.
6. Otherwise the notebook is idle beyond the threshold. Without a pending warning it is warned
   (`off_hours` outside working hours or on a holiday, else `idle`); once the warning's lead time
   has passed it is stopped. A warning counts only for the run it was sent in (see
   `warned_in_an_earlier_run`); an older one is replaced by a fresh warning, never acted on.

A lease without an end (`enable: false`, no positive `duration`, no lease at all) means "no
auto-stop": there is nothing to prolong and no deadline, never one in the past (`lease_end`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from nbkeeper.keeper.activity import Activity, ActivityResult, UnknownActivity
from nbkeeper.keeper.policy import Policy
from nbkeeper.modelarts.schemas import LEASE_MAX_MS, LEASE_MIN_MS, Notebook, NotebookStatus
from nbkeeper.records import PendingWarning, Reservation, WarningKind
from nbkeeper.timefmt import from_ms, human, local_time, to_ms

STOP_KINDS: frozenset[WarningKind] = frozenset({"idle", "off_hours"})
# A due stop warning is acted on at the next pass (minutes). One still pending this long after
# its stop time belongs to an earlier run, or to a stop that kept failing: warn again.
STALE_WARNING = timedelta(hours=1)


class Action(StrEnum):
    NOOP = "noop"
    PROLONG = "prolong"
    WARN = "warn"
    STOP = "stop"


@dataclass(frozen=True)
class Decision:
    """The keeper's verdict on one notebook, with a reason a person can read."""

    action: Action
    reason: str
    # prolong: the lease's new total duration (ms, counted from the lease's create_at, as the
    # service reports it) and what renew_lease is asked for ("run this long from now").
    duration_ms: int | None = None
    extend_ms: int | None = None
    new_deadline: datetime | None = None
    # warn: what kind of warning, and when the stop may happen.
    warning_kind: WarningKind | None = None
    stop_after: datetime | None = None
    # A pending warning no longer applies (the notebook became active or reserved).
    clear_warning: bool = False
    # stop: lease hours that would otherwise have run (what stopping saves).
    hours_saved: float = 0.0
    # warn: why, without the when (the owner's message says when once).
    cause: str | None = None


def lease_end(notebook: Notebook) -> datetime | None:
    """When the lease stops the notebook, or None when it never will: no lease, auto-stop off
    (`enable: false`), no positive `duration` (Terraform sends -1 for "no auto-stop") or no
    `create_at` to count it from."""
    lease = notebook.lease
    if lease is None or lease.enable is False or lease.create_at is None:
        return None
    if lease.duration is None or lease.duration <= 0:
        return None
    return from_ms(lease.create_at + lease.duration)


def warned_in_an_earlier_run(
    warning: PendingWarning, notebook: Notebook, activity: Activity, now: datetime
) -> bool:
    """Whether a pending stop warning was sent before the notebook's current run began.

    The run began at the Jupyter Server's start when Jupyter says so. Whether it does or not,
    a lease changed after the warning (a start sets a new lease; so does a renewal by hand)
    means the owner acted since; and a warning overdue by more than `STALE_WARNING` is from an
    earlier run or a stop that kept failing. Each is answered with a fresh warning, not a stop.
    """
    if activity.started is not None and warning.warned_at < activity.started:
        return True
    changed = notebook.lease.update_at if notebook.lease is not None else None
    if changed is not None and from_ms(changed) > warning.warned_at:
        return True
    return now - warning.stop_after > STALE_WARNING


def is_active(activity: ActivityResult, policy: Policy, now: datetime) -> bool:
    """A busy kernel, or activity within the idle threshold that applies at `now` (the shorter
    off-hours one outside working hours and on holidays; lease fallback included)."""
    if isinstance(activity, UnknownActivity):
        return False
    if activity.busy_kernels > 0:
        return True
    return (
        activity.last_activity is not None
        and now - activity.last_activity < policy.idle_threshold_at(now)
    )


def _activity_text(activity: Activity, now: datetime) -> str:
    if activity.busy_kernels:
        plural = "s" if activity.busy_kernels > 1 else ""
        return f"{activity.busy_kernels} busy kernel{plural}"
    if activity.last_activity is None:
        return "no recorded activity"
    ago = human(now - activity.last_activity)
    if activity.source == "lease":
        return f"lease changed {ago} ago; {activity.note or 'Jupyter not readable'}"
    return f"last activity {ago} ago"


def decide(
    notebook: Notebook,
    activity: ActivityResult,
    reservation: Reservation | None,
    warning: PendingWarning | None,
    policy: Policy,
    now: datetime,
    *,
    state: bool = True,
) -> Decision:
    """Decide what to do with `notebook` at `now` (see the module docstring for the rules);
    `state` False: nbkeeper's state could not be read (rule 5)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if notebook.status is not NotebookStatus.RUNNING:
        kind = "transient state" if notebook.status.is_transient else "not running"
        return Decision(Action.NOOP, f"{notebook.status.value}: {kind}, left alone")
    if state:
        return _decide_running(notebook, activity, reservation, warning, policy, now)
    decision = _decide_running(notebook, activity, None, None, policy, now, bridge=True)
    if decision.action in (Action.WARN, Action.STOP):
        verb = "warned" if decision.action is Action.WARN else "stopped"
        return Decision(
            Action.NOOP, f"not {verb}: nbkeeper's state is not readable ({decision.reason})"
        )
    return decision


def _decide_running(
    notebook: Notebook,
    activity: ActivityResult,
    reservation: Reservation | None,
    warning: PendingWarning | None,
    policy: Policy,
    now: datetime,
    *,
    bridge: bool = False,
) -> Decision:
    reserved = reservation is not None and reservation.active(now)
    opted_out = policy.opt_out_tag.matches(notebook.tag(policy.opt_out_tag.key))
    active = is_active(activity, policy, now)

    if active or reserved or opted_out or bridge:
        return _keep(
            notebook,
            activity,
            reservation if reserved else None,
            opted_out,
            warning,
            policy,
            now,
            bridge=bridge and not (active or opted_out),
        )

    if isinstance(activity, UnknownActivity):
        return Decision(Action.NOOP, f"activity unknown ({activity.reason}); never stopped")
    if not activity.from_jupyter:
        return Decision(
            Action.NOOP, f"{_activity_text(activity, now)}; not stopped on the lease alone"
        )
    return _idle(notebook, activity, warning, policy, now)


def _keep(
    notebook: Notebook,
    activity: ActivityResult,
    reservation: Reservation | None,
    opted_out: bool,
    warning: PendingWarning | None,
    policy: Policy,
    now: datetime,
    *,
    bridge: bool = False,
) -> Decision:
    """Prolong a kept notebook whose lease ends soon; `bridge`: one that nbkeeper's unreadable
    state may keep (rule 5)."""
    active = is_active(activity, policy, now)
    if bridge:
        why = "nbkeeper's state is not readable (a reservation may keep it)"
    elif active and isinstance(activity, Activity):
        why = f"active ({_activity_text(activity, now)})"
    elif reservation is not None:
        why = (
            f"reserved until {local_time(reservation.until, policy.zone)} by {reservation.by_user}"
        )
    else:
        why = f"opted out by tag {policy.opt_out_tag.key}={policy.opt_out_tag.value}"
    clear = warning is not None and warning.kind in STOP_KINDS
    deadline = lease_end(notebook)
    if deadline is None:
        return Decision(Action.NOOP, f"{why}; the lease does not auto-stop", clear_warning=clear)
    remaining = deadline - now
    if remaining > policy.renew_before:
        return Decision(
            Action.NOOP,
            f"{why}; lease ends in {human(remaining)} ({local_time(deadline, policy.zone)})",
            clear_warning=clear,
        )

    kept_anyway = active or opted_out
    if reservation is not None and not kept_anyway and reservation.until <= deadline:
        # Only the reservation keeps it, and the lease already outlives it: any renewal (at
        # least ModelArts' 1 h) would run past the reservation's end.
        return Decision(
            Action.NOOP,
            f"{why}; the lease ends at {local_time(deadline, policy.zone)}, after the reservation",
            clear_warning=clear,
        )
    if bridge:
        want, capped_by = _bridge(policy), " (the shortest renewal that outlasts renew_before)"
    else:
        want, capped_by = _wanted_extension(reservation, kept_anyway, policy, now)
    running_since = _running_since(notebook, activity)
    if policy.max_runtime is not None and running_since is not None:
        room = running_since + policy.max_runtime - now
        if room < timedelta(milliseconds=LEASE_MIN_MS):
            return _runtime_cap_reached(why, warning, deadline, policy, now, clear)
        if room < want:
            want, capped_by = room, f" (runtime cap {policy.max_runtime_hours:g} h)"

    # ModelArts accepts no renewal shorter than 1 h: a reservation ending sooner still gets 1 h
    # and is then stopped through the idle/off-hours warning once it has ended.
    extend_ms = max(LEASE_MIN_MS, int(want.total_seconds() * 1000))
    extend_ms = min(extend_ms, LEASE_MAX_MS)
    new_deadline = now + timedelta(milliseconds=extend_ms)
    if new_deadline <= deadline:
        return Decision(
            Action.NOOP,
            f"{why}; lease already runs to {local_time(deadline, policy.zone)}",
            clear_warning=clear,
        )
    create_at = notebook.lease.create_at if notebook.lease is not None else None
    duration_ms = extend_ms + (to_ms(now) - create_at if create_at is not None else 0)
    return Decision(
        Action.PROLONG,
        f"{why} and the lease ends in {human(remaining)}: prolonged "
        f"{human(timedelta(milliseconds=extend_ms))}{capped_by}, to {local_time(new_deadline, policy.zone)}",
        duration_ms=duration_ms,
        extend_ms=extend_ms,
        new_deadline=new_deadline,
        clear_warning=clear,
    )


def _wanted_extension(
    reservation: Reservation | None, kept_anyway: bool, policy: Policy, now: datetime
) -> tuple[timedelta, str]:
    """extend_by, but only to the reservation's end when nothing else keeps the notebook."""
    want = timedelta(milliseconds=policy.extend_by_ms)
    if reservation is not None and not kept_anyway and reservation.until - now < want:
        return reservation.until - now, " (to the end of the reservation)"
    if want > timedelta(milliseconds=LEASE_MAX_MS):
        return timedelta(milliseconds=LEASE_MAX_MS), " (72 h lease maximum)"
    return want, ""


def _bridge(policy: Policy) -> timedelta:
    """Without state: ModelArts' 1 h minimum renewal, or `extend_by` when `renew_before` is an
    hour or more (a 1 h lease would be due again at the next pass)."""
    shortest = timedelta(milliseconds=LEASE_MIN_MS)
    if policy.renew_before < shortest:
        return shortest
    return min(timedelta(milliseconds=policy.extend_by_ms), timedelta(milliseconds=LEASE_MAX_MS))


def _running_since(notebook: Notebook, activity: ActivityResult) -> datetime | None:
    """When the current run began: the Jupyter Server's start, else the lease's create_at.

    The lease's create_at is the notebook's creation (ModelArts keeps it across restarts), so it
    is the conservative fallback: the cap is reached no later than with the true start.
    """
    if isinstance(activity, Activity) and activity.from_jupyter and activity.started:
        return activity.started
    if notebook.lease is not None and notebook.lease.create_at is not None:
        return from_ms(notebook.lease.create_at)
    return from_ms(notebook.create_at) if notebook.create_at is not None else None


def _runtime_cap_reached(
    why: str,
    warning: PendingWarning | None,
    deadline: datetime,
    policy: Policy,
    now: datetime,
    clear: bool,
) -> Decision:
    cause = f"{why}, but the runtime cap of {policy.max_runtime_hours:g} h is reached"
    reason = f"{cause}: not prolonged, the lease ends at {local_time(deadline, policy.zone)}"
    if warning is not None and warning.kind == "max_runtime":
        return Decision(Action.NOOP, reason)
    # Replaces any idle warning: this one tells the owner the notebook will stop regardless.
    return Decision(
        Action.WARN,
        reason,
        warning_kind="max_runtime",
        stop_after=max(deadline, now),
        cause=cause,
    )


def _idle(
    notebook: Notebook,
    activity: Activity,
    warning: PendingWarning | None,
    policy: Policy,
    now: datetime,
) -> Decision:
    working = policy.is_working_time(now)
    if working:
        kind: WarningKind = "idle"
        why = f"idle ({_activity_text(activity, now)})"
    else:
        kind = "off_hours"
        where = "a holiday" if policy.is_holiday(now) else "outside working hours"
        why = f"{where} and idle ({_activity_text(activity, now)})"
    pending = warning if warning is not None and warning.kind in STOP_KINDS else None
    if pending is not None and warned_in_an_earlier_run(pending, notebook, activity, now):
        pending = None  # it told nobody about this run: warn again
    deadline = lease_end(notebook)
    if pending is None:
        stop_after = now + policy.warning_lead
        stops_at = stop_after
        if deadline is not None:
            stops_at = min(stop_after, max(now, deadline))  # the lease ends first
        return Decision(
            Action.WARN,
            f"{why}: will stop at {local_time(stops_at, policy.zone)} unless used or reserved",
            warning_kind=kind,
            stop_after=stop_after,
            cause=why,
        )
    if now < pending.stop_after:
        return Decision(
            Action.NOOP,
            f"{why}: warned at {local_time(pending.warned_at, policy.zone)}, "
            f"stops at {local_time(pending.stop_after, policy.zone)}",
        )
    saved = 0.0
    if deadline is not None:
        saved = max(0.0, (deadline - now).total_seconds() / 3600)
    return Decision(
        Action.STOP,
        f"{why}: warned at {local_time(pending.warned_at, policy.zone)} and still idle",
        hours_saved=saved,
    )
