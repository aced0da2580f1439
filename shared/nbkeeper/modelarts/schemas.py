"""Pydantic models for the ModelArts notebook API (v1).

Requests enforce the documented constraints before any network call, with messages a person can
act on. Responses accept fields the docs do not list and the documented case variants
(`timing`/`TIMING`, `evs`/`EVS`). The notebook `token` is a `SecretStr`: hidden in repr and logs.
"""

import re
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

HOUR_MS = 3_600_000
LEASE_MIN_MS = HOUR_MS
LEASE_MAX_MS = 72 * HOUR_MS
MAX_STORAGE_GB = 4096
MAX_ALLOWED_ACCESS_IPS = 5
NAME_MAX = 128
DESCRIPTION_MAX = 512
# The SDK also admits CJK ideographs in names; the docs say letters, digits, '-' and '_'.
# The three patterns with the CJK range stay source strings: compiling them costs more than the
# rest of the module's regexes together, and only request validation needs them, so `re.match`
# compiles each on first use (and caches it) instead of every cold start paying for it.
NAME_PATTERN = r"^[A-Za-z0-9_\-\u4e00-\u9fa5]+$"
CREATE_DESCRIPTION_FORBIDDEN = set("&<>\"'/")
UPDATE_DESCRIPTION_FORBIDDEN = set('&<>"/')
WORKSPACE_PATTERN = re.compile(r"^(0|[0-9a-z]{32})$")
UUID_PATTERN = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
TAG_KEY_PATTERN = r"^[A-Za-z0-9 _.:=+\-@\u4e00-\u9fa5]{1,128}$"
TAG_VALUE_PATTERN = r"^[A-Za-z0-9 _.:=+\-@/\u4e00-\u9fa5]{0,255}$"


class CaseInsensitiveEnum(StrEnum):
    """Accepts any letter case on input (the docs mix `timing` and `TIMING`)."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if isinstance(value, str):
            for member in cls:
                if member.value.lower() == value.lower():
                    return member
        return None


class NotebookStatus(CaseInsensitiveEnum):
    INIT = "INIT"
    CREATING = "CREATING"
    STARTING = "STARTING"
    STOPPING = "STOPPING"
    DELETING = "DELETING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SNAPSHOTTING = "SNAPSHOTTING"
    CREATE_FAILED = "CREATE_FAILED"
    START_FAILED = "START_FAILED"
    DELETE_FAILED = "DELETE_FAILED"
    ERROR = "ERROR"
    DELETED = "DELETED"
    FROZEN = "FROZEN"
    # Not a service value: a status this client does not know. Treated as transient, so the
    # keeper never acts on it, and an API addition does not crash a pass.
    UNKNOWN = "UNKNOWN"

    @classmethod
    def _missing_(cls, value: object) -> "NotebookStatus":
        return super()._missing_(value) or cls.UNKNOWN

    @property
    def is_transient(self) -> bool:
        return self in TRANSIENT_STATUSES


TRANSIENT_STATUSES = frozenset(
    {
        NotebookStatus.INIT,
        NotebookStatus.CREATING,
        NotebookStatus.STARTING,
        NotebookStatus.STOPPING,
        NotebookStatus.DELETING,
        NotebookStatus.SNAPSHOTTING,
        NotebookStatus.UNKNOWN,
    }
)


class LeaseType(CaseInsensitiveEnum):
    TIMING = "TIMING"
    IDLE = "IDLE"


class Feature(CaseInsensitiveEnum):
    DEFAULT = "DEFAULT"
    NOTEBOOK = "NOTEBOOK"


class VolumeCategory(CaseInsensitiveEnum):
    EVS = "EVS"
    EFS = "EFS"
    SFS = "SFS"
    OBS = "OBS"
    OBSFS = "OBSFS"


class VolumeOwnership(CaseInsensitiveEnum):
    MANAGED = "MANAGED"
    DEDICATED = "DEDICATED"


class EndpointService(CaseInsensitiveEnum):
    NOTEBOOK = "NOTEBOOK"
    SSH = "SSH"


class Billing(CaseInsensitiveEnum):
    COMPUTE = "COMPUTE"
    STORAGE = "STORAGE"
    ALL = "ALL"


class SortDir(CaseInsensitiveEnum):
    ASC = "ASC"
    DESC = "DESC"


# ---------------------------------------------------------------- field validators


ILLEGAL_CHARACTERS = "illegal_characters"


def _illegal_characters(rule: str, bad: list[str]) -> PydanticCustomError:
    """A name or description with forbidden characters: its own error type (ModelArts.6334)."""
    return PydanticCustomError(
        ILLEGAL_CHARACTERS, "{rule}; remove {bad}", {"rule": rule, "bad": repr("".join(bad))}
    )


def _check_name(value: str) -> str:
    if not value:
        raise ValueError("name must not be empty")
    if len(value) > NAME_MAX:
        raise ValueError(f"name is {len(value)} characters long; use at most {NAME_MAX}")
    if not re.match(NAME_PATTERN, value):
        bad = sorted({c for c in value if not re.match(NAME_PATTERN, c)})
        raise _illegal_characters("name may contain only letters, digits, '-' and '_'", bad)
    return value


def _description_checker(forbidden: set[str]) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > DESCRIPTION_MAX:
            raise ValueError(
                f"description is {len(value)} characters long; use at most {DESCRIPTION_MAX}"
            )
        bad = sorted({c for c in value if c in forbidden})
        if bad:
            raise _illegal_characters(
                f"description must not contain {' '.join(sorted(forbidden))}", bad
            )
        return value

    return AfterValidator(check)


def _check_lease_ms(value: int) -> int:
    if not LEASE_MIN_MS <= value <= LEASE_MAX_MS:
        raise ValueError(
            f"lease duration {value} ms is out of range; use 1 h to 72 h "
            f"({LEASE_MIN_MS} to {LEASE_MAX_MS} ms)"
        )
    return value


def _check_capacity(value: int) -> int:
    if not 1 <= value <= MAX_STORAGE_GB:
        raise ValueError(f"storage {value} GB is out of range; use 1 to {MAX_STORAGE_GB} GB")
    return value


def _check_image_id(value: str) -> str:
    if not UUID_PATTERN.match(value):
        raise ValueError(
            f"image_id {value!r} is not a UUID (like e1a07296-22a8-4f05-8bc8-e936c8e54090)"
        )
    return value


def _check_workspace(value: str) -> str:
    if not WORKSPACE_PATTERN.match(value):
        raise ValueError("workspace_id must be '0' or 32 lowercase letters and digits")
    return value


NotebookName = Annotated[str, AfterValidator(_check_name)]
CreateDescription = Annotated[str, _description_checker(CREATE_DESCRIPTION_FORBIDDEN)]
UpdateDescription = Annotated[str, _description_checker(UPDATE_DESCRIPTION_FORBIDDEN)]
LeaseMs = Annotated[int, AfterValidator(_check_lease_ms)]
StorageGb = Annotated[int, AfterValidator(_check_capacity)]
ImageId = Annotated[str, AfterValidator(_check_image_id)]
WorkspaceId = Annotated[str, AfterValidator(_check_workspace)]


class RequestModel(BaseModel):
    """Base for request bodies: unknown fields are an error, so typos fail before sending."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, use_enum_values=False, defer_build=True
    )

    def to_body(self) -> dict[str, Any]:
        """The JSON body the API expects (unset fields omitted)."""
        return self.model_dump(mode="json", exclude_none=True)


