"""`nbkeeper status --state-table NAME`: the operator's view of nbkeeper's state table.

Per project: the pending warnings (who was warned, when the stop may happen), the reservations
(`/nb keep`), the owners nbkeeper recorded, and the latest lease keeper audit records (today's
and yesterday's, newest first). Warnings and reservations are shown as a pass sees them now:
expired ones are left out, as the keeper ignores them.

Read-only: Query and GetItem only (a Scan of the partition keys when no project is named),
with boto3 and the ambient AWS configuration (profile, region). Projects: `--project` (repeat
it), else MODELARTS_PROJECT_ID, else every project found in the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nbkeeper.dynamo import DynamoStateStore
from nbkeeper.records import AuditRecord, ProjectState
from nbkeeper.timefmt import iso, local_time

MAX_PROJECTS_SCANNED = 1000  # a bound on the project discovery scan


@dataclass
class ProjectView:
    project_id: str
    state: ProjectState
    audit: list[AuditRecord] = field(default_factory=list)
    audit_total: int = 0

    def name_of(self, notebook_id: str) -> str:
        owner = self.state.owners.get(notebook_id)
        if owner is not None and owner.notebook_name:
            return owner.notebook_name
        for record in self.audit:
            if record.notebook_id == notebook_id and record.notebook_name:
                return record.notebook_name
        return "?"


def discover_projects(table: Any) -> list[str]:
    """Project ids with state in the table (a keys-only Scan, bounded)."""
    projects: set[str] = set()
    kwargs: dict[str, Any] = {"ProjectionExpression": "pk"}
    while len(projects) < MAX_PROJECTS_SCANNED:
        page = table.scan(**kwargs)
        for item in page.get("Items", []):
            pk = str(item.get("pk", ""))
            if pk.startswith("PROJECT#"):
                projects.add(pk.removeprefix("PROJECT#"))
            elif pk.startswith("AUDIT#"):
                projects.add(pk.split("#")[1])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(projects)


def read(table: Any, projects: Sequence[str], now: datetime, limit: int) -> list[ProjectView]:
    """Each project's state as a pass at `now` sees it, and its latest audit records."""
    store = DynamoStateStore(table)
    views = []
    for project_id in projects:
        view = ProjectView(project_id, store.load_project(project_id, now))
        records: list[AuditRecord] = []
        for day in (now, now - timedelta(days=1)):
            records += store.list_audit(project_id, day)
        records.sort(key=lambda r: (r.at, r.notebook_id), reverse=True)
        view.audit_total = len(records)
        view.audit = records[:limit]
        views.append(view)
    return views


# ---------------------------------------------------------------------- output


def _when(moment: datetime, zone: tzinfo) -> str:
    return local_time(moment, zone, date=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers[:-1])]
    for line in [headers, *rows]:
        cells = [c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)]
        print("  " + "  ".join([*cells, line[-1]]).rstrip(), file=out)


def print_view(view: ProjectView, zone: tzinfo, out: TextIO) -> None:
    state = view.state
    print(f"\nProject {view.project_id}", file=out)
    sections: list[tuple[str, Sequence[str], list[Sequence[str]]]] = [
        (
            "Pending warnings",
            ("NOTEBOOK", "ID", "KIND", "WARNED", "STOP FROM", "SENT TO"),
            [
                (
                    view.name_of(w.notebook_id),
                    w.notebook_id,
                    w.kind,
                    _when(w.warned_at, zone),
                    _when(w.stop_after, zone),
                    w.channel or "nobody (no Slack)",
                )
                for w in sorted(state.warnings.values(), key=lambda w: w.stop_after)
            ],
        ),
        (
            "Reservations",
            ("NOTEBOOK", "ID", "UNTIL", "BY", "NOTE"),
            [
                (
                    view.name_of(r.notebook_id),
                    r.notebook_id,
                    _when(r.until, zone),
                    r.by_user,
                    r.note or "",
                )
                for r in sorted(state.reservations.values(), key=lambda r: r.until)
            ],
        ),
        (
            "Owners",
            ("NOTEBOOK", "ID", "OWNER", "SINCE"),
            [
                (o.notebook_name or "?", o.notebook_id, o.user_id, _when(o.created_at, zone))
                for o in sorted(state.owners.values(), key=lambda o: o.notebook_name or "")
            ],
        ),
    ]
    for title, headers, rows in sections:
        print(f"{title} ({len(rows)})" + ("" if rows else ": none"), file=out)
        if rows:
            _table(headers, rows, out)
    shown = len(view.audit)
    of = f"{shown} of {view.audit_total}" if view.audit_total > shown else str(shown)
    print(
        f"Latest audit records, today and yesterday ({of})" + ("" if shown else ": none"), file=out
    )
    if view.audit:
        _table(
            ("AT", "ACTION", "NOTEBOOK", "OUTCOME", "REASON"),
            [
                (
                    _when(r.at, zone),
                    r.action + (" (dry run)" if r.dry_run else ""),
                    r.notebook_name or r.notebook_id,
                    r.outcome,
                    r.reason,
                )
                for r in view.audit
            ],
            out,
        )


