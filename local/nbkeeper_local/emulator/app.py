"""The emulator's ASGI app: ModelArts API, plus the Jupyter Server probes (jupyter_api.py) and
the /_emulator control API (control.py).

Request path: edge (request id, latency, faults) -> auth (signature or token) -> rate limit ->
handler (validated with the shared schemas, state changes under the store lock) -> loose replies
when asked for (loose.py) -> Huawei body.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pydantic
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nbkeeper.modelarts.images import ImageCreateRequest
from nbkeeper.modelarts.schemas import (
    ILLEGAL_CHARACTERS,
    LeaseReq,
    LeaseType,
    ListNotebooksQuery,
    NotebookCreateRequest,
    NotebookUpdateRequest,
    TagsRequest,
)

from .catalogue import FLAVORS
from .control import control
from .engine import EmulatorEngine
from .faults import ConnectionDroppedError, FaultKind
from .faults import Scope as FaultScope
from .images_api import list_images, show_image
from .jupyter_api import jupyter
from .records import ApiError, Identity, bad_request
from .saving import save_image
from .signature import SignedRequest, verify

JSON = dict[str, Any]
M = TypeVar("M", bound=pydantic.BaseModel)
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
Handler = Callable[[EmulatorEngine, Call], Reply]


def error_body(code: str, message: str) -> JSON:
    return {"error_code": code, "error_msg": message}


def validation_error(exc: pydantic.ValidationError) -> ApiError:
    """Map a schema failure to the service's code: 6349 lease, 6334 bad chars, 6335 missing."""
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "body"
    message = f"{location}: {first['msg'].removeprefix('Value error, ')}"
    if "duration" in first["loc"]:
        return bad_request("6349", message)
    if first["loc"] == ("limit",):  # the SDK documents 10, 20 and 50 only
        return bad_request("0104", message)
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


def create_notebook(emu: EmulatorEngine, call: Call) -> Reply:
    request = validate(NotebookCreateRequest, call.json_body())
    record = emu.store.create(call.project_id, request, call.identity)
    return 200, record.to_json(call.base_url)


def _list(emu: EmulatorEngine, call: Call, own: bool) -> Reply:
    params = dict(call.request.query_params)
    if "workspaceId" in params:  # the OTC docs' spelling
        params.setdefault("workspace_id", params.pop("workspaceId"))
    query = validate(ListNotebooksQuery, {k: v for k, v in params.items() if k in LIST_FIELDS})
    result = emu.store.list_notebooks(
        call.project_id, query, call.identity.user_id if own else None
    )
    return 200, result.page_json(call.base_url)


def list_own(emu: EmulatorEngine, call: Call) -> Reply:
    return _list(emu, call, own=True)


def list_all(emu: EmulatorEngine, call: Call) -> Reply:
    return _list(emu, call, own=False)


def show_notebook(emu: EmulatorEngine, call: Call) -> Reply:
    record = emu.store.get(call.project_id, call.path_param("id"))
    return 200, record.to_json(call.base_url)


def update_notebook(emu: EmulatorEngine, call: Call) -> Reply:
    request = validate(NotebookUpdateRequest, call.json_body())
    record = emu.store.update(call.project_id, call.path_param("id"), request)
    return 200, record.to_json(call.base_url)


def delete_notebook(emu: EmulatorEngine, call: Call) -> Reply:
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


def start_notebook(emu: EmulatorEngine, call: Call) -> Reply:
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


def stop_notebook(emu: EmulatorEngine, call: Call) -> Reply:
    record = emu.store.stop(call.project_id, call.path_param("id"))
    return 200, record.to_json(call.base_url)


def create_image(emu: EmulatorEngine, call: Call) -> Reply:
    """Save a RUNNING notebook as an image: the reply is the image (CREATING)."""
    request = validate(ImageCreateRequest, call.json_body())
    return 200, save_image(emu.store, call.project_id, call.path_param("id"), request)


def show_lease(emu: EmulatorEngine, call: Call) -> Reply:
    record = emu.store.show_lease(call.project_id, call.path_param("id"))
    return 200, record.lease_json()


def renew_lease(emu: EmulatorEngine, call: Call) -> Reply:
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


def create_tags(emu: EmulatorEngine, call: Call) -> Reply:
    request = validate(TagsRequest, call.json_body())
    emu.store.add_tags(call.project_id, call.path_param("id"), request.tags)
    return 204, None


def delete_tags(emu: EmulatorEngine, call: Call) -> Reply:
    request = validate(TagsRequest, call.json_body())
    emu.store.remove_tags(call.project_id, call.path_param("id"), request.tags)
    return 204, None


def tag_summary(emu: EmulatorEngine, call: Call) -> Reply:
    return 200, emu.store.tag_summary(call.project_id)


