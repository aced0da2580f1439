"""Pydantic models for the ModelArts notebook API (v1).

Liberal in what we accept, conservative in what we send (docs/modelarts-client.md, "What we
accept and what we send"):

- Requests enforce what the seeds document, and where they are silent what the official SDK
  documents, before any network call, with messages a person can act on. Enum-like fields take
  documented values only.
- Replies accept any string where the SDK types a string (enum-like fields keep unknown values as
  stand-ins, see `OpenEnum`), null or absent for every optional field, fields nobody documents,
  and list pages whose records cannot all be read (`NotebookPage.unreadable`). The notebook
  `token` is a `SecretStr`: hidden in repr and logs.
"""

import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Any, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
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
# Tags: letters of any language and digits (the SDK's TmsTag), plus these symbols.
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 255
TAG_KEY_SYMBOLS = " _.:=+-@"
TAG_VALUE_SYMBOLS = " _.:=+-@/"
# The only page sizes the SDK documents for the notebook list.
PAGE_SIZES = (10, 20, 50)


class OpenEnum(StrEnum):
    """A documented set of values that the service may extend (the SDK types them as `str`).

    Any letter case of a documented value gives its member (the docs mix `timing` and `TIMING`).
    Any other string gives a stand-in of the same type that keeps the value as sent: `value` and
    `str()` show it, `is_known` is False, and it equals no member. Requests refuse stand-ins (see
    `Known`); replies keep them, so a new value never fails a reply.
    """

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        folded = value.strip().casefold()
        for member in cls:
            if member.value.casefold() == folded:
                return member
        stand_in = str.__new__(cls, value)
        stand_in._name_ = value
        stand_in._value_ = value
        return stand_in

    @property
    def is_known(self) -> bool:
        """True for a documented value, False for one this client has not seen."""
        return type(self).__members__.get(self._name_) is self


class NotebookStatus(OpenEnum):
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
    # Not a service value: a reply without a status. Like a status this client does not know
    # (a stand-in, `is_known` False), it counts as transient, so the keeper never acts on it.
    UNKNOWN = "UNKNOWN"

    @property
    def is_known(self) -> bool:
        return super().is_known and self is not NotebookStatus.UNKNOWN

    @property
    def is_transient(self) -> bool:
        return self in TRANSIENT_STATUSES or not self.is_known


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


class LeaseType(OpenEnum):
    TIMING = "TIMING"
    IDLE = "IDLE"


class Feature(OpenEnum):
    DEFAULT = "DEFAULT"
    NOTEBOOK = "NOTEBOOK"


class VolumeCategory(OpenEnum):
    EVS = "EVS"
    EFS = "EFS"
    SFS = "SFS"
    OBS = "OBS"
    OBSFS = "OBSFS"


class VolumeOwnership(OpenEnum):
    MANAGED = "MANAGED"
    DEDICATED = "DEDICATED"


class EndpointService(OpenEnum):
    NOTEBOOK = "NOTEBOOK"
    SSH = "SSH"


class Billing(OpenEnum):
    COMPUTE = "COMPUTE"
    STORAGE = "STORAGE"
    ALL = "ALL"


class SortDir(OpenEnum):
    ASC = "ASC"
    DESC = "DESC"


class HookType(OpenEnum):
    COMMAND = "COMMAND"
    SCRIPT = "SCRIPT"


class HookMode(OpenEnum):
    BLOCK = "BLOCK"
    ASYNC = "ASYNC"


class Arch(OpenEnum):
    X86_64 = "X86_64"
    AARCH64 = "AARCH64"


class SpecCategory(OpenEnum):
    CPU = "CPU"
    GPU = "GPU"


class PublicNetworkType(OpenEnum):
    SHARED = "SHARED"
    EXCLUSIVE = "EXCLUSIVE"
    FORBIDDEN = "FORBIDDEN"


E = TypeVar("E", bound=OpenEnum)


def _require_known(value: E, info: ValidationInfo) -> E:
    """Requests send documented values only."""
    if value.is_known:
        return value
    allowed = ", ".join(m.value for m in type(value) if m.is_known)
    raise ValueError(f"unknown {info.field_name} {value.value!r}; use one of {allowed}")


Known = AfterValidator(_require_known)


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
    """Base for replies: undocumented fields are kept, never an error; a number where the SDK
    expects a string is read as that string (the SDK does the same)."""

    model_config = ConfigDict(
        extra="allow", populate_by_name=True, defer_build=True, coerce_numbers_to_str=True
    )


# ---------------------------------------------------------------- requests


class LeaseReq(RequestModel):
    duration: LeaseMs | None = None
    type: Annotated[LeaseType, Known] | None = None


class VolumeReq(RequestModel):
    category: Annotated[VolumeCategory, Known]
    ownership: Annotated[VolumeOwnership, Known]
    capacity: StorageGb | None = None
    uri: str | None = None
    id: str | None = None
    # Not in the seeds; the SDK's VolumeMountRequest has them (mount path at most 256 characters,
    # secret name 1-64 letters, digits, '-' or '_').
    mount_path: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    read_only: bool | None = None
    dew_secret_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] | None = None

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
    service: Annotated[EndpointService, Known] | None = None
    key_pair_names: list[str] | None = None
    # The update API documents these spellings for the same two fields.
    dev_service: Annotated[EndpointService, Known] | None = None
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


