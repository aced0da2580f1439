"""`nbkeeper plan`: what would the lease keeper do now? A dry-run pass, no AWS needed.

Where it plans (the five variables are documented in local/nbkeeper.env.example):
- with MODELARTS_REGION, MODELARTS_PROJECT_ID and credentials set (HUAWEICLOUD_SDK_AK/SK, as
  the functions read them; MODELARTS_ENDPOINT optional): against that ModelArts endpoint;
- with only MODELARTS_ENDPOINT set, to a loopback URL: against the emulator serving there (`make
  emulator`), with its documented demo project and credentials;
- with none of them set: against a local emulator started for this plan and seeded with
  `--fleet` notebooks as of `--at`, so a fresh clone's `make plan` shows real decisions.

It lists and probes the notebooks, decides with the policy, and prints the decisions without
renewing, stopping or warning anything. A plan that cannot reach ModelArts says so once, naming
the host and the variable to check, prints no table and exits 1.

nbkeeper's own state (reservations, pending warnings, owners) lives in DynamoDB. By default it is
not read, and the output says so: a plan then shows `warn` where a real pass would `stop` (the
warning was already sent) and knows no reservations. `--state-table NAME` reads it with boto3 and
the ambient AWS configuration (profile, region), read-only: one Query per project
(`load_project`); nothing is written (the dry run's audit records stay in memory).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from nbkeeper.assembly import (
    default_projects,
    project_settings,
    run_keeper_pass,
)
from nbkeeper.keeper.activity import Activity, ActivityResult
from nbkeeper.keeper.decide import Action, Decision
from nbkeeper.keeper.policy import Policy, PolicyError, load_policy_file, load_policy_text
from nbkeeper.keeper.report import (
    NotebookOutcome,
    NullNotifier,
    PassReport,
    SkippedRecord,
    decision_detail,
)
from nbkeeper.memory import MemoryStateStore
from nbkeeper.modelarts.regions import override_variable
from nbkeeper.modelarts.schemas import Notebook
from nbkeeper.records import (
    AuditRecord,
    NotebookState,
    Owner,
    PendingWarning,
    ProjectRef,
    ProjectState,
    Reservation,
    StateStore,
)
from nbkeeper.settings import DEFAULT_POLICY_PATH, ModelArtsSettings, SettingsError, load_settings
from nbkeeper.timefmt import from_ms, local_time

SHIPPED_POLICY = DEFAULT_POLICY_PATH
ENV_EXAMPLE = "local/nbkeeper.env.example"
DEFAULT_FLEET = 20
# Any of these set means "plan against what I configured": then all must be right.
CONFIG_VARIABLES = (
    "MODELARTS_REGION",
    "MODELARTS_PROJECT_ID",
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "HUAWEICLOUD_CREDENTIALS_SECRET",
    "MODELARTS_IAM_TOKEN",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbkeeper plan",
        description="Dry-run one lease keeper pass and print the decisions. Nothing is changed; "
        "no AWS access is needed. With no MODELARTS_* variables set it plans against a local "
        f"emulator seeded for the occasion; {ENV_EXAMPLE} lists the variables that point it "
        "at ModelArts or at `make emulator`.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--at",
        metavar="ISO8601",
        help="decide as of this time (e.g. 2026-11-23T19:30:00+01:00; no offset means UTC); "
        "default: now",
    )
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="policy YAML (default: the one shipped in the layer, shared/nbkeeper/keeper/policy.yaml)",
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per notebook instead of a table"
    )
    parser.add_argument(
        "--state-table",
        metavar="NAME",
        help="read reservations and pending warnings from this DynamoDB table (boto3, ambient "
        "AWS configuration; read-only). Without it they are unknown.",
    )
    parser.add_argument(
        "--env-file",
        metavar="FILE",
        help=f"read KEY=VALUE lines (e.g. a copy of {ENV_EXAMPLE}) over the environment",
    )
    parser.add_argument(
        "--fleet",
        type=int,
        default=DEFAULT_FLEET,
        help="notebooks to seed when planning against a local emulator (no MODELARTS_* set)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show nbkeeper's log lines (retries, errors)"
    )
    return parser


class ReadOnlyState:
    """A StateStore that reads projects from `source` and never writes to it: everything a
    dry-run pass writes (its audit records) goes to an in-memory scratch store."""

    def __init__(self, source: StateStore) -> None:
        self._source = source
        self._scratch = MemoryStateStore()
        # The pass reports an unreadable state as a project error by exception type only; the
        # plan keeps the exception to name the table and say how to fix the access.
        self.load_error: Exception | None = None

    def load_project(self, project_id: str, now: datetime) -> ProjectState:
        try:
            return self._source.load_project(project_id, now)
        except Exception as exc:
            self.load_error = self.load_error or exc
            raise

    def load_notebook(self, project_id: str, notebook_id: str, now: datetime) -> NotebookState:
        return self._source.load_notebook(project_id, notebook_id, now)  # never in a dry run

    def get_owner(self, project_id: str, notebook_id: str) -> Owner | None:
        return self._scratch.get_owner(project_id, notebook_id)

    def put_owner(self, owner: Owner) -> None:
        self._scratch.put_owner(owner)

    def put_reservation(self, reservation: Reservation) -> None:
        self._scratch.put_reservation(reservation)

    def delete_reservation(self, project_id: str, notebook_id: str) -> None:
        self._scratch.delete_reservation(project_id, notebook_id)

    def put_warning(self, warning: PendingWarning) -> None:
        self._scratch.put_warning(warning)

    def delete_warning(self, project_id: str, notebook_id: str) -> None:
        self._scratch.delete_warning(project_id, notebook_id)

    def record_audit(self, records: Iterable[AuditRecord]) -> None:
        self._scratch.record_audit(records)

    def list_audit(self, project_id: str, day: datetime) -> list[AuditRecord]:
        return self._scratch.list_audit(project_id, day)


def dynamo_state(table_name: str) -> ReadOnlyState:
    """The state table through boto3's ambient configuration, wrapped read-only."""
    import boto3

    from nbkeeper.dynamo import DynamoStateStore

    table: Any = boto3.resource("dynamodb").Table(table_name)
    return ReadOnlyState(DynamoStateStore(table))


