"""Rows for the board tests: a team with passwords, a brand, scored mentions and their cases."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from sqlmodel import Session

from storage.models import Author, Brand, Case, Mention, Score, TeamMember
from storage.types import utcnow
from triage.auth import hash_password

PASSWORDS = {"lea@example.org": "lead-secret-123", "sam@example.org": "agent-secret-456"}
HOSTILE_TEXT = (
    "<script>document.title='pwned'</script> **bold** [click](javascript:alert(1)) "
    "<img src=x onerror=alert(2)> :red[red] $x^2$ # heading"
)


def shown(markdown: str) -> str:
    """Markdown as a reader sees it: backslash escapes removed."""
    return re.sub(r"\\(.)", r"\1", markdown)


@dataclass
class Seeded:
    lead_id: int
    agent_id: int
    brand_id: int
    case_ids: list[int] = field(default_factory=list)  # highest priority first
    hostile_case_id: int = 0
    mention_ids: list[int] = field(default_factory=list)


def add_member(session: Session, *, name: str, email: str, role: str, **extra: object) -> int:
    member = TeamMember(
        name=name,
        email=email,
        role=role,
        on_shift=True,
        languages=["en", "fr"],
        password_hash=hash_password(PASSWORDS[email], rounds=4) if email in PASSWORDS else None,
        **extra,  # type: ignore[arg-type]
    )
    session.add(member)
    session.flush()
    assert member.id is not None
    return member.id


def add_scored_case(
    session: Session,
    *,
    n: int,
    brand_id: int,
    text: str,
    tier: str = "high",
    risk: float = 55.0,
    priority: float = 50.0,
    platform: str = "mastodon",
    handle: str = "traveller",
    display_name: str = "Jo Traveller",
    bio: str = "Frequent flyer",
    followers: int = 25_000,
    assignee_id: int | None = None,
    status: str = "new",
    sla_minutes: int = 20,
    author_id: int | None = None,
    thread: str | None = None,
) -> tuple[int, int]:
    """A mention by an author, its Score and its Case; returns (case id, mention id)."""
    if author_id is None:
        author = Author(
            platform=platform,
            handle=f"{handle}{n}",
            display_name=display_name,
            followers=followers,
            verified=n % 2 == 0,
            bio=bio,
        )
        session.add(author)
        session.flush()
        author_id = author.id
    now = utcnow()
    mention = Mention(
        platform=platform,
        external_id=f"post-{n}",
        brand_id=brand_id,
        url=f"https://social.example.org/@{handle}{n}/{n}",
        text=text,
        clean_text=text,
        lang="en",
        author_id=author_id,
        created_at=now - timedelta(minutes=10 + n),
        thread_external_id=thread or f"post-{n}",
        scored=True,
        likes=n,
        reposts=n // 2,
    )
    session.add(mention)
    session.flush()
    assert mention.id is not None
    session.add(
        Score(
            mention_id=mention.id,
            model_version="test-1",
            sentiment_label="negative",
            sentiment_negative=0.8,
            sentiment_neutral=0.15,
            sentiment_positive=0.05,
            urgency_tier=tier,
            urgency_score=0.7,
            is_complaint=True,
            complaint_score=0.9,
            complaint_severity=3,
            buzz_risk=risk,
            buzz_tier="high" if risk >= 70 else "medium",
            buzz_reasons=[f"author has {followers:,} followers", "complaint, severity 3"],
            priority=priority,
            scored_at=now - timedelta(minutes=5),
        )
    )
    case = Case(
        mention_id=mention.id,
        brand_id=brand_id,
        platform=platform,
        lang="en",
        urgency_tier=tier,
        buzz_risk=risk,
        status=status,
        assignee_id=assignee_id,
        priority=priority,
        sla_due_at=now + timedelta(minutes=sla_minutes),
        created_at=now - timedelta(minutes=5),
    )
    session.add(case)
    session.flush()
    assert case.id is not None
    return case.id, mention.id


def seed(session: Session) -> Seeded:
    lead = add_member(session, name="Lea Martin", email="lea@example.org", role="lead")
    agent = add_member(session, name="Sam Okafor", email="sam@example.org", role="agent")
    brand = Brand(name="Acme Air", keywords=["acme air"], handles=["@acmeair"])
    session.add(brand)
    session.flush()
    assert brand.id is not None
    seeded = Seeded(lead_id=lead, agent_id=agent, brand_id=brand.id)
    texts = [
        "My flight with Acme Air was cancelled and I am stuck at the gate, nobody answers",
        "Acme Air lost my bag again, third time this year",
        "Acme Air charged me twice for the same seat",
    ]
    for n, text in enumerate(texts):
        case_id, mention_id = add_scored_case(
            session, n=n, brand_id=brand.id, text=text, priority=90.0 - 10 * n
        )
        seeded.case_ids.append(case_id)
        seeded.mention_ids.append(mention_id)
    seeded.hostile_case_id, mention_id = add_scored_case(
        session,
        n=10,
        brand_id=brand.id,
        text=HOSTILE_TEXT,
        tier="normal",
        priority=10.0,
        display_name="<b>Mallory</b> **bold**",
        bio="<script>alert('bio')</script> _italic_",
    )
    seeded.mention_ids.append(mention_id)
    return seeded
