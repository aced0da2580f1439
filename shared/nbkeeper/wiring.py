"""Everything the handlers build at the edge, once per execution environment.

- `PassSettings`: the environment a lease keeper pass needs (the keeper's and the worker's settings
  models extend it); `PolicySource`: the policy file with its SSM overlay.
- `Wiring`: one per handler module, built at cold start from its settings. Its collaborators
  (boto3 clients and tables, the queue senders, one Slack HTTP client, the event loop, ModelArts
  clients and credentials) are made on first use and kept, so a cold start pays only for what the
  first request needs. `Wiring.seams` is the one test and local-run seam: transports, client
  options and the clock.
- `run_keeper_pass`: the pass assembly (a rate-limited client per project, the Jupyter prober, the
  notifier) shared by the keeper's schedule, the worker's fan-out sweeps and `nbkeeper plan`.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import SecretStr, field_validator, model_validator

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
    PolicyError,
    ignored_admins,
    known_timezone,
    load_policy,
    with_deploy_answers,
)
from nbkeeper.modelarts.regions import endpoint_for
from nbkeeper.records import ProjectRef
from nbkeeper.settings import ModelArtsSettings, build_client, env, secret_field
from nbkeeper.slack.api import SLACK_API

if TYPE_CHECKING:
    import httpx

    from nbkeeper.chatops.directory import Directory
    from nbkeeper.dynamo import DynamoCommandLog
    from nbkeeper.keeper.activity import ActivityResult, Prober
    from nbkeeper.keeper.passes import Enqueue, KeeperClient
    from nbkeeper.keeper.report import KeeperNotifier, PassReport
    from nbkeeper.modelarts.client import AsyncModelArtsClient
    from nbkeeper.modelarts.retry import RetryPolicy
    from nbkeeper.modelarts.schemas import Notebook
    from nbkeeper.records import StateStore
    from nbkeeper.slack.api import Notifier, SlackApi
    from nbkeeper.slack.render import Message
    from nbkeeper.worker.dispatch import Worker
    from nbkeeper.worker.ports import Sweeper

logger = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_POLICY_PATH = Path(__file__).resolve().parent / "keeper" / "policy.yaml"


class PassSettings(ModelArtsSettings):
    """What a lease keeper pass reads from the environment (lease_keeper and notebook_worker)."""

    state_table: str = env("STATE_TABLE", "set it to the state DynamoDB table name")
    policy_path: str = env(
        "POLICY_PATH",
        "path of the policy YAML file (default: the policy.yaml shipped in the shared layer)",
        default=str(DEFAULT_POLICY_PATH),
    )
    policy_parameter: str | None = env(
        "POLICY_PARAMETER", "optional: SSM parameter holding a YAML policy overlay", default=None
    )
    bot_token: SecretStr | None = env(
        "SLACK_BOT_TOKEN", "optional: Slack bot token (local runs)", default=None
    )
    slack_secret: str | None = env(
        "SLACK_SECRET", 'optional: Secrets Manager secret holding {"bot_token": ...}', default=None
    )
    slack_api_url: str = env("SLACK_API_URL", "Slack Web API base URL", default=SLACK_API)
    rate_limit: float = env(
        "MODELARTS_RATE_LIMIT",
        "ModelArts requests per second one pass may make (over all its projects)",
        default=20.0,
        gt=0,
        le=1000,
    )
    max_concurrency: int = env(
        "MODELARTS_MAX_CONCURRENCY",
        "ModelArts requests in flight per project",
        default=20,
        ge=1,
        le=200,
    )
    # The deploy's answers (keeper.policy.with_deploy_answers): the same values the template
    # gives every function, so the keeper and the webhook agree.
    deploy_timezone: str | None = env(
        "NBKEEPER_TIMEZONE",
        "IANA timezone of the deploy (the policy's timezone unless the policy sets one)",
        default=None,
    )
    deploy_warning_channel: str | None = env(
        "NBKEEPER_WARNING_CHANNEL",
        "Slack channel for warnings about notebooks without a known owner "
        "(unless the policy sets warning_channel)",
        default=None,
    )
    slack_admins: str = env(
        "SLACK_ADMINS",
        "comma-separated Slack user ids of nbkeeper's admins (the webhook's list)",
        default="",
    )

    @model_validator(mode="after")
    def _at_most_one_slack_token_source(self) -> PassSettings:
        if self.bot_token is not None and self.slack_secret is not None:
            raise ValueError("set at most one of SLACK_BOT_TOKEN (local) or SLACK_SECRET")
        return self

    @field_validator("deploy_timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        # A typo fails the cold start, naming the variable.
        return None if value is None else known_timezone(value)

    @property
    def admins(self) -> list[str]:
        return [part.strip() for part in self.slack_admins.split(",") if part.strip()]

    @property
    def slack_configured(self) -> bool:
        return self.bot_token is not None or self.slack_secret is not None

    def keeper_policy(self, policy: Policy) -> Policy:
        """`policy` with this deploy's timezone, warning channel and admins."""
        return with_deploy_answers(
            policy,
            timezone=self.deploy_timezone,
            warning_channel=self.deploy_warning_channel,
            admins=self.admins,
        )

    def keeper_problems(self, policy: Policy) -> list[str]:
        """What keeps the keeper's warnings from reaching people, for operators: logged as
        errors at cold start, and a line in every pass summary."""
        problems: list[str] = []
        if not self.slack_configured:
            problems.append(
                "no Slack bot token (SLACK_SECRET or SLACK_BOT_TOKEN): nobody can be warned, "
                "so nothing is stopped"
            )
        ignored = ignored_admins(policy, self.admins)
        if ignored:
            problems.append(
                f"policy admins {', '.join(ignored)} are not in SLACK_ADMINS, the list the Slack "
                "webhook honours: they are not sent warnings as admins; list them there"
            )
        from nbkeeper.keeper.messages import routing_problems

        return problems + routing_problems(self.keeper_policy(policy))


