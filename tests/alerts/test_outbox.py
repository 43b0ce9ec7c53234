"""The outbox on real databases: retries with backoff, exactly one delivery, dedup, digests."""

from __future__ import annotations

import mailbox
import threading
from datetime import timedelta

from sqlmodel import select

from alerts.engine import evaluate_rules
from alerts.outbox import backoff, deliver_pending
from storage import queries
from storage.db import session_scope
from storage.models import Alert
from tests.alerts.builders import NOW, add_case, alert_settings
from tests.alerts.servers import body_of, free_port, http_receiver, smtp_server
from tocsin.config import AlertChannelConfig, AlertRuleConfig, Settings, SmtpConfig

CRITICAL = AlertRuleConfig(
    name="critical", kind="urgency", channels=["leads"], recipients=["lea@example.org"]
)


def _alerts() -> list[Alert]:
    with session_scope() as session:
        return list(session.exec(select(Alert).order_by(Alert.id)).all())  # type: ignore[arg-type]


def test_smtp_down_then_back_delivers_exactly_once(db_url: str, settings: Settings) -> None:
    port = free_port()
    configured = alert_settings(
        settings,
        channels=[AlertChannelConfig(name="leads", type="smtp")],
        rules=[CRITICAL],
        smtp=SmtpConfig(host="127.0.0.1", port=port, sender="tocsin@acme.test"),
    )
    with session_scope() as session:
        case = add_case(session, urgency="critical", reasons=["mentions a lawyer"])
        assert evaluate_rules(session, settings=configured, now=NOW) == 1

    down = deliver_pending(settings=configured, now=NOW)
    assert (down.sent, down.retrying) == (0, 1)
    (alert,) = _alerts()
    assert alert.status == "pending" and alert.attempts == 1
    assert alert.next_attempt_at == NOW + timedelta(seconds=60)
    assert "ConnectionRefused" in (alert.last_error or "")

    early = deliver_pending(settings=configured, now=NOW + timedelta(seconds=30))
    assert (early.sent, early.retrying) == (0, 0)  # not due yet: the backoff is respected
    assert _alerts()[0].attempts == 1

    with smtp_server(port=port) as (inbox, _):
        back = deliver_pending(settings=configured, now=NOW + timedelta(seconds=61))
        again = deliver_pending(settings=configured, now=NOW + timedelta(hours=1))
    assert (back.sent, again.sent) == (1, 0)
    assert len(inbox.messages) == 1
    body = body_of(inbox.messages[0], "plain")
    assert f"http://127.0.0.1:8501/case?id={case.id}" in body
    assert "mentions a lawyer" in body
    (alert,) = _alerts()
    assert alert.status == "sent" and alert.attempts == 2 and alert.last_error is None
    assert alert.sent_at == NOW + timedelta(seconds=61)


def test_backoff_doubles_up_to_a_cap_then_gives_up(db_url: str, settings: Settings) -> None:
    assert [backoff(n, base_seconds=60, max_seconds=600).seconds for n in range(1, 6)] == [
        60,
        120,
        240,
        480,
        600,
    ]
    configured = alert_settings(
        settings,
        channels=[AlertChannelConfig(name="leads", type="smtp")],
        rules=[CRITICAL],
        smtp=SmtpConfig(host="127.0.0.1", port=free_port()),
        max_attempts=3,
    )
    with session_scope() as session:
        add_case(session, urgency="critical")
        evaluate_rules(session, settings=configured, now=NOW)
    moment = NOW
    for _ in range(3):
        deliver_pending(settings=configured, now=moment)
        moment += timedelta(hours=2)
    (alert,) = _alerts()
    assert alert.status == "failed" and alert.attempts == 3  # kept, with its last error
    assert alert.last_error
    assert deliver_pending(settings=configured, now=moment).retrying == 0
    with session_scope() as session:
        assert queries.requeue_failed_alerts(session, now=moment) == 1
    assert _alerts()[0].status == "pending"


