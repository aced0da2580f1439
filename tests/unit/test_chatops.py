"""Chat-ops rules (`nbkeeper.chatops`) with an in-memory Directory: who may do what, what needs a
confirmation, how names resolve, what `keep` means in the configured timezone, and the lease
keeper's buttons. Every rejection must be a reply a person can act on, with nothing queued."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nbkeeper.chatops.access import Access, ChatConfig, ChatReply, Invocation
from nbkeeper.chatops.buttons import ButtonAction, handle_action
from nbkeeper.chatops.directory import Found
from nbkeeper.chatops.slash import handle_request, keep_until
from nbkeeper.commands import (
    DeleteCommand,
    KeepCommand,
    ProlongCommand,
    StartCommand,
    StopCommand,
    UpdateCommand,
)
from nbkeeper.modelarts.schemas import Notebook, NotebookStatus, Volume
from nbkeeper.records import ProjectRef
from nbkeeper.slack import grammar, render
from nbkeeper.slack.buttons import KEEP_ACTION, STOP_ACTION

S = NotebookStatus
OWNER, OTHER, ADMIN, STRANGER = "U0OWNER", "U0OTHER", "U0ADMIN", "U0STRANGER"
TEAM, CHANNEL = "T0TEAM", "C0CHAN"
PROJECT = ProjectRef(region="cn-north-4", project_id="0a1b2c3d4e5f60718293a4b5c6d7e8f9")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2024, 6, 11, 10, 0, tzinfo=UTC)  # a Tuesday, 12:00 in Berlin (CEST)
STAMP = int(NOW.timestamp())
CONFIG = ChatConfig(
    project=PROJECT,
    access=Access(
        teams=frozenset({TEAM}),
        channels=frozenset({CHANNEL}),
        users=frozenset({OWNER, OTHER}),
        admins=frozenset({ADMIN}),
    ),
    default_image="11111111-2222-3333-4444-555555555555",
    timezone=BERLIN,
)

RUN_ID = "aaaaaaaa-0000-4000-8000-000000000001"
STOP_ID = "aaaaaaaa-0000-4000-8000-000000000002"
ORPHAN_ID = "aaaaaaaa-0000-4000-8000-000000000003"
DUP_IDS = ("aaaaaaaa-0000-4000-8000-00000000000a", "aaaaaaaa-0000-4000-8000-00000000000b")


def notebook(notebook_id: str, name: str, status: NotebookStatus, capacity: int = 5) -> Notebook:
    return Notebook(id=notebook_id, name=name, status=status, volume=Volume(capacity=capacity))


@dataclass
class FakeDirectory:
    """In-memory `chatops.Directory`: find by id or exact name, and record every lookup."""

    rows: list[Found]
    lookups: list[str] = field(default_factory=list)

    def find(self, target: str) -> list[Found]:
        self.lookups.append(target)
        return [f for f in self.rows if target in (f.notebook.id, f.notebook.name)]

    def listing(self) -> list[Found]:
        self.lookups.append("list")
        return list(self.rows)


def fleet() -> FakeDirectory:
    return FakeDirectory(
        [
            Found(notebook(RUN_ID, "run-1", S.RUNNING), OWNER),
            Found(notebook(STOP_ID, "stopped-1", S.STOPPED), OWNER),
            Found(notebook(ORPHAN_ID, "orphan", S.RUNNING), None),
            Found(notebook(DUP_IDS[0], "dup", S.RUNNING), OWNER),
            Found(notebook(DUP_IDS[1], "dup", S.STOPPED), OTHER),
        ]
    )


def invocation(
    user: str = OWNER,
    *,
    team: str | None = TEAM,
    channel: str | None = CHANNEL,
    now: datetime = NOW,
) -> Invocation:
    return Invocation(
        user_id=user,
        team_id=team,
        channel_id=channel,
        response_url="https://hooks.slack.com/commands/T0TEAM/1/abc",
        command_id="cmd-1",
        now=now,
    )


def slash(
    text: str,
    user: str = OWNER,
    *,
    directory: FakeDirectory | None = None,
    config: ChatConfig = CONFIG,
    **where: Any,
) -> ChatReply:
    return handle_request(
        grammar.parse(text), invocation(user, **where), config, directory or fleet()
    )


def click(
    action_id: str,
    value: str | dict[str, Any],
    user: str = OWNER,
    *,
    directory: FakeDirectory | None = None,
    config: ChatConfig = CONFIG,
    **where: Any,
) -> ChatReply:
    raw = value if isinstance(value, str) else json.dumps(value)
    return handle_action(
        ButtonAction(action_id, raw), invocation(user, **where), config, directory or fleet()
    )


def actions_block(reply: dict[str, Any]) -> dict[str, Any] | None:
    return next((b for b in reply.get("blocks", []) if b.get("type") == "actions"), None)


def confirm_button(outcome: ChatReply) -> dict[str, Any]:
    block = actions_block(outcome.reply)
    assert block is not None, outcome.reply["text"]
    (button,) = [e for e in block["elements"] if e["action_id"] == render.CONFIRM_ACTION]
    return dict(button)


def kind(outcome: ChatReply) -> str:
    """queued (a command, no question) / confirm (a question, nothing queued) / reply / refused."""
    if outcome.command is not None:
        assert actions_block(outcome.reply) is None, "a confirmation must not also queue"
        return "queued"
    if actions_block(outcome.reply) is not None:
        return "confirm"
    return "refused" if outcome.reply["text"].startswith(":warning:") else "reply"


def assert_refused(outcome: ChatReply, *hints: str) -> None:
    """Nothing queued, no buttons, and a sentence that says why and what to do."""
    assert outcome.command is None
    assert actions_block(outcome.reply) is None
    text = outcome.reply["text"]
    assert text.startswith(":warning:") and len(text) > 30, text
    for hint in hints:
        assert hint in text, text


# ---------------------------------------------------------------- who may use nbkeeper at all


@pytest.mark.parametrize(
    ("user", "team", "channel", "hint"),
    [
        (OWNER, "T0ELSEWHERE", CHANNEL, "not enabled for this workspace"),
        (OWNER, None, CHANNEL, "not enabled for this workspace"),
        (STRANGER, TEAM, CHANNEL, "ask an admin to add you"),
        (OWNER, TEAM, "C0RANDOM", "use one of its channels"),
        (OWNER, TEAM, None, "use one of its channels"),
        (ADMIN, TEAM, "C0RANDOM", "use one of its channels"),  # admins too: channels are places
    ],
)
@pytest.mark.parametrize("text", ["list", "help", "status run-1", "stop run-1", "create nb-new"])
def test_outsiders_are_refused_before_any_lookup(
    user: str, team: str | None, channel: str | None, hint: str, text: str
) -> None:
    directory = fleet()
    outcome = slash(text, user, team=team, channel=channel, directory=directory)
    assert_refused(outcome, "Sorry, ", hint)
    assert directory.lookups == []


def test_an_admin_need_not_be_on_the_user_list() -> None:
    assert kind(slash("stop run-1", ADMIN)) == "confirm"


def test_an_empty_access_list_lets_everyone_in() -> None:
    open_config = ChatConfig(project=PROJECT)
    outcome = slash("stop run-1", OWNER, team=None, channel=None, config=open_config)
    assert isinstance(outcome.command, StopCommand)


# ---------------------------------------------------------------- owner / admin / anyone else

# (command text, what the owner gets, what an admin who is not the owner gets)
MATRIX = [
    ("delete run-1", "confirm", "confirm"),
    ("stop run-1", "queued", "confirm"),
    ("start stopped-1", "queued", "confirm"),
    ("prolong run-1 3", "queued", "confirm"),
    ("keep run-1 for 3h", "queued", "confirm"),
    ("update stopped-1 storage=10", "queued", "confirm"),
    ("update run-1 storage=10", "confirm", "confirm"),
]


@pytest.mark.parametrize(("text", "as_owner", "as_admin"), MATRIX)
def test_authorization_matrix(text: str, as_owner: str, as_admin: str) -> None:
    assert kind(slash(text, OWNER)) == as_owner
    assert kind(slash(text, ADMIN)) == as_admin
    refused = slash(text, OTHER)
    verb = text.split()[0]
    assert_refused(refused, "belongs to <@U0OWNER>", f"owner or an nbkeeper admin can {verb} it")


@pytest.mark.parametrize("user", [OWNER, OTHER, ADMIN])
def test_status_is_open_to_everyone_allowed_in(user: str) -> None:
    outcome = slash("status run-1", user)
    assert kind(outcome) == "reply"
    assert "RUNNING" in outcome.reply["text"] and "<@U0OWNER>" in outcome.reply["text"]


def test_list_shows_mine_by_default_and_everyone_on_request() -> None:
    mine = json.dumps(slash("list", OTHER).reply["blocks"])
    assert DUP_IDS[1] in mine and RUN_ID not in mine
    everyone = slash("list all", OTHER)
    assert everyone.command is None
    assert all(i in json.dumps(everyone.reply["blocks"]) for i in (RUN_ID, STOP_ID, ORPHAN_ID))
    assert "none" in slash("list", ADMIN).reply["text"]


@pytest.mark.parametrize(
    ("text", "command_type", "fields"),
    [
        ("stop run-1", StopCommand, {}),
        ("start stopped-1 hours=4", StartCommand, {"hours": 4}),
        ("prolong run-1 3", ProlongCommand, {"hours": 3}),
        ("keep run-1 for 3h", KeepCommand, {"until": NOW + timedelta(hours=3)}),
    ],
)
def test_the_owner_s_command_names_the_notebook_project_and_requester(
    text: str, command_type: type, fields: dict[str, Any]
) -> None:
    command = slash(text, OWNER).command
    assert isinstance(command, command_type)
    assert command.notebook_id in (RUN_ID, STOP_ID)
    assert command.project == PROJECT
    assert command.requested_by.user_id == OWNER and not command.requested_by.is_admin
    assert command.requested_at == NOW
    for key, value in fields.items():
        assert getattr(command, key) == value


@pytest.mark.parametrize("text", ["stop orphan", "delete orphan", "keep orphan for 1h"])
def test_a_notebook_with_no_known_owner_is_admin_only(text: str) -> None:
    assert_refused(slash(text, OWNER), "*orphan* was not created by you", "admin")
    asked = slash(text, ADMIN)
    assert kind(asked) == "confirm"
    assert "belongs to someone else" in asked.reply["text"]


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("stop stopped-1", "already stopped"),
        ("start run-1", "already running; `/nb prolong`"),
    ],
)
def test_no_op_actions_say_so_and_queue_nothing(text: str, hint: str) -> None:
    outcome = slash(text, OWNER)
    assert kind(outcome) == "reply" and hint in outcome.reply["text"]


def test_prolong_of_a_stopped_notebook_is_refused_with_the_reason() -> None:
    assert_refused(slash("prolong stopped-1 3", OWNER), "STOPPED", "only a running notebook")


def test_update_that_does_not_grow_storage_is_refused() -> None:
    assert_refused(slash("update stopped-1 storage=5", OWNER), "storage can only grow", "5 GB")


# ---------------------------------------------------------------- confirmations


def test_delete_always_asks_even_the_owner_and_queues_only_when_confirmed() -> None:
    asked = slash("delete run-1", OWNER)
    assert asked.command is None
    assert "removes the notebook and its storage for good" in asked.reply["text"]
    button = confirm_button(asked)
    assert button["style"] == "danger"
    confirmed = click(render.CONFIRM_ACTION, button["value"], OWNER)
    assert isinstance(confirmed.command, DeleteCommand)
    assert confirmed.command.notebook_id == RUN_ID
    assert confirmed.command.project == PROJECT
    assert confirmed.reply["replace_original"] is True


def test_an_admin_acting_on_someone_else_s_notebook_is_told_whose_it_is() -> None:
    asked = slash("stop run-1", ADMIN)
    assert "*run-1* belongs to <@U0OWNER>" in asked.reply["text"]
    confirmed = click(render.CONFIRM_ACTION, confirm_button(asked)["value"], ADMIN)
    assert isinstance(confirmed.command, StopCommand)
    assert confirmed.command.requested_by.is_admin


def test_update_of_a_running_notebook_offers_stop_update_start() -> None:
    asked = slash("update run-1 storage=10", OWNER)
    text = asked.reply["text"]
    assert "is running" in text and "stop it, update it and start it again" in text
    button = confirm_button(asked)
    assert button["text"]["text"] == "Stop, update, start"
    confirmed = click(render.CONFIRM_ACTION, button["value"], OWNER)
    assert isinstance(confirmed.command, UpdateCommand)
    assert confirmed.command.restart is True
    assert confirmed.command.changes.storage_new_size == 10


def test_update_of_a_stopped_notebook_is_queued_without_restart() -> None:
    command = slash("update stopped-1 storage=10", OWNER).command
    assert isinstance(command, UpdateCommand) and command.restart is False


def test_admin_update_of_someone_else_s_running_notebook_names_the_owner_too() -> None:
    text = slash("update run-1 storage=10", ADMIN).reply["text"]
    assert "belongs to <@U0OWNER>" in text
    assert "stop it, update it and start it again" in text


def test_only_the_asker_or_an_admin_can_confirm() -> None:
    value = confirm_button(slash("delete run-1", OWNER))["value"]
    outcome = click(render.CONFIRM_ACTION, value, OTHER)
    assert_refused(outcome, "Only <@U0OWNER> (who asked) or an admin can confirm")
    assert outcome.reply["replace_original"] is False  # the question stays for its asker
    assert isinstance(click(render.CONFIRM_ACTION, value, ADMIN).command, DeleteCommand)


@pytest.mark.parametrize(
    ("after", "runs"),
    [
        (timedelta(0), True),
        (timedelta(minutes=15), True),
        (timedelta(minutes=15, seconds=1), False),
    ],
)
def test_a_confirmation_expires_after_15_minutes(after: timedelta, runs: bool) -> None:
    value = confirm_button(slash("delete run-1", OWNER))["value"]
    outcome = click(render.CONFIRM_ACTION, value, OWNER, now=NOW + after)
    if runs:
        assert isinstance(outcome.command, DeleteCommand)
        return
    assert_refused(outcome, "expired", "confirmations last 15 minutes", "Nothing was done")
    assert outcome.reply["replace_original"] is True  # the stale buttons go away


def test_a_confirmation_without_its_time_is_expired() -> None:
    """Written before buttons carried their issue time: refused, the person asks again."""
    value = json.loads(confirm_button(slash("delete run-1", OWNER))["value"])
    del value["at"]
    assert_refused(click(render.CONFIRM_ACTION, value, OWNER), "expired")


@pytest.mark.parametrize("action_id", [KEEP_ACTION, STOP_ACTION])
@pytest.mark.parametrize(
    ("after", "works"),
    [
        (timedelta(hours=-1), True),
        (timedelta(hours=24), True),
        (timedelta(hours=24, seconds=1), False),
    ],
)
def test_keeper_buttons_expire_a_day_after_the_announced_stop(
    action_id: str, after: timedelta, works: bool
) -> None:
    outcome = click(action_id, keeper_value(hours=2), OWNER, now=NOW + after)
    if works:
        assert outcome.command is not None
        return
    assert_refused(outcome, "expired", "24 hours after the stop it announced", "/nb keep")
    assert outcome.reply["replace_original"] is True


def test_keeper_buttons_without_a_time_keep_but_do_not_stop() -> None:
    """Warnings posted before buttons carried a time: Keep (the safe side) still works."""
    legacy = {"project_id": PROJECT.project_id, "notebook_id": RUN_ID}
    keep = click(KEEP_ACTION, {**legacy, "hours": 2}, OWNER, now=NOW + timedelta(days=3))
    assert isinstance(keep.command, KeepCommand)
    assert_refused(click(STOP_ACTION, legacy, OWNER), "expired")


@pytest.mark.parametrize(
    ("field", "number"),
    [("hours", n) for n in ("1e999", "-1e999", "1.5", "NaN", "Infinity")]
    + [("at", n) for n in ("1e999", "-1e999", "1.5", "NaN", "Infinity", "1e20", "-1")],
)
def test_keeper_values_with_odd_numbers_are_unrecognised(field: str, number: str) -> None:
    value = json.dumps(keeper_value(hours=2, at=STAMP))
    before = f'"{field}": {2 if field == "hours" else STAMP}'
    assert before in value
    outcome = click(KEEP_ACTION, value.replace(before, f'"{field}": {number}'), OWNER)
    assert_refused(outcome, "do not recognise that button")


def test_a_confirmation_is_reauthorized_when_clicked() -> None:
    value = confirm_button(slash("stop run-1", ADMIN))["value"]
    demoted = ChatConfig(
        project=PROJECT,
        access=Access(users=frozenset({OWNER, OTHER, ADMIN}), admins=frozenset()),
    )
    outcome = click(render.CONFIRM_ACTION, value, ADMIN, config=demoted)
    assert_refused(outcome, "only its owner or an nbkeeper admin")


def test_a_confirmation_is_refused_outside_the_allowed_places() -> None:
    value = confirm_button(slash("delete run-1", OWNER))["value"]
    assert_refused(click(render.CONFIRM_ACTION, value, OWNER, team="T0ELSEWHERE"), "workspace")


@pytest.mark.parametrize(
    "cmd",
    [
        {"type": "create", "name": "x", "flavor": "f", "image_id": "i", "storage_gb": 5},
        {"type": "sweep-project", "at": "2024-06-11T10:00:00Z"},
        {
            "type": "follow",
            "notebook_id": RUN_ID,
            "origin": "delete",
            "wait_for": "GONE",
            "attempt": 1,
            "deadline": "2024-06-11T11:00:00Z",
        },
    ],
    ids=["create", "sweep", "follow"],
)
def test_a_confirm_value_only_carries_user_actions(cmd: dict[str, Any]) -> None:
    outcome = click(render.CONFIRM_ACTION, {"by": ADMIN, "cmd": cmd}, ADMIN)
    assert_refused(outcome)


def test_cancel_changes_nothing() -> None:
    outcome = click(render.CANCEL_ACTION, "cancel", OWNER)
    assert outcome.command is None and "nothing was changed" in outcome.reply["text"]
    assert outcome.reply["replace_original"] is True


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "text",
    ["delete dup", "stop dup", "start dup", "status dup", "prolong dup 2", "keep dup for 1h"],
)
def test_an_ambiguous_name_lists_the_candidates_and_queues_nothing(text: str) -> None:
    outcome = slash(text, ADMIN)
    assert outcome.command is None and actions_block(outcome.reply) is None
    assert "2 notebooks are called *dup*" in outcome.reply["text"]
    reply = json.dumps(outcome.reply["blocks"])
    assert "with the id" in reply
    assert all(i in reply for i in DUP_IDS)
    assert "<@U0OWNER>" in reply and "<@U0OTHER>" in reply


def test_an_id_picks_one_of_the_same_named_notebooks() -> None:
    command = slash(f"stop {DUP_IDS[0]}", OWNER).command
    assert isinstance(command, StopCommand) and command.notebook_id == DUP_IDS[0]


@pytest.mark.parametrize("text", ["delete ghost", "status ghost", "keep ghost until 18:00"])
def test_an_unknown_name_says_how_to_find_one(text: str) -> None:
    assert_refused(slash(text, OWNER), "*ghost*", "`/nb list all`")


def test_create_refuses_a_name_that_exists_and_queues_otherwise() -> None:
    assert_refused(slash("create run-1", OWNER), "already exists", "choose another name")
    assert slash("create nb-new", OWNER).command is not None


def test_create_without_a_default_image_says_how_to_give_one() -> None:
    no_image = ChatConfig(project=PROJECT, access=CONFIG.access)
    assert_refused(slash("create nb-new", OWNER, config=no_image), "image=ID")


# ---------------------------------------------------------------- keep: durations and clock times


def keep(text: str, now: datetime) -> tuple[KeepCommand, str]:
    outcome = slash(text, OWNER, now=now)
    assert isinstance(outcome.command, KeepCommand), outcome.reply["text"]
    return outcome.command, outcome.reply["text"]


def test_keep_for_a_duration_counts_from_now() -> None:
    command, text = keep("keep run-1 for 2h30m", NOW)
    assert command.until == NOW + timedelta(hours=2, minutes=30)
    assert "until 14:30 CEST today" in text


def test_keep_until_a_later_time_today_is_in_the_configured_timezone() -> None:
    command, text = keep("keep run-1 until 18:00", NOW)  # 12:00 in Berlin
    assert command.until == datetime(2024, 6, 11, 16, 0, tzinfo=UTC)
    assert "until 18:00 CEST today" in text


def test_keep_until_a_time_already_past_today_means_tomorrow_and_says_so() -> None:
    evening = datetime(2024, 6, 11, 17, 30, tzinfo=UTC)  # 19:30 in Berlin
    command, text = keep("keep run-1 until 18:00", evening)
    assert command.until == datetime(2024, 6, 12, 16, 0, tzinfo=UTC)
    assert "until 18:00 CEST tomorrow (Wed 12 Jun)" in text
    assert "since that time today has passed" in text


def test_keep_until_now_exactly_means_tomorrow() -> None:
    command, _ = keep("keep run-1 until 12:00", NOW)
    assert command.until == NOW + timedelta(days=1)


def test_keep_until_across_a_daylight_saving_change_keeps_the_wall_clock_time() -> None:
    saturday_evening = datetime(2024, 3, 30, 19, 0, tzinfo=UTC)  # 20:00 CET, CEST from Sunday
    command, text = keep("keep run-1 until 18:00", saturday_evening)
    assert command.until == datetime(2024, 3, 31, 16, 0, tzinfo=UTC)  # 18:00 CEST
    assert "18:00 CEST tomorrow" in text


# Berlin, autumn 2024: 03:00 CEST became 02:00 CET at 01:00 UTC on Sun 27 Oct, so the local
# hour 02:00-02:59 happened twice. Spring 2024: 02:00 CET became 03:00 CEST at 01:00 UTC on
# Sun 31 Mar, so 02:00-02:59 never happened.
AUTUMN_FIRST_0230 = datetime(2024, 10, 27, 0, 30, tzinfo=UTC)  # 02:30 CEST
AUTUMN_FIRST_0250 = datetime(2024, 10, 27, 0, 50, tzinfo=UTC)  # 02:50 CEST
AUTUMN_SECOND_0210 = datetime(2024, 10, 27, 1, 10, tzinfo=UTC)  # 02:10 CET, the hour again
SPRING_0130 = datetime(2024, 3, 31, 0, 30, tzinfo=UTC)  # 01:30 CET, half an hour before


@pytest.mark.parametrize(
    ("now", "until", "expected"),
    [
        # In the first pass of the hour, 02:45 CEST is still ahead.
        (AUTUMN_FIRST_0230, "02:45", datetime(2024, 10, 27, 0, 45, tzinfo=UTC)),
        # 02:45 CEST has passed but 02:45 CET is still to come, the same day.
        (AUTUMN_FIRST_0250, "02:45", datetime(2024, 10, 27, 1, 45, tzinfo=UTC)),
        # In the repeated hour: 02:45 CEST is an hour ago; the next 02:45 is CET (the bug: the
        # reservation ended at 00:45 UTC, 25 minutes in the past).
        (AUTUMN_SECOND_0210, "02:45", datetime(2024, 10, 27, 1, 45, tzinfo=UTC)),
        # Both 02:05 have passed once the hour repeats past them: tomorrow's.
        (AUTUMN_SECOND_0210, "02:05", datetime(2024, 10, 28, 1, 5, tzinfo=UTC)),
        # 02:30 does not exist that night: read as 03:30 CEST (moved forward by the gap).
        (SPRING_0130, "02:30", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),
        (SPRING_0130, "03:15", datetime(2024, 3, 31, 1, 15, tzinfo=UTC)),
        (SPRING_0130, "01:45", datetime(2024, 3, 31, 0, 45, tzinfo=UTC)),
    ],
)
def test_keep_until_across_the_daylight_saving_hours_is_the_first_instant_after_now(
    now: datetime, until: str, expected: datetime
) -> None:
    command, _ = keep(f"keep run-1 until {until}", now)
    assert command.until == expected
    assert command.until > now


@pytest.mark.parametrize(
    "day", [datetime(2024, 10, 26, tzinfo=UTC), datetime(2024, 3, 30, tzinfo=UTC)], ids=str
)
def test_keep_until_is_always_after_now_and_within_25_hours(day: datetime) -> None:
    """Every 7 minutes over the two days around each change, for times in and near the hour."""
    for minutes in range(0, 2 * 24 * 60, 7):
        now = day + timedelta(minutes=minutes)
        for clock in ("00:00", "01:59", "02:00", "02:30", "02:59", "03:00", "12:00", "23:59"):
            until = keep_until(grammar.KeepRequest("x", until=_clock(clock)), now, BERLIN)
            assert now < until <= now + timedelta(hours=25), (now, clock, until)


def _clock(text: str) -> time:
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


def test_keep_for_past_midnight_names_the_day() -> None:
    late = datetime(2024, 6, 11, 21, 0, tzinfo=UTC)  # 23:00 in Berlin
    _, text = keep("keep run-1 for 3h", late)
    assert "until 02:00 CEST tomorrow (Wed 12 Jun)" in text
    assert "passed" not in text


def test_keep_of_a_stopped_notebook_is_allowed_and_says_its_state() -> None:
    _, text = keep("keep stopped-1 for 1h", NOW)
    assert "(it is STOPPED now)" in text


# ---------------------------------------------------------------- the lease keeper's buttons


def keeper_value(notebook_id: str = RUN_ID, **extra: Any) -> dict[str, Any]:
    """A warning's button value whose announced stop is NOW."""
    return {"project_id": PROJECT.project_id, "notebook_id": notebook_id, "at": STAMP, **extra}


