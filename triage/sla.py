"""First-response SLA clocks per urgency tier, with business hours.

Targets come from `settings.sla` (defaults: critical 15 min, high 30, normal 60, low 24 h). Tiers
listed in `settings.sla.business_hours.tiers` (default normal and low) only count minutes inside
the configured hours and days, in `settings.timezone`: a normal case opened at 19:50 with a 20:00
close is due at 08:50 the next open morning. Other tiers run around the clock.

The clock starts when the case opens (when we saw the post), not when it was posted: a backfill
of week-old posts must not arrive already breached. Day boundaries are computed in local time and
converted to UTC, so daylight-saving changes are counted in real minutes.

Public functions:
- `target_minutes(tier, sla) -> int`
- `due_at(opened_at, tier, *, sla, timezone="UTC") -> datetime` (UTC)
- `sla_clock(*, tier, due, first_response_at=None, now=None, sla) -> SlaClock`: minutes left,
  state ok | soon | breached | met | late, and a short label for the board.
- `case_clock(case, *, settings, now=None) -> SlaClock | None`
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from storage.models import Case
from tocsin.config import BusinessHours, Settings, SlaConfig
from triage.errors import TriageError

# "About to breach": the last quarter of the target, never less than 5 minutes.
SOON_FRACTION = 0.25
SOON_MIN_MINUTES = 5.0
MAX_DAYS_AHEAD = 366


class SlaState(StrEnum):
    ok = "ok"
    soon = "soon"  # about to breach
    breached = "breached"
    met = "met"  # answered in time
    late = "late"  # answered after the due time


@dataclass(frozen=True, slots=True)
class SlaClock:
    due_at: datetime
    minutes_left: float  # negative once breached; frozen at the answer time once answered
    state: SlaState
    target_minutes: int

    @property
    def label(self) -> str:
        """What the queue shows: "12 min left", "overdue 1 h 05", "met", "late by 3 min"."""
        if self.state == SlaState.met:
            return "met"
        if self.state == SlaState.late:
            return f"late by {_duration(-self.minutes_left)}"
        if self.state == SlaState.breached:
            return f"overdue {_duration(-self.minutes_left)}"
        return f"{_duration(self.minutes_left)} left"


def _duration(minutes: float) -> str:
    total = max(round(minutes), 0)
    if total < 60:
        return f"{total} min"
    hours, rest = divmod(total, 60)
    if hours < 48:
        return f"{hours} h {rest:02d}"
    return f"{hours // 24} d {hours % 24} h"


def target_minutes(tier: str, sla: SlaConfig) -> int:
    try:
        return sla.minutes_for(tier)
    except AttributeError:
        raise TriageError(f"unknown urgency tier {tier!r}") from None


def _clock_time(value: str) -> time | None:
    """'HH:MM' as a time; '24:00' means the end of the day (None)."""
    try:
        hours, minutes = (int(part) for part in value.split(":"))
    except ValueError:
        raise TriageError(f"business hours must look like 08:00, not {value!r}") from None
    if (hours, minutes) == (24, 0):
        return None
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise TriageError(f"business hours must look like 08:00, not {value!r}")
    return time(hours, minutes)


def _window(day: date, hours: BusinessHours, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The open hours of one local day as UTC datetimes, or None when closed that day."""
    if day.weekday() not in hours.days:
        return None
    start_time = _clock_time(hours.start) or time(0)
    end_time = _clock_time(hours.end)
    start = datetime.combine(day, start_time, tzinfo=zone)
    end = (
        datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        if end_time is None
        else datetime.combine(day, end_time, tzinfo=zone)
    )
    if end <= start:
        raise TriageError(
            f"business hours end ({hours.end}) must come after their start ({hours.start})"
        )
    return start.astimezone(UTC), end.astimezone(UTC)


def add_business_minutes(
    start: datetime, minutes: float, *, hours: BusinessHours, timezone: str = "UTC"
) -> datetime:
    """`start` plus `minutes` counted only inside business hours."""
    if not hours.days:
        raise TriageError("business hours need at least one open day")
    zone = ZoneInfo(timezone)
    cursor = start.astimezone(UTC)
    remaining = timedelta(minutes=minutes)
    day = cursor.astimezone(zone).date()
    for _ in range(MAX_DAYS_AHEAD * 2):
        window = _window(day, hours, zone)
        if window is not None:
            open_at, close_at = window
            cursor = max(cursor, open_at)
            if cursor < close_at:
                available = close_at - cursor
                if remaining <= available:
                    return cursor + remaining
                remaining -= available
                cursor = close_at
        day += timedelta(days=1)
    raise TriageError("business hours leave no open time in the coming year")


def due_at(opened_at: datetime, tier: str, *, sla: SlaConfig, timezone: str = "UTC") -> datetime:
    """When the first response is due for a case of `tier` opened at `opened_at` (UTC)."""
    minutes = target_minutes(tier, sla)
    opened = opened_at if opened_at.tzinfo else opened_at.replace(tzinfo=UTC)
    if tier in sla.business_hours.tiers:
        return add_business_minutes(opened, minutes, hours=sla.business_hours, timezone=timezone)
    return opened.astimezone(UTC) + timedelta(minutes=minutes)


def sla_clock(
    *,
    tier: str,
    due: datetime,
    sla: SlaConfig,
    first_response_at: datetime | None = None,
    now: datetime | None = None,
) -> SlaClock:
    target = target_minutes(tier, sla)
    if first_response_at is not None:
        left = (due - first_response_at).total_seconds() / 60
        return SlaClock(due, left, SlaState.met if left >= 0 else SlaState.late, target)
    moment = now or datetime.now(UTC)
    left = (due - moment).total_seconds() / 60
    if left < 0:
        state = SlaState.breached
    elif left <= max(target * SOON_FRACTION, SOON_MIN_MINUTES):
        state = SlaState.soon
    else:
        state = SlaState.ok
    return SlaClock(due, left, state, target)


def case_clock(case: Case, *, settings: Settings, now: datetime | None = None) -> SlaClock | None:
    """The SLA clock of a stored case (None when it has no due time, e.g. old data)."""
    if case.sla_due_at is None:
        return None
    return sla_clock(
        tier=case.urgency_tier,
        due=case.sla_due_at,
        sla=settings.sla,
        first_response_at=case.first_response_at,
        now=now,
    )


def is_breached(case: Case, *, now: datetime | None = None) -> bool:
    """Unanswered and past its due time (what the SLA alert rule looks for)."""
    moment = now or datetime.now(UTC)
    return (
        case.first_response_at is None and case.sla_due_at is not None and case.sla_due_at < moment
    )
