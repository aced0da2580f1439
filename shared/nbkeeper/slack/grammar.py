"""The `/nb` command grammar: one table drives both the parser and the help text.

`parse(text)` turns the text after the slash command into a typed request, or raises `ParseError`
whose message says what is wrong and how to fix it. Only syntax is checked here (verbs, options,
numbers, ranges); names, descriptions and image ids go through the shared schema layer later.
A ParseError's message is plain text that quotes the person's words clipped (`_quoted`); the
webhook escapes it for mrkdwn (`render.sentence`). `help_text` is mrkdwn.
"""

from __future__ import annotations

import html
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Literal

from nbkeeper.commands import MAX_HOURS
from nbkeeper.modelarts.schemas import MAX_STORAGE_GB
from nbkeeper.slack.render import clip, fit

MAX_TEXT = 2000  # characters as typed (Slack sends &, < and > as entities: counted as one)
QUOTE_MAX = 60  # how much of a person's word an error message repeats

# Slack sends &, < and > HTML-escaped, and phones turn quotes into typographic ones.
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
_DURATION = re.compile(r"^(?:(?P<h>\d{1,3})h)?(?:(?P<m>\d{1,4})m(?:in)?)?$")
_CLOCK = re.compile(r"^(?P<h>\d{1,2})(?::(?P<m>\d{2}))?$")


class ParseError(ValueError):
    """The text is not a valid command; the message is meant for the person who typed it."""


def _quoted(word: str) -> str:
    """A person's word in an error message: quoted, and clipped before anyone escapes it."""
    return repr(clip(word, QUOTE_MAX))


# ---------------------------------------------------------------- parsed requests


@dataclass(frozen=True)
class CreateRequest:
    name: str
    flavor: str | None = None
    image: str | None = None
    storage_gb: int | None = None
    hours: int | None = None
    idle: bool = False
    verb: Literal["create"] = "create"


@dataclass(frozen=True)
class DeleteRequest:
    target: str
    verb: Literal["delete"] = "delete"


@dataclass(frozen=True)
class ListRequest:
    scope: Literal["mine", "all"] = "mine"
    verb: Literal["list"] = "list"


@dataclass(frozen=True)
class StatusRequest:
    target: str
    verb: Literal["status"] = "status"


@dataclass(frozen=True)
class StartRequest:
    target: str
    hours: int | None = None
    verb: Literal["start"] = "start"


@dataclass(frozen=True)
class StopRequest:
    target: str
    verb: Literal["stop"] = "stop"


@dataclass(frozen=True)
class ProlongRequest:
    target: str
    hours: int
    verb: Literal["prolong"] = "prolong"


@dataclass(frozen=True)
class KeepRequest:
    """`keep X for 3h` (duration) or `keep X until 18:00` (clock time, next occurrence)."""

    target: str
    duration: timedelta | None = None
    until: time | None = None
    verb: Literal["keep"] = "keep"


@dataclass(frozen=True)
class UpdateRequest:
    target: str
    flavor: str | None = None
    image: str | None = None
    storage_gb: int | None = None
    name: str | None = None
    description: str | None = None
    verb: Literal["update"] = "update"


@dataclass(frozen=True)
class CatalogRequest:
    """`images [FILTER]` or `flavors [FILTER]`: what notebooks can be created from or with."""

    verb: Literal["images", "flavors"]
    filter: str | None = None


@dataclass(frozen=True)
class HelpRequest:
    topic: str | None = None
    verb: Literal["help"] = "help"


ParsedRequest = (
    CreateRequest
    | DeleteRequest
    | ListRequest
    | StatusRequest
    | StartRequest
    | StopRequest
    | ProlongRequest
    | KeepRequest
    | UpdateRequest
    | CatalogRequest
    | HelpRequest
)

# ---------------------------------------------------------------- value converters


