"""Filling the Slack app manifest with the deployed request URLs."""

from pathlib import Path

import pytest
import yaml

from nbkeeper_local.manifest import fill, main

ROOT = Path(__file__).resolve().parents[2]


def test_filled_manifest_points_slack_at_both_routes() -> None:
    text = fill(
        (ROOT / "slack" / "manifest.yaml").read_text(),
        {
            "SLACK_COMMANDS_URL": "https://abc.example/slack/commands",
            "SLACK_INTERACTIONS_URL": "https://abc.example/slack/interactions",
        },
    )
    manifest = yaml.safe_load(text)
    assert manifest["features"]["slash_commands"][0]["url"] == "https://abc.example/slack/commands"
    assert manifest["settings"]["interactivity"]["request_url"] == (
        "https://abc.example/slack/interactions"
    )
    assert {"commands", "chat:write", "im:write"} <= set(manifest["oauth_config"]["scopes"]["bot"])


def test_unfilled_placeholder_is_an_error() -> None:
    with pytest.raises(ValueError, match="unfilled"):
        fill("url: {{SLACK_COMMANDS_URL}}", {})


def test_cli_without_urls_says_how_to_get_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "--stack" in capsys.readouterr().err
