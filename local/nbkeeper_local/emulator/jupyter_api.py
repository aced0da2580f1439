"""The notebooks' Jupyter Servers, as the keeper's activity probes see them (jupyter.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from nbkeeper.modelarts.schemas import NotebookStatus

from .engine import EmulatorEngine
from .jupyter import ActivityPattern


def _jupyter_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return request.query_params.get("token")


def jupyter(emu: EmulatorEngine) -> Callable[[Request], Awaitable[Response]]:
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
