"""SLA clocks: targets per tier, business hours in the configured time zone, states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tocsin.config import BusinessHours, Settings, SlaConfig
from triage.errors import TriageError
from triage.sla import SlaState, add_business_minutes, due_at, sla_clock

MONDAY = datetime(2026, 11, 16, tzinfo=UTC)  # a Monday


def at(day: datetime, hhmm: str) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return day.replace(hour=hours, minute=minutes)


def test_default_targets_around_the_clock_for_critical_and_high() -> None:
    sla = SlaConfig()
    late_evening = at(MONDAY, "23:30")
    assert due_at(late_evening, "critical", sla=sla) == late_evening + timedelta(minutes=15)
    assert due_at(late_evening, "high", sla=sla) == late_evening + timedelta(minutes=30)


def test_normal_case_at_1950_with_2000_close_is_due_next_morning_0850() -> None:
    sla = SlaConfig()  # business hours 08:00-20:00 for normal and low
    assert due_at(at(MONDAY, "19:50"), "normal", sla=sla) == at(MONDAY + timedelta(days=1), "08:50")


def test_critical_ignores_business_hours_even_when_listed_elsewhere() -> None:
    sla = SlaConfig(business_hours=BusinessHours(tiers=["normal", "low"]))
    assert due_at(at(MONDAY, "19:50"), "critical", sla=sla) == at(MONDAY, "20:05")


def test_a_case_opened_at_night_starts_counting_at_opening_time() -> None:
    sla = SlaConfig()
    assert due_at(at(MONDAY, "03:00"), "normal", sla=sla) == at(MONDAY, "09:00")


def test_closed_days_are_skipped() -> None:
    weekdays = BusinessHours(start="09:00", end="18:00", days=[0, 1, 2, 3, 4])
    sla = SlaConfig(business_hours=weekdays)
    friday = MONDAY + timedelta(days=4)
    assert due_at(at(friday, "17:30"), "normal", sla=sla) == at(MONDAY + timedelta(days=7), "09:30")


def test_low_tier_spans_several_business_days() -> None:
    sla = SlaConfig()  # 24 h of 12-hour business days = two full days
    assert due_at(at(MONDAY, "08:00"), "low", sla=sla) == at(MONDAY + timedelta(days=1), "20:00")


def test_business_hours_are_local_time() -> None:
    settings = Settings(timezone="Europe/Paris")  # UTC+1 in November
    # 18:50 UTC is 19:50 in Paris: 10 minutes left today, 50 tomorrow from 08:00 Paris (07:00 UTC)
    due = due_at(at(MONDAY, "18:50"), "normal", sla=settings.sla, timezone=settings.timezone)
    assert due == at(MONDAY + timedelta(days=1), "07:50")


def test_daylight_saving_change_counts_real_minutes() -> None:
    hours = BusinessHours(start="00:00", end="24:00")
    # Paris leaves summer time on 2026-10-25 at 03:00 local (01:00 UTC): that night has 25 hours.
    start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert add_business_minutes(start, 180, hours=hours, timezone="Europe/Paris") == start + (
        timedelta(hours=3)
    )


def test_configured_targets_and_bad_hours() -> None:
    sla = SlaConfig(critical_minutes=5, normal_minutes=120)
    assert due_at(at(MONDAY, "10:00"), "critical", sla=sla) == at(MONDAY, "10:05")
    assert due_at(at(MONDAY, "10:00"), "normal", sla=sla) == at(MONDAY, "12:00")
    with pytest.raises(TriageError, match="after their start"):
        due_at(
            at(MONDAY, "10:00"),
            "normal",
            sla=SlaConfig(business_hours=BusinessHours(start="20:00", end="08:00")),
        )
    with pytest.raises(TriageError, match="08:00"):
        due_at(
            at(MONDAY, "10:00"), "normal", sla=SlaConfig(business_hours=BusinessHours(start="8h"))
        )
    with pytest.raises(TriageError, match="tier"):
        due_at(at(MONDAY, "10:00"), "urgent", sla=sla)


def test_clock_states_time_left_breached_about_to_breach_and_met() -> None:
    sla = SlaConfig()
    opened = at(MONDAY, "10:00")
    due = due_at(opened, "high", sla=sla)  # 10:30
    ok = sla_clock(tier="high", due=due, sla=sla, now=at(MONDAY, "10:05"))
    soon = sla_clock(tier="high", due=due, sla=sla, now=at(MONDAY, "10:24"))
    breached = sla_clock(tier="high", due=due, sla=sla, now=at(MONDAY, "11:35"))
    met = sla_clock(tier="high", due=due, sla=sla, first_response_at=at(MONDAY, "10:20"))
    late = sla_clock(tier="high", due=due, sla=sla, first_response_at=at(MONDAY, "10:33"))
    assert (ok.state, ok.minutes_left, ok.label) == (SlaState.ok, 25, "25 min left")
    assert soon.state == SlaState.soon and soon.label == "6 min left"
    assert breached.state == SlaState.breached and breached.label == "overdue 1 h 05"
    assert met.state == SlaState.met and met.label == "met"
    assert late.state == SlaState.late and late.label == "late by 3 min"
