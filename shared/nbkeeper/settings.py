"""Configuration contract: environment variables -> validated settings, once at cold start.

Nothing here reads `os.environ` itself: handlers pass it in (`load_settings(MySettings,
os.environ)`), so tests pass plain dicts. Each function's settings model subclasses
`SettingsModel` (or `ModelArtsSettings`) and names its variables with `env(...)`.

Variables (ModelArts):
- `MODELARTS_REGION`, `MODELARTS_PROJECT_ID` (required); `MODELARTS_ENDPOINT` (optional override,
  e.g. the local emulator); else `HUAWEICLOUD_SDK_REGION_MODELARTS_<REGION>` as the SDK honours it.
- Credentials, exactly one source: `HUAWEICLOUD_SDK_AK` + `HUAWEICLOUD_SDK_SK` (+ optional
  `HUAWEICLOUD_SDK_SECURITY_TOKEN`) for local runs; `HUAWEICLOUD_CREDENTIALS_SECRET` (a Secrets
  Manager secret `{"ak": ..., "sk": ...}`, read through Powertools Parameters and cached) in
  production; or `MODELARTS_IAM_TOKEN` (sent as `X-Auth-Token`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nbkeeper.modelarts.regions import UnknownRegionError, endpoint_for

if TYPE_CHECKING:
    import httpx

    from nbkeeper.modelarts.auth import Credentials
    from nbkeeper.modelarts.client import AsyncModelArtsClient

S = TypeVar("S", bound="SettingsModel")
SecretLoader = Callable[[str], Any]

CREDENTIALS_CACHE_SECONDS = 300
_REGION = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")
_PROJECT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SettingsError(RuntimeError):
    """Configuration is missing or wrong. `problems` has one actionable line per variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n- " + "\n- ".join(problems))


def env(name: str, hint: str, **kwargs: Any) -> Any:
    """A settings field read from environment variable `name`; `hint` says how to fix it."""
    return Field(alias=name, description=hint, **kwargs)


class SettingsModel(BaseModel):
    """Base for every function's settings: read by alias, other variables ignored, immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


def load_settings(model_cls: type[S], environ: Mapping[str, str]) -> S:
    """Validate `environ` into `model_cls`; raise `SettingsError` naming each bad variable.

    Blank values count as unset (templates often pass empty parameters).
    """
    values = {key: value.strip() for key, value in environ.items() if value and value.strip()}
    try:
        return model_cls.model_validate(values, context={"environ": environ})
    except ValidationError as exc:
        raise SettingsError(_problems(model_cls, exc)) from None


def _problems(model_cls: type[SettingsModel], exc: ValidationError) -> list[str]:
    hints = {
        field.alias or name: field.description or ""
        for name, field in model_cls.model_fields.items()
    }
    problems = []
    for error in exc.errors(include_input=False):
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:
            problems.append(message)
            continue
        variable = str(error["loc"][0])
        hint = hints.get(variable, "")
        if error["type"] == "missing":
            problems.append(f"{variable} is not set: {hint}".rstrip(": "))
        else:
            problems.append(f"{variable} is invalid: {message}. {hint}".rstrip(". ") + ".")
    return problems


DEFAULT_POLICY_PATH = Path(__file__).resolve().parent / "keeper" / "policy.yaml"


class PolicySettings(SettingsModel):
    """Where the policy is: the file shipped in the layer, and the operator's SSM overlay."""

    policy_path: str = env(
        "POLICY_PATH",
        "path of the policy YAML file (default: the policy.yaml shipped in the shared layer)",
        default=str(DEFAULT_POLICY_PATH),
    )
    policy_parameter: str | None = env(
        "POLICY_PARAMETER", "optional: SSM parameter holding a YAML policy overlay", default=None
    )