def _hours(value: str) -> int:
    text = value.lower().removesuffix("hours").removesuffix("hour").removesuffix("h")
    if not text.isascii() or not text.isdigit() or len(text) > 4:
        raise ParseError(
            f"{_quoted(value)} is not a whole number of hours; write for example 3 or 3h"
        )
    hours = int(text)
    if not 1 <= hours <= MAX_HOURS:
        raise ParseError(f"{hours} h is out of range; use 1 to {MAX_HOURS} hours")
    return hours


def _storage(value: str) -> int:
    text = value.lower().removesuffix("gb").removesuffix("g")
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise ParseError(
            f"{_quoted(value)} is not a whole number of GB; write for example storage=50"
        )
    size = int(text)
    if not 1 <= size <= MAX_STORAGE_GB:
        raise ParseError(f"storage {size} GB is out of range; use 1 to {MAX_STORAGE_GB} GB")
    return size


def _text(value: str) -> str:
    if not value:
        raise ParseError("an option was given an empty value; write it as key=value")
    return value


def _duration(value: str) -> timedelta:
    match = _DURATION.match(value.lower())
    if not value or not match or not (match["h"] or match["m"]):
        raise ParseError(f"{_quoted(value)} is not a duration; write for example 3h, 90m or 2h30m")
    span = timedelta(hours=int(match["h"] or 0), minutes=int(match["m"] or 0))
    if not timedelta(minutes=1) <= span <= timedelta(hours=MAX_HOURS):
        raise ParseError(f"keep for at least 1 minute and at most {MAX_HOURS} hours")
    return span


def _clock(value: str) -> time:
    match = _CLOCK.match(value)
    if not match:
        raise ParseError(
            f"{_quoted(value)} is not a time of day; write it as HH:MM, for example 18:00"
        )
    hour, minute = int(match["h"]), int(match["m"] or 0)
    if hour > 23 or minute > 59:
        raise ParseError(f"{_quoted(value)} is not a time of day; use 00:00 to 23:59")
    return time(hour, minute)


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Option:
    name: str
    convert: Callable[[str], object]
    placeholder: str
    field: str = ""  # request field, when it differs from the option name

    @property
    def target_field(self) -> str:
        return self.field or self.name


@dataclass(frozen=True)
class Verb:
    name: str
    positionals: tuple[str, ...]
    summary: str
    options: tuple[Option, ...] = ()
    flags: tuple[str, ...] = ()
    example: str = ""
    extra: str = ""  # free-form syntax after the positionals (keep)
    build: Callable[[dict[str, object]], ParsedRequest] = field(default=lambda _: HelpRequest())

    @property
    def usage(self) -> str:
        parts = [self.name, *self.positionals]
        if self.extra:
            parts.append(self.extra)
        parts += [f"[{o.name}={o.placeholder}]" for o in self.options]
        parts += [f"[{f}]" for f in self.flags]
        return " ".join(parts)


FLAVOR = Option("flavor", _text, "F")
IMAGE = Option("image", _text, "NAME|ID")
STORAGE = Option("storage", _storage, "GB", "storage_gb")
HOURS = Option("hours", _hours, "H")


def _target(values: dict[str, object]) -> str:
    return str(values["NAME|ID"])


def _build_list(values: dict[str, object]) -> ListRequest:
    scope = str(values.get("[mine|all]") or "mine").lower()
    if scope not in ("mine", "all"):
        raise ParseError(
            f"list takes `mine` or `all`, not {_quoted(scope)}; for example `list all`"
        )
    return ListRequest(scope="all" if scope == "all" else "mine")


def _build_update(values: dict[str, object]) -> UpdateRequest:
    request = UpdateRequest(
        target=_target(values),
        flavor=_opt_str(values, "flavor"),
        image=_opt_str(values, "image"),
        storage_gb=_opt_int(values, "storage_gb"),
        name=_opt_str(values, "name"),
        description=_opt_str(values, "description"),
    )
    changes = (request.flavor, request.image, request.storage_gb, request.name, request.description)
    if all(v is None for v in changes):
        raise ParseError(
            "say what to change: flavor=F, image=I, storage=GB, name=N or "
            'description="..."; for example `update nb1 storage=100`'
        )
    return request


