"""Abuse: what an attacker, a confused client or a bug elsewhere sends nbkeeper, through the real
handlers. Forged, replayed, stale, oversized and malformed Slack requests; people outside the
allow-lists; non-owners on every verb; hypothesis fuzzing of command text, interaction payloads,
queue bodies, schedule events and policy files (tests/reliability/abuse_cases.py).

Every case is counted per class with what came of it. Checks: 0 accepted that should not be (a
401, 400 or refusal was due, but something was queued, posted, run or stopped) and 0 unhandled
exceptions (an exception out of a handler, or an HTTP 5xx).
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import strategies as st

from nbkeeper.commands import parse_command
from nbkeeper.slack.buttons import CANCEL_ACTION, CONFIRM_ACTION, KEEP_ACTION, STOP_ACTION
from nbkeeper.slack.verify import MAX_BODY_BYTES
from tests.reliability import slackreq
from tests.reliability.abuse_cases import (
    ALLOWED,
    JSONISH,
    OWNER,
    SECOND,
    VERBS,
    fuzz_policies,
    fuzz_queue_bodies,
    fuzz_schedule_events,
    run_fuzz,
    scene_notebooks,
)
from tests.reliability.conftest import suite_figures
from tests.reliability.figures import Report, SuiteFigures
from tests.reliability.simworld import PROJECT_ID, Context, EventSource, World, world

pytestmark = pytest.mark.reliability

EXAMPLES = {"bounded": 40, "full": 300}
STRANGER = "U0STRANGER"


@pytest.fixture
def figures(reliability: Report) -> Iterator[SuiteFigures]:
    yield from suite_figures(reliability, "abuse", __doc__)


@dataclass
class Tally:
    """Cases per class: tried, accepted that should not be, unhandled exceptions."""

    tried: Counter[str] = field(default_factory=Counter)
    wrongly_accepted: Counter[str] = field(default_factory=Counter)
    unhandled: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def note(self, cls: str, wrong: str | None = None, crash: str | None = None) -> None:
        self.tried[cls] += 1
        if wrong:
            self.wrongly_accepted[cls] += 1
            self._sample(f"{cls}: accepted", wrong)
        if crash:
            self.unhandled[cls] += 1
            self._sample(f"{cls}: unhandled", crash)

    def _sample(self, kind: str, what: str) -> None:
        """A few examples of each kind (the counts say how many there were)."""
        if sum(1 for line in self.samples if line.startswith(kind + ":")) < 6:
            self.samples.append(f"{kind}: {what}"[:300])


def test_abuse(size: str, seed: int, figures: SuiteFigures) -> None:
    tally = Tally()
    env = {
        "SLACK_ALLOWED_USERS": ",".join(ALLOWED),
        "SLACK_ALLOWED_TEAMS": slackreq.TEAM,
        "SLACK_ALLOWED_CHANNELS": slackreq.CHANNEL,
        "SLACK_ADMINS": "UADMIN",
    }
    examples = EXAMPLES[size]
    handlers = ("slack_commands", "notebook_worker", "lease_keeper")
    with world(seed, env=env, handlers=handlers) as w:
        edge = Edge(w, tally)
        notebook_id = own_notebook(edge)
        signatures(edge)
        replays(edge)
        malformed(edge)
        outsiders(edge)
        non_owners(edge, notebook_id)
        fuzz_text(edge, seed, examples)
        fuzz_interactions(edge, seed, examples, notebook_id)
        fuzz_queue_bodies(w, tally, seed, examples)
        scene_notebooks(w)
        fuzz_schedule_events(w, tally, seed, max(10, examples // 2))
    fuzz_policies(tally, seed, examples)
    for cls, n in sorted(tally.tried.items()):
        figures.add(f"cases: {cls}", n)
    figures.add("cases tried in all", sum(tally.tried.values()))
    figures.check(
        "accepted that should not be",
        sum(tally.wrongly_accepted.values()),
        note="schedule events: a stop before its warning's lead on the wall clock is issue 10 #4",
    )
    figures.check(
        "unhandled exceptions",
        sum(tally.unhandled.values()),
        note="long NAME|ID: issue 10 #8; policy YAML: test_findings.py, finding 2",
    )
    if tally.wrongly_accepted or tally.unhandled:
        figures.add("accepted that should not be, by class", dict(tally.wrongly_accepted))
        figures.add("unhandled exceptions, by class", dict(tally.unhandled))
    for line in tally.samples:
        figures.detail(line)
    assert not figures.failures, figures.failure_message()


class Edge:
    """The webhook (and the worker behind it), and what each request led to."""

    def __init__(self, w: World, tally: Tally) -> None:
        self.w = w
        self.tally = tally
        self.secret = w.env["SLACK_SIGNING_SECRET"]
        self.n = 0
        self.source = EventSource(w)

    @property
    def now(self) -> float:
        return self.w.now_ms / 1000

    def url(self) -> str:
        self.n += 1
        return f"https://hooks.slack.com/commands/{slackreq.TEAM}/{self.n}/abuse{self.n}"

    def send(self, event: dict[str, Any]) -> tuple[int, str, int, int]:
        """Call the webhook: (status, body, commands queued, Slack posts made)."""
        queued, posted = len(self.w.sent), len(self.w.slacks["slack_commands"].posts)
        response = self.w.modules["slack_commands"].lambda_handler(event, Context())
        return (
            int(response["statusCode"]),
            str(response.get("body") or ""),
            len(self.w.sent) - queued,
            len(self.w.slacks["slack_commands"].posts) - posted,
        )

    def case(
        self,
        cls: str,
        event: dict[str, Any],
        expect: str,
        *,
        may_queue: bool = False,
        label: str = "",
    ) -> tuple[int, str, int]:
        """One case; `expect` "401"/"400" (that status, nothing else) or "refused" (nothing
        queued unless `may_queue`). Returns (status, body, queued)."""
        try:
            status, body, queued, posted = self.send(event)
        except Exception as exc:  # out of the handler: Lambda answers 502, Slack an error
            first = str(exc).splitlines()[0]
            self.tally.note(cls, crash=f"{label[:80]!r}: {type(exc).__name__}: {first}")
            return 0, "", 0
        crash = f"{label[:80]!r}: HTTP {status}: {body[:120]}" if status >= 500 else None
        wrong = None
        if expect in ("401", "400") and (status != int(expect) or queued or posted):
            wrong = f"HTTP {status}, {queued} queued, {posted} posted"
        elif expect == "refused" and queued and not may_queue:
            wrong = f"{queued} queued: {body[:100]}"
        self.tally.note(cls, wrong, crash)
        return status, body, queued

    def slash(self, text: str, user: str = OWNER, **form: str) -> dict[str, Any]:
        fields = slackreq.slash_form(text, user, self.url(), f"{self.n}.abuse")
        fields.update(form)
        body = urllib.parse.urlencode(fields).encode()
        return slackreq.signed("slack_command_help.json", body, self.secret, self.now)

    def click(self, payload: Any) -> dict[str, Any]:
        return slackreq.interaction(payload, secret=self.secret, at=self.now)

    def settle(self) -> None:
        for _ in range(20):
            worked = self.source.poll(self.w.queue_url) + self.source.poll(self.w.followup_url)
            self.w.advance(30)
            if not worked:
                return


def own_notebook(edge: Edge) -> str:
    """OWNER's notebook, made through the pipeline: the target of the non-owner cases."""
    status, body, queued, _ = edge.send(edge.slash("create abuse-target"))
    assert status == 200 and queued == 1, body
    edge.settle()
    (record,) = edge.w.emulator.store.project(PROJECT_ID).records.values()
    return record.id


