"""Abuse beyond the webhook: queue bodies through the real worker, schedule events through the
real lease keeper, policy files through the keeper's cold start and the SSM overlay path."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pydantic
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from nbkeeper.assembly import PolicySource
from nbkeeper.commands import parse_command
from nbkeeper.dynamo import DynamoStateStore
from nbkeeper.keeper.policy import Policy, PolicyError, load_policy_text
from nbkeeper.keeper.schedule import ScheduleEvent
from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper.records import PendingWarning, Reservation
from nbkeeper.settings import DEFAULT_POLICY_PATH
from nbkeeper_local.emulator import ActivityPattern
from nbkeeper_local.harness import load_function, sqs_event
from tests.reliability.faults import MUTATING
from tests.reliability.simworld import PROJECT_ID, Context, World, base_env, environment

OWNER = "U0OWNER"
SECOND = "U0SECOND"
ALLOWED = (OWNER, SECOND, "UADMIN")
VERBS = (
    "delete {target}",
    "start {target} hours=2",
    "stop {target}",
    "prolong {target} 3",
    "keep {target} for 2h",
    "keep {target} until 18:00",
    "update {target} storage=50",
    'update {target} description="mine now"',
)


class Tally(Protocol):
    def note(self, cls: str, wrong: str | None = None, crash: str | None = None) -> None: ...


def run_fuzz(
    strategy: st.SearchStrategy[Any], check: Callable[[Any], None], seed: int, n: int
) -> None:
    """`check` every example; it records, it does not raise (so every case is counted)."""

    @settings(max_examples=n, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @hypothesis_seed(seed)
    @given(strategy)
    def inner(value: Any) -> None:
        check(value)

    inner()


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


# ---------------------------------------------------------------- queue bodies


def _valid_commands(notebook_id: str, now: datetime) -> list[dict[str, Any]]:
    base = {
        "requested_at": now.isoformat(),
        "requested_by": {
            "user_id": OWNER,
            "response_url": "https://hooks.slack.com/commands/x/1/q",
        },
    }
    return [
        {**base, "type": "stop", "command_id": "q.stop", "notebook_id": notebook_id},
        {
            **base,
            "type": "prolong",
            "command_id": "q.prolong",
            "notebook_id": notebook_id,
            "hours": 2,
        },
        {
            **base,
            "type": "keep",
            "command_id": "q.keep",
            "notebook_id": notebook_id,
            "until": (now + timedelta(hours=3)).isoformat(),
        },
        {
            **base,
            "type": "create",
            "command_id": "q.create",
            "name": "queued-x",
            "flavor": "modelarts.vm.cpu.2u",
            "image_id": "e1a07296-22a8-4f05-8bc8-e936c8e54090",
            "storage_gb": 5,
            "hours": 1,
        },
    ]


def _mutate(draw: Any, command: dict[str, Any]) -> Any:
    mutated = dict(command)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*sorted(mutated), "extra", "type"]))
        choice = draw(st.integers(0, 3))
        if choice == 0:
            mutated.pop(key, None)
        elif choice == 1:
            mutated[key] = draw(JSONISH)
        elif choice == 2:
            mutated[key] = draw(st.text(min_size=100, max_size=3000))
        else:
            mutated[key] = draw(
                st.sampled_from(["delete", "sweep-project", "follow", "", None, 1e308])
            )
    return mutated


def fuzz_queue_bodies(w: World, tally: Tally, seed: int, n: int) -> None:
    worker = w.modules["notebook_worker"]
    transport = w.transports["notebook_worker"]
    records = w.emulator.store.project(PROJECT_ID).records
    notebook_id = next(iter(records))
    valid = _valid_commands(notebook_id, w.emulator.now())

    @st.composite
    def bodies(draw: Any) -> str:
        kind = draw(st.integers(0, 3))
        if kind == 0:
            return draw(st.text(max_size=200))
        if kind == 1:
            return json.dumps(draw(JSONISH))
        return json.dumps(_mutate(draw, draw(st.sampled_from(valid))), default=str)

    counter = [0]

    def check(body: str) -> None:
        counter[0] += 1
        try:
            parse_command(body)
            parses = True
        except Exception:
            parses = False
        message = {
            "MessageId": f"fuzz-{counter[0]}",
            "ReceiptHandle": "fuzz",
            "Body": body,
            "Attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": "fuzz"},
            "MD5OfBody": "",
        }
        calls = len(transport.calls)
        try:
            result = worker.lambda_handler(sqs_event(w.queue_url, [message]), Context())
        except Exception as exc:
            tally.note("fuzzed queue bodies", crash=f"{type(exc).__name__}: {exc}")
            return
        failed = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
        mutations = [c for c in transport.calls[calls:] if c.op in MUTATING and c.status < 300]
        wrong = None
        if not parses and not failed:
            wrong = f"an unreadable body was taken as done: {body[:80]!r}"
        elif not parses and mutations:
            wrong = f"an unreadable body changed a notebook: {mutations[0].op}"
        tally.note("fuzzed queue bodies", wrong)

    run_fuzz(bodies(), check, seed, n)


# ---------------------------------------------------------------- schedule events


def _scene(w: World) -> dict[str, str]:
    """Three notebooks nothing may stop at the wall clock: one warned 5 minutes ago (its stop is
    10 minutes away), one in use, one reserved. Rebuilt before every event."""
    store = DynamoStateStore(w.modules["lease_keeper"].wiring.state_table)
    now = w.emulator.now()
    names = {}
    for record in list(w.emulator.store.project(PROJECT_ID).records.values()):
        if record.name.startswith("scene-"):
            names[record.name] = record.id
    for name, notebook_id in names.items():
        record = w.emulator.find(notebook_id)
        if record.status is not NotebookStatus.RUNNING:
            w.emulator.force_status(notebook_id, NotebookStatus.RUNNING)
        # Running for three hours: only its recorded activity says whether it is in use.
        record.jupyter.started_ms = int((now - timedelta(hours=3)).timestamp() * 1000)
        pattern = ActivityPattern.ACTIVE if name == "scene-active" else ActivityPattern.IDLE
        w.emulator.set_activity(
            notebook_id,
            pattern=pattern,
            last_activity=now - timedelta(hours=3),
            kernels=[] if pattern is ActivityPattern.IDLE else None,
        )
        w.emulator.store.renew_lease(PROJECT_ID, notebook_id, 3_600_000, record.lease_type)
    store.put_warning(
        PendingWarning(
            project_id=PROJECT_ID,
            notebook_id=names["scene-warned"],
            kind="idle",
            warned_at=now - timedelta(minutes=5),
            stop_after=now + timedelta(minutes=10),
        )
    )
    store.put_reservation(
        Reservation(
            project_id=PROJECT_ID,
            notebook_id=names["scene-reserved"],
            until=now + timedelta(hours=4),
            by_user=OWNER,
        )
    )
    return names


EVENT_TIMES = st.one_of(
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(-7 * 24 * 60, 7 * 24 * 60).map(lambda m: ("offset", m)),
    st.integers(-120, 120).map(lambda m: ("offset", m)),  # near the wall clock: late or early
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),  # naive
)


def fuzz_schedule_events(w: World, tally: Tally, seed: int, n: int) -> None:
    from tests.reliability.faults import FaultyTransport

    keeper = w.modules["lease_keeper"]
    transport: FaultyTransport = keeper.seams.modelarts_transport

    @st.composite
    def events(draw: Any) -> Any:
        kind = draw(st.integers(0, 2))
        if kind == 0:
            return draw(JSONISH)
        moment = draw(EVENT_TIMES)
        if isinstance(moment, tuple):
            moment = w.emulator.now() + timedelta(minutes=moment[1])
        text = moment.isoformat() if kind == 1 else moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        event: dict[str, Any] = {"source": "aws.scheduler", "time": text}
        if draw(st.booleans()):
            event["dry_run"] = draw(st.one_of(st.booleans(), st.none(), st.text(max_size=4)))
        return event

    def check(event: Any) -> None:
        _scene(w)
        calls = len(transport.calls)
        try:
            ScheduleEvent.model_validate(event if isinstance(event, dict) else {})
            malformed = False
        except pydantic.ValidationError:
            malformed = True
        try:
            keeper.lambda_handler(event, Context(function_name="lease-keeper"))
        except pydantic.ValidationError:
            # A malformed event refused with the model's error (the invocation fails, visibly).
            if not malformed:
                tally.note("fuzzed schedule events", crash=f"ValidationError for {event!r}"[:200])
                return
        except Exception as exc:
            tally.note("fuzzed schedule events", crash=f"{type(exc).__name__} for {event!r}"[:200])
            return
        stops = [c for c in transport.calls[calls:] if c.op == "stop" and c.status < 300]
        wall = w.emulator.now().strftime("%H:%M")
        wrong = f"{len(stops)} stopped at wall clock {wall} by event {event!r}" if stops else None
        tally.note("fuzzed schedule events", wrong)

    run_fuzz(events(), check, seed, n)


def scene_notebooks(w: World) -> None:
    """Create the schedule-event scene's notebooks (directly in the emulator)."""
    from nbkeeper.modelarts.schemas import NotebookCreateRequest

    for name in ("scene-warned", "scene-active", "scene-reserved"):
        request = NotebookCreateRequest.model_validate(
            {
                "name": name,
                "image_id": "e1a07296-22a8-4f05-8bc8-e936c8e54090",
                "flavor": "modelarts.vm.cpu.2u",
                "volume": {"category": "EVS", "ownership": "MANAGED", "capacity": 5},
            }
        )
        w.emulator.store.create(PROJECT_ID, request, w.emulator.config.identity)
    w.advance(60)


