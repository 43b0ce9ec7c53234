"""Database mode: unscored mentions become Score rows (version, buzz, clustering) and cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from classifier.model import load_model
from classifier.pending import score_backlog, score_pending
from classifier.predict import Scorer
from storage.db import session_scope
from storage.models import Author, Case, Feedback, Mention, Score
from tests.classifier.conftest import pin_negative
from tocsin.config import Settings

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
def negative_scorer(tiny_model: Path) -> Scorer:
    """The tiny model with its sentiment head pinned to negative, so clustering is predictable."""
    loaded = load_model(tiny_model)
    pin_negative(loaded)
    return Scorer(loaded)


def _mention(
    n: int, text: str, *, author_id: int | None = None, minutes_ago: int = 5, **extra: Any
) -> Mention:
    return Mention(
        platform="x",
        external_id=f"m{n}",
        text=text,
        clean_text=text,
        lang="en",
        author_id=author_id,
        created_at=NOW - timedelta(minutes=minutes_ago),
        collected_at=NOW,
        **extra,
    )


def test_scores_unscored_mentions_and_opens_cases(
    db_url: str, settings: Settings, negative_scorer: Scorer
) -> None:
    settings.triage.case_min_buzz_risk = 40.0
    settings.triage.case_min_urgency = "critical"
    settings.triage.case_on_complaint = False
    with session_scope() as session:
        star = Author(
            platform="x",
            handle="bigreporter",
            followers=900_000,
            verified=True,
            bio="Senior reporter, consumer affairs",
        )
        nobody = Author(platform="x", handle="quiet", followers=3)
        session.add_all([star, nobody])
        session.flush()
        for n in range(2, 6):  # scored first: the loud post finds them in the database
            session.add(
                _mention(
                    n,
                    f"card payment refused, terminal outage in shop {n}",
                    author_id=nobody.id,
                    minutes_ago=10 + n,
                )
            )
            session.flush()
        session.add(
            _mention(
                1,
                "terminal outage, card payment refused again",
                author_id=star.id,
                likes=900,
                reposts=600,
                replies=100,
                engagement_observed_at=NOW,
            )
        )
        session.add(_mention(6, "deleted post", deleted=True))
        session.add(_mention(7, ""))  # image-only post: still gets a (neutral) score
    assert score_pending(settings=settings, limit=3, scorer=negative_scorer, now=NOW) == 3
    assert score_pending(settings=settings, limit=100, scorer=negative_scorer, now=NOW) == 3
    assert score_pending(settings=settings, limit=100, scorer=negative_scorer, now=NOW) == 0
    with session_scope() as session:
        scores = {s.mention_id: s for s in session.exec(select(Score))}
        mentions = {m.external_id: m for m in session.exec(select(Mention))}
        cases = list(session.exec(select(Case)))
        assert len(scores) == 6 and not mentions["m6"].scored
        assert all(m.scored for key, m in mentions.items() if key != "m6")
        assert {s.model_version for s in scores.values()} == {"tiny-test-1"}
        loud = next(s for s in scores.values() if s.mention_id == mentions["m1"].id)
        assert loud.sentiment_label == "negative"
        assert "author has 900k followers" in loud.buzz_reasons
        assert "author is a journalist" in loud.buzz_reasons
        assert any("reposts growing" in reason for reason in loud.buzz_reasons)
        assert "4 similar negative posts in the last hour" in loud.buzz_reasons
        assert loud.buzz_risk >= settings.triage.case_min_buzz_risk
        empty = next(s for s in scores.values() if s.mention_id == mentions["m7"].id)
        assert empty.sentiment_label == "neutral" and empty.urgency_tier == "low"
        # The risky post opened a case carrying its score; the quiet empty post did not.
        case_mentions = {c.mention_id for c in cases}
        assert mentions["m1"].id in case_mentions
        assert mentions["m7"].id not in case_mentions
        case = next(c for c in cases if c.mention_id == mentions["m1"].id)
        assert case.buzz_risk == loud.buzz_risk and case.sla_due_at is not None


def test_rescoring_with_the_same_model_updates_the_row(
    db_url: str, settings: Settings, negative_scorer: Scorer
) -> None:
    with session_scope() as session:
        session.add(_mention(1, "where is my parcel"))
    score_pending(settings=settings, scorer=negative_scorer, now=NOW)
    with session_scope() as session:
        mention = session.exec(select(Mention)).one()
        mention.scored = False
        session.add(mention)
    score_pending(settings=settings, scorer=negative_scorer, now=NOW)
    with session_scope() as session:
        assert len(list(session.exec(select(Score)))) == 1


def test_feedback_rows_become_training_examples(db_url: str) -> None:
    from storage import queries

    with session_scope() as session:
        mention = _mention(1, "they refunded me within the hour")
        session.add(mention)
        session.flush()
        assert mention.id is not None
        session.add(
            Feedback(
                mention_id=mention.id,
                field="sentiment",
                old_value="negative",
                new_value="neutral",
                created_at=NOW - timedelta(minutes=2),
            )
        )
        session.add(
            Feedback(
                mention_id=mention.id,
                field="sentiment",
                old_value="neutral",
                new_value="positive",
                created_at=NOW,
            )
        )
    with session_scope() as session:
        assert queries.feedback_examples(session) == [
            ("they refunded me within the hour", "en", "sentiment", "positive")
        ]


def test_the_backlog_is_scored_in_overlapping_batches_without_losing_clusters(
    db_url: str, settings: Settings, negative_scorer: Scorer
) -> None:
    """Batch n+1 is read while batch n is still being written: its negatives are carried over."""
    with session_scope() as session:
        for n in range(1, 8):
            session.add(_mention(n, f"card payment refused, terminal outage in shop {n}"))
            session.flush()
    progress: list[int] = []
    done = score_backlog(
        settings=settings, batch=2, limit=6, scorer=negative_scorer, between=progress.append
    )
    assert done == 6 and progress == [2, 4, 6]
    with session_scope() as session:
        mentions = {m.external_id: m for m in session.exec(select(Mention))}
        scores = {s.mention_id: s for s in session.exec(select(Score))}
    assert not mentions["m7"].scored and len(scores) == 6
    # m6 came in the third batch, read before the second was written: m1-m5 all count.
    sixth = scores[mentions["m6"].id or 0]
    assert "5 similar negative posts in the last hour" in sixth.buzz_reasons
    assert score_backlog(settings=settings, batch=2, scorer=negative_scorer) == 1
    assert score_backlog(settings=settings, batch=2, scorer=negative_scorer) == 0
