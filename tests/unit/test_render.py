"""Block Kit builders, validated by slack_sdk's block models (the oracle; test-only)."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, SectionBlock

from nbkeeper.modelarts.schemas import Notebook
from nbkeeper.slack import render


def assert_valid(message: dict[str, Any]) -> list[Block]:
    assert message["text"], "top-level text is the notification fallback"
    assert message["response_type"] in ("ephemeral", "in_channel")
    assert isinstance(message["replace_original"], bool)
    blocks = []
    for raw in message["blocks"]:
        block = Block.parse(raw)
        assert block is not None
        block.validate_json()  # raises SlackObjectFormationError on any limit
        assert block.to_dict() == raw, "slack_sdk reads back exactly what we wrote"
        blocks.append(block)
    return blocks


def notebook(i: int, status: str = "RUNNING") -> Notebook:
    return Notebook.model_validate(
        {
            "id": f"00000000-0000-0000-0000-{i:012d}",
            "name": f"exp-{i}",
            "status": status,
            "flavor": "modelarts.vm.cpu.2u",
            "lease": {"create_at": 1_700_000_000_000, "duration": 3_600_000},
            "url": "https://example.invalid/lab",
        }
    )


@pytest.mark.parametrize(
    "message",
    [
        render.info("hello"),
        render.problem("bad <input> & more"),
        render.queued("Creating *x*."),
        render.done("Deleted *x*."),
        render.done("Failed", ok=False),
        render.info("x" * 5000),
        render.notebook_status(notebook(1), "U1"),
        render.notebook_list("All notebooks", []),
        render.candidates("exp", [(notebook(1), "U1"), (notebook(2), None)]),
    ],
)
def test_messages_are_valid_block_kit(message: dict[str, Any]) -> None:
    assert_valid(message)


def test_long_lists_split_into_sections_within_limits() -> None:
    rows = [(notebook(i), f"U{i}") for i in range(100)]
    message = render.notebook_list("All notebooks", rows)
    blocks = assert_valid(message)
    assert len(blocks) > 2
    assert all(len(b.to_dict()["text"]["text"]) <= 3000 for b in blocks)
    assert "60 more" in str(message["blocks"])


def test_confirmation_has_danger_confirm_dialog_and_cancel() -> None:
    message = render.confirmation(
        render.Confirmation(
            question="Delete *exp-1*?" * 50,
            confirm_label="Delete everything now please, yes really, absolutely",
            value='{"by":"U1"}',
        )
    )
    blocks = assert_valid(message)
    actions = blocks[1]
    assert isinstance(actions, ActionsBlock)
    confirm, cancel = actions.elements
    assert isinstance(confirm, ButtonElement) and isinstance(cancel, ButtonElement)
    assert confirm.action_id == render.CONFIRM_ACTION and confirm.style == "danger"
    assert confirm.confirm is not None
    dialog = confirm.confirm.to_dict()
    assert dialog["style"] == "danger"
    assert len(dialog["text"]["text"]) <= 300 and len(dialog["confirm"]["text"]) <= 30
    assert cancel.action_id == render.CANCEL_ACTION
    assert isinstance(blocks[0], SectionBlock)


def test_escape_neutralises_mentions_and_links() -> None:
    assert render.escape("<!channel> & <http://x|y>") == "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"


# ---------------------------------------------------------------- the escaping rule's pieces


@pytest.mark.parametrize("limit", range(1, 30))
def test_fit_clips_before_escaping_and_never_cuts_an_entity(limit: int) -> None:
    text = "a&b<c>d" * 3
    fitted = render.fit(text, limit)
    assert len(fitted) <= limit
    body = fitted.removesuffix("…")
    assert render.escape(body.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")) == (
        body
    )
    assert text.startswith(body.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    assert fitted == render.escape(text) or fitted.endswith("…")


def test_fit_leaves_short_text_whole() -> None:
    assert render.fit("<!here> & co", 100) == "&lt;!here&gt; &amp; co"


@pytest.mark.parametrize(
    ("user_id", "shown"),
    [
        ("U0123ABC", "<@U0123ABC>"),
        ("W0123ABC", "<@W0123ABC>"),
        ("<!channel>", "&lt;!channel&gt;"),
        ("U1> <!here", "U1&gt; &lt;!here"),
        ("u-lower", "u-lower"),
    ],
)
def test_mentions_only_for_user_ids(user_id: str, shown: str) -> None:
    assert render.mention(user_id) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://nb.example/lab?a=1&b=2", "<https://nb.example/lab?a=1&amp;b=2|Open>"),
        ("https://x.example/|<!here>", ""),
        ("javascript:alert(1)", ""),
        ("https://x.example/a b", ""),
        ("https://x.example/" + "a" * 1000, ""),
        (None, ""),
    ],
)
def test_links_only_for_urls_slack_can_parse(url: str | None, shown: str) -> None:
    assert render.link(url, "Open") == shown


@pytest.mark.parametrize(
    ("markdown", "limit", "expected"),
    [
        ("ab *bold words* cd", 10, "ab…"),  # never inside bold
        ("x &amp; y", 4, "x…"),  # never inside an entity
        ("see <@U0123ABC> now", 10, "see…"),  # never inside a mention
        ("line one is here\nline two", 20, "line one is here…"),  # at a line end when one is near
        ("short", 10, "short"),
    ],
)
def test_clip_markup_cuts_between_whole_pieces(markdown: str, limit: int, expected: str) -> None:
    assert render.clip_markup(markdown, limit) == expected


def test_no_message_holds_an_empty_section() -> None:
    message = render.message("fallback", blocks=[render.section(""), {"type": "section"}])
    assert_valid(message)
    assert [b["text"]["text"] for b in message["blocks"]] == ["fallback"]
    assert render.info("")["text"] == "nbkeeper"


def test_candidates_say_how_many_more_and_keep_rows_whole() -> None:
    rows = [(notebook(i), f"U{i:04d}") for i in range(63)]
    message = render.candidates("exp", rows)
    assert_valid(message)
    text = "\n".join(b["text"]["text"] for b in message["blocks"])
    assert "…and 23 more." in text
    assert all(f"`{nb.id}`" in text and f"<@{owner}>" in text for nb, owner in rows[:40])
