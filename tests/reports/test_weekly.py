"""The weekly report on a week of known data: figures, HTML escaping, PDF pages, sending."""

from __future__ import annotations

import email
import shutil
import socket
import subprocess
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from reports.weekly import build, compute_figures, send_due_reports
from storage import queries
from storage.db import session_scope
from tests.reports.weekdata import BUILT_AT, load_week
from tocsin.config import Settings
from tocsin.errors import UserError


@pytest.fixture
def week_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        timezone="Europe/Paris",
        brands=[{"name": "Acme Air", "keywords": ["acme air"]}],  # type: ignore[list-item]
    )


def test_figures_of_a_known_week(db_url: str, week_settings: Settings) -> None:
    with session_scope() as session:
        load_week(session)
    with session_scope() as session:
        f = compute_figures(
            session, brand="Acme Air", week="2026-W47", settings=week_settings, now=BUILT_AT
        )
    assert f.volume_total == 11 and f.volume_previous == 4
    assert f.volume_by_source == {"acme-x": 7, "acme-reddit": 4}
    # Local days in Paris: Monday 23:00 UTC is already Tuesday.
    assert list(f.volume_by_day.values()) == [2, 3, 1, 1, 1, 1, 2]
    assert f.volume_by_source_day["acme-reddit"]["2026-11-17"] == 1
    assert f.scored == 10
    assert f.sentiment_share == {"negative": 50.0, "neutral": 30.0, "positive": 20.0}
    assert (f.net_sentiment, f.net_sentiment_previous, f.net_sentiment_change) == (
        -30.0,
        25.0,
        -55.0,
    )
    assert f.complaints == 5
    assert [(t.keyword, t.mentions, t.share) for t in f.themes] == [
        ("lost luggage", 2, 40.0),
        ("refund", 2, 40.0),
    ]
    assert [p.buzz_risk for p in f.themes[0].examples] == [81.0, 60.0]
    assert [p.buzz_risk for p in f.riskiest] == [95.0, 81.0, 70.0, 60.0, 40.0]
    assert f.riskiest[0].reasons == ["author has 250k followers"]

    r = f.response
    assert (r.cases, r.responded) == (7, 5)
    assert (r.p50_minutes, r.p90_minutes) == (20.0, 48.0)
    assert (r.sla_met, r.sla_counted, r.sla_met_pct) == (4, 6, 66.7)
    assert (r.dm, r.phone) == (2, 1)
    agents = {a.agent: a for a in r.per_agent}
    assert (agents["Lea Martin"].cases, agents["Lea Martin"].p50_minutes) == (2, 7.5)
    assert agents["Lea Martin"].sla_met_pct == 100.0 and agents["Lea Martin"].dm == 1
    assert (agents["Sam Okafor"].p50_minutes, agents["Sam Okafor"].sla_met_pct) == (30.0, 66.7)
    assert (agents["Sam Okafor"].dm, agents["Sam Okafor"].phone) == (1, 1)
    assert agents["(unassigned)"].sla_met_pct == 0.0
    assert agents["(unassigned)"].p50_minutes is None

    assert [i["title"] for i in f.incidents] == ["Lost luggage at CDG"]
    assert (f.alerts_sent, f.alerts_by_kind) == (3, {"urgency": 2, "spike": 1})


