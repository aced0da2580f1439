"""The /nb grammar: parsing, generated help, and fuzzing (every rejection is a clear message)."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbkeeper.slack import grammar
from nbkeeper.slack.grammar import (
    CreateRequest,
    DeleteRequest,
    HelpRequest,
    KeepRequest,
    ListRequest,
    ParseError,
    ProlongRequest,
    StartRequest,
    StatusRequest,
    StopRequest,
    UpdateRequest,
    parse,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", HelpRequest()),
        ("help", HelpRequest()),
        ("help keep", HelpRequest(topic="keep")),
        ("create exp-1", CreateRequest(name="exp-1")),
        (
            "create exp-1 flavor=modelarts.vm.cpu.8u image=ID storage=50 hours=8 idle",
            CreateRequest(
                name="exp-1",
                flavor="modelarts.vm.cpu.8u",
                image="ID",
                storage_gb=50,
                hours=8,
                idle=True,
            ),
        ),
        ("CREATE exp-1 storage=50GB hours=3h", CreateRequest(name="exp-1", storage_gb=50, hours=3)),
        ("delete exp-1", DeleteRequest("exp-1")),
        ("rm exp-1", DeleteRequest("exp-1")),
        ("list", ListRequest("mine")),
        ("list all", ListRequest("all")),
        ("list MINE", ListRequest("mine")),
        ("status exp-1", StatusRequest("exp-1")),
        ("start exp-1", StartRequest("exp-1")),
        ("start exp-1 hours=4", StartRequest("exp-1", hours=4)),
        ("stop exp-1", StopRequest("exp-1")),
        ("prolong exp-1 3", ProlongRequest("exp-1", 3)),
        ("prolong exp-1 3h", ProlongRequest("exp-1", 3)),
        ("keep exp-1 for 3h", KeepRequest("exp-1", duration=timedelta(hours=3))),
        ("keep exp-1 for 2h30m", KeepRequest("exp-1", duration=timedelta(hours=2, minutes=30))),
        ("keep exp-1 for 90m", KeepRequest("exp-1", duration=timedelta(minutes=90))),
        ("keep exp-1 until 18:00", KeepRequest("exp-1", until=time(18, 0))),
        ("keep exp-1 until 9", KeepRequest("exp-1", until=time(9, 0))),
        ("update exp-1 storage=100", UpdateRequest("exp-1", storage_gb=100)),
        (
            'update exp-1 name=exp-2 description="two words"',
            UpdateRequest("exp-1", name="exp-2", description="two words"),
        ),
        (
            "update exp-1 description=\u201csmart quotes\u201d",
            UpdateRequest("exp-1", description="smart quotes"),
        ),
        ("update exp-1 description=a&amp;b", UpdateRequest("exp-1", description="a&b")),
    ],
)
def test_parses(text: str, expected: grammar.ParsedRequest) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("frobnicate x", "unknown command 'frobnicate'"),
        ("create", "create needs NAME"),
        ("create a b", "unexpected 'b'"),
        ("create a colour=red", "no option 'colour'"),
        ("create a storage=lots", "not a whole number of GB"),
        ("create a storage=0", "out of range"),
        ("create a storage=5000", "out of range"),
        ("create a hours=0", "out of range; use 1 to 72"),
        ("create a hours=73", "out of range; use 1 to 72"),
        ("create a hours=2 hours=3", "given twice"),
        ("delete", "delete needs NAME|ID"),
        ("list some", "list takes `mine` or `all`"),
        ("prolong x", "prolong needs HOURS"),
        ("prolong x soon", "not a whole number of hours"),
        ("keep x", "say how long"),
        ("keep x for ever", "not a duration"),
        ("keep x for 100h", "at most 72 hours"),
        ("keep x until 25:00", "not a time of day"),
        ("keep x until noon", "not a time of day"),
        ("update x", "say what to change"),
        ('update x description="open', "quote is not closed"),
        ("x" * 2001, "keep it under 2000"),
    ],
)
def test_rejections_say_what_and_how(text: str, says: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert says in str(caught.value)


def test_verb_errors_carry_usage_and_example() -> None:
    with pytest.raises(ParseError) as caught:
        parse("start")
    message = str(caught.value)
    assert "Usage: `/nb start NAME|ID [hours=H]`" in message
    assert "for example `/nb start" in message


def test_help_is_generated_from_the_table() -> None:
    text = grammar.help_text()
    for verb in grammar.VERBS:
        assert f"`/nb {verb.usage}`" in text
    assert "create NAME [flavor=F] [image=NAME|ID] [storage=GB] [hours=H] [idle]" in text
    assert "keep NAME|ID for 3h | until 18:00" in text


def test_help_for_one_verb_shows_its_example() -> None:
    assert "Example: `/nb keep exp-42 until 18:00`" in grammar.help_text("keep")
    assert "No command 'nope'" in grammar.help_text("nope")


def test_every_example_parses() -> None:
    for verb in grammar.VERBS:
        assert parse(verb.example).verb == verb.name


WORDS = st.sampled_from(
    [
        *[v.name for v in grammar.VERBS],
        "for",
        "until",
        "all",
        "mine",
        "idle",
        "3h",
        "18:00",
        "hours=3",
        "storage=50",
        "flavor=x",
        'description="a b"',
        "name=n",
        "image=i",
        "exp-1",
        "=",
        '"',
        "&lt;",
    ]
)


def attempt(text: str) -> grammar.ParsedRequest | str:
    """The parse result, or the rejection message (any other exception fails the test)."""
    try:
        return parse(text)
    except ParseError as exc:
        return str(exc)


@given(st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=8).map(" ".join))
def test_fuzz_never_crashes_and_rejections_are_clear(text: str) -> None:
    result = attempt(text)
    if isinstance(result, str):
        assert result and len(result) < 1000
        assert "Traceback" not in result
    else:
        assert result.verb in grammar.VERB_BY_NAME


@given(st.text(max_size=300))
def test_fuzz_arbitrary_text(text: str) -> None:
    result = attempt(text)
    assert not isinstance(result, str) or result


def test_the_length_limit_counts_what_was_typed_not_slack_s_entities() -> None:
    """Slack sends & < > as &amp; &lt; &gt;: 1,000 typed `&` arrive as 5,000 characters."""
    assert parse("status " + "&amp;" * 1000) == StatusRequest("&" * 1000)
    with pytest.raises(ParseError, match="the command is 2001 characters long"):
        parse("status " + "&amp;" * 1994)


def test_errors_repeat_only_the_start_of_a_long_word() -> None:
    with pytest.raises(ParseError) as caught:
        parse("teleport" + "x" * 1500)
    message = str(caught.value)
    assert "'teleport" in message and len(message) < 300


def test_an_unknown_help_topic_is_escaped() -> None:
    text = grammar.help_text("<!channel>&")
    assert "&lt;!channel&gt;&amp;" in text and "<!channel>" not in text
