"""The webhook's create-form routes where Slack or AWS misbehave: views.open refused or absent, the
summary DM failing, the queue failing, a slow catalogue (SlackWebhook with in-memory fakes and
real signatures)."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from slack_sdk.signature import SignatureVerifier

from nbkeeper.chatops.directory import SlowLookupError
from nbkeeper.chatops.webhook import QUEUE_FAILED, HttpReply, SlackWebhook
from nbkeeper.commands import Command
from nbkeeper.modelarts.images import ImageDetail
from nbkeeper.slack import modal, render
from nbkeeper.slack.api import SlackApiError
from tests.unit.test_chatops import CHANNEL, CONFIG, NOW, OWNER, STRANGER, TEAM, fleet
from tests.unit.test_form import TORCH, Catalog

SECRET = "form-webhook-secret"


@dataclass
class Slack:
    """The webhook's Web API calls, recorded; `fail` raised by each."""

    fail: Exception | None = None
    views: list[Mapping[str, Any]] = field(default_factory=list)
    dms: list[tuple[str, render.Message]] = field(default_factory=list)
    once: set[str] = field(default_factory=set)

    def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        if self.fail is not None:
            raise self.fail
        self.views.append(view)

    def direct_message(
        self, user_id: str, message: render.Message, once_for: str | None = None
    ) -> None:
        if self.fail is not None:
            raise self.fail
        if once_for is not None and once_for in self.once:
            return
        self.once.add(once_for or "")
        self.dms.append((user_id, message))


@dataclass
class Hook:
    slack: Slack | None = field(default_factory=Slack)
    catalog: Catalog = field(default_factory=Catalog)
    queue_fails: bool = False
    queued: list[Command] = field(default_factory=list)

    def enqueue(self, command: Command) -> None:
        if self.queue_fails:
            raise RuntimeError("SQS is down")
        self.queued.append(command)

    def webhook(self) -> SlackWebhook:
        return SlackWebhook(
            config=CONFIG,
            signing_secret=lambda: SECRET,
            directory=lambda now: fleet(),
            enqueue=self.enqueue,
            post_response=lambda url, message: None,
            clock=NOW.timestamp,
            catalog=self.catalog,
            slack=self.slack,
        )

    def _signed(self, body: bytes) -> dict[str, str]:
        ts = str(int(NOW.timestamp()))
        signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
        assert signature is not None
        return {"x-slack-request-timestamp": ts, "x-slack-signature": signature}

    def slash(self, text: str, user: str = OWNER) -> HttpReply:
        form = {"user_id": user, "team_id": TEAM, "channel_id": CHANNEL, "text": text}
        body = urllib.parse.urlencode({**form, "trigger_id": "1.t"}).encode()
        return self.webhook().slash_command(self._signed(body), body.decode(), False)

    def interaction(self, payload: dict[str, Any]) -> HttpReply:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return self.webhook().interaction(self._signed(body), body.decode(), False)

    def submit(self, user: str = OWNER, channel: str = CHANNEL, **fields: str) -> HttpReply:
        values = {
            modal.block_id(name): {name: {"type": "plain_text_input", "value": value}}  # type: ignore[arg-type]
            for name, value in fields.items()
        }
        return self.interaction(
            {
                "type": "view_submission",
                "team": {"id": TEAM},
                "user": {"id": user, "team_id": TEAM},
                "view": {
                    "id": "V1",
                    "callback_id": modal.CREATE_CALLBACK,
                    "private_metadata": modal.encode_metadata(channel),
                    "state": {"values": values},
                },
            }
        )


def text_of(reply: HttpReply) -> str:
    return str(json.loads(reply.body)["text"])


def errors_of(reply: HttpReply) -> dict[str, str]:
    body = json.loads(reply.body)
    assert body["response_action"] == "errors"
    found: dict[str, str] = body["errors"]
    return found


def test_the_form_opens_with_an_empty_ack() -> None:
    hook = Hook()
    reply = hook.slash("create")
    assert (reply.status, reply.body) == (200, "")
    (view,) = hook.slack.views if hook.slack else []
    assert view["callback_id"] == modal.CREATE_CALLBACK


