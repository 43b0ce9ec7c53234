"""Atomic claims with optimistic locking, audit events, and the triage queue."""

from __future__ import annotations

import threading

from sqlalchemy import func, select, update

from storage.db import analyze, get_engine, session_scope
from storage.models import AuditEvent, Case
from storage.queries import (
    QueueFilters,
    audit_events,
    claim_case,
    count_queue,
    triage_queue,
    update_case_guarded,
)
from tests.storage.factories import add_case, new_case_id, new_member_id


def test_two_concurrent_claims_have_exactly_one_winner(db_url: str) -> None:
    with session_scope() as session:
        case_id = new_case_id(session)
        members = [new_member_id(session, "Ana"), new_member_id(session, "Ben")]
    barrier = threading.Barrier(2)
    results: dict[int, bool] = {}

    def claim(member_id: int) -> None:
        barrier.wait()
        with session_scope() as session:
            results[member_id] = claim_case(
                session, case_id=case_id, member_id=member_id, expected_version=1
            ).won

    threads = [threading.Thread(target=claim, args=(m,)) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [False, True]
    winner = next(m for m, won in results.items() if won)
    with session_scope() as session:
        case = session.get(Case, case_id)
        events = audit_events(session, entity_type="case", entity_id=case_id)
    assert case is not None and case.assignee_id == winner and case.version == 2
    assert [(e.action, e.actor_id) for e in events] == [("case.claimed", winner)]


def test_many_claimers_at_once_still_one_winner(db_url: str) -> None:
    with session_scope() as session:
        case_id = new_case_id(session)
        members = [new_member_id(session, f"M{i}") for i in range(6)]
    barrier = threading.Barrier(len(members))
    wins: list[int] = []

    def claim(member_id: int) -> None:
        barrier.wait()
        with session_scope() as session:
            if claim_case(session, case_id=case_id, member_id=member_id).won:
                wins.append(member_id)

    threads = [threading.Thread(target=claim, args=(m,)) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    with session_scope() as session:
        count = session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    assert count == 1


def test_the_loser_learns_who_holds_the_case(db_url: str) -> None:
    with session_scope() as session:
        case_id = new_case_id(session)
        ana, ben = new_member_id(session, "Ana"), new_member_id(session, "Ben")
    with session_scope() as session:
        assert claim_case(session, case_id=case_id, member_id=ana).won
    with session_scope() as session:
        lost = claim_case(session, case_id=case_id, member_id=ben)
    assert not lost.won and lost.holder_id == ana and lost.reason == "held by another member"


def test_a_stale_version_cannot_change_the_case(db_url: str) -> None:
    with session_scope() as session:
        case_id = new_case_id(session)
    with session_scope() as session:
        first = update_case_guarded(
            session,
            case_id=case_id,
            expected_version=1,
            values={"status": "resolved"},
            action="case.resolved",
        )
        stale = update_case_guarded(
            session,
            case_id=case_id,
            expected_version=1,
            values={"status": "dismissed"},
            action="case.dismissed",
        )
    assert first is not None and first.status == "resolved" and first.version == 2
    assert stale is None
    with session_scope() as session:
        actions = [e.action for e in audit_events(session, entity_type="case", entity_id=case_id)]
    assert actions == ["case.resolved"]


def test_queue_orders_by_priority_and_filters(db_url: str) -> None:
    with session_scope() as session:
        add_case(session, text="low one", priority=1, tier="low")
        add_case(session, text="critical", priority=9, tier="critical", lang="fr")
        add_case(session, text="high one", priority=5, tier="high", platform="reddit")
        add_case(session, text="done", priority=99, tier="critical", status="resolved")
    with session_scope() as session:
        rows = triage_queue(session)
        assert [r.mention.text for r in rows if r.mention] == ["critical", "high one", "low one"]
        assert rows[0].score is not None and rows[0].score.buzz_reasons
        french = triage_queue(session, filters=QueueFilters(languages=["fr"]))
        reddit = triage_queue(session, filters=QueueFilters(platforms=["reddit"]))
        urgent = triage_queue(session, filters=QueueFilters(tiers=["critical", "high"]))
        page = triage_queue(session, limit=1, offset=1)
    assert [r.case.urgency_tier for r in french] == ["critical"]
    assert [r.mention.text for r in reddit if r.mention] == ["high one"]
    assert len(urgent) == 2
    assert [r.mention.text for r in page if r.mention] == ["high one"]


def test_queue_count_applies_every_filter(db_url: str) -> None:
    with session_scope() as session:
        add_case(session, text="a", priority=1, tier="low")
        add_case(session, text="b", priority=2, tier="critical", lang="fr")
        add_case(session, text="c", priority=3, tier="critical", platform="reddit")
        add_case(session, text="d", priority=4, tier="critical", status="resolved")
    with session_scope() as session:
        assert count_queue(session) == 3
        assert count_queue(session, filters=QueueFilters(tiers=["critical"])) == 2
        assert count_queue(session, filters=QueueFilters(tiers=["critical"], languages=["fr"])) == 1
        assert count_queue(session, filters=QueueFilters(statuses=["resolved"])) == 1


def test_analyze_refreshes_planner_statistics(db_url: str) -> None:
    with session_scope() as session:
        for i in range(5):
            add_case(session, text=f"case {i}", priority=i)
    analyze()
    if db_url.startswith("sqlite"):
        with get_engine().connect() as connection:
            tables = {row[0] for row in connection.exec_driver_sql("SELECT tbl FROM sqlite_stat1")}
        assert "case" in tables


def test_a_reader_does_not_wait_for_a_writer_on_sqlite(sqlite_url: str) -> None:
    with session_scope() as session:
        new_case_id(session)
    with session_scope() as writer:
        writer.execute(update(Case).values(priority=5.0))  # holds the write lock from here
        # A reader that took the write lock at BEGIN would fail here with "database is locked".
        with session_scope(read_only=True) as reader:
            rows = triage_queue(reader)
        assert len(rows) == 1 and rows[0].case.priority == 1.0  # the committed state