class HookConfig(RequestModel):
    # The seeds mark `script` optional (the SDK's Config too).
    script: str | None = None
    type: Annotated[HookType, Known] | None = None
    mode: Annotated[HookMode, Known] | None = None


class ContainerHooks(RequestModel):
    pre_start: HookConfig | None = None
    post_start: HookConfig | None = None


class CustomHooks(RequestModel):
    container_hooks: ContainerHooks | None = None


class CustomSpecReq(RequestModel):
    """A custom flavor in a dedicated pool (the SDK's NotebookCustomSpec; not in the seeds)."""

    gpu: Annotated[float, Field(ge=0)] | None = None
    cpu: Annotated[float, Field(ge=0.4)] | None = None
    memory: Annotated[int, Field(ge=513)] | None = None
    gpu_type: str | None = None
    arch: Annotated[Arch, Known] | None = None
    category: Annotated[SpecCategory, Known] | None = None
    resource_flavor: str | None = None


class AffinityRuleReq(RequestModel):
    key: str
    operator: str
    values: list[str]
    weight: int | None = None


class AffinityReq(RequestModel):
    """Node affinity in a dedicated pool (the SDK's AffinityType; not in the seeds)."""

    required_during_scheduling_ignored_during_execution: list[AffinityRuleReq] | None = None
    preferred_during_scheduling_ignored_during_execution: list[AffinityRuleReq] | None = None


class PublicNetworkConfigReq(RequestModel):
    """The SDK's PublicNetworkConfig (not in the seeds)."""

    public_network_type: Annotated[PublicNetworkType, Known] | None = None


class NotebookCreateRequest(RequestModel):
    """Body of `POST /v1/{project_id}/notebooks`."""

    name: NotebookName
    image_id: ImageId
    volume: VolumeReq
    flavor: str | None = None
    custom_spec: CustomSpecReq | None = None
    description: CreateDescription | None = None
    feature: Annotated[Feature, Known] | None = None
    pool_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    workspace_id: WorkspaceId | None = None
    endpoints: list[EndpointsReq] | None = None
    lease: LeaseReq | None = None
    duration: LeaseMs | None = None
    hooks: CustomHooks | None = None
    data_volumes: list[dict[str, Any]] | None = None
    user_vpc: dict[str, Any] | None = None
    affinity: AffinityReq | None = None
    run_user: dict[str, Any] | None = None
    public_network_config: PublicNetworkConfigReq | None = None

    @model_validator(mode="after")
    def _flavor_or_custom_spec(self) -> Self:
        if not self.flavor and self.custom_spec is None:
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
    # Not in the seeds; the SDK's NotebookUpdateRequest has them.
    custom_spec: CustomSpecReq | None = None
    affinity: AffinityReq | None = None
    public_network_config: PublicNetworkConfigReq | None = None

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


def _check_page_size(value: int) -> int:
    if value not in PAGE_SIZES:
        raise ValueError(
            f"limit {value} is not a documented page size; use {', '.join(map(str, PAGE_SIZES))}"
        )
    return value


class ListNotebooksQuery(RequestModel):
    """Query of `GET /notebooks` and `GET /notebooks/all`."""

    feature: Annotated[Feature, Known] | None = None
    limit: Annotated[int, AfterValidator(_check_page_size)] | None = None
    offset: Annotated[int, Field(ge=0)] | None = None
    name: Annotated[str, Field(max_length=NAME_MAX)] | None = None
    status: Annotated[NotebookStatus, Known] | None = None
    sort_dir: Annotated[SortDir, Known] | None = None
    sort_key: Annotated[str, Field(max_length=128)] | None = None
    owner: Annotated[str, Field(pattern=r"^[a-z0-9]{32}$")] | None = None
    pool_id: Annotated[str, Field(min_length=4, max_length=64)] | None = None
    pool_name: str | None = None
    workspace_id: WorkspaceId | None = None
    flavor: str | None = None
    image_id: str | None = None
    id: str | None = None
    billing: Annotated[Billing, Known] | None = None
    tags: str | None = None
    swr_path: str | None = None
    description: str | None = None
    ip: str | None = None
    username: str | None = None

    def to_params(self) -> list[tuple[str, str]]:
        """Query pairs, in canonical (sorted) order like the official SDK sends them."""
        return sorted(
            (k, str(v)) for k, v in self.model_dump(mode="json", exclude_none=True).items()
        )


def _tag_text_ok(value: str, extra: str) -> bool:
    """Letters of any language (with their combining marks), decimal digits and `extra`."""
    return all(
        c.isalpha() or c.isdecimal() or c in extra or unicodedata.category(c).startswith("M")
        for c in value
    )


