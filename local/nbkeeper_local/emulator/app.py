"""The emulator's ASGI app: ModelArts API, Jupyter Server probes and the /_emulator control API.

Request path: edge (request id, latency, faults) -> auth (signature or token) -> rate limit ->
handler (validated with the shared schemas, state changes under the store lock) -> Huawei body.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import httpx
import pydantic
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nbkeeper.modelarts.schemas import (
    ILLEGAL_CHARACTERS,
    LeaseReq,
    LeaseType,
    ListNotebooksQuery,
    NotebookCreateRequest,
    NotebookStatus,
    NotebookUpdateRequest,
    TagsRequest,
)

from .catalogue import FLAVORS
from .clock import to_ms
from .core import ConnectionDroppedError, Emulator
from .faults import FaultKind
from .faults import Scope as FaultScope
from .fleet import FleetSpec
from .jupyter import ActivityPattern
from .signature import SignedRequest, verify
from .state import ApiError, Identity, bad_request

JSON = dict[str, Any]
M = TypeVar("M", bound=pydantic.BaseModel)
# Fields the official SDK models know but the shared request schemas do not (yet): accepted, ignored.
SDK_ONLY_FIELDS = {"public_network_config", "custom_spec", "affinity"}
LIST_FIELDS = set(ListNotebooksQuery.model_fields)


@dataclass
class Call:
    """One authenticated ModelArts API call, as handlers see it."""

    request: Request
    project_id: str
    identity: Identity
    body: bytes

    @property
    def base_url(self) -> str:
        return str(self.request.base_url)

    def path_param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def json_body(self) -> JSON:
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body)
        except ValueError:
            raise bad_request(
                "6400", "Invalid request payload: the body is not valid JSON."
            ) from None
        if not isinstance(data, dict):
            raise bad_request("6400", "Invalid request payload: a JSON object is expected.")
        return data


Reply = tuple[int, Any]
Handler = Callable[[Emulator, Call], Reply]


def error_body(code: str, message: str) -> JSON:
    return {"error_code": code, "error_msg": message}


def validation_error(exc: pydantic.ValidationError) -> ApiError:
    """Map a schema failure to the service's code: 6349 lease, 6334 bad chars, 6335 missing."""
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "body"
    message = f"{location}: {first['msg'].removeprefix('Value error, ')}"
    if "duration" in first["loc"]:
        return bad_request("6349", message)
    if first["type"] == "missing":
        return bad_request("6335", message)
    if first["type"] == "extra_forbidden":
        return bad_request("0104", message)
    if first["type"] == ILLEGAL_CHARACTERS:
        return bad_request("6334", message)
    return bad_request("6336", message)


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None


# ---------------------------------------------------------------- ModelArts handlers


def create_notebook(emu: Emulator, call: Call) -> Reply:
    data = {k: v for k, v in call.json_body().items() if k not in SDK_ONLY_FIELDS}
    request = validate(NotebookCreateRequest, data)
    record = emu.store.create(call.project_id, request, call.identity)
    return 200, record.to_json(call.base_url)


def _list(emu: Emulator, call: Call, own: bool) -> Reply:
    params = dict(call.request.query_params)
    if "workspaceId" in params:  # the OTC docs' spelling
        params.setdefault("workspace_id", params.pop("workspaceId"))
    query = validate(ListNotebooksQuery, {k: v for k, v in params.items() if k in LIST_FIELDS})
    result = emu.store.list_notebooks(
        call.project_id, query, call.identity.user_id if own else None
    )
    return 200, result.page_json(call.base_url)


def list_own(emu: Emulator, call: Call) -> Reply:
    return _list(emu, call, own=True)


def list_all(emu: Emulator, call: Call) -> Reply:
    return _list(emu, call, own=False)


def show_notebook(emu: Emulator, call: Call) -> Reply:
    record = emu.store.get(call.project_id, call.path_param("id"))
    return 200, record.to_json(call.base_url)


def update_notebook(emu: Emulator, call: Call) -> Reply:
    data = {k: v for k, v in call.json_body().items() if k not in SDK_ONLY_FIELDS}
    request = validate(NotebookUpdateRequest, data)
    record = emu.store.update(call.project_id, call.path_param("id"), request)
    return 200, record.to_json(call.base_url)


