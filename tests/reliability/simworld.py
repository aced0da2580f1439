"""The whole pipeline on one simulated clock: the real handlers, moto, the emulator, fake Slack.

- The emulator's `SimClock` is the only clock: the webhook and worker seams read it, Slack signs
  with it, and moto's SQS is patched onto it, so visibility timeouts, redeliveries, `DelaySeconds`
  and the DLQ move happen in simulated seconds (no real sleep anywhere).
- Each handler talks to the emulator through its own `FaultyTransport` and to its own fake Slack.
- `EventSource` is Lambda's SQS event source: it receives batches, invokes the worker, deletes what
  succeeded and leaves failures in flight until their visibility timeout passes; it also kills
  invocations mid-batch or mid-record.
- Spies record what the webhook queued, every worker attempt and every real execution.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, ClassVar

import httpx
from moto.core import serialize as moto_serialize

from nbkeeper.commands import Command, message_group_id
from nbkeeper.worker.deadletters import DEAD_LETTER_SOURCE
from nbkeeper_local.emulator import Emulator, EmulatorConfig, SimClock
from nbkeeper_local.emulator.catalogue import DEFAULT_IMAGE_NAME
from nbkeeper_local.emulator.fleet import DEMO_PROJECT_ID
from nbkeeper_local.harness import (
    MAX_RECEIVE_COUNT,
    FakeLambdaContext,
    create_aws_resources,
    load_function,
    sqs_event,
)
from tests.functional.slack_world import FakeSlack
from tests.reliability.faults import CURRENT_COMMAND, AfterFaults, FaultyTransport, Killed

SIM_START = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
REGION = "eu-west-1"
PROJECT_ID = DEMO_PROJECT_ID


async def no_sleep(seconds: float) -> None:
    return None


def root_id(command_id: str) -> str:
    """The command a follow-up belongs to (`X.f3` -> `X`)."""
    base, sep, last = command_id.rpartition(".f")
    return base if sep and last.isdigit() else command_id


@contextmanager
def moto_on(clock: SimClock) -> Iterator[None]:
    """moto in-process, its SQS clock replaced by the simulated one.

    Also corrects moto's FIFO redelivery order: when several in-flight messages of one group
    time out together, moto 5.2 lets each timed-out message's group count as busy while the
    later ones are still marked pending, so the group's *last* message is delivered first.
    SQS delivers a group in order: messages whose visibility timeout passed are not in flight.
    """
    import moto.sqs.models as sqs_models
    from moto import mock_aws

    real_time, real_millis = sqs_models.unix_time, sqs_models.unix_time_millis
    real_receive = sqs_models.SQSBackend.receive_message

    def unix_time(dt: datetime | None = None) -> float:
        return real_time(dt) if dt is not None else clock.now_ms() / 1000

    def unix_time_millis(dt: datetime | None = None) -> float:
        return real_millis(dt) if dt is not None else float(clock.now_ms())

    def receive_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        for message in [m for m in queue.pending_messages if m.visible]:
            queue.pending_messages.discard(message)
        return real_receive(self, queue_name, *args, **kwargs)

    sqs_models.unix_time, sqs_models.unix_time_millis = unix_time, unix_time_millis
    sqs_models.SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
    serializers = moto_serialize.SERVICE_SPECIFIC_SERIALIZERS
    serializers["dynamodb"] = {"json": PlainJSONDynamoDB}
    try:
        with mock_aws():
            yield
        mismatches, PlainJSONDynamoDB.mismatches[:] = list(PlainJSONDynamoDB.mismatches), []
        assert not mismatches, f"the plain JSON DynamoDB replies differ from moto's: {mismatches}"
    finally:
        sqs_models.unix_time, sqs_models.unix_time_millis = real_time, real_millis
        sqs_models.SQSBackend.receive_message = real_receive  # type: ignore[method-assign]
        serializers.pop("dynamodb", None)


class PlainJSONDynamoDB(moto_serialize.JSONSerializer):
    """moto's DynamoDB answers, serialized as plain JSON for the item operations.

    moto's serializer walks the botocore shape for every attribute of every item (about 1.4 ms
    an item): the state table's reads were half of a suite's time. What moto's DynamoDB
    backend returns for these operations is already the wire form (attribute values as
    {"S": ...}), so `json.dumps` of its output members is the same reply. The first `CHECKED`
    replies of each operation are also serialized moto's way; a difference is answered moto's
    way (so the handlers never see it) and recorded in `mismatches`, which `world` fails on.
    """

    PLAIN = frozenset(
        {"Query", "Scan", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}
    )
    CHECKED = 25
    checked: ClassVar[Counter[str]] = Counter()
    mismatches: ClassVar[list[str]] = []

    def _serialize_result(self, resp: Any, result: Any) -> Any:
        name = self.operation_name
        shape = self.operation_model.output_shape
        if name not in self.PLAIN or not isinstance(result, dict) or shape is None:
            return super()._serialize_result(resp, result)
        members = shape.members  # type: ignore[attr-defined]
        try:
            body = json.dumps({k: v for k, v in result.items() if k in members and v is not None})
        except TypeError:
            return super()._serialize_result(resp, result)
        if self.checked[name] < self.CHECKED:
            self.checked[name] += 1
            expected = super()._serialize_result(resp, result)
            if json.loads(expected["body"]) != json.loads(body):
                self.mismatches.append(f"{name}: {body[:200]} != {expected['body'][:200]}")
            return expected
        resp["body"] = body
        resp["headers"]["Content-Type"] = self._get_protocol_specific_content_type()
        return resp


@contextmanager
def powertools_on(clock: SimClock) -> Iterator[None]:
    """Powertools Idempotency on the simulated clock: it reads `datetime.now()` for a record's
    expiry and for the in-progress expiry (now + the invocation's remaining time), so a record
    left in progress by a killed invocation expires at that invocation's simulated deadline,
    and its redelivery after the visibility timeout runs it again."""
    import datetime as real_dt

    from aws_lambda_powertools.utilities.idempotency import base
    from aws_lambda_powertools.utilities.idempotency.persistence import (
        base as persistence_base,
    )
    from aws_lambda_powertools.utilities.idempotency.persistence import datarecord, dynamodb

    class SimDatetime(real_dt.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return real_dt.datetime.fromtimestamp(clock.now_ms() / 1000, tz)

    class SimModule:
        datetime = SimDatetime

        def __getattr__(self, name: str) -> Any:
            return getattr(real_dt, name)

    modules = (base, persistence_base, datarecord, dynamodb)
    saved = [module.__dict__["dt"] for module in modules]
    for module in modules:
        setattr(module, "dt", SimModule())  # noqa: B010 (mypy does not see the module's dt)
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            setattr(module, "dt", original)  # noqa: B010


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Context(FakeLambdaContext):
    """A Lambda context. With a `deadline_ms` on `clock` (the simulated one), its remaining time
    runs down as simulated time passes, as an invocation's does; else `remaining_ms` throughout."""

    remaining_ms: int = 60_000
    deadline_ms: int | None = None
    clock: Callable[[], int] | None = None

    def get_remaining_time_in_millis(self) -> int:
        if self.deadline_ms is None or self.clock is None:
            return self.remaining_ms
        return max(0, self.deadline_ms - self.clock())


@dataclass
class Attempt:
    """One worker attempt at a record (outer: what Idempotency and the batch processor see)."""

    command_id: str
    at_ms: int
    error: str | None  # None: returned a result


@dataclass
class Execution:
    """One real execution (inside Idempotency): the command ran against ModelArts."""

    command_id: str
    start_ms: int
    end_ms: int
    result: dict[str, Any] | None
    error: str | None


@dataclass
class Sent:
    command: Command
    group: str
    at_ms: int


@dataclass
class World:
    emulator: Emulator
    clock: SimClock
    rng: random.Random
    env: dict[str, str]
    modules: dict[str, ModuleType]
    transports: dict[str, FaultyTransport]
    slacks: dict[str, FakeSlack]
    sqs: Any
    sent: list[Sent] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)

    @property
    def now_ms(self) -> int:
        return self.clock.now_ms()

    def advance(self, seconds: float) -> None:
        self.emulator.advance(seconds)

    @property
    def queue_url(self) -> str:
        return self.env["COMMANDS_QUEUE_URL"]

    @property
    def followup_url(self) -> str:
        return self.env["FOLLOWUP_QUEUE_URL"]

    @property
    def dlq_url(self) -> str:
        return self.env["COMMANDS_DLQ_URL"]

    @property
    def followup_dlq_url(self) -> str:
        return self.env["FOLLOWUP_DLQ_URL"]

    def drain_queue(self, url: str) -> list[dict[str, Any]]:
        """Everything visible on a queue (the DLQ at the end), received once."""
        found: list[dict[str, Any]] = []
        for _ in range(1000):
            reply = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=900
            )
            batch = reply.get("Messages", [])
            if not batch:
                return found
            found += batch
        return found

    def in_flight(self) -> int:
        total = 0
        for url in (self.queue_url, self.followup_url):
            attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
                "Attributes"
            ]
            total += sum(
                int(attrs.get(k, 0))
                for k in (
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                )
            )
        return total


