"""Was a refused change made after all? The notebook tells.

A change ModelArts took can come back refused: its reply was lost and the client sent it again
(stop, start, delete and update are retried as idempotent), SQS delivered the command again
after its invocation died, or a follow-up whose second step failed runs its first step again.
The second call is refused because the first one worked: "stopping" (ModelArts.6308), "already
stopped" (6307), "starting" (6306), "in progress or already in the target state" (6357),
"storage can only grow" (6331). So a refusal of that kind is judged by reading the notebook
right after it, never by the refusal's code or text alone:

- the notebook is where the change leads (STOPPING or STOPPED for a stop, STARTING or RUNNING for
  a start, DELETING or gone for a delete, the requested values for an update): the change is
  done, and the command carries on as if its call had been answered;
- it is between other states (an earlier command's change still under way):
  `NotebookBusyError`, the command runs again after that change;
- otherwise the refusal is genuine: `ChangeRefusedError`, which names the state it found.
"""

from __future__ import annotations

from collections.abc import Collection

from nbkeeper.modelarts.errors import ModelArtsError, NotFoundError
from nbkeeper.modelarts.schemas import Notebook, NotebookStatus, NotebookUpdateRequest
from nbkeeper.worker.ports import NotebookApi, NotebookBusyError

S = NotebookStatus
STOP_TAKEN = frozenset({S.STOPPING, S.STOPPED})
START_TAKEN = frozenset({S.STARTING, S.RUNNING})
DELETE_TAKEN = frozenset({S.DELETING, S.DELETED})


class ChangeRefusedError(Exception):
    """ModelArts refused a change and the notebook, read right after, shows it was not made."""

    def __init__(self, refusal: ModelArtsError, notebook: Notebook, *, by_state: bool) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal
        self.notebook = notebook
        self.by_state = by_state  # refused for the notebook's state (not for the values asked)


async def judge_state_change(
    client: NotebookApi,
    notebook_id: str,
    refusal: ModelArtsError,
    taken: Collection[NotebookStatus],
) -> Notebook:
    """The notebook when a refused start or stop was made after all (its status is in `taken`).
    Raises `NotebookBusyError`, `ChangeRefusedError`, or `NotFoundError` when it is gone."""
    notebook = await client.show_notebook(notebook_id)
    if notebook.status in taken:
        return notebook
    raise_if_between_states(notebook, refusal)
    raise ChangeRefusedError(refusal, notebook, by_state=True)


async def judge_delete(client: NotebookApi, notebook_id: str, refusal: ModelArtsError) -> None:
    """Returns when a refused delete was made after all (the notebook is DELETING or gone).
    Raises `NotebookBusyError` or `ChangeRefusedError`."""
    try:
        await judge_state_change(client, notebook_id, refusal, DELETE_TAKEN)
    except NotFoundError:
        return


async def judge_update(
    client: NotebookApi, notebook_id: str, refusal: ModelArtsError, changes: NotebookUpdateRequest
) -> Notebook:
    """The notebook when a refused update had been made after all (it shows every requested
    value). Raises `NotebookBusyError` or `ChangeRefusedError`."""
    notebook = await client.show_notebook(notebook_id)
    if has_changes(notebook, changes):
        return notebook
    raise_if_between_states(notebook, refusal)
    raise ChangeRefusedError(refusal, notebook, by_state=False)


def raise_if_between_states(notebook: Notebook, refusal: ModelArtsError) -> None:
    """A notebook between states (an earlier command's change under way) refuses for now only."""
    if notebook.status.is_transient:
        raise NotebookBusyError(
            f"{notebook.name or notebook.id} stayed {notebook.status.value} while an earlier "
            f"change was under way ({refusal.error_code or refusal.kind})."
        )


def has_changes(notebook: Notebook, changes: NotebookUpdateRequest) -> bool:
    """Whether the notebook shows every value `changes` asks for. Values a notebook does not
    show (endpoints, hooks, ...) cannot be confirmed, so asking for one is never "done"."""
    wanted = changes.model_dump(exclude_none=True)
    shown = {
        "name": notebook.name,
        "description": notebook.description,
        "flavor": notebook.flavor,
        "image_id": notebook.image.id if notebook.image else None,
        "storage_new_size": notebook.volume.capacity if notebook.volume else None,
    }
    return all(key in shown and shown[key] == value for key, value in wanted.items())


def refused_reason(exc: ChangeRefusedError) -> str:
    """Why a genuine refusal stands (plain text): the state found when that is the reason, and
    what ModelArts said (for an update, its message says what is wrong with the values)."""
    refusal = exc.refusal
    code = f" ({refusal.error_code})" if refusal.error_code else ""
    said = f"ModelArts said: {refusal.message.rstrip('. ')}{code}."
    if not exc.by_state:
        return said
    return f"it is {exc.notebook.status.value}, which does not allow that. {said}"
