"""The /_emulator/ control routes: the demo and out-of-process tests drive the emulator here."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nbkeeper.modelarts.schemas import NotebookStatus

from .clock import to_ms
from .engine import EmulatorEngine
from .faults import FaultKind
from .faults import Scope as FaultScope
from .fleet import FleetSpec
from .jupyter import ActivityPattern
from .loose import Looseness

JSON = dict[str, Any]


async def _json(request: Request) -> JSON:
    body = await request.body()
    if not body.strip():
        return {}
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a JSON object is expected")
    return data


def _required(data: JSON, name: str) -> Any:
    """A field the control call needs; missing is bad input (400), not an unknown notebook (404)."""
    if name not in data:
        raise ValueError(f"{name} is required")
    return data[name]


def _objects(value: Any, name: str) -> list[JSON]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"{name} must be a list of objects")
    return value


def _moment(value: Any) -> int:
    if isinstance(value, int | float):
        return int(value)
    return to_ms(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _guarded(
    fn: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except KeyError as exc:
            return JSONResponse({"error": f"not found: {exc}"}, status_code=404)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return endpoint


class Control:
    """Handlers under /_emulator/ for the demo and for tests that run the emulator out of process."""

    def __init__(self, emu: EmulatorEngine) -> None:
        self.emu = emu

    async def state(self, request: Request) -> Response:
        return JSONResponse(self.emu.snapshot())

    async def clock(self, request: Request) -> Response:
        data = await _json(request)
        if "speed" in data:
            self.emu.set_clock_speed(float(data["speed"]))
        if "set" in data:
            self.emu.clock.set(datetime.fromisoformat(str(data["set"]).replace("Z", "+00:00")))
        if "advance_s" in data:
            self.emu.advance(float(data["advance_s"]))
        return JSONResponse(self.emu.snapshot()["clock"])

    async def faults(self, request: Request) -> Response:
        data = await _json(request)
        if data.get("clear"):
            self.emu.faults.clear()
            self.emu.set_loose_rate(0.0)
        if "rate" in data:
            kinds = tuple(FaultKind(k) for k in data.get("kinds", ())) or None
            self.emu.set_fault_rate(float(data["rate"]), kinds, data.get("seed"))
        if "loose_rate" in data:
            loose_kinds = tuple(Looseness(k) for k in data.get("loose_kinds", ())) or None
            self.emu.set_loose_rate(float(data["loose_rate"]), data.get("seed"), loose_kinds)
        for rule in _objects(data.get("script", []), "script"):
            self.emu.inject(
                FaultKind(_required(rule, "kind")),
                int(rule.get("count", 1)),
                method=rule.get("method"),
                path=rule.get("path"),
                scope=FaultScope(rule.get("scope", "api")),
            )
        return JSONResponse(self.emu.snapshot())

    async def latency(self, request: Request) -> Response:
        data = await _json(request)
        self.emu.set_latency(float(data.get("ms", 0)), data.get("jupyter_ms"))
        return JSONResponse(self.emu.snapshot())

    async def rate_limit(self, request: Request) -> Response:
        data = await _json(request)
        self.emu.set_rate_limit(data.get("rate"), data.get("burst"))
        return JSONResponse(self.emu.snapshot())

    async def fleet(self, request: Request) -> Response:
        data = await _json(request)
        created = self.emu.seed_fleet(FleetSpec(**data))
        return JSONResponse({"created": len(created), "ids": [r.id for r in created[:100]]})

    async def fail_next(self, request: Request) -> Response:
        data = await _json(request)
        count = int(data.get("count", 1))
        if data.get("op") == "start":
            self.emu.fail_next_start(count, data.get("reason"))
        elif data.get("op") == "save":
            self.emu.fail_next_save(count, data.get("reason"))
        else:
            self.emu.fail_next_create(count, data.get("reason"))
        return JSONResponse(self.emu.snapshot())

    async def activity(self, request: Request) -> Response:
        data = await _json(request)
        notebook_id = str(request.path_params["notebook_id"])
        record = self.emu.find(notebook_id)
        jupyter_state = self.emu.store.set_activity(
            record.project_id,
            notebook_id,
            pattern=ActivityPattern(data["pattern"]) if "pattern" in data else None,
            last_activity_ms=_moment(data["last_activity"]) if "last_activity" in data else None,
            kernels=_objects(data["kernels"], "kernels") if "kernels" in data else None,
        )
        return JSONResponse(jupyter_state.status_view(self.emu.clock.now_ms()))

    async def status(self, request: Request) -> Response:
        data = await _json(request)
        notebook_id = str(request.path_params["notebook_id"])
        self.emu.force_status(notebook_id, NotebookStatus(_required(data, "status")))
        return JSONResponse({"id": notebook_id, "status": self.emu.find(notebook_id).status.value})


def control(emu: EmulatorEngine) -> list[Route]:
    c = Control(emu)
    prefix = "/_emulator"
    return [
        Route(f"{prefix}/state", _guarded(c.state), methods=["GET"]),
        Route(f"{prefix}/clock", _guarded(c.clock), methods=["POST"]),
        Route(f"{prefix}/faults", _guarded(c.faults), methods=["POST"]),
        Route(f"{prefix}/latency", _guarded(c.latency), methods=["POST"]),
        Route(f"{prefix}/rate-limit", _guarded(c.rate_limit), methods=["POST"]),
        Route(f"{prefix}/fleet", _guarded(c.fleet), methods=["POST"]),
        Route(f"{prefix}/fail-next", _guarded(c.fail_next), methods=["POST"]),
        Route(
            f"{prefix}/notebooks/{{notebook_id}}/activity", _guarded(c.activity), methods=["POST"]
        ),
        Route(f"{prefix}/notebooks/{{notebook_id}}/status", _guarded(c.status), methods=["POST"]),
    ]