def list_flavors(emu: EmulatorEngine, call: Call) -> Reply:
    params = call.request.query_params
    flavors = [
        f
        for f in FLAVORS
        if (not params.get("category") or f["category"] == params["category"].upper())
        and (not params.get("feature") or f["feature"] == params["feature"].upper())
    ]
    return 200, _flavor_page(call, flavors)


def switchable_flavors(emu: EmulatorEngine, call: Call) -> Reply:
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
    emu: EmulatorEngine, handlers: dict[str, tuple[str, Handler]]
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
            call = Call(request, str(request.path_params["project_id"]), identity, body)
            status, payload = handler(emu, call)
            payload = loosen(emu, name, call, payload)
        except ApiError as error:
            emu.count(f"status.{error.status}")
            return error_response(error, request_id)
        emu.count(f"status.{status}")
        if payload is None:
            return Response(status_code=status, headers=_headers(request_id))
        return JSONResponse(payload, status_code=status, headers=_headers(request_id))

    return endpoint


NOTEBOOK_REPLIES = frozenset({"create", "show", "update", "delete", "start", "stop"})
LIST_REPLIES = frozenset({"list", "list_all"})
LEASE_REPLIES = frozenset({"show_lease", "renew_lease"})


def loosen(emu: EmulatorEngine, name: str, call: Call, payload: Any) -> Any:
    """The reply as a loose service might send it (loose.py): at the configured rate, or for
    every notebook when a LOOSE fault hit this request."""
    every = bool(getattr(call.request.state, "loose", False))
    if payload is None or not (every or emu.loose.active):
        return payload
    if name in NOTEBOOK_REPLIES:
        return emu.loose.notebook(payload, every=every)
    if name in LIST_REPLIES:
        return emu.loose.page(payload, every=every)
    if name in LEASE_REPLIES:
        return emu.loose.lease(payload, call.path_param("id"), every=every)
    return payload


def throttled(emu: EmulatorEngine, limit: float, wait_s: float | None = None) -> ApiError:
    retry_after = max(1, int(wait_s + 0.999)) if wait_s is not None else emu.faults.retry_after_s
    return ApiError(
        429,
        "APIG.0308",
        f"The throttling threshold has been reached: policy user over ratelimit, limit:{limit:g}, time:1 second",
        headers={"Retry-After": str(retry_after)},
    )


# ---------------------------------------------------------------- edge and app


class Edge:
    """Outermost layer: request id, latency, scripted/random faults, dropped connections and
    lost replies."""

    def __init__(self, emu: EmulatorEngine, inner: ASGIApp) -> None:
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
        if fault is FaultKind.LOOSE:
            scope["state"]["loose"] = True
        elif fault is FaultKind.SLOW:
            await emu.sleep(emu.faults.slow_s)
        elif fault is FaultKind.DROP:
            emu.count("fault.drop")
            if emu.drop_hook is not None and emu.drop_hook(scope):
                return
            raise ConnectionDroppedError(path)
        elif fault is FaultKind.REPLY_LOST:
            await self.inner(scope, receive, _discard)  # the change happens; its reply does not
            emu.count("fault.reply_lost")
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


async def _discard(message: Message) -> None:
    """A `send` that loses what the app answers (REPLY_LOST)."""


async def _drain(receive: Receive) -> None:
    message: Message = {"more_body": True}
    while message.get("more_body"):
        message = await receive()
        if message["type"] != "http.request":
            return


ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


def create_app(emu: EmulatorEngine) -> ASGIApp:
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
        Route(f"{base}/{{id}}/create-image", api(emu, {"POST": ("create_image", create_image)})),
        Route(
            f"{base}/{{id}}/lease",
            api(emu, {"GET": ("show_lease", show_lease), "PATCH": ("renew_lease", renew_lease)}),
        ),
        Route(
            f"{base}/{{id}}/flavors", api(emu, {"GET": ("switchable_flavors", switchable_flavors)})
        ),
        Route(f"{base}/{{id}}/tags/create", api(emu, {"POST": ("tags_create", create_tags)})),
        Route(f"{base}/{{id}}/tags/delete", api(emu, {"DELETE": ("tags_delete", delete_tags)})),
        Route("/v1/{project_id}/images", api(emu, {"GET": ("list_images", list_images)})),
        Route("/v1/{project_id}/images/{id}", api(emu, {"GET": ("show_image", show_image)})),
        Route("/v1/{project_id}/{rest:path}", api(emu, {})),
    ]
    routes = [
        *(Route(r.path, r.endpoint, methods=ALL_METHODS) for r in api_routes),
        Route("/jupyter/{project_id}/{notebook_id}/{rest:path}", jupyter(emu)),
        *control(emu),
    ]
    return Edge(emu, Starlette(routes=routes))
