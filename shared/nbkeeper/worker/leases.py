"""Prolong and keep: a lease renewed now, and a reservation with the lease stretched to match.

Each returns what to tell the author and the worker's Result; the Worker reports it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from nbkeeper.commands import KeepCommand, ProlongCommand
from nbkeeper.modelarts.schemas import HOUR_MS, LEASE_MAX_MS, NotebookStatus
from nbkeeper.records import Reservation, StateStore
from nbkeeper.slack import render
from nbkeeper.slack.render import Message
from nbkeeper.timefmt import from_ms, local_time, to_ms
from nbkeeper.worker.ports import NotebookApi, Result
from nbkeeper.worker.reporting import name_of


async def prolong(
    client: NotebookApi, command: ProlongCommand, now: datetime, zone: tzinfo
) -> tuple[Message, Result]:
    lease = await client.renew_lease(command.notebook_id, command.hours * HOUR_MS)
    until = now + timedelta(hours=command.hours)
    if lease is not None and lease.deadline_ms is not None:
        until = from_ms(lease.deadline_ms)
    when = local_time(until, zone, date=True)
    message = render.done(f"{name_of(command)} now runs until {when}.")
    return message, Result("done", command.notebook_id, "prolonged")


async def keep(
    client: NotebookApi,
    store: StateStore,
    project_id: str,
    command: KeepCommand,
    now: datetime,
    zone: tzinfo,
) -> tuple[Message, Result]:
    """Record the reservation first (the keeper honours it even if the lease call fails), then
    stretch a running notebook's lease to reach it."""
    store.put_reservation(
        Reservation(
            project_id=project_id,
            notebook_id=command.notebook_id,
            until=command.until,
            by_user=command.requested_by.user_id,
        )
    )
    note = ""
    notebook = await client.show_notebook(command.notebook_id)
    lease = notebook.lease
    deadline = lease.deadline_ms if lease else None
    until_ms = to_ms(command.until)
    if notebook.status is NotebookStatus.RUNNING and (deadline is None or deadline < until_ms):
        wanted = until_ms - to_ms(now)
        duration = min(max(wanted, HOUR_MS), LEASE_MAX_MS)
        await client.renew_lease(command.notebook_id, duration)
        note = " Its lease was extended to match."
    elif notebook.status is not NotebookStatus.RUNNING:
        note = f" It is {notebook.status.value}; the reservation only prevents stops."
    message = render.done(
        f"Keeping {name_of(command)} alive until {local_time(command.until, zone, date=True)}; "
        f"the lease keeper will not stop it before then.{note}"
    )
    return message, Result("done", command.notebook_id, "reserved")