class PolicySource:
    """The policy file with the SSM overlay merged over it, as of the latest read.

    `current()` re-reads the overlay (Powertools caches SSM reads for 5 minutes); when the overlay
    turns bad it logs and keeps the last good policy. Without a last good policy (the first read)
    the `PolicyError` is raised: never fall back to the file alone, which could undo an
    operator's overlay (say `dry_run: true`).
    """

    def __init__(
        self,
        path: str | Path,
        parameter: str | None = None,
        fetch: Callable[[str], str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.parameter = parameter
        self.fetch = fetch
        self._last: Policy | None = None

    def current(self) -> Policy:
        if self._last is not None and not self.parameter:
            return self._last  # the file does not change while the function runs
        try:
            self._last = load_policy(self.path, self.parameter, self.fetch)
        except PolicyError as exc:
            if self._last is None:
                raise
            logger.error("policy overlay rejected; keeping the previous policy: %s", exc)
        return self._last


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
        """Per-command notes in the state table (create intents, response_urls)."""
        from nbkeeper.dynamo import DynamoCommandLog

        return DynamoCommandLog(self.state_table)

    def enqueue(self, command: Command) -> None:
        """Send a command to the FIFO commands queue: grouped by notebook, de-duplicated by id;
        its response_url waits in the state table, not in the message."""
        self.sqs.send_message(
            QueueUrl=self.settings.commands_queue_url,
            MessageBody=encode_command(self._without_response_url(command, command.command_id)),
            MessageGroupId=message_group_id(command, self.settings.project_id),
            MessageDeduplicationId=command.command_id,
        )

    def _without_response_url(self, command: Command, key: str) -> Command:
        """A response_url is a credential for 30 minutes; queue and DLQ bodies live 14 days. It
        is kept under `key`, the command id (30-minute TTL), for the worker's `tell`; if that
        write fails, the result comes as a DM instead."""
        url = command.requested_by.response_url
        if url is None:
            return command
        try:
            self.command_log.put_response_url(key, url, command.requested_at)
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
        """A client kept for the execution environment (used on `event_loop` only)."""
        return self.new_modelarts_client()

    def new_modelarts_client(self, **options: Any) -> AsyncModelArtsClient:
        return build_client(
            self.settings,
            transport=self.seams.modelarts_transport,
            **{**options, **self.seams.modelarts_options},
        )

    def directory(self, now: datetime) -> Directory:
        """The webhook's read-only view of the project's notebooks and their owners."""
        from nbkeeper.chatops.directory import ModelArtsDirectory

        return ModelArtsDirectory(
            self.modelarts, self.run, self.state_store(), self.settings.project_id, now
        )

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


def default_projects(policy: Policy, settings: ModelArtsSettings) -> list[ProjectRef]:
    """The policy's projects, else the one in MODELARTS_REGION / MODELARTS_PROJECT_ID."""
    return policy.projects or [ProjectRef(region=settings.region, project_id=settings.project_id)]


def project_settings(
    settings: ModelArtsSettings, project: ProjectRef, environ: Mapping[str, str] | None = None
) -> ModelArtsSettings:
    """`settings` pointed at `project` (same credentials; its region's endpoint if it differs).

    `environ` resolves other regions' endpoints (HUAWEICLOUD_SDK_REGION_MODELARTS_<REGION>);
    default: the process environment.
    """
    import os

    if project.region == settings.region:
        return settings.model_copy(update={"project_id": project.project_id})
    return settings.model_copy(
        update={
            "region": project.region,
            "project_id": project.project_id,
            "endpoint": endpoint_for(project.region, os.environ if environ is None else environ),
        }
    )


class _ObservedProber:
    """A prober that also shows each notebook and its activity to `observe`."""

    def __init__(self, prober: Prober, observe: Callable[[Notebook, ActivityResult], None]) -> None:
        self._prober = prober
        self._observe = observe

    async def probe(self, notebook: Notebook, idle_after: datetime | None = None) -> ActivityResult:
        activity = await self._prober.probe(notebook, idle_after)
        self._observe(notebook, activity)
        return activity


async def run_keeper_pass(
    settings: ModelArtsSettings,
    projects: Sequence[ProjectRef],
    policy: Policy,
    now: datetime,
    *,
    store: StateStore,
    notifier: KeeperNotifier,
    at: datetime | None = None,
    dry_run: bool | None = None,
    enqueue: Enqueue | None = None,
    notices: Sequence[str] = (),
    modelarts_transport: httpx.AsyncBaseTransport | None = None,
    modelarts_options: Mapping[str, Any] | None = None,
    jupyter_transport: httpx.AsyncBaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
    rate_limit: float = 20.0,
    max_concurrency: int = 20,
    observe: Callable[[Notebook, ActivityResult], None] | None = None,
) -> PassReport:
    """One pass over `projects` deciding at `now` (`at`: the event's time, for ids and audit):
    clients, prober and `run_pass`, then clean up.

    The ModelArts rate limit is per account, so the projects' clients share `rate_limit` (req/s).
    `observe` sees each probed notebook and its activity (`nbkeeper plan` checks `--at` with it).
    """
    from nbkeeper.jupyter import JupyterProber, probe_transport
    from nbkeeper.keeper.passes import run_pass

    rate = rate_limit / max(1, min(len(projects), policy.max_projects_per_pass))
    clients: dict[ProjectRef, AsyncModelArtsClient] = {}

    def client_for(project: ProjectRef) -> KeeperClient:
        if project not in clients:
            clients[project] = build_client(
                project_settings(settings, project, environ),
                transport=modelarts_transport,
                rate_limit=rate,
                max_concurrency=max_concurrency,
                **(modelarts_options or {}),
            )
        return clients[project]

    # The lean keep-alive transport (docs/BENCHMARKS.md, keeper); tests pass their own.
    transport = jupyter_transport or probe_transport(policy.probe_concurrency)
    own_transport = transport if jupyter_transport is None else None
    prober: Prober = JupyterProber(
        transport,
        concurrency=policy.probe_concurrency,
        timeout=policy.probe_timeout_seconds,
    )
    if observe is not None:
        prober = _ObservedProber(prober, observe)
    try:
        return await run_pass(
            projects,
            client_for,
            prober,
            store,
            notifier,
            policy,
            now,
            at=at,
            dry_run=dry_run,
            enqueue=enqueue,
            notices=notices,
        )
    finally:
        if own_transport is not None:
            await own_transport.aclose()
        for client in clients.values():
            await client.aclose()
