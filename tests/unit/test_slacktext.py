"""The local tools' plain-text view of Slack messages (nbkeeper_local.slacktext)."""

from __future__ import annotations

from nbkeeper.slack.render import Confirmation, confirmation, escape, info
from nbkeeper_local.slacktext import buttons, mrkdwn, render


def test_mrkdwn_marks_references_and_entities_become_text() -> None:
    assert mrkdwn("*bold* and _it_ in `code`") == "bold and it in `code`"
    assert mrkdwn("owner <@U0ALICE>, in <#C0NB|notebooks>") == "owner @U0ALICE, in #notebooks"
    assert mrkdwn("<https://x.example/lab|Open JupyterLab>") == (
        "Open JupyterLab (https://x.example/lab)"
    )
    assert mrkdwn("<https://x.example>") == "https://x.example"
    assert mrkdwn("<!date^1700000000^{date_short_pretty} {time}|2023-11-14 22:13 UTC>") == (
        "2023-11-14 22:13 UTC"
    )
    assert mrkdwn("<!here>") == "@here"
    assert mrkdwn(escape("a < b & c > d")) == "a < b & c > d"
    # Names with underscores or stars inside words are left as they are.
    assert mrkdwn("my_note_book 2*3*4") == "my_note_book 2*3*4"


def test_a_message_renders_whole_with_its_buttons() -> None:
    long_text = "word " * 500
    message = {
        "text": "fallback",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Pass"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*nb* {long_text}"}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "a"}, {"type": "mrkdwn", "text": "b"}],
            },
            {"type": "divider"},
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Keep 2h more"}},
                    {"type": "button", "text": {"type": "plain_text", "text": "Stop now"}},
                ],
            },
        ],
    }
    text = render(message)
    assert text.splitlines()[:2] == ["Pass", "===="]
    assert f"nb {long_text}".strip() in text  # not cut
    assert "a · b" in text
    assert text.endswith("---\n[Keep 2h more] [Stop now]")


def test_blockless_messages_use_the_fallback_text() -> None:
    assert render({"text": "*hi* <@U1>"}) == "hi @U1"
    assert render({}) == "(empty message)"


def test_nbkeeper_messages_render() -> None:
    question = confirmation(Confirmation("Delete *nb*?", "Delete", "v"))
    assert render(question) == "Delete nb?\n[Delete] [Cancel]"
    assert render(info("*x* is ready")) == "x is ready"
    assert buttons([{"type": "image"}]) == ""
