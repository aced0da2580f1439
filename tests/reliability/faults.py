"""Faults the emulator cannot make by itself, and a record of what reached it.

`FaultyTransport` wraps the emulator's in-process transport for one handler:

- faults *after* the emulator processed a request (the change happened, the reply never
  arrives: the connection drops, or the client times out), which the emulator's own injector
  (`nbkeeper_local.emulator.faults`, used for 429/500/503/slow/drop *before* processing) cannot
  express;
- loose replies: valid but liberal JSON (unknown fields, nulls for optional fields, lower-case
  enum values), what "liberal in what we accept" must survive;
- a kill switch: after the n-th request reached the emulator, `Killed` (a BaseException, as a
  Lambda timeout is: nothing in the handler can catch it) ends the invocation;
- hooks run before a request is forwarded and after the emulator answered it;
- every request with its status and the command it was made for (`CURRENT_COMMAND`).
"""

from __future__ import annotations

import contextvars
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

CURRENT_COMMAND: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "reliability_command", default=None
)
_ID = re.compile(r"/notebooks/([0-9a-f-]{36})")


class Killed(BaseException):
    """The invocation was killed (Lambda timeout or crash): no handler code runs after it."""


@dataclass(frozen=True)
class Call:
    """One request that reached the emulator (or was lost on the way back)."""

    at_ms: int
    command_id: str | None
    method: str
    op: str
    notebook_id: str | None
    status: int
    fault: str | None = None  # what this transport did to it
    created_id: str | None = None  # a create's new notebook id


def operation(method: str, path: str) -> str:
    """A short name for a ModelArts API call (what tests count)."""
    tail = path.rstrip("/").rsplit("/notebooks", 1)[-1]
    parts = [p for p in tail.split("/") if p]
    if not parts:
        return "create" if method == "POST" else "list"
    if parts[0] in ("all", "flavors", "tags"):
        return "list" if parts[0] == "all" else parts[0]
    if len(parts) == 1:
        return {"GET": "show", "PUT": "update", "DELETE": "delete"}.get(method, method)
    if parts[1] == "lease":
        return "renew" if method == "PATCH" else "show_lease"
    return {"start": "start", "stop": "stop", "tags": "tag"}.get(parts[1], parts[1])


MUTATING = frozenset({"create", "update", "delete", "start", "stop", "renew", "tag"})


@dataclass
class KillSwitch:
    """Armed with n: the n-th request that reaches the emulator is processed, then `Killed`."""

    countdown: int = 0
    kills: int = 0

    def arm(self, after_requests: int) -> None:
        self.countdown = after_requests

    def disarm(self) -> None:
        self.countdown = 0

    def tick(self) -> bool:
        if self.countdown <= 0:
            return False
        self.countdown -= 1
        if self.countdown == 0:
            self.kills += 1
            return True
        return False


@dataclass
class AfterFaults:
    """Rates of the faults this transport adds (the emulator's own are set on the emulator)."""

    reply_lost: float = 0.0  # processed, then the connection dropped before the reply
    timeout_after: float = 0.0  # processed, the reply came after the client's timeout
    loose: float = 0.0  # a 2xx JSON reply made loose (still valid)


Hook = Callable[[httpx.Request], None]
AfterHook = Callable[[httpx.Request, int], None]  # the request and the emulator's status


