"""Secrets: the demo story (nbkeeper_local.demo's script and people, on the in-process world) and
every error path, run with recognisable secret values: the access key and secret key, the Slack
signing secret and bot token, every notebook's Jupyter token, and response_url paths. Every
captured log line, printed line, webhook reply, Slack message, queue and DLQ body, state and
idempotency record and exception text is searched for them: 0 occurrences.

The bot token may appear in exactly one place: the Authorization header of Slack Web API calls.
A response_url may appear in exactly one place: its state-table item (COMMAND#{id} / RESPURL,
30-minute TTL), where the webhook keeps it instead of the queue body.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType
from typing import Any

import httpx
import pytest

from nbkeeper.commands import Requester, StopCommand, encode_command
from nbkeeper.worker.deadletters import DEAD_LETTER_SOURCE
from nbkeeper_local import demo
from nbkeeper_local.emulator import FaultKind
from nbkeeper_local.harness import HandlerOutput, SlackPost, demo_policy, load_function
from tests.reliability.capture import (
    LEDGER,
    Capture,
    PrintedLines,
    attach,
    capturing,
    printed,
    record_queue_bodies,
    scan_tables,
)
from tests.reliability.chaos import ProbeChaos
from tests.reliability.conftest import suite_figures
from tests.reliability.figures import Report, SuiteFigures
from tests.reliability.simworld import PROJECT_ID, Context, World, environment, no_sleep, world

pytestmark = pytest.mark.reliability

AK = "AKLEAKRELIABILITY0001"
SK = "skLEAKreliability0001secret"
SIGNING = "signingLEAKreliability0001"
BOT = "xoxb-LEAK-reliability-0001"
RESPONSE_MARK = "RURLLEAK"
FLEET = {"bounded": 4, "full": 24}
SEE = {
    "access key": "(issue 10 #9)",
    "response_url path": "(issue 10, also decide: response_url in message bodies)",
}


@pytest.fixture
def figures(reliability: Report) -> Iterator[SuiteFigures]:
    yield from suite_figures(reliability, "secrets", __doc__)


@dataclass
class StorySlack:
    """The demo's fake Slack (harness.FakeSlack's interface) over an httpx MockTransport, with
    response_urls on Slack's hooks host and a recognisable secret path."""

    capture: Capture
    url: str = "https://hooks.slack.com"
    posts: list[SlackPost] = field(default_factory=list)
    refuse: bool = False  # every Web API call fails, every response_url is refused
    authorizations: list[tuple[str, str]] = field(default_factory=list)
    made: int = 0

    def response_url(self, name: str) -> str:
        self.made += 1
        return f"https://hooks.slack.com/commands/{name}/{RESPONSE_MARK}{self.made:05d}"

    def take(self) -> list[SlackPost]:
        taken, self.posts = self.posts, []
        return taken

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        path = request.url.path
        auth = request.headers.get("authorization")
        if auth:
            self.authorizations.append((str(request.url.copy_with(query=None)), auth))
        self.capture.slack.append(json.dumps(body))
        self.posts.append(SlackPost(path, body, auth))
        if not path.startswith("/api/"):
            return httpx.Response(404 if self.refuse else 200, text="ok")
        if self.refuse:
            return httpx.Response(200, json={"ok": False, "error": "invalid_auth"})
        reply: dict[str, Any] = {"ok": True, "ts": f"{len(self.posts)}.0001"}
        if path.endswith("conversations.open"):
            reply["channel"] = {"id": "D" + str(body.get("users", "U"))}
        return httpx.Response(200, json=reply)


class Story(demo.Story):
    """demo.Story whose handler output (`logs`, a `PrintedLines` stream) and errors are
    captured for the search."""

    capture: Capture

    def invoke(self, module: ModuleType, event: dict[str, Any], name: str) -> Any:
        with printed(self.capture), self.logs.captured():
            try:
                result = module.lambda_handler(event, Context(function_name=name))
            except Exception as exc:
                self.capture.errors.append(f"{type(exc).__name__}: {exc}")
                raise
        if name == "slack-commands":
            self.capture.replies.append(str(result.get("body", "")))
        return result


@dataclass
class StoryWorld:
    """What demo.Story needs from harness.LocalWorld, over the in-process world."""

    w: World
    slack: StorySlack
    emulator_url: str = "in-process"
    moto_url: str = "in-process"
    project_id: str = PROJECT_ID
    resources: dict[str, Any] = field(default_factory=dict)

    @property
    def emulator(self) -> Any:
        return self.w.emulator

    @property
    def env(self) -> dict[str, str]:
        return self.w.env

    def boto3_client(self, service: str) -> Any:
        import boto3

        return boto3.client(service)

    def boto3_resource(self, service: str) -> Any:
        """One per service (the demo asks for one at every pass; making one takes ~10 ms)."""
        import boto3

        if service not in self.resources:
            self.resources[service] = boto3.resource(service)
        return self.resources[service]


