"""Intake: scored mentions open cases (or update them) with SLA, priority and topic; audited."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from storage.db import session_scope
from storage.models import Case, Mention, Score
from storage.queries import audit_events, case_for_mention
from tests.triage.factories import add_mention, add_score
from tocsin.config import Settings
from triage.intake import detect_topic, intake_batch, open_or_update_case


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


def test_two_scorers_at_once_open_one_case(db_url: str, settings: Settings) -> None:
    with session_scope() as session:
        mention = add_mention(session, "charged twice!")
        score = add_score(session, mention, tier="high")
        mention_id, score_id = mention.id, score.id
    barrier = threading.Barrier(2)
    opened: list[int | None] = []

    def intake() -> None:
        barrier.wait(timeout=60)  # before any query: SQLite's write lock is taken at BEGIN
        with session_scope() as session:
            fresh_mention = session.get(Mention, mention_id)
            fresh_score = session.get(Score, score_id)
            assert fresh_mention is not None and fresh_score is not None
            case = open_or_update_case(
                session, mention=fresh_mention, score=fresh_score, settings=settings
            )
            opened.append(case.id if case else None)

    threads = [threading.Thread(target=intake) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == 2 and opened[0] == opened[1] and opened[0] is not None
    with session_scope() as session:
        actions = [
            e.action for e in audit_events(session, entity_type="case", entity_id=opened[0] or 0)
        ]
    assert actions == ["case.opened"]


def test_a_case_inserted_by_another_transaction_meanwhile_is_reused(
    db_url: str, settings: Settings
) -> None:
    """On PostgreSQL the second insert waits on the unique index, then fails: intake falls back
    to the case the other transaction committed (on SQLite the two transactions serialise)."""
    with session_scope() as session:
        mention = add_mention(session, "refund please")
        score = add_score(session, mention, tier="high")
        mention_id, score_id = mention.id, score.id
    inserted = threading.Event()
    results: list[int | None] = []

    def other_scorer() -> None:
        with session_scope() as session:
            session.add(Case(mention_id=mention_id, urgency_tier="normal", status="new"))
            session.flush()
            inserted.set()
            time.sleep(1.0)  # hold the uncommitted row while intake runs

    def intake() -> None:
        inserted.wait(timeout=60)
        with session_scope() as session:
            fresh_mention, fresh_score = (
                session.get(Mention, mention_id),
                session.get(Score, score_id),
            )
            assert fresh_mention is not None and fresh_score is not None
            case = open_or_update_case(
                session, mention=fresh_mention, score=fresh_score, settings=settings
            )
            results.append(case.id if case else None)

    threads = [threading.Thread(target=other_scorer), threading.Thread(target=intake)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with session_scope() as session:
        found = case_for_mention(session, mention_id=mention_id or 0)
    assert found is not None and results == [found.id]
    assert found.urgency_tier == "high"  # the committed case was updated from the score


def _case_fields(session: Any, mention_id: int) -> tuple[Any, ...]:
    case = case_for_mention(session, mention_id=mention_id)
    assert case is not None and case.id is not None
    actions = [e.action for e in audit_events(session, entity_type="case", entity_id=case.id)]
    return (
        case.urgency_tier,
        case.buzz_risk,
        case.topic,
        case.status,
        round(case.priority, 3),
        actions,
    )


def test_a_batch_opens_the_same_cases_as_one_by_one(db_url: str, settings: Settings) -> None:
    texts = [
        ("charged twice for my bill", "high", 70.0, True),
        ("love the new app!", "low", 5.0, False),
        ("my parcel never arrived", "normal", 30.0, True),
        ("smoke coming out of the charger", "critical", 90.0, True),
    ]
    with session_scope() as session:
        batch = [(add_mention(session, t), tier, risk, c) for t, tier, risk, c in texts]
        single = [(add_mention(session, t), tier, risk, c) for t, tier, risk, c in texts]
        items = [
            (m, add_score(session, m, tier=tier, risk=risk, complaint=c))
            for m, tier, risk, c in batch
        ]
        priorities = intake_batch(session, items=items, settings=settings)
        for m, tier, risk, c in single:
            score = add_score(session, m, tier=tier, risk=risk, complaint=c)
            open_or_update_case(session, mention=m, score=score, settings=settings)
        assert set(priorities) == {m.id for m, *_ in batch if m.text != "love the new app!"}
        for (b, *_), (s, *_) in zip(batch, single, strict=True):
            if b.text == "love the new app!":
                assert case_for_mention(session, mention_id=b.id or 0) is None
                continue
            batch_case = _case_fields(session, b.id or 0)
            single_case = _case_fields(session, s.id or 0)
            assert batch_case[:4] == single_case[:4] and batch_case[5] == single_case[5]
            # Priority is a deadline: the two were opened some milliseconds apart.
            assert batch_case[4] == pytest.approx(single_case[4], abs=1.0)
            assert priorities[b.id or 0] == batch_case[4]


def test_a_batch_falls_back_when_another_scorer_opened_a_case_meanwhile(
    db_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope() as session:
        first, second = add_mention(session, "refund please"), add_mention(session, "no signal")
        items = [(m, add_score(session, m, tier="high")) for m in (first, second)]
        session.add(Case(mention_id=first.id, urgency_tier="normal", status="new"))
        session.flush()
        # The batch read its cases before the other scorer's insert landed.
        monkeypatch.setattr("storage.queries.cases_by_mention", lambda session, mention_ids: {})
        priorities = intake_batch(session, items=items, settings=settings)
        assert set(priorities) == {first.id, second.id}
        reused = case_for_mention(session, mention_id=first.id or 0)
        assert reused is not None and reused.urgency_tier == "high"  # updated, not duplicated
        assert case_for_mention(session, mention_id=second.id or 0) is not None
