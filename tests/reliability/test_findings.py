"""Defects the suites found beyond issue 10, each reduced to the smallest reproduction through
the real handlers (they fail until fixed; docs/RELIABILITY.md lists them with the suites' figures).

1. A change ModelArts took, whose reply was lost (or whose invocation died right after it), is
   reported to its author as failed: the worker sends the call again (the client retries stop,
   start, delete and update as idempotent; SQS redelivers after a kill; a follow-up whose
   second step failed runs its first step again), ModelArts answers "stopping" (6308),
   "starting" (6306), "in progress" (6357) or "storage can only grow" (6331), and the worker
   tells the author "Could not stop ..." while the notebook stops. Fixed: the worker reads the
   notebook after such a refusal (`nbkeeper.worker.outcomes`; in `make test`:
   tests/functional/test_worker_lost_replies.py).
2. A policy file the YAML parser cannot read in some ways escapes as an exception that is not a
   `PolicyError` (an impossible date: ValueError; deep nesting: RecursionError), so the keeper's
   cold start fails without naming the file and the overlay path's "keep the previous policy"
   does not apply. Fixed: `nbkeeper.keeper.policy` turns both into a `PolicyError` naming the
   file.
3. (Keeper chaos) A kept notebook's lease ran out while the state table was unreadable. Fixed:
   during such an outage the keeper still prolongs a lease about to end (docs/lease-keeper.md).
4. (Soak, seed 2 before the fix) A command whose last receive died with its invocation before
   it ran went to the DLQ and its author was never told. Fixed: the worker's scheduled
   dead-letter reader (`nbkeeper.worker.deadletters`; in `make test`:
   tests/functional/test_dead_letters.py, and the soak forces such a kill every run).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbkeeper.assembly import PolicySource
from nbkeeper.keeper.policy import PolicyError, load_policy_text
from nbkeeper.settings import DEFAULT_POLICY_PATH
from nbkeeper.slack.buttons import CONFIRM_ACTION
from nbkeeper_local.harness import load_function
from tests.reliability import slackreq
from tests.reliability.conftest import suite_figures
from tests.reliability.figures import Report, SuiteFigures
from tests.reliability.simworld import (
    PROJECT_ID,
    Context,
    EventSource,
    World,
    base_env,
    environment,
    world,
)

pytestmark = pytest.mark.reliability

USER = "U0FINDER"


@pytest.fixture
def figures(reliability: Report) -> Iterator[SuiteFigures]:
    yield from suite_figures(reliability, "findings", __doc__)


def slash(w: World, text: str, n: int) -> tuple[str, dict[str, Any]]:
    """Send `/nb text`: its response_url (where the worker answers) and the ack."""
    url = f"https://hooks.slack.com/commands/{slackreq.TEAM}/{n}/finding{n}"
    event = slackreq.slash(
        text, USER, url, secret=w.env["SLACK_SIGNING_SECRET"], at=w.now_ms / 1000, trigger=f"{n}"
    )
    response = w.modules["slack_commands"].lambda_handler(event, Context())
    assert response["statusCode"] == 200, response
    return url, json.loads(response["body"])


def confirm(w: World, ack: dict[str, Any], n: int) -> str:
    """Press Confirm on a confirmation; the response_url the worker answers on."""
    value = slackreq.button(ack, CONFIRM_ACTION)
    assert value is not None, ack
    url = f"https://hooks.slack.com/actions/{slackreq.TEAM}/{n}/finding{n}"
    event = slackreq.click(
        USER,
        CONFIRM_ACTION,
        value,
        url,
        secret=w.env["SLACK_SIGNING_SECRET"],
        at=w.now_ms / 1000,
        message_ts=f"{n}.1",
    )
    assert w.modules["slack_commands"].lambda_handler(event, Context())["statusCode"] == 200
    return url


def settle(w: World) -> None:
    source = EventSource(w)
    for _ in range(20):
        worked = source.poll(w.queue_url) + source.poll(w.followup_url)
        w.advance(30)
        if not worked:
            return


def answers(w: World, url: str) -> list[str]:
    posts = w.slacks["notebook_worker"].posts
    return [str(body.get("text", "")) for post_url, body, _ in posts if post_url == url]


@pytest.mark.parametrize(("verb", "lost"), [("stop", "stop"), ("delete", "delete")])
def test_a_change_whose_reply_was_lost_is_not_reported_as_failed(
    seed: int, verb: str, lost: str, figures: SuiteFigures
) -> None:
    with world(seed) as w:
        slash(w, "create finding-1", 1)
        settle(w)
        (record,) = w.emulator.store.project(PROJECT_ID).records.values()
        if verb == "delete":
            slash(w, "stop finding-1", 2)
            settle(w)
        w.transports["notebook_worker"].lose_reply(lost)
        url, ack = slash(w, f"{verb} finding-1", 3)
        if verb == "delete":
            url = confirm(w, ack, 4)
        settle(w)
        told = answers(w, url)
        records = w.emulator.store.project(PROJECT_ID).records
        done = record.id not in records if verb == "delete" else record.status.value == "STOPPED"
    answer = told[-1] if told else "(nothing)"
    figures.check(
        f"finding 1: {verb} taken by ModelArts, its reply lost: the author is told",
        "done" if answer.startswith(":white_check_mark:") else answer[:90],
        "done",
    )
    assert done, f"the {verb} did not happen"
    assert told and told[-1].startswith(":white_check_mark:"), told


def test_policy_yaml_errors_are_policy_errors(tmp_path: Path, figures: SuiteFigures) -> None:
    problems: list[str] = []
    for text in ("holidays: [2024-13-45]", "[" * 5000):
        try:
            load_policy_text(text, "policy.yaml")
        except PolicyError:
            continue
        except Exception as exc:  # what the keeper's cold start would die of
            problems.append(f"{text[:30]!r}: {type(exc).__name__}")
        source = PolicySource(DEFAULT_POLICY_PATH, "overlay", fetch=_overlay(["{}", text]))
        source.current()
        try:
            source.current()  # a bad overlay keeps the previous policy
        except Exception as exc:
            problems.append(f"overlay {text[:30]!r}: {type(exc).__name__}")
        path = tmp_path / "policy.yaml"
        path.write_text(text)
        env = {**base_env(), "STATE_TABLE": "state", "POLICY_PATH": str(path)}
        with environment(env):
            try:
                load_function("lease_keeper")
            except PolicyError:
                pass
            except Exception as exc:
                problems.append(f"keeper cold start {text[:30]!r}: {type(exc).__name__}")
    figures.check(
        "finding 2: policy YAML errors that escape as something else than PolicyError",
        len(problems),
        note="; ".join(problems),
    )
    assert problems == []


def _overlay(texts: list[str]) -> Any:
    def fetch(_: str) -> str:
        return texts.pop(0) if len(texts) > 1 else texts[0]

    return fetch