# ---------------------------------------------------------------- policy files

POLICY_KEYS = sorted(Policy.model_fields)
POLICY_VALUES = st.one_of(
    JSONISH,
    st.sampled_from(
        [0, -1, 1e999, "nan", ".nan", ".inf", "08:00-07:00", "25:00-26:00", "Mars/Olympus"]
    ),
    st.dictionaries(
        st.sampled_from(["mon", "tue", "sun", "funday", "key", "value"]),
        st.one_of(st.text(max_size=12), st.none(), st.lists(st.text(max_size=12), max_size=3)),
        max_size=3,
    ),
)
POLICY_TEXT = st.one_of(
    st.text(max_size=200),
    st.dictionaries(st.sampled_from(POLICY_KEYS), POLICY_VALUES, max_size=6).map(
        lambda d: json.dumps(d, default=str)
    ),
    st.sampled_from(
        [
            "working_hours: &x {mon: *x}",
            "a: &a [*a, *a]\nidle_threshold_minutes: *a",
            "holidays: [2024-13-45]",
            "prices: {x: -1}",
            "!!python/object/apply:os.system ['true']",
            "idle_threshold_minutes: 1e999",
            "extend_by_hours: .nan",
            "timezone: ../../etc/passwd",
            "- just\n- a list",
            # Nested past Python's recursion limit (RecursionError inside PyYAML). 1000 levels
            # take that path as surely as 5000, which PyYAML takes ~2 s to scan per read.
            "[" * 1000,
        ]
    ),
)


