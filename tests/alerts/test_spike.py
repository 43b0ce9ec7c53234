"""The spike test on synthetic hourly series (alerts/spike.py documents the test).

Eight weeks of hourly negative-mention counts are drawn from a Poisson law whose rate follows a
realistic week: quiet nights, busy office hours, and a Monday 09:00-11:00 rush three times the
usual day level. The test hour is Monday 10:00-11:00 of the ninth week.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from alerts.spike import baseline_windows, spike_test

MONDAY_10 = datetime(2026, 11, 16, 11, 0, tzinfo=UTC)  # end of the hour under test


def _rate(moment: datetime) -> float:
    """Expected negative mentions per hour at this hour of the week."""
    hour, weekday = moment.hour, moment.weekday()
    if hour < 7 or hour >= 22:
        return 1.0
    rate = 12.0 if weekday < 5 else 6.0
    if weekday == 0 and 9 <= hour < 11:
        rate = 36.0  # the Monday-morning rush: everyone's weekend trip went wrong
    return rate


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: fine for the small rates used here.
    limit, k, p = pow(2.718281828459045, -lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _history(rng: random.Random, end: datetime, *, scale: float = 1.0) -> list[int]:
    """Counts of the comparable past hours (what the database would return)."""
    counts = []
    for start, _ in baseline_windows(end, weeks=8, timezone="UTC"):
        counts.append(_poisson(rng, _rate(start) * scale))
    return counts


def test_windows_are_the_same_hour_of_past_weeks_and_their_neighbours() -> None:
    windows = baseline_windows(MONDAY_10, weeks=2, timezone="UTC")
    ends = sorted(end for _, end in windows)
    assert len(windows) == 6
    assert ends[-1] == MONDAY_10 - timedelta(weeks=1) + timedelta(hours=1)
    assert all(end - start == timedelta(hours=1) for start, end in windows)
    assert {end.weekday() for end in ends} == {0}


def test_windows_follow_local_time_across_a_daylight_saving_change() -> None:
    # Paris left summer time on 2026-10-25: Monday 10:00 local is 09:00 UTC after, 08:00 before.
    end = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # 11:00 in Paris
    windows = baseline_windows(end, weeks=2, timezone="Europe/Paris")
    middle = sorted(windows)[1::3]  # the "same hour" window of each week
    assert [w[1].hour for w in middle] == [9, 10]  # 11:00 Paris in summer time, then winter time


def test_windows_before_monitoring_began_are_left_out() -> None:
    began = MONDAY_10 - timedelta(weeks=3)
    windows = baseline_windows(MONDAY_10, weeks=8, timezone="UTC", not_before=began)
    assert len(windows) == 7  # weeks 1 and 2 (3 each) and the one of week 3 that fits
    assert all(start >= began for start, _ in windows)


def test_a_real_spike_fires() -> None:
    rng = random.Random(7)
    history = _history(rng, MONDAY_10)
    verdict = spike_test(150, history)
    assert verdict.fired, verdict
    assert "150 negative mentions" in verdict.why


def test_a_normal_busy_monday_morning_does_not_fire() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        history = _history(rng, MONDAY_10)
        observed = _poisson(rng, _rate(MONDAY_10 - timedelta(hours=1)))
        verdict = spike_test(observed, history)
        assert not verdict.fired, (seed, verdict)
        # A test against the weekday's average level would have fired on the same hour.
        naive = spike_test(observed, [12] * 24)
        assert naive.fired or observed < 30, (seed, observed)


def test_a_busy_monday_that_is_twice_the_usual_rush_is_still_not_a_spike() -> None:
    rng = random.Random(3)
    history = _history(rng, MONDAY_10)
    assert not spike_test(48, history).fired  # the rush plus a third: a bad morning, no spike


def test_low_volumes_do_not_fire() -> None:
    rng = random.Random(11)
    quiet_night = datetime(2026, 11, 18, 4, 0, tzinfo=UTC)
    history = _history(rng, quiet_night, scale=0.3)  # about 0.3 negative mentions an hour
    verdict = spike_test(8, history)  # 25 times the usual level, but only 8 posts
    assert verdict.z > 4 and not verdict.fired
    assert "under the minimum" in verdict.why
    assert spike_test(12, history).fired  # past the minimum count, the same jump is a spike


def test_no_history_no_spike() -> None:
    assert not spike_test(500, []).fired
    assert not spike_test(500, [3, 4, 2]).fired  # one week: not enough to know the usual level


def test_a_past_spike_in_the_history_does_not_hide_a_new_one() -> None:
    rng = random.Random(5)
    history = _history(rng, MONDAY_10)
    history[4] = 400  # last month's outage sits in the history
    assert spike_test(150, history).fired
