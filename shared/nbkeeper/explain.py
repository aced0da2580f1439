"""The one place errors become sentences for people (no secrets, no stack traces).

The sentences are plain text: whoever puts one into Slack mrkdwn escapes it there
(`nbkeeper.slack.render.fit`), like any other text nbkeeper did not write.
"""

from __future__ import annotations

import logging
import re

import pydantic

from nbkeeper.modelarts.errors import (
    ForbiddenError,
    ModelArtsError,
    UnauthorizedError,
    describe_validation_error,
)

logger = logging.getLogger(__name__)

CREDENTIALS_REFUSED = "ModelArts refused nbkeeper's credentials; tell an admin."
# What looks like an access key id (Huawei AKs are 20 upper-case letters and digits).
_KEY_LIKE = re.compile(r"\b[A-Z0-9]{16,}\b")


def explain_error(exc: Exception) -> str:
    """The one place domain errors become sentences for people (no secrets, no stack)."""
    if isinstance(exc, pydantic.ValidationError):
        return describe_validation_error(exc)
    if isinstance(exc, ModelArtsError):
        if credentials_refused(exc):
            # The gateway's text can echo the access key id: it stays in the logs.
            logger.warning(
                "ModelArts refused nbkeeper's credentials",
                extra={
                    "status": exc.status_code,
                    "error_code": exc.error_code,
                    "request_id": exc.request_id,
                    "detail": _KEY_LIKE.sub("***", exc.message),
                },
            )
            return CREDENTIALS_REFUSED
        hints = {
            "not found": "it may have been deleted; `/nb list all` shows what exists.",
            "wrong state": "its current state does not allow that; `/nb status` shows it.",
            "throttled": "ModelArts is busy; try again in a minute.",
            "quota exceeded": "the quota or capacity is exhausted; try another flavor or later.",
            "server error": "ModelArts failed; try again later.",
            "transport error": "ModelArts did not answer; try again later.",
        }
        code = f" ({exc.error_code})" if exc.error_code else ""
        hint = hints.get(exc.kind, "")
        return f"ModelArts said: {exc.message}{code}. {hint}".strip()
    return "something went wrong inside nbkeeper; an admin can find the details in its logs."


def credentials_refused(exc: ModelArtsError) -> bool:
    """A 401/403: nbkeeper's key was refused, or its IAM user may not do this."""
    return isinstance(exc, UnauthorizedError | ForbiddenError) or exc.status_code in (401, 403)


def failure_note(exc: ModelArtsError) -> str:
    """A failed ModelArts call as a short note (audit records, the keeper's pass summary)."""
    if credentials_refused(exc):
        return f"{exc.kind}: {explain_error(exc)}"
    return f"{exc.kind}: {exc}"
