"""Lease keeper fan-out, end to end: the real keeper handler, with more projects than
`max_projects_per_pass`, enqueues one sweep-project message per project to moto SQS; the real
worker handler runs each one as a one-project keeper pass against the emulator.

Two projects at 10:15 on Monday 4 March 2024 (working hours): in the first, a notebook with a
busy kernel whose lease ends at 10:30 (prolonged); in the second, one idle since 09:01 (warned).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import httpx
import pytest
import yaml

from nbkeeper.dynamo import DynamoStateStore
from nbkeeper.modelarts.auth import Credentials, SignerAuth
from nbkeeper.modelarts.retry import NO_RETRY
from nbkeeper_local.emulator import ActivityPattern, Emulator
from tests.emulator_fixtures import (
    ACCESS_KEY,
    CREATE_BODY,
    EMULATOR_BASE_URL,
    EMULATOR_START,
    PROJECT_ID,
    SECRET_KEY,
    no_sleep,
)
from tests.functional.slack_world import FakeLambdaContext, World, load_app, sqs_event

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "events" / "schedule.json").read_text())
REGION = "ap-southeast-3"
OTHER_PROJECT = "9f8e7d6c5b4a30291807f6e5d4c3b2a1"
AT = EMULATOR_START + timedelta(hours=1, minutes=15)


@pytest.fixture
def fan_out(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, aws: None
) -> tuple[World, ModuleType]:
    """The Slack world (moto queues and tables, the real worker) plus the real keeper, both
    reading one policy: two projects, at most one per pass."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "projects": [
                    {"region": REGION, "project_id": PROJECT_ID},
                    {"region": REGION, "project_id": OTHER_PROJECT},
                ],
                "max_projects_per_pass": 1,
                "warning_channel": "C0NOTEBOOKS",
            }
        )
    )
    monkeypatch.setenv("POLICY_PATH", str(policy))
    world = World(emulator, monkeypatch)
    keeper = load_app("lease_keeper")
    transport = emulator.asgi_transport()
    keeper.seams.modelarts_transport = transport
    keeper.seams.jupyter_transport = transport
    keeper.seams.slack_transport = httpx.MockTransport(world.slack)
    keeper.seams.modelarts_options = {"sleep": no_sleep, "retry": NO_RETRY}
    world.worker.seams.modelarts_options = {"sleep": no_sleep, "retry": NO_RETRY}
    # Passes decide by the wall clock (events can be late): here, the emulator's.
    keeper.seams.clock = world.worker.seams.clock = lambda: emulator.now().timestamp()
    return world, keeper


def create(emulator: Emulator, project_id: str, name: str, hours: int) -> str:
    async def go() -> httpx.Response:
        auth = SignerAuth(Credentials(ACCESS_KEY, SECRET_KEY), project_id)
        async with httpx.AsyncClient(
            transport=emulator.asgi_transport(), base_url=EMULATOR_BASE_URL, auth=auth
        ) as client:
            return await client.post(
                f"/v1/{project_id}/notebooks",
                json={**CREATE_BODY, "name": name, "duration": hours * 3_600_000},
            )

    reply = asyncio.run(go())
    assert reply.status_code in (200, 201), reply.text
    return str(reply.json()["id"])


def lease_deadline(emulator: Emulator, notebook_id: str) -> Any:
    return emulator.find(notebook_id).deadline_ms


def test_fanned_out_sweeps_run_in_the_worker_once(
    fan_out: tuple[World, ModuleType], emulator: Emulator
) -> None:
    world, keeper = fan_out
    idle = create(emulator, OTHER_PROJECT, "idle", hours=2)
    emulator.advance(60)
    now_ms = int(emulator.now().timestamp() * 1000)
    emulator.set_activity(
        idle,
        pattern=ActivityPattern.IDLE,
        last_activity=emulator.now(),
        kernels=[{"execution_state": "idle", "last_activity_ms": now_ms}],
    )
    emulator.advance(EMULATOR_START + timedelta(minutes=30) - emulator.now())
    busy = create(emulator, PROJECT_ID, "busy", hours=1)
    emulator.advance(60)
    emulator.set_activity(busy, pattern=ActivityPattern.BUSY)
    emulator.advance(AT - emulator.now())

    # The keeper only fans out: one message per project, nothing decided yet.
    event = {**EVENT, "time": AT.isoformat().replace("+00:00", "Z")}
    summary = keeper.lambda_handler(event, FakeLambdaContext())
    assert summary["fanned_out"] == 2 and summary["notebooks"] == 0
    messages = world.receive(world.queue_url)
    bodies = [json.loads(m["Body"]) for m in messages]
    assert sorted(b["project"]["project_id"] for b in bodies) == sorted([PROJECT_ID, OTHER_PROJECT])
    assert {b["type"] for b in bodies} == {"sweep-project"}
    assert all(b["at"].startswith("2024-03-04T10:15:00") for b in bodies)

    # The real worker runs both sweeps.
    result = world.worker.lambda_handler(sqs_event(world.queue_url, messages), FakeLambdaContext())
    assert result["batchItemFailures"] == []
    store = DynamoStateStore(boto3.resource("dynamodb").Table("state"))
    trail = {
        project: [(r.notebook_id, r.action, r.outcome) for r in store.list_audit(project, AT)]
        for project in (PROJECT_ID, OTHER_PROJECT)
    }
    assert trail == {PROJECT_ID: [(busy, "prolong", "ok")], OTHER_PROJECT: [(idle, "warn", "ok")]}
    assert all(r.at == AT for p in trail for r in store.list_audit(p, AT))
    assert idle in store.load_project(OTHER_PROJECT, AT).warnings
    deadline = lease_deadline(emulator, busy)
    posts = len(world.slack.posts)
    warnings = [b for _, b, _ in world.slack.posts if b.get("channel") == "C0NOTEBOOKS"]
    assert any("idle" in json.dumps(b) for b in warnings)

    # SQS delivers the same messages again: Idempotency returns the stored results.
    again = world.worker.lambda_handler(sqs_event(world.queue_url, messages), FakeLambdaContext())
    assert again["batchItemFailures"] == []
    assert {
        project: [(r.notebook_id, r.action, r.outcome) for r in store.list_audit(project, AT)]
        for project in (PROJECT_ID, OTHER_PROJECT)
    } == trail
    assert lease_deadline(emulator, busy) == deadline
    assert len(world.slack.posts) == posts  # no second warning, no second summary