def test_keep_button_reserves_the_hours_it_carries() -> None:
    outcome = click(KEEP_ACTION, keeper_value(hours=2), OWNER)
    assert isinstance(outcome.command, KeepCommand)
    assert outcome.command.until == NOW + timedelta(hours=2)
    assert outcome.command.notebook_id == RUN_ID and outcome.command.project == PROJECT
    assert outcome.reply["replace_original"] is True  # the warning becomes the answer


@pytest.mark.parametrize(("hours", "expected"), [(0, 1), (-5, 1), (500, 72)])
def test_keep_button_hours_are_clamped(hours: int, expected: int) -> None:
    command = click(KEEP_ACTION, keeper_value(hours=hours), OWNER).command
    assert isinstance(command, KeepCommand) and command.until == NOW + timedelta(hours=expected)


def test_stop_button_stops_the_owner_s_notebook() -> None:
    outcome = click(STOP_ACTION, keeper_value(), OWNER)
    assert isinstance(outcome.command, StopCommand) and outcome.command.notebook_id == RUN_ID
    assert outcome.reply["replace_original"] is True


def test_keeper_buttons_work_in_the_owner_s_dm_when_channels_are_restricted() -> None:
    """The keeper's warnings are DMs, which are never among the allowed channels."""
    dm = "D0OWNERDM"
    assert isinstance(click(KEEP_ACTION, keeper_value(hours=2), channel=dm).command, KeepCommand)
    assert isinstance(click(STOP_ACTION, keeper_value(), channel=dm).command, StopCommand)
    assert_refused(click(KEEP_ACTION, keeper_value(hours=2), STRANGER, channel=dm), "add you")
    assert_refused(click(KEEP_ACTION, keeper_value(hours=2), team="T0X", channel=dm), "workspace")


