"""chatops/form.py: the create form's choices, and its submission judged exactly like the text
command (the same grammar converters, then `handle_request`), problems placed by field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from nbkeeper.chatops.access import ChatReply
from nbkeeper.chatops.directory import SlowLookupError
from nbkeeper.chatops.form import (
    UNREAD_NOTE,
    FormOutcome,
    create_request,
    form_spec,
    open_form,
    submit_form,
    suggestions,
    wants_form,
)
from nbkeeper.chatops.slash import handle_request
from nbkeeper.modelarts.images import ImageDetail
from nbkeeper.modelarts.schemas import Flavor
from nbkeeper.slack import grammar, modal
from nbkeeper.slack.modal import FormValues
from tests.unit.test_chatops import CONFIG, OWNER, STRANGER, fleet, invocation

TORCH = "aaaaaaaa-1111-4222-8333-000000000001"
TORCH_OLD = ("aaaaaaaa-1111-4222-8333-000000000002", "aaaaaaaa-1111-4222-8333-000000000003")
BROKEN = "aaaaaaaa-1111-4222-8333-000000000004"
IMAGES = [
    ImageDetail(id=TORCH, name="pytorch2.1", tag="py3", resource_categories=["GPU"]),
    ImageDetail(id=TORCH_OLD[0], name="pytorch1.8", tag="a"),
    ImageDetail(id=TORCH_OLD[1], name="pytorch1.8", tag="b"),
    ImageDetail(id=BROKEN, name="tensorflow2.6", tag="t", status="CREATE_FAILED"),
]
FLAVORS = [
    Flavor(id="modelarts.vm.cpu.2u", description="CPU: 2 vCPUs"),
    Flavor(id="modelarts.vm.cpu.8u"),
    Flavor(id="modelarts.vm.gpu.a100", sold_out=True),
]


@dataclass
class Catalog:
    fail: Exception | None = None
    loads: list[tuple[bool, bool]] = field(default_factory=list)

    def images(self) -> list[ImageDetail]:
        return IMAGES

    def flavors(self) -> list[Flavor]:
        return FLAVORS

    def load(self, *, images: bool = True, flavors: bool = True) -> None:
        self.loads.append((images, flavors))
        if self.fail is not None:
            raise self.fail


def submit(values: FormValues, user: str = OWNER, **where: Any) -> FormOutcome:
    return submit_form(values, invocation(user, **where), CONFIG, fleet(), Catalog())


def problems(values: FormValues, user: str = OWNER) -> dict[modal.Field, str]:
    outcome = submit(values, user)
    assert outcome.reply is None and outcome.errors, outcome
    return outcome.errors


@pytest.mark.parametrize(
    ("text", "form"),
    [("create", True), ("  Create ", True), ("create x", False), ("", False), ('create "', False)],
)
def test_only_a_bare_create_opens_the_form(text: str, form: bool) -> None:
    assert wants_form(text) is form


def test_the_form_offers_usable_images_and_available_flavors() -> None:
    spec = form_spec(CONFIG, Catalog())
    assert spec.images is not None and spec.flavors is not None
    assert [c.value for c in spec.images] == [TORCH, *TORCH_OLD]  # the failed image is left out
    assert [c.value for c in spec.flavors] == ["modelarts.vm.cpu.2u", "modelarts.vm.cpu.8u"]
    assert spec.images[0].label == "pytorch2.1:py3" and "GPU" in spec.images[0].detail
    assert (spec.default_image, spec.default_flavor) == (
        CONFIG.default_image,
        CONFIG.default_flavor,
    )


def test_a_default_image_by_name_is_preselected_by_its_id() -> None:
    from dataclasses import replace

    spec = form_spec(replace(CONFIG, default_image="pytorch2.1"), Catalog())
    assert spec.default_image == TORCH
    unlisted = form_spec(replace(CONFIG, default_image="no-such-image"), Catalog())
    assert unlisted.default_image == "no-such-image"  # shown as unlisted; create explains


@pytest.mark.parametrize("failure", [SlowLookupError("1 s"), None])
def test_without_the_catalogue_the_form_asks_for_names(failure: Exception | None) -> None:
    catalog = Catalog(fail=failure) if failure else None
    spec = form_spec(CONFIG, catalog)
    assert (spec.images, spec.flavors) == (None, None)
    assert spec.note == UNREAD_NOTE if failure else spec.note


def test_outsiders_get_no_form() -> None:
    refused = open_form(invocation(STRANGER), CONFIG, Catalog())
    assert isinstance(refused, ChatReply) and "Sorry" in refused.reply["text"]
    view = open_form(invocation(), CONFIG, Catalog())
    assert isinstance(view, dict)
    assert modal.decode_metadata(str(view["private_metadata"])) == invocation().channel_id


@pytest.mark.parametrize(
    ("values", "text"),
    [
        (FormValues("exp-9"), "create exp-9"),
        (
            FormValues("exp-9", TORCH, "modelarts.vm.cpu.8u", "50", "8", True),
            f"create exp-9 image={TORCH} flavor=modelarts.vm.cpu.8u storage=50 hours=8 idle",
        ),
        (FormValues("exp-9", "pytorch2", "modelarts.vm.cpu.8", "7G", "3h"),
         "create exp-9 image=pytorch2 flavor=modelarts.vm.cpu.8 storage=7G hours=3h"),
    ],
)  # fmt: skip
def test_a_submission_is_the_text_command(values: FormValues, text: str) -> None:
    assert create_request(values) == grammar.parse(text)
    outcome = submit(values)
    expected = handle_request(grammar.parse(text), invocation(), CONFIG, fleet(), Catalog())
    assert outcome.errors == {}
    assert outcome.reply is not None and outcome.reply.command is not None
    assert outcome.reply.command == expected.command
    assert outcome.reply.reply == expected.reply


@pytest.mark.parametrize(
    ("values", "where", "says"),
    [
        (FormValues("bad name!"), "name", "only letters, digits"),
        (FormValues("run-1"), "name", "already exists"),
        (FormValues(""), "name", "must not be empty"),
        (FormValues("x", image="nothing-like-it"), "image", "No image is called nothing-like-it"),
        (FormValues("x", image="pytorch1.8"), "image", "2 images match pytorch1.8"),
        (FormValues("x", image="not-a-uuid-but-id"), "image", "No image is called"),
        (FormValues("x", flavor="modelarts.vm.gpu.t9"), "flavor", "No flavor is called"),
        (FormValues("x", flavor="modelarts.vm.gpu.a100"), "flavor", "sold out"),
        (FormValues("x", storage_gb="0"), "storage_gb", "storage 0 GB is out of range"),
        (FormValues("x", storage_gb="1.5"), "storage_gb", "not a whole number of GB"),
        (FormValues("x", hours="100"), "hours", "100 h is out of range"),
    ],
)
def test_a_problem_is_shown_under_its_field_as_plain_text(
    values: FormValues, where: modal.Field, says: str
) -> None:
    errors = problems(values)
    assert list(errors) == [where]
    assert says in errors[where], errors
    assert "*" not in errors[where] and ":warning:" not in errors[where]


def test_both_numbers_are_judged_before_anything_is_looked_up() -> None:
    catalog = Catalog()
    directory = fleet()
    outcome = submit_form(
        FormValues("x", storage_gb="0", hours="0"), invocation(), CONFIG, directory, catalog
    )
    assert set(outcome.errors) == {"storage_gb", "hours"}
    assert catalog.loads == [] and directory.lookups == []


def test_an_outsider_s_submission_is_refused_under_the_first_field() -> None:
    errors = problems(FormValues("x"), STRANGER)
    assert list(errors) == ["name"] and errors["name"].startswith("Sorry, ")


def test_without_image_or_default_the_image_is_asked_for() -> None:
    from dataclasses import replace

    config = replace(CONFIG, default_image=None)
    outcome = submit_form(FormValues("x"), invocation(), config, fleet(), Catalog())
    assert list(outcome.errors) == ["image"] and "No image given" in outcome.errors["image"]


def test_suggestions_match_names_ids_and_details() -> None:
    assert [c.value for c in suggestions("image", "", Catalog())] == [TORCH, *TORCH_OLD]
    assert [c.value for c in suggestions("image", "GPU", Catalog())] == [TORCH]
    assert [c.value for c in suggestions("image", "1.8:b", Catalog())] == [TORCH_OLD[1]]
    assert [c.value for c in suggestions("flavor", "8U", Catalog())] == ["modelarts.vm.cpu.8u"]
    assert list(suggestions("flavor", "a100", Catalog())) == []  # sold out: not offered
