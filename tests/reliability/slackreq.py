"""Slack requests as API Gateway delivers them, signed like Slack signs (deterministic ids)."""

from __future__ import annotations

import base64
import json
import urllib.parse
from typing import Any

from nbkeeper.slack.verify import compute_signature
from nbkeeper_local.harness import EVENTS

TEAM = "T0REL"
CHANNEL = "C0REL"


def signed(template: str, body: bytes, secret: str, at: float) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / template).read_text())
    timestamp = str(int(at))
    event["isBase64Encoded"] = True
    event["body"] = base64.b64encode(body).decode()
    event["headers"]["x-slack-request-timestamp"] = timestamp
    event["headers"]["x-slack-signature"] = compute_signature(secret, timestamp, body)
    return event


def slash_form(text: str, user: str, response_url: str, trigger: str) -> dict[str, str]:
    return {
        "token": "deprecated",
        "team_id": TEAM,
        "team_domain": "reliability",
        "channel_id": CHANNEL,
        "channel_name": "notebooks",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/nb",
        "text": text,
        "response_url": response_url,
        "trigger_id": trigger,
        "api_app_id": "A0REL",
    }


def slash(
    text: str, user: str, response_url: str, *, secret: str, at: float, trigger: str
) -> dict[str, Any]:
    body = urllib.parse.urlencode(slash_form(text, user, response_url, trigger)).encode()
    return signed("slack_command_help.json", body, secret, at)


def click_payload(
    user: str, action_id: str, value: str, response_url: str, message_ts: str
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": TEAM},
        "team": {"id": TEAM, "domain": "reliability"},
        "api_app_id": "A0REL",
        "trigger_id": f"{message_ts}.trigger",
        "container": {"type": "message", "channel_id": CHANNEL, "message_ts": message_ts},
        "channel": {"id": CHANNEL, "name": "notebooks"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": action_id,
                "value": value,
                "action_ts": message_ts,
            }
        ],
    }


def click(
    user: str,
    action_id: str,
    value: str,
    response_url: str,
    *,
    secret: str,
    at: float,
    message_ts: str,
) -> dict[str, Any]:
    payload = click_payload(user, action_id, value, response_url, message_ts)
    return interaction(payload, secret=secret, at=at)


def interaction(payload: Any, *, secret: str, at: float) -> dict[str, Any]:
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return signed("slack_interaction_confirm.json", body, secret, at)


def button(message: dict[str, Any], action_id: str) -> str | None:
    """The value of the button `action_id` in a Block Kit message, if it has one."""
    for block in message.get("blocks") or []:
        if block.get("type") != "actions":
            continue
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return str(element.get("value", ""))
    return None
