"""Times as ModelArts sends them (epoch milliseconds) and as people read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds, as ModelArts uses them (create_at, lease create_at/update_at)."""
    return round(moment.timestamp() * 1000)


def from_ms(value: float) -> datetime:
    """An aware UTC datetime from epoch milliseconds."""
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def iso(moment: datetime | None) -> str | None:
    """`2026-11-23T09:00:00Z`-style UTC text for logs, JSON and audit records."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def human(delta: timedelta) -> str:
    """'2 h 5 min', '45 min', '0 min' (rounded down to minutes)."""
    minutes = max(0, int(delta.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


def local_time(moment: datetime, zone: tzinfo, *, date: bool = False) -> str:
    """'Mon 14:10 CET': weekday, time and zone abbreviation in `zone`; with `date`,
    'Mon 23 Nov 14:10 CET'. The one formatter for times people read: every one names its zone."""
    return moment.astimezone(zone).strftime("%a %d %b %H:%M %Z" if date else "%a %H:%M %Z")