def _check_tag_key(value: str) -> str:
    if (
        not 1 <= len(value) <= TAG_KEY_MAX
        or value != value.strip()
        or not _tag_text_ok(value, TAG_KEY_SYMBOLS)
    ):
        raise ValueError(
            "tag key must be 1-128 letters, digits, spaces or _ . : = + - @, "
            "with no leading or trailing space"
        )
    if value.startswith("_sys_"):
        raise ValueError("tag keys starting with _sys_ are reserved by the system")
    return value


def _check_tag_value(value: str) -> str:
    if len(value) > TAG_VALUE_MAX or not _tag_text_ok(value, TAG_VALUE_SYMBOLS):
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
#
# Every field is optional and may be null (the SDK accepts both), except a notebook's `id`.
# Lists read as `[]` when null or absent where callers iterate them; null items are dropped.


def _list_or_empty(value: Any) -> Any:
    """null -> []; a lone item -> [item] (the SDK does the same); null items dropped."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [value]
    return [item for item in value if item is not None]


def _list_or_none(value: Any) -> Any:
    return None if value is None else _list_or_empty(value)


T = TypeVar("T")
Items = Annotated[list[T], BeforeValidator(_list_or_empty)]
OptionalItems = Annotated[list[T] | None, BeforeValidator(_list_or_none)]


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
    key_pair_names: OptionalItems[str] = None
    ssh_keys: OptionalItems[str] = None
    allowed_access_ips: OptionalItems[str] = None


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
    key: str | None = None
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
    endpoints: OptionalItems[Endpoint] = None
    volume: Volume | None = None
    pool: Pool | None = None
    workspace_id: str | None = None
    feature: Feature | None = None
    billing_items: OptionalItems[str] = None
    user: User | None = None
    action_progress: OptionalItems[JobProgress] = None
    tags: OptionalItems[Tag] = None
    ip: str | None = None
    user_id: str | None = None
    jupyter_version: str | None = None
    create_at: int | None = None
    update_at: int | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _null_status_is_unknown(cls, value: Any) -> Any:
        return NotebookStatus.UNKNOWN if value is None else value

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


class UnreadableNotebook(BaseModel):
    """A record of a list page that could not be read as a notebook: skipped, never acted on.

    `index` is its place in the reply's `data`; `position` its place in the whole listing as
    far as the client can tell (the same as `index` for a page read on its own). `reason` names
    fields and rules only, never values (a record carries the notebook's `token`).
    """

    model_config = ConfigDict(frozen=True)

    index: int
    position: int
    notebook_id: str | None = None
    reason: str

    def __str__(self) -> str:
        where = f"notebook {self.notebook_id}" if self.notebook_id else f"record {self.position}"
        return f"{where}: {self.reason}"


class NotebookPage(ResponseModel):
    """One page of `GET /notebooks` or `/notebooks/all`.

    Records are read one by one: those that cannot be read go to `unreadable`, the rest to
    `data`, so one odd record never costs the whole page.
    """

    current: int | None = None
    pages: int | None = None
    size: int | None = None
    total: int | None = None
    data: list[Notebook] = Field(default_factory=list)
    unreadable: list[UnreadableNotebook] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _read_each_record(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        readable: list[Notebook] = []
        # Kept when built in code; anything a reply sends under this name is not ours: dropped.
        unreadable = [
            item
            for item in _list_or_empty(value.get("unreadable"))
            if isinstance(item, UnreadableNotebook)
        ]
        records = value.get("data")
        if records is None:
            records = []
        elif not isinstance(records, list):
            records = [records]
        # Null records stay in: they count in `total` and are reported like any unreadable one.
        for index, record in enumerate(records):
            if isinstance(record, Notebook):
                readable.append(record)
                continue
            try:
                readable.append(Notebook.model_validate(record))
            except ValidationError as exc:
                unreadable.append(
                    UnreadableNotebook(
                        index=index,
                        position=index,
                        notebook_id=_raw_id(record),
                        reason=_reason(exc),
                    )
                )
        return {**value, "data": readable, "unreadable": unreadable}


def _raw_id(record: Any) -> str | None:
    if isinstance(record, dict):
        raw = record.get("id")
        if isinstance(raw, str) and raw:
            return raw
        if isinstance(raw, int) and not isinstance(raw, bool):
            return str(raw)
    return None


def _reason(exc: ValidationError, most: int = 3) -> str:
    """Where and what, without the values: `loc: message` for the first few problems."""
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    parts = []
    for error in errors[:most]:
        location = ".".join(str(part) for part in error["loc"]) or "record"
        parts.append(f"{location}: {error['msg'].removeprefix('Value error, ')}")
    if len(errors) > most:
        parts.append(f"and {len(errors) - most} more")
    return "; ".join(parts)


class TagSummaryItem(ResponseModel):
    key: str | None = None
    values: Items[str] = Field(default_factory=list)


class TagSummary(ResponseModel):
    tags: Items[TagSummaryItem] = Field(default_factory=list)


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
    flavors: Items[Flavor] = Field(default_factory=list)
    # The SDK's ListFlavorsResponse also carries the flavors under `data`.
    data: Items[Flavor] = Field(default_factory=list)
