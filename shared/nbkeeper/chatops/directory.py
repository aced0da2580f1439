"""The chat-ops `Directory` over ModelArts and the state store (read-only).

One ModelArts call per lookup (show by id, or list by name across users) plus one Query for the
project's owner records. The owner comes from the notebook's `nbkeeper.owner` tag, else from the
state table. `run` drives the coroutines on the event loop the client belongs to: the handler
keeps one loop and one client per execution environment, so warm requests reuse connections.
The lookup runs on Slack's 3 s ack: with a `budget`, one that takes longer is abandoned
(`SlowLookupError`) so the person gets an answer instead of a timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from nbkeeper.modelarts.client import AsyncModelArtsClient
from nbkeeper.modelarts.errors import NotFoundError
from nbkeeper.modelarts.schemas import UUID_PATTERN, ListNotebooksQuery, Notebook
from nbkeeper.records import StateStore
from nbkeeper.tags import OWNER_TAG


class SlowLookupError(Exception):
    """ModelArts did not answer within the lookup's budget (the ack cannot wait longer)."""


@dataclass(frozen=True)
class Found:
    notebook: Notebook
    owner: str | None  # Slack user id, or None when nbkeeper did not create it


class Directory(Protocol):
    """Read-only view of the project's notebooks (one ModelArts call, plus the owner records)."""

    def find(self, target: str) -> list[Found]:
        """The notebook with this id, or every notebook with exactly this name."""
        ...

    def listing(self) -> list[Found]:
        """Every notebook of the project (callers filter by owner for "mine")."""
        ...


def looks_like_id(target: str) -> bool:
    return bool(UUID_PATTERN.match(target))


Runner = Callable[[Coroutine[Any, Any, Any]], Any]


class ModelArtsDirectory:
    def __init__(
        self,
        client: AsyncModelArtsClient,
        run: Runner,
        store: Callable[[], StateStore],  # built when an owner is first needed
        project_id: str,
        now: datetime,
        budget: float | None = None,
    ) -> None:
        self._client = client
        self._budget = budget
        self._run = run
        self._store = store
        self._project_id = project_id
        self._now = now
        self._owners: dict[str, str] | None = None

    def find(self, target: str) -> list[Found]:
        found: list[Notebook] = self._run(self._within_budget(self._find(target)))
        return self._with_owners(found)

    def listing(self) -> list[Found]:
        # Every user's notebooks: nbkeeper's all belong to its IAM user, so "mine" is decided by
        # the owner records, not by ModelArts.
        listing = self._client.list_notebooks(all_users=True)
        listed: list[Notebook] = self._run(self._within_budget(listing))
        return self._with_owners(listed)

    async def _within_budget(self, lookup: Coroutine[Any, Any, list[Notebook]]) -> list[Notebook]:
        try:
            return await asyncio.wait_for(lookup, self._budget)
        except TimeoutError:
            raise SlowLookupError(f"no answer within {self._budget} s") from None

    async def _find(self, target: str) -> list[Notebook]:
        if looks_like_id(target):
            try:
                return [await self._client.show_notebook(target)]
            except NotFoundError:
                return []
        named = await self._client.list_notebooks(ListNotebooksQuery(name=target), all_users=True)
        return [notebook for notebook in named if notebook.name == target]

    def _with_owners(self, notebooks: list[Notebook]) -> list[Found]:
        if not notebooks:
            return []
        if self._owners is None:
            state = self._store().load_project(self._project_id, self._now)
            self._owners = {nb_id: owner.user_id for nb_id, owner in state.owners.items()}
        return [Found(nb, nb.tag(OWNER_TAG) or self._owners.get(nb.id)) for nb in notebooks]
