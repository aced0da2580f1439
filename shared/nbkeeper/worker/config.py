"""The worker's settings, and its time plan: every record finishes, or fails in time to say so.

Lambda ends an invocation at the function's timeout without a word: a record cut off there is
neither reported nor settled (a create could leave its notebook untagged and its author waiting).
So the worker plans its time from the invocation's remaining time:

- each ModelArts call spends at most `MODELARTS_RETRY_BUDGET` seconds on retries, plus one
  request's timeout (`MODELARTS_TIMEOUT`, connect `CONNECT_TIMEOUT`): `worst_call_seconds`;
- `REPORT_RESERVE_SECONDS` stay for the end of a record: a failed create's account
  (`ACCOUNT_SECONDS`) and telling the author (Slack, at most three 5-second calls);
- a record runs under a deadline of what is left minus that reserve, and is not started when the
  deadline would be shorter than one worst call: it fails unrun and SQS delivers it again.

The function's timeout must exceed `REPORT_RESERVE_SECONDS + worst_call_seconds` (60 s with the
defaults; tests/functional/test_worker_reliability.py checks template.yaml). 120 s lets even a
create whose every call is slow finish in one invocation.
"""

from __future__ import annotations

from pydantic import model_validator

from nbkeeper.assembly import PassSettings
from nbkeeper.modelarts.images import ImageNamespace
from nbkeeper.settings import env
from nbkeeper.worker.save import DEFAULT_IMAGE_NAMESPACE

CONNECT_TIMEOUT = 5.0
ACCOUNT_SECONDS = 15.0
REPORT_RESERVE_SECONDS = ACCOUNT_SECONDS + 15.0


class WorkerSettings(PassSettings):
    """What the notebook worker reads from the environment."""

    commands_queue_url: str = env("COMMANDS_QUEUE_URL", "set it to the commands FIFO queue URL")
    followup_queue_url: str = env(
        "FOLLOWUP_QUEUE_URL", "set it to the standard follow-up queue URL"
    )
    idempotency_table: str = env("IDEMPOTENCY_TABLE", "set it to the idempotency table name")
    # The dead-letter reader (`nbkeeper.worker.deadletters`) tells these queues' authors.
    commands_dlq_url: str | None = env(
        "COMMANDS_DLQ_URL", "the commands queue's dead-letter queue URL", default=None
    )
    followup_dlq_url: str | None = env(
        "FOLLOWUP_DLQ_URL", "the follow-up queue's dead-letter queue URL", default=None
    )
    max_receive_count: int = env(
        "MAX_RECEIVE_COUNT", "the queues' redrive maxReceiveCount", default=5, ge=1, le=1000
    )
    modelarts_retry_budget: float = env(
        "MODELARTS_RETRY_BUDGET",
        "seconds one ModelArts call of the worker may spend retrying (well inside the function's "
        "timeout)",
        default=15.0,
        gt=0,
        le=60,
    )
    modelarts_timeout: float = env(
        "MODELARTS_TIMEOUT",
        "seconds the worker waits for one ModelArts response",
        default=10.0,
        gt=0,
        le=30,
    )

    image_namespace: ImageNamespace = env(
        "IMAGE_NAMESPACE",
        "the SWR organization `/nb save` puts images in (it must exist: SWR console > "
        "Organization Management)",
        default=DEFAULT_IMAGE_NAMESPACE,
    )

    @model_validator(mode="after")
    def _one_slack_token_source(self) -> WorkerSettings:
        # Stricter than PassSettings: the worker reports every result, so it needs a token.
        if (self.bot_token is None) == (self.slack_secret is None):
            raise ValueError("set exactly one of SLACK_BOT_TOKEN (local) or SLACK_SECRET")
        return self

    @property
    def dead_letter_queues(self) -> dict[str, str]:
        """The dead-letter queues the reader reads, by the name it reports them under."""
        named = {"commands": self.commands_dlq_url, "follow-ups": self.followup_dlq_url}
        return {name: url for name, url in named.items() if url}

    @property
    def worst_call_seconds(self) -> float:
        """The longest one ModelArts call can take: retries, then a last attempt's timeouts."""
        return self.modelarts_retry_budget + self.modelarts_timeout + CONNECT_TIMEOUT

    def run_budget(self, seconds_left: float) -> float | None:
        """Seconds a record may run with `seconds_left` in the invocation; None: do not start."""
        budget = seconds_left - REPORT_RESERVE_SECONDS
        return budget if budget >= self.worst_call_seconds else None
