"""`make demo`: the nbkeeper story, end to end, on loopback (emulator + moto + fake Slack).

Everything goes through the real code: the shared client signs real requests to the emulator
served over HTTP, and the chapters that involve Lambda call the real handlers with events shaped
like API Gateway's, SQS's and EventBridge Scheduler's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from nbkeeper.modelarts.auth import Credentials, SignerAuth
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.schemas import HOUR_MS, NotebookCreateRequest, NotebookStatus
from nbkeeper_local.emulator.clock import SimClock
from nbkeeper_local.emulator.core import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, Emulator
from nbkeeper_local.harness import LocalWorld, local_world

MONDAY_MORNING = datetime(2026, 11, 23, 8, 50, tzinfo=UTC)
DEMO_IMAGE = "e1a07296-22a8-4f05-8bc8-e936c8e54090"


@dataclass
class Timeline:
    """Prints one line per event with the simulated time, and counts what happened."""

    clock: SimClock
    started: float = field(default_factory=time.monotonic)
    counts: dict[str, int] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(f"  {self.clock.now():%a %H:%M}  {text}", flush=True)

    def chapter(self, title: str) -> None:
        print(f"\n== {title}", flush=True)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


async def lifecycle_chapter(world: LocalWorld, timeline: Timeline) -> None:
    """The shared ModelArts client against the emulator: create, follow, prolong, stop."""
    timeline.chapter("ModelArts through the shared client (signed requests to the emulator)")
    auth = SignerAuth(Credentials(DEMO_ACCESS_KEY, DEMO_SECRET_KEY))
    async with AsyncModelArtsClient(world.emulator_url, world.project_id, auth) as client:
        created = await client.create_notebook(
            NotebookCreateRequest.model_validate(
                {
                    "name": "alice-experiment",
                    "flavor": "modelarts.vm.cpu.2u",
                    "image_id": DEMO_IMAGE,
                    "volume": {"category": "EVS", "ownership": "MANAGED", "capacity": 50},
                    "lease": {"duration": 2 * HOUR_MS, "type": "TIMING"},
                }
            )
        )
        timeline.count("notebooks created")
        timeline.say(f"created {created.name} ({created.id}): {created.status.value}")
        notebook = created
        for _ in range(20):  # bounded: the emulator settles CREATING within a few minutes
            if notebook.status is not NotebookStatus.CREATING:
                break
            world.emulator.advance(timedelta(seconds=30))
            notebook = await client.show_notebook(created.id)
        timeline.say(f"{notebook.name} is {notebook.status.value}; url {notebook.url}")
        fleet = [nb async for nb in client.iter_notebooks(all_users=True)]
        running = sum(nb.status is NotebookStatus.RUNNING for nb in fleet)
        timeline.say(f"list (all users): {len(fleet)} notebooks in the project, {running} running")
        lease = await client.renew_lease(created.id, 3 * HOUR_MS)
        if lease is not None and lease.deadline_ms is not None:
            deadline = datetime.fromtimestamp(lease.deadline_ms / 1000, tz=UTC)
            timeline.say(f"lease prolonged: auto-stop now at {deadline:%H:%M}")
            timeline.count("leases prolonged")
        stopped = await client.stop_notebook(created.id)
        timeline.say(f"stop requested: {stopped.status.value}")
        timeline.count("notebooks stopped")


def run(fleet: int) -> int:
    clock = SimClock.stepped(MONDAY_MORNING)
    emulator = Emulator(clock=clock)
    if fleet:
        emulator.seed_fleet(size=fleet)
    timeline = Timeline(clock)
    print("nbkeeper demo: ModelArts emulator, moto and a fake Slack on 127.0.0.1")
    with local_world(emulator) as world:
        print(f"  emulator {world.emulator_url}   moto {world.moto_url}   slack {world.slack.url}")
        asyncio.run(lifecycle_chapter(world, timeline))
    print("\n== Summary")
    for what, n in sorted(timeline.counts.items()):
        print(f"  {what}: {n}")
    print(f"  wall time: {time.monotonic() - timeline.started:.1f} s")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nbkeeper demo", description=__doc__)
    parser.add_argument(
        "--fleet", type=int, default=12, help="notebooks to seed besides the story's"
    )
    args = parser.parse_args(argv)
    return run(args.fleet)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
