"""The Slack webhook's edge: raw HTTP request in, HTTP reply out.

verify the signature (401 and nothing else on failure) -> access and parsing -> chat-ops ->
queue -> ack. The handler builds a `SlackWebhook` once from its settings and wiring and maps each
`HttpReply` to API Gateway's response; everything between is here, testable without Lambda.

The ack never waits on something slow. Slack shows an error after 3 s; a cold start costs about
0.6 s (docs/BENCHMARKS.md). The ack path makes at most one read-only ModelArts lookup, with no
retries and at most `LOOKUP_BUDGET_S` in all (a throttled or slow ModelArts becomes a reply that
says so), one DynamoDB Query and one SQS send. A click also posts its answer to `response_url`
(api-facts.md documents no message in a `block_actions` ack), each phase of that post bounded
by `RESPONSE_POST_TIMEOUT_S`: a slow Slack loses that one message (the worker still reports the
command's result), never the ack.

The create form (`/nb create` alone, chatops/form.py): the catalogue read (cached, within
`LOOKUP_BUDGET_S`; past it the form asks for names instead of offering lists), then views.open,
each phase bounded by `VIEW_OPEN_TIMEOUT_S`, so the modal opens while the trigger_id is valid (about
3 s) and a failed open is an ack that explains and shows the text form. Its submission has no
response_url: a valid one is queued like the text command (the view's id names it, so a repeated
submit is the same command), its summary goes to the author as a DM (bounded like a click's answer)
and the worker's result follows there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel, ValidationError

from nbkeeper.chatops.access import ChatConfig, ChatReply, Invocation
from nbkeeper.chatops.buttons import ButtonAction, handle_action
from nbkeeper.chatops.catalog import Catalog
from nbkeeper.chatops.directory import Directory, Found, SlowLookupError
from nbkeeper.chatops.form import (
    FormOutcome,
    open_form,
    submit_form,
    suggestions,
    text_form_hint,
    wants_form,
)
from nbkeeper.chatops.slash import handle_request
from nbkeeper.commands import Command
from nbkeeper.explain import explain_error
from nbkeeper.modelarts.errors import ModelArtsError, describe_validation_error
from nbkeeper.slack import grammar, modal, render
from nbkeeper.slack.api import SlackApiError
from nbkeeper.slack.interaction import BlockActions, BlockSuggestion, PayloadKind, ViewSubmission
from nbkeeper.slack.verify import SignatureError, verify_request

logger = logging.getLogger(__name__)

LOOKUP_BUDGET_S = 1.0
RESPONSE_POST_TIMEOUT_S = 0.5
VIEW_OPEN_TIMEOUT_S = 1.0
QUEUE_FAILED = "I could not queue that just now; please try again in a minute."
P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class HttpReply:
    status: int
    content_type: str = "text/plain"
    body: str = ""

    @classmethod
    def message(cls, message: render.Message) -> HttpReply:
        return cls.data(message)

    @classmethod
    def data(cls, body: Mapping[str, Any]) -> HttpReply:
        return cls(200, "application/json", json.dumps(body))


UNAUTHORIZED = HttpReply(401)
UNREADABLE = HttpReply(400, body="unreadable payload")


class SlackCalls(Protocol):
    """The Web API calls the webhook makes with the bot token, each bounded for the ack."""

    def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        """views.open (raises SlackApiError)."""
        ...

    def direct_message(
        self, user_id: str, message: render.Message, once_for: str | None = None
    ) -> None:
        """A DM to `user_id` (raises SlackApiError); with `once_for`, only the first time that
        key is given (a form submitted twice queues one command and is summarized once)."""
        ...


def raw_body(body: str | None, is_base64: bool | None) -> bytes:
    """The exact bytes Slack signed, whether API Gateway base64-encoded them or not."""
    if is_base64:
        try:
            return base64.b64decode(body or "", validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("body is not valid base64") from None
    return (body or "").encode()


def command_id(prefix: str, source: str) -> str:
    """A stable id for one Slack request (its trigger or click), so a retry is the same command."""
    return f"{prefix}." + hashlib.sha256(source.encode()).hexdigest()[:32]


class LazyDirectory:
    """The directory, built on first use: `help`, Cancel and Confirm need no ModelArts client and
    no state table, so their ack does not pay for building them."""

    def __init__(self, make: Callable[[], Directory]) -> None:
        self._make = make
        self._made: Directory | None = None

    def _directory(self) -> Directory:
        if self._made is None:
            self._made = self._make()
        return self._made

    def find(self, target: str) -> list[Found]:
        return self._directory().find(target)

    def listing(self) -> list[Found]:
        return self._directory().listing()


@dataclass
class SlackWebhook:
    """The two routes, with their collaborators passed in (built lazily by the handler)."""

    config: ChatConfig
    signing_secret: Callable[[], str]
    directory: Callable[[datetime], Directory]
    enqueue: Callable[[Command], None]
    post_response: Callable[[str, render.Message], object]
    clock: Callable[[], float]
    catalog: Catalog | None = None  # images and flavors by name (cached; read on first use)
    slack: SlackCalls | None = None  # the create form's views.open and DM (None: no form)

    def verified_form(
        self, headers: Mapping[str, str], body: str | None, is_base64: bool | None
    ) -> dict[str, str] | None:
        """The form fields, or None when the signature does not hold."""
        try:
            raw = raw_body(body, is_base64)
            verify_request(self.signing_secret(), headers, raw, self.clock())
        except SignatureError as exc:
            logger.warning("rejected request", extra={"reason": str(exc)})
            return None
        return {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}

    def slash_command(
        self, headers: Mapping[str, str], body: str | None, is_base64: bool | None
    ) -> HttpReply:
        form = self.verified_form(headers, body, is_base64)
        if form is None:
            return UNAUTHORIZED
        if form.get("user_id") and wants_form(form.get("text", "")):
            return self._open_form(form)
        return HttpReply.message(guarded(lambda: self._slash(form)))

    def _invocation(self, form: dict[str, str]) -> Invocation:
        return Invocation(
            user_id=form.get("user_id", ""),
            team_id=form.get("team_id"),
            channel_id=form.get("channel_id"),
            response_url=form.get("response_url"),
            command_id=command_id("sc", form.get("trigger_id") or uuid.uuid4().hex),
            now=datetime.fromtimestamp(self.clock(), UTC),
        )

    def _slash(self, form: dict[str, str]) -> render.Message:
        if not form.get("user_id"):
            return render.problem("Slack did not say who you are; nothing was done.")
        inv = self._invocation(form)
        now = inv.now
        try:
            request = grammar.parse(form.get("text", ""))
        except grammar.ParseError as exc:
            return render.problem(render.sentence(str(exc)))
        directory = LazyDirectory(lambda: self.directory(now))
        return self.queue(handle_request(request, inv, self.config, directory, self.catalog))

    def _open_form(self, form: dict[str, str]) -> HttpReply:
        """The create form for a bare `/nb create`; an empty ack once it is open."""
        try:
            opened = open_form(self._invocation(form), self.config, self.catalog)
        except Exception as exc:
            return HttpReply.message(explained(exc))
        if isinstance(opened, ChatReply):
            return HttpReply.message(opened.reply)
        try:
            if self.slack is None:
                raise SlackApiError("views.open", "the form is not configured here")
            self.slack.open_view(form.get("trigger_id", ""), opened)
        except Exception as exc:  # the person gets the text form; the log says why
            reason = exc.error if isinstance(exc, SlackApiError) else type(exc).__name__
            logger.warning("could not open the create form: %s", reason)
            return HttpReply.message(
                render.problem(
                    f"I could not open the create form ({render.fit(reason, 80)}); type the "
                    f"command instead. {text_form_hint()}"
                )
            )
        return HttpReply(200)

    def interaction(
        self, headers: Mapping[str, str], body: str | None, is_base64: bool | None
    ) -> HttpReply:
        form = self.verified_form(headers, body, is_base64)
        if form is None:
            return UNAUTHORIZED
        raw = form.get("payload", "")
        kind = read_payload(PayloadKind, raw)
        if kind is None:
            return UNREADABLE
        if kind.type == "view_submission":
            return self._submission(raw)
        if kind.type == "block_suggestion":
            return self._suggestion(raw)
        if kind.type not in ("", "block_actions"):  # view_closed and the like: nothing to do
            logger.info("interaction ignored", extra={"type": kind.type[:40]})
            return HttpReply(200)
        payload = read_payload(BlockActions, raw)
        if payload is None:
            return UNREADABLE
        message = guarded(lambda: self._click(payload))
        if payload.response_url:
            try:
                self.post_response(payload.response_url, message)
            except Exception:  # the click is handled: a failed answer must not fail the ack
                logger.exception("could not answer the click on its response_url")
        return HttpReply(200)

    def _click(self, payload: BlockActions) -> render.Message:
        now = datetime.fromtimestamp(self.clock(), UTC)
        action = payload.action
        inv = Invocation(
            user_id=payload.user.id,
            team_id=payload.team_id,
            channel_id=payload.channel_id,
            response_url=payload.response_url,
            command_id=command_id("ia", f"{payload.message_ts}|{payload.user.id}|{action.value}"),
            now=now,
            response_url_posts=1 if payload.response_url else 0,
        )
        button = ButtonAction(action.action_id, action.value)
        directory = LazyDirectory(lambda: self.directory(now))
        return self.queue(handle_action(button, inv, self.config, directory))

    def _submission(self, raw: str) -> HttpReply:
        """The create form submitted: errors under their fields, or queued and closed."""
        payload = read_payload(ViewSubmission, raw)
        if payload is None:
            return UNREADABLE
        view = payload.view
        if view.callback_id != modal.CREATE_CALLBACK:
            logger.info("submission of an unknown view ignored")
            return HttpReply(200)
        inv = Invocation(
            user_id=payload.user.id,
            team_id=payload.team_id,
            channel_id=modal.decode_metadata(view.private_metadata),
            response_url=None,  # a submission has none: the results come as DMs
            command_id=command_id("vs", view.id),
            now=datetime.fromtimestamp(self.clock(), UTC),
        )
        directory = LazyDirectory(lambda: self.directory(inv.now))
        values = modal.form_values(view.state)
        try:
            outcome = submit_form(values, inv, self.config, directory, self.catalog)
        except Exception as exc:  # about the whole request: shown under its first field
            outcome = FormOutcome(errors={"name": modal.unmark(explained(exc)["text"])})
        reply = outcome.reply
        if reply is None or reply.command is None:
            return HttpReply.data(modal.errors_reply(outcome.errors))
        if not self._send(reply.command):
            return HttpReply.data(modal.errors_reply({"name": QUEUE_FAILED}))
        try:
            if self.slack is not None:
                self.slack.direct_message(inv.user_id, reply.reply, once_for=inv.command_id)
        except Exception:  # queued all the same: the worker's DM still comes
            logger.exception("could not DM the form's summary")
        return HttpReply(200)  # closes the modal

    def _suggestion(self, raw: str) -> HttpReply:
        """Options for the form's external select, from the cached catalogue."""
        payload = read_payload(BlockSuggestion, raw)
        if payload is None:
            return UNREADABLE
        field = modal.suggestion_field(payload.action_id)
        channel = modal.decode_metadata(payload.view.private_metadata) if payload.view else None
        refusal = self.config.access.refusal(payload.team_id, channel, payload.user.id)
        choices: list[modal.Choice] = []
        if field is not None and self.catalog is not None and not refusal:
            try:
                choices = list(suggestions(field, payload.value, self.catalog))
            except Exception as exc:  # an empty list: Slack shows "no options", the log why
                logger.warning("no suggestions: %s", type(exc).__name__)
        return HttpReply.data(modal.options_reply(choices))

    def queue(self, reply: ChatReply) -> render.Message:
        """Queue the reply's command, if any; the message to show for it."""
        if reply.command is None:
            return reply.reply
        if not self._send(reply.command):
            return render.problem(QUEUE_FAILED)
        return reply.reply

    def _send(self, command: Command) -> bool:
        try:
            self.enqueue(command)
        except Exception:  # boto errors vary; the person gets a clear answer, the log the details
            logger.exception("could not queue the command")
            return False
        logger.info("queued", extra={"command_id": command.command_id, "type": command.type})
        return True


