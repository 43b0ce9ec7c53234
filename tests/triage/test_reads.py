"""Reading functions for the board that live in triage's section of storage/queries.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.db import session_scope
from storage.models import Case
from storage.queries import (
    mention_scores,
    overview_series,
    sla_compliance_series,
)
from tests.triage.factories import add_member, add_mention, add_score, open_case
from tocsin.config import Settings
from triage import cases

T = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


def test_overview_series_per_hour_and_day(db_url: str) -> None:
    with session_scope() as session:
        for minutes, risk, negative in ((5, 80, True), (20, 40, False), (70, 10, True)):
            mention = add_mention(session, created_at=T + timedelta(minutes=minutes))
            score = add_score(session, mention, risk=risk)
            score.sentiment_label = "negative" if negative else "neutral"
        add_score(session, mention, risk=90, version="test-2")  # a re-score counts once
        add_mention(session, created_at=T + timedelta(minutes=30))  # not scored yet
        add_mention(session, created_at=T - timedelta(days=3))  # before the window
    with session_scope() as session:
        hourly = overview_series(session, since=T, bucket="hour")
        daily = overview_series(session, since=T, bucket="day")
    assert [(p.bucket, p.mentions, p.negative, p.high_risk) for p in hourly] == [
        ("2026-11-16 09:00", 3, 1, 1),
        ("2026-11-16 10:00", 1, 1, 1),
    ]
    assert hourly[0].max_risk == 80 and round(hourly[0].mean_risk) == 60
    assert hourly[1].max_risk == 90
    assert [(p.bucket, p.mentions) for p in daily] == [("2026-11-16", 4)]


def test_sla_compliance_series_and_scores(db_url: str, settings: Settings) -> None:
    with session_scope() as session:
        ana = add_member(session, "Ana").id or 0
        on_time = open_case(session, settings, tier="high")
        late = open_case(session, settings, tier="high")
        for case, delay in ((on_time, 10), (late, 45)):
            cases.claim(session, case_id=case.id or 0, member_id=ana)
            cases.mark_replied(
                session,
                case_id=case.id or 0,
                member_id=ana,
                reply_id=0,
                sent_at=case.created_at + timedelta(minutes=delay),
            )
        open_case(session, settings)  # unanswered: not counted
        mention_id = session.get(Case, on_time.id).mention_id  # type: ignore[union-attr]
    with session_scope() as session:
        series = sla_compliance_series(session, since=T - timedelta(days=365 * 5), bucket="day")
        scores = mention_scores(session, mention_id=mention_id or 0)
    assert [(n, ok) for _, n, ok in series] == [(2, 1)]
    assert [s.model_version for s in scores] == ["test-1"]


def test_viewers_for_a_page_of_the_queue(db_url: str, settings: Settings) -> None:
    now = datetime.now(UTC)
    with session_scope() as session:
        ana, ben = add_member(session, "Ana").id or 0, add_member(session, "Ben").id or 0
        first, second = open_case(session, settings).id or 0, open_case(session, settings).id or 0
        cases.mark_viewing(session, case_id=first, member_id=ana, now=now)
        cases.mark_viewing(session, case_id=first, member_id=ben, now=now)
        cases.mark_viewing(session, case_id=second, member_id=ben, now=now - timedelta(hours=1))
    with session_scope() as session:
        seen = cases.viewers_for(session, case_ids=[first, second], exclude_member_id=ana, now=now)
    assert {k: [v.name for v in vs] for k, vs in seen.items()} == {first: ["Ben"]}
