"""The create form (`/nb create` alone): what it offers, and its submission judged like the text.

Opening: the same access rule as any command, then the choices from the cached catalogue (one
read within the lookup budget; when it fails the form asks for a name or an id instead, so it
still opens while the trigger is valid). Submitting: storage and hours go through the grammar's
own converters, then the request takes exactly the text command's path (`handle_request`: access,
image and flavor by name or id, the command's schema, the name not taken), so the form accepts and
refuses what `/nb create NAME image=... flavor=...` would, and builds the same command. A refusal
comes back as a sentence under the field it is about (`ChatReply.about`), or under the name when it
is about the request as a whole.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from nbkeeper.chatops import catalog as by_name
from nbkeeper.chatops.access import ChatConfig, ChatReply, Invocation
from nbkeeper.chatops.directory import Directory, SlowLookupError
from nbkeeper.chatops.slash import handle_request
from nbkeeper.modelarts.errors import ModelArtsError
from nbkeeper.slack import grammar, modal, render
from nbkeeper.slack.modal import Choice, Field, FormSpec, FormValues

logger = logging.getLogger(__name__)

UNREAD_NOTE = (
    "The lists of images and flavors could not be read just now: type a name or an id "
    "(`/nb images` and `/nb flavors` list them)."
)


def wants_form(text: str) -> bool:
    """`create` and nothing else: the form instead of a usage error."""
    try:
        return [word.lower() for word in grammar.tokenize(text)] == ["create"]
    except grammar.ParseError:
        return False


def text_form_hint() -> str:
    """How to create without the form (mrkdwn)."""
    return grammar.usage_hint(grammar.VERB_BY_NAME["create"])


def image_choices(catalog: by_name.Catalog) -> list[Choice]:
    return [_choice(by_name.image_option(i)) for i in catalog.images() if i.usable]


def flavor_choices(catalog: by_name.Catalog) -> list[Choice]:
    """Flavors one can create with now (sold-out ones are left out)."""
    options = [by_name.flavor_option(f) for f in catalog.flavors()]
    return [_choice(o) for o in options if not o.sold_out and o.id]


def _choice(option: by_name.Option) -> Choice:
    return Choice(option.id, option.label, option.detail)


def form_spec(config: ChatConfig, catalog: by_name.Catalog | None) -> FormSpec:
    """The form's choices and defaults; without a readable catalogue, text inputs and a note."""
    images: list[Choice] | None = None
    flavors: list[Choice] | None = None
    default_image = config.default_image
    note = ""
    if catalog is None:
        note = "Type an image and a flavor by name or id."
    else:
        try:
            catalog.load()
            images, flavors = image_choices(catalog), flavor_choices(catalog)
            default_image = by_name.default_image_id(default_image, catalog)  # a name: its id
        except (SlowLookupError, ModelArtsError) as exc:
            logger.warning("form opened without the catalogue (%s)", type(exc).__name__)
            note = UNREAD_NOTE
    return FormSpec(
        images=images,
        flavors=flavors,
        default_image=default_image,
        default_flavor=config.default_flavor,
        default_storage_gb=config.default_storage_gb,
        default_hours=config.default_hours,
        note=note,
    )


def open_form(
    inv: Invocation, config: ChatConfig, catalog: by_name.Catalog | None
) -> dict[str, object] | ChatReply:
    """The modal to open, or the reply that says why not."""
    refusal = config.access.refusal(inv.team_id, inv.channel_id, inv.user_id)
    if refusal:
        return ChatReply(render.problem(f"Sorry, {refusal}"))
    return modal.create_view(form_spec(config, catalog), modal.encode_metadata(inv.channel_id))


@dataclass(frozen=True)
class FormOutcome:
    """Problems by field (plain text; empty when the request holds), or the command's reply."""

    errors: dict[Field, str] = field(default_factory=dict)
    reply: ChatReply | None = None


def create_request(values: FormValues) -> grammar.CreateRequest | dict[Field, str]:
    """The text command's request for these fields, or the grammar's objections by field."""
    errors: dict[Field, str] = {}
    numbers: dict[Field, int | None] = {}
    checks: tuple[tuple[Field, grammar.Option, str | None], ...] = (
        ("storage_gb", grammar.STORAGE, values.storage_gb),
        ("hours", grammar.HOURS, values.hours),
    )
    for name, option, typed in checks:
        try:
            converted = option.convert(typed) if typed else None
        except grammar.ParseError as exc:  # plain text already (grammar's messages)
            errors[name] = str(exc)
            continue
        numbers[name] = converted if isinstance(converted, int) else None
    if errors:
        return errors
    return grammar.CreateRequest(
        name=values.name,
        flavor=values.flavor,
        image=values.image,
        storage_gb=numbers.get("storage_gb"),
        hours=numbers.get("hours"),
        idle=values.idle,
    )


def submit_form(
    values: FormValues,
    inv: Invocation,
    config: ChatConfig,
    directory: Directory,
    catalog: by_name.Catalog | None,
) -> FormOutcome:
    """Judge a submission like the text command; the command to queue, or what to fix where."""
    request = create_request(values)
    if isinstance(request, dict):
        return FormOutcome(errors=request)
    reply = handle_request(request, inv, config, directory, catalog)
    if reply.command is None:
        where = modal.FIELD_BY_NAME.get(reply.about or "", "name")
        return FormOutcome(errors={where: modal.unmark(reply.reply.get("text", ""))})
    return FormOutcome(reply=reply)


def suggestions(field: Field, typed: str, catalog: by_name.Catalog) -> Sequence[Choice]:
    """An external select's options: the choices whose name, id or details hold what is typed."""
    choices = image_choices(catalog) if field == "image" else flavor_choices(catalog)
    folded = typed.strip().casefold()
    if not folded:
        return choices[: modal.STATIC_MAX]
    found = [
        c for c in choices if any(folded in s.casefold() for s in (c.label, c.value, c.detail))
    ]
    return found[: modal.STATIC_MAX]