def test_the_same_event_never_alerts_twice_on_a_channel(db_url: str, settings: Settings) -> None:
    with http_receiver() as receiver:
        configured = alert_settings(
            settings,
            channels=[
                AlertChannelConfig(name="leads", type="webhook", url=receiver.url),
                AlertChannelConfig(name="care", type="slack", url=receiver.url),
            ],
            rules=[
                AlertRuleConfig(name="critical", kind="urgency", channels=["leads", "care"]),
                AlertRuleConfig(name="risk", kind="buzz_risk", threshold=70, channels=["care"]),
            ],
        )
        with session_scope() as session:
            add_case(session, urgency="critical", buzz_risk=90)
            assert evaluate_rules(session, settings=configured, now=NOW) == 3
        with session_scope() as session:
            # Re-scored, evaluated again later: the same events, nothing new.
            assert evaluate_rules(session, settings=configured, now=NOW + timedelta(minutes=5)) == 0
        assert deliver_pending(settings=configured, now=NOW).sent == 3
        with session_scope() as session:
            assert evaluate_rules(session, settings=configured, now=NOW + timedelta(minutes=9)) == 0
        assert deliver_pending(settings=configured, now=NOW + timedelta(minutes=10)).sent == 0
    assert len(receiver.requests) == 3
    assert {(a.dedup_key.split(":")[0], a.channel) for a in _alerts()} == {
        ("urgency", "leads"),
        ("urgency", "care"),
        ("buzz_risk", "care"),
    }


def test_a_burst_on_one_channel_becomes_one_digest(db_url: str, settings: Settings) -> None:
    with http_receiver() as receiver:
        configured = alert_settings(
            settings,
            channels=[AlertChannelConfig(name="ops", type="webhook", url=receiver.url)],
            rules=[AlertRuleConfig(name="critical", kind="urgency", channels=["ops"])],
            digest_after=5,
        )
        with session_scope() as session:
            cases = [
                add_case(session, f"urgent problem number {i}", urgency="critical")
                for i in range(7)
            ]
            assert evaluate_rules(session, settings=configured, now=NOW) == 7
        report = deliver_pending(settings=configured, now=NOW)
        assert (report.sent, report.digests, report.grouped) == (1, 1, 7)
        assert deliver_pending(settings=configured, now=NOW + timedelta(hours=1)).sent == 0
    (request,) = receiver.requests
    digest = request.json()
    assert digest["kind"] == "digest" and len(digest["items"]) == 7
    linked = {link["url"] for item in digest["items"] for link in item["links"]}
    assert linked == {f"http://127.0.0.1:8501/case?id={c.id}" for c in cases}
    rows = _alerts()
    (digest_row,) = [a for a in rows if a.kind == "digest"]
    members = [a for a in rows if a.kind != "digest"]
    assert digest_row.status == "sent"
    assert all(a.status == "grouped" and a.digest_id == digest_row.id for a in members)
    assert all(a.sent_at == NOW for a in members)


def test_a_few_alerts_are_sent_one_by_one(db_url: str, settings: Settings) -> None:
    with http_receiver() as receiver:
        configured = alert_settings(
            settings,
            channels=[AlertChannelConfig(name="ops", type="webhook", url=receiver.url)],
            rules=[AlertRuleConfig(name="critical", kind="urgency", channels=["ops"])],
            digest_after=5,
        )
        with session_scope() as session:
            for i in range(5):
                add_case(session, f"urgent problem number {i}", urgency="critical")
            evaluate_rules(session, settings=configured, now=NOW)
        report = deliver_pending(settings=configured, now=NOW)
    assert (report.sent, report.digests) == (5, 0)
    assert all(r.json()["kind"] == "urgency" for r in receiver.requests)


