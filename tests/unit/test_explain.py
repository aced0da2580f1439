"""explain.py: a 401/403 from ModelArts is one fixed sentence for people; the gateway's text (which
can echo the access key id) stays in the logs. Checked on its own, and on the lease keeper's path
into the channel-visible pass summary."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest

from nbkeeper.explain import CREDENTIALS_REFUSED, explain_error, failure_note
from nbkeeper.jupyter import JupyterProber
from nbkeeper.keeper.decide import Action
from nbkeeper.keeper.messages import summary_message
from nbkeeper.keeper.passes import KeeperClient, run_pass
from nbkeeper.keeper.report import PassReport
from nbkeeper.memory import MemoryStateStore
from nbkeeper.modelarts.auth import Credentials, SignerAuth
from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.errors import (
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    ThrottledError,
    UnauthorizedError,
)
from nbkeeper.modelarts.retry import RetryPolicy
from nbkeeper_local.emulator import ActivityPattern, Emulator
from tests.emulator_fixtures import EMULATOR_BASE_URL, PROJECT_ID, SECRET_KEY
from tests.unit.test_keeper import (
    POLICY,
    PROJECT,
    RecordingNotifier,
    create,
    due_idle_warning,
    run,
)

LEAKED_KEY = "HPUAZZZZZZZZZZZZZZZZ"  # what a gateway may echo back: the access key id
ECHO = f"Incorrect app authentication information: access key {LEAKED_KEY} not found"


@pytest.mark.parametrize(
    "exc",
    [
        UnauthorizedError(ECHO, status_code=401, error_code="APIG.0303", request_id="r1"),
        ForbiddenError(ECHO, status_code=403, error_code="ModelArts.6407"),
        # Classified by code, not status, or by status with an unknown code: still a 401/403.
        InvalidRequestError(ECHO, status_code=403, error_code="APIG.9999"),
        NotFoundError(ECHO, status_code=401),
    ],
)
def test_refused_credentials_are_one_sentence_and_the_detail_is_logged(
    exc: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="nbkeeper.explain"):
        assert explain_error(exc) == CREDENTIALS_REFUSED
    (record,) = [r for r in caplog.records if r.name == "nbkeeper.explain"]
    detail = json.dumps(record.__dict__, default=str)
    assert "access key *** not found" in detail  # what went wrong, for an admin
    assert LEAKED_KEY not in detail  # but not the key id itself


def test_other_modelarts_errors_still_quote_the_service() -> None:
    text = explain_error(
        ThrottledError("Too many requests", status_code=429, error_code="APIG.0308")
    )
    assert text.startswith("ModelArts said: Too many requests (APIG.0308).")


def test_failure_notes_hide_refused_credentials_only() -> None:
    refused = UnauthorizedError(ECHO, status_code=401, error_code="APIG.0303")
    assert failure_note(refused) == f"unauthorized: {CREDENTIALS_REFUSED}"
    busy = ThrottledError("Too many requests", status_code=429, error_code="APIG.0308")
    assert failure_note(busy) == "throttled: Too many requests [APIG.0308] (HTTP 429)"


def _everything(report: PassReport) -> str:
    return json.dumps([report.summary(), summary_message(report, POLICY)], default=str)


def test_a_pass_with_a_refused_key_tells_the_channel_without_the_key(
    emulator: Emulator, emulator_transport: httpx.AsyncBaseTransport
) -> None:
    """The emulator's 401 echoes an unknown access key id, as the gateway does."""
    wrong = SignerAuth(Credentials(LEAKED_KEY, SECRET_KEY), PROJECT_ID)
    report = run(emulator, emulator_transport, wrong, MemoryStateStore(), RecordingNotifier())
    (project,) = report.project_errors
    assert project.error == f"unauthorized: {CREDENTIALS_REFUSED}"
    assert CREDENTIALS_REFUSED.removesuffix(".") in _everything(report)
    assert LEAKED_KEY not in _everything(report)


def test_a_stop_refused_for_credentials_reaches_the_summary_without_the_key(
    emulator: Emulator,
    emulator_api: Any,
    emulator_transport: httpx.AsyncBaseTransport,
    emulator_auth: httpx.Auth,
) -> None:
    notebook_id = create(emulator_api, "idle")
    emulator.advance(120)
    emulator.set_activity(notebook_id, pattern=ActivityPattern.IDLE, kernels=[])
    emulator.advance(timedelta(hours=1, minutes=30))
    store = MemoryStateStore()
    store.put_warning(due_idle_warning(emulator, notebook_id))

    class KeyRevokedBeforeTheStop:
        def __init__(self, inner: KeeperClient) -> None:
            self.inner = inner

        def iter_notebooks(self, *args: Any, **kwargs: Any) -> Any:
            return self.inner.iter_notebooks(*args, **kwargs)

        async def renew_lease(self, notebook_id: str, duration_ms: int) -> Any:
            return await self.inner.renew_lease(notebook_id, duration_ms)

        async def stop_notebook(self, notebook_id: str) -> Any:
            raise UnauthorizedError(ECHO, status_code=401, error_code="APIG.0303")

    async def go() -> PassReport:
        client = AsyncModelArtsClient(
            EMULATOR_BASE_URL,
            PROJECT_ID,
            emulator_auth,
            transport=emulator_transport,
            retry=RetryPolicy(max_attempts=1),
        )
        async with client, httpx.AsyncClient(transport=emulator_transport) as http:
            return await run_pass(
                [PROJECT],
                lambda project: KeyRevokedBeforeTheStop(client),
                JupyterProber(http),
                store,
                RecordingNotifier(),
                POLICY,
                emulator.now(),
            )

    report = asyncio.run(go())
    (outcome,) = report.outcomes
    assert outcome.action is Action.STOP and outcome.failed
    assert outcome.outcome == f"failed: unauthorized: {CREDENTIALS_REFUSED}"
    assert LEAKED_KEY not in _everything(report)
    assert "tell an admin" in json.dumps(summary_message(report, POLICY))
