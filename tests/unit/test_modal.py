"""slack/modal.py: the create form's view (slack_sdk's View model as the oracle for Block Kit's
rules) and reading a submission's state back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_sdk.models.blocks import Option
from slack_sdk.models.views import View

from nbkeeper.commands import MAX_HOURS
from nbkeeper.modelarts.schemas import MAX_STORAGE_GB
from nbkeeper.slack import modal
from nbkeeper.slack.interaction import ViewState, ViewSubmission
from nbkeeper.slack.modal import Choice, FormSpec, FormValues

IMAGES = [
    Choice("11111111-2222-3333-4444-555555555555", "pytorch2.1:py3.10", "GPU, X86_64, public"),
    Choice("aaaaaaaa-2222-3333-4444-555555555555", "t" * 90, "d" * 90),  # over the 75 limit
]
FLAVORS = [Choice("modelarts.vm.cpu.2u", "modelarts.vm.cpu.2u", "CPU: 2 vCPUs | 8 GB")]


def spec(**changes: Any) -> FormSpec:
    values: dict[str, Any] = {
        "images": IMAGES,
        "flavors": FLAVORS,
        "default_image": IMAGES[0].value,
        "default_flavor": "modelarts.vm.cpu.2u",
        **changes,
    }
    return FormSpec(**values)


def options_in(node: Any) -> list[dict[str, Any]]:
    """Every option object in a view (its selects' options and initial options)."""
    if isinstance(node, list):
        return [o for item in node for o in options_in(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if set(node) >= {"text", "value"} else []
    return found + [o for value in node.values() for o in options_in(value)]


def valid_option(item: dict[str, Any]) -> None:
    """slack_sdk's Option checks text (75) and value (150); Block Kit's description limit (75)
    it does not check, so it is checked here."""
    assert Option(**item).to_dict() == item
    assert len(item.get("description", {}).get("text", "")) <= modal.OPTION_TEXT_MAX


def oracle(view: dict[str, Any]) -> dict[str, Any]:
    """slack_sdk's View, built from our dict: raises on a broken Block Kit rule, and gives the
    same dict back when it understood every field. Its select elements keep their options as
    the dicts they were given, so each option is rebuilt with slack_sdk's Option too."""
    rebuilt: dict[str, Any] = View(**view).to_dict()
    assert rebuilt == view
    for item in options_in(view["blocks"]):
        valid_option(item)
    return rebuilt


def blocks(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"] if "block_id" in b}


def element(view: dict[str, Any], field: modal.Field) -> dict[str, Any]:
    found: dict[str, Any] = blocks(view)[modal.block_id(field)]["element"]
    return found


def test_the_view_is_valid_block_kit_with_every_field() -> None:
    view = oracle(modal.create_view(spec(), modal.encode_metadata("C1")))
    assert view["callback_id"] == modal.CREATE_CALLBACK
    assert set(blocks(view)) == {modal.block_id(f) for f in modal.FIELDS}
    assert all(element(view, f)["action_id"] == f for f in modal.FIELDS)
    assert json.loads(view["private_metadata"]) == {"channel_id": "C1"}


def test_selects_offer_the_choices_with_the_defaults_chosen() -> None:
    view = oracle(modal.create_view(spec(), "{}"))
    image = element(view, "image")
    assert image["type"] == "static_select"
    assert [o["value"] for o in image["options"]] == [c.value for c in IMAGES]
    assert image["initial_option"]["value"] == IMAGES[0].value
    assert len(image["options"][1]["text"]["text"]) == modal.OPTION_TEXT_MAX  # clipped
    assert element(view, "flavor")["initial_option"]["value"] == "modelarts.vm.cpu.2u"
    # with defaults, image and flavor may stay as they are; the name never may
    assert blocks(view)[modal.block_id("image")]["optional"] is True
    assert blocks(view)[modal.block_id("name")]["optional"] is False


def test_a_default_not_in_the_list_is_what_an_empty_select_means() -> None:
    view = oracle(modal.create_view(spec(default_image="unlisted-image-id"), "{}"))
    block = blocks(view)[modal.block_id("image")]
    assert block["optional"] is True and "initial_option" not in block["element"]
    assert block["hint"]["text"] == "Leave it empty for the default image."


def test_without_a_default_image_the_image_is_required() -> None:
    view = oracle(modal.create_view(spec(default_image=None), "{}"))
    assert blocks(view)[modal.block_id("image")]["optional"] is False
    assert "initial_option" not in element(view, "image")


def test_more_than_a_static_select_holds_becomes_type_ahead() -> None:
    many = [Choice(f"id-{n}", f"image-{n}") for n in range(modal.STATIC_MAX + 1)]
    view = oracle(modal.create_view(spec(images=many, default_image="id-7"), "{}"))
    image = element(view, "image")
    assert image["type"] == "external_select" and "options" not in image
    assert image["initial_option"]["value"] == "id-7"
    assert "101 images" in blocks(view)[modal.block_id("image")]["hint"]["text"]
    assert element(view, "flavor")["type"] == "static_select"


def test_unread_choices_become_text_inputs_with_a_note() -> None:
    view = oracle(modal.create_view(spec(images=None, flavors=[], note="lists <unread>"), "{}"))
    assert element(view, "image")["type"] == "plain_text_input"
    assert element(view, "flavor")["type"] == "plain_text_input"
    context = [b for b in view["blocks"] if b["type"] == "context"]
    assert context[0]["elements"][0]["text"] == "lists &lt;unread&gt;"


def test_numbers_are_whole_and_in_the_commands_range() -> None:
    view = oracle(modal.create_view(spec(), "{}"))
    storage, hours = element(view, "storage_gb"), element(view, "hours")
    assert (storage["type"], storage["is_decimal_allowed"]) == ("number_input", False)
    assert (storage["min_value"], storage["max_value"]) == ("1", str(MAX_STORAGE_GB))
    assert hours["max_value"] == str(MAX_HOURS)


def state(**fields: dict[str, Any]) -> ViewState:
    return ViewState.model_validate(
        {"values": {modal.block_id(k): {k: v} for k, v in fields.items()}}  # type: ignore[arg-type]
    )


def test_form_values_read_every_kind_of_element() -> None:
    values = modal.form_values(
        state(
            name={"type": "plain_text_input", "value": "  exp-1 "},
            image={"type": "static_select", "selected_option": {"value": "img-id"}},
            flavor={"type": "external_select", "selected_option": None},
            storage_gb={"type": "number_input", "value": "50"},
            hours={"type": "number_input", "value": None},
            idle={"type": "checkboxes", "selected_options": [{"value": modal.IDLE_VALUE}]},
        )
    )
    assert values == FormValues("exp-1", "img-id", None, "50", None, True)


def test_form_values_of_an_empty_or_foreign_state() -> None:
    assert modal.form_values(ViewState()) == FormValues()
    odd = ViewState.model_validate({"values": {"other.block": {"x": {"type": "datepicker"}}}})
    assert modal.form_values(odd) == FormValues()


def test_a_submission_payload_is_read_with_its_view() -> None:
    payload = ViewSubmission.model_validate(
        {
            "type": "view_submission",
            "team": {"id": "T1"},
            "user": {"id": "U1", "team_id": "T1"},
            "view": {"id": "V1", "callback_id": modal.CREATE_CALLBACK, "private_metadata": "x"},
            "future_field": {"ignored": True},
        }
    )
    assert (payload.team_id, payload.view.id, payload.view.state) == ("T1", "V1", ViewState())


def test_errors_go_under_their_fields_as_short_plain_text() -> None:
    reply = modal.errors_reply({"name": "x" * 2000, "image": "unknown"})
    assert reply["response_action"] == "errors"
    assert reply["errors"][modal.block_id("image")] == "unknown"
    assert len(reply["errors"][modal.block_id("name")]) == modal.ERROR_MAX


@pytest.mark.parametrize(
    ("markdown", "plain"),
    [
        (":warning: No image is called *x&amp;y*; `/nb images` lists them.",
         "No image is called x&y; /nb images lists them."),
        ("*a* belongs to <@U123>; see <https://x.example/a|the docs> &lt;ok&gt;",
         "a belongs to @U123; see the docs <ok>"),
        ("plain", "plain"),
    ],
)  # fmt: skip
def test_unmark_turns_a_chat_reply_into_plain_text(markdown: str, plain: str) -> None:
    assert modal.unmark(markdown) == plain


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"channel_id": 5}', '{"channel_id": ""}'])
def test_metadata_that_is_not_ours_names_no_channel(text: str) -> None:
    assert modal.decode_metadata(text) is None


def test_options_reply_holds_at_most_what_slack_takes() -> None:
    many = [Choice(f"id-{n}", f"image-{n}" * 20, "d" * 100) for n in range(250)]
    options = modal.options_reply(many)["options"]
    assert len(options) == modal.STATIC_MAX
    for item in options:
        valid_option(item)
    assert modal.options_reply([]) == {"options": []}
