"""The usage model of the savings benchmark: who uses notebooks, when, and how they behave.

A fleet of notebooks over one month (30 days from Monday 27 April 2026, 00:00 UTC), drawn from a
seed: the same seed gives the same month, which every strategy then lives through. Times are
minutes since the month's start on a 5-minute grid (the keeper's cadence).

A notebook's trace holds what its people do, independently of any tool:

- `sessions`: someone works in the notebook (browser open, cells run): Jupyter activity;
- `runs`: a kernel is busy with a long computation (training), no browser needed;
- `holds`: the notebook must stay up though nobody touches it (a demo warmed up in the morning
  for its afternoon slot); its owner reserves it for that time;
- traits: how long a lease its owner asks for, how tidy they are (do they stop the notebook when
  they leave), how they react to a warning, their time zone and holidays, the flavor.

Every constant that shapes the month is here, and `describe_model()` writes them out next to
the figures, so the assumptions are never separate from what they produced.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

T = TypeVar("T")

MONTH_START = datetime(2026, 4, 27, tzinfo=UTC)  # a Monday
DAYS = 30
TICK = 5  # minutes: the keeper runs every 5 minutes (EventBridge schedule default)
HORIZON = DAYS * 24 * 60

# Where people are, and their public holidays in the month (they do not work on them).
ZONES: dict[str, float] = {"Europe/Berlin": 0.60, "Asia/Shanghai": 0.25, "America/New_York": 0.15}
HOLIDAYS: dict[str, frozenset[date]] = {
    "Europe/Berlin": frozenset({date(2026, 5, 1), date(2026, 5, 14), date(2026, 5, 25)}),
    "Asia/Shanghai": frozenset(date(2026, 5, d) for d in range(1, 6)),
    "America/New_York": frozenset({date(2026, 5, 25)}),
}

# Flavors and their prices per hour: merged over the shipped policy file (which has none),
# the prices of its documented example (docs/lease-keeper.md) plus one for the 8-vCPU flavor.
CURRENCY = "EUR"
PRICES: dict[str, float] = {
    "modelarts.vm.gpu.t4": 1.2,
    "modelarts.vm.gpu.v100": 3.5,
    "modelarts.vm.cpu.8u": 0.8,
}
DEFAULT_PRICE = 0.2  # modelarts.vm.cpu.2u and anything else

Kind = Literal["office", "researcher", "forgetful", "sporadic", "demo"]
# How people react to a warning: press Keep when they will be back within the Keep time
# ("keeper"), ignore every warning ("ignorer"), or also press Stop now when they will not ("tidy").
Reaction = Literal["keeper", "ignorer", "tidy"]
REACTIONS: dict[Reaction, float] = {"keeper": 0.5, "ignorer": 0.3, "tidy": 0.2}
# Chance that the owner reads a warning within its lead time: during their own working hours
# (at lunch, in a meeting, with Slack on the phone) or outside them (evening, weekend, holiday).
SEES_WARNING_AT_WORK = 0.8
SEES_WARNING_OFF_WORK = 0.25


@dataclass(frozen=True)
class KindSpec:
    """How one kind of person uses a notebook."""

    share: float  # of the fleet's notebooks
    text: str
    flavors: dict[str, float]
    lease_hours: dict[int, float]  # the lease they ask for when they start the notebook
    tidy: tuple[float, float]  # chance to stop the notebook by hand when leaving (range)


KINDS: dict[Kind, KindSpec] = {
    "office": KindSpec(
        0.40,
        "9-to-5 interactive: works in the notebook on 85% of their working days, arrives "
        "08:30 ± 30 min and leaves 17:30 ± 45 min (local), a lunch of 30-75 min from about "
        "12:00, 0-3 meetings of 30-90 min, 0-3 short breaks of 10-25 min",
        {"modelarts.vm.cpu.2u": 0.5, "modelarts.vm.cpu.8u": 0.3, "modelarts.vm.gpu.t4": 0.2},
        {2: 0.2, 4: 0.3, 8: 0.3, 24: 0.1, 72: 0.1},
        (0.3, 0.9),
    ),
    "researcher": KindSpec(
        0.20,
        "office days (90% of working days) plus, on 45% of them, a training run started in "
        "the afternoon: a busy kernel for a log-normal time (median 5 h, σ 0.9, 0.5-60 h), "
        "no browser needed; half the runs print progress (Jupyter activity), half are silent; "
        "the researcher's own estimate of the run is off by a factor e^N(0, 0.35)",
        {"modelarts.vm.gpu.v100": 0.6, "modelarts.vm.gpu.t4": 0.4},
        {4: 0.2, 8: 0.3, 24: 0.3, 72: 0.2},
        (0.4, 0.8),
    ),
    "forgetful": KindSpec(
        0.10,
        "office days on a GPU, but rarely stops the notebook when leaving, never on a Friday "
        "or before a holiday: the notebook stays up over the weekend",
        {"modelarts.vm.gpu.t4": 0.5, "modelarts.vm.gpu.v100": 0.5},
        {8: 0.3, 24: 0.3, 72: 0.4},
        (0.0, 0.2),
    ),
    "sporadic": KindSpec(
        0.28,
        "0-3 days a week (weekends and holidays less likely), one session of 30-180 min "
        "starting between 08:00 and 21:00 local, a 15-45 min break in it one time in three",
        {"modelarts.vm.cpu.2u": 0.7, "modelarts.vm.gpu.t4": 0.3},
        {1: 0.3, 2: 0.4, 4: 0.3},
        (0.3, 0.7),
    ),
    "demo": KindSpec(
        0.02,
        "a shared demo notebook: on 2-3 working days a week its owner warms it up at about "
        "09:00 (20-40 min of work), reserves it and leaves it up untouched until the 1 h demo "
        "(10:00, 11:00, 14:00, 15:00 or 16:00 local)",
        {"modelarts.vm.gpu.t4": 1.0},
        {8: 1.0},
        (0.6, 0.6),
    ),
}


@dataclass(frozen=True)
class Session:
    """Someone works in the notebook during [start, end); `stop_after`: they stop it by hand
    when they leave (unless a run or a hold still needs it)."""

    start: int
    end: int
    stop_after: bool = False


@dataclass(frozen=True)
class Run:
    """A busy kernel during [start, end). `expected_end` is what its owner believes;
    `chatty` runs print progress, which Jupyter counts as activity."""

    start: int
    end: int
    expected_end: int
    chatty: bool = False


@dataclass(frozen=True)
class Hold:
    """The notebook must stay up, untouched, during [start, end) (a demo's warm-up to its slot);
    its owner reserves it until `reserve_until`."""

    start: int
    end: int
    reserve_until: int


@dataclass(frozen=True)
class Trace:
    """One notebook's month: its people's behaviour, independent of any tool."""

    notebook_id: str
    owner: str
    kind: Kind
    zone: str
    flavor: str
    lease_hours: int
    reaction: Reaction
    sessions: tuple[Session, ...]
    runs: tuple[Run, ...] = ()
    holds: tuple[Hold, ...] = ()


# ---------------------------------------------------------------------- calendar helpers


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def at(day: date, minute_of_day: float, zone: str) -> int:
    """Minutes since the month's start of local `day` + `minute_of_day`, on the 5-min grid."""
    whole = int(minute_of_day)
    local = datetime(day.year, day.month, day.day, tzinfo=_zone(zone)) + timedelta(minutes=whole)
    minutes = (local.astimezone(UTC) - MONTH_START).total_seconds() / 60
    return round(minutes / TICK) * TICK


def local_days(zone: str) -> list[date]:
    """Local dates that overlap the month in `zone`."""
    first = MONTH_START.astimezone(_zone(zone)).date()
    last = (MONTH_START + timedelta(minutes=HORIZON - 1)).astimezone(_zone(zone)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def is_workday(day: date, zone: str) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS.get(zone, frozenset())


def is_local_work_time(minute: int, zone: str) -> bool:
    """A working day in `zone`, between 08:00 and 19:00 local: when people read Slack."""
    local = (MONTH_START + timedelta(minutes=minute)).astimezone(_zone(zone))
    return is_workday(local.date(), zone) and 8 <= local.hour < 19


def _pick(rng: random.Random, weights: dict[T, float]) -> T:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def _clip(sessions: list[Session]) -> list[Session]:
    """Sessions within the month, at least one tick long."""
    kept = []
    for s in sessions:
        start, end = max(0, s.start), min(HORIZON, s.end)
        if end - start >= TICK:
            kept.append(Session(start, end, s.stop_after))
    return kept


# ---------------------------------------------------------------------- one working day


def _office_day(rng: random.Random, day: date, zone: str, stop_after: bool) -> list[Session]:
    """Arrive, leave, and the gaps between (lunch, meetings, short breaks) on local `day`."""
    arrive = min(max(8.5 * 60 + rng.gauss(0, 30), 7 * 60), 10.5 * 60)
    leave = min(max(17.5 * 60 + rng.gauss(0, 45), arrive + 4 * 60), 21 * 60)
    lunch_start = 12 * 60 + rng.uniform(0, 45)
    gaps: list[tuple[float, float]] = [(lunch_start, lunch_start + rng.uniform(30, 75))]
    meetings = rng.choices([0, 1, 2, 3], weights=[0.3, 0.35, 0.25, 0.1])[0]
    breaks = rng.choices([0, 1, 2, 3], weights=[0.3, 0.35, 0.25, 0.1])[0]
    durations: list[float] = [
        rng.choices([30, 60, 90], weights=[0.4, 0.4, 0.2])[0] for _ in range(meetings)
    ]
    durations += [rng.uniform(10, 25) for _ in range(breaks)]
    for length in durations:
        start = rng.uniform(arrive + 15, max(arrive + 15, leave - length - 15))
        if all(start + length <= a or start >= b for a, b in gaps):
            gaps.append((start, start + length))
    sessions: list[Session] = []
    cursor = arrive
    for a, b in sorted(gaps):
        if a > cursor:
            sessions.append(Session(at(day, cursor, zone), at(day, a, zone)))
        cursor = max(cursor, b)
    sessions.append(Session(at(day, cursor, zone), at(day, leave, zone), stop_after))
    return [s for s in sessions if s.end - s.start >= TICK]


def _next_day_off(day: date, zone: str) -> bool:
    return not is_workday(day + timedelta(days=1), zone)


# ---------------------------------------------------------------------- kinds


def _office_like(
    rng: random.Random, zone: str, kind: Kind, tidy: float, use: float
) -> list[Session]:
    sessions: list[Session] = []
    for day in local_days(zone):
        if not is_workday(day, zone) or rng.random() >= use:
            continue
        p_stop = 0.0 if kind == "forgetful" and _next_day_off(day, zone) else tidy
        sessions += _office_day(rng, day, zone, rng.random() < p_stop)
    return sessions


def _runs(rng: random.Random, sessions: list[Session], zone: str) -> list[Run]:
    """Training runs started in the afternoon of 45% of the researcher's working days."""
    runs: list[Run] = []
    days: dict[date, list[Session]] = {}
    for s in sessions:
        day = (MONTH_START + timedelta(minutes=s.start)).astimezone(_zone(zone)).date()
        days.setdefault(day, []).append(s)
    for day_sessions in days.values():
        if rng.random() >= 0.45:
            continue
        afternoon = [s for s in day_sessions if s.end - s.start >= 30] or day_sessions
        session = afternoon[-1]
        start = session.start + TICK * rng.randrange(max(1, (session.end - session.start) // TICK))
        if runs and runs[-1].end > start:
            continue  # one run at a time
        hours = min(max(math.exp(math.log(5) + rng.gauss(0, 0.9)), 0.5), 60)
        end = start + round(hours * 60 / TICK) * TICK
        believed = hours * math.exp(rng.gauss(0, 0.35))
        expected = start + round(believed * 60 / TICK) * TICK
        runs.append(Run(start, min(end, HORIZON), expected, chatty=rng.random() < 0.5))
    return runs


def _sporadic(rng: random.Random, zone: str, tidy: float) -> list[Session]:
    sessions: list[Session] = []
    days = local_days(zone)
    for week in range(0, len(days), 7):
        block = days[week : week + 7]
        count = rng.choices([0, 1, 2, 3], weights=[0.15, 0.4, 0.3, 0.15])[0]
        weights = [1.0 if is_workday(d, zone) else 0.3 for d in block]
        for day in sorted(set(rng.choices(block, weights=weights, k=count))):
            start = rng.uniform(8 * 60, 21 * 60)
            length = rng.uniform(30, 180)
            stop = rng.random() < tidy
            if rng.random() < 1 / 3 and length >= 60:
                pause_at = start + rng.uniform(20, length - 20)
                pause = rng.uniform(15, 45)
                sessions.append(Session(at(day, start, zone), at(day, pause_at, zone)))
                sessions.append(
                    Session(at(day, pause_at + pause, zone), at(day, start + length, zone), stop)
                )
            else:
                sessions.append(Session(at(day, start, zone), at(day, start + length, zone), stop))
    return sessions


def _demo(rng: random.Random, zone: str, tidy: float) -> tuple[list[Session], list[Hold]]:
    sessions: list[Session] = []
    holds: list[Hold] = []
    days = local_days(zone)
    for week in range(0, len(days), 7):
        workdays = [d for d in days[week : week + 7] if is_workday(d, zone)]
        count = min(len(workdays), rng.choice([2, 3]))
        for day in sorted(rng.sample(workdays, count)):
            prep = 8.75 * 60 + rng.uniform(0, 30)
            prep_end = prep + rng.uniform(20, 40)
            slots = [h * 60 for h in (10, 11, 14, 15, 16) if h * 60 >= prep_end + 30]
            slot = rng.choice(slots)
            stop = rng.random() < tidy
            sessions.append(Session(at(day, prep, zone), at(day, prep_end, zone)))
            sessions.append(Session(at(day, slot, zone), at(day, slot + 60, zone), stop))
            hold = Hold(at(day, prep_end, zone), at(day, slot, zone), at(day, slot + 60, zone))
            if hold.end > hold.start:
                holds.append(hold)
    return sessions, holds


def _counts(notebooks: int) -> dict[Kind, int]:
    """Notebooks per kind (largest remainder, at least one demo notebook)."""
    raw = {kind: spec.share * notebooks for kind, spec in KINDS.items()}
    counts = {kind: int(value) for kind, value in raw.items()}
    counts["demo"] = max(1, counts["demo"])
    rest = sorted(raw, key=lambda k: raw[k] - int(raw[k]), reverse=True)
    for kind in rest[: max(0, notebooks - sum(counts.values()))]:
        counts[kind] += 1
    return counts


def make_fleet(
    seed: int, notebooks: int = 300, zones: dict[str, float] | None = None
) -> list[Trace]:
    """The month's traces for a fleet of `notebooks`, entirely determined by `seed` (and
    `zones`, where people live: `ZONES` unless given)."""
    rng = random.Random(seed)
    traces: list[Trace] = []
    for kind, count in _counts(notebooks).items():
        spec = KINDS[kind]
        for _ in range(count):
            number = len(traces)
            zone = _pick(rng, zones or ZONES)
            tidy = rng.uniform(*spec.tidy)
            runs: list[Run] = []
            holds: list[Hold] = []
            if kind == "sporadic":
                sessions = _sporadic(rng, zone, tidy)
            elif kind == "demo":
                sessions, holds = _demo(rng, zone, tidy)
            else:
                use = {"office": 0.85, "researcher": 0.9, "forgetful": 0.85}[kind]
                sessions = _office_like(rng, zone, kind, tidy, use)
                if kind == "researcher":
                    runs = _runs(rng, sessions, zone)
            traces.append(
                Trace(
                    notebook_id=f"nb-{number:03d}",
                    owner=f"{kind}-{number:03d}",
                    kind=kind,
                    zone=zone,
                    flavor=_pick(rng, spec.flavors),
                    lease_hours=_pick(rng, spec.lease_hours),
                    reaction=_pick(rng, REACTIONS),
                    sessions=tuple(_clip(sessions)),
                    runs=tuple(r for r in runs if r.start < HORIZON),
                    holds=tuple(h for h in holds if h.start >= 0 and h.end <= HORIZON),
                )
            )
    return traces


def describe_model(notebooks: Sequence[Trace]) -> str:
    """The usage model as Markdown: kinds, zones, holidays, prices, behaviour."""
    by_kind: dict[str, int] = {}
    for trace in notebooks:
        by_kind[trace.kind] = by_kind.get(trace.kind, 0) + 1
    lines = [
        f"- Month: {DAYS} days from {MONTH_START:%a %d %b %Y %H:%M} UTC, on a {TICK}-minute grid "
        "(the keeper's cadence). One notebook per person; the demo notebooks are shared, "
        "each kept by one owner.",
        "- People (notebooks, kind, behaviour; tidy = chance to stop the notebook by hand "
        "when leaving, drawn per person in the range):",
    ]
    for kind, spec in KINDS.items():
        flavors = ", ".join(
            f"{f.removeprefix('modelarts.vm.')} {w:.0%}" for f, w in spec.flavors.items()
        )
        leases = ", ".join(f"{h} h {w:.0%}" for h, w in spec.lease_hours.items())
        low, high = spec.tidy
        tidy = f"{low:.0%}" if low == high else f"{low:.0%}-{high:.0%}"
        lines.append(
            f"  - {by_kind.get(kind, 0)} **{kind}**: {spec.text}. Flavors: {flavors}. "
            f"Lease asked at start: {leases}. Tidy {tidy}."
        )
    zones = ", ".join(f"{z} {w:.0%}" for z, w in ZONES.items())
    holidays = "; ".join(
        f"{z}: {', '.join(d.strftime('%d %b') for d in sorted(days))}"
        for z, days in HOLIDAYS.items()
    )
    prices = ", ".join(f"{f.removeprefix('modelarts.vm.')} {p:g}" for f, p in PRICES.items())
    reactions = ", ".join(f"{r} {w:.0%}" for r, w in REACTIONS.items())
    lines += [
        f"- Time zones: {zones}. Public holidays (nobody works): {holidays}.",
        f"- Prices per hour ({CURRENCY}), merged over the shipped policy file as `prices`: "
        f"{prices}, anything else (cpu.2u) {DEFAULT_PRICE:g}.",
        f"- Warnings (nbkeeper only): the owner reads one within its lead time with chance "
        f"{SEES_WARNING_AT_WORK:.0%} during their local working hours, "
        f"{SEES_WARNING_OFF_WORK:.0%} outside them; then, by temperament ({reactions}): a "
        "keeper presses **Keep** when they will be back within the Keep time, an ignorer does "
        "nothing, a tidy person also presses **Stop now** when they will not be back; the "
        "click comes at a uniformly random moment within the lead time.",
    ]
    return "\n".join(lines)
