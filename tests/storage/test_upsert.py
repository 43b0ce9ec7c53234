"""Idempotent upserts of mentions and authors, engagement snapshots, and bad input."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlmodel import col

from storage.db import session_scope
from storage.models import Author, EngagementSnapshot, Mention
from storage.queries import (
    AuthorRecord,
    MentionRecord,
    mark_mentions_deleted,
    unscored_mentions,
    upsert_mentions,
)
from tests.storage.factories import T0, mention_record


def _count(model: type) -> int:
    with session_scope() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_upserting_ten_thousand_mentions_twice_keeps_ten_thousand_rows(db_url: str) -> None:
    records = [mention_record(i) for i in range(10_000)]
    with session_scope() as session:
        first = upsert_mentions(session, records=records)
    with session_scope() as session:
        second = upsert_mentions(
            session, records=[mention_record(i, likes=9) for i in range(10_000)]
        )
    assert (first.inserted, first.updated) == (10_000, 0)
    assert (second.inserted, second.updated) == (0, 10_000)
    assert _count(Mention) == 10_000
    assert _count(Author) == 500
    assert _count(EngagementSnapshot) == 20_000
    with session_scope() as session:
        likes = session.execute(select(func.sum(Mention.likes))).scalar_one()
    assert likes == 9 * 10_000


def test_older_engagement_does_not_replace_newer_counts(db_url: str) -> None:
    newer = mention_record(1, likes=50, observed_at=T0 + timedelta(hours=2))
    older = mention_record(1, likes=5, observed_at=T0 + timedelta(hours=1))
    with session_scope() as session:
        upsert_mentions(session, records=[newer])
    with session_scope() as session:
        upsert_mentions(session, records=[older])
    with session_scope() as session:
        mention = session.execute(select(Mention)).scalar_one()
        snapshots = session.execute(
            select(func.count()).select_from(EngagementSnapshot)
        ).scalar_one()
    assert mention.likes == 50
    assert snapshots == 2


def test_the_same_post_twice_in_one_batch_makes_one_row(db_url: str) -> None:
    with session_scope() as session:
        result = upsert_mentions(session, records=[mention_record(7), mention_record(7, likes=8)])
    assert result.inserted == 1
    assert _count(Mention) == 1


def test_bad_input_is_cleaned_or_rejected_and_nothing_else_is_lost(db_url: str) -> None:
    records = [
        mention_record(1, text="nul\x00byte inside"),
        mention_record(
            2, text="lone surrogate \ud800 here", author=AuthorRecord(handle="bad\ud800x")
        ),
        mention_record(3, text="x" * 100_000 + "tail"),
        MentionRecord(platform="rss", external_id="only-required"),
        MentionRecord(platform="x", external_id=""),  # no id: rejected
        mention_record(4, created_at="yesterday"),  # not a datetime: rejected
        mention_record(5, raw={"k\x00": ["v\x00", {"deep": "\udfff"}]}),
        mention_record(6),
    ]
    with session_scope() as session:
        result = upsert_mentions(session, records=records)
    assert sorted(i for i, _ in result.rejected) == [4, 5]
    assert all(why for _, why in result.rejected)
    assert [i for i, _ in result.warnings] == [2]
    with session_scope() as session:
        stored = {m.external_id: m for m in session.execute(select(Mention)).scalars()}
    assert set(stored) == {"1", "2", "3", "only-required", "5", "6"}
    assert stored["1"].text == "nulbyte inside"
    assert stored["2"].text == "lone surrogate \ufffd here"
    assert len(stored["3"].text) == 100_000
    assert stored["only-required"].author_id is None and stored["only-required"].text == ""
    assert stored["5"].raw == {"k": ["v", {"deep": "\ufffd"}]}


def test_deleted_posts_lose_their_text_and_leave_the_scoring_batch(db_url: str) -> None:
    with session_scope() as session:
        upsert_mentions(session, records=[mention_record(i) for i in range(3)])
    with session_scope() as session:
        assert mark_mentions_deleted(session, platform="x", external_ids=["1"]) == 1
    with session_scope() as session:
        upsert_mentions(session, records=[mention_record(2, deleted=True)])
    with session_scope() as session:
        pending = unscored_mentions(session, limit=10)
        deleted = (
            session.execute(select(Mention).where(col(Mention.deleted).is_(True))).scalars().all()
        )
    assert [m.external_id for m in pending] == ["0"]
    assert {m.external_id for m in deleted} == {"1", "2"}
    assert all(m.text == "" and m.clean_text == "" for m in deleted)


def test_a_later_copy_without_the_delete_flag_keeps_the_post_deleted(db_url: str) -> None:
    with session_scope() as session:
        upsert_mentions(session, records=[mention_record(1, deleted=True)])
    with session_scope() as session:
        upsert_mentions(session, records=[mention_record(1)])
    with session_scope() as session:
        mention = session.execute(select(Mention)).scalar_one()
    assert mention.deleted and mention.text == ""
