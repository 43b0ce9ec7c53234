"""The spike test: is the last hour's count of negative mentions far above the brand's usual
level for that hour of the week?

Baseline. For each of the last `lookback_weeks` weeks (8 by default) we count the brand's negative
mentions in three one-hour windows: the same local wall-clock hour one week earlier (so Monday
09:30 is compared with Mondays 09:30, across daylight-saving changes), and the hours just before
and after it. Weeks before the brand's first collected mention are left out, since their zeros
would only mean "not monitored yet". That gives up to 24 samples of "a normal hour like this one".

Test. expected = median of the samples; spread = max(sqrt(expected), 1.4826 × MAD, 1), where
sqrt(expected) is the Poisson noise of a count and 1.4826 × MAD (median absolute deviation) is
the week-to-week variation actually seen; the median and MAD ignore past spikes in the history.
z = (observed − expected) / spread. A spike fires when all of these hold:
- at least `min_history` samples (6, i.e. two weeks) exist: a new brand gets no spike alerts
  until it has a history (the incident rule still catches clusters of similar complaints);
- observed ≥ `min_count` (10 by default): three angry posts in a quiet night are not a spike;
- z ≥ `z_threshold` (4 by default).

A busy Monday morning is busy every Monday, so its expected level is high and it does not fire;
a count compared with the daily average instead would.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

DEFAULT_Z = 4.0
DEFAULT_MIN_COUNT = 10
MIN_HISTORY = 6
NEIGHBOUR_HOURS = (-1, 0, 1)


@dataclass(frozen=True, slots=True)
class SpikeVerdict:
    fired: bool
    observed: int
    expected: float
    spread: float
    z: float
    samples: int
    why: str


def spike_test(
    observed: int,
    history: Sequence[int],
    *,
    z_threshold: float = DEFAULT_Z,
    min_count: int = DEFAULT_MIN_COUNT,
    min_history: int = MIN_HISTORY,
) -> SpikeVerdict:
    """Compare one hour's count with counts of comparable past hours (see the module doc)."""
    if not history:
        return SpikeVerdict(False, observed, 0.0, 0.0, 0.0, 0, "no history yet")
    expected = float(statistics.median(history))
    mad = float(statistics.median([abs(x - expected) for x in history]))
    spread = max(math.sqrt(expected), 1.4826 * mad, 1.0)
    z = (observed - expected) / spread
    samples = len(history)

    def verdict(fired: bool, why: str) -> SpikeVerdict:
        return SpikeVerdict(fired, observed, expected, spread, z, samples, why)

    if samples < min_history:
        return verdict(False, f"only {samples} comparable hours in history (need {min_history})")
    if observed < min_count:
        return verdict(False, f"{observed} negative mentions is under the minimum of {min_count}")
    if z < z_threshold:
        return verdict(False, f"z = {z:.1f} is under {z_threshold:g}")
    return verdict(
        True,
        f"{observed} negative mentions in the last hour against a usual {expected:.0f} "
        f"for this hour of the week (z = {z:.1f})",
    )


def baseline_windows(
    now: datetime, *, weeks: int, timezone: str, not_before: datetime | None = None
) -> list[tuple[datetime, datetime]]:
    """The past one-hour windows comparable with [now − 1 h, now), in UTC-aware datetimes."""
    zone = ZoneInfo(timezone)
    local_end = now.astimezone(zone).replace(tzinfo=None)
    windows = []
    for week in range(1, weeks + 1):
        for shift in NEIGHBOUR_HOURS:
            wall_end = local_end - timedelta(weeks=week) + timedelta(hours=shift)
            end = wall_end.replace(tzinfo=zone).astimezone(now.tzinfo)
            start = end - timedelta(hours=1)
            if not_before is not None and start < not_before:
                continue
            windows.append((start, end))
    return windows