# ---------------------------------------------------------------- signatures


def _resigned(event: dict[str, Any], secret: str, at: float) -> dict[str, Any]:
    return slackreq.signed("slack_command_help.json", base64.b64decode(event["body"]), secret, at)


def _header(event: dict[str, Any], name: str, value: str | None) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(event))
    if value is None:
        copy["headers"].pop(name, None)
    else:
        copy["headers"][name] = value
    return copy


def _body(event: dict[str, Any], body: bytes) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(event))
    copy["body"] = base64.b64encode(body).decode()
    return copy


def signatures(edge: Edge) -> None:
    """Forged (wrong or missing signatures, altered bodies), stale and oversized requests."""
    for text in ("create forged-1", "delete abuse-target", "stop abuse-target", "help"):
        good = edge.slash(text)
        signature = good["headers"]["x-slack-signature"]
        raw = base64.b64decode(good["body"])
        forged = [
            _resigned(good, "not-the-signing-secret", edge.now),
            _resigned(good, edge.secret + " ", edge.now),
            _header(good, "x-slack-signature", None),
            _header(good, "x-slack-request-timestamp", None),
            _header(good, "x-slack-signature", "v0=" + "0" * 64),
            _header(good, "x-slack-signature", signature.upper()),
            _header(good, "x-slack-signature", "v1" + signature[2:]),
            _header(good, "x-slack-signature", signature + "00"),
            _body(good, raw + b"&user_id=UADMIN"),
            _body(good, raw.replace(OWNER.encode(), b"UADMIN")),
        ]
        for event in forged:
            edge.case("forged", event, "401")
        for event in (
            _resigned(good, edge.secret, edge.now - 301),
            _resigned(good, edge.secret, edge.now + 301),
            _resigned(good, edge.secret, edge.now - 86400 * 365),
            _header(good, "x-slack-request-timestamp", "\uff11\uff17\uff10\uff10"),
            _header(good, "x-slack-request-timestamp", "-5"),
        ):
            edge.case("stale", event, "401")
    for size in (MAX_BODY_BYTES + 1, 4 * MAX_BODY_BYTES):
        fields = slackreq.slash_form("help", OWNER, edge.url(), "big.t")
        fields["padding"] = "x" * size
        body = urllib.parse.urlencode(fields).encode()
        event = slackreq.signed("slack_command_help.json", body, edge.secret, edge.now)
        edge.case("oversized", event, "401")
    long_text = edge.slash("create " + "x" * 3000)
    edge.case("oversized", long_text, "refused")


