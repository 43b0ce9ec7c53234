"""Database mode: unscored mentions -> Score rows (with buzz risk) and cases through intake.

- `score_pending(settings=..., limit=...)` scores one batch and returns how many it scored;
- `score_backlog(settings=..., batch=..., limit=...)` scores batch after batch, the model working on
  the next batch while the current one is clustered and written (used by `tocsin score`, the
  service and the demo).

Each batch is read in a read-only session, scored with no transaction open, and written in one
short transaction: on SQLite a writer holds the only write lock, and the collectors and the board
must not wait for the model or the clustering.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from classifier.buzz import BuzzRisk
from classifier.cluster import WINDOW, NegativePost, content_words, count_similar
from classifier.predict import PostContext, Scorer, TextScores, buzz_for, get_scorer, usual_pace
from storage.models import Author, Mention
from tocsin.config import Settings


@dataclass
class ScoreValues:
    """One Score row before it is written (the columns of `storage.models.Score`)."""

    mention_id: int
    model_version: str
    sentiment_label: str
    sentiment_negative: float
    sentiment_neutral: float
    sentiment_positive: float
    urgency_tier: str
    urgency_score: float
    is_complaint: bool
    complaint_score: float
    complaint_severity: int
    buzz_risk: float
    buzz_tier: str
    buzz_reasons: list[str]
    scored_at: datetime
    priority: float = 0.0

    @classmethod
    def of(
        cls, mention_id: int, version: str, scores: TextScores, buzz: BuzzRisk, now: datetime
    ) -> ScoreValues:
        return cls(
            mention_id=mention_id,
            model_version=version,
            sentiment_label=scores.sentiment,
            sentiment_negative=scores.sentiment_scores["negative"],
            sentiment_neutral=scores.sentiment_scores["neutral"],
            sentiment_positive=scores.sentiment_scores["positive"],
            urgency_tier=scores.urgency,
            urgency_score=scores.urgency_score,
            is_complaint=scores.is_complaint,
            complaint_score=scores.complaint_score,
            complaint_severity=scores.severity,
            buzz_risk=buzz.score,
            buzz_tier=buzz.tier,
            buzz_reasons=list(buzz.reasons),
            scored_at=now,
        )


@dataclass
class Batch:
    """What one batch needs from the database, read before the model runs."""

    mentions: list[Mention]
    authors: dict[int, Author]
    moments: list[datetime]
    recent: list[Mention]  # negative posts of the last hour already stored
    paces: dict[Any, list[float]]  # engagement per minute of recent posts, by brand

    @property
    def texts(self) -> list[str]:
        return [m.clean_text or m.text or m.title or "" for m in self.mentions]

    @property
    def last_id(self) -> int:
        return self.mentions[-1].id or 0


def read_batch(*, limit: int, after_id: int = 0, now: datetime) -> Batch | None:
    from storage import queries
    from storage.db import session_scope

    with session_scope(read_only=True) as session:
        mentions = queries.unscored_mentions(session, limit=limit, after_id=after_id)
        if not mentions:
            return None
        authors = queries.authors_by_id(session, ids=[m.author_id for m in mentions if m.author_id])
        moments = [m.created_at or m.collected_at or now for m in mentions]
        recent = queries.recent_negative_mentions(
            session, since=min(moments) - WINDOW, until=max(moments)
        )
        paces = queries.engagement_samples(
            session, brand_ids={m.brand_id for m in mentions}, since=now - timedelta(days=7)
        )
    return Batch(mentions, authors, moments, recent, paces)


def score_values(
    batch: Batch,
    text_scores: list[TextScores],
    *,
    version: str,
    settings: Settings,
    now: datetime,
) -> list[ScoreValues]:
    """Buzz risk for each post; clustering against the last hour's negatives and the batch's own."""
    buzz_config = settings.model.buzz
    texts = batch.texts
    pools: dict[Any, list[NegativePost]] = {}
    for other in batch.recent:
        other_at = other.created_at or other.collected_at
        bag = content_words(other.clean_text or other.text or "")
        pools.setdefault(other.brand_id, []).append(NegativePost(other.id, other_at, bag))
    words = [content_words(text) for text in texts]
    for mention, scores, at, bag in zip(
        batch.mentions, text_scores, batch.moments, words, strict=True
    ):
        if scores.sentiment == "negative":
            pools.setdefault(mention.brand_id, []).append(NegativePost(mention.id, at, bag))
    for pool in pools.values():
        pool.sort(key=lambda item: item.at)
    pool_times = {brand: [item.at for item in pool] for brand, pool in pools.items()}
    usual = {
        brand_id: usual_pace(rates, buzz_config.usual_engagement_per_minute)
        for brand_id, rates in batch.paces.items()
    }
    values = []
    for mention, text, scores, at, bag in zip(
        batch.mentions, texts, text_scores, batch.moments, words, strict=True
    ):
        assert mention.id is not None
        author = batch.authors.get(mention.author_id) if mention.author_id else None
        similar = count_similar(
            mention.id, at, bag, pools.get(mention.brand_id, []), pool_times.get(mention.brand_id)
        )
        buzz = buzz_for(
            text,
            scores,
            post_context(mention, author),
            similar=similar,
            usual=usual.get(mention.brand_id, buzz_config.usual_engagement_per_minute),
            config=buzz_config,
        )
        values.append(ScoreValues.of(mention.id, version, scores, buzz, now))
    return values


def post_context(mention: Mention, author: Author | None) -> PostContext:
    return PostContext(
        followers=(author.followers or 0) if author else 0,
        verified=bool(author and author.verified),
        bio=author.bio if author else None,
        handle=author.handle if author else None,
        vip=bool(author and author.vip),
        journalist=bool(author and author.journalist),
        likes=mention.likes or 0,
        reposts=mention.reposts or 0,
        replies=mention.replies or 0,
        created_at=mention.created_at,
        observed_at=mention.engagement_observed_at or mention.collected_at,
    )


def write_batch(
    batch: Batch, values: list[ScoreValues], *, version: str, settings: Settings
) -> None:
    """Score rows (new, or updated for a re-score by the same model), cases, mentions marked."""
    from storage import queries
    from storage.db import session_scope
    from triage.intake import intake_batch

    with session_scope() as session:
        existing = queries.scores_for_version(
            session, mention_ids=[value.mention_id for value in values], model_version=version
        )
        priorities = intake_batch(
            session, items=list(zip(batch.mentions, values, strict=True)), settings=settings
        )
        new, changed = [], []
        for value in values:
            value.priority = priorities.get(value.mention_id, 0.0)
            row = dict(vars(value))
            if value.mention_id in existing:
                changed.append({**row, "id": existing[value.mention_id].id})
            else:
                new.append(row)
        queries.write_scores(session, new=new, changed=changed)
        queries.mark_mentions_scored(session, mention_ids=[value.mention_id for value in values])


def score_pending(
    *,
    settings: Settings | None = None,
    limit: int = 256,
    scorer: Scorer | None = None,
    now: datetime | None = None,
) -> int:
    """Score up to `limit` unscored mentions; write Score rows; open or update cases.

    Returns how many mentions were scored (fewer than `limit` means the backlog is empty).
    """
    from tocsin.config import get_settings

    settings = settings or get_settings()
    scorer = scorer or get_scorer(settings.model)
    now = now or datetime.now(UTC)
    batch = read_batch(limit=limit, now=now)
    if batch is None:
        return 0
    values = score_values(
        batch, scorer.predict(batch.texts), version=scorer.version, settings=settings, now=now
    )
    write_batch(batch, values, version=scorer.version, settings=settings)
    return len(batch.mentions)


def score_backlog(
    *,
    settings: Settings | None = None,
    batch: int = 256,
    limit: int | None = None,
    scorer: Scorer | None = None,
    between: Callable[[int], None] | None = None,
) -> int:
    """Score unscored mentions batch after batch, up to `limit` (all if None); returns how many.

    While a batch is clustered and written, the model already runs on the next one (torch
    releases the interpreter lock), so the database work hides behind the model's. `between(done)`
    is called after each batch is written (progress bars, a service's stop check).
    """
    from tocsin.config import get_settings

    settings = settings or get_settings()
    scorer = scorer or get_scorer(settings.model)

    def room(done: int) -> int:
        return batch if limit is None else min(batch, limit - done)

    done = 0
    current = read_batch(limit=room(0), now=datetime.now(UTC)) if room(0) > 0 else None
    if current is None:
        return 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tocsin-model") as model_thread:
        running: Future[list[TextScores]] = model_thread.submit(scorer.predict, current.texts)
        while current is not None:
            now = datetime.now(UTC)
            after = done + len(current.mentions)
            upcoming = None
            if room(after) > 0:
                upcoming = read_batch(limit=room(after), after_id=current.last_id, now=now)
            text_scores = running.result()
            if upcoming is not None:
                running = model_thread.submit(scorer.predict, upcoming.texts)
            values = score_values(
                current, text_scores, version=scorer.version, settings=settings, now=now
            )
            write_batch(current, values, version=scorer.version, settings=settings)
            done = after
            if between is not None:
                between(done)
            if upcoming is not None:
                # `upcoming` was read before this batch was written: give it this batch's negatives.
                upcoming.recent.extend(
                    mention
                    for mention, scores in zip(current.mentions, text_scores, strict=True)
                    if scores.sentiment == "negative" or scores.is_complaint  # as stored ones
                )
            current = upcoming
    return done
