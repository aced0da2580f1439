"""keeper_runtime: the policy source both handlers read, and where a sweep goes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from nbkeeper.assembly import (
    PassSettings,
    PolicySource,
    default_projects,
    project_settings,
)
from nbkeeper.commands import Requester, SweepProjectCommand
from nbkeeper.keeper.policy import PolicyError, load_policy_file
from nbkeeper.records import ProjectRef
from nbkeeper.settings import DEFAULT_POLICY_PATH, SettingsError, load_settings
from nbkeeper.worker.sweep import sweep_target

ENV = {
    "MODELARTS_REGION": "cn-north-4",
    "MODELARTS_PROJECT_ID": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "HUAWEICLOUD_SDK_AK": "ak",
    "HUAWEICLOUD_SDK_SK": "sk",
    "STATE_TABLE": "state",
}
NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)


class Overlay:
    """A fake SSM parameter whose text the test changes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.reads = 0

    def __call__(self, name: str) -> str:
        self.reads += 1
        return self.text


def test_the_default_policy_ships_in_the_package() -> None:
    settings = load_settings(PassSettings, ENV)
    assert Path(settings.policy_path) == DEFAULT_POLICY_PATH
    assert DEFAULT_POLICY_PATH.parent.name == "keeper"  # inside the layer's package
    load_policy_file(DEFAULT_POLICY_PATH)


def test_overlay_is_reread_and_a_bad_one_keeps_the_last_good_policy() -> None:
    overlay = Overlay("dry_run: true")
    source = PolicySource(DEFAULT_POLICY_PATH, "/p", fetch=overlay)
    assert source.current().dry_run is True
    overlay.text = "idle_threshold_minutes: soon"
    assert source.current().dry_run is True  # the last good one, not the file alone
    overlay.text = "dry_run: false"
    assert source.current().dry_run is False
    assert overlay.reads == 3


def test_a_bad_overlay_at_the_first_read_is_an_error() -> None:
    source = PolicySource(DEFAULT_POLICY_PATH, "/p", fetch=Overlay("dry_run: maybe"))
    with pytest.raises(PolicyError, match="dry_run"):
        source.current()


def test_without_a_parameter_the_file_is_read_once(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("idle_threshold_minutes: 30\n")
    source = PolicySource(path)
    assert source.current().idle_threshold_minutes == 30
    path.write_text("idle_threshold_minutes: oops\n")
    assert source.current().idle_threshold_minutes == 30


def test_both_slack_token_sources_are_refused() -> None:
    with pytest.raises(SettingsError, match="at most one of SLACK_BOT_TOKEN"):
        load_settings(PassSettings, {**ENV, "SLACK_BOT_TOKEN": "x", "SLACK_SECRET": "s"})


def test_sweep_target_and_project_settings() -> None:
    settings = load_settings(PassSettings, ENV)
    command = SweepProjectCommand(
        command_id="sweep.p.1",
        requested_at=NOW,
        requested_by=Requester(user_id="lease-keeper"),
        project=ProjectRef(region="ap-southeast-3", project_id="p2"),
        at=NOW,
    )
    target = sweep_target(command, settings)
    assert target == ProjectRef(region="ap-southeast-3", project_id="p2")
    other = project_settings(settings, target, {})
    assert (other.region, other.project_id) == ("ap-southeast-3", "p2")
    assert other.endpoint and "ap-southeast-3" in other.endpoint
    same = project_settings(settings, ProjectRef(region="cn-north-4", project_id="p3"), {})
    assert same.endpoint == settings.endpoint and same.project_id == "p3"
    unnamed = command.model_copy(update={"project": None})
    assert sweep_target(unnamed, settings).project_id == settings.project_id
    policy = PolicySource(DEFAULT_POLICY_PATH).current()
    assert default_projects(policy, settings) == [
        ProjectRef(region="cn-north-4", project_id=settings.project_id)
    ]


def test_the_deploys_answers_shape_the_keepers_policy() -> None:
    settings = load_settings(
        PassSettings,
        {
            **ENV,
            "NBKEEPER_TIMEZONE": "Asia/Singapore",
            "NBKEEPER_WARNING_CHANNEL": "C0WARN",
            "SLACK_ADMINS": " U0ADMIN, U0OTHER ",
            "SLACK_BOT_TOKEN": "xoxb-test",
        },
    )
    policy = settings.keeper_policy(PolicySource(DEFAULT_POLICY_PATH).current())
    assert (policy.timezone, policy.warning_channel) == ("Asia/Singapore", "C0WARN")
    assert policy.admins == ["U0ADMIN", "U0OTHER"]
    assert settings.keeper_problems(policy) == []


def test_a_bad_deploy_timezone_fails_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="NBKEEPER_TIMEZONE"):
        load_settings(PassSettings, {**ENV, "NBKEEPER_TIMEZONE": "Mars/Olympus"})


def test_keeper_problems_say_what_keeps_warnings_from_people() -> None:
    from nbkeeper.keeper.policy import load_policy_text

    bare = load_settings(PassSettings, ENV)  # no Slack, no channel, no admins
    problems = bare.keeper_problems(load_policy_text("admins: [U0OLD]"))
    assert [p.split(":")[0] for p in problems] == [
        "no Slack bot token (SLACK_SECRET or SLACK_BOT_TOKEN)",
        "policy admins U0OLD are not in SLACK_ADMINS, the list the Slack webhook honours",
        "warnings about notebooks without a known owner have nowhere to go, so those "
        "notebooks are never stopped",
    ]
    with_channel = load_settings(
        PassSettings, {**ENV, "SLACK_SECRET": "s", "NBKEEPER_WARNING_CHANNEL": "C0WARN"}
    )
    assert with_channel.keeper_problems(load_policy_text("")) == []