def read_payload(model: type[P], raw: str) -> P | None:
    """An interaction payload read by `model`, or None (logged: where it went wrong, never its
    values, which may hold tokens)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        reason = describe_validation_error(exc)
        logger.warning("unreadable interaction payload", extra={"reason": reason})
        return None


def guarded(route: Callable[[], render.Message]) -> render.Message:
    """No exception escapes a route: the person gets a sentence, the log the details."""
    try:
        return route()
    except Exception as exc:
        return explained(exc)


def explained(exc: Exception) -> render.Message:
    """An exception as the sentence a person gets (the details go to the log)."""
    if isinstance(exc, ModelArtsError):  # the service's text may echo a key id: kind and ids only
        logger.warning(
            "ModelArts call failed",
            extra={"kind": exc.kind, "error_code": exc.error_code, "request_id": exc.request_id},
        )
        return render.problem(render.sentence(explain_error(exc)))
    if isinstance(exc, SlowLookupError):
        logger.warning("ModelArts lookup abandoned: %s", exc)
        return render.problem(
            "ModelArts is slow to answer right now, so nothing was done; try again in a minute."
        )
    if isinstance(exc, ValidationError):
        logger.warning("request not valid", extra={"reason": describe_validation_error(exc)})
        return render.problem(f"That request is not valid: {render.sentence(explain_error(exc))}.")
    logger.error("request failed", exc_info=exc)
    return render.problem(f"Sorry, {render.sentence(explain_error(exc))}")
