"""Executes queued Commands against ModelArts and tells the person who asked.

Pure orchestration: the ModelArts client, the state store, the follow-up scheduler and the
reporter are passed in, and so is `now`. Exactly-once is the handler's job (Powertools
Idempotency keyed on `command_id`); `nbkeeper.worker.create` adds the second line of defence for
the one non-idempotent call, create (whose notebook is it, and is the name taken).

Waiting without sleeping: a create, start, stop, stop-before-delete or save is followed by
`FollowCommand`s on a *standard* SQS queue with per-message `DelaySeconds` (the commands queue is
FIFO, which only has a queue-wide delay). Each follow-up looks once, then reports, takes the next
step, or schedules the next look, until a deadline.

Errors: permanent ModelArts refusals (not found, wrong state, invalid, quota, forbidden) are
reported to the person and the message succeeds; transient ones (throttled, server, transport,
after the client's own retries, and a create that may or may not have happened) are raised, so
SQS delivers the message again. A start, stop, delete or update refused as "already doing or
done that" is judged by reading the notebook (`nbkeeper.worker.outcomes`): a call sent again
after its reply was lost is refused because the first one worked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
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
    SaveCommand,
    StartCommand,
    StopCommand,
    SweepProjectCommand,
    UpdateCommand,
)
from nbkeeper.explain import explain_error
from nbkeeper.modelarts.errors import (
    STORAGE_NOT_GROWING_CODES,
    AmbiguousCreateError,
    InvalidRequestError,
    ModelArtsError,
    NotFoundError,
    WrongStateError,
)
from nbkeeper.modelarts.images import ImageDetail, show_image
from nbkeeper.modelarts.schemas import (
    HOUR_MS,
    Notebook,
    NotebookStatus,
    NotebookUpdateRequest,
)
from nbkeeper.records import StateStore
from nbkeeper.slack import render
from nbkeeper.slack.render import Message, escape
from nbkeeper.tags import COMMAND_TAG, OWNER_TAG
from nbkeeper.worker import leases
from nbkeeper.worker.create import (
    account_for_failed_create,
    name_taken,
    namesakes,
    owner_record,
)
from nbkeeper.worker.followups import (
    FAILED_STATES,
    FOLLOW_DEADLINES,
    follow_for,
    follow_id,
    next_delay,
)
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
from nbkeeper.worker.ports import (
    TRANSIENT_ERRORS,
    CreateIntents,
    FollowUps,
    NotebookApi,
    NotebookBusyError,
    Reporter,
    Result,
    Sweeper,
)
from nbkeeper.worker.reporting import name_of, verb_of
from nbkeeper.worker.save import (
    DEFAULT_IMAGE_NAMESPACE,
    SaveRefused,
    begin_save,
    image_outcome,
    save_failed,
    saved,
)

logger = logging.getLogger(__name__)


@dataclass
class Worker:
    client: NotebookApi
    store: StateStore
    followups: FollowUps
    reporter: Reporter
    default_project_id: str
    sweeper: Sweeper | None = None
    # Without it a create never adopts an untagged namesake (only its tag or owner record count).
    intents: CreateIntents | None = None
    zone: tzinfo = UTC  # times in replies (NBKEEPER_TIMEZONE)
    image_namespace: str = DEFAULT_IMAGE_NAMESPACE  # SWR organization of saved images

    async def execute(self, command: Command, now: datetime) -> Result:
        """Run one command; permanent failures are reported, transient ones raised."""
        try:
            return await self._dispatch(command, now)
        except TRANSIENT_ERRORS:
            raise
        except ChangeRefusedError as exc:
            return self._refused(command, exc.refusal, now, refused_reason(exc))
        except WrongStateError as exc:
            if isinstance(command, NotebookCommand):
                await self._raise_if_busy(command)
            return self._refused(command, exc, now)
        except ModelArtsError as exc:
            return self._refused(command, exc, now)

    def _refused(
        self, command: Command, exc: ModelArtsError, now: datetime, reason: str | None = None
    ) -> Result:
        """A permanent refusal: the author is told (`reason`, or what ModelArts said), and the
        message is done."""
        name = name_of(command)
        why = reason if reason is not None else explain_error(exc)
        self._tell(
            command,
            render.done(f"Could not {verb_of(command)} {name}: {render.sentence(why)}", ok=False),
            now,
        )
        return Result("refused", getattr(command, "notebook_id", None), exc.kind)

    async def _raise_if_busy(self, command: NotebookCommand) -> None:
        """A refusal because the notebook is between states (an earlier command's start or stop
        still running) is not final: the command runs again after it (NotebookBusyError)."""
        try:
            notebook = await self.client.show_notebook(command.notebook_id)
        except ModelArtsError:
            return  # the refusal stands
        if notebook.status.is_transient:
            raise NotebookBusyError(
                f"{name_of(command)} stayed {notebook.status.value} while an earlier change "
                "was under way."
            )

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
            SaveCommand: self._save,
            FollowCommand: self._follow,
        }
        return await handlers[type(command)](command, now)

    async def _sweep(self, command: SweepProjectCommand, now: datetime) -> Result:
        if self.sweeper is None:
            raise RuntimeError("this worker has no lease keeper sweeper configured")
        return await self.sweeper(command, now)

    async def _start(self, command: StartCommand, now: datetime) -> Result:
        notebook = await self._start_notebook(command.notebook_id, command.hours)
        return await self._settle(command, "start", notebook, "RUNNING", now)

    async def _stop(self, command: StopCommand, now: datetime) -> Result:
        notebook = await self._stop_notebook(command.notebook_id)
        return await self._settle(command, "stop", notebook, "STOPPED", now)

    async def _start_notebook(self, notebook_id: str, hours: int | None) -> Notebook:
        """Start; a start refused while the notebook is STARTING or RUNNING was made."""
        try:
            return await self.client.start_notebook(
                notebook_id, duration_ms=hours * HOUR_MS if hours else None
            )
        except WrongStateError as exc:
            return await judge_state_change(self.client, notebook_id, exc, START_TAKEN)

    async def _stop_notebook(self, notebook_id: str) -> Notebook:
        """Stop; a stop refused while the notebook is STOPPING or STOPPED was made."""
        try:
            return await self.client.stop_notebook(notebook_id)
        except WrongStateError as exc:
            return await judge_state_change(self.client, notebook_id, exc, STOP_TAKEN)

    # ------------------------------------------------------------ create

    async def _create(self, command: CreateCommand, now: datetime) -> Result:
        project_id = self._project_id(command)
        found = await namesakes(self.client, self.store, self.intents, project_id, command)
        notebook = found.mine
        if notebook is None:
            if found.taken:
                self._tell(command, name_taken(command, found.taken), now)
                return Result("refused", found.taken[0][0].id, "name taken")
            notebook = await self._create_new(command, project_id)
        if not found.recorded:
            # First, before anything else can fail: whatever happens next, it is the author's.
            self.store.put_owner(owner_record(project_id, notebook, command, now))
        if notebook.tag(COMMAND_TAG) != command.command_id:
            await self.client.add_tags(
                notebook.id,
                {OWNER_TAG: command.requested_by.user_id, COMMAND_TAG: command.command_id},
            )
        follow = FollowCommand(
            command_id=follow_id(command.command_id, 0),
            requested_at=command.requested_at,
            requested_by=command.requested_by,
            project=command.project,
            notebook_id=notebook.id,
            notebook_name=command.name,
            origin="create",
            wait_for="RUNNING",
            attempt=1,
            deadline=now + FOLLOW_DEADLINES["create"],
        )
        return await self._check(follow, notebook, now)

    async def _create_new(self, command: CreateCommand, project_id: str) -> Notebook:
        if self.intents is not None:
            # Before the call: only a command that got this far may later adopt an untagged
            # namesake with its spec (its reply, or its owner record, was lost).
            self.intents.begin_create(command.command_id, command.name, command.requested_at)
        try:
            return await self.client.create_notebook(command.to_request())
        except AmbiguousCreateError:
            # Look again: if it was made after all it is ours; if not, SQS delivers it again.
            again = await namesakes(self.client, self.store, self.intents, project_id, command)
            if again.mine is None:
                raise
            return again.mine

    async def account_for_create(self, command: CreateCommand, now: datetime) -> str:
        """On a create's last receive: what exists (recorded as the author's, or stopped)."""
        return await account_for_failed_create(
            self.client, self.store, self.intents, self._project_id(command), command, now
        )

    # ------------------------------------------------------------ delete, update

    async def _delete(self, command: DeleteCommand, now: datetime) -> Result:
        try:
            notebook = await self.client.show_notebook(command.notebook_id)
        except NotFoundError:
            self._tell(command, render.done(f"{name_of(command)} is already gone."), now)
            return Result("done", command.notebook_id, "already gone")
        if notebook.status in (NotebookStatus.RUNNING, NotebookStatus.STARTING):
            stopped = await self._stop_notebook(command.notebook_id)
            follow = follow_for(command, "delete", "STOPPED", now, then="delete")
            return await self._check(follow, stopped, now)
        return await self._finish_delete(command, now)

    async def _finish_delete(self, command: NotebookCommand, now: datetime) -> Result:
        try:
            await self.client.delete_notebook(command.notebook_id)
        except NotFoundError:
            pass  # it was there a moment ago: this delete's first call took it, reply lost
        except WrongStateError as exc:
            await judge_delete(self.client, command.notebook_id, exc)
        self.store.delete_reservation(self._project_id(command), command.notebook_id)
        self._tell(command, render.done(f"Deleted {name_of(command)}."), now)
        return Result("done", command.notebook_id, "deleted")

    async def _update(self, command: UpdateCommand, now: datetime) -> Result:
        if command.restart:
            notebook = await self.client.show_notebook(command.notebook_id)
            if notebook.status is not NotebookStatus.STOPPED:
                stopped = await self._stop_notebook(command.notebook_id)
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
        try:
            await self.client.update_notebook(command.notebook_id, changes)
        except InvalidRequestError as exc:
            if exc.error_code not in STORAGE_NOT_GROWING_CODES:
                raise
            # The notebook has the requested size (and values): this update was made already.
            await judge_update(self.client, command.notebook_id, exc, changes)
        what = ", ".join(sorted(changes.model_dump(exclude_none=True)))
        if not restart:
            self._tell(command, render.done(f"Updated {name_of(command)} ({what})."), now)
            return Result("done", command.notebook_id, "updated")
        started = await self._start_notebook(command.notebook_id, hours)
        return await self._settle(command, "update", started, "RUNNING", now)

    # ------------------------------------------------------------ lease

    async def _prolong(self, command: ProlongCommand, now: datetime) -> Result:
        message, result = await leases.prolong(self.client, command, now, self.zone)
        self._tell(command, message, now)
        return result

    async def _keep(self, command: KeepCommand, now: datetime) -> Result:
        project_id = self._project_id(command)
        message, result = await leases.keep(
            self.client, self.store, project_id, command, now, self.zone
        )
        self._tell(command, message, now)
        return result

    # ------------------------------------------------------------ save as image

    async def _save(self, command: SaveCommand, now: datetime) -> Result:
        begun = await begin_save(self.client, command, self.image_namespace)
        if isinstance(begun, SaveRefused):
            self._tell(command, begun.message, now)
            return Result("refused", command.notebook_id, begun.detail)
        notebook, image = begun
        follow = follow_for(command, "save", "RUNNING", now, image_id=image.id, image=command.label)
        # The notebook is SNAPSHOTTING now: the first look comes after the first delay.
        return self._look_again(follow, notebook.id, f"saving, image {image.status}")

    async def _saved(self, follow: FollowCommand, notebook: Notebook, now: datetime) -> Result:
        """The notebook runs again: done once the image is ACTIVE (failed if it failed)."""
        image: ImageDetail | None = None
        if follow.image_id is not None:
            image = await show_image(self.client, follow.image_id)
        outcome = "ready" if image is None else image_outcome(image)
        if outcome == "ready":
            self._tell(follow, saved(follow), now)
            return Result("done", notebook.id, "saved")
        assert image is not None
        if outcome == "failed":
            self._tell(follow, save_failed(follow, image, notebook), now)
            return Result("failed", notebook.id, f"image {image.status}")
        if now >= follow.deadline:
            return self._gave_up(follow, f"The image {follow.image} is still {image.status}", now)
        return self._look_again(follow, notebook.id, f"image {image.status}")

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
        if (
            follow.then == "update"
            and follow.changes is not None
            and status in START_TAKEN
            and has_changes(notebook, follow.changes)
        ):
            # Updated and started already (the look that did it died before its next one was
            # scheduled): follow the start instead of waiting for a stop that will not come.
            started = follow.model_copy(update={"wait_for": "RUNNING", "then": "report"})
            return await self._check(started, notebook, now)
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
            return self._gave_up(follow, f"{name_of(follow)} is still {status.value}", now)
        return self._look_again(follow, notebook.id, status.value)

    def _gave_up(self, follow: FollowCommand, still: str, now: datetime) -> Result:
        minutes = int((now - follow.requested_at).total_seconds() // 60)
        self._tell(
            follow,
            render.done(
                f"{still} after {minutes} minutes; I stopped watching. "
                "`/nb status` shows how it is doing.",
                ok=False,
            ),
            now,
        )
        return Result("failed", follow.notebook_id, "timed out")

    def _look_again(self, follow: FollowCommand, notebook_id: str, seen: str) -> Result:
        delay = next_delay(follow.attempt)
        following = follow.model_copy(
            update={
                "attempt": follow.attempt + 1,
                "command_id": follow_id(follow.command_id, follow.attempt),
                "notebook_id": notebook_id,
            }
        )
        self.followups.schedule(following, delay)
        return Result("following", notebook_id, f"{seen}, next look in {delay} s")

    async def _reached(self, follow: FollowCommand, notebook: Notebook, now: datetime) -> Result:
        if follow.origin == "save":
            return await self._saved(follow, notebook, now)
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