def _build_keep(values: dict[str, object]) -> KeepRequest:
    duration, until = values.get("duration"), values.get("until")
    return KeepRequest(
        _target(values),
        duration=duration if isinstance(duration, timedelta) else None,
        until=until if isinstance(until, time) else None,
    )


def _build_help(values: dict[str, object]) -> HelpRequest:
    topic = values.get("[VERB]")
    return HelpRequest(topic=str(topic).lower() if topic else None)


def _opt_str(values: dict[str, object], key: str) -> str | None:
    value = values.get(key)
    return None if value is None else str(value)


def _opt_int(values: dict[str, object], key: str) -> int | None:
    value = values.get(key)
    return value if isinstance(value, int) else None


VERBS: tuple[Verb, ...] = (
    Verb(
        "create",
        ("NAME",),
        "create a notebook (`idle`: stop it when idle); `/nb create` alone opens a form",
        options=(FLAVOR, IMAGE, STORAGE, HOURS),
        flags=("idle",),
        example="create exp-42 image=pytorch2.1 flavor=modelarts.vm.cpu.2u storage=50 hours=8",
        build=lambda v: CreateRequest(
            name=str(v["NAME"]),
            flavor=_opt_str(v, "flavor"),
            image=_opt_str(v, "image"),
            storage_gb=_opt_int(v, "storage_gb"),
            hours=_opt_int(v, "hours"),
            idle=bool(v.get("idle")),
        ),
    ),
    Verb(
        "delete",
        ("NAME|ID",),
        "delete a notebook (asks for confirmation)",
        example="delete exp-42",
        build=lambda v: DeleteRequest(_target(v)),
    ),
    Verb(
        "list",
        ("[mine|all]",),
        "list your notebooks, or everyone's",
        example="list all",
        build=_build_list,
    ),
    Verb(
        "status",
        ("NAME|ID",),
        "show a notebook's state, lease and owner",
        example="status exp-42",
        build=lambda v: StatusRequest(_target(v)),
    ),
    Verb(
        "start",
        ("NAME|ID",),
        "start a stopped notebook, for H hours",
        options=(HOURS,),
        example="start exp-42 hours=4",
        build=lambda v: StartRequest(_target(v), hours=_opt_int(v, "hours")),
    ),
    Verb(
        "stop",
        ("NAME|ID",),
        "stop a running notebook",
        example="stop exp-42",
        build=lambda v: StopRequest(_target(v)),
    ),
    Verb(
        "prolong",
        ("NAME|ID", "HOURS"),
        "extend a running notebook's lease to HOURS from now",
        example="prolong exp-42 3",
        build=lambda v: ProlongRequest(_target(v), hours=_hours(str(v["HOURS"]))),
    ),
    Verb(
        "keep",
        ("NAME|ID",),
        "keep a notebook alive (the lease keeper will not stop it) for a while or until a time",
        extra="for 3h | until 18:00",
        example="keep exp-42 until 18:00",
        build=_build_keep,
    ),
    Verb(
        "update",
        ("NAME|ID",),
        "change a notebook (only while stopped; a running one is offered stop-update-start)",
        options=(
            FLAVOR,
            IMAGE,
            STORAGE,
            Option("name", _text, "N"),
            Option("description", _text, '"..."'),
        ),
        example='update exp-42 storage=100 description="ablation runs"',
        build=_build_update,
    ),
    Verb(
        "images",
        ("[FILTER]",),
        "list the images for `create image=` (a name or an id), or those matching FILTER",
        example="images pytorch",
        build=lambda v: CatalogRequest("images", _opt_str(v, "[FILTER]")),
    ),
    Verb(
        "flavors",
        ("[FILTER]",),
        "list the flavors for `create flavor=`, and which are sold out",
        example="flavors gpu",
        build=lambda v: CatalogRequest("flavors", _opt_str(v, "[FILTER]")),
    ),
    Verb(
        "help",
        ("[VERB]",),
        "show this help, or one command's",
        example="help keep",
        build=_build_help,
    ),
)
VERB_BY_NAME = {verb.name: verb for verb in VERBS}
ALIASES = {"ls": "list", "rm": "delete", "info": "status", "show": "status", "extend": "prolong"}