def replays(edge: Edge) -> None:
    """A signed request sent again within its five minutes verifies (Slack's rule); its
    command id must make every copy the same command, run once."""
    for text in ("create replayed-1", "prolong abuse-target 3", "keep abuse-target for 2h"):
        event = edge.slash(text)
        before = len(edge.w.sent)
        for _ in range(4):
            edge.case("replayed", event, "refused", may_queue=True)
        ids = {s.command.command_id for s in edge.w.sent[before:]}
        if len(ids) > 1:
            edge.tally.note("replayed", wrong=f"{text}: {len(ids)} distinct commands")
        edge.settle()
        executed = [e for e in edge.w.executions if e.command_id in ids and e.error is None]
        if len(executed) > 1:
            edge.tally.note("replayed", wrong=f"{text}: ran {len(executed)} times")
    names = [r.name for r in edge.w.emulator.store.project(PROJECT_ID).records.values()]
    if names.count("replayed-1") > 1:
        edge.tally.note("replayed", wrong=f"{names.count('replayed-1')} notebooks from one request")


# ---------------------------------------------------------------- malformed


def malformed(edge: Edge) -> None:
    forms: list[bytes] = [
        b"",
        b"\xff\xfe\x00garbage",
        b"user_id=&text=create+x&team_id=T0REL&channel_id=C0REL",
        b"text=create+nobody&team_id=T0REL&channel_id=C0REL",
        b"user_id=U0OWNER&team_id=T0REL&channel_id=C0REL&text=" + b"%" * 50,
        b"user_id=U0OWNER&team_id=T0REL&channel_id=C0REL&text=create+%00%01%02",
        b"user_id=U0OWNER&team_id=T0REL&channel_id=C0REL&text=" + "é".encode("latin-1") * 10,
    ]
    for body in forms:
        event = slackreq.signed("slack_command_help.json", body, edge.secret, edge.now)
        edge.case("malformed", event, "refused")
    not_base64 = edge.slash("help")
    not_base64["body"] = "%%%not base64%%%"
    edge.case("malformed", not_base64, "401")
    payloads: list[Any] = [
        "not json",
        "[]",
        "null",
        {"user": {}, "actions": []},
        {"user": {"id": OWNER}, "actions": [{"action_id": 5, "value": None}]},
        {"user": {"id": OWNER}, "actions": [{"action_id": CONFIRM_ACTION, "value": "{"}]},
        {"user": {"id": OWNER}, "actions": [{"action_id": KEEP_ACTION, "value": "[]"}]},
        {"user": {"id": OWNER}, "actions": [{"action_id": "other.app", "value": "x"}]},
    ]
    for payload in payloads:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        body = urllib.parse.urlencode({"payload": text}).encode()
        event = slackreq.signed("slack_interaction_confirm.json", body, edge.secret, edge.now)
        edge.case("malformed", event, "refused")
    for path in ("/slack/other", "/slack/commands/extra"):
        event = edge.slash("help")
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["routeKey"] = event["requestContext"]["routeKey"] = f"POST {path}"
        edge.case("malformed", event, "refused")