def parse_at(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def load(policy_path: str | None) -> Policy:
    if policy_path:
        return load_policy_file(policy_path)
    if SHIPPED_POLICY.exists():
        return load_policy_file(SHIPPED_POLICY)
    return load_policy_text("", "default policy")


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines (`export ` prefix, quotes and # comments allowed), as shells source them."""
    values: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


# ---------------------------------------------------------------------- where to plan


@dataclass
class Target:
    """Where the plan reads notebooks from, and what to say about it."""

    settings: ModelArtsSettings
    description: str
    # The variable that decides the endpoint, named when it cannot be reached.
    endpoint_variable: str


class TargetError(Exception):
    """The configuration names no usable ModelArts; the message says what to set."""


def _is_loopback_url(url: str) -> bool:
    from nbkeeper_local.emulator.server import is_loopback

    return is_loopback(urlsplit(url).hostname or "")


def emulator_settings(endpoint: str) -> ModelArtsSettings:
    """The emulator's documented demo project and credentials at `endpoint`."""
    from nbkeeper_local.emulator.config import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
    from nbkeeper_local.emulator.fleet import DEMO_PROJECT_ID
    from nbkeeper_local.harness import MODELARTS_REGION

    return load_settings(
        ModelArtsSettings,
        {
            "MODELARTS_REGION": MODELARTS_REGION,
            "MODELARTS_PROJECT_ID": DEMO_PROJECT_ID,
            "MODELARTS_ENDPOINT": endpoint,
            "HUAWEICLOUD_SDK_AK": DEMO_ACCESS_KEY,
            "HUAWEICLOUD_SDK_SK": DEMO_SECRET_KEY,
        },
    )


@contextmanager
def target_for(environ: Mapping[str, str], now: datetime, fleet: int) -> Iterator[Target]:
    """The configured ModelArts, the emulator at MODELARTS_ENDPOINT, or a local one for now."""
    configured = [name for name in CONFIG_VARIABLES if environ.get(name, "").strip()]
    endpoint = environ.get("MODELARTS_ENDPOINT", "").strip()
    if configured:
        try:
            settings = load_settings(ModelArtsSettings, environ)
        except SettingsError as exc:
            problems = "\n- ".join(exc.problems)
            raise TargetError(
                f"invalid configuration (see {ENV_EXAMPLE} for the five variables):\n- {problems}"
            ) from None
        variable = "MODELARTS_ENDPOINT" if endpoint else "MODELARTS_REGION"
        yield Target(
            settings,
            f"ModelArts at {settings.resolved_endpoint}, project {settings.project_id}",
            variable,
        )
        return
    if endpoint:
        if not _is_loopback_url(endpoint):
            raise TargetError(
                f"MODELARTS_ENDPOINT is {endpoint} but MODELARTS_REGION, MODELARTS_PROJECT_ID "
                f"and the credentials are not set: set all five (see {ENV_EXAMPLE})"
            )
        try:
            settings = emulator_settings(endpoint)
        except SettingsError as exc:
            raise TargetError("; ".join(exc.problems)) from None
        yield Target(
            settings,
            f"the emulator at {settings.resolved_endpoint} (its demo project and credentials, "
            "since only MODELARTS_ENDPOINT is set)",
            "MODELARTS_ENDPOINT",
        )
        return
    from nbkeeper_local.emulator.clock import SimClock
    from nbkeeper_local.emulator.core import Emulator
    from nbkeeper_local.emulator.server import serve_in_thread

    emulator = Emulator(clock=SimClock.stepped(now))
    if fleet > 0:
        emulator.seed_fleet(size=fleet)
    with serve_in_thread(emulator) as url:
        yield Target(
            emulator_settings(url),
            f"a local emulator seeded with {fleet} notebooks as of the plan's time (no "
            f"MODELARTS_* variables set; {ENV_EXAMPLE} shows how to plan against ModelArts "
            "or `make emulator`)",
            "MODELARTS_ENDPOINT",
        )


# ---------------------------------------------------------------------- the pass


async def plan(
    settings: ModelArtsSettings,
    policy: Policy,
    now: datetime,
    store: StateStore | None = None,
    modelarts_options: Mapping[str, Any] | None = None,
    seen: Seen | None = None,
) -> PassReport:
    """A dry pass assembled exactly as the keeper's (nbkeeper.wiring), telling nobody.
    `seen` collects each notebook and its activity as the pass read them."""
    return await run_keeper_pass(
        settings,
        default_projects(policy, settings),
        policy,
        now,
        store=store or MemoryStateStore(),
        notifier=NullNotifier(),
        dry_run=True,
        modelarts_options=modelarts_options,
        observe=None if seen is None else seen.add,
    )


# ---------------------------------------------------------------------- a safe --at

# Data up to this much later than --at is clock noise, not a plan in the past.
AT_TOLERANCE = timedelta(minutes=1)


@dataclass
class Seen:
    """What the pass read per notebook: ModelArts' view (the lease) and Jupyter's (activity)."""

    notebooks: dict[str, Notebook] = field(default_factory=dict)
    activity: dict[str, ActivityResult] = field(default_factory=dict)

    def add(self, notebook: Notebook, activity: ActivityResult) -> None:
        self.notebooks[notebook.id] = notebook
        self.activity[notebook.id] = activity

    def latest(self, notebook_id: str) -> datetime | None:
        """The latest moment the data about this notebook speaks of: its creation, its lease's
        last change, its Jupyter Server's start and last activity."""
        notebook = self.notebooks[notebook_id]
        moments = [from_ms(notebook.create_at)] if notebook.create_at is not None else []
        if notebook.lease is not None and notebook.lease.update_at is not None:
            moments.append(from_ms(notebook.lease.update_at))
        activity = self.activity.get(notebook_id)
        if isinstance(activity, Activity):
            moments += [m for m in (activity.last_activity, activity.started) if m is not None]
        return max(moments, default=None)

    def lease_end(self, notebook_id: str) -> datetime | None:
        lease = self.notebooks[notebook_id].lease
        if lease is None or lease.enable is False or lease.deadline_ms is None:
            return None
        return from_ms(lease.deadline_ms)


@dataclass
class AtCheck:
    """How `--at` relates to the data the plan read, and what the plan did about it."""

    after_at: set[str] = field(default_factory=set)  # data later than --at: marked
    ran_out: set[str] = field(default_factory=set)  # lease ended before --at: shown as stopped
    latest: datetime | None = None

    def notices(self, at: datetime, zone: tzinfo, total: int) -> list[str]:
        when = _when(at, zone)
        lines = []
        if self.after_at:
            assert self.latest is not None
            n = len(self.after_at)
            which = (
                f"all {n} notebooks" if n == total > 1 else f"{_count(n, 'notebook')} of {total}"
            )
            lines.append(
                f"--at {when} is before the data read: {which} were created, restarted, prolonged or used after it (the latest at "
                f"{_when(self.latest, zone)}). ModelArts and Jupyter only tell how things are now, "
                "so for those notebooks this plan counts that later activity as current and "
                "measures their lease from --at; they are marked * (JSON: data_after_at)."
            )
        if self.ran_out:
            lines.append(
                f"--at {when} is past the end of {_count(len(self.ran_out), 'lease')}: ModelArts "
                "stops a notebook when its lease runs out, so unless a pass before --at "
                "prolongs them, they are no longer running then. They are shown as `noop` "
                "(lease ran out), not decided as running notebooks."
            )
        return lines


def check_at(report: PassReport, seen: Seen, at: datetime, policy: Policy) -> AtCheck:
    """Mark notebooks whose data is later than `at`, and settle those whose lease would have
    run out by `at` as `noop`: a pass at `at` would not find them running."""
    check = AtCheck()
    for outcome in report.outcomes:
        if outcome.notebook_id not in seen.notebooks:
            continue
        latest = seen.latest(outcome.notebook_id)
        if latest is not None and latest > at + AT_TOLERANCE:
            check.after_at.add(outcome.notebook_id)
            check.latest = max(latest, check.latest or latest)
        end = seen.lease_end(outcome.notebook_id)
        if end is not None and end < at and outcome.notebook_id not in check.after_at:
            check.ran_out.add(outcome.notebook_id)
            outcome.decision = Decision(
                Action.NOOP,
                f"lease ran out at {_when(end, policy.zone)}, before --at: ModelArts stops it "
                "then unless a pass before --at prolongs it",
            )
    return check


def _offset_differs(at: datetime, zone: tzinfo) -> bool:
    return at.utcoffset() != at.astimezone(zone).utcoffset()


def _when(moment: datetime, zone: tzinfo) -> str:
    return local_time(moment, zone, date=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@contextmanager
def quiet_logs(verbose: bool, err: TextIO) -> Iterator[None]:
    """nbkeeper's log lines (a retry, a project error) repeat what the plan says once; they go
    to stderr only with --verbose."""
    logger = logging.getLogger("nbkeeper")
    handler: logging.Handler = logging.StreamHandler(err) if verbose else logging.NullHandler()
    saved = (logger.propagate, logger.level)
    logger.addHandler(handler)
    logger.propagate = False
    if verbose:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate, logger.level = saved[0], saved[1]


def project_problem(target: Target, project: ProjectRef, error: str) -> str:
    """One line for a project the pass could not sweep: what failed, where, what to check."""
    settings = project_settings(target.settings, project)
    host = urlsplit(settings.resolved_endpoint).netloc or settings.resolved_endpoint
    variable = target.endpoint_variable
    if project.region != target.settings.region:
        variable = override_variable(project.region)
    kind, _, detail = error.partition(": ")
    detail = detail.rsplit(" failed: ", 1)[-1]  # drop the request line; the host says where
    detail = re.sub(
        r" \(gave up after (\d+) attempt\(s\)\)", r"; gave up after \1 attempts", detail
    )
    if kind == "transport error":
        return f"cannot reach ModelArts at {host} ({detail}); check {variable}"
    if kind == "unauthorized":
        return (
            f"ModelArts at {host} refused the credentials ({detail}); check HUAWEICLOUD_SDK_AK "
            "and HUAWEICLOUD_SDK_SK (or the credentials source in use) and the machine's clock"
        )
    if kind == "forbidden":
        return (
            f"ModelArts at {host} does not allow listing notebooks in project "
            f"{project.project_id} ({detail}); check the IAM user's ModelArts permissions"
        )
    if kind in {"not found", "invalid request"}:
        return (
            f"ModelArts at {host} rejected project {project.project_id} ({detail}); check "
            "MODELARTS_PROJECT_ID (or the policy's projects) and the region"
        )
    return f"project {project.project_id} at {host}: {error}"


# ---------------------------------------------------------------------- output


def row(outcome: NotebookOutcome, state_read: bool = False) -> dict[str, object]:
    data: dict[str, object] = {
        "notebook_id": outcome.notebook_id,
        "name": outcome.name,
        "project_id": outcome.project_id,
        "action": outcome.action.value,
        "reason": outcome.decision.reason,
        # False: reservations and pending warnings were not read; `warn` may really be `stop`.
        "state_read": state_read,
    }
    detail = decision_detail(outcome.decision)
    if "duration_ms" in detail:  # the lease duration a renewal asks for, as the API names it
        detail["duration"] = detail.pop("duration_ms")
    detail.pop("cost_saved", None)
    return data | detail


def unreadable_row(record: SkippedRecord, state_read: bool = False) -> dict[str, object]:
    """A listed record that could not be read: never acted on (`action: unreadable`)."""
    return {
        "notebook_id": record.notebook_id,
        "name": None,
        "project_id": record.project_id,
        "action": "unreadable",
        "reason": f"not readable, left alone: {record.reason}",
        "position": record.position,
        "state_read": state_read,
    }


def state_note(table: str | None) -> str:
    if table:
        return f"nbkeeper state: read from DynamoDB table {table} (reservations, warnings, owners)"
    return (
        "nbkeeper state: NOT read (no --state-table): reservations are unknown, and a notebook "
        "already warned shows `warn` where a real pass would `stop`"
    )


def print_table(
    report: PassReport,
    out: TextIO,
    state_table: str | None = None,
    policy: Policy | None = None,
    marked: Collection[str] = (),
) -> None:
    """The decisions by action; notebooks in `marked` (data later than --at) get a *."""
    print(state_note(state_table), file=out)
    outcomes = sorted(
        report.outcomes, key=lambda o: (list(Action).index(o.action), o.name or "", o.notebook_id)
    )
    headers = ("ACTION", "NOTEBOOK", "ID", "DETAIL", "REASON")
    rows = []
    for o in outcomes:
        detail = ""
        if o.action is Action.PROLONG and o.decision.extend_ms:
            detail = f"+{o.decision.extend_ms / 3_600_000:g} h"
        elif o.action is Action.WARN:
            detail = o.decision.warning_kind or ""
        name = ("*" if o.notebook_id in marked else "") + (o.name or "?")
        rows.append((o.action.value, name, o.notebook_id, detail, o.decision.reason))
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers[:4])]
    for line in [headers, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(line[:4], widths, strict=True)]
        print("  ".join([*cells, line[4]]).rstrip(), file=out)
    if report.unreadable:
        print(f"\n{len(report.unreadable)} notebook records could not be read:", file=out)
        for record in report.unreadable:
            print(f"  {record.label} ({record.project_id}): {record.reason}", file=out)
    counts = report.counts
    unreadable = f", {len(report.unreadable)} unreadable" if report.unreadable else ""
    zone = policy.zone if policy is not None else UTC
    at = local_time(report.at, zone, date=True)
    running = len(report.outcomes)
    print(
        f"\n{running} running notebook{'' if running == 1 else 's'} at {at}: "
        f"{counts['prolong']} to prolong, {counts['warn']} to warn, {counts['stop']} to stop, "
        f"{counts['noop']} to leave alone{unreadable}. Dry run: nothing was changed.",
        file=out,
    )


def _unreadable(table: str, exc: Exception, err: TextIO) -> int:
    print(
        f"nbkeeper plan: --state-table {table}: cannot read it ({exc}); check the table "
        "name, the AWS region and profile, and dynamodb:Query permission",
        file=err,
    )
    return 2


def run(
    argv: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    modelarts_options: Mapping[str, Any] | None = None,
) -> int:
    """`nbkeeper plan` with its environment and streams passed in (tests pass their own)."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    try:
        now = parse_at(args.at)
    except ValueError:
        print(f"nbkeeper plan: --at {args.at!r} is not an ISO 8601 time", file=err)
        return 2
    try:
        if args.env_file:
            env |= read_env_file(args.env_file)
        policy = load(args.policy)
    except (OSError, ValueError, PolicyError) as exc:
        print(f"nbkeeper plan: {exc}", file=err)
        return 2
    table: str | None = args.state_table
    store: ReadOnlyState | None = None
    if table:  # botocore only when asked: a plain plan needs no AWS at all
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            store = dynamo_state(table)
        except (BotoCoreError, ClientError) as exc:
            return _unreadable(table, exc, err)
    with ExitStack() as stack:
        try:
            target = stack.enter_context(target_for(env, now, args.fleet))
        except TargetError as exc:
            print(f"nbkeeper plan: {exc}", file=err)
            return 2
        seen = Seen() if args.at else None  # without --at the data is as of now
        with quiet_logs(args.verbose, err):
            report = asyncio.run(plan(target.settings, policy, now, store, modelarts_options, seen))
    if table and store is not None and store.load_error is not None:
        return _unreadable(table, store.load_error, err)
    check = check_at(report, seen, now, policy) if seen is not None else AtCheck()
    return show(report, target, policy, args, check, out, err)


def show(
    report: PassReport,
    target: Target,
    policy: Policy,
    args: argparse.Namespace,
    check: AtCheck,
    out: TextIO,
    err: TextIO,
) -> int:
    """Print the plan (or, when ModelArts could not be read at all, only why); the exit code."""
    refs = {
        p.project_id: ProjectRef(region=p.region, project_id=p.project_id) for p in report.projects
    }
    for project in report.project_errors:
        line = project_problem(target, refs[project.project_id], project.error or "")
        print(f"nbkeeper plan: {line}", file=err)
    if report.project_errors and not report.outcomes:
        return 1  # no table: an empty one would read like a clean, empty result
    notes = err if args.json else out  # JSON lines stay pure on stdout
    print(f"Planned against {target.description}.", file=notes)
    notices = check.notices(report.at, policy.zone, len(report.outcomes))
    if args.at and _offset_differs(parse_at(args.at), policy.zone):
        notices.insert(
            0,
            f"times are shown in the policy's timezone, {policy.timezone}, which also decides "
            "working hours and holidays; --at only says when (--policy sets another timezone).",
        )
    for notice in notices:
        print(f"NOTE: {notice}", file=notes)
    table: str | None = args.state_table
    if args.json:
        for outcome in report.outcomes:
            data = row(outcome, state_read=bool(table))
            data["data_after_at"] = outcome.notebook_id in check.after_at
            print(json.dumps(data, ensure_ascii=False), file=out)
        for record in report.unreadable:
            print(json.dumps(unreadable_row(record, bool(table)), ensure_ascii=False), file=out)
    else:
        print_table(report, out, table, policy, marked=check.after_at)
        if report.project_errors:
            print(
                f"INCOMPLETE: {len(report.project_errors)} project(s) not fully swept (above).",
                file=out,
            )
    return 1 if report.project_errors else 0


def main(argv: list[str] | None = None) -> int:
    return run(argv)
