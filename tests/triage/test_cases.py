"""Case actions: atomic claims, the status flow, permissions, notes, tags, viewers, audit."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from storage.db import session_scope
from storage.models import Case
from storage.queries import audit_events, case_notes
from storage.types import utcnow
from tests.storage.factories import add_case, add_member
from triage import cases
from triage.errors import CaseChanged, CaseHeld, InvalidTransition, NotPermitted, TriageError


def _setup() -> tuple[int, int, int, int]:
    with session_scope() as session:
        case_id = add_case(session).id
        ana = add_member(session, "Ana").id
        ben = add_member(session, "Ben").id
        lea = add_member(session, "Lea", role="lead").id
    assert case_id and ana and ben and lea
    return case_id, ana, ben, lea


def _actions(case_id: int) -> list[str]:
    with session_scope() as session:
        return [e.action for e in audit_events(session, entity_type="case", entity_id=case_id)]


def test_two_agents_claiming_at_once_one_wins_the_other_sees_who(db_url: str) -> None:
    case_id, ana, ben, _ = _setup()
    barrier = threading.Barrier(2)
    outcomes: dict[int, cases.ClaimOutcome] = {}

    def claim(member_id: int) -> None:
        barrier.wait()
        with session_scope() as session:
            outcomes[member_id] = cases.claim(
                session, case_id=case_id, member_id=member_id, expected_version=1
            )

    threads = [threading.Thread(target=claim, args=(m,)) for m in (ana, ben)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winner = next(m for m, o in outcomes.items() if o.won)
    loser = next(o for o in outcomes.values() if not o.won)
    names = {ana: "Ana", ben: "Ben"}
    assert loser.holder_id == winner and loser.holder_name == names[winner]
    assert names[winner] in loser.message
    assert _actions(case_id) == ["case.claimed"]


def test_claiming_a_held_case_later_names_the_holder(db_url: str) -> None:
    case_id, ana, ben, _ = _setup()
    with session_scope() as session:
        assert cases.claim(session, case_id=case_id, member_id=ana).won
    with session_scope() as session:
        lost = cases.claim(session, case_id=case_id, member_id=ben)
    assert (
        not lost.won
        and lost.holder_name == "Ana"
        and lost.message == (f"case {case_id} is held by Ana")
    )


def test_full_flow_new_assigned_replied_handed_off_resolved_is_audited(db_url: str) -> None:
    case_id, ana, _, _ = _setup()
    sent = utcnow()
    with session_scope() as session:
        assert cases.claim(session, case_id=case_id, member_id=ana).won
        replied = cases.mark_replied(
            session, case_id=case_id, member_id=ana, reply_id=1, sent_at=sent
        )
        assert replied.status == "replied" and replied.first_response_at == sent
        again = cases.mark_replied(
            session, case_id=case_id, member_id=ana, reply_id=2, sent_at=sent + timedelta(hours=1)
        )
        assert again.first_response_at == sent  # only the first reply counts for the SLA
        handed = cases.hand_off(
            session, case_id=case_id, member_id=ana, handoff="expert", note="billing team"
        )
        assert handed.status == "handed_off" and handed.handoff == "expert"
        done = cases.resolve(session, case_id=case_id, member_id=ana, note="refund made")
        assert done.status == "resolved" and done.resolved_at is not None
    assert _actions(case_id) == [
        "case.claimed",
        "case.replied",
        "case.replied",
        "case.handed_off",
        "case.resolved",
    ]
    with session_scope() as session, pytest.raises(InvalidTransition, match="resolved"):
        cases.mark_replied(session, case_id=case_id, member_id=ana, reply_id=3)


def test_a_dm_invite_reply_hands_the_case_off(db_url: str) -> None:
    case_id, ana, _, _ = _setup()
    with session_scope() as session:
        cases.claim(session, case_id=case_id, member_id=ana)
        case = cases.mark_replied(
            session, case_id=case_id, member_id=ana, reply_id=1, action="dm_invite"
        )
    assert case.status == "handed_off" and case.handoff == "dm_invite"
    assert case.first_response_at is not None


def test_release_returns_the_case_to_the_queue(db_url: str) -> None:
    case_id, ana, ben, _ = _setup()
    with session_scope() as session:
        cases.claim(session, case_id=case_id, member_id=ana)
        with pytest.raises(CaseHeld, match="held by Ana"):
            cases.release(session, case_id=case_id, member_id=ben)
        case = cases.release(session, case_id=case_id, member_id=ana, reason="going on break")
    assert case.status == "new" and case.assignee_id is None
    with session_scope() as session:
        assert cases.claim(session, case_id=case_id, member_id=ben).won
    assert _actions(case_id) == ["case.claimed", "case.released", "case.claimed"]


def test_only_the_holder_or_a_lead_changes_a_held_case(db_url: str) -> None:
    case_id, ana, ben, lea = _setup()
    with session_scope() as session:
        cases.claim(session, case_id=case_id, member_id=ana)
    with session_scope() as session:
        with pytest.raises(CaseHeld) as held:
            cases.dismiss(session, case_id=case_id, member_id=ben, reason="spam")
        assert held.value.holder_name == "Ana"
        with pytest.raises(CaseHeld):
            cases.assign(session, case_id=case_id, assignee_id=ben, by_id=ben)
    with session_scope() as session:
        moved = cases.assign(
            session, case_id=case_id, assignee_id=ben, by_id=lea, reason="Ana is off"
        )
    assert moved.assignee_id == ben and moved.status == "assigned"
    with session_scope() as session:
        events = audit_events(session, entity_type="case", entity_id=case_id)
    last = events[-1]
    assert last.action == "case.assigned" and last.actor_id == lea and last.actor == "Lea"
    assert last.details["previous_assignee_id"] == ana and last.details["reason"] == "Ana is off"


def test_an_agent_cannot_assign_an_unclaimed_case_to_a_colleague(db_url: str) -> None:
    case_id, ana, ben, _ = _setup()
    with session_scope() as session, pytest.raises(NotPermitted):
        cases.assign(session, case_id=case_id, assignee_id=ben, by_id=ana)
    with session_scope() as session:
        cases.claim(session, case_id=case_id, member_id=ana)
        passed = cases.assign(session, case_id=case_id, assignee_id=ben, by_id=ana)
    assert passed.assignee_id == ben


def test_a_stale_page_cannot_change_the_case(db_url: str) -> None:
    case_id, ana, _, lea = _setup()
    with session_scope() as session:
        cases.claim(session, case_id=case_id, member_id=ana)  # version 1 -> 2
    with session_scope() as session, pytest.raises(CaseChanged, match="reload"):
        cases.resolve(session, case_id=case_id, member_id=lea, expected_version=1)
    with session_scope() as session:
        lost = cases.claim(session, case_id=case_id, member_id=lea, expected_version=1)
    assert not lost.won and "Ana" in lost.message


def test_dismiss_needs_a_reason_and_keeps_it_as_a_note(db_url: str) -> None:
    case_id, ana, _, _ = _setup()
    with session_scope() as session, pytest.raises(TriageError, match="why"):
        cases.dismiss(session, case_id=case_id, member_id=ana, reason="  ")
    with session_scope() as session:
        case = cases.dismiss(session, case_id=case_id, member_id=ana, reason="spam bot")
        notes = case_notes(session, case_id=case_id)
    assert case.status == "dismissed" and [n.text for n in notes] == ["spam bot"]
    with session_scope() as session:
        reopened = cases.reopen(session, case_id=case_id, member_id=ana, reason="real customer")
    assert reopened.status == "assigned" and reopened.assignee_id == ana
    assert reopened.resolved_at is None
    assert _actions(case_id) == ["case.dismissed", "case.reopened"]


def test_notes_and_tags_are_audited(db_url: str) -> None:
    case_id, ana, _, _ = _setup()
    with session_scope() as session:
        note = cases.add_note(session, case_id=case_id, member_id=ana, text="called twice already")
        tagged = cases.add_tags(
            session, case_id=case_id, member_id=ana, tags=["Refund", " late delivery ", "refund"]
        )
        assert tagged.tags == ["refund", "late-delivery"]
        untagged = cases.remove_tags(session, case_id=case_id, member_id=ana, tags=["REFUND"])
        assert untagged.tags == ["late-delivery"]
        with pytest.raises(TriageError, match="empty"):
            cases.add_note(session, case_id=case_id, member_id=ana, text=" ")
    assert note.id is not None
    assert _actions(case_id) == ["case.note_added", "case.tagged", "case.untagged"]


def test_who_is_viewing(db_url: str) -> None:
    case_id, ana, ben, _ = _setup()
    now = utcnow()
    with session_scope() as session:
        cases.mark_viewing(session, case_id=case_id, member_id=ana, now=now - timedelta(minutes=5))
        cases.mark_viewing(session, case_id=case_id, member_id=ana, now=now)  # refreshed
        cases.mark_viewing(session, case_id=case_id, member_id=ben, now=now - timedelta(minutes=5))
    with session_scope() as session:
        seen = cases.viewers(session, case_id=case_id, exclude_member_id=ben, now=now)
        assert [v.name for v in seen] == ["Ana"]
        cases.stop_viewing(session, case_id=case_id, member_id=ana)
    with session_scope() as session:
        assert cases.viewers(session, case_id=case_id, now=now) == []
        assert session.get(Case, case_id) is not None


def test_every_change_of_a_case_row_has_its_audit_event(db_url: str) -> None:
    """Each version bump (a change to the case row) is matched by exactly one case.* event."""
    case_id, ana, ben, lea = _setup()
    with session_scope() as session:
        cases.claim(session, case_id=case_id, member_id=ana)
        cases.add_tags(session, case_id=case_id, member_id=ana, tags=["vip"])
        cases.release(session, case_id=case_id, member_id=ana)
        cases.claim(session, case_id=case_id, member_id=ben)
        cases.assign(session, case_id=case_id, assignee_id=ana, by_id=lea, reason="fr speaker")
        cases.mark_replied(session, case_id=case_id, member_id=ana, reply_id=1)
        cases.hand_off(session, case_id=case_id, member_id=ana, handoff="phone_callback")
        cases.remove_tags(session, case_id=case_id, member_id=ana, tags=["vip"])
        cases.resolve(session, case_id=case_id, member_id=ana)
        cases.reopen(session, case_id=case_id, member_id=lea, reason="came back")
        cases.dismiss(session, case_id=case_id, member_id=lea, reason="duplicate")
        case = cases.get_case(session, case_id)
        changes = [
            e
            for e in audit_events(session, entity_type="case", entity_id=case_id)
            if e.action != "case.note_added"
        ]
    assert len(changes) == case.version - 1 == 11
    assert all(e.actor_id in (ana, ben, lea) for e in changes)