def _spy_worker(world: World, worker: ModuleType) -> None:
    wiring = worker.wiring
    execute_inner = wiring.execute

    def execute(command: Any, sweeper: Any = None, budget: float | None = None) -> dict[str, Any]:
        command_id = str(command.get("command_id"))
        token = CURRENT_COMMAND.set(command_id)
        start = world.now_ms
        try:
            result: dict[str, Any] = execute_inner(command, sweeper, budget)
        except BaseException as exc:
            world.executions.append(
                Execution(command_id, start, world.now_ms, None, type(exc).__name__)
            )
            raise
        finally:
            CURRENT_COMMAND.reset(token)
        world.executions.append(Execution(command_id, start, world.now_ms, result, None))
        return result

    wiring.execute = execute
    delivery = worker.delivery
    execute_outer = delivery.execute

    # Delivery calls execute(command, budget): the seconds the record may run (the worker's
    # time plan); the spy passes it on.
    def attempt(command: dict[str, Any], budget: float | None) -> dict[str, Any]:
        command_id = str(command.get("command_id"))
        try:
            result: dict[str, Any] = execute_outer(command, budget)
        except BaseException as exc:
            world.attempts.append(
                Attempt(command_id, world.now_ms, f"{type(exc).__name__}: {exc}"[:300])
            )
            raise
        world.attempts.append(Attempt(command_id, world.now_ms, None))
        return result

    delivery.execute = attempt