def test_html_and_pdf_with_a_stored_report_run(
    sqlite_url: str, week_settings: Settings, tmp_path: Path, artifacts_dir: Path
) -> None:
    with session_scope() as session:
        load_week(session)
    out = tmp_path / "reports"
    with session_scope() as session:
        built = build(
            session,
            brand="Acme Air",
            week="2026-W47",
            settings=week_settings,
            out_dir=out,
            now=BUILT_AT,
        )
    html = built.html_path.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; my bag &amp; passport" in html
    assert "<script>" not in html and "javascript:" not in html
    assert html.count("data:image/png;base64,") == 3
    assert "66.7%" in html and "−30" not in html and "-30.0" in html

    with session_scope() as session:
        brand = queries.brand_by_name(session, name="Acme Air")
        assert brand is not None and brand.id is not None
        run = queries.report_run_for(session, brand_id=brand.id, week="2026-W47")
    assert run is not None and run.sent_at is None
    assert run.pdf_path == str(built.pdf_path.resolve()) if built.pdf_path else False
    assert run.figures["response"]["sla_met_pct"] == 66.7
    assert run.figures["riskiest"][0] == {
        "mention_id": built.figures.riskiest[0].mention_id,
        "buzz_risk": 95.0,
        "urgency": "high",
    }
    assert "passport" not in str(run.figures), "no public text in the stored figures"

    assert built.pdf_path is not None and built.pdf_path.read_bytes().startswith(b"%PDF")
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm, "poppler-utils missing: run `make report-deps`"
    prefix = tmp_path / "page"
    subprocess.run(
        [pdftoppm, "-png", "-r", "70", "-f", "1", "-l", "1", str(built.pdf_path), str(prefix)],
        check=True,
        timeout=120,
    )
    page = next(tmp_path.glob("page*.png"))
    target = artifacts_dir / "report-page1.png"
    shutil.copy(page, target)
    assert target.read_bytes().startswith(b"\x89PNG") and target.stat().st_size > 10_000
    text = subprocess.run(
        ["pdftotext", "-layout", str(built.pdf_path), "-"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "Acme Air" in text and "66.7%" in text and "lost luggage" in text
    assert "<script>alert('x')</script> my bag & passport" in text  # shown as text, not run


def test_unknown_week_or_brand_is_a_clear_error(sqlite_url: str, week_settings: Settings) -> None:
    with session_scope() as session:
        load_week(session)
        with pytest.raises(UserError, match="ISO week"):
            compute_figures(session, brand="Acme Air", week="2026-47", settings=week_settings)
        with pytest.raises(UserError, match="2027 has no week 53"):
            compute_figures(session, brand="Acme Air", week="2027-W53", settings=week_settings)
        with pytest.raises(UserError, match="no brand 'Acme'"):
            compute_figures(session, brand="Acme", week="2026-W47", settings=week_settings)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def test_the_weekly_job_sends_each_report_once_and_retries_when_smtp_is_down(
    sqlite_url: str, tmp_path: Path, smtp_server: tuple[int, Inbox]
) -> None:
    port, inbox = smtp_server
    settings = Settings(
        data_dir=tmp_path / "data",
        timezone="Europe/Paris",
        brands=[{"name": "Acme Air"}],  # type: ignore[list-item]
        reports={"readers": ["care@example.org", "lea@example.org"]},  # type: ignore[arg-type]
        alerts={"smtp": {"host": "127.0.0.1", "port": 1, "sender": "tocsin@example.org"}},  # type: ignore[arg-type]
    )
    with session_scope() as session:
        load_week(session)
    with pytest.raises(RuntimeError, match=r"Acme Air: SMTP 127\.0\.0\.1:1"):
        send_due_reports(settings=settings, now=BUILT_AT)
    with session_scope() as session:
        brand = queries.brand_by_name(session, name="Acme Air")
        assert brand is not None and brand.id is not None
        run = queries.report_run_for(session, brand_id=brand.id, week="2026-W47")
        assert run is not None and run.sent_at is None, "built, not sent"

    settings.alerts.smtp.port = port
    assert send_due_reports(settings=settings, now=BUILT_AT) == [
        "Acme Air 2026-W47: sent to 2 readers"
    ]
    assert send_due_reports(settings=settings, now=BUILT_AT) == [], "never twice"
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["Subject"] == "Acme Air: reputation report 2026-W47"
    assert message["To"] == "care@example.org, lea@example.org"
    attachments = [p for p in message.walk() if p.get_filename()]
    assert [a.get_filename() for a in attachments] == ["acme-air-2026-W47.pdf"]
    assert attachments[0].get_payload(decode=True).startswith(b"%PDF")  # type: ignore[union-attr]
    body = message.get_payload()[0].get_payload()  # type: ignore[index,union-attr]
    assert "Net sentiment: -30.0 (-55 pts)" in body and "SLA met: 66.7%" in body
    assert "Past reports: http://127.0.0.1:8501/overview" in body

    send_due_reports(settings=settings, now=BUILT_AT, force=True)
    assert len(inbox.messages) == 2


def test_tocsin_report_writes_the_files(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from tocsin.cli import app

    with session_scope() as session:
        load_week(session)
    monkeypatch.setenv("TOCSIN_TIMEZONE", "Europe/Paris")
    out = tmp_path / "out"
    args = ["report", "--brand", "Acme Air", "--week", "2026-W47", "--out", str(out), "--no-pdf"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Acme Air 2026-W47: 11 mentions, net sentiment -30.0" in result.output
    assert (out / "acme-air-2026-W47.html").is_file() and not (
        out / "acme-air-2026-W47.pdf"
    ).exists()
    refused = CliRunner().invoke(app, ["report", "--brand", "Acme Air", "--send"])
    assert isinstance(refused.exception, UserError) and "no readers" in str(refused.exception)
