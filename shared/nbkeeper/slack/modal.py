"""The create form: a Slack modal as plain dicts, and what its submission carries back.

`create_view` is the modal views.open shows for a bare `/nb create`; `form_values` reads a
`view_submission`'s state into the form's fields; `options_reply` answers an external select's
`block_suggestion`; `errors_reply` puts problems under the fields they are about.

Image and flavor are static selects (at most `STATIC_MAX` options, Slack's limit), an external
select (type-ahead, options served by the `block_suggestion` route) past that, or plain text when
the caller could not read the choices (a name or an id, judged on submission like `image=`).
Storage and hours are number inputs, so Slack itself refuses a fraction or a value out of range;
the submission is still judged by the same grammar as the text command.

Plain dicts, not slack_sdk's models, like `render`: importing slack_sdk.models.views costs about
40 ms on top of the webhook's own imports (140 ms on its own: the package imports its Web API
client; `python -X importtime`, 5 runs), for a handler whose cold start is about 0.6 s
(docs/BENCHMARKS.md). tests/unit/test_modal.py rebuilds every view with slack_sdk's View model as
the oracle for Block Kit's rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from nbkeeper.commands import MAX_HOURS
from nbkeeper.modelarts.schemas import MAX_STORAGE_GB
from nbkeeper.modelarts.schemas import NAME_MAX as NOTEBOOK_NAME_MAX
from nbkeeper.slack.interaction import ViewState
from nbkeeper.slack.render import clip, fit

CREATE_CALLBACK = "nbkeeper.create"
STATIC_MAX = 100  # options in a static select
OPTION_TEXT_MAX = 75  # an option's text and description
OPTION_VALUE_MAX = 150
PLACEHOLDER_MAX = 150
METADATA_MAX = 3000
ERROR_MAX = 500  # an inline error: Slack shows it under the field, so keep it to a few lines
TITLE = "Create a notebook"  # a modal's title, submit and close: at most 24 characters

Field = Literal["name", "image", "flavor", "storage_gb", "hours", "idle"]
FIELDS: tuple[Field, ...] = ("name", "image", "flavor", "storage_gb", "hours", "idle")
FIELD_BY_NAME: dict[str, Field] = {f: f for f in FIELDS}
IDLE_VALUE = "idle"


def block_id(field: Field) -> str:
    """The input block of a field; its element's action_id is the field's name."""
    return f"{CREATE_CALLBACK}.{field}"


@dataclass(frozen=True)
class Choice:
    """One option of a select: the value the submission carries (an id) and what people see."""

    value: str
    label: str
    detail: str = ""


@dataclass(frozen=True)
class FormSpec:
    """What the form offers: the choices (None: type a name or an id), the defaults, and a note
    on why the lists are missing (plain text)."""

    images: Sequence[Choice] | None
    flavors: Sequence[Choice] | None
    default_image: str | None = None
    default_flavor: str | None = None
    default_storage_gb: int = 5
    default_hours: int = 2
    note: str = ""


def option(choice: Choice) -> dict[str, Any]:
    item: dict[str, Any] = {
        "text": _plain(choice.label, OPTION_TEXT_MAX),
        "value": choice.value[:OPTION_VALUE_MAX],
    }
    if choice.detail:
        item["description"] = _plain(choice.detail, OPTION_TEXT_MAX)
    return item


def create_view(spec: FormSpec, metadata: str) -> dict[str, Any]:
    """The modal: name, image, flavor, storage, hours and the idle switch."""
    intro = (
        "A ModelArts notebook owned by you. nbkeeper tells you in a DM when it is ready; "
        "`/nb help create` shows the same as a one-line command."
    )
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _mrkdwn(intro)}]
    if spec.note:
        blocks.append({"type": "context", "elements": [_mrkdwn(fit(spec.note, 1000))]})
    name = {
        "type": "plain_text_input",
        "action_id": "name",
        "max_length": NOTEBOOK_NAME_MAX,
        "placeholder": _plain("exp-42", PLACEHOLDER_MAX),
    }
    blocks.append(
        _input("name", "Name", name, hint="Letters, digits, '-' and '_'; unique in the project.")
    )
    blocks.append(_chooser("image", "Image", spec.images, spec.default_image))
    blocks.append(_chooser("flavor", "Flavor", spec.flavors, spec.default_flavor))
    blocks.append(
        _number("storage_gb", "Storage (GB)", MAX_STORAGE_GB, spec.default_storage_gb, "GB")
    )
    blocks.append(_number("hours", "Hours", MAX_HOURS, spec.default_hours, "hours of lease"))
    idle = {
        "type": "checkboxes",
        "action_id": "idle",
        "options": [
            {
                "text": _plain("Stop it when idle instead", OPTION_TEXT_MAX),
                "value": IDLE_VALUE,
                "description": _plain("rather than after the hours above", OPTION_TEXT_MAX),
            }
        ],
    }
    blocks.append(_input("idle", "Lease", idle, optional=True))
    return {
        "type": "modal",
        "callback_id": CREATE_CALLBACK,
        "title": _plain(TITLE, 24),
        "submit": _plain("Create", 24),
        "close": _plain("Cancel", 24),
        "private_metadata": metadata[:METADATA_MAX],
        "blocks": blocks,
    }


def _chooser(
    field: Field, label: str, choices: Sequence[Choice] | None, default: str | None
) -> dict[str, Any]:
    what = label.lower()
    optional = default is not None
    if not choices:  # unread, or none listed: a name or an id, judged on submission
        element: dict[str, Any] = {
            "type": "plain_text_input",
            "action_id": field,
            "placeholder": _plain(f"a name or an id (/nb {what}s lists them)", PLACEHOLDER_MAX),
        }
        hint = f"Leave it empty for the default {what}." if optional else ""
        return _input(field, label, element, optional=optional, hint=hint)
    initial = next((c for c in choices if c.value == default), None)
    if len(choices) > STATIC_MAX:
        element = {"type": "external_select", "action_id": field, "min_query_length": 0}
        hint = f"Type part of a name to narrow the {len(choices)} {what}s."
    else:
        element = {"type": "static_select", "action_id": field}
        element["options"] = [option(c) for c in choices]
        # a default the lists do not show (an unlisted image id): say what empty means
        hint = f"Leave it empty for the default {what}." if optional and initial is None else ""
    element["placeholder"] = _plain(f"Choose a {what}", PLACEHOLDER_MAX)
    if initial is not None:
        element["initial_option"] = option(initial)
    return _input(field, label, element, optional=optional, hint=hint)


def _number(field: Field, label: str, most: int, default: int, unit: str) -> dict[str, Any]:
    element = {
        "type": "number_input",
        "action_id": field,
        "is_decimal_allowed": False,
        "min_value": "1",
        "max_value": str(most),
        "placeholder": _plain(str(default), PLACEHOLDER_MAX),
    }
    hint = f"1 to {most}; empty means {default} {unit}."
    return _input(field, label, element, optional=True, hint=hint)


def _input(
    field: Field, label: str, element: dict[str, Any], *, optional: bool = False, hint: str = ""
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id(field),
        "label": _plain(label, 2000),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = _plain(hint, 2000)
    return block


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or "-", "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


# ---------------------------------------------------------------- what comes back


@dataclass(frozen=True)
class FormValues:
    """The submitted fields as typed or chosen ("" or None when left empty)."""

    name: str = ""
    image: str | None = None
    flavor: str | None = None
    storage_gb: str | None = None
    hours: str | None = None
    idle: bool = False


def form_values(state: ViewState) -> FormValues:
    """The fields of a `view_submission` (unknown blocks and element types ignored)."""

    def read(field: Field) -> str | None:
        value = state.values.get(block_id(field), {}).get(field)
        if value is None:
            return None
        if value.selected_option is not None:
            text = value.selected_option.value
        else:
            text = value.value or ""
        return text.strip() or None

    idle = state.values.get(block_id("idle"), {}).get("idle")
    return FormValues(
        name=read("name") or "",
        image=read("image"),
        flavor=read("flavor"),
        storage_gb=read("storage_gb"),
        hours=read("hours"),
        idle=idle is not None and any(o.value == IDLE_VALUE for o in idle.selected_options),
    )


def suggestion_field(action_id: str) -> Field | None:
    """Which chooser a `block_suggestion` is for (image or flavor), or None."""
    return "image" if action_id == "image" else "flavor" if action_id == "flavor" else None


def options_reply(choices: Sequence[Choice]) -> dict[str, Any]:
    """An external select's options (at most STATIC_MAX, Slack's limit)."""
    return {"options": [option(c) for c in choices[:STATIC_MAX]]}


def errors_reply(errors: Mapping[Field, str]) -> dict[str, Any]:
    """`response_action: errors`: each problem under its field's block, as plain text."""
    return {
        "response_action": "errors",
        "errors": {block_id(field): clip(text, ERROR_MAX) for field, text in errors.items()},
    }


