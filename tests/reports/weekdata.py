"""A week of known data for Acme Air (2026-W47, Europe/Paris) and the week before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from storage.models import (
    Alert,
    Brand,
    Case,
    Incident,
    Mention,
    Reply,
    Score,
    Source,
    TeamMember,
)

DAY0 = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)  # Monday of 2026-W47 (01:00 in Paris)
BUILT_AT = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Mon 23 Nov 08:00 in Paris
EVIL = "<script>alert('x')</script> my bag & passport are gone"

# (source, day offset, hour UTC, sentiment, complaint, buzz risk, text)
WEEK = [
    ("acme-x", 0, 8, "negative", True, 81.0, "Acme Air lost luggage again, nobody answers"),
    ("acme-x", 0, 9, "negative", True, 60.0, "lost luggage at CDG, third day waiting @acmeair"),
    ("acme-x", 1, 10, "negative", True, 95.0, EVIL),
    ("acme-x", 1, 11, "neutral", False, 10.0, "Boarding now with Acme Air"),
    ("acme-x", 2, 12, "positive", False, 5.0, "Great crew on my Acme Air flight"),
    ("acme-x", 3, 13, "negative", True, 70.0, "still no refund from acme air after 3 weeks"),
    ("acme-reddit", 0, 23, "negative", True, 40.0, "Refund request ignored, still waiting"),
    ("acme-reddit", 4, 14, "neutral", False, 12.0, "Which Acme Air lounge is best?"),
    ("acme-reddit", 5, 15, "neutral", False, 8.0, "Acme Air schedule change for winter"),
    ("acme-reddit", 6, 16, "positive", False, 3.0, "Thanks Acme Air for the upgrade"),
]
PREVIOUS = ["negative", "neutral", "positive", "positive"]


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A UTC time on a day of the week (Monday = 0); Paris is one hour ahead in November."""
    return DAY0 + timedelta(days=day, hours=hour, minutes=minute)


def add_mention(
    session: Session,
    *,
    brand: Brand,
    source: Source,
    n: int,
    created: datetime,
    text: str,
    sentiment: str | None,
    complaint: bool = False,
    risk: float = 0.0,
) -> Mention:
    mention = Mention(
        platform="x" if source.name == "acme-x" else "reddit",
        external_id=f"{source.name}-{n}",
        source_id=source.id,
        brand_id=brand.id,
        url="javascript:alert(1)" if text == EVIL else f"https://example.org/{source.name}/{n}",
        text=text,
        clean_text=text,
        lang="en",
        created_at=created,
        scored=sentiment is not None,
    )
    session.add(mention)
    session.flush()
    assert mention.id is not None
    if sentiment is not None:
        session.add(
            Score(
                mention_id=mention.id,
                model_version="test",
                sentiment_label=sentiment,
                urgency_tier="high" if risk > 50 else "normal",
                is_complaint=complaint,
                buzz_risk=risk,
                buzz_reasons=["author has 250k followers"] if risk > 90 else [],
            )
        )
    return mention


def add_case(
    session: Session,
    *,
    brand: Brand,
    opened: datetime,
    due_minutes: int,
    answered_minutes: int | None,
    assignee: TeamMember | None,
    handoff: str | None = None,
) -> Case:
    case = Case(
        brand_id=brand.id,
        created_at=opened,
        sla_due_at=opened + timedelta(minutes=due_minutes),
        first_response_at=(
            opened + timedelta(minutes=answered_minutes) if answered_minutes is not None else None
        ),
        assignee_id=assignee.id if assignee else None,
        status="handed_off" if handoff else ("replied" if answered_minutes else "new"),
        handoff=handoff,
    )
    session.add(case)
    session.flush()
    assert case.id is not None
    if handoff and assignee:
        session.add(
            Reply(
                case_id=case.id, member_id=assignee.id, text="DM us", action=handoff, status="sent"
            )
        )
    return case


def load_week(session: Session) -> Brand:
    brand = Brand(name="Acme Air", keywords=["acme air", "acmeair"], handles=["@acmeair"])
    other = Brand(name="Other Co")
    session.add_all([brand, other])
    session.flush()
    x = Source(name="acme-x", kind="x", brand_id=brand.id)
    reddit = Source(name="acme-reddit", kind="reddit", brand_id=brand.id)
    session.add_all([x, reddit])
    session.flush()
    sources = {"acme-x": x, "acme-reddit": reddit}
    for n, (source, day, hour, sentiment, complaint, risk, text) in enumerate(WEEK):
        add_mention(
            session,
            brand=brand,
            source=sources[source],
            n=n,
            created=at(day, hour),
            text=text,
            sentiment=sentiment,
            complaint=complaint,
            risk=risk,
        )
    # Not scored yet: counted in the volume, not in the sentiment.
    add_mention(
        session, brand=brand, source=x, n=99, created=at(6, 20), text="just posted", sentiment=None
    )
    for n, sentiment in enumerate(PREVIOUS):
        add_mention(
            session,
            brand=brand,
            source=x,
            n=200 + n,
            created=at(-3, 12),
            text="last week",
            sentiment=sentiment,
        )
    # Another brand's post in the same week is not counted.
    session.add(Mention(platform="x", external_id="other", brand_id=other.id, created_at=at(2, 9)))

    lea = TeamMember(name="Lea Martin", email="lea@example.org", role="lead")
    sam = TeamMember(name="Sam Okafor", email="sam@example.org")
    session.add_all([lea, sam])
    session.flush()
    add_case(
        session, brand=brand, opened=at(0, 9), due_minutes=15, answered_minutes=5, assignee=lea
    )
    add_case(
        session,
        brand=brand,
        opened=at(1, 9),
        due_minutes=30,
        answered_minutes=10,
        assignee=lea,
        handoff="dm_invite",
    )
    add_case(
        session, brand=brand, opened=at(2, 9), due_minutes=60, answered_minutes=20, assignee=sam
    )
    add_case(
        session,
        brand=brand,
        opened=at(3, 9),
        due_minutes=15,
        answered_minutes=30,
        assignee=sam,
        handoff="phone_callback",
    )
    add_case(
        session,
        brand=brand,
        opened=at(4, 9),
        due_minutes=60,
        answered_minutes=60,
        assignee=sam,
        handoff="dm_invite",
    )
    add_case(
        session, brand=brand, opened=at(5, 9), due_minutes=60, answered_minutes=None, assignee=None
    )
    # Opened late on Sunday with a day to answer: still running when the report is built.
    add_case(
        session,
        brand=brand,
        opened=at(6, 21),
        due_minutes=24 * 60,
        answered_minutes=None,
        assignee=None,
    )

    session.add(
        Incident(
            brand_id=brand.id,
            title="Lost luggage at CDG",
            keywords=["lost", "luggage"],
            mention_count=3,
            first_seen_at=at(0, 8),
            last_seen_at=at(1, 10),
        )
    )
    for kind, sent, status in [
        ("urgency", at(0, 9, 1), "sent"),
        ("urgency", at(1, 10, 1), "sent"),
        ("spike", at(1, 11), "sent"),
        ("buzz_risk", None, "pending"),
        ("spike", at(-2, 9), "sent"),
    ]:
        session.add(
            Alert(
                kind=kind,
                rule=kind,
                brand_id=brand.id,
                channel="leads-email",
                dedup_key=f"{kind}-{sent}",
                subject=f"{kind} alert",
                status=status,
                sent_at=sent,
            )
        )
    session.flush()
    return brand
