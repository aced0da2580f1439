"""Each emulated notebook serves Jupyter Server's /api/status and /api/kernels at its url."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nbkeeper.modelarts.schemas import Notebook
from nbkeeper_local.emulator import ActivityPattern, Emulator
from tests.emulator_fixtures import CREATE_BODY, EMULATOR_START, NOTEBOOKS, ApiCaller


@pytest.fixture
def notebook(emulator_api: ApiCaller, emulator: Emulator) -> Notebook:
    created = Notebook.model_validate(emulator_api("POST", NOTEBOOKS, json=CREATE_BODY).json())
    emulator.advance(10)
    return created


def probe(
    api: ApiCaller, notebook: Notebook, path: str, token: str | None = None
) -> tuple[int, object]:
    assert notebook.server_base and notebook.token
    secret = notebook.token.get_secret_value() if token is None else token
    response = api(
        "GET", notebook.server_base + path, auth=None, headers={"Authorization": f"token {secret}"}
    )
    return response.status_code, (response.json() if response.status_code == 200 else response.text)


def test_status_reports_start_and_activity_in_jupyter_format(
    emulator_api: ApiCaller, notebook: Notebook
) -> None:
    code, body = probe(emulator_api, notebook, "/api/status")
    assert code == 200
    assert body == {
        "connections": 0,
        "kernels": 0,
        "last_activity": "2024-03-04T09:00:10Z",
        "started": "2024-03-04T09:00:10Z",
    }


@pytest.mark.parametrize("token", ["wrong", ""])
def test_a_wrong_or_missing_token_is_403(
    emulator_api: ApiCaller, notebook: Notebook, token: str
) -> None:
    assert probe(emulator_api, notebook, "/api/status", token)[0] == 403


def test_token_in_query_and_bearer_scheme_are_accepted(
    emulator_api: ApiCaller, notebook: Notebook
) -> None:
    assert notebook.server_base and notebook.token
    secret = notebook.token.get_secret_value()
    by_query = emulator_api(
        "GET", f"{notebook.server_base}/api/status", auth=None, params={"token": secret}
    )
    by_bearer = emulator_api(
        "GET",
        f"{notebook.server_base}/api/status",
        auth=None,
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert (by_query.status_code, by_bearer.status_code) == (200, 200)


def test_status_polling_does_not_count_as_activity(
    emulator_api: ApiCaller, emulator: Emulator, notebook: Notebook
) -> None:
    emulator.advance(1800)
    probe(emulator_api, notebook, "/api/status")
    _, body = probe(emulator_api, notebook, "/api/status")
    assert body["last_activity"] == "2024-03-04T09:00:10Z"  # type: ignore[index]


def test_kernels_call_counts_as_activity_unless_no_track_activity(
    emulator_api: ApiCaller, emulator: Emulator, notebook: Notebook
) -> None:
    emulator.advance(1800)
    probe(emulator_api, notebook, "/api/kernels?no_track_activity=1")
    assert (
        probe(emulator_api, notebook, "/api/status")[1]["last_activity"] == "2024-03-04T09:00:10Z"
    )  # type: ignore[index]
    probe(emulator_api, notebook, "/api/kernels")
    assert (
        probe(emulator_api, notebook, "/api/status")[1]["last_activity"] == "2024-03-04T09:30:10Z"
    )  # type: ignore[index]


def test_busy_pattern_shows_a_busy_kernel_active_now(
    emulator_api: ApiCaller, emulator: Emulator, notebook: Notebook
) -> None:
    emulator.set_activity(notebook.id, pattern=ActivityPattern.BUSY, kernels=[{"name": "python3"}])
    emulator.advance(1800)
    _, kernels = probe(emulator_api, notebook, "/api/kernels?no_track_activity=1")
    assert [(k["execution_state"], k["last_activity"]) for k in kernels] == [  # type: ignore[attr-defined]
        ("busy", "2024-03-04T09:30:10Z")
    ]


def test_explicit_idle_kernels_and_last_activity(
    emulator_api: ApiCaller, emulator: Emulator, notebook: Notebook
) -> None:
    earlier = EMULATOR_START + timedelta(minutes=5)
    emulator.set_activity(
        notebook.id,
        last_activity=earlier,
        kernels=[
            {
                "execution_state": "idle",
                "last_activity_ms": int(earlier.timestamp() * 1000),
                "connections": 2,
            }
        ],
    )
    emulator.advance(600)
    _, status = probe(emulator_api, notebook, "/api/status")
    assert status == {
        "connections": 2,
        "kernels": 1,
        "last_activity": "2024-03-04T09:05:00Z",
        "started": "2024-03-04T09:00:10Z",
    }


def test_stopped_or_unreachable_notebook_answers_503(
    emulator_api: ApiCaller, emulator: Emulator, notebook: Notebook
) -> None:
    emulator.set_activity(notebook.id, pattern=ActivityPattern.UNREACHABLE)
    assert probe(emulator_api, notebook, "/api/status")[0] == 503
    emulator.set_activity(notebook.id, pattern=ActivityPattern.IDLE)
    emulator_api("POST", f"{NOTEBOOKS}/{notebook.id}/stop")
    assert probe(emulator_api, notebook, "/api/status")[0] == 503


def test_unknown_notebook_is_404(emulator_api: ApiCaller, notebook: Notebook) -> None:
    response = emulator_api("GET", "/jupyter/p/missing/api/status", auth=None)
    assert response.status_code == 404
