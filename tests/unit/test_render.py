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