def delete_notebook(emu: Emulator, call: Call) -> Reply:
    record = emu.store.delete(call.project_id, call.path_param("id"))
    return 200, record.to_json(call.base_url)


def _int_param(call: Call, name: str) -> int | None:
    raw = call.request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request("6336", f"{name}: {raw!r} is not an integer") from None


def start_notebook(emu: Emulator, call: Call) -> Reply:
    lease = validate(
        LeaseReq,
        {
            k: v
            for k, v in (
                ("duration", _int_param(call, "duration")),
                ("type", call.request.query_params.get("type")),
            )
            if v is not None
        },
    )
    record = emu.store.start(call.project_id, call.path_param("id"), lease.duration, lease.type)
    return 200, record.to_json(call.base_url)


def stop_notebook(emu: Emulator, call: Call) -> Reply:
    record = emu.store.stop(call.project_id, call.path_param("id"))
    return 200, record.to_json(call.base_url)


def show_lease(emu: Emulator, call: Call) -> Reply:
    record = emu.store.show_lease(call.project_id, call.path_param("id"))
    return 200, record.lease_json()


def renew_lease(emu: Emulator, call: Call) -> Reply:
    lease = validate(LeaseReq, call.json_body())
    query_duration = _int_param(call, "duration")
    if query_duration is not None:  # documented: the query wins and forces TIMING
        lease = validate(LeaseReq, {"duration": query_duration, "type": "TIMING"})
    if lease.duration is None:
        raise bad_request("6348", "duration is needed to enable auto stop.")
    record = emu.store.renew_lease(
        call.project_id, call.path_param("id"), lease.duration, lease.type or LeaseType.TIMING
    )
    return 200, record.lease_json()


def create_tags(emu: Emulator, call: Call) -> Reply:
    request = validate(TagsRequest, call.json_body())
    emu.store.add_tags(call.project_id, call.path_param("id"), request.tags)
    return 204, None


def delete_tags(emu: Emulator, call: Call) -> Reply:
    request = validate(TagsRequest, call.json_body())
    emu.store.remove_tags(call.project_id, call.path_param("id"), request.tags)
    return 204, None


def tag_summary(emu: Emulator, call: Call) -> Reply:
    return 200, emu.store.tag_summary(call.project_id)


def list_flavors(emu: Emulator, call: Call) -> Reply:
    params = call.request.query_params
    flavors = [
        f
        for f in FLAVORS
        if (not params.get("category") or f["category"] == params["category"].upper())
        and (not params.get("feature") or f["feature"] == params["feature"].upper())
    ]
    return 200, _flavor_page(call, flavors)


def switchable_flavors(emu: Emulator, call: Call) -> Reply:
    record = emu.store.get(call.project_id, call.path_param("id"))
    current = next((f for f in FLAVORS if f["id"] == record.flavor), None)
    flavors = [
        f
        for f in FLAVORS
        if current is None
        or (
            f["arch"] == current["arch"]
            and f["feature"] == current["feature"]
            and not f["sold_out"]
        )
    ]
    return 200, _flavor_page(call, flavors)


def _flavor_page(call: Call, flavors: list[JSON]) -> JSON:
    limit = _int_param(call, "limit") or len(flavors) or 1
    offset = _int_param(call, "offset") or 0
    page = flavors[offset : offset + limit]
    return {
        "current": offset // limit,
        "pages": (len(flavors) + limit - 1) // limit,
        "size": limit,
        "total": len(flavors),
        "flavors": page,
    }


# ---------------------------------------------------------------- plumbing


def _headers(request_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"X-Request-Id": request_id, **(extra or {})}


def error_response(error: ApiError, request_id: str) -> Response:
    return JSONResponse(
        error_body(error.code, error.message),
        status_code=error.status,
        headers=_headers(request_id, error.headers),
    )


