"""Intake: scored mentions open cases (or update them) with SLA, priority and topic; audited."""

from __future__ import annotations

from datetime import timedelta

from storage.db import session_scope
from storage.queries import audit_events, case_for_mention
from tests.triage.factories import add_mention, add_score
from tocsin.config import Settings
from triage.intake import detect_topic, open_or_update_case


def test_a_risky_score_opens_a_case_with_sla_priority_topic(
    db_url: str, settings: Settings
) -> None:
    with session_scope() as session:
        mention = add_mention(
            session,
            "Flight cancelled and no refund, I want my money back",
            lang="fr",
            platform="bluesky",
        )
        score = add_score(session, mention, tier="high", risk=72)
        case = open_or_update_case(session, mention=mention, score=score, settings=settings)
        assert case is not None and case.id is not None
        assert (case.status, case.urgency_tier, case.lang, case.platform) == (
            "new",
            "high",
            "fr",
            "bluesky",
        )
        assert case.sla_due_at == case.created_at + timedelta(minutes=30)
        assert case.topic == "billing" or case.topic == "travel"
        assert case.priority != 0
        events = audit_events(session, entity_type="case", entity_id=case.id)
    assert [e.action for e in events] == ["case.opened"]
    assert events[0].details["reasons"] == ["author has 250k followers"]


def test_a_harmless_post_opens_nothing(db_url: str, settings: Settings) -> None:
    with session_scope() as session:
        mention = add_mention(session, "love the new app!")
        score = add_score(session, mention, tier="low", risk=5, complaint=False)
        assert open_or_update_case(session, mention=mention, score=score, settings=settings) is None
        deleted = add_mention(session, "", deleted=True)
        risky = add_score(session, deleted, tier="critical", risk=99)
        assert open_or_update_case(session, mention=deleted, score=risky, settings=settings) is None


def test_a_rescore_updates_the_open_case_and_leaves_closed_ones(
    db_url: str, settings: Settings
) -> None:
    with session_scope() as session:
        mention = add_mention(session)
        first = open_or_update_case(
            session,
            mention=mention,
            score=add_score(session, mention, tier="normal"),
            settings=settings,
        )
        assert first is not None
        first_priority = first.priority
        again = open_or_update_case(
            session,
            mention=mention,
            score=add_score(session, mention, tier="critical", risk=90, version="test-2"),
            settings=settings,
        )
        assert again is not None and again.id == first.id
        assert again.urgency_tier == "critical" and again.buzz_risk == 90
        assert again.sla_due_at == again.created_at + timedelta(minutes=15)
        assert again.priority > first_priority
        assert case_for_mention(session, mention_id=mention.id or 0) is not None
        actions = [
            e.action for e in audit_events(session, entity_type="case", entity_id=first.id or 0)
        ]
    assert actions == ["case.opened", "case.rescored"]


def test_topics_from_keywords_in_several_languages(settings: Settings) -> None:
    assert detect_topic("Mon colis n'est jamais arrivé", settings) == "delivery"
    assert detect_topic("Me cobraron dos veces, quiero un reembolso", settings) == "billing"
    assert detect_topic("L'app non funziona da stamattina", settings) == "outage"
    assert detect_topic("nice weather", settings) is None
    custom = Settings(triage={"topics": {"loyalty": ["points", "miles"]}})  # type: ignore[arg-type]
    assert detect_topic("where are my miles?", custom) == "loyalty"