class ResponseModel(BaseModel):
    """Base for replies: undocumented fields are kept, never an error."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


# ---------------------------------------------------------------- requests


class LeaseReq(RequestModel):
    duration: LeaseMs | None = None
    type: LeaseType | None = None


class VolumeReq(RequestModel):
    category: VolumeCategory
    ownership: VolumeOwnership
    capacity: StorageGb | None = None
    uri: str | None = None
    id: str | None = None

    @model_validator(mode="after")
    def _dedicated_efs_needs_location(self) -> Self:
        if (
            self.category is VolumeCategory.EFS
            and self.ownership is VolumeOwnership.DEDICATED
            and not (self.uri and self.id)
        ):
            raise ValueError(
                "a DEDICATED EFS volume needs both 'uri' and 'id' (from the SFS console)"
            )
        return self


def _check_public_ip(value: str) -> str:
    import ipaddress  # here, not at the top: only requests that restrict access by IP need it

    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None
    if not address.is_global:
        raise ValueError(f"{value} is not a public IP address")
    return value


class EndpointsReq(RequestModel):
    service: EndpointService | None = None
    key_pair_names: list[str] | None = None
    # The update API documents these spellings for the same two fields.
    dev_service: EndpointService | None = None
    ssh_keys: list[str] | None = None
    allowed_access_ips: list[Annotated[str, AfterValidator(_check_public_ip)]] | None = None

    @field_validator("allowed_access_ips")
    @classmethod
    def _at_most_five(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(value) > MAX_ALLOWED_ACCESS_IPS:
            raise ValueError(
                f"{len(value)} allowed access IPs given; at most {MAX_ALLOWED_ACCESS_IPS} are allowed"
            )
        return value


class HookType(CaseInsensitiveEnum):
    COMMAND = "COMMAND"
    SCRIPT = "SCRIPT"


class HookMode(CaseInsensitiveEnum):
    BLOCK = "BLOCK"
    ASYNC = "ASYNC"


class HookConfig(RequestModel):
    script: str
    type: HookType | None = None
    mode: HookMode | None = None


class ContainerHooks(RequestModel):
    pre_start: HookConfig | None = None
    post_start: HookConfig | None = None


class CustomHooks(RequestModel):
    container_hooks: ContainerHooks | None = None


class NotebookCreateRequest(RequestModel):
    """Body of `POST /v1/{project_id}/notebooks`."""

    name: NotebookName
    image_id: ImageId
    volume: VolumeReq
    flavor: str | None = None
    custom_spec: dict[str, Any] | None = None
    description: CreateDescription | None = None
    feature: Feature | None = None
    pool_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    workspace_id: WorkspaceId | None = None
    endpoints: list[EndpointsReq] | None = None
    lease: LeaseReq | None = None
    duration: LeaseMs | None = None
    hooks: CustomHooks | None = None
    data_volumes: list[dict[str, Any]] | None = None
    user_vpc: dict[str, Any] | None = None
    affinity: dict[str, Any] | None = None
    run_user: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _flavor_or_custom_spec(self) -> Self:
        if not self.flavor and not self.custom_spec:
            raise ValueError("flavor is required (for example modelarts.vm.cpu.2u)")
        return self

    @property
    def effective_lease(self) -> LeaseReq:
        """Top-level `duration` overrides `lease` and forces TIMING, as documented."""
        if self.duration is not None:
            return LeaseReq(duration=self.duration, type=LeaseType.TIMING)
        return self.lease or LeaseReq(duration=LEASE_MIN_MS, type=LeaseType.TIMING)


class NotebookUpdateRequest(RequestModel):
    """Body of `PUT /v1/{project_id}/notebooks/{id}` (only while STOPPED)."""

    name: NotebookName | None = None
    description: UpdateDescription | None = None
    flavor: str | None = None
    image_id: ImageId | None = None
    storage_new_size: StorageGb | None = None
    endpoints: list[EndpointsReq] | None = None
    hooks: CustomHooks | None = None
    data_volumes: list[dict[str, Any]] | None = None
    dew_secret_name: str | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if not self.model_dump(exclude_none=True):
            raise ValueError(
                "nothing to update: give at least one of name, description, flavor, image_id, storage_new_size"
            )
        return self

    def check_storage_growth(self, current_capacity_gb: int | None) -> None:
        """EVS storage only grows: raise ValueError if the new size is not larger."""
        if (
            self.storage_new_size is not None
            and current_capacity_gb is not None
            and self.storage_new_size <= current_capacity_gb
        ):
            raise ValueError(
                f"storage can only grow: the notebook has {current_capacity_gb} GB, "
                f"so ask for more than that (at most {MAX_STORAGE_GB} GB)"
            )


class ListNotebooksQuery(RequestModel):
    """Query of `GET /notebooks` and `GET /notebooks/all`."""

    feature: Feature | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] | None = None
    offset: Annotated[int, Field(ge=0)] | None = None
    name: Annotated[str, Field(max_length=NAME_MAX)] | None = None
    status: NotebookStatus | None = None
    sort_dir: SortDir | None = None
    sort_key: Annotated[str, Field(max_length=128)] | None = None
    owner: Annotated[str, Field(pattern=r"^[a-z0-9]{32}$")] | None = None
    pool_id: Annotated[str, Field(min_length=4, max_length=64)] | None = None
    pool_name: str | None = None
    workspace_id: WorkspaceId | None = None
    flavor: str | None = None
    image_id: str | None = None
    id: str | None = None
    billing: Billing | None = None
    tags: str | None = None
    swr_path: str | None = None
    description: str | None = None
    ip: str | None = None
    username: str | None = None

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: NotebookStatus | None) -> NotebookStatus | None:
        if value is NotebookStatus.UNKNOWN:
            raise ValueError(
                "unknown status; use one of "
                + ", ".join(s.value for s in NotebookStatus if s is not NotebookStatus.UNKNOWN)
            )
        return value

    def to_params(self) -> list[tuple[str, str]]:
        """Query pairs, in canonical (sorted) order like the official SDK sends them."""
        return sorted(
            (k, str(v)) for k, v in self.model_dump(mode="json", exclude_none=True).items()
        )


def _check_tag_key(value: str) -> str:
    if value != value.strip() or not re.match(TAG_KEY_PATTERN, value):
        raise ValueError(
            "tag key must be 1-128 letters, digits, spaces or _ . : = + - @, "
            "with no leading or trailing space"
        )
    if value.startswith("_sys_"):
        raise ValueError("tag keys starting with _sys_ are reserved by the system")
    return value


def _check_tag_value(value: str) -> str:
    if not re.match(TAG_VALUE_PATTERN, value):
        raise ValueError("tag value must be at most 255 letters, digits, spaces or _ . : = + - @ /")
    return value


TagKey = Annotated[str, AfterValidator(_check_tag_key)]
TagValue = Annotated[str, AfterValidator(_check_tag_value)]


class TagReq(RequestModel):
    key: TagKey
    value: TagValue | None = None


class TagsRequest(RequestModel):
    """Body of the tag create/delete calls."""

    tags: Annotated[list[TagReq], Field(min_length=1)]


# ---------------------------------------------------------------- responses


class Lease(ResponseModel):
    create_at: int | None = None
    duration: int | None = None
    enable: bool | None = None
    type: LeaseType | None = None
    update_at: int | None = None

    @property
    def deadline_ms(self) -> int | None:
        """When auto-stop fires (epoch ms): `create_at + duration`."""
        if self.create_at is None or self.duration is None:
            return None
        return self.create_at + self.duration

    def remaining_ms(self, now_ms: int) -> int | None:
        deadline = self.deadline_ms
        return None if deadline is None else deadline - now_ms


class Image(ResponseModel):
    id: str | None = None
    name: str | None = None
    swr_path: str | None = None
    tag: str | None = None
    type: str | None = None
    arch: str | None = None
    description: str | None = None


class Volume(ResponseModel):
    category: VolumeCategory | None = None
    ownership: VolumeOwnership | None = None
    capacity: int | None = None
    mount_path: str | None = None
    status: str | None = None


class Endpoint(ResponseModel):
    service: EndpointService | None = None
    dev_service: str | None = None
    uri: str | None = None
    key_pair_names: list[str] | None = None
    ssh_keys: list[str] | None = None
    allowed_access_ips: list[str] | None = None


class Pool(ResponseModel):
    id: str | None = None
    name: str | None = None


class Domain(ResponseModel):
    id: str | None = None
    name: str | None = None


class User(ResponseModel):
    id: str | None = None
    name: str | None = None
    domain: Domain | None = None


class JobProgress(ResponseModel):
    notebook_id: str | None = None
    status: str | None = None
    step: int | None = None
    step_description: str | None = None
    description: str | None = None


class Tag(ResponseModel):
    key: str
    value: str | None = None


class Notebook(ResponseModel):
    """A notebook instance as the API returns it (`NotebookResp`)."""

    id: str
    name: str | None = None
    description: str | None = None
    status: NotebookStatus = NotebookStatus.UNKNOWN
    fail_reason: str | None = None
    flavor: str | None = None
    custom_spec: dict[str, Any] | None = None
    image: Image | None = None
    lease: Lease | None = None
    url: str | None = None
    token: SecretStr | None = None
    endpoints: list[Endpoint] | None = None
    volume: Volume | None = None
    pool: Pool | None = None
    workspace_id: str | None = None
    feature: Feature | None = None
    billing_items: list[str] | None = None
    user: User | None = None
    action_progress: list[JobProgress] | None = None
    tags: list[Tag] | None = None
    ip: str | None = None
    user_id: str | None = None
    jupyter_version: str | None = None
    create_at: int | None = None
    update_at: int | None = None

    def tag(self, key: str) -> str | None:
        """Value of tag `key`, or None."""
        for tag in self.tags or []:
            if tag.key == key:
                return tag.value
        return None

    @property
    def server_base(self) -> str | None:
        """Jupyter Server base URL: the `url` without its trailing `/lab`."""
        if not self.url:
            return None
        url = self.url.rstrip("/")
        return url[: -len("/lab")] if url.endswith("/lab") else url

    def __str__(self) -> str:
        return f"{self.name or '?'} ({self.id}, {self.status.value})"


class NotebookPage(ResponseModel):
    """One page of `GET /notebooks` or `/notebooks/all`."""

    current: int | None = None
    pages: int | None = None
    size: int | None = None
    total: int | None = None
    data: list[Notebook] = Field(default_factory=list)


class TagSummaryItem(ResponseModel):
    key: str
    values: list[str] = Field(default_factory=list)


class TagSummary(ResponseModel):
    tags: list[TagSummaryItem] = Field(default_factory=list)


class Flavor(ResponseModel):
    id: str | None = None
    name: str | None = None
    arch: str | None = None
    category: str | None = None
    description: str | None = None
    feature: str | None = None
    free: bool | None = None
    sold_out: bool | None = None


class FlavorList(ResponseModel):
    current: int | None = None
    pages: int | None = None
    size: int | None = None
    total: int | None = None
    flavors: list[Flavor] = Field(default_factory=list)
    # The SDK's ListFlavorsResponse also carries the flavors under `data`.
    data: list[Flavor] = Field(default_factory=list)


class ErrorBody(ResponseModel):
    error_code: str | None = None
    error_msg: str | None = None
