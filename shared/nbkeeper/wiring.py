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

from pydantic import SecretStr, model_validator

from nbkeeper.commands import Command, CommandBase, Requester, encode_command, message_group_id
from nbkeeper.keeper.policy import Policy, PolicyError, load_policy
from nbkeeper.modelarts.regions import endpoint_for
from nbkeeper.records import ProjectRef
from nbkeeper.settings import ModelArtsSettings, build_client, env, secret_field
from nbkeeper.slack.api import SLACK_API

if TYPE_CHECKING:
    import httpx

    from nbkeeper.chatops.directory import Directory
    from nbkeeper.keeper.passes import Enqueue, KeeperClient
    from nbkeeper.keeper.report import KeeperNotifier, PassReport
    from nbkeeper.modelarts.client import AsyncModelArtsClient
    from nbkeeper.records import StateStore
    from nbkeeper.slack.api import Notifier, SlackApi
    from nbkeeper.slack.render import Message
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

    @model_validator(mode="after")
    def _at_most_one_slack_token_source(self) -> PassSettings:
        if self.bot_token is not None and self.slack_secret is not None:
            raise ValueError("set at most one of SLACK_BOT_TOKEN (local) or SLACK_SECRET")
        return self


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

    def enqueue(self, command: Command) -> None:
        """Send a command to the FIFO commands queue: grouped by notebook, de-duplicated by id."""
        self.sqs.send_message(
            QueueUrl=self.settings.commands_queue_url,
            MessageBody=encode_command(command),
            MessageGroupId=message_group_id(command, self.settings.project_id),
            MessageDeduplicationId=command.command_id,
        )

    def schedule(self, command: Command, delay_seconds: int) -> None:
        """Send a follow-up to the standard queue, delayed (SQS allows at most 900 s): the
        worker's `FollowUps`."""
        self.sqs.send_message(
            QueueUrl=self.settings.followup_queue_url,
            MessageBody=encode_command(command),
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

    @cached_property
    def notifier(self) -> Notifier:
        """Tells a command's author: their response_url first, a DM as the fallback."""
        from nbkeeper.dynamo import DynamoLedger
        from nbkeeper.slack.api import Notifier

        return Notifier(self.slack_api(self.bot_token), DynamoLedger(self.state_table))

    def tell(
        self, requester: Requester, issued_at: datetime, message: Message, now: datetime
    ) -> str:
        """Deliver `message` to whoever asked; returns how ("response_url", "dm", ...)."""
        return self.notifier.deliver(
            user_id=requester.user_id,
            response_url=requester.response_url,
            issued_at=issued_at,
            message=message,
            now=now,
            already_used=requester.response_url_posts,
        )

    def report(self, command: CommandBase, message: Message, now: datetime) -> str:
        """The worker's `Reporter`: tell the command's author."""
        return self.tell(command.requested_by, command.requested_at, message, now)

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
        from nbkeeper.modelarts.client import NO_RETRY

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
            self.state_store(),
            self.settings.project_id,
            now,
            budget=LOOKUP_BUDGET_S,
        )

    def execute(self, command: Mapping[str, Any], sweeper: Sweeper | None = None) -> dict[str, Any]:
        """Run one queued command (its JSON form) with a fresh client; the worker's result."""
        from nbkeeper.commands import COMMAND_ADAPTER
        from nbkeeper.modelarts.client import run_sync
        from nbkeeper.worker.dispatch import Worker

        async def run() -> dict[str, Any]:
            async with self.new_modelarts_client() as client:
                worker = Worker(
                    client, self.state_store(), self, self, self.settings.project_id, sweeper
                )
                parsed = COMMAND_ADAPTER.validate_python(command)
                return (await worker.execute(parsed, self.seams.now())).as_dict()

        return run_sync(run())

    async def keeper_pass(
        self,
        projects: Sequence[ProjectRef],
        policy: Policy,
        now: datetime,
        *,
        dry_run: bool | None = None,
        enqueue: Enqueue | None = None,
    ) -> PassReport:
        """`run_keeper_pass` with this handler's settings, state store, notifier and seams."""
        return await run_keeper_pass(
            self.settings,
            projects,
            policy,
            now,
            store=self.state_store(),
            notifier=self.keeper_notifier(policy),
            dry_run=dry_run,
            enqueue=enqueue,
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


async def run_keeper_pass(
    settings: ModelArtsSettings,
    projects: Sequence[ProjectRef],
    policy: Policy,
    now: datetime,
    *,
    store: StateStore,
    notifier: KeeperNotifier,
    dry_run: bool | None = None,
    enqueue: Enqueue | None = None,
    modelarts_transport: httpx.AsyncBaseTransport | None = None,
    modelarts_options: Mapping[str, Any] | None = None,
    jupyter_transport: httpx.AsyncBaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
    rate_limit: float = 20.0,
    max_concurrency: int = 20,
) -> PassReport:
    """One pass over `projects` at `now`: clients, prober and `run_pass`, then clean up.

    The ModelArts rate limit is per account, so the projects' clients share `rate_limit` (req/s).
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
    prober = JupyterProber(
        transport,
        concurrency=policy.probe_concurrency,
        timeout=policy.probe_timeout_seconds,
    )
    try:
        return await run_pass(
            projects,
            client_for,
            prober,
            store,
            notifier,
            policy,
            now,
            dry_run=dry_run,
            enqueue=enqueue,
        )
    finally:
        if own_transport is not None:
            await own_transport.aclose()
        for client in clients.values():
            await client.aclose()
