"""Builders for triage tests: mentions with authors and scores, team members, opened cases."""

from __future__ import annotations

import itertools
from typing import Any

from sqlmodel import Session

from storage.models import Author, Case, Mention, Score, TeamMember
from tocsin.config import Settings
from triage.intake import open_or_update_case

_ids = itertools.count(1)


def add_author(session: Session, handle: str, *, platform: str = "x", **extra: Any) -> Author:
    author = Author(platform=platform, handle=handle, **extra)
    session.add(author)
    session.flush()
    return author


def add_mention(
    session: Session,
    text: str = "my parcel never arrived, refund please",
    *,
    platform: str = "x",
    lang: str = "en",
    author: Author | None = None,
    **extra: Any,
) -> Mention:
    n = next(_ids)
    values: dict[str, Any] = {
        "platform": platform,
        "external_id": f"post-{n}",
        "url": f"https://example.org/{platform}/post-{n}",
        "text": text,
        "clean_text": text,
        "lang": lang,
        "author_id": author.id if author else None,
        "scored": True,
    }
    values.update(extra)
    mention = Mention(**values)
    session.add(mention)
    session.flush()
    return mention


def add_score(
    session: Session,
    mention: Mention,
    *,
    tier: str = "normal",
    risk: float = 50.0,
    complaint: bool = True,
    version: str = "test-1",
) -> Score:
    assert mention.id is not None
    score = Score(
        mention_id=mention.id,
        model_version=version,
        sentiment_label="negative",
        sentiment_negative=0.9,
        urgency_tier=tier,
        urgency_score=0.5,
        is_complaint=complaint,
        complaint_severity=2 if complaint else 0,
        buzz_risk=risk,
        buzz_reasons=["author has 250k followers"] if risk >= 50 else [],
    )
    session.add(score)
    session.flush()
    return score


def open_case(
    session: Session,
    settings: Settings,
    text: str = "my parcel never arrived, refund please",
    *,
    tier: str = "normal",
    risk: float = 50.0,
    **mention_extra: Any,
) -> Case:
    mention = add_mention(session, text, **mention_extra)
    case = open_or_update_case(
        session,
        mention=mention,
        score=add_score(session, mention, tier=tier, risk=risk),
        settings=settings,
    )
    assert case is not None
    return case


def add_member(session: Session, name: str, **extra: Any) -> TeamMember:
    values: dict[str, Any] = {
        "email": f"{name.lower()}@example.org",
        "on_shift": True,
        "languages": ["en"],
    }
    values.update(extra)
    member = TeamMember(name=name, **values)
    session.add(member)
    session.flush()
    return member
