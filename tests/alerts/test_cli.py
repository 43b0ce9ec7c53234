"""`tocsin alerts ...` as a user runs it (real subprocesses)."""

from __future__ import annotations

import mailbox
import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import select

from storage.db import session_scope
from storage.models import Alert
from storage.types import utcnow
from tests.alerts.builders import add_case
from tests.alerts.servers import free_port, http_receiver


def _tocsin(*args: str, cwd: Path, db_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env["TOCSIN_CONFIG"] = str(cwd / "tocsin.toml")
    if db_url:
        env["TOCSIN_DATABASE_URL"] = db_url
    return subprocess.run(
        [sys.executable, "-m", "tocsin", "alerts", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _config(folder: Path, receiver_url: str, smtp_port: int) -> None:
    (folder / "tocsin.toml").write_text(
        f"""
data_dir = "{folder / "data"}"

[alerts.smtp]
host = "127.0.0.1"
port = {smtp_port}

[[alerts.channels]]
name = "box"
type = "mailbox"
path = "alerts.mbox"

[[alerts.channels]]
name = "hook"
type = "webhook"
url = "{receiver_url}"

[[alerts.channels]]
name = "leads-email"
type = "smtp"

[[alerts.rules]]
name = "critical"
kind = "urgency"
channels = ["box", "hook", "leads-email"]
recipients = ["lea@example.org"]
""",
        encoding="utf-8",
    )


def test_alerts_test_reports_the_failing_channel(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        _config(tmp_path, receiver.url, free_port())  # nothing listens on the SMTP port
        result = _tocsin("test", cwd=tmp_path)
    assert result.returncode == 1
    assert "Error: 1 of 3 channel(s) failed" in result.stderr
    assert "Traceback" not in result.stderr
    out = " ".join(result.stdout.split())
    assert "leads-email" in out and "FAILED" in out and "ConnectionRefused" in out
    assert out.count("sent") == 2
    (request,) = receiver.requests
    assert request.json()["kind"] == "test"
    (message,) = list(mailbox.mbox(tmp_path / "data" / "alerts.mbox"))
    assert message["Subject"] == "[Tocsin] Tocsin test message on box"


def test_alerts_test_names_an_unknown_channel(tmp_path: Path) -> None:
    _config(tmp_path, "http://127.0.0.1:9/", free_port())
    result = _tocsin("test", "--channel", "nope", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: no channel named nope in [[alerts.channels]]"


def test_evaluate_list_send_and_retry(db_url: str, tmp_path: Path) -> None:
    with session_scope() as session:
        add_case(session, "smoke in the cabin", urgency="critical", at=utcnow(), handle="[b]ob")
    with http_receiver() as receiver:
        _config(tmp_path, receiver.url, free_port())
        evaluated = _tocsin("evaluate", cwd=tmp_path, db_url=db_url)
        assert evaluated.returncode == 0, evaluated.stderr
        assert "3 new alert(s)" in evaluated.stdout
        sent = _tocsin("send", cwd=tmp_path, db_url=db_url)
        assert sent.returncode == 0, sent.stderr
        assert "2 sent, 1 to retry" in sent.stdout
        assert "leads-email" in sent.stderr
        listed = _tocsin("list", cwd=tmp_path, db_url=db_url)
    assert listed.returncode == 0, listed.stderr
    table = " ".join(listed.stdout.split())
    assert "2 sent" in table and "1 pending" in table
    assert "Critical post: @[b]ob" in table and "ConnectionRefused" in table  # not markup
    assert len(receiver.requests) == 1

    with session_scope() as session:
        failed = session.exec(select(Alert).where(Alert.channel == "leads-email")).one()
        failed.status = "failed"
        session.add(failed)
    retried = _tocsin("retry", cwd=tmp_path, db_url=db_url)
    assert retried.returncode == 0 and "1 alert(s) queued again" in retried.stdout
