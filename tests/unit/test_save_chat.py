"""`/nb save NAME as IMAGE[:TAG]`: the grammar, and the chat-ops rules (owner or admin, like stop
and delete; only a running notebook; the image name checked before anything is queued), and
the delete confirmation that points at it."""

from __future__ import annotations

import pytest

from nbkeeper.commands import SaveCommand
from nbkeeper.slack import grammar, render
from nbkeeper.slack.grammar import ParseError, SaveRequest, parse
from tests.unit.test_chatops import (
    ADMIN,
    OTHER,
    OWNER,
    RUN_ID,
    assert_refused,
    click,
    confirm_button,
    kind,
    slash,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("save nb1 as my-env:v1", SaveRequest("nb1", "my-env", "v1")),
        ("save nb1 as my-env", SaveRequest("nb1", "my-env")),
        ("SAVE nb1 AS my-env", SaveRequest("nb1", "my-env")),
        ("save nb1 my-env:v1", SaveRequest("nb1", "my-env", "v1")),  # `as` may be left out
        ("save as as as", SaveRequest("as", "as")),  # a notebook called "as"
    ],
)
def test_save_parses(text: str, expected: SaveRequest) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("save", "save needs NAME|ID"),
        ("save nb1", "`as IMAGE`"),
        ("save nb1 as", "`as IMAGE`"),
        ("save nb1 as my env", "one word"),
        ("save nb1 as my-env:", "IMAGE:TAG"),
        ("save nb1 as :v1", "IMAGE:TAG"),
        ("save nb1 as my-env tag=v1", "no option 'tag'"),
    ],
)
def test_bad_saves_say_how_to_write_them(text: str, hint: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert hint in str(caught.value)
    assert "Usage: `/nb save NAME|ID as IMAGE[:TAG]`" in str(caught.value)


def test_help_lists_save() -> None:
    assert "`/nb save NAME|ID as IMAGE[:TAG]`" in grammar.help_text()
    assert "Example: `/nb save exp-42 as exp-42-env:v1`" in grammar.help_text("save")


def test_the_owner_saves_without_a_question() -> None:
    outcome = slash("save run-1 as run-env:v1", OWNER)
    assert kind(outcome) == "queued"
    command = outcome.command
    assert isinstance(command, SaveCommand)
    assert (command.notebook_id, command.image, command.tag) == (RUN_ID, "run-env", "v1")
    assert "Saving *run-1* as the image *run-env:v1*" in outcome.reply["text"]
    assert "unavailable while it is saved" in outcome.reply["text"]


def test_no_tag_means_latest() -> None:
    command = slash("save run-1 as run-env", OWNER).command
    assert isinstance(command, SaveCommand) and command.label == "run-env:latest"


def test_someone_else_may_not_save_my_notebook() -> None:
    assert_refused(slash("save run-1 as theirs", OTHER), "belongs to <@U0OWNER>", "save it")


def test_an_admin_saves_someone_elses_notebook_after_confirming() -> None:
    asked = slash("save run-1 as run-env", ADMIN)
    assert kind(asked) == "confirm"
    assert "belongs to <@U0OWNER>" in asked.reply["text"]
    button = confirm_button(asked)
    assert button["style"] == "primary"  # not destructive
    confirmed = click(render.CONFIRM_ACTION, button["value"], ADMIN)
    assert isinstance(confirmed.command, SaveCommand)
    assert confirmed.command.label == "run-env:latest"


def test_a_stopped_notebook_gets_how_to_start_it_first() -> None:
    assert_refused(
        slash("save stopped-1 as env", OWNER),
        "*stopped-1* is STOPPED",
        "only a running notebook can be saved",
        "`/nb start stopped-1`",
    )


@pytest.mark.parametrize(
    ("image", "hint"),
    [
        ("My-Env", "lowercase letters"),
        ("-env", "starts and ends"),
        ("env:v 1", "tag"),  # quoted by the person: one word with a space
        ("e" * 129, "1 to 128"),
    ],
)
def test_a_bad_image_name_is_refused_before_queueing(image: str, hint: str) -> None:
    assert_refused(slash(f'save run-1 as "{image}"', OWNER), "Cannot save *run-1*", hint)


def test_delete_says_storage_is_lost_and_how_to_save_first() -> None:
    text = slash("delete run-1", OWNER).reply["text"]
    assert "removes the notebook and its storage for good" in text
    assert "save it first: `/nb save run-1 as IMAGE`" in text
