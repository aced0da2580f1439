"""The lease keeper's policy: what counts as idle, when people work, how far to prolong.

A YAML file ships in the shared layer (shared/nbkeeper/keeper/policy.yaml, read by the lease
keeper and by the worker's fan-out sweeps); an SSM parameter may hold a YAML overlay that is
merged over it key by key, so an operator can flip `dry_run` or add a holiday without a deploy.
Every read is validated by pydantic (the keeper reads at cold start, then on each pass for the
overlay); a mistake raises `PolicyError` naming the key (`working_hours.mon: ...`).
docs/lease-keeper.md lists every key with its default.

Time helpers (`is_working_time`, `next_working_start`) work on the policy's IANA timezone, so DST
changes move working hours with the wall clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from nbkeeper.modelarts.schemas import HOUR_MS, LEASE_MAX_MS, LEASE_MIN_MS
from nbkeeper.records import ProjectRef

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
OFF_WORDS = frozenset({"off", "none", "closed", ""})
# When a pass posts its summary to `summary_channel`: only when it warned, stopped or failed
# (`actions`), after every pass that saw a notebook or an error (`always`), or not at all.
SummaryMode = Literal["actions", "always", "never"]


class PolicyError(ValueError):
    """The policy is invalid; the message names the key(s) and what to change."""


class Window(BaseModel):
    """One working period of a day, in minutes after local midnight (end may be 24:00)."""

    model_config = ConfigDict(frozen=True)

    start: int
    end: int

    def contains(self, minute: int) -> bool:
        return self.start <= minute < self.end

    def __str__(self) -> str:
        return (
            f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"
        )


def parse_window(text: str) -> Window:
    match = _WINDOW.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a time range; write it like '08:00-20:00'")
    sh, sm, eh, em = (int(group) for group in match.groups())
    if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em != 0):
        raise ValueError(f"{text!r} has an invalid time; use 00:00 to 24:00")
    start, end = sh * 60 + sm, eh * 60 + em
    if end <= start:
        raise ValueError(
            f"{text!r} ends before it starts; a period past midnight must be split "
            "into two days (e.g. fri: '22:00-24:00', sat: '00:00-02:00')"
        )
    return Window(start=start, end=end)


def _parse_day(value: Any) -> list[Window]:
    if value is None or value is False:
        return []
    if isinstance(value, Window):
        return [value]
    if isinstance(value, str):
        if value.strip().lower() in OFF_WORDS:
            return []
        return [parse_window(part) for part in value.split(",")]
    if isinstance(value, list):
        windows: list[Window] = []
        for item in value:
            windows += _parse_day(item)
        return sorted(windows, key=lambda w: w.start)
    raise ValueError("give a range like '08:00-20:00', a list of ranges, or null for a day off")


def known_timezone(value: str) -> str:
    """`value` if it names an IANA timezone; else a ValueError saying what to write."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {value!r}; use an IANA name such as Europe/Berlin or UTC"
        ) from None
    return value


DEFAULT_WORKING_HOURS: dict[Weekday, list[Window]] = {
    day: ([Window(start=8 * 60, end=20 * 60)] if day not in ("sat", "sun") else [])
    for day in WEEKDAYS
}