def policy_problem(policy: Policy) -> str | None:
    """An accepted policy that breaks a rule the keeper relies on."""
    checks = [
        (policy.idle_threshold_minutes > 0, "idle threshold not positive"),
        (policy.off_hours_idle_minutes > 0, "off-hours threshold not positive"),
        (policy.warning_lead_minutes >= 0, "negative warning lead"),
        (1 <= policy.extend_by_hours <= 72, "extension outside 1-72 h"),
        (policy.renew_before_minutes < policy.extend_by_hours * 60, "renews every pass"),
        (
            all(
                math.isfinite(v)
                for v in (
                    policy.idle_threshold_minutes,
                    policy.extend_by_hours,
                    policy.warning_lead_minutes,
                )
            ),
            "not finite",
        ),
        (all(w.start < w.end for day in policy.working_hours.values() for w in day), "window"),
        (all(p >= 0 for p in policy.prices.values()), "negative price"),
        (bool(policy.opt_out_tag.key), "empty opt-out tag key"),
    ]
    try:
        ZoneInfo(policy.timezone)
    except Exception:
        return "unknown timezone accepted"
    return next((why for ok, why in checks if not ok), None)


def fuzz_policies(tally: Tally, seed: int, n: int) -> None:
    """Each text as the shipped file's replacement (the keeper's cold start) and as an SSM
    overlay over a good file (kept previous policy on a bad overlay)."""
    good = DEFAULT_POLICY_PATH
    env = {**base_env(), "STATE_TABLE": "state"}
    with tempfile.TemporaryDirectory(prefix="nbkeeper-policy-fuzz-") as folder, environment(env):
        path = Path(folder) / "policy.yaml"

        def check(text: str) -> None:
            try:
                policy = load_policy_text(text, "fuzz")
            except PolicyError:
                policy = None
            except Exception as exc:
                tally.note("fuzzed policy files", crash=f"{type(exc).__name__}: {text[:60]!r}")
                return
            problem = policy_problem(policy) if policy is not None else None
            path.write_text(text)
            os.environ["POLICY_PATH"] = str(path)
            try:
                load_function("lease_keeper")
            except PolicyError:
                if policy is not None:
                    problem = problem or "the file loads alone but the keeper refuses it"
            except Exception as exc:
                tally.note("fuzzed policy files", crash=f"keeper cold start: {type(exc).__name__}")
                return
            overlay = ["{}"]
            source = PolicySource(good, "overlay", fetch=lambda _: overlay[0])
            source.current()  # a good first read: a bad overlay later keeps this one
            overlay[0] = text
            try:
                overlaid = source.current()
                problem = problem or policy_problem(overlaid)
            except Exception as exc:
                tally.note("fuzzed policy files", crash=f"overlay: {type(exc).__name__}")
                return
            tally.note("fuzzed policy files", problem)

        run_fuzz(POLICY_TEXT, check, seed, n)