class ModelArtsSettings(SettingsModel):
    """Where ModelArts is and how to authenticate. Secrets are `SecretStr` (hidden in repr)."""

    region: str = env(
        "MODELARTS_REGION", "set it to the ModelArts region id, e.g. cn-north-4 or ap-southeast-3"
    )
    project_id: str = env(
        "MODELARTS_PROJECT_ID",
        "set it to the project id of that region (IAM console > My Credentials > Projects)",
    )
    endpoint: str | None = env(
        "MODELARTS_ENDPOINT",
        "optional: set it to an http(s) URL such as http://127.0.0.1:8765 to override the "
        "region's endpoint",
        default=None,
    )
    ak: SecretStr | None = env(
        "HUAWEICLOUD_SDK_AK", "set it to the access key id (with HUAWEICLOUD_SDK_SK)", default=None
    )
    sk: SecretStr | None = env(
        "HUAWEICLOUD_SDK_SK",
        "set it to the secret access key (with HUAWEICLOUD_SDK_AK)",
        default=None,
    )
    security_token: SecretStr | None = env(
        "HUAWEICLOUD_SDK_SECURITY_TOKEN",
        "optional: the security token of temporary AK/SK credentials",
        default=None,
    )
    credentials_secret: str | None = env(
        "HUAWEICLOUD_CREDENTIALS_SECRET",
        'set it to the name or ARN of a Secrets Manager secret holding {"ak": ..., "sk": ...}',
        default=None,
    )
    iam_token: SecretStr | None = env(
        "MODELARTS_IAM_TOKEN", "optional: an IAM token sent as X-Auth-Token", default=None
    )

    @field_validator("region")
    @classmethod
    def _region_shape(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError(f"{value!r} does not look like a region id")
        return value

    @field_validator("project_id")
    @classmethod
    def _project_shape(cls, value: str) -> str:
        if not _PROJECT_ID.match(value):
            raise ValueError("use the 32-character project id (letters, digits, '-' or '_')")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must start with http:// or https:// followed by a host")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> ModelArtsSettings:
        sources = [
            name
            for name, present in (
                ("HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK", self.ak or self.sk),
                ("HUAWEICLOUD_CREDENTIALS_SECRET", self.credentials_secret),
                ("MODELARTS_IAM_TOKEN", self.iam_token),
            )
            if present
        ]
        if not sources:
            raise ValueError(
                "no ModelArts credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK (local "
                "runs), or HUAWEICLOUD_CREDENTIALS_SECRET (production), or MODELARTS_IAM_TOKEN"
            )
        if len(sources) > 1:
            raise ValueError(
                f"credentials come from more than one source ({', '.join(sources)}); keep one"
            )
        if bool(self.ak) != bool(self.sk):
            missing = "HUAWEICLOUD_SDK_SK" if self.ak else "HUAWEICLOUD_SDK_AK"
            raise ValueError(f"{missing} is not set: AK and SK go together")
        if self.security_token and not self.ak:
            raise ValueError(
                "HUAWEICLOUD_SDK_SECURITY_TOKEN is set without HUAWEICLOUD_SDK_AK/SK: set the "
                "temporary AK and SK it belongs to"
            )
        if self.endpoint is None:
            environ = (info.context or {}).get("environ") or {}
            try:
                resolved = endpoint_for(self.region, environ)
            except UnknownRegionError as exc:
                raise ValueError(f"MODELARTS_REGION: {exc}, or set MODELARTS_ENDPOINT") from None
            object.__setattr__(self, "endpoint", resolved)
        return self

    @property
    def resolved_endpoint(self) -> str:
        """The override, or the region's endpoint as the SDK resolves it."""
        return self.endpoint or endpoint_for(self.region, {})

    def auth(self, secret_loader: SecretLoader | None = None) -> httpx.Auth:
        """The httpx auth flow for these settings (fetches the credentials secret if configured)."""
        from nbkeeper.modelarts.auth import Credentials, SignerAuth, TokenAuth

        if self.iam_token is not None:
            return TokenAuth(self.iam_token.get_secret_value(), project_id=self.project_id)
        if self.ak is not None and self.sk is not None:
            credentials = Credentials(
                self.ak.get_secret_value(),
                self.sk.get_secret_value(),
                self.security_token.get_secret_value() if self.security_token else None,
            )
        else:
            assert self.credentials_secret is not None  # guaranteed by _resolve
            credentials = _credentials_from_secret(self.credentials_secret, secret_loader)
        return SignerAuth(credentials, project_id=self.project_id)


def powertools_secret_loader(name: str) -> Any:
    """Read a JSON secret through Powertools Parameters, cached for a few minutes."""
    from aws_lambda_powertools.utilities.parameters import get_secret

    return get_secret(name, transform="json", max_age=CREDENTIALS_CACHE_SECONDS)


def secret_field(variable: str, name: str, field: str, loader: SecretLoader | None = None) -> str:
    """One string field of the JSON secret `name` (named by env `variable`), or a SettingsError
    that says which variable, which secret and what it must hold."""
    try:
        value = (loader or powertools_secret_loader)(name)
    except Exception as exc:  # the loader's errors vary (boto, transform); name the variable
        raise SettingsError(
            [
                f"{variable}: cannot read secret {name!r} ({type(exc).__name__}); check its name "
                "and the function's secretsmanager:GetSecretValue permission"
            ]
        ) from exc
    found = value.get(field) if isinstance(value, Mapping) else None
    if not isinstance(found, str) or not found:
        raise SettingsError(
            [f'{variable}: secret {name!r} must be JSON with a non-empty "{field}" string']
        )
    return found


def _credentials_from_secret(name: str, loader: SecretLoader | None) -> Credentials:
    from nbkeeper.modelarts.auth import Credentials

    try:
        value = (loader or powertools_secret_loader)(name)
    except Exception as exc:  # the loader's errors vary (boto, transform); name the variable
        raise SettingsError(
            [
                f"HUAWEICLOUD_CREDENTIALS_SECRET: cannot read secret {name!r} "
                f"({type(exc).__name__}); check its name and the function's "
                "secretsmanager:GetSecretValue permission"
            ]
        ) from exc
    if not isinstance(value, Mapping):
        raise SettingsError(
            [
                f'HUAWEICLOUD_CREDENTIALS_SECRET: secret {name!r} must be JSON {{"ak": ..., "sk": ...}}'
            ]
        )
    missing = [key for key in ("ak", "sk") if not isinstance(value.get(key), str) or not value[key]]
    if missing:
        raise SettingsError(
            [
                f"HUAWEICLOUD_CREDENTIALS_SECRET: secret {name!r} lacks "
                f'{" and ".join(repr(k) for k in missing)}; store {{"ak": ..., "sk": ...}}'
            ]
        )
    token = value.get("security_token")
    return Credentials(
        value["ak"], value["sk"], token if isinstance(token, str) and token else None
    )


def build_client(
    settings: ModelArtsSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    secret_loader: SecretLoader | None = None,
    **options: Any,
) -> AsyncModelArtsClient:
    """An `AsyncModelArtsClient` for `settings`; `options` go to its constructor (retry, ...)."""
    from nbkeeper.modelarts.client import AsyncModelArtsClient

    return AsyncModelArtsClient(
        settings.resolved_endpoint,
        settings.project_id,
        settings.auth(secret_loader),
        transport=transport,
        **options,
    )
