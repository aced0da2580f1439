"""The command soak's people: users who create notebooks and send bursts of commands at them.

Each notebook has a plan: a create (sometimes sent twice, a double Enter), then bursts of
commands sent in the same simulated second, before the worker runs. A burst is chosen from what
the user sees (the notebook's state) and follows a small grammar, so that what the commands
mean when applied in order does not depend on timing: on a running notebook, lease commands
(prolong, keep) then at most one change of state (stop, perhaps followed by a prolong that must
be refused; an admin's confirmed stop; a confirmed stop-update-start; a confirmed delete); on a
stopped notebook, keeps and updates then a start or a delete. The next burst waits until every
command of the last one was answered. Users also try what they may not (someone else's notebook,
an outsider), which the webhook answers at once.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from nbkeeper.modelarts.schemas import NotebookStatus
from nbkeeper.slack.buttons import CONFIRM_ACTION
from tests.reliability import slackreq
from tests.reliability.simworld import Context, EventSource, World, root_id

USERS = ("U0001", "U0002", "U0003", "U0004", "U0005")
ADMIN = "UADMIN"
OUTSIDER = "UOUTSIDER"
TICK_S = 5
DEAD_LETTER_PERIOD_S = 300  # template.yaml: the DeadLetters schedule, rate(5 minutes)
FLAVORS = ("modelarts.vm.cpu.2u", "modelarts.vm.cpu.8u", "modelarts.vm.gpu.t4")


@dataclass
class Issued:
    """A command the webhook queued, as the person who sent it knows it."""

    command_id: str
    user: str
    text: str
    response_url: str
    plan: str
    at_ms: int


@dataclass
class Report:
    command_id: str
    ok: bool
    text: str
    at_ms: int


@dataclass
class Plan:
    name: str
    owner: str
    bursts: int
    next_at_ms: int
    creates: list[str] = field(default_factory=list)
    notebook_id: str | None = None
    pending: set[str] = field(default_factory=set)
    done: bool = False
    think_s: int = 0


@dataclass
class Soak:
    world: World
    source: EventSource
    target: int  # commands to queue
    concurrency: int
    rng: random.Random
    plans: list[Plan] = field(default_factory=list)
    issued: dict[str, Issued] = field(default_factory=dict)
    by_url: dict[str, str] = field(default_factory=dict)
    reports: list[Report] = field(default_factory=list)
    at_ack: Counter[str] = field(default_factory=Counter)
    unhandled: list[str] = field(default_factory=list)
    odd_answers: list[str] = field(default_factory=list)
    dm_reports: int = 0
    requests: int = 0
    _seen_posts: int = 0

    @property
    def secret(self) -> str:
        return self.world.env["SLACK_SIGNING_SECRET"]

    # ------------------------------------------------------------ the loop

    def run(self, cap_s: int, drain_s: int) -> None:
        start = next_read = self.world.now_ms
        while True:
            if self.world.now_ms >= next_read:  # the worker's dead-letter schedule
                self.source.read_dead_letters()
                next_read = self.world.now_ms + DEAD_LETTER_PERIOD_S * 1000
            elapsed = (self.world.now_ms - start) / 1000
            issuing = elapsed < cap_s
            if issuing:
                self._spawn()
                for plan in self.plans:
                    self._advance(plan)
            self.source.poll(self.world.queue_url)
            self.source.poll(self.world.followup_url)
            self._collect_reports()
            quiet = all(p.done for p in self.plans) and len(self.issued) >= self.target
            if (quiet or not issuing) and self.world.in_flight() == 0:
                break
            if elapsed > cap_s + drain_s:
                break
            self.world.advance(TICK_S)
        self.source.read_dead_letters()  # the next scheduled run after the last arrival

    def _spawn(self) -> None:
        live = sum(1 for p in self.plans if not p.done)
        while live < self.concurrency and len(self.issued) < self.target:
            index = len(self.plans)
            owner = USERS[index % len(USERS)]
            self.plans.append(
                Plan(
                    name=f"soak-{index:04d}",
                    owner=owner,
                    bursts=self.rng.randint(6, 10),
                    next_at_ms=self.world.now_ms + self.rng.randint(0, 30) * 1000,
                )
            )
            live += 1

    def _advance(self, plan: Plan) -> None:
        if plan.done or plan.pending or self.world.now_ms < plan.next_at_ms:
            return
        if not plan.creates:
            self._create(plan)
        elif plan.notebook_id is None:
            plan.notebook_id = self._created(plan)
            if plan.notebook_id is None:
                plan.done = True
                return
        if plan.notebook_id is None:
            return
        if plan.bursts == 0:
            plan.done = True
            return
        try:
            status = self.world.emulator.find(plan.notebook_id).status
        except KeyError:
            plan.done = True  # deleted
            return
        if status is NotebookStatus.RUNNING:
            self._running_burst(plan)
        elif status is NotebookStatus.STOPPED:
            self._stopped_burst(plan)
        else:
            return  # between states: look again next tick
        plan.bursts -= 1
        plan.think_s = self.rng.randint(0, 60)
        if not plan.pending:  # nothing was queued: think, then try again
            plan.next_at_ms = self.world.now_ms + plan.think_s * 1000

    def _collect_reports(self) -> None:
        posts = self.world.slacks["notebook_worker"].posts
        for url, body, _ in posts[self._seen_posts :]:
            command_id = self.by_url.get(url)
            if command_id is None:
                if url.endswith("chat.postMessage"):
                    self.dm_reports += 1
                continue
            text = str(body.get("text", ""))
            self.reports.append(
                Report(command_id, text.startswith(":white_check_mark:"), text, self.world.now_ms)
            )
            for plan in self.plans:
                if command_id in plan.pending:
                    plan.pending.discard(command_id)
                    if not plan.pending:
                        plan.next_at_ms = self.world.now_ms + plan.think_s * 1000
        self._seen_posts = len(posts)

    # ------------------------------------------------------------ Slack side

    def _url(self) -> tuple[int, str]:
        self.requests += 1
        n = self.requests
        return n, f"https://hooks.slack.com/commands/{slackreq.TEAM}/{n}/RURL{n:07d}"

    def slash(self, user: str, text: str, plan: Plan | None) -> dict[str, Any]:
        n, url = self._url()
        event = slackreq.slash(
            text, user, url, secret=self.secret, at=self.world.now_ms / 1000, trigger=f"{n}.t"
        )
        return self._call(event, url, f"/nb {text}", user, plan, route="slash")

    def confirm(self, user: str, reply: dict[str, Any], plan: Plan) -> None:
        value = slackreq.button(reply, CONFIRM_ACTION)
        if value is None:
            self.at_ack["no confirmation offered"] += 1
            return
        n, url = self._url()
        event = slackreq.click(
            user,
            CONFIRM_ACTION,
            value,
            url,
            secret=self.secret,
            at=self.world.now_ms / 1000,
            message_ts=f"{n}.000100",
        )
        self._call(event, url, f"[Confirm] {json.loads(value)['cmd']['type']}", user, plan, "click")

    def _call(
        self, event: dict[str, Any], url: str, what: str, user: str, plan: Plan | None, route: str
    ) -> dict[str, Any]:
        before = len(self.world.sent)
        handler = self.world.modules["slack_commands"].lambda_handler
        response = handler(event, Context(function_name="slack-commands"))
        if response["statusCode"] != 200:
            self.unhandled.append(f"{what}: HTTP {response['statusCode']}")
            return {}
        reply: dict[str, Any] = json.loads(response.get("body") or "{}") if route == "slash" else {}
        queued = self.world.sent[before:]
        if not queued:
            kind = _ack_kind(reply, what)
            self.at_ack[kind] += 1
            if kind == "other answer" and len(self.odd_answers) < 10:
                self.odd_answers.append(f"{what} -> {str(reply.get('text', ''))[:120]}")
        for sent in queued:
            command_id = sent.command.command_id
            self.issued[command_id] = Issued(
                command_id, user, what, url, plan.name if plan else "", self.world.now_ms
            )
            self.by_url[url] = command_id
            if plan is not None:
                plan.pending.add(command_id)
        return reply

    # ------------------------------------------------------------ bursts

    def _create(self, plan: Plan) -> None:
        options = []
        if self.rng.random() < 0.3:
            options.append(f"flavor={self.rng.choice(FLAVORS)}")
        if self.rng.random() < 0.3:
            options.append(f"storage={self.rng.choice((10, 20, 50))}")
        if self.rng.random() < 0.3:
            options.append(f"hours={self.rng.randint(1, 8)}")
        text = " ".join([f"create {plan.name}", *options])
        before = len(self.world.sent)
        self.slash(plan.owner, text, plan)
        if self.rng.random() < 0.08:  # a double Enter, or a colleague with the same idea
            twin = plan.owner if self.rng.random() < 0.5 else self._other(plan.owner)
            self.slash(twin, text, plan)
        plan.creates = [s.command.command_id for s in self.world.sent[before:]]
        if not plan.creates:
            plan.done = True

    def _created(self, plan: Plan) -> str | None:
        """The notebook the plan's first create made (as its author was told)."""
        ok = {r.command_id for r in self.reports if r.ok}
        first = plan.creates[0]
        if first not in ok:
            return None
        for call in self.world.transports["notebook_worker"].calls:
            if call.op == "create" and call.created_id and call.command_id == first:
                return call.created_id
        return None

    def _target(self, plan: Plan) -> str:
        return plan.notebook_id if self.rng.random() < 0.3 and plan.notebook_id else plan.name

    def _other(self, user: str) -> str:
        return self.rng.choice([u for u in USERS if u != user])

    def _noise(self, plan: Plan) -> None:
        roll = self.rng.random()
        if roll < 0.08:
            self.slash(self._other(plan.owner), f"stop {plan.name}", None)
        elif roll < 0.12:
            self.slash(OUTSIDER, f"delete {plan.name}", None)
        elif roll < 0.2:
            self.slash(plan.owner, self.rng.choice(["list", f"status {plan.name}"]), None)

    def _lease_commands(self, plan: Plan) -> None:
        last_hours = 0
        for _ in range(self.rng.choice((0, 1, 2, 2, 3))):
            target = self._target(plan)
            if self.rng.random() < 0.5:
                hours = self.rng.choice([h for h in range(1, 13) if abs(h - last_hours) >= 3])
                last_hours = hours
                self.slash(plan.owner, f"prolong {target} {hours}", plan)
            elif self.rng.random() < 0.7:
                self.slash(plan.owner, f"keep {target} for {self.rng.randint(1, 10)}h", plan)
            else:
                until = self.world.emulator.now() + timedelta(hours=self.rng.randint(2, 10))
                self.slash(plan.owner, f"keep {target} until {until:%H:%M}", plan)

    def _running_burst(self, plan: Plan) -> None:
        self._noise(plan)
        self._lease_commands(plan)
        roll = self.rng.random()
        target = self._target(plan)
        last = plan.bursts == 1
        if roll < 0.3:
            self.slash(plan.owner, f"stop {target}", plan)
            if self.rng.random() < 0.3:
                self.slash(plan.owner, f"prolong {target} 2", plan)  # must be refused
        elif roll < 0.4:
            self.confirm(ADMIN, self.slash(ADMIN, f"stop {target}", None), plan)
        elif roll < 0.55:
            grow = self._capacity(plan) + self.rng.choice((10, 20, 40))
            text = f'update {target} storage={grow} description="run {self.requests}"'
            self.confirm(plan.owner, self.slash(plan.owner, text, None), plan)
        elif roll < 0.62 or (last and roll < 0.75):
            self.confirm(plan.owner, self.slash(plan.owner, f"delete {target}", None), plan)

    def _stopped_burst(self, plan: Plan) -> None:
        self._noise(plan)
        for _ in range(self.rng.choice((0, 1, 1, 2))):
            target = self._target(plan)
            if self.rng.random() < 0.5:
                self.slash(plan.owner, f"keep {target} for {self.rng.randint(1, 10)}h", plan)
            else:
                grow = self._capacity(plan) + self.rng.choice((5, 10, 30))
                change = self.rng.choice(
                    [f"storage={grow}", f"flavor={self.rng.choice(FLAVORS)}", 'description="x"']
                )
                self.slash(plan.owner, f"update {target} {change}", plan)
        roll = self.rng.random()
        if roll < 0.75:
            self.slash(
                plan.owner, f"start {self._target(plan)} hours={self.rng.randint(1, 8)}", plan
            )
        elif roll < 0.85:
            self.confirm(plan.owner, self.slash(plan.owner, f"delete {plan.name}", None), plan)

    def _capacity(self, plan: Plan) -> int:
        assert plan.notebook_id is not None
        return int(self.world.emulator.find(plan.notebook_id).volume.get("capacity", 5))

    # ------------------------------------------------------------ results

    def final_reports(self) -> dict[str, list[Report]]:
        found: dict[str, list[Report]] = {}
        for report in self.reports:
            found.setdefault(root_id(report.command_id), []).append(report)
        return found


def _ack_kind(reply: dict[str, Any], what: str) -> str:
    text = str(reply.get("text", ""))
    for needle, kind in (
        ("belongs to", "non-owner refused"),
        ("not on nbkeeper's list", "outsider refused"),
        ("already", "no-op (already in that state)"),
        ("ModelArts said", "ModelArts fault at ack"),
        ("notebooks are called", "ambiguous name"),
        ("No notebook is called", "unknown name"),
        ("could not queue", "queue failure at ack"),
        ("only a running notebook", "not running"),
        ("update works on a stopped", "between states"),
    ):
        if needle in text:
            return kind
    if any(b.get("type") == "actions" for b in reply.get("blocks") or []):
        return "confirmation asked"
    if "Your notebooks" in json.dumps(reply) or "*nbkeeper commands*" in text:
        return "read-only answer"
    if what.startswith(("/nb status ", "/nb list")) and text:  # the notebook's state, as is
        return "read-only answer"
    return "other answer"