def as_json(view: ProjectView) -> dict[str, Any]:
    state = view.state
    return {
        "project_id": view.project_id,
        "warnings": [
            {
                "notebook_id": w.notebook_id,
                "notebook_name": view.name_of(w.notebook_id),
                "kind": w.kind,
                "warned_at": iso(w.warned_at),
                "stop_after": iso(w.stop_after),
                "channel": w.channel,
            }
            for w in state.warnings.values()
        ],
        "reservations": [
            {
                "notebook_id": r.notebook_id,
                "notebook_name": view.name_of(r.notebook_id),
                "until": iso(r.until),
                "by_user": r.by_user,
                "note": r.note,
            }
            for r in state.reservations.values()
        ],
        "owners": [
            {
                "notebook_id": o.notebook_id,
                "notebook_name": o.notebook_name,
                "user_id": o.user_id,
                "team_id": o.team_id,
                "created_at": iso(o.created_at),
            }
            for o in state.owners.values()
        ],
        "audit": [json.loads(r.model_dump_json()) for r in view.audit],
        "audit_total": view.audit_total,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbkeeper status",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--state-table", required=True, metavar="NAME", help="the stack's StateTableName"
    )
    parser.add_argument(
        "--project", action="append", metavar="ID", help="project id (repeat for more)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    parser.add_argument(
        "--limit", type=int, default=20, help="audit records per project (default: 20)"
    )
    parser.add_argument(
        "--timezone",
        default=os.environ.get("NBKEEPER_TIMEZONE", "UTC"),
        help="IANA timezone for the times shown (default: NBKEEPER_TIMEZONE or UTC)",
    )
    return parser


def run(
    argv: list[str],
    *,
    table: Any = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """`nbkeeper status`; tests pass the table, environment, time and streams."""
    out, err = out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    now = now or datetime.now(UTC)
    try:
        zone = ZoneInfo(args.timezone)
    except (ValueError, ZoneInfoNotFoundError):
        print(f"nbkeeper status: --timezone {args.timezone!r} is not an IANA timezone", file=err)
        return 2
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if table is None:
            import boto3

            table = boto3.resource("dynamodb").Table(args.state_table)
        projects = args.project or [p for p in [environ.get("MODELARTS_PROJECT_ID", "")] if p]
        projects = projects or discover_projects(table)
        views = read(table, projects, now, max(0, args.limit))
    except (BotoCoreError, ClientError) as exc:
        print(
            f"nbkeeper status: --state-table {args.state_table}: cannot read it ({exc}); check "
            "the table name, the AWS region and profile, and dynamodb:Query/Scan permission",
            file=err,
        )
        return 2
    if args.json:
        document = {
            "state_table": args.state_table,
            "at": iso(now),
            "projects": [as_json(v) for v in views],
        }
        print(json.dumps(document, indent=2, ensure_ascii=False), file=out)
        return 0
    print(
        f"nbkeeper state in DynamoDB table {args.state_table} as of {_when(now, zone)} "
        "(read-only; expired warnings and reservations left out, as a pass does)",
        file=out,
    )
    if not views:
        print("No project has state in this table yet.", file=out)
    for view in views:
        print_view(view, zone, out)
    return 0


def main(argv: list[str]) -> int:
    return run(argv)