def test_without_slack_calls_the_ack_shows_the_text_form() -> None:
    text = text_of(Hook(slack=None).slash("create"))
    assert "could not open the create form (the form is not configured here)" in text
    assert "/nb create NAME" in text


def test_a_refused_or_unreachable_views_open_names_why() -> None:
    refused = Hook(slack=Slack(fail=SlackApiError("views.open", "expired_trigger_id")))
    assert "(expired_trigger_id)" in text_of(refused.slash("create"))
    unreachable = Hook(slack=Slack(fail=httpx.ReadTimeout("slow")))
    assert "(ReadTimeout)" in text_of(unreachable.slash("create"))


def test_a_stranger_gets_a_refusal_not_a_form() -> None:
    hook = Hook()
    assert "Sorry" in text_of(hook.slash("create", STRANGER))
    assert hook.slack is not None and hook.slack.views == []


def test_a_valid_submission_is_queued_closed_and_summarised_by_dm() -> None:
    hook = Hook()
    reply = hook.submit(name="exp-77", image=TORCH)
    assert (reply.status, reply.body) == (200, "")
    (command,) = hook.queued
    assert command.requested_by.channel_id == CHANNEL and command.requested_by.response_url is None
    assert hook.slack is not None
    ((user, message),) = hook.slack.dms
    assert user == OWNER and "Creating *exp-77*" in message["text"]


def test_a_failed_dm_still_closes_the_form() -> None:
    hook = Hook(slack=Slack(fail=SlackApiError("chat.postMessage", "channel_not_found")))
    reply = hook.submit(name="exp-77")
    assert (reply.status, reply.body) == (200, "") and len(hook.queued) == 1


def test_a_failed_queue_keeps_the_form_open_with_the_reason() -> None:
    hook = Hook(queue_fails=True)
    assert errors_of(hook.submit(name="exp-77")) == {modal.block_id("name"): QUEUE_FAILED}
    assert hook.slack is not None and hook.slack.dms == []


def test_a_slow_catalogue_is_a_problem_with_the_whole_request() -> None:
    hook = Hook(catalog=Catalog(fail=SlowLookupError("1 s")))
    errors = errors_of(hook.submit(name="exp-77", image="pytorch2.1"))
    assert errors == {
        modal.block_id("name"): "ModelArts is slow to answer right now, so nothing was done; "
        "try again in a minute."
    }
    assert hook.queued == []


def test_the_channel_comes_from_the_metadata_and_is_checked() -> None:
    hook = Hook()
    errors = errors_of(hook.submit(name="exp-77", channel="C0ELSEWHERE"))
    assert "does not take commands in this channel" in errors[modal.block_id("name")]
    assert hook.queued == []


def suggestion(user: str, action_id: str, typed: str) -> dict[str, Any]:
    return {
        "type": "block_suggestion",
        "user": {"id": user, "team_id": TEAM},
        "action_id": action_id,
        "value": typed,
        "view": {"id": "V1", "private_metadata": modal.encode_metadata(CHANNEL)},
    }


def test_suggestions_only_for_those_allowed_and_for_our_selects() -> None:
    hook = Hook()

    def values(reply: HttpReply) -> list[str]:
        return [o["value"] for o in json.loads(reply.body)["options"]]

    assert values(hook.interaction(suggestion(OWNER, "flavor", "8u"))) == ["modelarts.vm.cpu.8u"]
    assert values(hook.interaction(suggestion(STRANGER, "flavor", "8u"))) == []
    assert values(hook.interaction(suggestion(OWNER, "other", "8u"))) == []
    assert values(Hook(catalog=Unreadable()).interaction(suggestion(OWNER, "image", "py"))) == []


class Unreadable(Catalog):
    """A catalogue whose cache expired while ModelArts is slow."""

    def images(self) -> list[ImageDetail]:
        raise SlowLookupError("1 s")
