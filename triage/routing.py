"""Routing: who should handle a case, and why.

Automatic assignment picks, for each unassigned new case (highest priority first), a team member
who is active and on shift, speaks the post's language, and holds fewer open cases than their
cap. Among those, a member with the topic as a skill, who answered this author before, and with
the lightest load (relative to their cap) wins. Each choice carries a one-line explanation:
"assigned to Lea: speaks fr, skill billing, 2/8 open, answered this author before".

When nobody fits (nobody on shift, nobody speaks the language, everyone at their cap) the case
stays in the queue with the reason (`case.unrouted`); for a critical case the leads are notified.
Critical cases always notify the leads on shift (audit event `case.lead_notified`, whose details
hold the leads' ids, names and emails, for the alerts engine and the board).

Public functions:
- `route_new_cases(session, *, settings, now=None) -> list[tuple[int, int]]` (case id, member id)
- `plan_routes(session, *, settings, limit=200) -> list[RouteDecision]` (the same, with reasons,
  without writing anything)
- `choose_member(case, candidates, *, loads, author_history, topic_skills) -> RouteDecision`
- `reassign(session, *, case_id, to_member_id, by_id, reason="") -> Reassignment` (manual; the
  warnings say when the new holder is off shift, over their cap or lacks the language)
- `escalate(session, *, case_id, by_id, reason, lead_id=None) -> Escalation`
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from storage import queries
from storage.models import Case, Role, TeamMember, UrgencyTier
from tocsin.config import Settings
from triage import cases
from triage.errors import CaseChanged, CaseHeld, NotPermitted, TriageError

SKILL_WEIGHT = 3.0
HISTORY_WEIGHT = 2.0
LOAD_WEIGHT = 2.0
ROUTING_BATCH = 200


@dataclass(slots=True)
class RouteDecision:
    case_id: int
    member_id: int | None
    member_name: str | None
    explanation: str
    reasons: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Reassignment:
    case: Case
    warnings: list[str]


@dataclass(slots=True)
class Escalation:
    case: Case
    lead_id: int
    lead_name: str
    notify: list[str]  # the emails of the leads to alert


def base_language(lang: str | None) -> str | None:
    """'fr-CA' -> 'fr'; None stays None (unknown language: anyone may take it)."""
    if not lang:
        return None
    return lang.replace("_", "-").split("-")[0].lower() or None


def speaks(member: TeamMember, lang: str | None) -> bool:
    wanted = base_language(lang)
    return wanted is None or wanted in {base_language(x) for x in member.languages}


def _has_room(member: TeamMember, loads: Mapping[int, int]) -> bool:
    return loads.get(member.id or 0, 0) < member.max_open_cases


def choose_member(
    case: Case,
    candidates: Sequence[TeamMember],
    *,
    loads: Mapping[int, int],
    author_history: Mapping[int, int],
    topic_skills: bool = True,
) -> RouteDecision:
    """The best member for a case among `candidates` (already on shift), with the reasons.

    Language and the load cap are hard rules; skill, author history and relative load rank
    the members that pass them.
    """
    case_id = case.id or 0
    if not candidates:
        return RouteDecision(case_id, None, None, "not assigned: nobody is on shift")
    speakers = [m for m in candidates if speaks(m, case.lang)]
    if not speakers:
        lang = base_language(case.lang)
        return RouteDecision(case_id, None, None, f"not assigned: nobody on shift speaks {lang}")
    with_room = [m for m in speakers if _has_room(m, loads)]
    if not with_room:
        return RouteDecision(
            case_id, None, None, "not assigned: everyone who fits is at their open-case cap"
        )

    def score(member: TeamMember) -> tuple[float, int, int]:
        skill = topic_skills and bool(case.topic) and case.topic in member.skills
        history = author_history.get(member.id or 0, 0)
        load_ratio = loads.get(member.id or 0, 0) / max(member.max_open_cases, 1)
        value = SKILL_WEIGHT * skill + HISTORY_WEIGHT * min(history, 3) - LOAD_WEIGHT * load_ratio
        return (value, -loads.get(member.id or 0, 0), -(member.id or 0))

    best = max(with_room, key=score)
    reasons = []
    lang = base_language(case.lang)
    if lang:
        reasons.append(f"speaks {lang}")
    if case.topic and case.topic in best.skills:
        reasons.append(f"skill {case.topic}")
    reasons.append(f"{loads.get(best.id or 0, 0)}/{best.max_open_cases} open")
    if author_history.get(best.id or 0, 0):
        reasons.append("answered this author before")
    explanation = f"assigned to {best.name}: {', '.join(reasons)}"
    return RouteDecision(case_id, best.id, best.name, explanation, reasons)


def _leads_on_shift(members: Sequence[TeamMember]) -> list[TeamMember]:
    return [m for m in members if m.role in (Role.lead, Role.admin)]


def plan_routes(
    session: Session, *, settings: Settings, limit: int = ROUTING_BATCH
) -> list[RouteDecision]:
    """Decisions for the unassigned new cases, without writing anything."""
    return [d for d, _ in _plan(session, limit=limit)]


def _plan(session: Session, *, limit: int) -> list[tuple[RouteDecision, Case]]:
    pending = queries.unassigned_new_cases(session, limit=limit)
    if not pending:
        return []
    on_shift = queries.members_on_shift(session)
    loads = dict(queries.open_load_by_member(session))
    authors = queries.mention_authors(
        session, mention_ids=[c.mention_id for c in pending if c.mention_id is not None]
    )
    histories = queries.replies_by_member_to_authors(session, author_ids=set(authors.values()))
    decisions = []
    for case in pending:
        author_id = authors.get(case.mention_id or 0)
        decision = choose_member(
            case,
            on_shift,
            loads=loads,
            author_history=histories.get(author_id, {}) if author_id is not None else {},
        )
        if decision.member_id is not None:
            loads[decision.member_id] = loads.get(decision.member_id, 0) + 1
        decisions.append((decision, case))
    return decisions


def route_new_cases(
    session: Session, *, settings: Settings, now: datetime | None = None
) -> list[tuple[int, int]]:
    """Assign unassigned new cases to members on shift; returns (case id, member id) pairs.

    Does nothing when `settings.triage.auto_assign` is off. Cases someone claimed meanwhile are
    skipped. Critical cases notify the leads, whether or not someone could take them.
    `now` is the scheduler's clock, kept in the signature for the service; the choice itself
    does not depend on the time (shifts are the members' `on_shift` flag).
    """
    if not settings.triage.auto_assign:
        return []
    assigned: list[tuple[int, int]] = []
    # With no lead on shift, every active lead hears about a critical case.
    leads = _leads_on_shift(queries.members_on_shift(session)) or _leads_on_shift(
        queries.team_members(session, active_only=True)
    )
    for decision, case in _plan(session, limit=ROUTING_BATCH):
        critical = case.urgency_tier == UrgencyTier.critical
        if decision.member_id is None:
            queries.add_audit_event(
                session,
                action="case.unrouted",
                entity_type="case",
                entity_id=case.id,
                details={"reason": decision.explanation},
            )
            if critical:
                _notify_leads(session, case, leads, why=decision.explanation)
            continue
        try:
            cases.assign(
                session,
                case_id=case.id or 0,
                assignee_id=decision.member_id,
                reason=decision.explanation,
                expected_version=case.version,
                action="case.routed",
            )
        except (CaseHeld, CaseChanged):
            continue
        assigned.append((case.id or 0, decision.member_id))
        if critical:
            _notify_leads(session, case, leads, why=f"critical case, {decision.explanation}")
    return assigned


def _notify_leads(session: Session, case: Case, leads: Sequence[TeamMember], *, why: str) -> None:
    queries.add_audit_event(
        session,
        action="case.lead_notified",
        entity_type="case",
        entity_id=case.id,
        details={
            "reason": why,
            "lead_ids": [lead.id for lead in leads],
            "leads": [lead.name for lead in leads],
            "emails": [lead.email for lead in leads],
            "urgency_tier": case.urgency_tier,
            "buzz_risk": case.buzz_risk,
        },
    )


def reassign(
    session: Session, *, case_id: int, to_member_id: int, by_id: int, reason: str = ""
) -> Reassignment:
    """A lead (or the holder) gives the case to someone else; warns rather than refuses when the
    new holder is off shift, at their cap, or does not list the language."""
    target = cases.get_member(session, to_member_id)
    case = cases.get_case(session, case_id)
    warnings = []
    if not target.on_shift:
        warnings.append(f"{target.name} is not on shift")
    load = queries.open_load_by_member(session).get(target.id or 0, 0)
    if load >= target.max_open_cases:
        warnings.append(f"{target.name} already holds {load}/{target.max_open_cases} open cases")
    if not speaks(target, case.lang):
        warnings.append(f"{target.name} does not list {base_language(case.lang)}")
    explanation = f"reassigned to {target.name}" + (f": {reason}" if reason else "")
    updated = cases.assign(
        session,
        case_id=case_id,
        assignee_id=to_member_id,
        by_id=by_id,
        reason=explanation,
        action="case.reassigned",
    )
    return Reassignment(updated, warnings)


def escalate(
    session: Session, *, case_id: int, by_id: int | None, reason: str, lead_id: int | None = None
) -> Escalation:
    """Hand a case to a lead (the one named, else the least loaded lead on shift who speaks the
    language, else any active lead) and notify the leads. Audited as `case.escalated`."""
    if not reason.strip():
        raise TriageError("say why the case is escalated")
    case = cases.get_case(session, case_id)
    if by_id is not None:
        by = cases.get_member(session, by_id)
        if case.assignee_id not in (None, by.id) and not cases.is_lead(by):
            raise NotPermitted("only the holder or a lead can escalate this case")
    lead = cases.get_member(session, lead_id) if lead_id is not None else _pick_lead(session, case)
    if not cases.is_lead(lead):
        raise NotPermitted(f"{lead.name} is not a lead")
    updated = cases.assign(
        session,
        case_id=case_id,
        assignee_id=lead.id or 0,
        reason=f"escalated to {lead.name}: {reason}",
        action="case.escalated",
    )
    leads = _leads_on_shift(queries.members_on_shift(session)) or [lead]
    _notify_leads(session, updated, leads, why=f"escalated: {reason}")
    return Escalation(updated, lead.id or 0, lead.name, [m.email for m in leads])


def _pick_lead(session: Session, case: Case) -> TeamMember:
    loads = queries.open_load_by_member(session)
    on_shift = _leads_on_shift(queries.members_on_shift(session))
    pool = [m for m in on_shift if speaks(m, case.lang)] or on_shift
    if not pool:
        pool = _leads_on_shift(queries.team_members(session, active_only=True))
    if not pool:
        raise TriageError("no lead is configured to escalate to")
    return min(pool, key=lambda m: (loads.get(m.id or 0, 0), m.id or 0))
