"""The alert rules on real databases: what fires, what it says, what stays quiet."""

from __future__ import annotations

import mailbox
from datetime import timedelta

from sqlmodel import select

from alerts.engine import evaluate_rules
from alerts.outbox import deliver_pending
from alerts.spike import baseline_windows
from storage.db import session_scope
from storage.models import Alert, Case
from tests.alerts.builders import NOW, add_brand, add_case, add_mention, alert_settings
from tests.alerts.test_incidents import APP_CRASH
from tocsin.config import AlertChannelConfig, AlertRuleConfig, Settings

BOX = AlertChannelConfig(name="box", type="mailbox", path="alerts.mbox")


def _configured(settings: Settings, *rules: AlertRuleConfig) -> Settings:
    return alert_settings(settings, channels=[BOX], rules=list(rules))


def _alerts() -> list[Alert]:
    with session_scope() as session:
        return list(session.exec(select(Alert).order_by(Alert.id)).all())  # type: ignore[arg-type]


def test_buzz_risk_rule_says_what_why_and_links_the_case(db_url: str, settings: Settings) -> None:
    rule = AlertRuleConfig(
        name="high-risk",
        kind="buzz_risk",
        threshold=70,
        channels=["box"],
        recipients=["lea@example.org"],
    )
    configured = _configured(settings, rule)
    with session_scope() as session:
        brand = add_brand(session)
        risky = add_case(
            session,
            "Acme Air <b>ruined</b> my honeymoon",
            brand_id=brand.id,
            buzz_risk=82,
            reasons=["author has 250k followers", "reposts growing 20/min"],
        )
        add_case(session, "meh flight", brand_id=brand.id, buzz_risk=50)
        assert evaluate_rules(session, settings=configured, now=NOW) == 1
    (alert,) = _alerts()
    assert (alert.kind, alert.rule, alert.case_id, alert.channel) == (
        "buzz_risk",
        "high-risk",
        risky.id,
        "box",
    )
    assert alert.recipients == ["lea@example.org"]
    assert alert.subject.startswith("Buzz risk 82/100: @jane_doe")
    link = f"http://127.0.0.1:8501/case?id={risky.id}"
    assert "author has 250k followers" in alert.body and "reposts growing 20/min" in alert.body
    assert link in alert.body and "about Acme Air" in alert.body
    assert deliver_pending(settings=configured, now=NOW).sent == 1
    (email,) = list(mailbox.mbox(settings.data_dir / "alerts.mbox"))
    html = next(p for p in email.walk() if p.get_content_type() == "text/html")
    payload = html.get_payload(decode=True)
    assert isinstance(payload, bytes)
    content = payload.decode()
    assert f'href="{link}"' in content
    assert "&lt;b&gt;ruined&lt;/b&gt;" in content and "<b>ruined</b>" not in content


def test_urgency_rule_fires_on_critical_cases_only(db_url: str, settings: Settings) -> None:
    rule = AlertRuleConfig(name="critical", kind="urgency", channels=["box"])
    with session_scope() as session:
        critical = add_case(
            session, "my child is having an allergic reaction on board", urgency="critical"
        )
        add_case(session, "bag late", urgency="high")
        assert evaluate_rules(session, settings=_configured(settings, rule), now=NOW) == 1
    (alert,) = _alerts()
    assert alert.case_id == critical.id and alert.payload["severity"] == "critical"
    assert "urgency critical (0.95)" in alert.payload["reasons"]


def test_case_rules_ignore_old_and_closed_cases(db_url: str, settings: Settings) -> None:
    rule = AlertRuleConfig(name="critical", kind="urgency", channels=["box"])
    with session_scope() as session:
        add_case(session, urgency="critical", at=NOW - timedelta(days=3))
        closed = add_case(session, urgency="critical")
        closed.status = "resolved"
        session.add(closed)
        assert evaluate_rules(session, settings=_configured(settings, rule), now=NOW) == 0


def test_sla_rule_warns_before_and_at_the_breach(db_url: str, settings: Settings) -> None:
    rule = AlertRuleConfig(name="sla", kind="sla", threshold=5, channels=["box"])
    configured = _configured(settings, rule)
    with session_scope() as session:
        soon = add_case(session, urgency="high", sla_due_at=NOW + timedelta(minutes=3))
        late = add_case(session, urgency="critical", sla_due_at=NOW - timedelta(minutes=10))
        add_case(session, urgency="high", sla_due_at=NOW + timedelta(minutes=30))
        add_case(
            session,
            urgency="high",
            sla_due_at=NOW - timedelta(minutes=5),
            first_response_at=NOW - timedelta(minutes=20),
        )
        assert evaluate_rules(session, settings=configured, now=NOW) == 2
    by_case = {a.case_id: a for a in _alerts()}
    assert by_case[soon.id].kind == "sla_soon"
    assert by_case[soon.id].subject.startswith(f"SLA breach in 3 min: case #{soon.id}")
    assert by_case[late.id].kind == "sla_breached"
    assert "10 min overdue" in by_case[late.id].subject
    with session_scope() as session:
        # Four minutes later the first one is breached too: one more alert, no repeats.
        assert evaluate_rules(session, settings=configured, now=NOW + timedelta(minutes=4)) == 1
    kinds = sorted((a.case_id, a.kind) for a in _alerts())
    assert kinds == sorted(
        [(soon.id, "sla_soon"), (soon.id, "sla_breached"), (late.id, "sla_breached")]
    )