def test_two_senders_at_once_deliver_each_alert_once(db_url: str, settings: Settings) -> None:
    with http_receiver() as receiver:
        configured = alert_settings(
            settings,
            channels=[AlertChannelConfig(name="ops", type="webhook", url=receiver.url)],
            rules=[AlertRuleConfig(name="critical", kind="urgency", channels=["ops"])],
            digest_after=100,
        )
        with session_scope() as session:
            for i in range(12):
                add_case(session, f"urgent problem number {i}", urgency="critical")
            evaluate_rules(session, settings=configured, now=NOW)
        reports = []
        threads = [
            threading.Thread(
                target=lambda: reports.append(deliver_pending(settings=configured, now=NOW))
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    ids = [r.headers["x-tocsin-alert"] for r in receiver.requests]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert sum(r.sent for r in reports) == 12


def test_an_alert_held_by_a_dead_sender_is_sent_after_its_lease(
    db_url: str, settings: Settings
) -> None:
    with http_receiver() as receiver:
        configured = alert_settings(
            settings,
            channels=[AlertChannelConfig(name="ops", type="webhook", url=receiver.url)],
            rules=[AlertRuleConfig(name="critical", kind="urgency", channels=["ops"])],
            lease_seconds=300,
        )
        with session_scope() as session:
            add_case(session, urgency="critical")
            evaluate_rules(session, settings=configured, now=NOW)
            (alert,) = session.exec(select(Alert)).all()
            assert alert.id is not None
            # A sender claims it and dies before sending.
            assert queries.claim_alert(
                session, alert_id=alert.id, now=NOW, lease_until=NOW + timedelta(seconds=300)
            )
        assert deliver_pending(settings=configured, now=NOW + timedelta(seconds=60)).sent == 0
        late = deliver_pending(settings=configured, now=NOW + timedelta(seconds=301))
        assert late.sent == 1
    assert len(receiver.requests) == 1
    assert _alerts()[0].attempts == 2


def test_digests_never_mix_audiences(db_url: str, settings: Settings) -> None:
    configured = alert_settings(
        settings,
        channels=[AlertChannelConfig(name="box", type="mailbox", path="alerts.mbox")],
        rules=[
            AlertRuleConfig(
                name="critical", kind="urgency", channels=["box"], recipients=["lea@example.org"]
            ),
            AlertRuleConfig(
                name="risk",
                kind="buzz_risk",
                threshold=70,
                channels=["box"],
                recipients=["pr@example.org"],
            ),
        ],
        digest_after=5,
    )
    with session_scope() as session:
        for i in range(6):
            add_case(session, f"urgent {i}", urgency="critical", buzz_risk=10)
            add_case(session, f"viral {i}", urgency="normal", buzz_risk=90)
        assert evaluate_rules(session, settings=configured, now=NOW) == 12
    report = deliver_pending(settings=configured, now=NOW)
    assert (report.sent, report.digests, report.grouped) == (2, 2, 12)
    box = mailbox.mbox(configured.data_dir / "alerts.mbox")
    audiences = sorted((m["To"], m["Subject"]) for m in box)
    assert audiences == [
        ("lea@example.org", "[Tocsin] 6 Tocsin alerts: 6 critical posts"),
        ("pr@example.org", "[Tocsin] 6 Tocsin alerts: 6 high buzz risk"),
    ]
    lea = next(m for m in box if m["To"] == "lea@example.org")
    plain = next(p for p in lea.walk() if p.get_content_type() == "text/plain")
    payload = plain.get_payload(decode=True)
    assert isinstance(payload, bytes)
    text = payload.decode()
    assert text.count("Critical post") == 6 and "Buzz risk 90" not in text


def test_a_malformed_alert_does_not_block_the_others(db_url: str, settings: Settings) -> None:
    with http_receiver() as receiver:
        configured = alert_settings(
            settings,
            channels=[AlertChannelConfig(name="ops", type="webhook", url=receiver.url)],
        )
        with session_scope() as session:
            queries.add_alerts(
                session,
                rows=[
                    {
                        "kind": "urgency",
                        "channel": "ops",
                        "dedup_key": "broken",
                        "payload": {"links": [{"label": "no url"}]},
                        "next_attempt_at": NOW,
                    },
                    {
                        "kind": "urgency",
                        "channel": "ops",
                        "dedup_key": "fine",
                        "payload": {"title": "fine"},
                        "next_attempt_at": NOW,
                    },
                ],
            )
        report = deliver_pending(settings=configured, now=NOW)
    assert (report.sent, report.retrying) == (1, 1)
    broken, fine = _alerts()
    assert broken.status == "pending" and "internal error: KeyError" in (broken.last_error or "")
    assert fine.status == "sent"
