"""The words inside a `/nb` command: option values (hours, storage, durations, clock times) and
the free-form tails after a verb's positionals (`keep X for 3h | until 18:00`, `save X as
IMAGE[:TAG]`). Each converter checks syntax and ranges only and raises `ParseError` with a
message that says how to fix it; names go through the shared schema layer later.
"""

from __future__ import annotations

import re
from datetime import time, timedelta

from nbkeeper.commands import MAX_HOURS
from nbkeeper.modelarts.schemas import MAX_STORAGE_GB
from nbkeeper.slack.render import clip

QUOTE_MAX = 60  # how much of a person's word an error message repeats

_DURATION = re.compile(r"^(?:(?P<h>\d{1,3})h)?(?:(?P<m>\d{1,4})m(?:in)?)?$")
_CLOCK = re.compile(r"^(?P<h>\d{1,2})(?::(?P<m>\d{2}))?$")


class ParseError(ValueError):
    """The text is not a valid command; the message is meant for the person who typed it."""


def quoted(word: str) -> str:
    """A person's word in an error message: quoted, and clipped before anyone escapes it."""
    return repr(clip(word, QUOTE_MAX))


# ---------------------------------------------------------------- option values


def _whole_number(value: str, units: tuple[str, ...], digits: int, example: str, unit: str) -> int:
    """`value` as a whole number, with any of `units` (longest first) after it."""
    text = value.lower()
    for suffix in units:
        text = text.removesuffix(suffix)
    if not text.isascii() or not text.isdigit() or len(text) > digits:
        raise ParseError(
            f"{quoted(value)} is not a whole number of {unit}; write for example {example}"
        )
    return int(text)


def hours(value: str) -> int:
    count = _whole_number(value, ("hours", "hour", "h"), 4, "3 or 3h", "hours")
    if not 1 <= count <= MAX_HOURS:
        raise ParseError(f"{count} h is out of range; use 1 to {MAX_HOURS} hours")
    return count


def storage(value: str) -> int:
    size = _whole_number(value, ("gb", "g"), 6, "storage=50", "GB")
    if not 1 <= size <= MAX_STORAGE_GB:
        raise ParseError(f"storage {size} GB is out of range; use 1 to {MAX_STORAGE_GB} GB")
    return size


def text(value: str) -> str:
    if not value:
        raise ParseError("an option was given an empty value; write it as key=value")
    return value


def duration(value: str) -> timedelta:
    match = _DURATION.match(value.lower())
    if not value or not match or not (match["h"] or match["m"]):
        raise ParseError(f"{quoted(value)} is not a duration; write for example 3h, 90m or 2h30m")
    span = timedelta(hours=int(match["h"] or 0), minutes=int(match["m"] or 0))
    if not timedelta(minutes=1) <= span <= timedelta(hours=MAX_HOURS):
        raise ParseError(f"keep for at least 1 minute and at most {MAX_HOURS} hours")
    return span


def clock(value: str) -> time:
    match = _CLOCK.match(value)
    if not match:
        raise ParseError(
            f"{quoted(value)} is not a time of day; write it as HH:MM, for example 18:00"
        )
    hour, minute = int(match["h"]), int(match["m"] or 0)
    if hour > 23 or minute > 59:
        raise ParseError(f"{quoted(value)} is not a time of day; use 00:00 to 23:59")
    return time(hour, minute)


# ---------------------------------------------------------------- tails


def keep_tail(rest: list[str]) -> dict[str, object]:
    """`for 3h` or `until 18:00` (the words may be split: `for 2h 30m`)."""
    if len(rest) < 2 or rest[0].lower() not in ("for", "until"):
        raise ParseError("say how long: `for 3h` or `until 18:00`")
    value = "".join(rest[1:])
    if rest[0].lower() == "for":
        return {"duration": duration(value)}
    return {"until": clock(value)}


def save_tail(rest: list[str]) -> dict[str, object]:
    """`as IMAGE` or `as IMAGE:TAG` (the `as` may be left out). The name and tag are checked
    against the image rules when the command is built."""
    words = rest[1:] if rest and rest[0].lower() == "as" else rest
    if not words:
        raise ParseError("say what to save it as: `as IMAGE` or `as IMAGE:TAG`")
    if len(words) > 1:
        raise ParseError(
            f"an image name is one word, not {quoted(' '.join(words))}; "
            "write for example `as my-env:v1`"
        )
    name, colon, tag = words[0].partition(":")
    if not name or (colon and not tag):
        raise ParseError(
            f"{quoted(words[0])} is not IMAGE or IMAGE:TAG; write for example `as my-env:v1`"
        )
    return {"image": name, "tag": tag or None}
