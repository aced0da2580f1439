"""The `/nb` command grammar: one table drives both the parser and the help text.

`parse(text)` turns the text after the slash command into a typed request, or raises `ParseError`
whose message says what is wrong and how to fix it. Only syntax is checked here (verbs, options,
numbers, ranges; the converters and free-form tails are `nbkeeper.slack.values`); names,
descriptions and image ids go through the shared schema layer later.
A ParseError's message is plain text that quotes the person's words clipped (`_quoted`); the
webhook escapes it for mrkdwn (`render.sentence`). `help_text` is mrkdwn.
"""

from __future__ import annotations

import html
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Literal

from nbkeeper.slack.render import fit
from nbkeeper.slack.values import ParseError as ParseError  # re-exported: the edge catches it
from nbkeeper.slack.values import hours as _hours
from nbkeeper.slack.values import keep_tail as _keep_tail
from nbkeeper.slack.values import quoted as _quoted
from nbkeeper.slack.values import save_tail as _save_tail
from nbkeeper.slack.values import storage as _storage
from nbkeeper.slack.values import text as _text

MAX_TEXT = 2000  # characters as typed (Slack sends &, < and > as entities: counted as one)

# Slack sends &, < and > HTML-escaped, and phones turn quotes into typographic ones.
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


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
class SaveRequest:
    """`save X as IMAGE[:TAG]`: save a running notebook as the project's own image."""

    target: str
    image: str
    tag: str | None = None
    verb: Literal["save"] = "save"


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
    | SaveRequest
    | CatalogRequest
    | HelpRequest
)

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
        "save",
        ("NAME|ID",),
        "save a running notebook's environment as an image (to create notebooks from, or to "
        "keep before a delete); TAG defaults to latest",
        extra="as IMAGE[:TAG]",
        example="save exp-42 as exp-42-env:v1",
        build=lambda v: SaveRequest(_target(v), str(v["image"]), _opt_str(v, "tag")),
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
TAILS = {"keep": _keep_tail, "save": _save_tail}  # free-form words after the positionals
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
    tail = TAILS.get(verb.name)
    if tail is not None:
        values.update(tail(rest))
    elif rest:
        raise ParseError(f"unexpected {_quoted(' '.join(rest))} after {verb.name}")
    return values