def _spy_webhook(world: World, commands: ModuleType) -> None:
    webhook = commands.webhook
    enqueue = webhook.enqueue
    project = world.env["MODELARTS_PROJECT_ID"]

    def send(command: Command) -> None:
        enqueue(command)
        world.sent.append(Sent(command, message_group_id(command, project), world.now_ms))

    webhook.enqueue = send


def base_env(secrets: dict[str, str] | None = None) -> dict[str, str]:
    values = {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "MODELARTS_REGION": "ap-southeast-3",
        "MODELARTS_PROJECT_ID": PROJECT_ID,
        "MODELARTS_ENDPOINT": "http://modelarts.emulator",
        "HUAWEICLOUD_SDK_AK": "RELIABILITYACCESSKEY",
        "HUAWEICLOUD_SDK_SK": "reliability-secret-key",
        "SLACK_SIGNING_SECRET": "reliability-signing-secret",
        "SLACK_BOT_TOKEN": "xoxb-reliability-bot-token",
        "NOTEBOOK_DEFAULT_IMAGE": DEFAULT_IMAGE_NAME,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "reliability",
        "POWERTOOLS_METRICS_NAMESPACE": "nbkeeper",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    return {**values, **(secrets or {})}


@contextmanager
def world(
    seed: int,
    *,
    env: dict[str, str] | None = None,
    handlers: tuple[str, ...] = ("slack_commands", "notebook_worker"),
    after_faults: AfterFaults | None = None,
    visibility_s: int = 60,
    emulator: Emulator | None = None,
    start: datetime = SIM_START,
) -> Iterator[World]:
    """Everything on the simulated clock; `env` overrides `base_env()`."""
    values = {**base_env(), **(env or {})}
    rng = random.Random(seed)
    if emulator is None:
        clock = SimClock.stepped(start)
        emulator = Emulator(
            EmulatorConfig(
                access_key=values["HUAWEICLOUD_SDK_AK"],
                secret_key=values["HUAWEICLOUD_SDK_SK"],
                seed=seed,
            ),
            clock=clock,
        )
        emulator.sleep = simulated_sleep(emulator)
    clock = emulator.clock
    with ExitStack() as stack:
        stack.enter_context(environment(values))
        for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
            del os.environ[key]
        stack.enter_context(moto_on(clock))
        stack.enter_context(powertools_on(clock))
        resources = create_aws_resources()
        import boto3

        sqs = boto3.client("sqs")
        for url in (resources["COMMANDS_QUEUE_URL"], resources["FOLLOWUP_QUEUE_URL"]):
            sqs.set_queue_attributes(
                QueueUrl=url, Attributes={"VisibilityTimeout": str(visibility_s)}
            )
        os.environ.update(resources)
        values.update(resources)
        modules: dict[str, ModuleType] = {}
        transports: dict[str, FaultyTransport] = {}
        slacks: dict[str, FakeSlack] = {}
        for name in handlers:
            module = load_function(name)
            transport = FaultyTransport(
                emulator.asgi_transport(),
                clock.now_ms,
                random.Random(rng.random()),
                after_faults or AfterFaults(),
            )
            slack = FakeSlack()
            module.seams.modelarts_transport = transport
            module.seams.jupyter_transport = emulator.asgi_transport()
            module.seams.modelarts_options = {"sleep": no_sleep, "rng": random.Random(seed)}
            module.seams.slack_transport = httpx.MockTransport(slack)
            module.seams.clock = lambda: clock.now_ms() / 1000
            modules[name], transports[name], slacks[name] = module, transport, slack
        w = World(emulator, clock, rng, values, modules, transports, slacks, sqs)
        if "notebook_worker" in modules:
            _spy_worker(w, modules["notebook_worker"])
        if "slack_commands" in modules:
            _spy_webhook(w, modules["slack_commands"])
        yield w


def simulated_sleep(emulator: Emulator) -> Callable[[float], Awaitable[None]]:
    """The emulator's `sleep` (latency, slow replies): simulated time passes instead."""

    async def sleep(seconds: float) -> None:
        emulator.advance(seconds)

    return sleep


# ---------------------------------------------------------------- Lambda's SQS event source


WORKER_TIMEOUT_S = 120  # template.yaml's NotebookWorker Timeout


@dataclass
class Kills:
    """How often an invocation dies: inside a record (after its n-th ModelArts request reached
    the emulator) or between records (after k of them; k = 0 is an invocation that failed
    before its first record). Either way it returns nothing, so nothing of its batch is deleted.

    `each_after`: once this many invocations ran, a kind of kill that has not happened yet is
    made to happen at the next invocation where it can (a batch of two or more messages for a
    kill between records; any request to ModelArts for one inside a record), so that even a
    short run exercises every kind. None: only the random draws."""

    in_record: float = 0.0
    between: float = 0.0
    each_after: int | None = None


KILL_KINDS = ("before the first record", "between records", "inside a record")
# A kill before the first record of a batch holding a message's last receive: SQS moves that
# message to the DLQ untold, and only the dead-letter reader can tell its author.
LAST_RECEIVE_LOST = "on a message's last receive, before it ran"


@dataclass
class Receive:
    queue: str
    message_id: str
    command_id: str | None
    count: int
    at_ms: int
    # What happened to it: "deleted", "failed" (reported by the worker), or how its
    # invocation died ("killed before it ran": the worker never saw it).
    fate: str = ""


@dataclass
class EventSource:
    """Lambda's SQS event source for the worker: one invocation per received batch, with the
    function's timeout (`WORKER_TIMEOUT_S`) counted in simulated time."""

    world: World
    kills: Kills = field(default_factory=Kills)
    receives: list[Receive] = field(default_factory=list)
    killed: Counter[str] = field(default_factory=Counter)  # by KILL_KINDS
    forced: Counter[str] = field(default_factory=Counter)  # of those, made to happen
    invocations: int = 0
    on_invoke: Callable[[], None] | None = None
    dead_letter_runs: list[dict[str, int]] = field(default_factory=list)

    def read_dead_letters(self) -> dict[str, int]:
        """One run of the worker's scheduled dead-letter reader (template.yaml, DeadLetters)."""
        world = self.world
        context = Context(
            function_name="notebook-worker",
            aws_request_id=f"dead-letters-{len(self.dead_letter_runs)}",
            deadline_ms=world.now_ms + WORKER_TIMEOUT_S * 1000,
            clock=world.clock.now_ms,
        )
        event = {"source": DEAD_LETTER_SOURCE}
        counts: dict[str, int] = world.modules["notebook_worker"].lambda_handler(event, context)
        self.dead_letter_runs.append(counts)
        # Released messages are visible from the next instant (moto: strictly after), and a
        # real run takes at least that long.
        world.advance(1)
        return counts

    def poll(self, url: str, max_batches: int = 100) -> int:
        """Receive and process batches from `url` until nothing is visible; messages handled."""
        handled = 0
        for _ in range(max_batches):
            reply = self.world.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]
            )
            messages: list[dict[str, Any]] = reply.get("Messages", [])
            if not messages:
                break
            handled += len(messages)
            self._invoke(url, messages)
        return handled

    def _kill(self, messages: list[dict[str, Any]]) -> tuple[str | None, bool]:
        """This invocation's kill (a KILL_KINDS entry or None), and whether it was forced."""
        rng = self.world.rng
        roll = rng.random()
        # A last receive comes once per message (then SQS moves it): force this kind at the
        # first chance, whatever the draw and however few invocations ran so far.
        forcing = self.kills.each_after is not None and not self.killed[LAST_RECEIVE_LOST]
        if forcing and _holds_a_last_receive(messages):
            return "before the first record", True
        if roll < self.kills.between:  # after k records, k drawn from 0 .. len - 1
            k = rng.randrange(len(messages))
            return ("between records" if k else "before the first record"), False
        if roll < self.kills.between + self.kills.in_record:
            return "inside a record", False
        if self.kills.each_after is None or self.invocations <= self.kills.each_after:
            return None, False
        for kind in KILL_KINDS:
            if self.killed[kind]:
                continue
            if kind != "between records" or len(messages) > 1:
                return kind, True
        return None, False

    def _invoke(self, url: str, messages: list[dict[str, Any]]) -> None:
        world, rng = self.world, self.world.rng
        self.invocations += 1
        queue = "commands" if url == world.queue_url else "followup"
        for m in messages:
            self.receives.append(
                Receive(
                    queue,
                    m["MessageId"],
                    _command_id(m["Body"]),
                    int(m["Attributes"]["ApproximateReceiveCount"]),
                    world.now_ms,
                )
            )
        received = {r.message_id: r for r in self.receives[-len(messages) :]}
        worker = world.modules["notebook_worker"]
        transport = world.transports["notebook_worker"]
        kill, forced = self._kill(messages)
        batch = messages
        context = Context(
            function_name="notebook-worker",
            aws_request_id=f"r{self.invocations}",
            deadline_ms=world.now_ms + WORKER_TIMEOUT_S * 1000,
            clock=world.clock.now_ms,
        )
        if kill == "before the first record":
            self._died_before_running(messages, received.values(), forced)
            return
        if kill == "between records":  # dies after k records ran (1 <= k < len(messages))
            batch = messages[: 1 + rng.randrange(len(messages) - 1)]
        if kill == "inside a record":
            transport.kill.arm(1 if forced else rng.randint(1, 6))
        ran = {m["MessageId"] for m in batch}
        try:
            result = worker.lambda_handler(sqs_event(url, batch), context)
        except Killed:
            self._count("inside a record", forced)
            for r in received.values():
                r.fate = "killed inside a record of its batch"
            return  # nothing is deleted: every message comes back after its visibility timeout
        finally:
            transport.kill.disarm()
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        if kill == "between records":
            self._count(kill, forced)
            for message_id, r in received.items():
                done = "failed" if message_id in failed else "ran"
                r.fate = f"{done}, then killed" if message_id in ran else "killed before it ran"
            return
        for m in messages:
            received[m["MessageId"]].fate = "failed" if m["MessageId"] in failed else "deleted"
            if m["MessageId"] not in failed:
                world.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def _died_before_running(
        self, messages: list[dict[str, Any]], received: Iterable[Receive], forced: bool
    ) -> None:
        self._count("before the first record", forced)
        if _holds_a_last_receive(messages):
            self._count(LAST_RECEIVE_LOST, forced)
        for r in received:
            r.fate = "killed before it ran"

    def _count(self, kind: str, forced: bool) -> None:
        self.killed[kind] += 1
        if forced:
            self.forced[kind] += 1

    @property
    def redeliveries(self) -> int:
        return sum(1 for r in self.receives if r.count > 1)


def _holds_a_last_receive(messages: list[dict[str, Any]]) -> bool:
    return any(
        int(m["Attributes"]["ApproximateReceiveCount"]) >= MAX_RECEIVE_COUNT for m in messages
    )


def _command_id(body: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get("command_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None
