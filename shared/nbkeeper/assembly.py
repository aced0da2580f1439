"""The lease keeper pass, assembled: what the keeper's schedule, the worker's fan-out sweeps and
`nbkeeper plan` share, so all three decide the same way under the same policy.

- `PassSettings`: the environment a pass needs (the keeper's and the worker's settings models
  extend it), including the deploy's answers (timezone, warning channel, admins).
- `PolicySource`: the policy file with its SSM overlay, as of the latest read.
- `run_keeper_pass`: a rate-limited ModelArts client per project, the Jupyter prober and the
  notifier around `nbkeeper.keeper.passes.run_pass`, cleaned up afterwards.

Edge code like `nbkeeper.wiring` (it reads SSM and builds HTTP clients); the pass itself still
receives every collaborator and `now` as arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, field_validator, model_validator

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
from nbkeeper.settings import (
    ModelArtsSettings,
    PolicySettings,
    build_client,
    env,
)
from nbkeeper.slack.api import SLACK_API

if TYPE_CHECKING:
    import httpx

    from nbkeeper.keeper.activity import ActivityResult, Prober
    from nbkeeper.keeper.passes import Enqueue, KeeperClient
    from nbkeeper.keeper.report import KeeperNotifier, PassReport
    from nbkeeper.modelarts.client import AsyncModelArtsClient
    from nbkeeper.modelarts.schemas import Notebook
    from nbkeeper.records import StateStore

logger = logging.getLogger(__name__)


class PassSettings(ModelArtsSettings, PolicySettings):
    """What a lease keeper pass reads from the environment (lease_keeper and notebook_worker)."""

    state_table: str = env("STATE_TABLE", "set it to the state DynamoDB table name")
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
