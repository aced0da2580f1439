"""The dead-letter reader's rules, with fakes for the queues, the ledger and Slack."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from nbkeeper.memory import MemoryCommandLog
from nbkeeper.worker.deadletters import CUT_SHORT, DeadLetter, DeadLetterReader

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@dataclass
class FakeLetters:
    letters: list[DeadLetter]
    released: int = 0
    fail_read: bool = False

    def read(self, limit: int) -> list[DeadLetter]:
        if self.fail_read:
            raise ConnectionError("SQS unreachable")
        return self.letters[:limit]

    def release(self) -> None:
        self.released += 1


@dataclass
class FakeAuthors:
    """`Delivery.tell_author`: records who was told; raises or refuses for chosen bodies."""

    told: list[tuple[str, str, int]] = field(default_factory=list)
    raising: set[str] = field(default_factory=set)
    refusing: set[str] = field(default_factory=set)

    def __call__(self, body: str, reason: str, attempts: int) -> str:
        if body in self.raising:
            raise RuntimeError("boom")
        if body in self.refusing:
            return "undelivered"
        self.told.append((body, reason, attempts))
        return "dm"


def letter(command_id: str) -> DeadLetter:
    body = json.dumps({"type": "stop", "command_id": command_id})
    return DeadLetter("commands", f"m-{command_id}", body)


def reader(
    letters: FakeLetters,
    authors: FakeAuthors,
    ledger: MemoryCommandLog | None = None,
    completed: frozenset[str] = frozenset(),
    seconds_left: list[float] | None = None,
) -> DeadLetterReader:
    left = iter(seconds_left or [])
    return DeadLetterReader(
        letters,
        ledger or MemoryCommandLog(),
        lambda command_id: command_id in completed,
        authors,
        attempts=5,
        now=lambda: NOW,
        seconds_left=lambda: next(left, 100.0),
    )


def test_each_untold_author_is_told_once_with_the_reason_and_the_attempts() -> None:
    letters = FakeLetters([letter("a"), letter("b")])
    authors = FakeAuthors()
    ledger = MemoryCommandLog()
    ledger.note_told("m-b", "response_url", NOW)  # the last receive told them

    first = reader(letters, authors, ledger).run()
    second = reader(letters, authors, ledger).run()

    assert first == {"read": 2, "already told": 1, "dm": 1}
    assert second == {"read": 2, "already told": 2}
    assert authors.told == [(letters.letters[0].body, CUT_SHORT, 5)]
    assert letters.released == 2


def test_a_completed_command_is_noted_and_nobody_is_told() -> None:
    letters, authors, ledger = FakeLetters([letter("a")]), FakeAuthors(), MemoryCommandLog()

    counts = reader(letters, authors, ledger, completed=frozenset({"a"})).run()

    assert counts == {"read": 1, "completed": 1}
    assert authors.told == [] and ledger.told("m-a")


def test_one_failing_letter_costs_no_other_and_is_tried_again() -> None:
    bad, good = letter("bad"), letter("good")
    letters, ledger = FakeLetters([bad, good]), MemoryCommandLog()
    authors = FakeAuthors(raising={bad.body})

    counts = reader(letters, authors, ledger).run()

    assert counts == {"read": 2, "failed, tried again next run": 1, "dm": 1}
    assert not ledger.told("m-bad") and ledger.told("m-good")


def test_an_author_slack_cannot_reach_is_not_noted() -> None:
    letters, ledger = FakeLetters([letter("a")]), MemoryCommandLog()
    authors = FakeAuthors(refusing={letters.letters[0].body})

    counts = reader(letters, authors, ledger).run()

    assert counts == {"read": 1, "undelivered, tried again next run": 1}
    assert not ledger.told("m-a")


def test_letters_past_the_time_reserve_wait_for_the_next_run() -> None:
    letters, authors = FakeLetters([letter("a"), letter("b")]), FakeAuthors()

    counts = reader(letters, authors, seconds_left=[90.0, 10.0]).run()

    assert counts == {"read": 2, "dm": 1, "left for the next run": 1}
    assert [body for body, _, _ in authors.told] == [letters.letters[0].body]


def test_letters_are_released_even_when_reading_fails() -> None:
    letters = FakeLetters([letter("a")], fail_read=True)

    with pytest.raises(ConnectionError):
        reader(letters, FakeAuthors()).run()

    assert letters.released == 1
