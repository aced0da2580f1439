"""Running lease keeper passes in a Lambda: what the keeper's schedule handler and the worker's
`sweep-project` command share, so both handlers stay thin and decide under the same policy.

- `PassSettings`: the environment a pass needs (ModelArts, state table, policy file and SSM
  overlay, Slack token source, ModelArts rate); each handler's settings model extends it.
- `PolicySource`: the policy file (default: `policy.yaml` in this package, so it ships in the
  layer both functions load) with the SSM overlay merged over it, re-read on every pass.
- `keeper_notifier`, `run_keeper_pass`: build the collaborators (one rate-limited ModelArts client
  per project, the Jupyter prober, the Slack notifier) and call `nbkeeper.keeper.run_pass`.

This is edge code (it reads secrets and SSM through Powertools and builds HTTP clients); the pass
itself, `nbkeeper.keeper`, still receives every collaborator and `now` as arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr, model_validator

from nbkeeper.activity import JupyterProber, probe_transport
from nbkeeper.commands import SweepProjectCommand
from nbkeeper.keeper import (
    Enqueue,
    KeeperClient,
    KeeperNotifier,
    NullNotifier,
    PassReport,
    run_pass,
)
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.regions import endpoint_for
from nbkeeper.policy import Policy, PolicyError, ProjectRef, load_policy
from nbkeeper.settings import ModelArtsSettings, build_client, env, secret_field
from nbkeeper.store import StateStore

logger = logging.getLogger(__name__)

DEFAULT_POLICY_PATH = Path(__file__).resolve().with_name("policy.yaml")
SLACK_API_URL = "https://slack.com/api/"


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
    slack_api_url: str = env("SLACK_API_URL", "Slack Web API base URL", default=SLACK_API_URL)
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


def slack_bot_token(settings: PassSettings) -> str | None:
    """The bot token: the local variable, else the secret's `bot_token` (Powertools caches it)."""
    if settings.bot_token is not None:
        return settings.bot_token.get_secret_value()
    if settings.slack_secret is None:
        return None
    return secret_field("SLACK_SECRET", settings.slack_secret, "bot_token")


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


def sweep_target(command: SweepProjectCommand, settings: ModelArtsSettings) -> ProjectRef:
    """The project a `sweep-project` command names (the configured one when it names none)."""
    if command.project is None:
        return ProjectRef(region=settings.region, project_id=settings.project_id)
    return ProjectRef(region=command.project.region, project_id=command.project.project_id)


def project_settings(
    settings: ModelArtsSettings, project: ProjectRef, environ: Mapping[str, str]
) -> ModelArtsSettings:
    """`settings` pointed at `project` (same credentials; its region's endpoint if it differs)."""
    if project.region == settings.region:
        return settings.model_copy(update={"project_id": project.project_id})
    return settings.model_copy(
        update={
            "region": project.region,
            "project_id": project.project_id,
            "endpoint": endpoint_for(project.region, environ),
        }
    )


@cache
def slack_http(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """One Slack HTTP client per execution environment (and per test transport): passes reuse its
    connections instead of opening, and leaking, a new client each time."""
    return httpx.Client(transport=transport)


def keeper_notifier(
    policy: Policy,
    token: str | None,
    api_url: str = SLACK_API_URL,
    transport: httpx.BaseTransport | None = None,
) -> KeeperNotifier:
    """Slack warnings and summaries with the bot token; nobody is told without one."""
    if token is None:
        return NullNotifier()
    from nbkeeper.slack.api import SlackApi
    from nbkeeper.slack.keeper_messages import SlackKeeperNotifier

    api = SlackApi(slack_http(transport), token, base_url=api_url)
    return SlackKeeperNotifier(api.post_message, policy)


async def run_keeper_pass(
    settings: PassSettings,
    environ: Mapping[str, str],
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
) -> PassReport:
    """One pass over `projects` at `now`: clients, prober and `run_pass`, then clean up.

    The ModelArts rate limit is per account, so the projects' clients share `settings.rate_limit`.
    `environ` resolves other regions' endpoints (HUAWEICLOUD_SDK_REGION_MODELARTS_<REGION>).
    """
    rate = settings.rate_limit / max(1, min(len(projects), policy.max_projects_per_pass))
    clients: dict[ProjectRef, AsyncModelArtsClient] = {}

    def client_for(project: ProjectRef) -> KeeperClient:
        if project not in clients:
            clients[project] = build_client(
                project_settings(settings, project, environ),
                transport=modelarts_transport,
                rate_limit=rate,
                max_concurrency=settings.max_concurrency,
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