@dataclass
class FaultyTransport(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport
    clock_ms: Callable[[], int]
    rng: random.Random
    rates: AfterFaults = field(default_factory=AfterFaults)
    kill: KillSwitch = field(default_factory=KillSwitch)
    hooks: list[Hook] = field(default_factory=list)
    after: list[AfterHook] = field(default_factory=list)
    # A reply instead of the emulator's, before it sees the request (a fault before processing).
    before: Callable[[httpx.Request], httpx.Response | None] | None = None
    calls: list[Call] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    record: bool = True
    lose: list[str] = field(default_factory=list)  # ops whose next 2xx reply is lost (scripted)

    def lose_reply(self, op: str) -> None:
        """The next successful `op` (e.g. "stop") is processed, then its reply is lost."""
        self.lose.append(op)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for hook in list(self.hooks):
            hook(request)
        path = request.url.path
        method = request.method
        early = self.before(request) if self.before is not None else None
        response = early or await self.inner.handle_async_request(request)
        await response.aread()
        status = response.status_code
        for after in list(self.after):
            after(request, status)
        fault = self._after_fault(status, path, method)
        if fault == "loose":
            response = _loose(response, request, self.rng)
        if self.record and path.startswith("/v1/"):
            op = operation(method, path)
            match = _ID.search(path)
            created = None
            if op == "create" and status < 300:
                created = str(json.loads(response.content).get("id"))
            self.calls.append(
                Call(
                    self.clock_ms(),
                    CURRENT_COMMAND.get(),
                    method,
                    op,
                    match.group(1) if match else created,
                    status,
                    fault,
                    created,
                )
            )
        if path.startswith("/v1/") and self.kill.tick():
            raise Killed(f"killed after {method} {path}")
        if fault == "reply_lost":
            raise httpx.RemoteProtocolError("connection dropped after the request", request=request)
        if fault == "timeout_after":
            raise httpx.ReadTimeout("no reply within the timeout", request=request)
        return response

    def _after_fault(self, status: int, path: str, method: str = "GET") -> str | None:
        if not path.startswith("/v1/") or status >= 300:
            return None
        op = operation(method, path)
        if op in self.lose:
            self.lose.remove(op)
            self.injected["reply_lost (scripted)"] += 1
            return "reply_lost"
        roll = self.rng.random()
        for name, rate in (
            ("reply_lost", self.rates.reply_lost),
            ("timeout_after", self.rates.timeout_after),
            ("loose", self.rates.loose),
        ):
            if roll < rate:
                self.injected[name] += 1
                return name
            roll -= rate
        return None

    async def aclose(self) -> None:
        await self.inner.aclose()


# ---------------------------------------------------------------- loose replies

_OPTIONAL_NOTEBOOK = ("description", "fail_reason", "endpoints", "pool", "action_progress")
_OPTIONAL_NOTEBOOK_EXTRA = ("billing_items", "jupyter_version", "ip", "custom_spec")


def loosen(data: Any, rng: random.Random) -> Any:
    """A liberal variant of a ModelArts reply: what a newer or older service version may send."""
    if isinstance(data, list):
        return [loosen(item, rng) for item in data]
    if not isinstance(data, dict):
        return data
    out = {key: loosen(value, rng) for key, value in data.items()}
    out[f"x_added_{rng.randrange(1000)}"] = rng.choice([None, 1, "new", {"nested": [1, None]}])
    if "status" in out and isinstance(out["status"], str) and rng.random() < 0.5:
        out["status"] = out["status"].lower()
    for key in _OPTIONAL_NOTEBOOK:
        if key in out and rng.random() < 0.5:
            out[key] = None
    for key in _OPTIONAL_NOTEBOOK_EXTRA:
        if key in out and rng.random() < 0.5:
            del out[key]
    lease = out.get("lease")
    if isinstance(lease, dict) and isinstance(lease.get("type"), str):
        lease["type"] = lease["type"].lower()
    volume = out.get("volume")
    if isinstance(volume, dict) and isinstance(volume.get("category"), str):
        volume["category"] = volume["category"].lower()
    return out


def _loose(response: httpx.Response, request: httpx.Request, rng: random.Random) -> httpx.Response:
    if not response.content or "json" not in response.headers.get("content-type", ""):
        return response
    try:
        data = json.loads(response.content)
    except ValueError:
        return response
    body = json.dumps(loosen(data, rng)).encode()
    headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
    return httpx.Response(response.status_code, headers=headers, content=body, request=request)
