"""Judging a refused change by the notebook (nbkeeper.worker.outcomes): done, busy, or refused."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from nbkeeper.modelarts.errors import InvalidRequestError, NotFoundError, WrongStateError
from nbkeeper.modelarts.schemas import Notebook, NotebookStatus, NotebookUpdateRequest
from nbkeeper.worker.outcomes import (
    START_TAKEN,
    STOP_TAKEN,
    ChangeRefusedError,
    has_changes,
    judge_delete,
    judge_state_change,
    judge_update,
    refused_reason,
)
from nbkeeper.worker.ports import NotebookApi, NotebookBusyError

NOTEBOOK_ID = "6e7a8f0c-1d2b-4c3a-9e8f-7a6b5c4d3e2f"
IN_PROGRESS = WrongStateError("in progress", status_code=400, error_code="ModelArts.6357")
NOT_GROWING = InvalidRequestError("storage can only grow", error_code="ModelArts.6331")


class OneNotebook:
    """A ModelArts that shows one notebook (or none): the only call the judges make."""

    def __init__(self, notebook: Notebook | None) -> None:
        self.notebook = notebook
        self.shows = 0

    async def show_notebook(self, notebook_id: str) -> Notebook:
        self.shows += 1
        if self.notebook is None:
            raise NotFoundError("gone", error_code="ModelArts.6309")
        return self.notebook


def api(client: OneNotebook) -> NotebookApi:
    return cast(NotebookApi, client)


def notebook(status: str, **fields: Any) -> Notebook:
    return Notebook.model_validate({"id": NOTEBOOK_ID, "name": "exp-1", "status": status, **fields})


def judge(client: OneNotebook, taken: frozenset[NotebookStatus]) -> Notebook:
    return asyncio.run(judge_state_change(api(client), NOTEBOOK_ID, IN_PROGRESS, taken))


@pytest.mark.parametrize(
    ("taken", "status"),
    [
        (STOP_TAKEN, "STOPPING"),
        (STOP_TAKEN, "STOPPED"),
        (START_TAKEN, "STARTING"),
        (START_TAKEN, "RUNNING"),
    ],
)
def test_a_refused_change_is_done_when_the_notebook_is_where_it_leads(
    taken: frozenset[NotebookStatus], status: str
) -> None:
    client = OneNotebook(notebook(status))
    assert judge(client, taken).status.value == status
    assert client.shows == 1


@pytest.mark.parametrize(
    ("taken", "status"),
    [(STOP_TAKEN, "STARTING"), (STOP_TAKEN, "CREATING"), (START_TAKEN, "STOPPING")],
)
def test_a_refusal_while_between_other_states_runs_again_later(
    taken: frozenset[NotebookStatus], status: str
) -> None:
    with pytest.raises(NotebookBusyError, match=f"stayed {status}"):
        judge(OneNotebook(notebook(status)), taken)


@pytest.mark.parametrize(
    ("taken", "status"),
    [(STOP_TAKEN, "START_FAILED"), (START_TAKEN, "CREATE_FAILED"), (START_TAKEN, "FROZEN")],
)
def test_a_refusal_in_a_settled_other_state_stands(
    taken: frozenset[NotebookStatus], status: str
) -> None:
    with pytest.raises(ChangeRefusedError) as refused:
        judge(OneNotebook(notebook(status)), taken)
    assert refused.value.refusal is IN_PROGRESS
    assert refused.value.notebook.status.value == status


def test_a_stop_refused_for_a_notebook_now_gone_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        judge(OneNotebook(None), STOP_TAKEN)


@pytest.mark.parametrize("shown", [notebook("DELETING"), None], ids=["deleting", "gone"])
def test_a_refused_delete_is_done_when_deleting_or_gone(shown: Notebook | None) -> None:
    asyncio.run(judge_delete(api(OneNotebook(shown)), NOTEBOOK_ID, IN_PROGRESS))


def test_a_refused_delete_of_a_notebook_in_error_stands() -> None:
    with pytest.raises(ChangeRefusedError):
        asyncio.run(judge_delete(api(OneNotebook(notebook("ERROR"))), NOTEBOOK_ID, IN_PROGRESS))


def test_a_refused_update_is_done_when_the_notebook_has_the_size() -> None:
    client = OneNotebook(notebook("STOPPED", volume={"capacity": 50}))
    changes = NotebookUpdateRequest(storage_new_size=50)
    asyncio.run(judge_update(api(client), NOTEBOOK_ID, NOT_GROWING, changes))


def test_a_refused_update_to_another_size_stands() -> None:
    client = OneNotebook(notebook("STOPPED", volume={"capacity": 100}))
    changes = NotebookUpdateRequest(storage_new_size=50)
    with pytest.raises(ChangeRefusedError):
        asyncio.run(judge_update(api(client), NOTEBOOK_ID, NOT_GROWING, changes))


@pytest.mark.parametrize(
    ("changes", "done"),
    [
        ({"storage_new_size": 50, "flavor": "modelarts.vm.cpu.8u"}, True),
        ({"storage_new_size": 50, "flavor": "modelarts.vm.cpu.2u"}, False),
        ({"name": "exp-1", "description": "runs"}, True),
        ({"image_id": "11111111-2222-3333-4444-555555555555"}, False),
        # What a notebook does not show cannot be confirmed: never "done".
        ({"storage_new_size": 50, "dew_secret_name": "s"}, False),
    ],
)
def test_has_changes_needs_every_requested_value_shown(changes: dict[str, Any], done: bool) -> None:
    shown = notebook(
        "STOPPED",
        description="runs",
        flavor="modelarts.vm.cpu.8u",
        volume={"capacity": 50},
        image={"id": "99999999-2222-3333-4444-555555555555"},
    )
    assert has_changes(shown, NotebookUpdateRequest.model_validate(changes)) is done


def test_a_refusal_for_the_state_names_the_state_and_what_modelarts_said() -> None:
    refused = ChangeRefusedError(IN_PROGRESS, notebook("START_FAILED"), by_state=True)
    assert refused_reason(refused) == (
        "it is START_FAILED, which does not allow that. "
        "ModelArts said: in progress (ModelArts.6357)."
    )
    refused = ChangeRefusedError(NOT_GROWING, notebook("STOPPED"), by_state=False)
    assert refused_reason(refused) == "ModelArts said: storage can only grow (ModelArts.6331)."
