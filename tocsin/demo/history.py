"""A past week of team work for the demo's backlog, so the board and the report have history.

Backlog cases older than a couple of hours are given what a care team would have done: opened when
the post appeared, answered within minutes to hours (faster for urgent tiers), handed off to DM or
phone for some, then resolved. Recent and live cases stay open for the person trying the demo.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlmodel import Session

from storage import queries
from storage.models import CaseStatus, ReplyAction, TeamMember
from tocsin.config import Settings
from triage.sla import due_at

FIRST_RESPONSE_MINUTES = {
    "critical": (3, 25),
    "high": (8, 50),
    "normal": (15, 150),
    "low": (30, 900),
}


def _responder(members: list[TeamMember], lang: str | None, rng: random.Random) -> TeamMember:
    speakers = [m for m in members if lang in (m.languages or [])]
    return rng.choice(speakers or members)


def add_history(
    session: Session, *, settings: Settings, now: datetime, older_than: timedelta, seed: int = 7
) -> int:
    """Close the backlog's older cases the way the team would have; returns how many."""
    rng = random.Random(seed)
    members = [m for m in queries.team_members(session, active_only=True) if m.id is not None]
    if not members:
        return 0
    handled = 0
    for case, posted_at in queries.open_cases_with_post_times(session, before=now - older_than):
        assert case.id is not None
        opened = posted_at
        low, high = FIRST_RESPONSE_MINUTES.get(case.urgency_tier, (15, 120))
        first_response = opened + timedelta(minutes=rng.uniform(low, high))
        member = _responder(members, case.lang, rng)
        roll = rng.random()
        handoff = None
        if roll < 0.3:
            handoff = ReplyAction.dm_invite
        elif roll < 0.4:
            handoff = ReplyAction.phone_callback
        dismissed = case.urgency_tier == "low" and roll > 0.8
        status = CaseStatus.dismissed if dismissed else CaseStatus.resolved
        updated = queries.update_case_guarded(
            session,
            case_id=case.id,
            expected_version=case.version,
            values={
                "created_at": opened,
                "sla_due_at": due_at(
                    opened, case.urgency_tier, sla=settings.sla, timezone=settings.timezone
                ),
                "assignee_id": member.id,
                "first_response_at": first_response,
                "handoff": handoff.value if handoff else None,
                "status": status.value,
                "resolved_at": first_response + timedelta(minutes=rng.uniform(5, 240)),
            },
            action="case.demo_history",
            actor="demo",
        )
        handled += updated is not None
    return handled
