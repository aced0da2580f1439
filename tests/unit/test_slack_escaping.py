"""One escaping rule, checked on every message kind with arbitrary user and ModelArts text.

Each message nbkeeper can send (every command's reply through the signed webhook, candidates,
list, status, confirmation, parse errors, help topics, ModelArts' messages, button clicks, the
keeper's warning and pass summary, the worker's results and last-receive notice) is rendered
from hypothesis-made names, ids, flavors, descriptions, failure reasons, URLs, owner tags and
typed text. In every mrkdwn text and fallback `text`: no `<`, `>` or `&` outside nbkeeper's own
markup (mentions, dates, links, entities), so no cut entity; when the inputs hold no `*`, bold
always closes. No section is empty or over 3000 characters, and slack_sdk's Block Kit models
(the test-only oracle) accept every block.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block
from slack_sdk.signature import SignatureVerifier

from nbkeeper.chatops.access import Access, ChatConfig
from nbkeeper.chatops.directory import Found
from nbkeeper.chatops.webhook import SlackWebhook
from nbkeeper.commands import Command, Requester, StopCommand
from nbkeeper.keeper.decide import Action, Decision
from nbkeeper.keeper.messages import summary_message, warning_message
from nbkeeper.keeper.policy import load_policy_text
from nbkeeper.keeper.report import NotebookOutcome, PassReport, ProjectReport, WarningNotice
from nbkeeper.memory import MemoryStateStore
from nbkeeper.modelarts.errors import InvalidRequestError, ModelArtsError, ServerError
from nbkeeper.modelarts.schemas import Notebook
from nbkeeper.records import ProjectRef
from nbkeeper.slack import grammar, render
from nbkeeper.slack.buttons import ConfirmValue, KeeperValue
from nbkeeper.worker.dispatch import Worker
from nbkeeper.worker.reporting import last_receive_notice

SECRET = "escaping-test-secret"
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
PROJECT = ProjectRef(region="ap-southeast-3", project_id="0a1b2c3d4e5f60718293a4b5c6d7e8f9")
ADMIN, OWNER = "U0ADMIN", "U0OWNER"
CONFIG = ChatConfig(
    project=PROJECT,
    access=Access(admins=frozenset({ADMIN})),
    default_image="11111111-2222-3333-4444-555555555555",
)
POLICY = load_policy_text("timezone: Europe/Berlin\nsummary_channel: C0SUMMARY")

# ---------------------------------------------------------------- what must hold

OWN_MARKUP = re.compile(
    r"<@[UW][A-Z0-9]+>"  # render.mention
    r"|<!date\^\d+\^\{date_short_pretty\} \{time\}\|[0-9: -]+ UTC>"  # render._when
    r"|<https?://(?:[^\s<>|&]|&amp;)+\|[Oo]pen JupyterLab>"  # render.link
    r"|&(?:amp|lt|gt);"  # render.escape
)


def mrkdwn_texts(message: dict[str, Any]) -> list[str]:
    """The fallback `text` and every mrkdwn text object in the blocks."""
    found = [message["text"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("blocks", []))
    return found


def assert_safe(message: dict[str, Any], *, stars_in_input: bool = True) -> None:
    assert message["text"].strip(), "the notification fallback is never empty"
    for text in mrkdwn_texts(message):
        rest = OWN_MARKUP.sub("", text)
        assert not set(rest) & set("<>&"), f"unescaped control character in {text!r}"
        if not stars_in_input:
            bare = OWN_MARKUP.sub("", text)
            assert bare.count("*") % 2 == 0, f"bold left open in {text!r}"
            assert bare.count("`") % 2 == 0, f"code left open in {text!r}"
    assert 1 <= len(message["blocks"]) <= 50
    for raw in message["blocks"]:
        if raw["type"] == "section":
            assert raw["text"]["text"].strip(), "empty section"
            assert len(raw["text"]["text"]) <= 3000
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()  # slack_sdk's limits: raises on any breach


# ---------------------------------------------------------------- arbitrary text

MARKUP = st.sampled_from(
    [
        *("<", ">", "&", "&amp;", "&lt;", "<!channel>", "<!here>", "<@U0OTHER>", "<https://x|z>"),
        *("*", "_", "`", "~", "|", "\n", " ", "'", '"', "“", "’", "=", "é", "名", "\U0001f600"),
    ]
)
CHUNK = st.text(max_size=6) | MARKUP


def texts(max_chunks: int) -> st.SearchStrategy[str]:
    return st.lists(CHUNK, max_size=max_chunks).map("".join)


SHORT = texts(12)
ANY = SHORT | texts(400) | st.builds(lambda s, n: s * n, SHORT, st.integers(50, 400))
TYPED = ANY.map(lambda t: t[:600])  # what fits in a slash command's text (Slack: 4,000 bytes)
OWNER_TAG = st.none() | st.just(OWNER) | st.just("U0OTHER") | SHORT
URL = st.none() | st.just("https://nb.example/lab?a=1&b=2") | SHORT | ANY


@st.composite
def notebooks(draw: st.DrawFn, names: list[str]) -> Notebook:
    return Notebook.model_validate(
        {
            "id": draw(st.sampled_from(["aaaaaaaa-0000-4000-8000-000000000001", "nb<1>"]) | ANY),
            "name": draw(st.sampled_from(names) | ANY),
            "status": draw(st.sampled_from(["RUNNING", "STOPPED", "ERROR", "WEIRD"])),
            "flavor": draw(st.none() | ANY),
            "description": draw(st.none() | ANY),
            "fail_reason": draw(st.none() | ANY),
            "url": draw(URL),
            "lease": {"create_at": 1_700_000_000_000, "duration": 3_600_000},
            "volume": {"capacity": 5},
        }
    )


def _verbatim(command: str, target: str) -> bool:
    """Whether the grammar reads `target` back unchanged from `command` (it turns typographic
    quotes into ASCII ones, undoes HTML entities and reads `key=value` as an option)."""
    try:
        return getattr(grammar.parse(command), "target", None) == target
    except grammar.ParseError:
        return False


def strip_stars(text: str) -> str:
    return text.replace("*", "").replace("`", "")


# ---------------------------------------------------------------- the webhook, signed


@dataclass
class Fleet:
    """A chat-ops Directory over arbitrary notebooks; `error` makes every lookup fail."""

    rows: list[Found]
    error: ModelArtsError | None = None

    def find(self, target: str) -> list[Found]:
        if self.error:
            raise self.error
        return [f for f in self.rows if target in (f.notebook.id, f.notebook.name)]

    def listing(self) -> list[Found]:
        if self.error:
            raise self.error
        return list(self.rows)


@dataclass
class Hook:
    fleet: Fleet
    queued: list[Command] = field(default_factory=list)
    posted: list[dict[str, Any]] = field(default_factory=list)

    def webhook(self) -> SlackWebhook:
        return SlackWebhook(
            config=CONFIG,
            signing_secret=lambda: SECRET,
            directory=lambda now: self.fleet,
            enqueue=self.queued.append,
            post_response=lambda url, message: self.posted.append(message),
            clock=NOW.timestamp,
        )

    def _headers(self, body: bytes) -> dict[str, str]:
        ts = str(int(NOW.timestamp()))
        signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
        assert signature is not None
        return {"x-slack-request-timestamp": ts, "x-slack-signature": signature}

    def slash(self, text: str, user: str) -> dict[str, Any]:
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        body = urllib.parse.urlencode(
            {"user_id": user, "team_id": "T1", "channel_id": "C1", "text": escaped}
        ).encode()
        reply = self.webhook().slash_command(self._headers(body), body.decode(), False)
        assert reply.status == 200, reply
        message: dict[str, Any] = json.loads(reply.body)
        return message

    def click(self, action_id: str, value: str, user: str) -> dict[str, Any]:
        payload = {
            "user": {"id": user},
            "actions": [{"action_id": action_id, "value": value}],
            "response_url": "https://hooks.slack.com/actions/T1/1/x",
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        assert self.webhook().interaction(self._headers(body), body.decode(), False).status == 200
        return self.posted[-1]


VERBS = {
    "status": "",
    "delete": "",
    "stop": "",
    "start": " hours=3",
    "prolong": " 3",
    "keep": " for 2h",
    "update": " storage=50",
    "list": "",
    "list all": "",
}
EXAMPLES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@EXAMPLES
@given(data=st.data(), stars=st.booleans())
def test_every_command_reply_is_escaped_and_valid(data: st.DataObject, stars: bool) -> None:
    clean = (lambda t: t) if stars else strip_stars
    target = clean(data.draw(SHORT.filter(lambda t: t.strip() != "") | TYPED, "target"))
    names = [target, clean(data.draw(SHORT, "other name"))]
    count = data.draw(st.sampled_from([0, 1, 2, 3, 63]), "notebooks")
    rows = []
    for _ in range(min(count, 3)):
        notebook = data.draw(notebooks(names), "notebook")
        for key in ("id", "name", "flavor", "description", "fail_reason", "url"):
            value = getattr(notebook, key)
            if isinstance(value, str):
                notebook = notebook.model_copy(update={key: clean(value)})
        rows.append(Found(notebook, data.draw(OWNER_TAG.map(lambda t: t and clean(t)), "owner")))
    if count == 63 and rows:  # one name, 63 notebooks: candidates and "…and 23 more"
        rows = [
            Found(rows[0].notebook.model_copy(update={"name": target, "id": f"id-{i}"}), OWNER)
            for i in range(63)
        ]
    error = data.draw(
        st.none()
        | st.builds(lambda m: ServerError(clean(m), status_code=500, error_code="X.1"), ANY),
        "ModelArts error",
    )
    hook = Hook(Fleet(rows, error))
    verb = data.draw(st.sampled_from(sorted(VERBS)), "verb")
    word = "" if verb.startswith("list") else f" {shlex.quote(target)}"
    user = data.draw(st.sampled_from([OWNER, ADMIN]), "user")
    command = f"{verb}{word}{VERBS[verb]}"
    reply = hook.slash(command, user)
    assert_safe(reply, stars_in_input=stars)
    if count == 63 and error is None and not verb.startswith("list") and _verbatim(command, target):
        listed = json.dumps(reply["blocks"], ensure_ascii=False)
        assert listed.count("• ") == render.LIST_MAX_ROWS and "…and 23 more." in listed
    for button in (e for b in reply["blocks"] if b["type"] == "actions" for e in b["elements"]):
        clicked = hook.click(button["action_id"], button["value"], user)
        assert_safe(clicked, stars_in_input=stars)


@EXAMPLES
@given(name=TYPED, flavor=TYPED, image=TYPED, stars=st.booleans())
def test_create_replies_quote_nothing_unescaped(
    name: str, flavor: str, image: str, stars: bool
) -> None:
    clean = (lambda t: t) if stars else strip_stars
    hook = Hook(Fleet([]))
    text = (
        f"create {shlex.quote(clean(name) or 'x')} flavor={shlex.quote(clean(flavor) or 'f')}"
        f" image={shlex.quote(clean(image) or 'i')}"
    )
    assert_safe(hook.slash(text, OWNER), stars_in_input=stars)
    plain = f"create ok-name flavor={shlex.quote(clean(flavor) or 'f')}"
    assert_safe(hook.slash(plain, OWNER), stars_in_input=stars)


@EXAMPLES
@given(text=TYPED, stars=st.booleans())
def test_parse_errors_and_help_topics_are_escaped(text: str, stars: bool) -> None:
    clean = (lambda t: t) if stars else strip_stars
    hook = Hook(Fleet([]))
    assert_safe(hook.slash(clean(text), OWNER), stars_in_input=stars)
    assert_safe(hook.slash(f"help {shlex.quote(clean(text))}", OWNER), stars_in_input=stars)


@EXAMPLES
@given(notebook_id=TYPED, owner=TYPED, by=SHORT, name=TYPED)
def test_button_clicks_with_odd_values_are_escaped(
    notebook_id: str, owner: str, by: str, name: str
) -> None:
    hook = Hook(Fleet([]))
    at = int(NOW.timestamp())
    keeper = KeeperValue(project_id=PROJECT.project_id, notebook_id=notebook_id[:128] or "x", at=at)
    assert_safe(hook.click("keeper.stop", keeper.encode(), OWNER))
    cmd = {"type": "stop", "notebook_id": "nb-1", "notebook_name": name[:128]}
    confirm = ConfirmValue(at=at, by=by[:64] or "U", owner=owner or None, cmd=cmd)
    assert_safe(hook.click("nbkeeper.confirm", confirm.encode(), "U0NOBODY"))
    assert_safe(hook.click("nbkeeper.confirm", confirm.encode(), ADMIN))
    assert_safe(hook.click(name or "x", notebook_id, OWNER))


# ---------------------------------------------------------------- the keeper and the worker


@EXAMPLES
@given(data=st.data(), stars=st.booleans())
def test_keeper_warning_and_summary_are_escaped(data: st.DataObject, stars: bool) -> None:
    clean = (lambda t: t) if stars else strip_stars
    notebook = data.draw(notebooks([clean(data.draw(SHORT))]), "notebook")
    notebook = notebook.model_copy(
        update={k: clean(getattr(notebook, k) or "") for k in ("id", "name", "flavor")}
    )
    # A warning's buttons carry the id (KeeperValue: 1-128 characters; ModelArts ids are UUIDs).
    notebook = notebook.model_copy(update={"id": notebook.id[:128] or "nb-1"})
    owner = data.draw(OWNER_TAG, "owner")
    reason = clean(data.draw(ANY, "reason"))
    kind = data.draw(st.sampled_from(["idle", "max_runtime"]), "kind")
    decision = Decision(
        Action.WARN, reason, warning_kind=kind, stop_after=NOW + timedelta(minutes=15)
    )
    notice = WarningNotice(PROJECT, notebook, decision, owner and clean(owner), 1.5, "EUR")
    assert_safe(warning_message(notice, POLICY), stars_in_input=stars)

    def outcome(i: int) -> NotebookOutcome:
        action = data.draw(st.sampled_from(list(Action)), "action")
        return NotebookOutcome(
            project_id=PROJECT.project_id,
            notebook_id=clean(data.draw(SHORT)) or f"id-{i}",
            name=clean(data.draw(ANY)),
            flavor=None,
            owner=None,
            decision=Decision(action, clean(data.draw(ANY))),
            status=data.draw(st.sampled_from(["ok", "failed", "skipped"])),
            note=clean(data.draw(ANY)),
        )

    report = PassReport(
        at=NOW,
        dry_run=data.draw(st.booleans()),
        currency="EUR",
        projects=[ProjectReport("r", clean(data.draw(SHORT)), error=clean(data.draw(ANY)))],
        outcomes=[outcome(i) for i in range(data.draw(st.integers(0, 20)))],
    )
    message = summary_message(report, POLICY)
    assert_safe({**message, "text": message["text"]}, stars_in_input=stars)


class Refusing:
    """A ModelArts client whose every call fails for good with an arbitrary message."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise InvalidRequestError(self.message, status_code=400, error_code="ModelArts.0000")

        return fail


