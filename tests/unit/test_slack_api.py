"""SlackApi and Notifier over httpx.MockTransport: odd replies fail as SlackApiError, no secrets."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from nbkeeper.memory import MemoryLedger
from nbkeeper.slack.api import Notifier, SlackApi, SlackApiError

BOT_TOKEN = "xoxb-unit-test-token"
RESPONSE_URL = "https://hooks.slack.com/commands/T1/2/secret-part"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def api(handler: Callable[[httpx.Request], httpx.Response]) -> SlackApi:
    return SlackApi(httpx.Client(transport=httpx.MockTransport(handler)), BOT_TOKEN)


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, json={"ok": True}),
        httpx.Response(200, json={"ok": True, "channel": "D1"}),
        httpx.Response(200, json={"ok": True, "channel": {}}),
        httpx.Response(200, json=["ok"]),
        httpx.Response(502, text="<html>bad gateway</html>"),
    ],
    ids=["no-channel", "channel-not-object", "channel-without-id", "not-an-object", "not-json"],
)
def test_odd_conversations_open_reply_is_a_slack_api_error(reply: httpx.Response) -> None:
    with pytest.raises(SlackApiError) as caught:
        api(lambda request: reply).open_dm("U1")
    assert caught.value.method == "conversations.open"


def test_notifier_reports_undelivered_when_the_dm_reply_is_odd(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="nbkeeper")

    def slack(request: httpx.Request) -> httpx.Response:
        if request.url.host == "hooks.slack.com":
            return httpx.Response(404, text="expired_url")
        return httpx.Response(200, json={"ok": True})

    notifier = Notifier(api(slack), MemoryLedger())
    how = notifier.deliver(
        user_id="U1", response_url=RESPONSE_URL, issued_at=NOW, message={"text": "done"}, now=NOW
    )
    assert how == "undelivered"
    assert BOT_TOKEN not in caplog.text and "secret-part" not in caplog.text


def test_transport_failure_names_the_error_type_not_the_token() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    with pytest.raises(SlackApiError) as caught:
        api(down).post_message("C1", {"text": "hi"})
    assert str(caught.value) == "Slack chat.postMessage failed: ConnectError"


def test_httpx_request_log_masks_the_response_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    assert api(lambda request: httpx.Response(200)).post_response_url(RESPONSE_URL, {"text": "x"})
    [line] = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert "https://hooks.slack.com/commands/***" in line
    assert "secret-part" not in line and "T1" not in line