def api(
    emu: Emulator, handlers: dict[str, tuple[str, Handler]]
) -> Callable[[Request], Awaitable[Response]]:
    """One path's endpoint: auth, rate limit, then the handler for the method."""

    async def endpoint(request: Request) -> Response:
        request_id: str = request.state.request_id
        body = await request.body()
        try:
            entry = handlers.get(request.method)
            if entry is None:
                raise ApiError(
                    404,
                    "APIG.0101",
                    "The API does not exist or has not been published in the environment.",
                )
            name, handler = entry
            identity = verify(
                SignedRequest(
                    method=request.method,
                    path=(request.scope.get("raw_path") or request.url.path.encode())
                    .decode("latin-1")
                    .split("?", 1)[0],
                    query_pairs=list(
                        httpx.QueryParams(
                            request.scope["query_string"].decode("latin-1")
                        ).multi_items()
                    ),
                    headers=dict(request.headers.items()),
                    body=body,
                ),
                emu.keys,
                emu.tokens,
                emu.realtime(),
                emu.config.max_skew_s,
            )
            limiter = emu.limiter
            if limiter is not None:
                wait = limiter.take()
                if wait is not None:
                    raise throttled(emu, limiter.rate, wait)
            emu.count(f"api.{name}")
            status, payload = handler(
                emu, Call(request, str(request.path_params["project_id"]), identity, body)
            )
        except ApiError as error:
            emu.count(f"status.{error.status}")
            return error_response(error, request_id)
        emu.count(f"status.{status}")
        if payload is None:
            return Response(status_code=status, headers=_headers(request_id))
        return JSONResponse(payload, status_code=status, headers=_headers(request_id))

    return endpoint


def throttled(emu: Emulator, limit: float, wait_s: float | None = None) -> ApiError:
    retry_after = max(1, int(wait_s + 0.999)) if wait_s is not None else emu.faults.retry_after_s
    return ApiError(
        429,
        "APIG.0308",
        f"The throttling threshold has been reached: policy user over ratelimit, limit:{limit:g}, time:1 second",
        headers={"Retry-After": str(retry_after)},
    )


# ---------------------------------------------------------------- Jupyter Server


def _jupyter_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return request.query_params.get("token")


def jupyter(emu: Emulator) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        project_id = str(request.path_params["project_id"])
        notebook_id = str(request.path_params["notebook_id"])
        rest = "/" + str(request.path_params["rest"])
        emu.count("jupyter.requests")
        store = emu.store
        with store.lock:
            now = store.now_ms()
            record = store.projects.get(project_id, None)
            found = record.records.get(notebook_id) if record is not None else None
            if found is None:
                return PlainTextResponse("404: Not Found", status_code=404)
            if (
                found.status is not NotebookStatus.RUNNING
                or found.jupyter.pattern is ActivityPattern.UNREACHABLE
            ):
                return PlainTextResponse("503: Service Unavailable", status_code=503)
            if rest in ("/lab", "/lab/", "/tree", "/"):
                return PlainTextResponse(f"JupyterLab (emulated) for notebook {found.name}\n")
            if _jupyter_token(request) != found.token:
                return PlainTextResponse("403: Forbidden", status_code=403)
            state = found.jupyter
            state.api_requests += 1
            if rest != "/api/status" and "no_track_activity" not in request.query_params:
                state.track(now)
            if rest == "/api/status":
                return JSONResponse(state.status_view(now))
            if rest == "/api/kernels":
                return JSONResponse(state.kernel_views(now))
            if rest == "/api/sessions":
                return JSONResponse(
                    [
                        {
                            "id": f"s-{kernel['id']}",
                            "path": f"work/notebook{index}.ipynb",
                            "name": f"notebook{index}.ipynb",
                            "type": "notebook",
                            "kernel": kernel,
                        }
                        for index, kernel in enumerate(state.kernel_views(now))
                    ]
                )
            if rest == "/api/me":
                return JSONResponse(
                    {"identity": {"username": found.user.user_name, "name": found.user.user_name}}
                )
            if rest == "/api/terminals":
                return JSONResponse([])
            return JSONResponse({"message": "Not Found", "reason": None}, status_code=404)

    return endpoint


