"""`nbkeeper plan`: what would the lease keeper do now? A dry-run pass, no AWS needed.

Lists and probes the notebooks of the configured endpoint (MODELARTS_* / HUAWEICLOUD_SDK_*
environment, as the functions read it), decides with the policy, and prints the decisions without
renewing, stopping or warning anything. nbkeeper's own state (reservations, pending warnings) lives
in DynamoDB and is not read, so a plan shows warnings where a pass might already stop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from typing import TextIO

import httpx

from nbkeeper.activity import JupyterProber, probe_limits
from nbkeeper.decide import Action
from nbkeeper.keeper import KeeperClient, NotebookOutcome, PassReport, run_pass
from nbkeeper.keeper_runtime import DEFAULT_POLICY_PATH
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.regions import endpoint_for
from nbkeeper.policy import Policy, PolicyError, ProjectRef, load_policy_file, load_policy_text
from nbkeeper.settings import ModelArtsSettings, SettingsError, build_client, load_settings
from nbkeeper.store import MemoryStateStore

SHIPPED_POLICY = DEFAULT_POLICY_PATH
DEFAULT_RATE_LIMIT = 20.0


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
        help="policy YAML (default: the one shipped in the layer, shared/nbkeeper/policy.yaml)",
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per notebook instead of a table"
    )
    return parser


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


async def plan(settings: ModelArtsSettings, policy: Policy, now: datetime) -> PassReport:
    projects = policy.projects or [
        ProjectRef(region=settings.region, project_id=settings.project_id)
    ]
    clients: dict[ProjectRef, AsyncModelArtsClient] = {}

    def client_for(project: ProjectRef) -> KeeperClient:
        if project not in clients:
            update: dict[str, str] = {"project_id": project.project_id}
            if project.region != settings.region:
                update |= {"region": project.region}
                update |= {"endpoint": endpoint_for(project.region, os.environ)}
            clients[project] = build_client(
                settings.model_copy(update=update),
                rate_limit=DEFAULT_RATE_LIMIT / len(projects),
            )
        return clients[project]

    try:
        async with httpx.AsyncClient(limits=probe_limits(policy.probe_concurrency)) as http:
            prober = JupyterProber(
                http, concurrency=policy.probe_concurrency, timeout=policy.probe_timeout_seconds
            )
            return await run_pass(
                projects,
                client_for,
                prober,
                MemoryStateStore(),
                None,
                policy,
                now,
                dry_run=True,
                post_summary=False,
            )
    finally:
        for client in clients.values():
            await client.aclose()


def row(outcome: NotebookOutcome) -> dict[str, object]:
    data: dict[str, object] = {
        "notebook_id": outcome.notebook_id,
        "name": outcome.name,
        "project_id": outcome.project_id,
        "action": outcome.action.value,
        "reason": outcome.decision.reason,
    }
    if outcome.action is Action.PROLONG:
        data["duration"] = outcome.decision.duration_ms
        data["extend_ms"] = outcome.decision.extend_ms
    if outcome.action is Action.WARN:
        data["warning"] = outcome.decision.warning_kind
    if outcome.action is Action.STOP:
        data["hours_saved"] = round(outcome.decision.hours_saved, 3)
    return data


def print_table(report: PassReport, out: TextIO) -> None:
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
    counts = report.counts
    print(
        f"\n{len(report.outcomes)} running notebooks at {report.at.isoformat()}: "
        f"{counts['prolong']} to prolong, {counts['warn']} to warn, {counts['stop']} to stop, "
        f"{counts['noop']} to leave alone. Dry run: nothing was changed.",
        file=out,
    )


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
    report = asyncio.run(plan(settings, policy, now))
    for project in report.project_errors:
        print(f"nbkeeper plan: project {project.project_id}: {project.error}", file=sys.stderr)
    if args.json:
        for outcome in report.outcomes:
            print(json.dumps(row(outcome), ensure_ascii=False))
    else:
        print_table(report, sys.stdout)
    return 1 if report.project_errors else 0
