"""The chat-ops `Directory` over ModelArts and the state store (read-only).

One ModelArts call per lookup (show by id, or list by name across users) plus one Query for the
project's owner records. The owner comes from the notebook's `nbkeeper.owner` tag, else from the
state table. The client is built inside each coroutine (`client_factory`), since an
`AsyncModelArtsClient` belongs to one event loop and the handler runs one loop per request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from nbkeeper.chatops import OWNER_TAG, Found, looks_like_id
from nbkeeper.modelarts.client import AsyncModelArtsClient, run_sync
from nbkeeper.modelarts.errors import NotFoundError
from nbkeeper.modelarts.schemas import ListNotebooksQuery, Notebook
from nbkeeper.store import StateStore


class ModelArtsDirectory:
    def __init__(
        self,
        client_factory: Callable[[], AsyncModelArtsClient],
        store: StateStore,
        project_id: str,
        now: datetime,
    ) -> None:
        self._client_factory = client_factory
        self._store = store
        self._project_id = project_id
        self._now = now
        self._owners: dict[str, str] | None = None

    def find(self, target: str) -> list[Found]:
        return self._with_owners(run_sync(self._find(target)))

    def listing(self, *, all_users: bool) -> list[Found]:
        return self._with_owners(run_sync(self._list(all_users)))

    async def _find(self, target: str) -> list[Notebook]:
        async with self._client_factory() as client:
            if looks_like_id(target):
                try:
                    return [await client.show_notebook(target)]
                except NotFoundError:
                    return []
            named = await client.list_notebooks(ListNotebooksQuery(name=target), all_users=True)
            return [notebook for notebook in named if notebook.name == target]

    async def _list(self, all_users: bool) -> list[Notebook]:
        async with self._client_factory() as client:
            return await client.list_notebooks(all_users=True)

    def _with_owners(self, notebooks: list[Notebook]) -> list[Found]:
        if not notebooks:
            return []
        if self._owners is None:
            state = self._store.load_project(self._project_id, self._now)
            self._owners = {nb_id: owner.user_id for nb_id, owner in state.owners.items()}
        return [Found(nb, nb.tag(OWNER_TAG) or self._owners.get(nb.id)) for nb in notebooks]