# ---------------------------------------------------------------- who may


def outsiders(edge: Edge) -> None:
    """A stranger, another workspace, another channel: every verb is refused, nothing queued."""
    for text in [*VERBS, "create outsider-1", "list all", "status {target}", "help"]:
        for form in (
            {"user_id": STRANGER},
            {"team_id": "T0OTHER"},
            {"channel_id": "C0OTHER"},
        ):
            user = form.get("user_id", OWNER)
            event = edge.slash(text.format(target="abuse-target"), user, **form)
            status, body, queued = edge.case("outside the allow-lists", event, "refused")
            if status == 200 and not queued and "Sorry" not in body:
                edge.tally.note("outside the allow-lists", wrong=f"{form}: {text}: {body[:80]}")


def non_owners(edge: Edge, notebook_id: str) -> None:
    """SECOND (allowed, not an admin) on every verb against OWNER's notebook, by name and by id,
    and on the buttons: OWNER's confirmation, the keeper's Keep and Stop on OWNER's notebook."""
    for text in VERBS:
        for target in ("abuse-target", notebook_id):
            event = edge.slash(text.format(target=target), SECOND)
            status, body, queued = edge.case("non-owner", event, "refused")
            if status == 200 and not queued and "belongs to" not in body:
                edge.tally.note(
                    "non-owner", wrong=f"{text}: not refused as a non-owner: {body[:80]}"
                )
    values = {
        KEEP_ACTION: json.dumps({"project_id": PROJECT_ID, "notebook_id": notebook_id, "hours": 2}),
        STOP_ACTION: json.dumps({"project_id": PROJECT_ID, "notebook_id": notebook_id}),
        CONFIRM_ACTION: json.dumps(
            {"by": OWNER, "owner": OWNER, "cmd": {"type": "stop", "notebook_id": notebook_id}}
        ),
        CANCEL_ACTION: "{}",
    }
    for action, value in values.items():
        payload = slackreq.click_payload(SECOND, action, value, edge.url(), f"{edge.n}.1")
        edge.case("non-owner", edge.click(payload), "refused")


# ---------------------------------------------------------------- fuzzing the webhook

WORDS = st.sampled_from(
    [
        "create",
        "delete",
        "start",
        "stop",
        "prolong",
        "keep",
        "update",
        "status",
        "list",
        "help",
        "for",
        "until",
        "all",
        "mine",
        "rm",
        "extend",
        "abuse-target",
        "hours=",
        "storage=",
    ]
)
TOKENS = st.one_of(
    WORDS,
    st.text(max_size=12),
    st.text(alphabet="abc-_=0123456789:h\"'\u201c\u201d&<>;", max_size=20),
    st.from_regex(r"[a-z]{1,11}=[^\s]{0,10}", fullmatch=True),
    st.integers(-10, 10**6).map(str),
    st.text(min_size=120, max_size=300, alphabet="ab-_"),
)
# Every verb's NAME|ID with long and unusual text (issue 10: a name over 128 characters).
TARGETS = st.one_of(
    st.from_regex(r"[A-Za-z0-9_\-]{129,400}", fullmatch=True),
    st.integers(100, 1900).map(lambda n: "n" * n),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=200
    ),
    st.uuids().map(lambda u: str(u).upper()),
    st.sampled_from(["abuse-target", "ABUSE-TARGET", "abuse_target", "../abuse-target", "*", "%s"]),
)
VERB_TEXT = st.builds(
    lambda verb, target: verb.format(target=target),
    st.sampled_from([*VERBS, "status {target}", "create {target}"]),
    TARGETS,
)
COMMAND_TEXT = st.one_of(
    st.text(max_size=300), st.lists(TOKENS, max_size=7).map(" ".join), VERB_TEXT
)


