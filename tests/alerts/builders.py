"""Rows for the alert tests: brands, scored mentions, cases."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from storage.models import Author, Brand, Case, Mention, Score
from tocsin.config import AlertChannelConfig, AlertRuleConfig, Settings

NOW = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)  # a Monday
_ids = itertools.count(1)


def add_brand(session: Session, name: str = "Acme Air") -> Brand:
    brand = Brand(name=name, keywords=["acme air", "acmeair"], handles=["@acmeair"])
    session.add(brand)
    session.flush()
    return brand


def add_mention(
    session: Session,
    text: str,
    *,
    at: datetime,
    brand_id: int | None = None,
    sentiment: str = "negative",
    complaint: bool = True,
    handle: str | None = None,
    followers: int = 120,
    buzz_reasons: list[str] | None = None,
    urgency: str = "normal",
    buzz_risk: float = 30.0,
    collected_at: datetime | None = None,
) -> Mention:
    n = next(_ids)
    author = None
    if handle is not None:
        author = Author(
            platform="mastodon", handle=handle, followers=followers, display_name=handle.title()
        )
        session.add(author)
        session.flush()
    mention = Mention(
        platform="mastodon",
        external_id=f"post-{n}",
        brand_id=brand_id,
        url=f"https://social.example.org/@x/{n}",
        text=text,
        clean_text=text,
        lang="en",
        author_id=author.id if author else None,
        created_at=at,
        collected_at=collected_at or at,
        scored=True,
    )
    session.add(mention)
    session.flush()
    assert mention.id is not None
    session.add(
        Score(
            mention_id=mention.id,
            model_version="test",
            sentiment_label=sentiment,
            sentiment_negative=0.9 if sentiment == "negative" else 0.05,
            urgency_tier=urgency,
            urgency_score=0.95 if urgency == "critical" else 0.4,
            is_complaint=complaint,
            complaint_severity=3 if complaint else 0,
            buzz_risk=buzz_risk,
            buzz_reasons=buzz_reasons or [],
        )
    )
    session.flush()
    return mention


def add_case(
    session: Session,
    text: str = "My flight AA12 was cancelled and nobody answers",
    *,
    brand_id: int | None = None,
    urgency: str = "normal",
    buzz_risk: float = 30.0,
    reasons: list[str] | None = None,
    sla_due_at: datetime | None = None,
    at: datetime = NOW - timedelta(minutes=10),
    handle: str = "jane_doe",
    followers: int = 250_000,
    first_response_at: datetime | None = None,
) -> Case:
    mention = add_mention(
        session,
        text,
        at=at,
        brand_id=brand_id,
        handle=f"{handle}{next(_ids)}",
        followers=followers,
        buzz_reasons=reasons if reasons is not None else ["author has 250k followers"],
        urgency=urgency,
        buzz_risk=buzz_risk,
    )
    case = Case(
        mention_id=mention.id,
        brand_id=brand_id,
        platform="mastodon",
        lang="en",
        urgency_tier=urgency,
        buzz_risk=buzz_risk,
        status="new",
        sla_due_at=sla_due_at,
        first_response_at=first_response_at,
        created_at=at,
        updated_at=at,
    )
    session.add(case)
    session.flush()
    return case


def alert_settings(
    settings: Settings,
    *,
    channels: list[AlertChannelConfig],
    rules: list[AlertRuleConfig] | None = None,
    **alerts: object,
) -> Settings:
    """The test settings with these channels and rules (and other [alerts] keys)."""
    section = settings.alerts.model_copy(
        update={"channels": channels, "rules": rules or [], **alerts}
    )
    return settings.model_copy(update={"alerts": section})
