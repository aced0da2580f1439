"""The one place errors become sentences for people (no secrets, no stack traces)."""

from __future__ import annotations

import pydantic

from nbkeeper.modelarts.errors import ModelArtsError, describe_validation_error


def explain_error(exc: Exception) -> str:
    """The one place domain errors become sentences for people (no secrets, no stack)."""
    if isinstance(exc, pydantic.ValidationError):
        return describe_validation_error(exc)
    if isinstance(exc, ModelArtsError):
        hints = {
            "not found": "it may have been deleted; `/nb list all` shows what exists.",
            "wrong state": "its current state does not allow that; `/nb status` shows it.",
            "throttled": "ModelArts is busy; try again in a minute.",
            "quota exceeded": "the quota or capacity is exhausted; try another flavor or later.",
            "server error": "ModelArts failed; try again later.",
            "transport error": "ModelArts did not answer; try again later.",
            "unauthorized": "nbkeeper's ModelArts credentials were refused; tell an admin.",
            "forbidden": "nbkeeper is not allowed to do that in ModelArts; tell an admin.",
        }
        code = f" ({exc.error_code})" if exc.error_code else ""
        hint = hints.get(exc.kind, "")
        return f"ModelArts said: {exc.message}{code}. {hint}".strip()
    return "something went wrong inside nbkeeper; an admin can find the details in its logs."
