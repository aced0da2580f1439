"""`make serve` and `make demo`, exercised the way a person uses them (loopback only)."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import httpx
import pytest

from nbkeeper.slack.verify import compute_signature
from nbkeeper_local import demo
from nbkeeper_local.emulator.clock import SimClock
from nbkeeper_local.emulator.core import Emulator
from nbkeeper_local.harness import LOCAL_SIGNING_SECRET
from nbkeeper_local.serve import curl_examples, serving
from nbkeeper_local.serve import main as serve_main


def _form(text: str, response_url: str) -> bytes:
    return urllib.parse.urlencode(
        {
            "team_id": "T0DEMO",
            "channel_id": "C0NOTEBOOKS",
            "user_id": "U0ALICE",
            "command": "/nb",
            "text": text,
            "response_url": response_url,
        }
    ).encode()


def _signed_headers(body: bytes, secret: str = LOCAL_SIGNING_SECRET) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": compute_signature(secret, timestamp, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def test_serve_routes_a_signed_command_through_the_handler_to_the_worker() -> None:
    emulator = Emulator(clock=SimClock.stepped())
    with serving(emulator) as (base_url, runtime):
        runtime.worker.seams.max_followup_delay = 0  # moto would wait in real time
        response_url = runtime.world.slack.response_url("T0DEMO/1/test")
        body = _form("create served-nb", response_url)
        ack = httpx.post(f"{base_url}/slack/commands", content=body, headers=_signed_headers(body))
        assert ack.status_code == 200
        assert "Queued" in ack.json()["text"]

        posts = []
        for _ in range(20):  # bounded: create settles within a few simulated minutes
            runtime.drain_queues()
            emulator.advance(30)
            posts += [p for p in runtime.world.slack.take() if p.path.startswith("/commands/")]
            if posts:
                break
        assert "served-nb* is ready" in posts[0].body["text"]
        # the dead-letter reader runs on the keeper's beat against the world's two DLQs
        assert runtime.read_dead_letters() == {"read": 0}

        # A person with curl asks for text and reads what Slack would show.
        body = _form("help", response_url)
        headers = _signed_headers(body) | {"Accept": "text/plain"}
        text = httpx.post(f"{base_url}/slack/commands", content=body, headers=headers)
        assert text.headers["content-type"].startswith("text/plain")
        assert "• `/nb create NAME" in text.text
        assert "\\u" not in text.text and not text.text.lstrip().startswith("{")


def test_serve_refuses_a_bad_signature_and_unknown_routes() -> None:
    with serving(Emulator(clock=SimClock.stepped())) as (base_url, _):
        body = _form("list", "http://127.0.0.1:1/commands/x")
        forged = httpx.post(
            f"{base_url}/slack/commands", content=body, headers=_signed_headers(body, "wrong")
        )
        missing = httpx.post(f"{base_url}/slack/elsewhere", content=body)
    assert forged.status_code == 401
    assert missing.status_code == 404


def test_printed_curl_examples_carry_valid_signatures() -> None:
    text = curl_examples("http://127.0.0.1:8787", "http://127.0.0.1:9/commands/x")
    line = next(row for row in text.splitlines() if row.startswith("curl -s") and "help" in row)
    timestamp = line.split("X-Slack-Request-Timestamp: ")[1].split("'")[0]
    signature = line.split("X-Slack-Signature: ")[1].split("'")[0]
    body = line.split("--data '")[1].split("'")[0].encode()
    assert compute_signature(LOCAL_SIGNING_SECRET, timestamp, body) == signature


def test_demo_tells_the_whole_story(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.run(fleet=6) == 0
    out = capsys.readouterr().out
    # Slack -> queue -> worker -> emulator, and the result back to the person.
    assert "alice-train is ready" in out
    # images by name: one given with image=, one the deploy's default (a public CPU image)
    assert "Creating alice-train (image pytorch2.1.0-cuda11.8" in out
    assert "Creating bob-etl (image notebook2.0-mul-kernel-cpu-cp36:" in out
    assert "belongs to @U0ALICE" in out  # bob may not stop alice's notebook
    # The keeper: prolongs work, warns then stops the idle lunch notebook.
    assert "keeper: prolong alice-train" in out
    assert "keeper: warn bob-etl: idle" in out
    assert "keeper: stop bob-etl: idle" in out
    # Evening: bob left at 19:00; at 20:00 he has been quiet for the shipped off-hours
    # threshold (60 min), so he is warned then, with buttons, and presses [Stop now].
    assert (
        "20:00      keeper: warn bob-etl: outside working hours and idle (last activity 1 h ago)"
        in out
    )
    assert "20:00  bob clicks [Stop now]" in out
    # The reserved notebook is never stopped by the keeper.
    assert "keeper: stop alice-train" not in out
    assert "keeper: warn alice-train" not in out
    # Save as an image: the notebook runs on, alice is told the image's name.
    assert "Saved alice-train as the image alice-env:v1; the notebook is running again" in out
    # Delete with confirmation, which says what is lost and how to save it first.
    assert "Deleted bob-etl" in out
    assert "To keep its environment, save it first: `/nb save bob-etl as IMAGE`" in out
    assert "== Summary" in out

    # What Slack shows, in full: the warning DM, whole, with its buttons; the confirmation with its buttons.
    warning = "\n".join(out.split("Slack, DM to bob:\n", 1)[1].splitlines()[:4])
    assert "bob-etl will be stopped at" in warning
    assert "[Keep 2h more] [Stop now]" in warning
    assert "[Delete] [Cancel]" in out
    # Nothing cut, no markup, no machine output: logs and metrics went to the printed file.
    assert not [line for line in out.splitlines() if line.endswith(("...", "…"))]
    assert "*bob-etl*" not in out and "<@U0BOB>" not in out
    assert '"level"' not in out and '"_aws"' not in out
    assert "handler logs and metrics: " in out
    log_path = out.split("handler logs and metrics: ", 1)[1].split(" ", 1)[0]
    assert '"_aws"' in Path(log_path).read_text()  # the CloudWatch metrics are there


def test_serve_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        serve_main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 8787)" in out and "(default: 300" in out and "(default: UTC)" in out
