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
    # the create form's type-ahead: block_suggestion payloads go to the same route
    assert manifest["settings"]["interactivity"]["message_menu_options_url"] == (
        "https://abc.example/slack/interactions"
    )
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # chat:write.public: the summary and warning channels work without inviting the bot
    assert {"commands", "chat:write", "chat:write.public", "im:write"} <= scopes


def test_the_create_form_needs_no_scope_beyond_the_commands() -> None:
    """views.open with a slash command's trigger_id needs only `commands`; its results are
    DMs (`chat:write`, `im:write`), which the other features already ask for."""
    manifest = yaml.safe_load((ROOT / "slack" / "manifest.yaml").read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "chat:write.public",
        "im:write",
    }
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


def test_request_urls_must_be_https() -> None:
    with pytest.raises(ValueError, match="https"):
        fill("url: {{SLACK_COMMANDS_URL}}", {"SLACK_COMMANDS_URL": "http://abc.example/x"})


def test_cli_refuses_an_http_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "filled.yaml"
    argv = ["--commands-url", "http://abc.example/slack/commands"]
    argv += ["--interactions-url", "https://abc.example/slack/interactions"]
    assert (
        main([*argv, "--template", str(ROOT / "slack" / "manifest.yaml"), "--output", str(output)])
        == 2
    )
    assert "https" in capsys.readouterr().err
    assert not output.exists()


def test_cli_writes_the_filled_manifest(tmp_path: Path) -> None:
    output = tmp_path / "filled.yaml"
    argv = ["--commands-url", "https://abc.example/slack/commands"]
    argv += ["--interactions-url", "https://abc.example/slack/interactions"]
    assert (
        main([*argv, "--template", str(ROOT / "slack" / "manifest.yaml"), "--output", str(output)])
        == 0
    )
    assert "{{" not in output.read_text()


def test_unfilled_placeholder_is_an_error() -> None:
    with pytest.raises(ValueError, match="unfilled"):
        fill("url: {{SLACK_COMMANDS_URL}}", {})


def test_cli_without_urls_says_how_to_get_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "--stack" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url",
    ["http://abc.example/slack/interactions", "abc.example/slack/interactions", "https:///x"],
)
def test_cli_refuses_request_urls_that_are_not_https(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "manifest.filled.yaml"
    argv = ["--commands-url", "https://abc.example/slack/commands", "--interactions-url", url]
    assert main([*argv, "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert "--interactions-url must be an https:// URL" in err and "--commands-url" not in err
    assert not output.exists()


def test_cli_writes_the_manifest_for_https_urls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "manifest.filled.yaml"
    argv = [
        "--commands-url",
        "https://abc.example/slack/commands",
        "--interactions-url",
        "https://abc.example/slack/interactions",
        "--template",
        str(ROOT / "slack" / "manifest.yaml"),
        "--output",
        str(output),
    ]
    assert main(argv) == 0
    assert "https://abc.example/slack/commands" in output.read_text()
