"""`make demo`: a working day of nbkeeper, end to end, on loopback (emulator + moto + fake Slack).

Everything goes through the real code. Slash commands are signed like Slack signs them and sent
to the real webhook handler; queued commands are received from the moto SQS server and handed to
the real worker handler; every five simulated minutes the real lease keeper handler runs with an
EventBridge Scheduler event. ModelArts is the emulator served over HTTP, with simulated time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nbkeeper_local.emulator.clock import SimClock
from nbkeeper_local.emulator.core import Emulator
from nbkeeper_local.emulator.jupyter import ActivityPattern
from nbkeeper_local.harness import (
    DEMO_ADMIN,
    FakeLambdaContext,
    HandlerOutput,
    LocalWorld,
    demo_policy,
    handler_output,
    interaction_event,
    load_function,
    local_world,
    slash_command_event,
    worker_round,
)
from nbkeeper_local.slacktext import indent, render

DAY = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
START = DAY.replace(hour=8, minute=45)
END = DAY.replace(hour=21, minute=5)
PASS_EVERY = timedelta(minutes=5)
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", DEMO_ADMIN
NAMES = {ALICE: "alice", BOB: "bob", CAROL: "carol (admin)"}
FLEET_VERBS = {"prolong": "prolonged", "warn": "warned", "stop": "stopped"}


@dataclass
class Timeline:
    """One line per event, stamped with simulated time in `zone`; counts for the summary."""

    clock: SimClock
    zone: tzinfo = UTC
    started: float = field(default_factory=time.monotonic)
    counts: Counter[str] = field(default_factory=Counter)
    hours_saved: float = 0.0
    cost_saved: float = 0.0

    def say(self, text: str, indent: int = 0) -> None:
        """A line stamped with the simulated time; further lines of `text` align under it."""
        pad = "    " * indent
        first, *rest = text.splitlines() or [""]
        print(f"  {self.clock.now().astimezone(self.zone):%H:%M}  {pad}{first}", flush=True)
        for line in rest:
            print(f"         {pad}{line}".rstrip(), flush=True)

    def chapter(self, title: str) -> None:
        print(f"\n== {title}", flush=True)


class Story:
    """The world plus the three real handlers, and the moves a person or a schedule makes."""

    def __init__(self, world: LocalWorld, timeline: Timeline, logs: HandlerOutput) -> None:
        self.world = world
        self.emulator = world.emulator
        self.timeline = timeline
        self.logs = logs
        with logs.captured():
            self.commands = load_function("slack_commands")
            self.worker = load_function("notebook_worker")
            self.keeper = load_function("lease_keeper")
        # Simulated time everywhere: Slack signs with it, the webhook and worker read it, and
        # follow-ups are due at once while the emulator's clock moves instead.
        self.worker.seams.max_followup_delay = 0
        self.worker.seams.clock = lambda: self.emulator.now().timestamp()
        self.keeper.seams.clock = lambda: self.emulator.now().timestamp()
        self.commands.seams.clock = lambda: int(self.emulator.now().timestamp())
        self.sqs = world.boto3_client("sqs")
        self.ids: dict[str, str] = {}
        self.triggers = 0
        self.asked: dict[str, str] = {}  # response_url path -> who asked
        self.seen_audit: set[tuple[str, str, str]] = set()
        self.last_warning: dict[str, dict[str, Any]] = {}
        self.fleet_actions: Counter[str] = Counter()
        self.channel_posts = 0
        self.clicked_stop = False
        self.gone_home = False

    def invoke(self, module: ModuleType, event: dict[str, Any], name: str) -> Any:
        """Call a handler as Lambda would; its JSON logs and EMF metrics go to the log file,
        since the timeline tells the story (--verbose shows them)."""
        with self.logs.captured():
            return module.lambda_handler(event, FakeLambdaContext(name))

    def response_url(self, user: str, kind: str) -> str:
        self.triggers += 1
        path = f"T0DEMO/{self.triggers}/{kind}"
        self.asked[f"/commands/{path}"] = user
        return self.world.slack.response_url(path)

    # ------------------------------------------------------------------ Slack side

    def slash(self, user: str, text: str) -> dict[str, Any]:
        """A signed `/nb` command through the webhook; prints and returns the ephemeral ack."""
        response_url = self.response_url(user, "demo")
        event = slash_command_event(text, user, response_url, at=self.emulator.now().timestamp())
        self.timeline.say(f"{NAMES[user]}: /nb {text}")
        response = self.invoke(self.commands, event, "slack-commands")
        reply: dict[str, Any] = json.loads(response.get("body") or "{}")
        status = response["statusCode"]
        ack = f"ack {status}, only {NAMES[user]} sees it:" if status == 200 else f"ack {status}:"
        self.timeline.say(f"{ack}\n{indent(render(reply))}", indent=1)
        self.drain()
        return reply

    def click(self, user: str, message: dict[str, Any], action_id: str) -> None:
        """Press a button of a message, as Slack posts it to the interactions route."""
        button = next(
            element
            for block in message.get("blocks", [])
            if block.get("type") == "actions"
            for element in block["elements"]
            if element.get("action_id") == action_id
        )
        response_url = self.response_url(user, "click")
        event = interaction_event(
            user, action_id, button["value"], response_url, at=self.emulator.now().timestamp()
        )
        self.timeline.say(f"{NAMES[user]} clicks [{button['text']['text']}]")
        response = self.invoke(self.commands, event, "slack-commands")
        self.timeline.say(f"ack {response['statusCode']}", indent=1)
        self.drain()

    def show_slack(self) -> None:
        """Print what reached the story's people; count what went to the team channel."""
        for post in self.world.slack.take():
            body = post.body
            if post.path.endswith("/conversations.open"):
                continue
            channel = str(body.get("channel", ""))
            if any(b.get("type") == "actions" for b in body.get("blocks", [])):
                self.last_warning[channel] = body
            text = indent(render(body))
            if post.path.startswith("/commands/"):
                who = NAMES.get(self.asked.get(post.path, ""), "the person who asked")
                self.timeline.say(f"Slack, reply to {who}:\n{text}", indent=1)
            elif channel in NAMES or channel.startswith("D"):
                who = NAMES.get(channel, channel)
                self.timeline.say(f"Slack, DM to {who}:\n{text}", indent=1)
            else:
                self.channel_posts += 1

    # ------------------------------------------------------------------ queue side

    def drain(self, rounds: int = 40) -> None:
        """Run the worker over both queues until they are quiet; time moves 30 s a round."""
        urls = [self.world.env["COMMANDS_QUEUE_URL"], self.world.env["FOLLOWUP_QUEUE_URL"]]
        for _ in range(rounds):
            worked = worker_round(
                self.sqs, urls, lambda event: self.invoke(self.worker, event, "notebook-worker")
            )
            self.show_slack()
            if not worked:
                return
            self.emulator.advance(timedelta(seconds=30))

    # ------------------------------------------------------------------ schedule side

    def keeper_pass(self) -> dict[str, Any]:
        now = self.emulator.now()
        event = {"source": "nbkeeper.schedule", "time": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        summary: dict[str, Any] = self.invoke(self.keeper, event, "lease-keeper")
        self.timeline.counts.update(
            {k: int(summary.get(k, 0)) for k in ("prolong", "warn", "stop")}
        )
        self.timeline.hours_saved += float(summary.get("hours_saved", 0))
        self.timeline.cost_saved += float(summary.get("cost_saved", 0))
        self.show_audit(now)
        self.show_slack()
        self.drain()
        return summary

    def show_audit(self, now: datetime) -> None:
        from nbkeeper.dynamo import DynamoStateStore

        table = self.world.boto3_resource("dynamodb").Table(self.world.env["STATE_TABLE"])
        records = DynamoStateStore(table).list_audit(self.world.project_id, now)
        fleet: Counter[str] = Counter()
        story_names = set(self.ids)
        for record in records:
            key = (record.notebook_id, record.action, record.at.isoformat())
            if key in self.seen_audit or record.action == "noop":
                continue
            self.seen_audit.add(key)
            if record.notebook_name in story_names:
                self.timeline.say(
                    f"keeper: {record.action} {record.notebook_name}: {record.reason}", indent=1
                )
            else:
                fleet[record.action] += 1
        self.fleet_actions.update(fleet)

    def report_fleet(self, until: datetime) -> None:
        """One line per simulated hour for the seeded fleet's actions and channel posts."""
        if self.fleet_actions or self.channel_posts:
            parts = [
                f"{n} {FLEET_VERBS.get(action, action)}"
                for action, n in sorted(self.fleet_actions.items())
            ]
            posts = self.channel_posts
            parts.append(
                f"{posts} post{'' if posts == 1 else 's'} to #notebooks (warnings, pass summaries)"
            )
            print(
                f"  {until.astimezone(self.timeline.zone):%H:%M}  · hour so far, rest of the fleet: {', '.join(parts)}"
            )
        self.fleet_actions.clear()
        self.channel_posts = 0

    def react_to_warning(self) -> None:
        """Bob, warned in the evening, presses [Stop now] instead of waiting."""
        warning = self.last_warning.get(BOB)
        if warning and self.gone_home and not self.clicked_stop:
            self.clicked_stop = True
            self.click(BOB, warning, "keeper.stop")

    # ------------------------------------------------------------------ people at work

    def set_activity(self, name: str, pattern: ActivityPattern) -> None:
        self.emulator.set_activity(
            self.ids[name], pattern=pattern, last_activity=self.emulator.now()
        )
        self.timeline.say(f"({name} is now {pattern.value})")

    def learn_ids(self) -> None:
        for record in self.emulator.store.projects[self.world.project_id].records.values():
            if record.name in {"alice-train", "bob-etl"}:
                self.ids[record.name] = record.id


Scripted = Callable[[Story], None]


def script(day: datetime = DAY) -> dict[datetime, Scripted]:
    """What people do, and when (on `day`, in its timezone)."""

    def at(hour: int, minute: int) -> datetime:
        return day.replace(hour=hour, minute=minute)

    def morning(s: Story) -> None:
        s.timeline.chapter("Morning: two notebooks created from Slack, images by name")
        s.slash(ALICE, "images pytorch")
        s.slash(ALICE, "create alice-train image=pytorch2.1 flavor=modelarts.vm.gpu.t4 hours=2")
        s.slash(BOB, "create bob-etl hours=1")  # the deploy's default image, a public CPU one
        s.learn_ids()
        s.set_activity("alice-train", ActivityPattern.BUSY)
        s.set_activity("bob-etl", ActivityPattern.ACTIVE)
        s.slash(BOB, "list mine")

    def not_yours(s: Story) -> None:
        s.timeline.chapter("Permissions: bob tries to stop alice's notebook")
        s.slash(BOB, "stop alice-train")

    def lunch(s: Story) -> None:
        s.timeline.chapter("Lunch: bob's notebook goes idle")
        s.set_activity("bob-etl", ActivityPattern.IDLE)

    def back(s: Story) -> None:
        s.timeline.chapter("After lunch: bob starts his notebook again")
        s.slash(BOB, "start bob-etl hours=2")
        s.set_activity("bob-etl", ActivityPattern.ACTIVE)

    def reserve(s: Story) -> None:
        s.timeline.chapter("Late afternoon: alice reserves her training run for the evening")
        s.slash(ALICE, "keep alice-train until 23:00")

    def going_home(s: Story) -> None:
        s.timeline.chapter(
            "Evening: alice's training ends (reserved); bob leaves his notebook open"
        )
        s.set_activity("alice-train", ActivityPattern.IDLE)
        s.set_activity("bob-etl", ActivityPattern.IDLE)
        s.last_warning.pop(BOB, None)
        s.gone_home = True

    def evening(s: Story) -> None:
        s.timeline.chapter("After working hours (20:00): warnings, a button, stops")

    def reserved(s: Story) -> None:
        s.slash(ALICE, "status alice-train")
        s.timeline.chapter("Alice keeps her environment: she saves her notebook as an image")
        s.slash(ALICE, "save alice-train as alice-env:v1")

    def cleanup(s: Story) -> None:
        s.timeline.chapter("Clean-up: bob deletes his notebook (with confirmation)")
        reply = s.slash(BOB, "delete bob-etl")
        s.click(BOB, reply, "nbkeeper.confirm")
        s.slash(CAROL, "list all")

    return {
        at(8, 50): morning,
        at(11, 30): not_yours,
        at(12, 0): lunch,
        at(13, 40): back,
        at(17, 0): reserve,
        # Bob leaves an hour before working hours end: at 20:00 he has been quiet for the
        # shipped off-hours threshold (60 min), so the evening chapter starts with his warning.
        at(19, 0): going_home,
        at(19, 58): evening,
        at(20, 50): reserved,
        at(21, 0): cleanup,
    }


def run(fleet: int, timezone: str = "UTC", verbose: bool = False) -> int:
    """The story, its times in `timezone` (the policy's and `keep until`'s too)."""
    zone = ZoneInfo(timezone)
    day = DAY.replace(tzinfo=zone)
    start, end = day.replace(hour=START.hour, minute=START.minute), day.replace(hour=21, minute=5)
    clock = SimClock.stepped(start)
    emulator = Emulator(clock=clock)
    if fleet:
        emulator.seed_fleet(size=fleet)
    timeline = Timeline(clock, zone)
    events = script(day)
    print(f"nbkeeper demo: a Monday, in simulated time ({timezone}), through the real handlers")
    with (
        demo_policy(timezone) as policy_path,
        handler_output("demo", verbose) as logs,
        local_world(
            emulator,
            extra_env={
                "POLICY_PATH": str(policy_path),
                "SLACK_ADMINS": CAROL,
                "NBKEEPER_TIMEZONE": timezone,
            },
        ) as world,
    ):
        print(f"  emulator {world.emulator_url} · moto {world.moto_url} · slack {world.slack.url}")
        print(f"  fleet: {fleet} seeded notebooks besides the story's; keeper every 5 min")
        print(f"  {logs.where()}")
        story = Story(world, timeline, logs)
        now = start
        next_hour = start.replace(minute=0) + timedelta(hours=1)
        while now <= end:
            for moment in sorted(m for m in events if m <= now):
                events.pop(moment)(story)
            if now >= next_hour:
                story.report_fleet(now)
                next_hour += timedelta(hours=1)
            if now.minute % 5 == 0:
                story.keeper_pass()
                story.react_to_warning()
                timeline.counts["passes"] += 1
            now += PASS_EVERY if now.minute % 5 == 0 else timedelta(minutes=5 - now.minute % 5)
            emulator.clock.set(now)
        counts = emulator.store.counts().get(world.project_id, {})
    print("\n== Summary")
    states = ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
    print(f"  notebooks in the project at {end:%H:%M %Z}: {sum(counts.values())} ({states})")
    print(f"  keeper passes: {timeline.counts['passes']}")
    print(
        f"  actions: {timeline.counts['prolong']} prolonged, {timeline.counts['warn']} warned, "
        f"{timeline.counts['stop']} stopped by the keeper"
    )
    print(f"  saved: {timeline.hours_saved:.1f} notebook-hours, {timeline.cost_saved:.2f} USD")
    print(f"  wall time: {time.monotonic() - timeline.started:.1f} s; {logs.where()}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="nbkeeper demo",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--fleet", type=int, default=24, help="notebooks seeded besides the story's"
    )
    parser.add_argument(
        "--timezone",
        default="UTC",
        help="IANA timezone of the story's day, the policy (working hours) and `keep until`",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show the handlers' JSON logs and metrics here"
    )
    args = parser.parse_args(argv)
    try:
        ZoneInfo(args.timezone)
    except (ValueError, ZoneInfoNotFoundError):
        parser.error(f"--timezone {args.timezone!r} is not an IANA timezone (e.g. Europe/Paris)")
    return run(args.fleet, args.timezone, args.verbose)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
