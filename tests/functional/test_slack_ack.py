"""The ack never waits on something slow (Slack shows an error after 3 s).

Through the real handler with signed requests: a throttled ModelArts is answered at once (no
retries on the ack path), a ModelArts that does not answer is abandoned after the lookup's budget,
and a click's response_url post is bounded. Timing itself is measured by bench/bench_ack.py;
these tests check the rules without depending on the clock's speed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from nbkeeper.chatops import webhook
from nbkeeper_local.emulator import FaultKind
from tests.functional.slack_world import World


def never_answer(world: World) -> None:
    """The emulator's SLOW fault, made endless: the reply never comes."""

    async def forever(_: float) -> None:
        await asyncio.Event().wait()

    world.emulator.sleep = forever


@pytest.mark.parametrize(
    "text",
    [
        "create exp-1",
        "create exp-1 image=tensorflow2.6",
        "status exp-1",
        "stop exp-1",
        "list all",
        "images",
        "flavors",
    ],
)
def test_a_throttled_modelarts_is_answered_at_once_without_retrying(
    world: World, text: str
) -> None:
    world.emulator.inject(FaultKind.THROTTLE, 2, method="GET")  # Retry-After: 2 s each
    reply = world.slash(text)
    assert reply["text"].startswith(":warning: ModelArts said:"), reply["text"]
    assert "ModelArts is busy; try again in a minute." in reply["text"]
    # one attempt per read, not three: the catalogue's two reads (public and the project's own
    # images) go out together, so by-name requests meet two 429s
    reads = 2 if "image" in text else 1
    assert world.emulator.faults.injected[FaultKind.THROTTLE] == reads
    assert world.receive(world.queue_url) == []


@pytest.mark.parametrize(
    "text", ["create exp-1", "create exp-1 image=tensorflow2.6", "status exp-1", "list", "images"]
)
def test_a_modelarts_that_does_not_answer_is_abandoned_within_the_budget(
    world: World, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setattr(webhook, "LOOKUP_BUDGET_S", 0.05)  # the rule, not the figure
    never_answer(world)
    world.emulator.inject(FaultKind.SLOW, 1)
    reply = world.slash(text)
    assert reply["text"] == (
        ":warning: ModelArts is slow to answer right now, so nothing was done; "
        "try again in a minute."
    )
    assert world.receive(world.queue_url) == []


def test_the_webhook_s_lookup_client_has_short_timeouts(world: World) -> None:
    client: Any = world.commands.wiring.modelarts
    timeout: httpx.Timeout = client._http.timeout
    assert timeout.read is not None and timeout.read <= webhook.LOOKUP_BUDGET_S
    assert timeout.connect is not None and timeout.connect <= 0.5


def test_a_click_s_response_url_post_is_bounded(world: World) -> None:
    seen: list[dict[str, float]] = []
    slack = world.slack

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return slack(request)

    world.commands.wiring.__dict__.pop("slack_http", None)
    world.commands.seams.slack_transport = httpx.MockTransport(recording)
    payload = {
        "user": {"id": "U0001"},
        "actions": [{"action_id": "nbkeeper.cancel", "value": "cancel"}],
        "response_url": "https://hooks.slack.com/actions/T0001/1/x",
    }
    assert world.interact(payload) == 200
    (timeout,) = seen
    assert set(timeout) == {"connect", "read", "write", "pool"}
    assert all(v <= webhook.RESPONSE_POST_TIMEOUT_S for v in timeout.values())
    assert "Cancelled" in slack.texts()[-1]


def test_a_click_whose_post_times_out_still_acks(world: World) -> None:
    def timing_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("Slack is slow", request=request)

    world.commands.wiring.__dict__.pop("slack_http", None)
    world.commands.seams.slack_transport = httpx.MockTransport(timing_out)
    payload = {
        "user": {"id": "U0001"},
        "actions": [{"action_id": "nbkeeper.cancel", "value": "cancel"}],
        "response_url": "https://hooks.slack.com/actions/T0001/1/x",
    }
    assert world.interact(payload) == 200