@pytest.mark.parametrize("action_id", [KEEP_ACTION, STOP_ACTION])
def test_keeper_buttons_on_someone_else_s_notebook(action_id: str) -> None:
    assert_refused(click(action_id, keeper_value(hours=2), OTHER), "belongs to <@U0OWNER>")
    asked = click(action_id, keeper_value(hours=2), ADMIN)
    assert asked.command is None and actions_block(asked.reply) is not None


def test_stop_button_on_an_already_stopped_notebook_queues_nothing() -> None:
    outcome = click(STOP_ACTION, keeper_value(STOP_ID), OWNER)
    assert outcome.command is None and "already stopped" in outcome.reply["text"]


@pytest.mark.parametrize("action_id", [KEEP_ACTION, STOP_ACTION])
def test_keeper_button_for_another_project_is_refused_clearly(action_id: str) -> None:
    directory = fleet()
    value = keeper_value(project_id="9f8e7d6c5b4a30291807f6e5d4c3b2a1", hours=2)
    outcome = click(action_id, value, OWNER, directory=directory)
    assert_refused(outcome, "9f8e7d6c5b4a30291807f6e5d4c3b2a1", "ModelArts console")
    assert directory.lookups == []


UNREADABLE = [
    "not json",
    "[1, 2]",
    '"a string"',
    json.dumps({"project_id": PROJECT.project_id}),
    json.dumps({"notebook_id": RUN_ID}),
]
BAD_HOURS = [json.dumps(keeper_value(hours="lots")), json.dumps(keeper_value(hours=None))]


@pytest.mark.parametrize(
    ("action_id", "value"),
    [(a, v) for a in (KEEP_ACTION, STOP_ACTION, render.CONFIRM_ACTION) for v in UNREADABLE]
    + [(KEEP_ACTION, v) for v in BAD_HOURS]
    + [(render.CONFIRM_ACTION, json.dumps({"cmd": {"type": "stop"}}))],
)
def test_malformed_button_values_do_nothing_and_say_so(action_id: str, value: str) -> None:
    assert_refused(
        click(action_id, value, OWNER), "do not recognise that button", "nothing was done"
    )


def test_an_unknown_button_does_nothing() -> None:
    assert_refused(click("somebody.else", keeper_value(), OWNER), "do not know that button")


def test_keeper_button_for_a_deleted_notebook_says_it_is_gone() -> None:
    gone = "aaaaaaaa-0000-4000-8000-0000000000ff"
    assert_refused(click(STOP_ACTION, keeper_value(gone), OWNER), "`/nb list all`")
