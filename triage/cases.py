"""Case actions: claim, release, assign, reply, hand off, resolve, dismiss, reopen, notes, tags,
and "who is viewing".

Every function takes the caller's session (the caller owns the transaction), changes one case
atomically and writes an audit event. Status flow:

    new → assigned → replied → handed_off → resolved | dismissed   (reopen: back to assigned/new)

Concurrency: each change is one conditional UPDATE guarded by `Case.version`
(`storage.queries.update_case_guarded`), so two people can never both hold or change the same
case; the loser gets `CaseHeld` (naming the holder) or `CaseChanged`. Pass `expected_version` (the
version the page showed) to also refuse changes to a case that moved on since it was displayed.

Who may act: the holder of the case, or a lead/admin. Anyone on the team may act on an unassigned
case (claim it, dismiss spam, add a note). Errors are `triage.errors.TriageError` subclasses with
a one-line message meant for the board.

Public functions:
- `claim(session, *, case_id, member_id, expected_version=None) -> ClaimOutcome` (never raises for
  a lost race: `outcome.won` is False and `outcome.message` says who holds the case).
- `release(...)`, `assign(...)`, `mark_replied(...)`, `hand_off(...)`, `resolve(...)`,
  `dismiss(...)`, `reopen(...)` -> the updated `Case`.
- `add_note(...) -> CaseNote`, `add_tags(...)`, `remove_tags(...) -> Case`.
- `mark_viewing(...)`, `stop_viewing(...)`, `viewers(...) -> list[Viewer]`,
  `viewers_for(session, *, case_ids, ...) -> dict[int, list[Viewer]]` (a queue page at once).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from storage import queries
from storage.models import Case, CaseNote, CaseStatus, ReplyAction, Role, TeamMember
from storage.types import utcnow
from triage.errors import (
    CaseChanged,
    CaseHeld,
    CaseNotFound,
    InvalidTransition,
    MemberNotFound,
    NotPermitted,
    TriageError,
)
from triage.priority import ANSWERED_DROP

OPEN = frozenset({CaseStatus.new, CaseStatus.assigned, CaseStatus.replied, CaseStatus.handed_off})
CLOSED = frozenset({CaseStatus.resolved, CaseStatus.dismissed})
HANDOFF_KINDS = (ReplyAction.dm_invite.value, ReplyAction.phone_callback.value, "expert")
MAX_NOTE_CHARS = 5_000
MAX_TAG_CHARS = 40
MAX_TAGS = 20
VIEWING_WINDOW = timedelta(seconds=90)


@dataclass(slots=True)
class ClaimOutcome:
    won: bool
    case: Case | None
    holder_id: int | None
    holder_name: str | None
    message: str


@dataclass(slots=True)
class Viewer:
    member_id: int
    name: str
    seen_at: datetime


# ----------------------------------------------------------------------------- helpers


def get_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id, populate_existing=True)
    if case is None:
        raise CaseNotFound(f"case {case_id} does not exist")
    return case


def get_member(session: Session, member_id: int) -> TeamMember:
    member = session.get(TeamMember, member_id)
    if member is None or not member.active:
        raise MemberNotFound(f"team member {member_id} does not exist or is inactive")
    return member


def is_lead(member: TeamMember) -> bool:
    return member.role in (Role.lead, Role.admin)


def holder_name(session: Session, case: Case) -> str | None:
    if case.assignee_id is None:
        return None
    holder = session.get(TeamMember, case.assignee_id)
    return holder.name if holder else f"member {case.assignee_id}"


def _ensure_may_act(session: Session, case: Case, member: TeamMember, what: str) -> None:
    if case.assignee_id in (None, member.id) or is_lead(member):
        return
    name = holder_name(session, case)
    raise CaseHeld(
        f"case {case.id} is held by {name}: only they or a lead can {what} it",
        holder_id=case.assignee_id,
        holder_name=name,
    )


def _ensure_status(case: Case, allowed: Iterable[str], what: str) -> None:
    if case.status not in set(allowed):
        raise InvalidTransition(f"cannot {what} case {case.id}: it is {case.status}")


def _ensure_version(case: Case, expected_version: int | None) -> int:
    if expected_version is not None and case.version != expected_version:
        raise CaseChanged(
            f"case {case.id} changed since you opened it (now {case.status}); reload it"
        )
    return case.version


def _change(
    session: Session,
    case: Case,
    *,
    version: int,
    values: dict[str, Any],
    action: str,
    actor: TeamMember | None,
    details: dict[str, Any] | None = None,
) -> Case:
    updated = queries.update_case_guarded(
        session,
        case_id=case.id or 0,
        expected_version=version,
        values=values,
        action=action,
        actor_id=actor.id if actor else None,
        actor=actor.name if actor else None,
        details=details,
    )
    if updated is None:
        fresh = get_case(session, case.id or 0)
        name = holder_name(session, fresh)
        if fresh.assignee_id is not None and actor is not None and fresh.assignee_id != actor.id:
            raise CaseHeld(
                f"case {case.id} was just taken by {name}",
                holder_id=fresh.assignee_id,
                holder_name=name,
            )
        raise CaseChanged(f"case {case.id} changed meanwhile (now {fresh.status}); reload it")
    return updated


# ----------------------------------------------------------------------------- holding a case


def claim(
    session: Session, *, case_id: int, member_id: int, expected_version: int | None = None
) -> ClaimOutcome:
    """Take a new or assigned case atomically; the loser learns who holds it."""
    member = get_member(session, member_id)
    case = get_case(session, case_id)
    if case.status not in (CaseStatus.new, CaseStatus.assigned):
        name = holder_name(session, case)
        return ClaimOutcome(
            False, case, case.assignee_id, name, f"case {case_id} is already {case.status}"
        )
    result = queries.claim_case(
        session,
        case_id=case_id,
        member_id=member_id,
        expected_version=expected_version,
        actor=member.name,
    )
    holder = result.case.assignee_id if result.case else None
    name = holder_name(session, result.case) if result.case else None
    if result.won:
        return ClaimOutcome(True, result.case, member_id, member.name, f"you hold case {case_id}")
    if holder not in (None, member_id):
        message = f"case {case_id} is held by {name}"
    else:
        message = f"case {case_id} changed since you opened it; reload it"
    return ClaimOutcome(False, result.case, holder, name, message)


def release(
    session: Session,
    *,
    case_id: int,
    member_id: int,
    reason: str | None = None,
    expected_version: int | None = None,
) -> Case:
    """Give an assigned case back to the queue (status new, no assignee)."""
    member = get_member(session, member_id)
    case = get_case(session, case_id)
    version = _ensure_version(case, expected_version)
    _ensure_status(case, [CaseStatus.assigned], "release")
    _ensure_may_act(session, case, member, "release")
    return _change(
        session,
        case,
        version=version,
        values={"status": CaseStatus.new.value, "assignee_id": None},
        action="case.released",
        actor=member,
        details={"previous_assignee_id": case.assignee_id, "reason": reason or ""},
    )


def assign(
    session: Session,
    *,
    case_id: int,
    assignee_id: int,
    by_id: int | None = None,
    reason: str = "",
    expected_version: int | None = None,
    action: str = "case.assigned",
) -> Case:
    """Give a case to `assignee_id`: routing (by_id None), a lead, or the holder passing it on.

    `reason` is the explanation shown on the board ("assigned to Lea: speaks fr, ...").
    A new case becomes assigned; a replied or handed-off case keeps its status.
    """
    assignee = get_member(session, assignee_id)
    by = get_member(session, by_id) if by_id is not None else None
    case = get_case(session, case_id)
    version = _ensure_version(case, expected_version)
    _ensure_status(case, OPEN, "assign")
    if by is not None and not is_lead(by) and case.assignee_id != by.id:
        if case.assignee_id is None:
            raise NotPermitted("only a lead can assign an unclaimed case to someone else")
        _ensure_may_act(session, case, by, "reassign")
    if by is None and case.assignee_id is not None and action == "case.assigned":
        raise CaseHeld(
            f"case {case_id} is already held by {holder_name(session, case)}",
            holder_id=case.assignee_id,
            holder_name=holder_name(session, case),
        )
    status = CaseStatus.assigned.value if case.status == CaseStatus.new else case.status
    return _change(
        session,
        case,
        version=version,
        values={"assignee_id": assignee.id, "status": status},
        action=action,
        actor=by,
        details={
            "previous_assignee_id": case.assignee_id,
            "assignee": assignee.name,
            "reason": reason,
        },
    )


# ----------------------------------------------------------------------------- answering


def mark_replied(
    session: Session,
    *,
    case_id: int,
    member_id: int,
    reply_id: int,
    action: str = ReplyAction.public_reply.value,
    sent_at: datetime | None = None,
    expected_version: int | None = None,
) -> Case:
    """Record that a reply went out: status replied (or handed_off when the reply carried a DM
    invite or a phone callback); `first_response_at` is set on the first reply only.

    Called by `triage.replies` once the send-time checks passed; the board does not call it.
    """
    member = get_member(session, member_id)
    case = get_case(session, case_id)
    version = _ensure_version(case, expected_version)
    _ensure_status(
        case, [CaseStatus.assigned, CaseStatus.replied, CaseStatus.handed_off], "reply to"
    )
    _ensure_may_act(session, case, member, "reply to")
    when = sent_at or utcnow()
    values: dict[str, Any] = {}
    if case.assignee_id is None:
        values["assignee_id"] = member.id
    if action in (ReplyAction.dm_invite, ReplyAction.phone_callback):
        values["status"] = CaseStatus.handed_off.value
        values["handoff"] = action
    elif case.status != CaseStatus.handed_off:
        values["status"] = CaseStatus.replied.value
    if case.first_response_at is None:
        values["first_response_at"] = when
        # Answered cases sink below every unanswered one, keeping their own order.
        values["priority"] = round(case.priority - ANSWERED_DROP, 3)
    return _change(
        session,
        case,
        version=version,
        values=values or {"status": case.status},
        action="case.replied",
        actor=member,
        details={"reply_id": reply_id, "reply_action": action},
    )


def hand_off(
    session: Session,
    *,
    case_id: int,
    member_id: int,
    handoff: str,
    note: str | None = None,
    expected_version: int | None = None,
) -> Case:
    """Move the conversation out of public view: `dm_invite`, `phone_callback` or `expert`."""
    if handoff not in HANDOFF_KINDS:
        raise TriageError(f"unknown handoff {handoff!r}; use one of {', '.join(HANDOFF_KINDS)}")
    member = get_member(session, member_id)
    case = get_case(session, case_id)
    version = _ensure_version(case, expected_version)
    _ensure_status(
        case, [CaseStatus.assigned, CaseStatus.replied, CaseStatus.handed_off], "hand off"
    )
    _ensure_may_act(session, case, member, "hand off")
    updated = _change(
        session,
        case,
        version=version,
        values={"status": CaseStatus.handed_off.value, "handoff": handoff},
        action="case.handed_off",
        actor=member,
        details={"note": note or ""},
    )
    if note:
        _insert_note(session, case_id=case_id, member=member, text=note)
    return updated


def resolve(
    session: Session,
    *,
    case_id: int,
    member_id: int,
    note: str | None = None,
    expected_version: int | None = None,
) -> Case:
    """Close a case that was handled."""
    return _close(
        session,
        case_id=case_id,
        member_id=member_id,
        status=CaseStatus.resolved,
        note=note,
        expected_version=expected_version,
    )


def dismiss(
    session: Session,
    *,
    case_id: int,
    member_id: int,
    reason: str,
    expected_version: int | None = None,
) -> Case:
    """Close a case that needs no answer (spam, not about us, duplicate); a reason is required."""
    if not reason.strip():
        raise TriageError("say why the case is dismissed (spam, duplicate, not about us, ...)")
    return _close(
        session,
        case_id=case_id,
        member_id=member_id,
        status=CaseStatus.dismissed,
        note=reason,
        expected_version=expected_version,
    )


def _close(
    session: Session,
    *,
    case_id: int,
    member_id: int,
    status: CaseStatus,
    note: str | None,
    expected_version: int | None,
) -> Case:
    member = get_member(session, member_id)
    case = get_case(session, case_id)
    version = _ensure_version(case, expected_version)
    verb = "resolve" if status == CaseStatus.resolved else "dismiss"
    _ensure_status(case, OPEN, verb)
    _ensure_may_act(session, case, member, verb)
    updated = _change(
        session,
        case,
        version=version,
        values={"status": status.value, "resolved_at": utcnow()},
        action=f"case.{status.value}",
        actor=member,
        details={"note": note or ""},
    )
    if note:
        _insert_note(session, case_id=case_id, member=member, text=note)
    return updated


def reopen(
    session: Session,
    *,
    case_id: int,
    member_id: int,
    reason: str = "",
    expected_version: int | None = None,
) -> Case:
    """Reopen a closed case (the customer came back): it goes to the member who reopens it."""
    member = get_member(session, member_id)
    case = get_case(session, case_id)
    version = _ensure_version(case, expected_version)
    _ensure_status(case, CLOSED, "reopen")
    return _change(
        session,
        case,
        version=version,
        values={"status": CaseStatus.assigned.value, "assignee_id": member.id, "resolved_at": None},
        action="case.reopened",
        actor=member,
        details={"reason": reason, "previous_status": case.status},
    )


# ----------------------------------------------------------------------------- notes and tags


def _insert_note(session: Session, *, case_id: int, member: TeamMember, text: str) -> CaseNote:
    note = CaseNote(case_id=case_id, member_id=member.id, text=text[:MAX_NOTE_CHARS])
    session.add(note)
    session.flush()
    return note


def add_note(session: Session, *, case_id: int, member_id: int, text: str) -> CaseNote:
    """An internal note on the case (never published). Any team member may add one."""
    text = text.strip()
    if not text:
        raise TriageError("a note cannot be empty")
    if len(text) > MAX_NOTE_CHARS:
        raise TriageError(f"a note is limited to {MAX_NOTE_CHARS} characters")
    member = get_member(session, member_id)
    get_case(session, case_id)
    note = _insert_note(session, case_id=case_id, member=member, text=text)
    queries.add_audit_event(
        session,
        action="case.note_added",
        entity_type="case",
        entity_id=case_id,
        actor_id=member.id,
        actor=member.name,
        details={"note_id": note.id},
    )
    return note


def normalise_tags(tags: Iterable[str]) -> list[str]:
    """Lower-case, trimmed, inner spaces as dashes, no duplicates, order kept."""
    seen: list[str] = []
    for tag in tags:
        clean = "-".join(tag.strip().lower().split())[:MAX_TAG_CHARS]
        if clean and clean not in seen:
            seen.append(clean)
    return seen


def add_tags(session: Session, *, case_id: int, member_id: int, tags: Iterable[str]) -> Case:
    """Add tags (kept normalised, at most MAX_TAGS)."""
    member = get_member(session, member_id)
    case = get_case(session, case_id)
    wanted = normalise_tags([*case.tags, *tags])
    if len(wanted) > MAX_TAGS:
        raise TriageError(f"a case can carry at most {MAX_TAGS} tags")
    added = [t for t in wanted if t not in case.tags]
    if not added:
        return case
    return _change(
        session,
        case,
        version=case.version,
        values={"tags": wanted},
        action="case.tagged",
        actor=member,
        details={"added": added},
    )


def remove_tags(session: Session, *, case_id: int, member_id: int, tags: Iterable[str]) -> Case:
    member = get_member(session, member_id)
    case = get_case(session, case_id)
    dropped = set(normalise_tags(tags))
    kept = [t for t in case.tags if t not in dropped]
    if kept == list(case.tags):
        return case
    return _change(
        session,
        case,
        version=case.version,
        values={"tags": kept},
        action="case.untagged",
        actor=member,
        details={"removed": sorted(dropped & set(case.tags))},
    )


# ----------------------------------------------------------------------------- who is viewing


def mark_viewing(
    session: Session, *, case_id: int, member_id: int, now: datetime | None = None
) -> None:
    """Record that the member has the case open (call it on each page refresh)."""
    queries.touch_case_view(session, case_id=case_id, member_id=member_id, now=now or utcnow())


def stop_viewing(session: Session, *, case_id: int, member_id: int) -> None:
    queries.clear_case_view(session, case_id=case_id, member_id=member_id)


def viewers(
    session: Session,
    *,
    case_id: int,
    exclude_member_id: int | None = None,
    now: datetime | None = None,
    window: timedelta = VIEWING_WINDOW,
) -> list[Viewer]:
    """Who else had the case open within `window` (most recent first)."""
    since = (now or utcnow()) - window
    rows = queries.case_viewers(session, case_id=case_id, since=since)
    return [
        Viewer(member_id=m.id or 0, name=m.name, seen_at=seen)
        for m, seen in rows
        if m.id != exclude_member_id
    ]


def viewers_for(
    session: Session,
    *,
    case_ids: Iterable[int],
    exclude_member_id: int | None = None,
    now: datetime | None = None,
    window: timedelta = VIEWING_WINDOW,
) -> dict[int, list[Viewer]]:
    """`viewers` for a whole page of the queue in one query: case id -> viewers."""
    since = (now or utcnow()) - window
    rows = queries.viewers_by_case(session, case_ids=list(case_ids), since=since)
    return {
        case_id: [
            Viewer(member_id=m.id or 0, name=m.name, seen_at=seen)
            for m, seen in seen_by
            if m.id != exclude_member_id
        ]
        for case_id, seen_by in rows.items()
    }
