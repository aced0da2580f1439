"""`nbkeeper invoke` and `nbkeeper resign`: every events/ sample through its real handler in the
local world (emulator, moto, fake Slack), printed as a person reads it; loopback only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nbkeeper.slack.verify import compute_signature
from nbkeeper_local.cli import main as cli_main
from nbkeeper_local.harness import EVENTS, event_body
from nbkeeper_local.invoke import function_for
from tests.unit.test_message_texts import unzoned_times

SAMPLES = sorted(EVENTS.glob("*.json"))
# What each kind of sample must answer: the status a person checks first.
EXPECTED = {
    "slack_commands": "HTTP 200",
    "notebook_worker": "every message handled (no batchItemFailures)",
    "lease_keeper": "pass at Mon 23 Nov 11:50 CET: ",
}
# And what each sample's replies say, as Slack shows them (--timezone Europe/Paris).
REPLIES = {
    "schedule": ["[Keep 2h more] [Stop now]", "Lease keeper pass, Mon 11:50 CET"],
    "slack_command_create": [
        "Creating exp-42 (image notebook2.0-mul-kernel-cpu-cp36:3.3.2-release_v1, "
        "modelarts.vm.cpu.2u, 10 GB, runs 4 h).",
        "exp-42 is ready",
    ],
    "slack_command_delete": ["Deleting exp-42?", "[Delete] [Cancel]"],
    "slack_command_help": ["• `/nb create NAME", "`/nb help VERB` for examples."],
    "slack_command_keep": [
        "Keeping exp-42 alive until",
        "the lease keeper will not stop it before then",
    ],
    "slack_command_list": ["All notebooks (5)", "exp-42 `"],
    "slack_command_prolong": ["Extending exp-42's lease to 3 h from now.", "exp-42 now runs until"],
    "slack_command_save": [
        "Saving exp-42 as the image exp-42-env:v1",
        "Saved exp-42 as the image exp-42-env:v1; the notebook is running again.",
    ],
    "slack_command_start": ["exp-42 is already running; `/nb prolong` extends its lease."],
    "slack_command_status": ["exp-42 `", "owner @U0001"],
    "slack_command_stop": ["Stopping exp-42. Queued", "exp-42 is stopped."],
    "slack_command_update": [
        "ModelArts only updates stopped notebooks",
        "[Stop, update, start] [Cancel]",
    ],
    "slack_interaction_cancel": ["Cancelled; nothing was changed."],
    "slack_interaction_confirm": ["only its owner or an nbkeeper admin can delete it"],
    "sqs_commands_batch": ["Could not stop exp-42"],
    "worker_dead_letters": ["the dead-letter schedule"],
}
# Samples whose handler answers otherwise than EXPECTED says for its function.
EXPECTED_BY_SAMPLE = {"worker_dead_letters": "dead letters read: 0"}
ZONES = {"CET", "CEST", "UTC"}  # the policy's zone; list and status show Slack dates (UTC fallback)


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_event_sample_invokes_its_handler(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = function_for(sample, None)
    argv = ["invoke", folder, str(sample), "--fleet", "4", "--timezone", "Europe/Paris"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{folder} <- ")
    assert EXPECTED_BY_SAMPLE.get(sample.stem, EXPECTED[folder]) in out
    for phrase in REPLIES[sample.stem]:
        assert phrase in out, phrase
    assert "handler logs and metrics: " in out
    # Readable: no Block Kit JSON, no escapes, no cut texts, no bare or foreign times.
    assert '"blocks"' not in out and "\\u" not in out
    assert not [line for line in out.splitlines() if line.endswith(("...", "…"))]
    assert unzoned_times(out) == []
    zones = set(re.findall(r"\d:\d\d ([A-Z]{3,5})\b", out))
    assert zones <= ZONES, zones
    if sample.stem in {"schedule", "slack_command_keep", "slack_command_prolong"}:
        assert zones - {"UTC"}, "the policy's zone, not UTC"  # keeper, webhook and worker


def test_help_prints_the_help_text(capsys: pytest.CaptureFixture[str]) -> None:
    help_event = str(EVENTS / "slack_command_help.json")
    assert cli_main(["invoke", "slack_commands", help_event, "--fleet", "0"]) == 0
    out = capsys.readouterr().out
    assert "HTTP 200, ephemeral reply:" in out
    assert "re-signed with the local signing secret" in out
    assert "• `/nb create NAME [flavor=F] [image=NAME|ID] [storage=GB] [hours=H] [idle]`" in out
    assert "`/nb help VERB` for examples." in out


def test_a_queued_command_is_followed_through_the_worker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli_main(["invoke", str(EVENTS / "slack_command_stop.json"), "--fleet", "0"]) == 0
    out = capsys.readouterr().out
    assert "Stopping exp-42. Queued" in out
    assert "The worker runs what was queued:" in out
    assert "Slack, reply to the person who asked (response_url):" in out
    assert "exp-42 is stopped." in out


def test_the_keeper_sample_shows_the_warnings_with_their_buttons(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli_main(["invoke", str(EVENTS / "schedule.json"), "--fleet", "12"]) == 0
    out = capsys.readouterr().out
    assert "[Keep 2h more] [Stop now]" in out


def test_bad_function_and_event_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    help_event = str(EVENTS / "slack_command_help.json")
    assert cli_main(["invoke", "no_such_function", help_event]) == 2
    assert "no function 'no_such_function'; choose one of lease_keeper" in capsys.readouterr().err
    odd = tmp_path / "odd.json"
    odd.write_text("{}")
    assert cli_main(["invoke", str(odd)]) == 2
    assert "cannot tell the function from odd.json" in capsys.readouterr().err
    assert cli_main(["invoke", str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_resign_signs_a_sample_with_the_given_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = EVENTS / "slack_command_status.json"
    assert cli_main(["resign", str(sample), "--secret", "s3cret", "--at", "1800000000"]) == 0
    event = json.loads(capsys.readouterr().out)
    headers = event["headers"]
    assert headers["x-slack-request-timestamp"] == "1800000000"
    body = event_body(event)
    assert body == event_body(json.loads(sample.read_text()))  # the body is unchanged
    assert headers["x-slack-signature"] == compute_signature("s3cret", "1800000000", body)

    from slack_sdk.signature import SignatureVerifier  # the official oracle

    verifier = SignatureVerifier("s3cret", clock=_FixedClock(1800000000))
    assert verifier.is_valid(body, "1800000000", headers["x-slack-signature"])

    out = tmp_path / "signed.json"
    assert cli_main(["resign", str(sample), "--secret", "s3cret", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["headers"]["x-slack-signature"].startswith("v0=")


def test_resign_needs_a_secret_and_an_http_event(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    assert cli_main(["resign", str(EVENTS / "slack_command_help.json")]) == 2
    assert "give --secret" in capsys.readouterr().err
    assert cli_main(["resign", str(EVENTS / "schedule.json"), "--secret", "x"]) == 2
    assert "not an API Gateway event" in capsys.readouterr().err


class _FixedClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now
