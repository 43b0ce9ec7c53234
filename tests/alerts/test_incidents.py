"""Incident clustering on real databases: similar complaints open one incident, others stay out."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from storage.db import session_scope
from storage.models import Incident, Mention
from tests.alerts.builders import NOW, add_brand, add_mention
from triage.incidents import update_incidents

APP_CRASH = [
    "The Acme Air app keeps crashing when I try to log in since the update",
    "acme air app crashed again at login, can't check in!!",
    "Anyone else? @acmeair app crashes on the login screen after today's update",
    "Cannot login to the Acme Air app, it crashes every time. Fix your app",
    "acme air app login crash after the update, useless",
    "The app crashes right after login. Acme Air please fix this update",
    "@acmeair your app keeps crashing on login, I need my boarding pass",
    "Login crashes the Acme Air app since this morning's update #acmeair",
]
UNRELATED = [
    "Acme Air lost my luggage in Paris and nobody answers the phone",
    "Flight delayed 5 hours and no food vouchers from Acme Air",
    "Still waiting for my refund from acme air after 3 months",
    "Rude staff at the acme air check-in desk in Lyon this morning",
    "Seat 14C was broken and the crew did not care. Acme Air",
]


def _add(session, texts, *, start, brand_id, step_minutes=5, **extra):  # type: ignore[no-untyped-def]
    return [
        add_mention(
            session,
            text,
            at=start + timedelta(minutes=i * step_minutes),
            brand_id=brand_id,
            **extra,
        )
        for i, text in enumerate(texts)
    ]


def test_eight_similar_complaints_in_forty_minutes_open_one_incident(db_url: str) -> None:
    start = NOW - timedelta(minutes=45)
    with session_scope() as session:
        brand = add_brand(session)
        crash = _add(session, APP_CRASH, start=start, brand_id=brand.id)
        other = _add(
            session,
            UNRELATED,
            start=start + timedelta(minutes=2),
            brand_id=brand.id,
            step_minutes=8,
        )
        crash_ids = {m.id for m in crash}
        other_ids = {m.id for m in other}
        opened = update_incidents(session, now=NOW)
    assert len(opened) == 1
    incident = opened[0]
    assert incident.mention_count == 8
    assert incident.status == "open"
    assert {"app", "login"} <= set(incident.keywords)
    assert any(k.startswith("crash") for k in incident.keywords)
    assert "acme" not in incident.title.lower()  # the brand's name says nothing about the topic
    assert incident.title.startswith("8 similar complaints")
    with session_scope() as session:
        members = session.exec(select(Mention).where(Mention.incident_id == incident.id)).all()
        assert {m.id for m in members} == crash_ids
        outsiders = session.exec(select(Mention).where(Mention.id.in_(other_ids))).all()  # type: ignore[union-attr]
        assert all(m.incident_id is None for m in outsiders)
        again = update_incidents(session, now=NOW + timedelta(minutes=1))
        assert again == []  # nothing new: no second incident, no change
        assert len(session.exec(select(Incident)).all()) == 1


def test_a_later_similar_post_joins_the_open_incident(db_url: str) -> None:
    start = NOW - timedelta(minutes=45)
    with session_scope() as session:
        brand = add_brand(session)
        _add(session, APP_CRASH, start=start, brand_id=brand.id)
        first = update_incidents(session, now=NOW)[0]
        later = add_mention(
            session,
            "Acme Air app: crash on login screen, since update. Again.",
            at=NOW + timedelta(minutes=10),
            brand_id=brand.id,
        )
        refund = add_mention(
            session,
            "acme air refund still not here",
            at=NOW + timedelta(minutes=11),
            brand_id=brand.id,
        )
        grown = update_incidents(session, now=NOW + timedelta(minutes=15))
        assert [i.id for i in grown] == [first.id]
        assert grown[0].mention_count == 9
        session.refresh(later)
        session.refresh(refund)
        assert later.incident_id == first.id and refund.incident_id is None


def test_too_few_similar_posts_or_positive_ones_open_nothing(db_url: str) -> None:
    start = NOW - timedelta(minutes=30)
    with session_scope() as session:
        brand = add_brand(session)
        _add(session, APP_CRASH[:4], start=start, brand_id=brand.id)  # under the minimum of 5
        _add(
            session,
            [f"Love the new acme air app update, login is so fast {i}" for i in range(6)],
            start=start,
            brand_id=brand.id,
            sentiment="positive",
            complaint=False,
        )
        assert update_incidents(session, now=NOW) == []


def test_posts_older_than_the_window_do_not_count(db_url: str) -> None:
    with session_scope() as session:
        brand = add_brand(session)
        _add(session, APP_CRASH, start=NOW - timedelta(hours=3), step_minutes=10, brand_id=brand.id)
        assert update_incidents(session, now=NOW, window_minutes=60) == []


def test_quiet_incidents_close(db_url: str) -> None:
    with session_scope() as session:
        brand = add_brand(session)
        _add(session, APP_CRASH, start=NOW - timedelta(minutes=45), brand_id=brand.id)
        incident = update_incidents(session, now=NOW)[0]
        update_incidents(session, now=NOW + timedelta(hours=7))
        session.refresh(incident)
        assert incident.status == "closed"


GENERIC = [
    "@acmeair please help!!",
    "@acmeair still waiting for a reply, please help",
    "@acmeair DM sent, please answer",
    "@acmeair hello? anyone there? I need help",
    "@acmeair can you help me please",
    "@acmeair I sent you a DM an hour ago",
    "@acmeair no reply to my DM yet",
    "@acmeair help please, urgent",
]


def test_generic_requests_for_help_are_not_an_incident(db_url: str) -> None:
    # Everyone writes "please help" or "DM sent" whatever went wrong: not one problem.
    with session_scope() as session:
        brand = add_brand(session)
        _add(session, GENERIC, start=NOW - timedelta(minutes=40), brand_id=brand.id)
        assert update_incidents(session, now=NOW) == []


def test_an_outage_of_short_posts_is_an_incident(db_url: str) -> None:
    outage = [
        "is the acme air app down?",
        "acme air app down again",
        "app down @acmeair??",
        "Acme Air app is down, can't board",
        "the acme air app is down for me too",
        "@acmeair your app is down",
    ]
    with session_scope() as session:
        brand = add_brand(session)
        _add(session, outage, start=NOW - timedelta(minutes=30), brand_id=brand.id)
        (incident,) = update_incidents(session, now=NOW)
    assert incident.mention_count == 6
    assert set(incident.keywords[:2]) == {"app", "down"}


USUAL_EXTRAS = [
    "at the gate in Lyon",
    "no food voucher",
    "missed my meeting",
    "kids exhausted",
    "third time this month",
    "crew said nothing",
    "stuck in Madrid",
    "wedding tomorrow",
    "connection to Rome lost",
    "hotel booked for nothing",
    "rainy Paris",
    "boss is furious",
]


def _delays(count: int, *, seed: int) -> list[str]:
    extras = USUAL_EXTRAS[seed % 3 :] + USUAL_EXTRAS[: seed % 3]
    return [f"flight delayed again, {extras[i % len(extras)]}" for i in range(count)]


def test_what_a_brand_always_hears_is_not_an_incident(db_url: str) -> None:
    # "Flight delayed" posts every hour of the last week: six more this hour are business as
    # usual (the spike rule watches the volume), not a new problem.
    this_hour = _delays(6, seed=1)
    with session_scope() as session:
        brand = add_brand(session)
        for day in range(1, 7):
            _add(session, _delays(12, seed=day), start=NOW - timedelta(days=day), brand_id=brand.id)
        _add(session, this_hour, start=NOW - timedelta(minutes=40), brand_id=brand.id)
        assert update_incidents(session, now=NOW) == []
    with session_scope() as session:
        fresh = add_brand(session, "Globex Air")
        _add(session, this_hour, start=NOW - timedelta(minutes=40), brand_id=fresh.id)
        (incident,) = update_incidents(session, now=NOW)  # with no history, it stands out
        assert {"flight", "delayed"} <= set(incident.keywords)
