"""Everything the handlers build at the edge, once per execution environment.

- `Wiring`: one per handler module, built at cold start from its settings. Its collaborators
  (boto3 clients and tables, the queue senders, one Slack HTTP client, the event loop, ModelArts
  clients and credentials) are made on first use and kept, so a cold start pays only for what the
  first request needs. `Wiring.seams` is the one test and local-run seam: transports, client
  options and the clock.
- The pass assembly (`PassSettings`, `PolicySource`, `run_keeper_pass`) is `nbkeeper.assembly`;
  `Wiring.keeper_pass` runs it with the handler's collaborators.

This is edge code: it reads secrets and SSM through Powertools and builds HTTP clients. The
domain modules it feeds still receive every collaborator and `now` as arguments.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from nbkeeper.assembly import run_keeper_pass
from nbkeeper.commands import (
    Command,
    CommandBase,
    CreateCommand,
    Requester,
    encode_command,
    message_group_id,
)
from nbkeeper.keeper.policy import (
    Policy,
)
from nbkeeper.records import ProjectRef
from nbkeeper.settings import build_client, secret_field
from nbkeeper.slack.api import SLACK_API

if TYPE_CHECKING:
    import httpx

    from nbkeeper.assembly import PolicySource
    from nbkeeper.chatops.catalog import CachedCatalog, Prices
    from nbkeeper.chatops.directory import Directory
    from nbkeeper.dynamo import DynamoCommandLog
    from nbkeeper.keeper.passes import Enqueue
    from nbkeeper.keeper.report import KeeperNotifier, PassReport
    from nbkeeper.modelarts.client import AsyncModelArtsClient
    from nbkeeper.modelarts.retry import RetryPolicy
    from nbkeeper.records import StateStore
    from nbkeeper.slack.api import Notifier, SlackApi
    from nbkeeper.slack.render import Message
    from nbkeeper.worker.deadletters import DeadLetterReader
    from nbkeeper.worker.delivery import Delivery
    from nbkeeper.worker.dispatch import Worker
    from nbkeeper.worker.ports import Sweeper

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Seams:
    """Test and local-run seams; production uses the defaults."""

    modelarts_transport: Any = None  # httpx.AsyncBaseTransport
    modelarts_options: dict[str, Any] = field(default_factory=dict)
    jupyter_transport: Any = None  # the keeper's probes (and the worker's sweeps)
    slack_transport: Any = None  # httpx.BaseTransport
    clock: Callable[[], float] = time.time  # the demo runs on the emulator's simulated time
    max_followup_delay: int = 900  # SQS's maximum; tests set 0 (moto delays in real time)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


class Wiring:
    """One handler's collaborators, built on first use and kept for the execution environment.

    `settings` is the handler's own settings model; each factory reads only the fields it needs
    (a factory whose field the model lacks is one the handler never calls).
    """

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.seams = Seams()

    # ------------------------------------------------------------ AWS

    @cached_property
    def sqs(self) -> Any:
        import boto3

        return boto3.client("sqs")

    @cached_property
    def state_table(self) -> Any:
        import boto3

        return boto3.resource("dynamodb").Table(self.settings.state_table)

    def state_store(self) -> StateStore:
        from nbkeeper.dynamo import DynamoStateStore

        return DynamoStateStore(self.state_table)

    @cached_property
    def command_log(self) -> DynamoCommandLog:
        """Per-command notes in the state table (create intents, response_urls, dead letters)."""
        from nbkeeper.dynamo import DynamoCommandLog

        return DynamoCommandLog(self.state_table)

    def note_told(self, message_id: str, how: str) -> None:
        """The worker told a message's author on its last receive (`Delivery.note_told`)."""
        self.command_log.note_told(message_id, how, self.seams.now())

    def dead_letter_reader(
        self, delivery: Delivery, completed: Callable[[str], bool], context: Any
    ) -> DeadLetterReader:
        """The worker's scheduled read of its dead-letter queues, within `context`'s time."""
        from nbkeeper.worker.deadletters import DeadLetterReader, SqsDeadLetters

        # Held as long as the function may run: a run sees each message once.
        hold_s = 1 + context.get_remaining_time_in_millis() // 1000
        return DeadLetterReader(
            SqsDeadLetters(self.sqs, self.settings.dead_letter_queues, hold_s),
            self.command_log,
            completed,
            delivery.tell_author,
            self.settings.max_receive_count,
            self.seams.now,
            seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
        )

    def enqueue(self, command: Command) -> None:
        """Send a command to the FIFO commands queue: grouped by notebook, de-duplicated by id;
        its response_url waits in the state table, not in the message."""
        self.sqs.send_message(
            QueueUrl=self.settings.commands_queue_url,
            MessageBody=encode_command(self._without_response_url(command, command.command_id)),
            MessageGroupId=message_group_id(command, self.settings.project_id),
            MessageDeduplicationId=command.command_id,
        )

    @cached_property
    def ack_command_log(self) -> DynamoCommandLog:
        """The command log on the ack path (response_urls kept, form summaries sent once): over
        DynamoDB's low-level client (a few ms to build) rather than the resource (100-200 ms on a
        cold start, measured by bench/bench_ack.py), since the webhook only puts items."""
        import boto3

        from nbkeeper.dynamo import DynamoCommandLog, ItemWriter

        return DynamoCommandLog(ItemWriter(boto3.client("dynamodb"), self.settings.state_table))

    def _without_response_url(self, command: Command, key: str) -> Command:
        """A response_url is a credential for 30 minutes; queue and DLQ bodies live 14 days. It
        is kept under `key`, the command id (30-minute TTL), for the worker's `tell`; if that
        write fails, the result comes as a DM instead."""
        url = command.requested_by.response_url
        if url is None:
            return command
        try:
            self.ack_command_log.put_response_url(key, url, command.requested_at)
        except Exception as exc:  # boto's errors vary; never log the URL itself
            logger.warning(
                "response_url not kept (%s); the result will be a DM", type(exc).__name__
            )
        requester = command.requested_by.model_copy(update={"response_url": None})
        return command.model_copy(update={"requested_by": requester})

    def schedule(self, command: Command, delay_seconds: int) -> None:
        """Send a follow-up to the standard queue, delayed (SQS allows at most 900 s): the
        worker's `FollowUps`. A response_url (from an older message) is kept like `enqueue`
        keeps it, under the id of the command the follow-up continues."""
        from nbkeeper.worker.followups import origin_id

        self.sqs.send_message(
            QueueUrl=self.settings.followup_queue_url,
            MessageBody=encode_command(self._without_response_url(command, origin_id(command))),
            DelaySeconds=max(0, min(delay_seconds, self.seams.max_followup_delay)),
        )

    # ------------------------------------------------------------ Slack

    @cached_property
    def signing_secret(self) -> str:
        if self.settings.signing_secret is not None:
            return str(self.settings.signing_secret.get_secret_value())
        return secret_field("SLACK_SECRET", self.settings.slack_secret, "signing_secret")

    @cached_property
    def bot_token(self) -> str | None:
        """The bot token: the local variable, else the secret's `bot_token` (Powertools caches it)."""
        if self.settings.bot_token is not None:
            return str(self.settings.bot_token.get_secret_value())
        if self.settings.slack_secret is None:
            return None
        return secret_field("SLACK_SECRET", self.settings.slack_secret, "bot_token")

    @cached_property
    def slack_http(self) -> httpx.Client:
        """One Slack HTTP client per execution environment: calls reuse its connections."""
        import httpx

        return httpx.Client(transport=self.seams.slack_transport)

    def slack_api(self, token: str | None = None) -> SlackApi:
        from nbkeeper.slack.api import ALLOWED_RESPONSE_PREFIXES, SlackApi

        base = getattr(self.settings, "slack_api_url", SLACK_API)
        prefixes: tuple[str, ...] = ALLOWED_RESPONSE_PREFIXES
        if base != SLACK_API:  # a local fake Slack answers response_urls too
            prefixes = (*prefixes, base.removesuffix("api/"))
        return SlackApi(self.slack_http, token, base_url=base, allowed_prefixes=prefixes)

    def post_response(self, url: str, message: Message) -> bool:
        """The webhook's answer to a click, on the ack path: each phase of the post is bounded."""
        import httpx

        from nbkeeper.chatops.webhook import RESPONSE_POST_TIMEOUT_S

        timeout = httpx.Timeout(RESPONSE_POST_TIMEOUT_S)
        return self.slack_api().post_response_url(url, message, timeout=timeout)

    def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        """views.open for the webhook's create form, each phase bounded (the trigger_id is valid
        for about 3 s from the slash command, so a later answer is of no use)."""
        import httpx

        from nbkeeper.chatops.webhook import VIEW_OPEN_TIMEOUT_S

        timeout = httpx.Timeout(VIEW_OPEN_TIMEOUT_S, connect=min(0.5, VIEW_OPEN_TIMEOUT_S))
        self.slack_api(self.bot_token).open_view(trigger_id, dict(view), timeout=timeout)

    def direct_message(self, user_id: str, message: Message, once_for: str | None = None) -> None:
        """A DM on the webhook's ack path (chat.postMessage to the user id), each phase bounded
        like a click's answer; with `once_for`, only if the state table has not seen that key."""
        import httpx

        from nbkeeper.chatops.webhook import RESPONSE_POST_TIMEOUT_S

        if once_for is not None:
            try:
                if not self.ack_command_log.first_time(once_for, self.seams.now()):
                    return
            except Exception as exc:  # twice is better than never
                logger.warning("could not check for a repeated DM (%s)", type(exc).__name__)
        timeout = httpx.Timeout(RESPONSE_POST_TIMEOUT_S)
        self.slack_api(self.bot_token).post_message(user_id, message, timeout=timeout)

    @cached_property
    def notifier(self) -> Notifier:
        """Tells a command's author: their response_url first, a DM as the fallback."""
        from nbkeeper.dynamo import DynamoLedger
        from nbkeeper.slack.api import Notifier

        return Notifier(self.slack_api(self.bot_token), DynamoLedger(self.state_table))

    def tell(
        self,
        requester: Requester,
        issued_at: datetime,
        message: Message,
        now: datetime,
        command_id: str | None = None,
    ) -> str:
        """Deliver `message` to whoever asked; returns how ("response_url", "dm", ...).

        The response_url is the message's own (older producers sent it) or the one the webhook
        kept under `command_id`."""
        url = requester.response_url
        if url is None and command_id is not None:
            try:
                url = self.command_log.response_url(command_id, now)
            except Exception as exc:  # the DM still reaches them
                logger.warning("response_url lookup failed (%s)", type(exc).__name__)
        return self.notifier.deliver(
            user_id=requester.user_id,
            response_url=url,
            issued_at=issued_at,
            message=message,
            now=now,
            already_used=requester.response_url_posts,
        )

    def report(self, command: CommandBase, message: Message, now: datetime) -> str:
        """The worker's `Reporter`: tell the command's author (follow-ups: at the response_url
        of the command they continue)."""
        from nbkeeper.worker.followups import origin_id

        return self.tell(
            command.requested_by, command.requested_at, message, now, origin_id(command)
        )

    def keeper_notifier(self, policy: Policy) -> KeeperNotifier:
        """Slack warnings and summaries with the bot token; nobody is told without one."""
        from nbkeeper.keeper.report import NullNotifier

        if self.bot_token is None:
            return NullNotifier()
        from nbkeeper.keeper.messages import SlackKeeperNotifier

        return SlackKeeperNotifier(self.slack_api(self.bot_token).post_message, policy)

    # ------------------------------------------------------------ ModelArts

    @cached_property
    def event_loop(self) -> asyncio.AbstractEventLoop:
        """One loop per execution environment: the kept client (and its connections) live on it."""
        return asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.event_loop.run_until_complete(coro)

    @cached_property
    def modelarts(self) -> AsyncModelArtsClient:
        """The webhook's client, kept for the execution environment (used on `event_loop` only).

        It serves Slack's ack: no retries (a 429 is answered, not waited out) and timeouts
        within the lookup's budget (`nbkeeper.chatops.webhook`)."""
        import httpx

        from nbkeeper.chatops.webhook import LOOKUP_BUDGET_S
        from nbkeeper.modelarts.retry import NO_RETRY

        timeout = httpx.Timeout(LOOKUP_BUDGET_S, connect=min(0.5, LOOKUP_BUDGET_S))
        return self.new_modelarts_client(retry=NO_RETRY, timeout=timeout)

    def new_modelarts_client(self, **options: Any) -> AsyncModelArtsClient:
        return build_client(
            self.settings,
            transport=self.seams.modelarts_transport,
            **{**options, **self.seams.modelarts_options},
        )

    def directory(self, now: datetime) -> Directory:
        """The webhook's read-only view of the project's notebooks and their owners."""
        from nbkeeper.chatops.directory import ModelArtsDirectory
        from nbkeeper.chatops.webhook import LOOKUP_BUDGET_S

        return ModelArtsDirectory(
            self.modelarts,
            self.run,
            self.state_store,
            self.settings.project_id,
            now,
            budget=LOOKUP_BUDGET_S,
        )

    @cached_property
    def catalog(self) -> CachedCatalog:
        """The webhook's images and flavors, cached for the execution environment (the client
        is built on the first read)."""
        from nbkeeper.chatops.catalog import CachedCatalog
        from nbkeeper.chatops.webhook import LOOKUP_BUDGET_S

        return CachedCatalog(
            lambda: self.modelarts, self.run, budget=LOOKUP_BUDGET_S, prices=self.flavor_prices
        )

    @cached_property
    def _policy_source(self) -> PolicySource:
        from nbkeeper.assembly import PolicySource

        return PolicySource(self.settings.policy_path, self.settings.policy_parameter)

    def flavor_prices(self) -> Prices:
        """The policy's flavor prices, as the keeper's warnings quote them (the overlay is
        re-read within Powertools' SSM cache)."""
        from nbkeeper.chatops.catalog import Prices

        policy = self._policy_source.current()
        return Prices(policy.prices, policy.default_price_per_hour, policy.currency)

    @cached_property
    def command_retry(self) -> RetryPolicy:
        """The worker's retries: an explicit budget well inside the function's timeout
        (`nbkeeper.worker.config`), not the client's 60-second default."""
        from nbkeeper.modelarts.retry import RetryPolicy

        return RetryPolicy(total_budget=self.settings.modelarts_retry_budget)

    def execute(
        self,
        command: Mapping[str, Any],
        sweeper: Sweeper | None = None,
        budget: float | None = None,
    ) -> dict[str, Any]:
        """Run one queued command (its JSON form) with a fresh client, within `budget` seconds
        (CommandDeadlineError past it); the worker's result."""
        from nbkeeper.commands import COMMAND_ADAPTER

        parsed = COMMAND_ADAPTER.validate_python(command)
        result = self._with_worker(
            lambda worker: worker.execute(parsed, self.seams.now()), sweeper, budget
        )
        return result.as_dict()

    def account_for_create(self, command: CreateCommand) -> str:
        """On a create's last receive: what it left behind, settled (never raises)."""
        from nbkeeper.worker.config import ACCOUNT_SECONDS
        from nbkeeper.worker.reporting import unknown_create_outcome

        try:
            return self._with_worker(
                lambda worker: worker.account_for_create(command, self.seams.now()),
                budget=ACCOUNT_SECONDS,
            )
        except Exception:  # the author is told something in every case; details in the log
            logger.exception("could not account for a failed create")
            return unknown_create_outcome(command)

    def _with_worker(
        self,
        job: Callable[[Worker], Coroutine[Any, Any, T]],
        sweeper: Sweeper | None = None,
        budget: float | None = None,
    ) -> T:
        """Run `job` with a Worker on a fresh ModelArts client, within `budget` seconds."""
        import httpx

        from nbkeeper.modelarts.client import run_sync
        from nbkeeper.worker.config import CONNECT_TIMEOUT
        from nbkeeper.worker.dispatch import Worker
        from nbkeeper.worker.ports import CommandDeadlineError

        timeout = httpx.Timeout(self.settings.modelarts_timeout, connect=CONNECT_TIMEOUT)

        async def run() -> T:
            async with self.new_modelarts_client(
                retry=self.command_retry, timeout=timeout
            ) as client:
                worker = Worker(
                    client,
                    self.state_store(),
                    self,
                    self,
                    self.settings.project_id,
                    sweeper,
                    intents=self.command_log,
                    # Times in the worker's replies: the deploy's timezone (NBKEEPER_TIMEZONE).
                    zone=ZoneInfo(getattr(self.settings, "deploy_timezone", None) or "UTC"),
                    image_namespace=self.settings.image_namespace,
                )
                try:
                    async with asyncio.timeout(budget):
                        return await job(worker)
                except TimeoutError:
                    raise CommandDeadlineError(budget) from None

        return run_sync(run())

    async def keeper_pass(
        self,
        projects: Sequence[ProjectRef],
        policy: Policy,
        event_time: datetime | None,
        *,
        dry_run: bool | None = None,
        enqueue: Enqueue | None = None,
    ) -> PassReport:
        """`run_keeper_pass` with this handler's settings, state store, notifier and seams,
        under `policy` with the deploy's answers (`PassSettings.keeper_policy`).

        `event_time` (the schedule event's, a sweep message's) names the pass; its decisions
        use the wall clock, `seams.clock` (`keeper.schedule.pass_time`: events can be hours late).
        """
        from nbkeeper.keeper.schedule import pass_time

        times = pass_time(event_time, self.seams.now())
        deployed = self.settings.keeper_policy(policy)
        return await run_keeper_pass(
            self.settings,
            projects,
            deployed,
            times.now,
            at=times.at,
            store=self.state_store(),
            notifier=self.keeper_notifier(deployed),
            dry_run=dry_run,
            enqueue=enqueue,
            notices=self.settings.keeper_problems(policy),
            modelarts_transport=self.seams.modelarts_transport,
            modelarts_options=self.seams.modelarts_options,
            jupyter_transport=self.seams.jupyter_transport,
            rate_limit=self.settings.rate_limit,
            max_concurrency=self.settings.max_concurrency,
        )
