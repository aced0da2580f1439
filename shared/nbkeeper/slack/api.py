"""A small Slack client over httpx: response_url posts, chat.postMessage, DMs, views.open.

`Notifier.deliver` is how results reach people: through the command's `response_url` while Slack
still accepts it (at most 5 posts within 30 minutes of the invocation, counted in a ledger shared
by every Lambda), otherwise, or when that post fails, as a DM through the bot token.
Tokens and response URLs are credentials: they never appear in exceptions or logs.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from nbkeeper.slack.render import Message

logger = logging.getLogger(__name__)

SLACK_API = "https://slack.com/api/"
RESPONSE_URL_MAX_POSTS = 5
RESPONSE_URL_LIFETIME = timedelta(minutes=30)
ALLOWED_RESPONSE_PREFIXES = ("https://hooks.slack.com/",)
DEFAULT_TIMEOUT = httpx.Timeout(5.0)


class _MaskResponseUrls(logging.Filter):
    """httpx logs every request URL at INFO; a response_url is a bearer credential.

    Keeps the host and the first path segment (`/commands/`, `/actions/`) for debugging.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(arg, httpx.URL) and is_slack_response_url(str(arg)) for arg in record.args
        ):
            record.args = tuple(_masked(arg) for arg in record.args)
        return True


def _masked(arg: object) -> object:
    if not isinstance(arg, httpx.URL) or not is_slack_response_url(str(arg)):
        return arg
    first = arg.path.strip("/").split("/", 1)[0]
    return f"{arg.scheme}://{arg.host}/{first}/***"


logging.getLogger("httpx").addFilter(_MaskResponseUrls())


class SlackApiError(Exception):
    """A Slack call failed; `error` is Slack's error code (never a token or URL)."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"Slack {method} failed: {error}")
        self.method = method
        self.error = error


def is_slack_response_url(
    url: str, allowed_prefixes: tuple[str, ...] = ALLOWED_RESPONSE_PREFIXES
) -> bool:
    """Only post to Slack's own hooks host: a queue message must not turn us into a proxy."""
    parts = urlsplit(url)
    if not parts.hostname or "@" in parts.netloc:
        return False
    return any(url.startswith(prefix) for prefix in allowed_prefixes)


class SlackApi:
    """Web API calls with the bot token, and response_url posts (which need no token)."""

    def __init__(
        self,
        http: httpx.Client,
        bot_token: str | None,
        *,
        base_url: str = SLACK_API,
        allowed_prefixes: tuple[str, ...] = ALLOWED_RESPONSE_PREFIXES,
    ) -> None:
        self._http = http
        self._token = bot_token
        self._base = base_url
        self._allowed_prefixes = allowed_prefixes

    def call(
        self, method: str, payload: dict[str, Any], timeout: httpx.Timeout = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """POST a Web API method as JSON; raise SlackApiError unless Slack says ok."""
        if not self._token:
            raise SlackApiError(method, "no bot token configured")
        try:
            reply = self._http.post(
                self._base + method,
                json=payload,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            raise SlackApiError(method, type(exc).__name__) from None
        if reply.status_code == 429:
            raise SlackApiError(
                method, f"ratelimited (retry after {reply.headers.get('Retry-After', '?')} s)"
            )
        try:
            data = reply.json()
        except ValueError:
            raise SlackApiError(method, f"HTTP {reply.status_code}") from None
        if not isinstance(data, dict):
            raise SlackApiError(method, f"HTTP {reply.status_code}, reply is not a JSON object")
        if not data.get("ok"):
            raise SlackApiError(method, str(data.get("error", f"HTTP {reply.status_code}")))
        return data

    def open_dm(self, user_id: str) -> str:
        """The DM channel id with `user_id` (conversations.open)."""
        data = self.call("conversations.open", {"users": user_id})
        channel = data.get("channel")
        if not isinstance(channel, dict) or not channel.get("id"):
            raise SlackApiError("conversations.open", "reply has no channel id")
        return str(channel["id"])

    def post_message(
        self, channel: str, message: Message, timeout: httpx.Timeout = DEFAULT_TIMEOUT
    ) -> str | None:
        """chat.postMessage; returns the message `ts`. A user id as `channel` posts to the
        app's DM with that person (its Messages tab)."""
        payload = {k: v for k, v in message.items() if k in ("text", "blocks")}
        data = self.call("chat.postMessage", {"channel": channel, **payload}, timeout)
        ts = data.get("ts")
        return str(ts) if ts else None

    def open_view(
        self, trigger_id: str, view: dict[str, Any], timeout: httpx.Timeout = DEFAULT_TIMEOUT
    ) -> None:
        """views.open: show a modal to whoever's action made `trigger_id` (valid about 3 s)."""
        self.call("views.open", {"trigger_id": trigger_id, "view": view}, timeout)

    def post_response_url(
        self, url: str, message: Message, timeout: httpx.Timeout = DEFAULT_TIMEOUT
    ) -> bool:
        """POST to a response_url; False when Slack refuses (expired, used up), is unreachable
        or slower than `timeout`."""
        if not is_slack_response_url(url, self._allowed_prefixes):
            logger.warning("refusing to post to a response_url outside Slack's hooks host")
            return False
        try:
            reply = self._http.post(url, json=message, timeout=timeout)
        except httpx.HTTPError as exc:
            logger.warning("response_url post failed: %s", type(exc).__name__)
            return False
        if reply.status_code != 200:
            logger.warning("response_url post refused: HTTP %s", reply.status_code)
            return False
        return True


class ResponseUrlLedger(Protocol):
    """Counts posts per response_url across invocations (Slack allows 5 within 30 minutes)."""

    def claim(self, url: str, issued_at: datetime, already_used: int = 0) -> bool:
        """Reserve one post; False once the 5 are used (`already_used` made before counting)."""
        ...


def response_url_key(url: str) -> str:
    """A response_url's key in a ledger: hashed, since the URL itself is a credential."""
    return hashlib.sha256(url.encode()).hexdigest()[:40]


@dataclass
class Notifier:
    """Delivers a message to the person who asked: response_url first, DM as the fallback."""

    api: SlackApi
    ledger: ResponseUrlLedger

    def deliver(
        self,
        *,
        user_id: str,
        response_url: str | None,
        issued_at: datetime,
        message: Message,
        now: datetime,
        already_used: int = 0,
    ) -> str:
        """Send `message`; returns how ("response_url", "dm" or "undelivered")."""
        if (
            response_url
            and now - issued_at < RESPONSE_URL_LIFETIME
            and self.ledger.claim(response_url, issued_at, already_used)
            and self.api.post_response_url(response_url, message)
        ):
            return "response_url"
        try:
            channel = self.api.open_dm(user_id)
            self.api.post_message(channel, message)
        except SlackApiError as exc:
            logger.warning("could not DM the requester: %s", exc.error)
            return "undelivered"
        return "dm"
