"""Executes queued Commands against ModelArts and tells the person who asked.

Pure orchestration: the ModelArts client, the state store, the follow-up scheduler and the
reporter are passed in, and so is `now`. Exactly-once is the handler's job (Powertools
Idempotency keyed on `command_id`); this module adds the second line of defence for the one
non-idempotent call, create: it tags every notebook it creates with the command id and, before
creating, adopts a notebook that already carries it.

Waiting without sleeping: a create, start, stop or stop-before-delete is followed by
`FollowCommand`s on a *standard* SQS queue with per-message `DelaySeconds` (the commands queue is
FIFO, which only has a queue-wide delay). Each follow-up looks once, then reports, takes the next
step, or schedules the next look, until a deadline.

Errors: permanent ModelArts refusals (not found, wrong state, invalid, quota, forbidden) are
reported to the person and the message succeeds; transient ones (throttled, server, transport,
after the client's own retries, and a create that may or may not have happened) are raised, so
SQS delivers the message again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from nbkeeper.commands import (
    Command,
    CommandBase,
    CreateCommand,
    DeleteCommand,
    FollowCommand,
    FollowOrigin,
    KeepCommand,
    NotebookCommand,
    ProlongCommand,
    StartCommand,
    StopCommand,
    SweepProjectCommand,
    UpdateCommand,
)
from nbkeeper.explain import explain_error
from nbkeeper.modelarts.errors import AmbiguousCreateError, ModelArtsError, NotFoundError
from nbkeeper.modelarts.schemas import (
    HOUR_MS,
    LEASE_MAX_MS,
    ListNotebooksQuery,
    Notebook,
    NotebookStatus,
    NotebookUpdateRequest,
)
from nbkeeper.records import Owner, Reservation, StateStore
from nbkeeper.slack import render
from nbkeeper.slack.render import Message, escape
from nbkeeper.tags import COMMAND_TAG, OWNER_TAG
from nbkeeper.timefmt import from_ms, to_ms
from nbkeeper.worker.followups import (
    FAILED_STATES,
    FOLLOW_DEADLINES,
    follow_for,
    follow_id,
    next_delay,
)
from nbkeeper.worker.ports import (
    TRANSIENT_ERRORS,
    FollowUps,
    NotebookApi,
    Reporter,
    Result,
    Sweeper,
)
from nbkeeper.worker.reporting import name_of, verb_of

logger = logging.getLogger(__name__)

# How far ModelArts' clock may lag ours when deciding that an untagged notebook is this create's.
CREATE_CLOCK_SKEW = timedelta(minutes=5)


@dataclass
class Worker:
    client: NotebookApi
    store: StateStore
    followups: FollowUps
    reporter: Reporter
    default_project_id: str
    sweeper: Sweeper | None = None

    async def execute(self, command: Command, now: datetime) -> Result:
        """Run one command; permanent failures are reported, transient ones raised."""
        try:
            return await self._dispatch(command, now)
        except TRANSIENT_ERRORS:
            raise
        except ModelArtsError as exc:
            name = name_of(command)
            self._tell(
                command,
                render.done(
                    f"Could not {verb_of(command)} {name}: {render.sentence(explain_error(exc))}",
                    ok=False,
                ),
                now,
            )
            return Result("refused", getattr(command, "notebook_id", None), exc.kind)

    async def _dispatch(self, command: Command, now: datetime) -> Result:
        handlers: dict[type[Any], Callable[[Any, datetime], Awaitable[Result]]] = {
            CreateCommand: self._create,
            SweepProjectCommand: self._sweep,
            DeleteCommand: self._delete,
            StartCommand: self._start,
            StopCommand: self._stop,
            ProlongCommand: self._prolong,
            KeepCommand: self._keep,
            UpdateCommand: self._update,
            FollowCommand: self._follow,
        }
        return await handlers[type(command)](command, now)

    async def _sweep(self, command: SweepProjectCommand, now: datetime) -> Result:
        if self.sweeper is None:
            raise RuntimeError("this worker has no lease keeper sweeper configured")
        return await self.sweeper(command, now)

    async def _start(self, command: StartCommand, now: datetime) -> Result:
        hours = command.hours
        notebook = await self.client.start_notebook(
            command.notebook_id, duration_ms=hours * HOUR_MS if hours else None
        )
        return await self._settle(command, "start", notebook, "RUNNING", now)

    async def _stop(self, command: StopCommand, now: datetime) -> Result:
        notebook = await self.client.stop_notebook(command.notebook_id)
        return await self._settle(command, "stop", notebook, "STOPPED", now)

    # ------------------------------------------------------------ create

    async def _create(self, command: CreateCommand, now: datetime) -> Result:
        existing = await self._created_by(command)
        if existing is None:
            try:
                existing = await self.client.create_notebook(command.to_request())
            except AmbiguousCreateError:
                # Look again: made since the command was requested, it is ours; if not, SQS retries.
                existing = await self._created_by(command)
                if existing is None:
                    raise
        await self.client.add_tags(
            existing.id,
            {OWNER_TAG: command.requested_by.user_id, COMMAND_TAG: command.command_id},
        )
        self.store.put_owner(
            Owner(
                project_id=self._project_id(command),
                notebook_id=existing.id,
                user_id=command.requested_by.user_id,
                team_id=command.requested_by.team_id,
                notebook_name=command.name,
                created_at=now,
            )
        )
        follow = FollowCommand(
            command_id=follow_id(command.command_id, 0),
            requested_at=command.requested_at,
            requested_by=command.requested_by,
            project=command.project,
            notebook_id=existing.id,
            notebook_name=command.name,
            origin="create",
            wait_for="RUNNING",
            attempt=1,
            deadline=now + FOLLOW_DEADLINES["create"],
        )
        return await self._check(follow, existing, now)

    async def _created_by(self, command: CreateCommand) -> Notebook | None:
        """A notebook this command already created, if any.

        Tagged with the command id; or untagged but made since the command was requested: an
        earlier delivery (or an ambiguous create) made it and failed before tagging it. An older
        untagged namesake is someone else's notebook and is never adopted.
        """
        since_ms = to_ms(command.requested_at - CREATE_CLOCK_SKEW)
        named = await self.client.list_notebooks(ListNotebooksQuery(name=command.name))
        untagged: Notebook | None = None
        for notebook in named:
            if notebook.name != command.name:
                continue
            tag = notebook.tag(COMMAND_TAG)
            if tag == command.command_id:
                return notebook
            created_ms = notebook.create_at or (
                notebook.lease.create_at if notebook.lease else None
            )
            if tag is None and created_ms is not None and created_ms >= since_ms:
                untagged = untagged or notebook
        return untagged

    # ------------------------------------------------------------ delete, update

    async def _delete(self, command: DeleteCommand, now: datetime) -> Result:
        try:
            notebook = await self.client.show_notebook(command.notebook_id)
        except NotFoundError:
            self._tell(command, render.done(f"{name_of(command)} is already gone."), now)
            return Result("done", command.notebook_id, "already gone")
        if notebook.status in (NotebookStatus.RUNNING, NotebookStatus.STARTING):
            stopped = await self.client.stop_notebook(command.notebook_id)
            follow = follow_for(command, "delete", "STOPPED", now, then="delete")
            return await self._check(follow, stopped, now)
        return await self._finish_delete(command, now)

    async def _finish_delete(self, command: NotebookCommand, now: datetime) -> Result:
        await self.client.delete_notebook(command.notebook_id)
        self.store.delete_reservation(self._project_id(command), command.notebook_id)
        self._tell(command, render.done(f"Deleted {name_of(command)}."), now)
        return Result("done", command.notebook_id, "deleted")

    async def _update(self, command: UpdateCommand, now: datetime) -> Result:
        if command.restart:
            notebook = await self.client.show_notebook(command.notebook_id)
            if notebook.status is not NotebookStatus.STOPPED:
                stopped = await self.client.stop_notebook(command.notebook_id)
                follow = follow_for(
                    command, "update", "STOPPED", now, then="update", changes=command.changes
                )
                return await self._check(follow, stopped, now)
        return await self._apply_update(command, command.changes, command.restart, None, now)

    async def _apply_update(
        self,
        command: NotebookCommand,
        changes: NotebookUpdateRequest,
        restart: bool,
        hours: int | None,
        now: datetime,
    ) -> Result:
        await self.client.update_notebook(command.notebook_id, changes)
        what = ", ".join(sorted(changes.model_dump(exclude_none=True)))
        if not restart:
            self._tell(command, render.done(f"Updated {name_of(command)} ({what})."), now)
            return Result("done", command.notebook_id, "updated")
        started = await self.client.start_notebook(
            command.notebook_id, duration_ms=hours * HOUR_MS if hours else None
        )
        return await self._settle(command, "update", started, "RUNNING", now)

    # ------------------------------------------------------------ lease

    async def _prolong(self, command: ProlongCommand, now: datetime) -> Result:
        lease = await self.client.renew_lease(command.notebook_id, command.hours * HOUR_MS)
        until = now + timedelta(hours=command.hours)
        if lease is not None and lease.deadline_ms is not None:
            until = from_ms(lease.deadline_ms).astimezone(now.tzinfo)
        self._tell(
            command,
            render.done(f"{name_of(command)} now runs until {until:%Y-%m-%d %H:%M %Z}."),
            now,
        )
        return Result("done", command.notebook_id, "prolonged")

    async def _keep(self, command: KeepCommand, now: datetime) -> Result:
        self.store.put_reservation(
            Reservation(
                project_id=self._project_id(command),
                notebook_id=command.notebook_id,
                until=command.until,
                by_user=command.requested_by.user_id,
            )
        )
        note = ""
        notebook = await self.client.show_notebook(command.notebook_id)
        lease = notebook.lease
        deadline = lease.deadline_ms if lease else None
        until_ms = to_ms(command.until)
        if notebook.status is NotebookStatus.RUNNING and (deadline is None or deadline < until_ms):
            wanted = until_ms - to_ms(now)
            duration = min(max(wanted, HOUR_MS), LEASE_MAX_MS)
            await self.client.renew_lease(command.notebook_id, duration)
            note = " Its lease was extended to match."
        elif notebook.status is not NotebookStatus.RUNNING:
            note = f" It is {notebook.status.value}; the reservation only prevents stops."
        self._tell(
            command,
            render.done(
                f"Keeping {name_of(command)} alive until {command.until:%Y-%m-%d %H:%M %Z}; "
                f"the lease keeper will not stop it before then.{note}"
            ),
            now,
        )
        return Result("done", command.notebook_id, "reserved")

    # ------------------------------------------------------------ following

    async def _settle(
        self,
        command: NotebookCommand,
        origin: FollowOrigin,
        notebook: Notebook,
        wait_for: Literal["RUNNING", "STOPPED"],
        now: datetime,
    ) -> Result:
        return await self._check(follow_for(command, origin, wait_for, now), notebook, now)

    async def _follow(self, command: FollowCommand, now: datetime) -> Result:
        try:
            notebook = await self.client.show_notebook(command.notebook_id)
        except NotFoundError:
            if command.wait_for == "GONE" or command.origin == "delete":
                self._tell(command, render.done(f"Deleted {name_of(command)}."), now)
                return Result("done", command.notebook_id, "deleted")
            self._tell(
                command,
                render.done(f"{name_of(command)} disappeared from ModelArts.", ok=False),
                now,
            )
            return Result("failed", command.notebook_id, "gone")
        return await self._check(command, notebook, now)

    async def _check(self, follow: FollowCommand, notebook: Notebook, now: datetime) -> Result:
        """One look at `notebook`: reached the state, failed, timed out, or look again later."""
        status = notebook.status
        if status.value == follow.wait_for:
            return await self._reached(follow, notebook, now)
        if status in FAILED_STATES:
            reason = f": {notebook.fail_reason}" if notebook.fail_reason else ""
            self._tell(
                follow,
                render.done(
                    f"{verb_of(follow).capitalize()} {name_of(follow)} failed, it is "
                    f"{status.value}{escape(reason)}",
                    ok=False,
                ),
                now,
            )
            return Result("failed", notebook.id, status.value)
        if now >= follow.deadline:
            self._tell(
                follow,
                render.done(
                    f"{name_of(follow)} is still {status.value} after "
                    f"{int((now - follow.requested_at).total_seconds() // 60)} minutes; "
                    "I stopped watching. `/nb status` shows how it is doing.",
                    ok=False,
                ),
                now,
            )
            return Result("failed", notebook.id, "timed out")
        delay = next_delay(follow.attempt)
        following = follow.model_copy(
            update={
                "attempt": follow.attempt + 1,
                "command_id": follow_id(follow.command_id, follow.attempt),
                "notebook_id": notebook.id,
            }
        )
        self.followups.schedule(following, delay)
        return Result("following", notebook.id, f"{status.value}, next look in {delay} s")

    async def _reached(self, follow: FollowCommand, notebook: Notebook, now: datetime) -> Result:
        if follow.then == "delete":
            return await self._finish_delete(follow, now)
        if follow.then == "update" and follow.changes is not None:
            return await self._apply_update(follow, follow.changes, True, follow.hours, now)
        lines = {
            "create": f"{name_of(follow)} is ready",
            "start": f"{name_of(follow)} is running",
            "update": f"{name_of(follow)} was updated and is running again",
            "stop": f"{name_of(follow)} is stopped",
            "delete": f"{name_of(follow)} is stopped",
        }
        text = lines[follow.origin]
        jupyter = render.link(notebook.url, "open JupyterLab")  # "" unless a URL Slack can link
        if notebook.status is NotebookStatus.RUNNING and jupyter:
            text += f": {jupyter}"
        self._tell(follow, render.done(text + "."), now)
        return Result("done", notebook.id, notebook.status.value)

    # ------------------------------------------------------------ helpers

    def _tell(self, command: CommandBase, message: Message, now: datetime) -> None:
        how = self.reporter.report(command, message, now)
        logger.info(
            "reported result",
            extra={"command_id": command.command_id, "type": verb_of(command), "delivered": how},
        )

    def _project_id(self, command: CommandBase) -> str:
        return command.project.project_id if command.project else self.default_project_id
