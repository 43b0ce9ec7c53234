"""A delivery process killed mid-batch and run again: no alert lost, none sent twice.

`tocsin alerts send` runs as a real subprocess against a local webhook receiver. The receiver
holds the fourth request without answering; the test kills the sender (SIGKILL) while it waits,
then runs it again. The held alert was claimed but never acknowledged, so it is sent again once
its lease runs out; the others go out on the second run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from alerts.engine import evaluate_rules
from alerts.outbox import deliver_pending
from storage.db import session_scope
from storage.models import Alert
from storage.types import utcnow
from tests.alerts.builders import add_case
from tests.alerts.servers import Request, http_receiver
from tocsin.config import load_settings

ALERTS = 10
HELD = 4  # the request the receiver never answers


def _tocsin(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tocsin", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_sender_loses_nothing_and_sends_nothing_twice(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trapped, release = threading.Event(), threading.Event()
    seen = Counter[str]()

    def hold_the_fourth(request: Request) -> bool:
        seen["requests"] += 1
        if seen["requests"] == HELD:
            trapped.set()
            release.wait(60)
            return False  # never acknowledged: the connection just drops
        return True

    with http_receiver() as receiver:
        receiver.hook = hold_the_fourth
        config = tmp_path / "tocsin.toml"
        config.write_text(
            f"""
[alerts]
digest_after = 100
lease_seconds = 120

[[alerts.channels]]
name = "ops"
type = "webhook"
url = "{receiver.url}/alerts"

[[alerts.rules]]
name = "critical"
kind = "urgency"
channels = ["ops"]
""",
            encoding="utf-8",
        )
        monkeypatch.setenv("TOCSIN_CONFIG", str(config))
        settings = load_settings()
        with session_scope() as session:
            for i in range(ALERTS):
                add_case(
                    session,
                    f"urgent problem {i}",
                    urgency="critical",
                    at=utcnow() - timedelta(minutes=5),
                )
            assert evaluate_rules(session, settings=settings) == ALERTS

        env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
        env.update(
            TOCSIN_CONFIG=str(config),
            TOCSIN_DATABASE_URL=db_url,
            TOCSIN_DATA_DIR=str(tmp_path / "data"),
        )
        first = _tocsin("alerts", "send", env=env, cwd=tmp_path)
        try:
            assert trapped.wait(120), "the sender never reached the fourth alert"
        finally:
            first.kill()  # SIGKILL: no cleanup, no except block runs
            first.wait(30)
            release.set()

        with session_scope() as session:
            statuses = Counter(a.status for a in session.exec(select(Alert)).all())
        assert statuses == {"sent": HELD - 1, "sending": 1, "pending": ALERTS - HELD}

        second = _tocsin("alerts", "send", env=env, cwd=tmp_path)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        assert f"{ALERTS - HELD} sent" in out  # the held one waits for its lease

        after_lease = utcnow() + timedelta(seconds=121)
        assert deliver_pending(settings=settings, now=after_lease).sent == 1
        assert deliver_pending(settings=settings, now=after_lease + timedelta(hours=1)).sent == 0

    delivered = Counter(r.headers["x-tocsin-alert"] for r in receiver.requests)
    with session_scope() as session:
        rows = session.exec(select(Alert)).all()
        assert {a.status for a in rows} == {"sent"}
        assert set(delivered) == {f"tocsin-alert-{a.id}" for a in rows}
    assert len(delivered) == ALERTS and set(delivered.values()) == {1}
