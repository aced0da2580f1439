"""DynamoDB backends: the state store and the response_url ledger share one table.

Layout (single table, `pk`/`sk` strings, TTL attribute `expires_at` in epoch seconds):

| item        | pk                    | sk                          | TTL                       |
|-------------|-----------------------|-----------------------------|---------------------------|
| owner       | PROJECT#{project_id}  | OWNER#{notebook_id}         | none                      |
| reservation | PROJECT#{project_id}  | RES#{notebook_id}           | a day after `until`       |
| warning     | PROJECT#{project_id}  | WARN#{notebook_id}          | a day after `stop_after`  |
| audit       | AUDIT#{project_id}#{YYYY-MM-DD} | {iso time}#{notebook_id}#{action} | 90 days |
| response_url posts | RESPURL#{sha256(url)[:40]} | RESPURL            | a day after the command   |
| create intent | COMMAND#{command_id} | CREATE                    | 14 days (the DLQ's life)  |
| response_url | COMMAND#{command_id}  | RESPURL                     | 30 minutes (Slack's limit) |
| said once    | COMMAND#{command_id}  | ONCE                        | a day                     |
| dead letter told | DEADLETTER#{message_id} | TOLD                   | 14 days (the DLQ's life)  |

Everything the keeper needs for one project is in one partition, so a pass reads it with a single
paged Query per project. DynamoDB deletes TTL'd items up to two days late, so readers also filter
on the timestamps themselves.

Both classes take a boto3 Table resource built by the caller, at the edge (moto in tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from nbkeeper.records import (
    AUDIT_RETENTION,
    TTL_GRACE,
    AuditRecord,
    NotebookState,
    Owner,
    PendingWarning,
    ProjectState,
    Reservation,
)
from nbkeeper.slack.api import RESPONSE_URL_LIFETIME, RESPONSE_URL_MAX_POSTS, response_url_key

COMMAND = "COMMAND#"
DEAD_LETTER = "DEADLETTER#"
INTENT_RETENTION = timedelta(days=14)  # a DLQ message can be redriven for as long
OWNER = "OWNER#"
RESERVATION = "RES#"
WARNING = "WARN#"


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _from_epoch(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


class DynamoStateStore:
    """StateStore over a boto3 DynamoDB Table resource (created by the caller, at the edge)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    @staticmethod
    def _project_pk(project_id: str) -> str:
        return f"PROJECT#{project_id}"

    def load_project(self, project_id: str, now: datetime) -> ProjectState:
        from boto3.dynamodb.conditions import Key

        state = ProjectState()
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(self._project_pk(project_id)),
        }
        while True:
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                self._absorb(state, project_id, item, now)
            if "LastEvaluatedKey" not in page:
                return state
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @staticmethod
    def _absorb(state: ProjectState, project_id: str, item: dict[str, Any], now: datetime) -> None:
        sk: str = item["sk"]
        prefix, _, notebook_id = sk.partition("#")
        base = {"project_id": project_id, "notebook_id": notebook_id}
        if prefix + "#" == OWNER:
            state.owners[notebook_id] = Owner(
                **base,
                user_id=item["user_id"],
                team_id=item.get("team_id"),
                notebook_name=item.get("notebook_name"),
                created_at=_from_epoch(item["created_at"]),
                command_id=item.get("command_id"),
            )
        elif prefix + "#" == RESERVATION:
            reservation = Reservation(
                **base,
                until=_from_epoch(item["until"]),
                by_user=item["by_user"],
                note=item.get("note"),
            )
            if reservation.active(now):
                state.reservations[notebook_id] = reservation
        elif prefix + "#" == WARNING:
            warning = PendingWarning(
                **base,
                kind=item["kind"],
                warned_at=_from_epoch(item["warned_at"]),
                stop_after=_from_epoch(item["stop_after"]),
                channel=item.get("channel"),
                message_ts=item.get("message_ts"),
            )
            if now < warning.stop_after + TTL_GRACE:
                state.warnings[notebook_id] = warning

    def load_notebook(self, project_id: str, notebook_id: str, now: datetime) -> NotebookState:
        """Two strongly consistent GetItems: a write acknowledged before this read is seen (the
        pass's Query is eventually consistent, and a Keep may land during the pass)."""
        state = ProjectState()
        for prefix in (RESERVATION, WARNING):
            reply = self._table.get_item(
                Key={"pk": self._project_pk(project_id), "sk": prefix + notebook_id},
                ConsistentRead=True,
            )
            if reply.get("Item"):
                self._absorb(state, project_id, reply["Item"], now)
        return NotebookState(
            reservation=state.reservations.get(notebook_id),
            warning=state.warnings.get(notebook_id),
        )

    def get_owner(self, project_id: str, notebook_id: str) -> Owner | None:
        reply = self._table.get_item(
            Key={"pk": self._project_pk(project_id), "sk": OWNER + notebook_id}
        )
        item = reply.get("Item")
        if not item:
            return None
        state = ProjectState()
        self._absorb(state, project_id, item, datetime.now(UTC))
        return state.owners.get(notebook_id)

    def put_owner(self, owner: Owner) -> None:
        self._table.put_item(
            Item=_without_none(
                {
                    "pk": self._project_pk(owner.project_id),
                    "sk": OWNER + owner.notebook_id,
                    "user_id": owner.user_id,
                    "team_id": owner.team_id,
                    "notebook_name": owner.notebook_name,
                    "created_at": _epoch(owner.created_at),
                    "command_id": owner.command_id,
                }
            )
        )

    def put_reservation(self, reservation: Reservation) -> None:
        self._table.put_item(
            Item=_without_none(
                {
                    "pk": self._project_pk(reservation.project_id),
                    "sk": RESERVATION + reservation.notebook_id,
                    "until": _epoch(reservation.until),
                    "by_user": reservation.by_user,
                    "note": reservation.note,
                    "expires_at": _epoch(reservation.until + TTL_GRACE),
                }
            )
        )

    def delete_reservation(self, project_id: str, notebook_id: str) -> None:
        self._table.delete_item(
            Key={"pk": self._project_pk(project_id), "sk": RESERVATION + notebook_id}
        )

    def put_warning(self, warning: PendingWarning) -> None:
        self._table.put_item(
            Item=_without_none(
                {
                    "pk": self._project_pk(warning.project_id),
                    "sk": WARNING + warning.notebook_id,
                    "kind": warning.kind,
                    "warned_at": _epoch(warning.warned_at),
                    "stop_after": _epoch(warning.stop_after),
                    "channel": warning.channel,
                    "message_ts": warning.message_ts,
                    "expires_at": _epoch(warning.stop_after + TTL_GRACE),
                }
            )
        )

    def delete_warning(self, project_id: str, notebook_id: str) -> None:
        self._table.delete_item(
            Key={"pk": self._project_pk(project_id), "sk": WARNING + notebook_id}
        )

    def record_audit(self, records: Iterable[AuditRecord]) -> None:
        with self._table.batch_writer() as batch:
            for record in records:
                at = record.at.astimezone(UTC)
                batch.put_item(
                    Item={
                        "pk": f"AUDIT#{record.project_id}#{at.date().isoformat()}",
                        "sk": f"{at.isoformat()}#{record.notebook_id}#{record.action}",
                        "record": record.model_dump_json(),
                        "expires_at": _epoch(at + AUDIT_RETENTION),
                    }
                )

    def list_audit(self, project_id: str, day: datetime) -> list[AuditRecord]:
        from boto3.dynamodb.conditions import Key

        pk = f"AUDIT#{project_id}#{day.astimezone(UTC).date().isoformat()}"
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(pk)}
        records: list[AuditRecord] = []
        while True:
            page = self._table.query(**kwargs)
            records += [AuditRecord.model_validate_json(i["record"]) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return records
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _without_none(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v is not None}


class DynamoLedger:
    """The ledger as one counter item per response_url in the state table (hashed, with TTL)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def claim(self, url: str, issued_at: datetime, already_used: int = 0) -> bool:
        errors = self._table.meta.client.exceptions
        try:
            self._table.update_item(
                Key={"pk": f"RESPURL#{response_url_key(url)}", "sk": "RESPURL"},
                UpdateExpression="ADD posts :one SET expires_at = :ttl",
                ConditionExpression="attribute_not_exists(posts) OR posts < :max",
                ExpressionAttributeValues={
                    ":one": 1,
                    ":max": RESPONSE_URL_MAX_POSTS - already_used,
                    ":ttl": int((issued_at + timedelta(days=1)).timestamp()),
                },
            )
        except errors.ConditionalCheckFailedException:
            return False
        return True


class ItemWriter:
    """`put_item(Item=...)` of a boto3 Table, over the low-level client (plain Python values
    serialized as the resource would)."""

    def __init__(self, client: Any, table_name: str) -> None:
        from boto3.dynamodb.types import TypeSerializer

        self._client = client
        self._table_name = table_name
        self._serialize = TypeSerializer().serialize

    def put_item(self, *, Item: dict[str, Any], **options: Any) -> None:  # the Table's keywords
        item = {key: self._serialize(value) for key, value in Item.items()}
        self._client.put_item(TableName=self._table_name, Item=item, **options)


class DynamoCommandLog:
    """Per-command notes in the state table: which creates got as far as calling ModelArts, the
    command's response_url (a credential: kept here for its 30 minutes, never in a queue), and
    which dead letters' authors were told (`nbkeeper.worker.deadletters.ToldLedger`)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def begin_create(self, command_id: str, name: str, at: datetime) -> None:
        self._table.put_item(
            Item={
                "pk": COMMAND + command_id,
                "sk": "CREATE",
                "name": name,
                "at": _epoch(at),
                "expires_at": _epoch(at + INTENT_RETENTION),
            }
        )

    def create_begun(self, command_id: str) -> bool:
        reply = self._table.get_item(
            Key={"pk": COMMAND + command_id, "sk": "CREATE"}, ConsistentRead=True
        )
        return bool(reply.get("Item"))

    def put_response_url(self, command_id: str, url: str, issued_at: datetime) -> None:
        self._table.put_item(
            Item={
                "pk": COMMAND + command_id,
                "sk": "RESPURL",
                "url": url,
                "expires_at": _epoch(issued_at + RESPONSE_URL_LIFETIME),
            }
        )

    def response_url(self, command_id: str, now: datetime) -> str | None:
        """The command's response_url while Slack still accepts it (TTL deletes it days late)."""
        item = self._table.get_item(Key={"pk": COMMAND + command_id, "sk": "RESPURL"}).get("Item")
        if not item or _from_epoch(item["expires_at"]) <= now:
            return None
        return str(item["url"])

    def first_time(self, command_id: str, at: datetime) -> bool:
        """True the first time for `command_id` within a day (a conditional write)."""
        from botocore.exceptions import ClientError

        try:
            self._table.put_item(
                Item={
                    "pk": COMMAND + command_id,
                    "sk": "ONCE",
                    "expires_at": _epoch(at + TTL_GRACE),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def note_told(self, message_id: str, how: str, at: datetime) -> None:
        self._table.put_item(
            Item={
                "pk": DEAD_LETTER + message_id,
                "sk": "TOLD",
                "how": how,
                "at": _epoch(at),
                "expires_at": _epoch(at + INTENT_RETENTION + TTL_GRACE),
            }
        )

    def told(self, message_id: str) -> bool:
        reply = self._table.get_item(
            Key={"pk": DEAD_LETTER + message_id, "sk": "TOLD"}, ConsistentRead=True
        )
        return bool(reply.get("Item"))