def test_secrets(
    size: str, seed: int, figures: SuiteFigures, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture = Capture()
    tokens: list[str] = []
    secrets_env = {
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "SLACK_SIGNING_SECRET": SIGNING,
        "SLACK_BOT_TOKEN": BOT,
        "SLACK_ADMINS": demo.CAROL,
        "NBKEEPER_TIMEZONE": "UTC",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }
    monkeypatch.setattr(
        demo, "slash_command_event", functools.partial(demo.slash_command_event, secret=SIGNING)
    )
    monkeypatch.setattr(
        demo, "interaction_event", functools.partial(demo.interaction_event, secret=SIGNING)
    )
    with demo_policy() as policy_path, capturing(capture):
        env = {**secrets_env, "POLICY_PATH": str(policy_path)}
        with world(seed, env=env, handlers=(), start=demo.START) as w:
            remember_tokens(w, tokens)
            slack = StorySlack(capture)
            story = story_in(w, slack, capture, FLEET[size])
            run_story(story, w)
            foreign = error_paths(story, w, slack, capture)
            for url in (w.dlq_url, w.followup_dlq_url):
                bodies = [m["Body"] for m in w.drain_queue(url)]
                capture.queue_bodies += [b for b in bodies if b not in foreign]
            scan_tables(capture, [w.env["STATE_TABLE"], w.env["IDEMPOTENCY_TABLE"]])
            bearer = {url for url, auth in slack.authorizations}
        settings_errors(capture, secrets_env)
    patterns = {
        "access key": re.escape(AK),
        "secret key": re.escape(SK),
        "signing secret": re.escape(SIGNING),
        "bot token": re.escape(BOT),
        "notebook token": "|".join(re.escape(t) for t in tokens),
        "response_url path": RESPONSE_MARK + r"\d+",
    }
    found = capture.search(patterns, allowed={LEDGER: "response_url path"})
    for source, items in capture.sources().items():
        figures.add(f"searched: {source}", len(items))
    figures.add("notebook tokens searched for", len(tokens))
    for name in patterns:
        hits = {src: len(v) for (n, src), v in found.items() if n == name}
        where = ", ".join(f"{k} {v}" for k, v in hits.items())
        figures.check(
            f"occurrences: {name}", sum(hits.values()), note=f"{where} {SEE.get(name, '')}"
        )
    outside = sorted(u for u in bearer if not u.startswith("https://slack.com/api/"))
    figures.check("bot token sent anywhere but the Slack Web API", len(outside))
    for (name, source), excerpts in found.items():
        for excerpt in excerpts[:3]:
            figures.detail(f"{name} in {source}: ...{excerpt}...")
    assert not figures.failures, figures.failure_message()


def remember_tokens(w: World, tokens: list[str]) -> None:
    """Every notebook token the emulator hands out (deleted notebooks' too)."""
    store = w.emulator.store
    make = store._new_record

    def new_record(*args: Any, **kwargs: Any) -> Any:
        record = make(*args, **kwargs)
        tokens.append(record.token)
        return record

    store._new_record = new_record  # type: ignore[method-assign]


def story_in(w: World, slack: StorySlack, capture: Capture, fleet: int) -> Story:
    w.emulator.seed_fleet(size=fleet)
    logs = HandlerOutput(PrintedLines(capture))
    story = Story(StoryWorld(w, slack), demo.Timeline(w.clock), logs)  # type: ignore[arg-type]
    story.capture = capture
    transport = httpx.MockTransport(slack)
    for module in (story.commands, story.worker, story.keeper):
        module.seams.modelarts_transport = w.emulator.asgi_transport()
        module.seams.jupyter_transport = w.emulator.asgi_transport()
        module.seams.modelarts_options = {"sleep": no_sleep, "rng": random.Random(0)}
        module.seams.slack_transport = transport
        record_queue_bodies(module.wiring.sqs, capture)
        attach(module, capture)
    record_queue_bodies(story.sqs, capture)
    w.modules.update(
        slack_commands=story.commands, notebook_worker=story.worker, lease_keeper=story.keeper
    )
    return story


def run_story(story: Story, w: World) -> None:
    """demo.run's loop: the script's people at their times, the keeper every five minutes."""
    events = demo.script()
    now = demo.START
    with printed(story.capture):
        while now <= demo.END:
            for moment in sorted(m for m in events if m <= now):
                events.pop(moment)(story)
            if now.minute % 5 == 0:
                story.keeper_pass()
                story.react_to_warning()
            now += demo.PASS_EVERY if now.minute % 5 == 0 else timedelta(minutes=5 - now.minute % 5)
            w.emulator.clock.set(now)


def error_paths(story: Story, w: World, slack: StorySlack, capture: Capture) -> set[str]:
    """Every way a request can fail, with the secrets in play. Returns the queue bodies this
    test wrote itself as another producer (not nbkeeper's output, so not searched)."""
    with printed(capture):
        story.slash(demo.ALICE, "create secret-nb")
        notebook = next(
            r
            for r in w.emulator.store.project(PROJECT_ID).records.values()
            if r.name == "secret-nb"
        )
        # Credentials ModelArts does not know (rotated): webhook lookups, the worker, the keeper.
        entry = w.emulator.keys.pop(AK)
        story.slash(demo.ALICE, "stop secret-nb")
        queue_stop(story, w, notebook.id, "unknown-key")
        story.keeper_pass()
        # A wrong secret key: the gateway echoes the canonical request (credentials masked).
        w.emulator.keys[AK] = ("not-" + SK, entry[1])
        queue_stop(story, w, notebook.id, "wrong-sk")
        story.slash(demo.ALICE, "status secret-nb")
        w.emulator.keys[AK] = entry
        # Slack refuses everything: response_urls expired, the bot token revoked.
        slack.refuse = True
        story.slash(demo.ALICE, "prolong secret-nb 2")
        story.keeper_pass()
        slack.refuse = False
        # ModelArts failing until the DLQ; a poison message with an author; probes failing.
        w.emulator.set_fault_rate(1.0, (FaultKind.ERROR_500,))
        queue_stop(story, w, notebook.id, "dlq")
        for _ in range(4):
            story.drain()
            w.emulator.advance(120)
        w.emulator.set_fault_rate(0.0)
        # A poison message with an author, from an older producer that still put the
        # response_url in the body: the worker must not copy it anywhere.
        poison = {
            "type": "teleport",
            "command_id": "poison.secret",
            "requested_at": w.emulator.now().isoformat(),
            "requested_by": {
                "user_id": demo.ALICE,
                "response_url": slack.response_url("T0DEMO/p/p"),
            },
        }
        foreign = {json.dumps(poison)}
        w.sqs.send_message(
            QueueUrl=w.queue_url,
            MessageBody=json.dumps(poison),
            MessageGroupId="poison",
            MessageDeduplicationId="poison.secret",
        )
        for _ in range(4):
            story.drain()
            w.emulator.advance(120)
        # A stop whose last receive died with its invocation: the dead-letter reader tells her.
        cut_short = StopCommand(
            command_id="cut-short.secret",
            requested_at=w.emulator.now(),
            requested_by=Requester(user_id=demo.ALICE),
            notebook_id=notebook.id,
            notebook_name="secret-nb",
        )
        w.sqs.send_message(
            QueueUrl=w.dlq_url,
            MessageBody=encode_command(cut_short),
            MessageGroupId=notebook.id,
            MessageDeduplicationId=cut_short.command_id,
        )
        told = story.invoke(story.worker, {"source": DEAD_LETTER_SOURCE}, "notebook-worker")
        assert told.get("dm") == 1, told  # hers; the others were told on their last receive
        story.keeper.seams.jupyter_transport = ProbeChaos(
            w.emulator.asgi_transport(),
            w.emulator,
            load_policy(w),
            w.clock.now_ms,
            random.Random(1),
            failure_rate=1.0,
        )
        story.keeper_pass()
        # The webhook: forged, unreadable, and a queue that refuses messages.
        bad = demo.slash_command_event(
            "list",
            demo.ALICE,
            slack.response_url("T0DEMO/f/f"),
            secret="wrong",
            at=w.emulator.now().timestamp(),
        )
        story.invoke(story.commands, bad, "slack-commands")
        refuse_sends(story.commands)
        story.slash(demo.BOB, "create refused-by-queue")
    return foreign


def queue_stop(story: Story, w: World, notebook_id: str, tag: str) -> None:
    command = StopCommand(
        command_id=f"secret.{tag}",
        requested_at=w.emulator.now(),
        requested_by=Requester(
            user_id=demo.ALICE, response_url=story.world.slack.response_url(f"T0DEMO/{tag}/s")
        ),
        notebook_id=notebook_id,
        notebook_name="secret-nb",
    )
    story.commands.wiring.enqueue(command)  # as the webhook queues it
    story.drain()


def refuse_sends(module: ModuleType) -> None:
    from botocore.exceptions import ClientError

    def fail(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "injected"}}, "SendMessage")

    module.wiring.sqs.meta.events.register("before-call.sqs.SendMessage", fail)


def load_policy(w: World) -> Any:
    from nbkeeper.keeper.policy import load_policy_file

    return load_policy_file(w.env["POLICY_PATH"])


def settings_errors(capture: Capture, secrets: dict[str, str]) -> None:
    """Configuration mistakes at cold start: their messages must not echo the values."""
    from tests.reliability.simworld import base_env

    broken = [
        {"HUAWEICLOUD_SDK_SK": ""},
        {"MODELARTS_ENDPOINT": "ftp://" + AK},
        {"SLACK_BOT_TOKEN": BOT, "SLACK_SECRET": "arn:secret"},
        {"MAX_RECEIVE_COUNT": SK},
        {"NOTEBOOK_DEFAULT_HOURS": SIGNING},
    ]
    for change in broken:
        env = {
            **base_env(),
            **secrets,
            "STATE_TABLE": "state",
            "COMMANDS_QUEUE_URL": "q",
            "FOLLOWUP_QUEUE_URL": "f",
            "IDEMPOTENCY_TABLE": "i",
            **change,
        }
        for name in ("notebook_worker", "slack_commands", "lease_keeper"):
            with environment(env):
                try:
                    load_function(name)
                except Exception as exc:
                    capture.errors.append(f"{name}: {type(exc).__name__}: {exc}")
