"""Queue priority from urgency, buzz risk and the time left on the SLA.

Why a deadline and not a score: the stored `Case.priority` must stay a correct order as time
passes without rewriting every row each minute. "Minutes left" is a snapshot that goes stale at
once, but the due time is fixed; ordering by due time is ordering by time left, for every `now`.
So the priority is an *effective deadline*, written as a number (higher = handle first):

    effective_due = sla_due_at - tier_head_start - risk_head_start
    priority      = -(effective_due in minutes since 2020-01-01)

- `tier_head_start`: critical 60 min, high 20, normal 0, low 0. A critical case with 14 minutes
  left still comes before a high one with 5 minutes left, because one is a safety or legal issue.
- `risk_head_start`: buzz risk 0–100 gives up to 45 minutes: a risky post from a journalist
  jumps ahead of a routine complaint due at the same time.
- Answered cases (first response sent) drop below every unanswered one by a constant, which keeps
  their own order.

Every term is a constant offset from a fixed time, so the comparison between two cases never
changes as the clock runs; only a new score or a new SLA (recomputed by intake) moves a case.

Public functions: `priority_for(*, tier, buzz_risk, due_at, answered=False) -> float`,
`explain(...) -> list[str]` (why a case sits where it is), `ANSWERED_DROP`.
"""

from __future__ import annotations

from datetime import UTC, datetime

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
TIER_HEAD_START_MINUTES = {"critical": 60.0, "high": 20.0, "normal": 0.0, "low": 0.0}
MAX_RISK_HEAD_START_MINUTES = 45.0
# About 19 years of minutes: larger than any gap between two due times in the queue.
ANSWERED_DROP = 10_000_000.0


def risk_head_start(buzz_risk: float) -> float:
    clamped = min(max(buzz_risk, 0.0), 100.0)
    return MAX_RISK_HEAD_START_MINUTES * clamped / 100.0


def effective_due_minutes(*, tier: str, buzz_risk: float, due_at: datetime) -> float:
    due = due_at if due_at.tzinfo else due_at.replace(tzinfo=UTC)
    minutes = (due - EPOCH).total_seconds() / 60.0
    return minutes - TIER_HEAD_START_MINUTES.get(tier, 0.0) - risk_head_start(buzz_risk)


def priority_for(*, tier: str, buzz_risk: float, due_at: datetime, answered: bool = False) -> float:
    """The number stored in `Case.priority` (higher first); see the module docstring."""
    value = -effective_due_minutes(tier=tier, buzz_risk=buzz_risk, due_at=due_at)
    return round(value - (ANSWERED_DROP if answered else 0.0), 3)


def explain(*, tier: str, buzz_risk: float, due_at: datetime, now: datetime) -> list[str]:
    """Short reasons for the queue's tooltip ("critical: 60 min head start", ...)."""
    reasons = []
    left = (due_at - now).total_seconds() / 60.0
    reasons.append(f"SLA {'overdue' if left < 0 else 'due'} in {abs(round(left))} min")
    head = TIER_HEAD_START_MINUTES.get(tier, 0.0)
    if head:
        reasons.append(f"{tier} urgency: {round(head)} min head start")
    risk = risk_head_start(buzz_risk)
    if risk >= 1:
        reasons.append(f"buzz risk {round(buzz_risk)}: {round(risk)} min head start")
    return reasons
