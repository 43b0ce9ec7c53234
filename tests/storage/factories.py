"""Small builders for test rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from storage.models import Case, Mention, Score, TeamMember
from storage.queries import AuthorRecord, MentionRecord

T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


def mention_record(
    i: int, *, platform: str = "x", likes: int | None = 3, **extra: object
) -> MentionRecord:
    values: dict[str, object] = {
        "platform": platform,
        "external_id": str(i),
        "text": f"post {i} about @acme",
        "url": f"https://example.org/{platform}/{i}",
        "lang": "en",
        "created_at": T0 + timedelta(seconds=i),
        "likes": likes,
        "reposts": 1,
        "replies": 0,
        "author": AuthorRecord(handle=f"user{i % 500}", followers=i % 1000),
    }
    values.update(extra)
    return MentionRecord(**values)  # type: ignore[arg-type]


def add_member(session: Session, name: str, **extra: object) -> TeamMember:
    member = TeamMember(name=name, email=f"{name.lower()}@example.org", **extra)  # type: ignore[arg-type]
    session.add(member)
    session.flush()
    return member


def add_case(
    session: Session,
    *,
    text: str = "my flight was cancelled",
    priority: float = 1.0,
    tier: str = "normal",
    platform: str = "x",
    lang: str = "en",
    status: str = "new",
    external_id: str | None = None,
) -> Case:
    mention = Mention(
        platform=platform,
        external_id=external_id or f"m{priority}-{text[:10]}-{tier}-{status}",
        text=text,
        clean_text=text,
        lang=lang,
        created_at=T0,
        scored=True,
    )
    session.add(mention)
    session.flush()
    assert mention.id is not None
    session.add(
        Score(
            mention_id=mention.id,
            model_version="test",
            sentiment_label="negative",
            urgency_tier=tier,
            buzz_risk=50.0,
            buzz_reasons=["author has 250k followers"],
        )
    )
    case = Case(
        mention_id=mention.id,
        platform=platform,
        lang=lang,
        urgency_tier=tier,
        priority=priority,
        status=status,
    )
    session.add(case)
    session.flush()
    return case


def new_case_id(session: Session, **kwargs: object) -> int:
    case_id = add_case(session, **kwargs).id  # type: ignore[arg-type]
    assert case_id is not None
    return case_id


def new_member_id(session: Session, name: str, **extra: object) -> int:
    member_id = add_member(session, name, **extra).id
    assert member_id is not None
    return member_id