def test_rules_can_be_limited_to_one_brand(db_url: str, settings: Settings) -> None:
    rule = AlertRuleConfig(name="critical", kind="urgency", channels=["box"], brand="Globex")
    with session_scope() as session:
        acme = add_brand(session, "Acme Air")
        globex = add_brand(session, "Globex")
        add_case(session, urgency="critical", brand_id=acme.id)
        mine = add_case(session, urgency="critical", brand_id=globex.id)
        assert evaluate_rules(session, settings=_configured(settings, rule), now=NOW) == 1
    assert _alerts()[0].case_id == mine.id


def _history(session, brand_id: int | None, per_window: int) -> None:  # type: ignore[no-untyped-def]
    """Eight weeks of negative mentions in the hours the spike test compares with."""
    for start, end in baseline_windows(NOW, weeks=8, timezone="UTC"):
        step = (end - start) / (per_window + 1)
        for i in range(per_window):
            add_mention(session, f"late again {i}", at=start + step * (i + 1), brand_id=brand_id)


def test_spike_rule_fires_on_a_real_spike_once(db_url: str, settings: Settings) -> None:
    rule = AlertRuleConfig(name="spike", kind="spike", channels=["box"])
    configured = _configured(settings, rule)
    with session_scope() as session:
        brand = add_brand(session)
        _history(session, brand.id, per_window=4)
        last_hour = [
            add_mention(
                session,
                f"everything is broken {i}",
                at=NOW - timedelta(minutes=55 - i),
                brand_id=brand.id,
            )
            for i in range(30)
        ]
        session.add(Case(mention_id=last_hour[0].id, brand_id=brand.id, buzz_risk=77))
        add_mention(
            session,
            "nice crew",
            at=NOW - timedelta(minutes=5),
            brand_id=brand.id,
            sentiment="positive",
            complaint=False,
        )
        assert evaluate_rules(session, settings=configured, now=NOW) == 1
        # Still spiking ten minutes later: the cool-down keeps it to one alert.
        assert evaluate_rules(session, settings=configured, now=NOW + timedelta(minutes=10)) == 0
    (alert,) = _alerts()
    assert alert.kind == "spike" and alert.brand_id == brand.id
    assert alert.subject == "Spike of negative mentions: Acme Air (30 in the last hour)"
    assert "usual 4 for this hour of the week" in alert.body
    assert "/case?id=" in alert.body


def test_spike_rule_stays_quiet_on_a_normal_busy_hour(db_url: str, settings: Settings) -> None:
    rule = AlertRuleConfig(name="spike", kind="spike", channels=["box"])
    with session_scope() as session:
        brand = add_brand(session)
        _history(session, brand.id, per_window=25)  # Monday mornings are always busy
        for i in range(30):
            add_mention(
                session,
                f"queue at the desk {i}",
                at=NOW - timedelta(minutes=55 - i),
                brand_id=brand.id,
            )
        assert evaluate_rules(session, settings=_configured(settings, rule), now=NOW) == 0


def test_spike_rule_needs_a_history(db_url: str, settings: Settings) -> None:
    rule = AlertRuleConfig(name="spike", kind="spike", channels=["box"])
    with session_scope() as session:
        brand = add_brand(session)
        for i in range(40):  # a brand monitored since this morning
            add_mention(session, f"bad {i}", at=NOW - timedelta(minutes=50), brand_id=brand.id)
        assert evaluate_rules(session, settings=_configured(settings, rule), now=NOW) == 0


def test_incident_rule_alerts_once_per_incident(db_url: str, settings: Settings) -> None:
    rule = AlertRuleConfig(name="incident", kind="incident", channels=["box"], min_count=5)
    configured = _configured(settings, rule)
    with session_scope() as session:
        brand = add_brand(session)
        mentions = [
            add_mention(session, text, at=NOW - timedelta(minutes=45 - 5 * i), brand_id=brand.id)
            for i, text in enumerate(APP_CRASH)
        ]
        case = Case(mention_id=mentions[2].id, brand_id=brand.id, buzz_risk=60)
        session.add(case)
        session.flush()
        assert evaluate_rules(session, settings=configured, now=NOW) == 1
        add_mention(
            session,
            "acme air app crashes at login after the update",
            brand_id=brand.id,
            at=NOW + timedelta(minutes=2),
        )
        assert evaluate_rules(session, settings=configured, now=NOW + timedelta(minutes=5)) == 0
    (alert,) = _alerts()
    assert alert.kind == "incident" and alert.incident_id is not None
    assert alert.subject.startswith("Incident forming: 8 similar complaints:")
    assert "8 similar complaints since 2026-11-16 09:15 UTC" in alert.body
    assert f"http://127.0.0.1:8501/case?id={case.id}" in alert.body


def test_incident_rule_alerts_again_when_the_incident_doubles(
    db_url: str, settings: Settings
) -> None:
    rule = AlertRuleConfig(name="incident", kind="incident", channels=["box"], min_count=4)
    configured = _configured(settings, rule)
    with session_scope() as session:
        brand = add_brand(session)
        for i, text in enumerate(APP_CRASH[:5]):
            add_mention(session, text, at=NOW - timedelta(minutes=30 - i), brand_id=brand.id)
        assert evaluate_rules(session, settings=configured, now=NOW) == 1
        for i, text in enumerate(APP_CRASH[5:]):  # 8 posts: twice the minimum
            add_mention(session, text, at=NOW + timedelta(minutes=1 + i), brand_id=brand.id)
        later = NOW + timedelta(minutes=5)
        assert evaluate_rules(session, settings=configured, now=later) == 1
        assert evaluate_rules(session, settings=configured, now=later) == 0
    first, second = _alerts()
    assert first.subject.startswith("Incident forming: 5 similar complaints")
    assert second.subject.startswith("Incident growing: 8 similar complaints")
    assert first.incident_id == second.incident_id