def encode_metadata(channel_id: str | None) -> str:
    """What the submission needs from the slash command (no secrets: Slack shows it to nobody,
    but it is not ours to trust either: read back with `decode_metadata`)."""
    return json.dumps({"channel_id": channel_id}, separators=(",", ":"))


def decode_metadata(text: str) -> str | None:
    """The channel the form was opened from, or None when the metadata is not ours."""
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return None
    channel = data.get("channel_id") if isinstance(data, dict) else None
    return channel if isinstance(channel, str) and channel else None


_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}
_MARKUP = re.compile(r"<@([A-Z0-9]+)>|<[^<>|\n]+\|([^<>\n]+)>|\*([^*\n]+)\*|`([^`\n]+)`")


def unmark(markdown: str) -> str:
    """A chat reply's mrkdwn as the plain text an inline error shows: no leading emoji, no bold
    or code markers, mentions as @id, links as their label, entities undone."""
    text = re.sub(r"^(?::[a-z0-9_+-]+: )+", "", markdown.strip())
    text = _MARKUP.sub(_unmarked, text)
    return re.sub(r"&(?:amp|lt|gt);", lambda m: _ENTITIES[m.group()], text)


def _unmarked(match: re.Match[str]) -> str:
    mention, label, bold, code = match.groups()
    return f"@{mention}" if mention else (label or bold or code or "")
