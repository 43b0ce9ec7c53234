"""Routing: language, skill, load cap, author history, nobody on shift, escalation, reasons."""

from __future__ import annotations

from storage.db import session_scope
from storage.models import Case, Reply
from storage.queries import audit_events
from tests.triage.factories import add_author, add_member, add_mention, add_score, open_case
from tocsin.config import Settings
from triage import cases, routing
from triage.intake import open_or_update_case


def _events(case_id: int) -> list[tuple[str, dict]]:
    with session_scope() as session:
        return [
            (e.action, e.details)
            for e in audit_events(session, entity_type="case", entity_id=case_id)
        ]


def test_language_decides_and_the_choice_is_explained(db_url: str, settings: Settings) -> None:
    with session_scope() as session:
        add_member(session, "Tom", languages=["en"])
        lea = add_member(session, "Lea", languages=["en", "fr"], max_open_cases=8).id
        case_id = open_case(session, settings, "Mon colis est perdu", lang="fr-FR").id
    with session_scope() as session:
        assert routing.route_new_cases(session, settings=settings) == [(case_id, lea)]
    routed = [d for a, d in _events(case_id or 0) if a == "case.routed"]
    assert routed[0]["reason"] == "assigned to Lea: speaks fr, 0/8 open"


def test_skill_wins_over_a_lighter_load(db_url: str, settings: Settings) -> None:
    with session_scope() as session:
        add_member(session, "Ana", skills=["delivery"])
        bill = add_member(session, "Bill", skills=["billing"], max_open_cases=8).id
        for _ in range(3):  # Bill already has three cases, Ana none
            held = open_case(session, settings, "hello")
            cases.claim(session, case_id=held.id or 0, member_id=bill or 0)
        case_id = open_case(session, settings, "I was charged twice, refund me").id
    with session_scope() as session:
        decisions = routing.plan_routes(session, settings=settings)
        assert [(d.case_id, d.member_name) for d in decisions] == [(case_id, "Bill")]
        assert decisions[0].explanation == "assigned to Bill: speaks en, skill billing, 3/8 open"


def test_the_load_cap_is_never_exceeded(db_url: str, settings: Settings) -> None:
    with session_scope() as session:
        ana = add_member(session, "Ana", max_open_cases=2).id
        ids = [open_case(session, settings, f"problem {i}").id for i in range(3)]
    with session_scope() as session:
        routed = routing.route_new_cases(session, settings=settings)
    assert [m for _, m in routed] == [ana, ana]
    left = next(i for i in ids if i not in {c for c, _ in routed})
    assert _events(left or 0)[-1] == (
        "case.unrouted",
        {"reason": "not assigned: everyone who fits is at their open-case cap"},
    )


def test_the_member_who_answered_this_author_before_gets_the_case(
    db_url: str, settings: Settings
) -> None:
    with session_scope() as session:
        add_member(session, "Ana")
        ben = add_member(session, "Ben").id or 0
        author = add_author(session, "angry_customer")
        old = open_case(session, settings, "first complaint", author_id=author.id)
        cases.claim(session, case_id=old.id or 0, member_id=ben)
        session.add(Reply(case_id=old.id or 0, member_id=ben, text="sorry!", status="sent"))
        cases.resolve(session, case_id=old.id or 0, member_id=ben)
        new_id = open_case(session, settings, "still broken", author_id=author.id).id
    with session_scope() as session:
        decision = routing.plan_routes(session, settings=settings)[0]
    assert decision.case_id == new_id and decision.member_name == "Ben"
    assert decision.explanation.endswith("answered this author before")


def test_nobody_on_shift_leaves_the_case_in_the_queue(db_url: str, settings: Settings) -> None:
    with session_scope() as session:
        add_member(session, "Ana", on_shift=False)
        case_id = open_case(session, settings).id
    with session_scope() as session:
        assert routing.route_new_cases(session, settings=settings) == []
        case = session.get(Case, case_id)
        assert case is not None and case.status == "new" and case.assignee_id is None
    assert _events(case_id or 0)[-1][1]["reason"] == "not assigned: nobody is on shift"