class Told:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def report(self, command: Any, message: dict[str, Any], now: datetime) -> str:
        self.messages.append(message)
        return "response_url"

    def schedule(self, command: Any, delay_seconds: int) -> None:
        pass


@EXAMPLES
@given(message=ANY, name=ANY, reason=ANY, stars=st.booleans())
def test_worker_results_and_the_last_receive_notice_are_escaped(
    message: str, name: str, reason: str, stars: bool
) -> None:
    clean = (lambda t: t) if stars else strip_stars
    told = Told()
    worker = Worker(Refusing(clean(message)), MemoryStateStore(), told, told, PROJECT.project_id)
    command = StopCommand(
        command_id="c.1",
        requested_at=NOW,
        requested_by=Requester(user_id=OWNER),
        project=PROJECT,
        notebook_id="nb-1",
        notebook_name=clean(name)[:128] or None,
    )
    asyncio.run(worker.execute(command, NOW))
    (result,) = told.messages
    assert_safe(result, stars_in_input=stars)
    assert_safe(last_receive_notice(3, clean(reason)), stars_in_input=stars)


# ---------------------------------------------------------------- the rule's pieces


def test_characters_people_report_do_not_vanish() -> None:
    """ "remove '&<>'" showed as "remove ''": Slack read `<>` as markup."""
    hook = Hook(Fleet([]))
    reply = hook.slash("create x description='&<>'", OWNER)
    assert "&amp;&lt;&gt;" in reply["text"] or "no option" in reply["text"]
    reply = hook.slash("stop x <!channel>", OWNER)
    assert "&lt;!channel&gt;" in reply["text"] and "<!channel>" not in reply["text"]
    reply = hook.slash("<https://evil.example|click>", OWNER)
    assert (
        "<https://evil" not in reply["text"]
        and "&lt;https://evil.example|click&gt;" in (reply["text"])
    )


def test_a_status_with_long_texts_keeps_its_jupyter_link() -> None:
    notebook = Notebook.model_validate(
        {
            "id": "nb-1",
            "name": "n",
            "status": "RUNNING",
            "description": "&" * 3000,
            "fail_reason": "<" * 3000,
            "url": "https://nb.example/lab",
        }
    )
    message = render.notebook_status(notebook, OWNER)
    assert_safe(message)
    assert message["blocks"][0]["text"]["text"].endswith("<https://nb.example/lab|Open JupyterLab>")


def test_a_list_row_never_overflows_into_an_empty_section() -> None:
    long = Notebook.model_validate(
        {"id": "<" * 3000, "name": "&" * 3000, "status": "RUNNING", "flavor": ">" * 3000}
    )
    message = render.notebook_list("All notebooks", [(long, None), (long, "U1")])
    assert_safe(message)
    assert json.dumps(message["blocks"], ensure_ascii=False).count("• ") == 2