# ---------------------------------------------------------------- control API


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

    def __init__(self, emu: Emulator) -> None:
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
        if "rate" in data:
            kinds = tuple(FaultKind(k) for k in data.get("kinds", ())) or None
            self.emu.set_fault_rate(float(data["rate"]), kinds, data.get("seed"))
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


def control(emu: Emulator) -> list[Route]:
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


# ---------------------------------------------------------------- edge and app


class Edge:
    """Outermost layer: request id, latency, scripted/random faults, dropped connections."""

    def __init__(self, emu: Emulator, inner: ASGIApp) -> None:
        self.emu = emu
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        emu = self.emu
        path: str = scope["path"]
        request_id = emu.next_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        if path.startswith("/v1/"):
            kind = FaultScope.API
            latency_ms = emu.config.latency_ms
        elif path.startswith("/jupyter/"):
            kind = FaultScope.JUPYTER
            configured = emu.config.jupyter_latency_ms
            latency_ms = emu.config.latency_ms if configured is None else configured
        else:
            await self.inner(scope, receive, send)
            return
        emu.count(f"{kind.value}.total")
        if latency_ms > 0:
            await emu.sleep(latency_ms / 1000)
        fault = emu.faults.decide(scope["method"], path, kind)
        if fault is FaultKind.SLOW:
            await emu.sleep(emu.faults.slow_s)
        elif fault is FaultKind.DROP:
            emu.count("fault.drop")
            if emu.drop_hook is not None and emu.drop_hook(scope):
                return
            raise ConnectionDroppedError(path)
        elif fault is not None:
            error = {
                FaultKind.THROTTLE: throttled(emu, emu.limiter.rate if emu.limiter else 1),
                FaultKind.ERROR_500: ApiError(500, "ModelArts.0010", "Internal error."),
                FaultKind.ERROR_503: ApiError(
                    503, "APIG.0203", "Backend timeout or unavailable, please try again later."
                ),
            }[fault]
            emu.count(f"status.{error.status}")
            await _drain(receive)
            await error_response(error, request_id)(scope, receive, send)
            return
        await self.inner(scope, receive, send)


async def _drain(receive: Receive) -> None:
    message: Message = {"more_body": True}
    while message.get("more_body"):
        message = await receive()
        if message["type"] != "http.request":
            return


ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


def create_app(emu: Emulator) -> ASGIApp:
    base = "/v1/{project_id}/notebooks"
    api_routes = [
        Route(
            base,
            api(emu, {"POST": ("create", create_notebook), "GET": ("list", list_own)}),
            methods=None,
        ),
        Route(f"{base}/all", api(emu, {"GET": ("list_all", list_all)})),
        Route(f"{base}/flavors", api(emu, {"GET": ("flavors", list_flavors)})),
        Route(f"{base}/tags", api(emu, {"GET": ("tag_summary", tag_summary)})),
        Route(
            f"{base}/{{id}}",
            api(
                emu,
                {
                    "GET": ("show", show_notebook),
                    "PUT": ("update", update_notebook),
                    "DELETE": ("delete", delete_notebook),
                },
            ),
        ),
        Route(f"{base}/{{id}}/start", api(emu, {"POST": ("start", start_notebook)})),
        Route(f"{base}/{{id}}/stop", api(emu, {"POST": ("stop", stop_notebook)})),
        Route(
            f"{base}/{{id}}/lease",
            api(emu, {"GET": ("show_lease", show_lease), "PATCH": ("renew_lease", renew_lease)}),
        ),
        Route(
            f"{base}/{{id}}/flavors", api(emu, {"GET": ("switchable_flavors", switchable_flavors)})
        ),
        Route(f"{base}/{{id}}/tags/create", api(emu, {"POST": ("tags_create", create_tags)})),
        Route(f"{base}/{{id}}/tags/delete", api(emu, {"DELETE": ("tags_delete", delete_tags)})),
        Route("/v1/{project_id}/{rest:path}", api(emu, {})),
    ]
    routes = [
        *(Route(r.path, r.endpoint, methods=ALL_METHODS) for r in api_routes),
        Route("/jupyter/{project_id}/{notebook_id}/{rest:path}", jupyter(emu)),
        *control(emu),
    ]
    return Edge(emu, Starlette(routes=routes))