def test_nobody_speaking_the_language_and_auto_assign_off(db_url: str, settings: Settings) -> None:
    with session_scope() as session:
        add_member(session, "Ana", languages=["en"])
        case_id = open_case(session, settings, "servizio pessimo", lang="it").id
    with session_scope() as session:
        decision = routing.plan_routes(session, settings=settings)[0]
        assert decision.explanation == "not assigned: nobody on shift speaks it"
        off = Settings(triage={"auto_assign": False})  # type: ignore[arg-type]
        assert routing.route_new_cases(session, settings=off) == []
    assert case_id


def test_a_claimed_case_is_not_routed(db_url: str, settings: Settings) -> None:
    with session_scope() as session:
        ana = add_member(session, "Ana").id or 0
        case_id = open_case(session, settings).id or 0
        cases.claim(session, case_id=case_id, member_id=ana)
    with session_scope() as session:
        assert routing.route_new_cases(session, settings=settings) == []


def test_critical_cases_notify_the_leads(db_url: str, settings: Settings) -> None:
    with session_scope() as session:
        add_member(session, "Ana")
        add_member(session, "Lea", role="lead", email="lea@acme.test", max_open_cases=1)
        mention = add_mention(session, "the charger caught fire")
        case = open_or_update_case(
            session,
            mention=mention,
            score=add_score(session, mention, tier="critical"),
            settings=settings,
        )
        assert case is not None
        case_id = case.id or 0
    with session_scope() as session:
        routed = routing.route_new_cases(session, settings=settings)
    assert len(routed) == 1
    notified = [d for a, d in _events(case_id) if a == "case.lead_notified"]
    assert notified and notified[0]["emails"] == ["lea@acme.test"]
    assert notified[0]["leads"] == ["Lea"]


def test_an_unroutable_critical_case_is_reported_to_the_leads(
    db_url: str, settings: Settings
) -> None:
    with session_scope() as session:
        add_member(session, "Lea", role="lead", languages=["en"], on_shift=True)
        mention = add_mention(session, "grave pericolo", lang="it")
        case = open_or_update_case(
            session,
            mention=mention,
            score=add_score(session, mention, tier="critical"),
            settings=settings,
        )
        assert case is not None
    with session_scope() as session:
        routing.route_new_cases(session, settings=settings)
    actions = [a for a, _ in _events(case.id or 0)]
    assert actions[-2:] == ["case.unrouted", "case.lead_notified"]


def test_manual_reassign_warns_and_escalate_goes_to_a_lead(db_url: str, settings: Settings) -> None:
    with session_scope() as session:
        ana = add_member(session, "Ana").id or 0
        off = add_member(session, "Olga", on_shift=False, languages=["de"]).id or 0
        lead = add_member(session, "Lea", role="lead", email="lea@acme.test").id or 0
        case_id = open_case(session, settings).id or 0
        cases.claim(session, case_id=case_id, member_id=ana)
    with session_scope() as session:
        moved = routing.reassign(
            session, case_id=case_id, to_member_id=off, by_id=lead, reason="Ana leaves"
        )
    assert moved.case.assignee_id == off
    assert moved.warnings == ["Olga is not on shift", "Olga does not list en"]
    with session_scope() as session:
        escalated = routing.escalate(session, case_id=case_id, by_id=lead, reason="legal threat")
    assert escalated.lead_name == "Lea" and escalated.case.assignee_id == lead
    assert escalated.notify == ["lea@acme.test"]
    actions = [a for a, _ in _events(case_id)]
    assert actions[-3:] == ["case.reassigned", "case.escalated", "case.lead_notified"]


def test_with_no_lead_on_shift_every_active_lead_hears_of_a_critical_case(
    db_url: str, settings: Settings
) -> None:
    with session_scope() as session:
        add_member(session, "Ana")
        add_member(session, "Lea", role="lead", email="lea@acme.test", on_shift=False)
        add_member(session, "Old", role="lead", email="old@acme.test", active=False)
        mention = add_mention(session, "someone was injured in your store")
        case = open_or_update_case(
            session,
            mention=mention,
            score=add_score(session, mention, tier="critical"),
            settings=settings,
        )
        assert case is not None
    with session_scope() as session:
        routing.route_new_cases(session, settings=settings)
    notified = [d for a, d in _events(case.id or 0) if a == "case.lead_notified"]
    assert [d["emails"] for d in notified] == [["lea@acme.test"]]