def _queued_problem(command: Any, user: str) -> str | None:
    """Why a queued command should not have been queued (None: it is fine)."""
    try:
        parse_command(json.dumps(command.model_dump(mode="json")))
    except Exception as exc:
        return f"queued a command that does not parse back: {type(exc).__name__}"
    if user not in ALLOWED:
        return f"queued for {user}, outside the allow-list"
    if getattr(command, "notebook_id", None) is not None and user not in (OWNER, "UADMIN"):
        return f"{command.type} on OWNER's notebook queued for {user}"
    return None


def fuzz_text(edge: Edge, seed: int, n: int) -> None:
    def check(text: str) -> None:
        for user in (OWNER, SECOND, STRANGER):
            before = len(edge.w.sent)
            edge.case(
                "fuzzed command text", edge.slash(text, user), "refused", may_queue=True, label=text
            )
            for sent in edge.w.sent[before:]:
                problem = _queued_problem(sent.command, user)
                if problem:
                    edge.tally.note("fuzzed command text", wrong=f"{text[:60]!r}: {problem}")

    run_fuzz(COMMAND_TEXT, check, seed, n)
    edge.settle()


HOURS = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False),
    st.sampled_from(["1e999", "-1e999", "1e308", "2"]),
    st.text(max_size=5),
)
CMD_FIELDS = st.sampled_from(
    ["type", "notebook_id", "hours", "until", "changes", "restart", "command_id", "requested_by"]
)


def _keeper_values(notebook_id: str) -> st.SearchStrategy[str]:
    return st.fixed_dictionaries(
        {
            "project_id": st.sampled_from([PROJECT_ID, "other", ""]),
            "notebook_id": st.one_of(st.just(notebook_id), st.text(max_size=40)),
        },
        optional={"hours": HOURS, "extra": st.integers()},
    ).map(lambda d: json.dumps(d).replace('"1e999"', "1e999").replace('"-1e999"', "-1e999"))


def _confirm_values(notebook_id: str) -> st.SearchStrategy[str]:
    command = st.one_of(
        st.dictionaries(CMD_FIELDS, JSONISH, max_size=5),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["stop", "delete", "prolong", "create"]),
                "notebook_id": st.just(notebook_id),
            },
            optional={"hours": HOURS, "restart": JSONISH},
        ),
    )
    return st.fixed_dictionaries(
        {"by": st.sampled_from([OWNER, SECOND, "UADMIN", ""]), "cmd": command},
        optional={"owner": st.sampled_from([OWNER, SECOND, None])},
    ).map(json.dumps)


def _click_problem(payload: dict[str, Any], command: Any) -> str | None:
    """Why a click's queued command should have been refused. A confirmation's value is what
    nbkeeper wrote (Slack signs the click), so its `by` and `owner` are trusted; the clicker must
    be who asked or an admin, and a non-admin the owner. Keeper buttons go by the directory."""
    user = str(payload["user"]["id"])
    problem = _queued_problem(command, user) if user not in ALLOWED else None
    action = payload["actions"][0]
    admin = user == "UADMIN"
    if action["action_id"] == CONFIRM_ACTION:
        value = json.loads(action["value"])
        if not admin and (value.get("by") != user or value.get("owner") != user):
            problem = problem or f"{user} confirmed a command asked by {value.get('by')}"
    elif not admin and user != OWNER:
        problem = problem or f"{user} pressed a keeper button on OWNER's notebook"
    return problem


def fuzz_interactions(edge: Edge, seed: int, n: int, notebook_id: str) -> None:
    actions = st.sampled_from([CONFIRM_ACTION, CANCEL_ACTION, KEEP_ACTION, STOP_ACTION, "x", ""])
    values = st.one_of(
        st.text(max_size=50), _keeper_values(notebook_id), _confirm_values(notebook_id)
    )
    clicks = st.builds(
        lambda user, action, value: slackreq.click_payload(user, action, value, edge.url(), "1.1"),
        st.sampled_from([OWNER, SECOND, STRANGER, "UADMIN"]),
        actions,
        values,
    )

    def check(payload: Any) -> None:
        before = len(edge.w.sent)
        edge.case("fuzzed interaction payloads", edge.click(payload), "refused", may_queue=True)
        for sent in edge.w.sent[before:]:
            problem = _click_problem(payload, sent.command)
            if problem:
                edge.tally.note("fuzzed interaction payloads", wrong=problem)

    run_fuzz(st.one_of(clicks, JSONISH), check, seed, n)
    edge.settle()
