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
from urllib.parse import parse_qs

from pydantic import ValidationError

from nbkeeper.chatops.access import ChatConfig, ChatReply, Invocation
from nbkeeper.chatops.buttons import ButtonAction, handle_action
from nbkeeper.chatops.catalog import Catalog
from nbkeeper.chatops.directory import Directory, Found, SlowLookupError
from nbkeeper.chatops.slash import handle_request
from nbkeeper.commands import Command
from nbkeeper.explain import explain_error
from nbkeeper.modelarts.errors import ModelArtsError, describe_validation_error
from nbkeeper.slack import grammar, render
from nbkeeper.slack.interaction import BlockActions
from nbkeeper.slack.verify import SignatureError, verify_request

logger = logging.getLogger(__name__)

LOOKUP_BUDGET_S = 1.0
RESPONSE_POST_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class HttpReply:
    status: int
    content_type: str = "text/plain"
    body: str = ""

    @classmethod
    def message(cls, message: render.Message) -> HttpReply:
        return cls(200, "application/json", json.dumps(message))


UNAUTHORIZED = HttpReply(401)


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
        return HttpReply.message(guarded(lambda: self._slash(form)))

    def _slash(self, form: dict[str, str]) -> render.Message:
        now = datetime.fromtimestamp(self.clock(), UTC)
        user_id = form.get("user_id", "")
        if not user_id:
            return render.problem("Slack did not say who you are; nothing was done.")
        inv = Invocation(
            user_id=user_id,
            team_id=form.get("team_id"),
            channel_id=form.get("channel_id"),
            response_url=form.get("response_url"),
            command_id=command_id("sc", form.get("trigger_id") or uuid.uuid4().hex),
            now=now,
        )
        try:
            request = grammar.parse(form.get("text", ""))
        except grammar.ParseError as exc:
            return render.problem(render.sentence(str(exc)))
        directory = LazyDirectory(lambda: self.directory(now))
        return self.queue(handle_request(request, inv, self.config, directory, self.catalog))

    def interaction(
        self, headers: Mapping[str, str], body: str | None, is_base64: bool | None
    ) -> HttpReply:
        form = self.verified_form(headers, body, is_base64)
        if form is None:
            return UNAUTHORIZED
        try:
            payload = BlockActions.model_validate_json(form.get("payload", ""))
        except ValidationError as exc:
            # Where the payload went wrong, never its values (they may hold tokens).
            reason = describe_validation_error(exc)
            logger.warning("unreadable interaction payload", extra={"reason": reason})
            return HttpReply(400, body="unreadable payload")
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

    def queue(self, reply: ChatReply) -> render.Message:
        """Queue the reply's command, if any; the message to show for it."""
        if reply.command is None:
            return reply.reply
        try:
            self.enqueue(reply.command)
        except Exception:  # boto errors vary; the person gets a clear answer, the log the details
            logger.exception("could not queue the command")
            return render.problem("I could not queue that just now; please try again in a minute.")
        logger.info(
            "queued",
            extra={"command_id": reply.command.command_id, "type": reply.command.type},
        )
        return reply.reply


def guarded(route: Callable[[], render.Message]) -> render.Message:
    """No exception escapes a route: the person gets a sentence, the log the details."""
    try:
        return route()
    except ModelArtsError as exc:  # the service's text may echo a key id: kind and ids only
        logger.warning(
            "ModelArts call failed",
            extra={"kind": exc.kind, "error_code": exc.error_code, "request_id": exc.request_id},
        )
        return render.problem(render.sentence(explain_error(exc)))
    except SlowLookupError as exc:
        logger.warning("ModelArts lookup abandoned: %s", exc)
        return render.problem(
            "ModelArts is slow to answer right now, so nothing was done; try again in a minute."
        )
    except ValidationError as exc:
        logger.warning("request not valid", extra={"reason": describe_validation_error(exc)})
        return render.problem(f"That request is not valid: {render.sentence(explain_error(exc))}.")
    except Exception as exc:
        logger.exception("request failed")
        return render.problem(f"Sorry, {render.sentence(explain_error(exc))}")
