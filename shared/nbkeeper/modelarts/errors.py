"""Typed ModelArts errors. The client raises these; the edges translate them for people."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import pydantic

NOT_FOUND_CODES = frozenset({"ModelArts.6309", "ModelArts.6404"})
WRONG_STATE_CODES = frozenset(
    {
        "ModelArts.6304",
        "ModelArts.6305",
        "ModelArts.6306",
        "ModelArts.6307",
        "ModelArts.6308",
        "ModelArts.6327",
        "ModelArts.6333",
        "ModelArts.6347",
        "ModelArts.6357",
        "ModelArts.6326",
    }
)
# "storage can only grow" (an InvalidRequestError): also what a repeated update that grew the
# storage is told, so the worker reads the notebook before calling it a refusal.
STORAGE_NOT_GROWING_CODES = frozenset({"ModelArts.6331"})
THROTTLE_CODES = frozenset(
    {"ModelArts.2799", "ModelArts.4206", "ModelArts.4395", "ModelArts.6101", "APIG.0308"}
)
UNAUTHORIZED_CODES = frozenset({"APIG.0301", "APIG.0303", "APIG.0305", "ModelArts.6401"})
FORBIDDEN_CODES = frozenset({"ModelArts.6407", "ModelArts.6328"})
QUOTA_CODES = frozenset(
    {"ModelArts.0113", "ModelArts.0118", "ModelArts.6302", "ModelArts.6329", "ModelArts.6360"}
)


MAX_MESSAGE = 500
_SECRET_HEADER = re.compile(
    r"(?i)\b(x-security-token|x-auth-token|authorization)(\s*[:=]\s*)[^|\n\r,}\"]*"
)
_SECRET_FIELD = re.compile(
    r"(?i)(\"(?:token|sk|secret|secret_key|security_token|securitytoken|password)\"\s*:\s*\")[^\"]*"
)


class ModelArtsError(Exception):
    """Any failure talking to ModelArts. Carries the service's code and request id when known."""

    kind: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [self.message]
        if self.error_code:
            parts.append(f"[{self.error_code}]")
        if self.status_code:
            parts.append(f"(HTTP {self.status_code})")
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        return " ".join(parts)


class InvalidRequestError(ModelArtsError):
    """The request broke a documented rule (ours before sending, or the service's 400)."""

    kind = "invalid request"


class NotFoundError(ModelArtsError):
    """The notebook does not exist (404, or 400 with ModelArts.6309/6404)."""

    kind = "not found"


class WrongStateError(ModelArtsError):
    """The notebook's state forbids the operation, or another operation is under way."""

    kind = "wrong state"


class ThrottledError(ModelArtsError):
    """429 or a throttling code; `retry_after` in seconds when the service said."""

    kind = "throttled"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, error_code=error_code, request_id=request_id
        )
        self.retry_after = retry_after


class UnauthorizedError(ModelArtsError):
    """Bad or expired credentials, or a signature the gateway rejected."""

    kind = "unauthorized"


class ForbiddenError(ModelArtsError):
    """Authenticated, but not allowed."""

    kind = "forbidden"


class QuotaError(ModelArtsError):
    """Quota, instance limit or capacity exhausted."""

    kind = "quota exceeded"


class ServerError(ModelArtsError):
    """The service failed (5xx)."""

    kind = "server error"


class TransportError(ModelArtsError):
    """The request did not complete: connection refused or dropped, or a timeout."""

    kind = "transport error"


class AmbiguousCreateError(ModelArtsError):
    """A create may or may not have happened (the connection dropped after sending).

    Not retried blindly: the caller must look the notebook up by name before trying again.
    """

    kind = "ambiguous create"


def classify(
    status_code: int,
    error_code: str | None,
    message: str,
    request_id: str | None,
    retry_after: float | None = None,
) -> ModelArtsError:
    """Map an HTTP status and Huawei error code to the right exception type."""
    code = error_code or ""
    if status_code == 429 or code in THROTTLE_CODES:
        return ThrottledError(
            message,
            retry_after=retry_after,
            status_code=status_code,
            error_code=error_code,
            request_id=request_id,
        )
    error_type: type[ModelArtsError]
    if status_code == 404 or code in NOT_FOUND_CODES:
        error_type = NotFoundError
    elif code in WRONG_STATE_CODES or status_code == 409:
        error_type = WrongStateError
    elif status_code == 401 or code in UNAUTHORIZED_CODES:
        error_type = UnauthorizedError
    elif status_code == 403 or code in FORBIDDEN_CODES:
        error_type = ForbiddenError
    elif code in QUOTA_CODES:
        error_type = QuotaError
    elif status_code >= 500:
        error_type = ServerError
    else:
        error_type = InvalidRequestError
    return error_type(
        message, status_code=status_code, error_code=error_code, request_id=request_id
    )


def describe_validation_error(exc: pydantic.ValidationError) -> str:
    """One line per problem, `field: what is wrong`, for replies a person reads."""
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "input"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{location}: {message}")
    return "; ".join(lines)


def redact(text: str) -> str:
    """Mask credential-looking values a service may echo back (e.g. APIG.0303's canonical request)."""
    text = _SECRET_HEADER.sub(r"\1\2***", text)
    return _SECRET_FIELD.sub(r"\1***", text)


def parse_error_body(text: str) -> tuple[str | None, str]:
    """(code, message) from a Huawei error body, accepting the variants the SDK accepts."""
    try:
        data = json.loads(text)
    except ValueError:
        return None, text.strip()
    if isinstance(data, dict):
        found = _find_error(data, depth=0)
        if found:
            return found
    return None, text.strip()


def _find_error(data: Mapping[str, Any], depth: int) -> tuple[str | None, str] | None:
    for code_key, msg_key in (
        ("error_code", "error_msg"),
        ("errorCode", "errorMsg"),
        ("code", "message"),
    ):
        if code_key in data and msg_key in data:
            code = data[code_key]
            return (str(code) if code is not None else None), str(data[msg_key] or "")
    if depth < 4:
        for value in data.values():
            if isinstance(value, dict):
                found = _find_error(value, depth + 1)
                if found:
                    return found
    for code_key in ("error_code", "errorCode"):
        code = data.get(code_key)
        if isinstance(code, str):
            return code, ""
    return None


def error_from_reply(
    status_code: int, body: str, request_id: str | None, retry_after: float | None = None
) -> ModelArtsError:
    """The typed error for an error reply: code and message from the body, secrets masked."""
    code, message = parse_error_body(body)
    message = redact(message)[:MAX_MESSAGE] or f"HTTP {status_code}"
    return classify(status_code, code, message, request_id, retry_after)
