"""Priority: a stored number whose order stays right as time passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tocsin.config import BusinessHours, SlaConfig
from triage.priority import explain, priority_for
from triage.sla import due_at, sla_clock

T = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
SLA = SlaConfig(business_hours=BusinessHours(tiers=[]))


def rank(tier: str, risk: float, opened: datetime, answered: bool = False) -> float:
    return priority_for(
        tier=tier, buzz_risk=risk, due_at=due_at(opened, tier, sla=SLA), answered=answered
    )


def test_urgency_then_risk_then_time_left() -> None:
    critical = rank("critical", 10, T)
    high = rank("high", 10, T)
    normal_risky = rank("normal", 95, T)
    normal = rank("normal", 10, T)
    low = rank("low", 90, T)
    assert critical > high > normal_risky > normal > low


def test_a_critical_case_beats_a_high_case_closer_to_its_deadline() -> None:
    critical_14_left = rank("critical", 0, T - timedelta(minutes=1))
    high_5_left = rank("high", 0, T - timedelta(minutes=25))
    assert critical_14_left > high_5_left


def test_an_older_case_of_the_same_kind_comes_first_and_breached_ones_stay_on_top() -> None:
    older = rank("high", 50, T - timedelta(minutes=40))  # already overdue
    newer = rank("high", 50, T)
    assert older > newer


def test_answered_cases_sink_below_unanswered_ones_keeping_their_order() -> None:
    answered_critical = rank("critical", 100, T, answered=True)
    answered_high = rank("high", 0, T, answered=True)
    unanswered_low = rank("low", 0, T + timedelta(days=3))
    assert unanswered_low > answered_critical > answered_high


cases = st.tuples(
    st.sampled_from(["low", "normal", "high", "critical"]),
    st.floats(0, 100),
    st.integers(0, 24 * 60),  # opened this many minutes after T
)


@given(a=cases, b=cases, later=st.integers(0, 7 * 24 * 60))
def test_the_stored_order_matches_a_fresh_ranking_at_any_later_time(
    a: tuple[str, float, int], b: tuple[str, float, int], later: int
) -> None:
    """Stored once, compared later: the same order as ranking by what is left *now*."""

    def live_key(case: tuple[str, float, int], now: datetime) -> float:
        tier, risk, offset = case
        clock = sla_clock(
            tier=tier, due=due_at(T + timedelta(minutes=offset), tier, sla=SLA), sla=SLA, now=now
        )
        head = {"critical": 60.0, "high": 20.0}.get(tier, 0.0) + 45.0 * risk / 100
        return -(clock.minutes_left - head)

    stored_a, stored_b = (rank(t, r, T + timedelta(minutes=o)) for t, r, o in (a, b))
    for now in (T, T + timedelta(minutes=later)):
        live_a, live_b = live_key(a, now), live_key(b, now)
        if abs(live_a - live_b) > 0.01:
            assert (stored_a > stored_b) == (live_a > live_b)


def test_explain_says_why() -> None:
    due = due_at(T, "critical", sla=SLA)
    reasons = explain(tier="critical", buzz_risk=80, due_at=due, now=T)
    assert reasons == [
        "SLA due in 15 min",
        "critical urgency: 60 min head start",
        "buzz risk 80: 36 min head start",
    ]
