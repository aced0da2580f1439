"""`nbkeeper plan`: what would the lease keeper do now? A dry-run pass, no AWS needed.

Lists and probes the notebooks of the configured endpoint (MODELARTS_* / HUAWEICLOUD_SDK_*
environment, as the functions read it), decides with the policy, and prints the decisions without
renewing, stopping or warning anything.

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
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from nbkeeper.keeper.decide import Action
from nbkeeper.keeper.policy import Policy, PolicyError, load_policy_file, load_policy_text
from nbkeeper.keeper.report import (
    NotebookOutcome,
    NullNotifier,
    PassReport,
    SkippedRecord,
    decision_detail,
)
from nbkeeper.memory import MemoryStateStore
from nbkeeper.records import (
    AuditRecord,
    NotebookState,
    Owner,
    PendingWarning,
    ProjectState,
    Reservation,
    StateStore,
)
from nbkeeper.settings import ModelArtsSettings, SettingsError, load_settings
from nbkeeper.wiring import DEFAULT_POLICY_PATH, default_projects, run_keeper_pass

SHIPPED_POLICY = DEFAULT_POLICY_PATH


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbkeeper plan",
        description="Dry-run one lease keeper pass against the configured ModelArts endpoint "
        "and print the decisions. Nothing is changed; no AWS access is needed.",
    )
    parser.add_argument(
        "--at",
        metavar="ISO8601",
        help="decide as of this time (e.g. 2026-11-23T19:30:00+01:00; no offset means UTC)",
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


async def plan(
    settings: ModelArtsSettings, policy: Policy, now: datetime, store: StateStore | None = None
) -> PassReport:
    """A dry pass assembled exactly as the keeper's (nbkeeper.wiring), telling nobody."""
    return await run_keeper_pass(
        settings,
        default_projects(policy, settings),
        policy,
        now,
        store=store or MemoryStateStore(),
        notifier=NullNotifier(),
        dry_run=True,
    )


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


def print_table(report: PassReport, out: TextIO, state_table: str | None = None) -> None:
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
        rows.append((o.action.value, o.name or "?", o.notebook_id, detail, o.decision.reason))
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
    print(
        f"\n{len(report.outcomes)} running notebooks at {report.at.isoformat()}: "
        f"{counts['prolong']} to prolong, {counts['warn']} to warn, {counts['stop']} to stop, "
        f"{counts['noop']} to leave alone{unreadable}. Dry run: nothing was changed.",
        file=out,
    )


def _unreadable(table: str, exc: Exception) -> int:
    print(
        f"nbkeeper plan: --state-table {table}: cannot read it ({exc}); check the table "
        "name, the AWS region and profile, and dynamodb:Query permission",
        file=sys.stderr,
    )
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        now = parse_at(args.at)
    except ValueError:
        print(f"nbkeeper plan: --at {args.at!r} is not an ISO 8601 time", file=sys.stderr)
        return 2
    try:
        settings = load_settings(ModelArtsSettings, os.environ)
        policy = load(args.policy)
    except (SettingsError, PolicyError) as exc:
        print(f"nbkeeper plan: {exc}", file=sys.stderr)
        return 2
    table: str | None = args.state_table
    store: ReadOnlyState | None = None
    if table:  # botocore only when asked: a plain plan needs no AWS at all
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            store = dynamo_state(table)
        except (BotoCoreError, ClientError) as exc:
            return _unreadable(table, exc)
    report = asyncio.run(plan(settings, policy, now, store))
    if table and store is not None and store.load_error is not None:
        return _unreadable(table, store.load_error)
    for project in report.project_errors:
        print(f"nbkeeper plan: project {project.project_id}: {project.error}", file=sys.stderr)
    if args.json:
        for outcome in report.outcomes:
            print(json.dumps(row(outcome, state_read=bool(table)), ensure_ascii=False))
        for record in report.unreadable:
            print(json.dumps(unreadable_row(record, bool(table)), ensure_ascii=False))
    else:
        print_table(report, sys.stdout, table)
    return 1 if report.project_errors else 0