# ---------------------------------------------------------------- help text


def help_text(topic: str | None = None) -> str:
    """Help generated from the table: every verb's usage, or one verb's usage and example."""
    if topic:
        verb = VERB_BY_NAME.get(ALIASES.get(topic, topic))
        if verb is None:
            return f"No command {fit(_quoted(topic), 80)}.\n\n" + help_text()
        return f"`/nb {verb.usage}`\n{verb.summary}\nExample: `/nb {verb.example}`"
    lines = ["*nbkeeper commands*"]
    lines += [f"• `/nb {verb.usage}`: {verb.summary}" for verb in VERBS]
    lines.append("NAME|ID: a notebook's name (if unique) or its id. `/nb help VERB` for examples.")
    return "\n".join(lines)


def usage_hint(verb: Verb) -> str:
    return f"Usage: `/nb {verb.usage}`, for example `/nb {verb.example}`."


# ---------------------------------------------------------------- parser


def tokenize(text: str) -> list[str]:
    """Split like a shell (quotes group words), after undoing Slack's escaping."""
    cleaned = html.unescape(text).translate(_QUOTES).strip()
    try:
        return shlex.split(cleaned)
    except ValueError:
        raise ParseError(
            'a quote is not closed; write the value as description="two words"'
        ) from None


def parse(text: str) -> ParsedRequest:
    """Parse the text after `/nb`; raise ParseError with a message a person can act on."""
    typed = len(html.unescape(text))
    if typed > MAX_TEXT:
        raise ParseError(f"the command is {typed} characters long; keep it under {MAX_TEXT}")
    tokens = tokenize(text)
    if not tokens:
        return HelpRequest()
    word = tokens[0].lower()
    verb = VERB_BY_NAME.get(ALIASES.get(word, word))
    if verb is None:
        known = ", ".join(v.name for v in VERBS)
        raise ParseError(
            f"unknown command {_quoted(tokens[0])}; use one of {known} (try `/nb help`)"
        )
    try:
        return verb.build(_bind(verb, tokens[1:]))
    except ParseError as exc:
        reason = str(exc).rstrip(".")
        raise ParseError(f"{reason}. {usage_hint(verb)}") from None


def _bind(verb: Verb, tokens: list[str]) -> dict[str, object]:
    values: dict[str, object] = {}
    options = {o.name: o for o in verb.options}
    positionals = list(verb.positionals)
    rest: list[str] = []
    for token in tokens:
        key, sep, value = token.partition("=")
        if sep and key.lower() in options:
            option = options[key.lower()]
            if option.target_field in values:
                raise ParseError(f"{option.name} is given twice; give it once")
            values[option.target_field] = option.convert(value)
        elif sep and not key.isdigit():
            known = ", ".join(options) or "none"
            raise ParseError(f"{verb.name} has no option {_quoted(key)} (options: {known})")
        elif token.lower() in verb.flags:
            values[token.lower()] = True
        elif positionals:
            values[positionals.pop(0)] = token
        else:
            rest.append(token)
    missing = [p for p in positionals if not p.startswith("[")]
    if missing:
        raise ParseError(f"{verb.name} needs {' and '.join(missing)}")
    if verb.name == "keep":
        values.update(_keep_tail(rest))
    elif rest:
        raise ParseError(f"unexpected {_quoted(' '.join(rest))} after {verb.name}")
    return values


def _keep_tail(rest: list[str]) -> dict[str, object]:
    if len(rest) < 2 or rest[0].lower() not in ("for", "until"):
        raise ParseError("say how long: `for 3h` or `until 18:00`")
    value = "".join(rest[1:])
    if rest[0].lower() == "for":
        return {"duration": _duration(value)}
    return {"until": _clock(value)}