class OptOutTag(BaseModel):
    """Notebooks tagged `key=value` are never warned or stopped, and kept alive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(default="nbkeeper.keep", min_length=1, max_length=128)
    value: str = Field(default="true", max_length=255)

    def matches(self, tag_value: str | None) -> bool:
        return tag_value is not None and tag_value.strip().lower() == self.value.lower()


PositiveMinutes = Annotated[float, Field(gt=0, le=7 * 24 * 60)]
DayWindows = Annotated[list[Window], BeforeValidator(_parse_day)]


class Policy(BaseModel):
    """Validated lease keeper policy. Unknown keys are errors, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    projects: list[ProjectRef] = Field(default_factory=list)
    timezone: str = "UTC"
    working_hours: dict[Weekday, DayWindows] = Field(
        default_factory=lambda: dict(DEFAULT_WORKING_HOURS)
    )
    holidays: list[date] = Field(default_factory=list)
    idle_threshold_minutes: PositiveMinutes = 60
    off_hours_idle_minutes: PositiveMinutes = 60
    warning_lead_minutes: Annotated[float, Field(ge=0, le=24 * 60)] = 30
    renew_before_minutes: PositiveMinutes = 20
    extend_by_hours: Annotated[float, Field(ge=1, le=72)] = 2
    max_runtime_hours: Annotated[float, Field(gt=0)] | None = None
    prices: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    default_price_per_hour: Annotated[float, Field(ge=0)] = 0.0
    currency: str = Field(default="USD", min_length=1, max_length=8)
    dry_run: bool = False
    opt_out_tag: OptOutTag = Field(default_factory=OptOutTag)
    admins: list[str] = Field(default_factory=list)
    summary_channel: str | None = None
    summary: SummaryMode = "actions"
    warning_channel: str | None = None
    max_projects_per_pass: Annotated[int, Field(ge=1, le=1000)] = 10
    probe_concurrency: Annotated[int, Field(ge=1, le=1000)] = 100
    probe_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    action_concurrency: Annotated[int, Field(ge=1, le=200)] = 20

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return known_timezone(value)

    @field_validator("working_hours", mode="before")
    @classmethod
    def _parse_working_hours(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError("give a mapping of weekday (mon..sun) to time ranges")
        parsed: dict[str, Any] = {}
        for day, ranges in value.items():
            key = str(day).strip().lower()
            if key not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
            parsed[key] = ranges
        return parsed

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        if self.renew_before_minutes >= self.extend_by_hours * 60:
            raise ValueError(
                "renew_before_minutes must be shorter than extend_by_hours, "
                "or every pass would prolong again"
            )
        return self

    # ------------------------------------------------------------------ durations

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def idle_threshold(self) -> timedelta:
        return timedelta(minutes=self.idle_threshold_minutes)

    @property
    def off_hours_idle(self) -> timedelta:
        return timedelta(minutes=self.off_hours_idle_minutes)

    def idle_threshold_at(self, moment: datetime) -> timedelta:
        """The idle threshold that applies at `moment`: `idle_threshold_minutes` in working
        hours, `off_hours_idle_minutes` outside them and on holidays."""
        return self.idle_threshold if self.is_working_time(moment) else self.off_hours_idle

    @property
    def warning_lead(self) -> timedelta:
        return timedelta(minutes=self.warning_lead_minutes)

    @property
    def renew_before(self) -> timedelta:
        return timedelta(minutes=self.renew_before_minutes)

    @property
    def extend_by_ms(self) -> int:
        return max(LEASE_MIN_MS, min(LEASE_MAX_MS, round(self.extend_by_hours * HOUR_MS)))

    @property
    def max_runtime(self) -> timedelta | None:
        return None if self.max_runtime_hours is None else timedelta(hours=self.max_runtime_hours)

    def price_per_hour(self, flavor: str | None) -> float:
        """Hourly price of `flavor` (falls back to `default_price_per_hour`)."""
        if flavor and flavor in self.prices:
            return self.prices[flavor]
        return self.default_price_per_hour

    # ------------------------------------------------------------------ calendar

    @cached_property
    def _holiday_dates(self) -> frozenset[date]:
        # Asked several times per notebook per pass: build the set once per policy.
        return frozenset(self.holidays)

    def is_holiday(self, moment: datetime) -> bool:
        return _aware(moment).astimezone(self.zone).date() in self._holiday_dates

    def is_working_time(self, moment: datetime) -> bool:
        """True when `moment` falls in a working period of its local weekday, not on a holiday."""
        local = _aware(moment).astimezone(self.zone)
        if local.date() in self._holiday_dates:
            return False
        minute = local.hour * 60 + local.minute
        return any(
            w.contains(minute) for w in self.working_hours.get(WEEKDAYS[local.weekday()], [])
        )

    def next_working_start(self, moment: datetime, horizon_days: int = 366) -> datetime | None:
        """The next start of a working period strictly after `moment` (UTC), or None."""
        zone = self.zone
        local = _aware(moment).astimezone(zone)
        holidays = self._holiday_dates
        for offset in range(horizon_days + 1):
            day = local.date() + timedelta(days=offset)
            if day in holidays:
                continue
            for window in self.working_hours.get(WEEKDAYS[day.weekday()], []):
                # Built from wall-clock fields, so the UTC offset is that day's (DST-aware).
                start = datetime(
                    day.year, day.month, day.day, window.start // 60, window.start % 60, tzinfo=zone
                ).astimezone(UTC)
                if start > moment:
                    return start
        return None


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment


# ---------------------------------------------------------------------- deploy answers


def with_deploy_answers(
    policy: Policy,
    *,
    timezone: str | None = None,
    warning_channel: str | None = None,
    admins: list[str] | None = None,
) -> Policy:
    """The policy as the deployed functions use it, with the deploy's answers.

    - `timezone` (NBKEEPER_TIMEZONE, the stack's ScheduleTimezone): the policy's timezone
      unless the policy file or its overlay sets `timezone` itself. One source for working
      hours, the schedule and `keep until` in Slack.
    - `warning_channel` (NBKEEPER_WARNING_CHANNEL): where warnings about notebooks without a
      known owner go, unless the policy names a `warning_channel`.
    - `admins` (SLACK_ADMINS, the webhook's list): the only admins. The webhook refuses the
      buttons of anyone else, so the policy's `admins` key is replaced, never merged (see
      `ignored_admins`). None: not deployed with the list (tests, local tools); the policy's.
    """
    update: dict[str, Any] = {}
    if timezone and "timezone" not in policy.model_fields_set:
        update["timezone"] = timezone
    if warning_channel and not policy.warning_channel:
        update["warning_channel"] = warning_channel
    if admins is not None:
        update["admins"] = list(admins)
    return policy.model_copy(update=update) if update else policy


def ignored_admins(policy: Policy, admins: list[str]) -> list[str]:
    """Policy `admins` that the deploy's list (SLACK_ADMINS) leaves out: never DMed as admins."""
    return [user for user in policy.admins if user not in admins]


# ---------------------------------------------------------------------- loading


def _describe(exc: pydantic.ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "policy"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see docs/lease-keeper.md)"
        lines.append(f"{location}: {message}")
    return f"{source}: " + "; ".join(lines)


def parse_policy_data(data: Any, source: str = "policy") -> Policy:
    """Validate already-parsed YAML/JSON data (a mapping, or None for all defaults)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise PolicyError(f"{source}: the policy must be a mapping of keys to values")
    try:
        return Policy.model_validate(dict(data))
    except pydantic.ValidationError as exc:
        raise PolicyError(_describe(exc, source)) from None


_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")


def _bad_date(line: str) -> bool:
    """Whether `line` holds a YAML date that is no calendar date (2024-13-45)."""
    for year, month, day in _DATE.findall(line):
        try:
            date(int(year), int(month), int(day))
        except ValueError:
            return True
    return False


def _load_yaml(text: str, source: str) -> Any:
    # Imported here: deciding needs the Policy model, not the YAML parser.
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from None
    except RecursionError:
        raise PolicyError(
            f"{source}: not valid YAML: lists or mappings nested too deeply"
        ) from None
    except ValueError as exc:
        # PyYAML builds some values itself (a date such as 2024-13-45) and fails with ValueError.
        where = next((f" in {ln.strip()!r}" for ln in text.splitlines() if _bad_date(ln)), "")
        raise PolicyError(f"{source}: a value is not valid{where}: {exc}") from None


def load_policy_text(text: str, source: str = "policy") -> Policy:
    """Parse and validate a YAML policy."""
    return parse_policy_data(_load_yaml(text, source), source)


def _read_policy_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc.strerror}") from None


def load_policy_file(path: str | Path) -> Policy:
    """Read and validate a YAML policy file."""
    path = Path(path)
    return load_policy_text(_read_policy_file(path), str(path))


def merge_overlay(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `overlay` over `base`: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in overlay.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_overlay(current, value)
        else:
            merged[key] = value
    return merged


def _ssm_fetch(name: str) -> str:
    # Imported here: Powertools' parameters module pulls in boto3, which the domain avoids.
    from aws_lambda_powertools.utilities.parameters import get_parameter

    value = get_parameter(name, max_age=300)
    return value if isinstance(value, str) else str(value)


def load_policy(
    path: str | Path,
    ssm_parameter: str | None = None,
    fetch: Callable[[str], str] | None = None,
) -> Policy:
    """The file at `path`, with the YAML in SSM parameter `ssm_parameter` merged over it.

    `fetch` reads a parameter's text (default: Powertools `get_parameter`, cached 5 minutes).
    """
    path = Path(path)
    base = _load_yaml(_read_policy_file(path), str(path)) or {}
    if not isinstance(base, Mapping):
        raise PolicyError(f"{path}: the policy must be a mapping of keys to values")
    if not ssm_parameter:
        return parse_policy_data(base, str(path))
    source = f"{path} + SSM {ssm_parameter}"
    overlay = _load_yaml((fetch or _ssm_fetch)(ssm_parameter), f"SSM {ssm_parameter}") or {}
    if not isinstance(overlay, Mapping):
        raise PolicyError(f"SSM {ssm_parameter}: the overlay must be a mapping of keys to values")
    return parse_policy_data(merge_overlay(base, overlay), source)
