"""The main job as a user starts it: `tocsin demo`, then the whole journey of one critical post.

The demo runs in its own process (scheduler, collectors, board) on its SQLite file; the test reads
that database the way the board does, watches the alert mailbox, and answers the post through the
triage rules with a DM handoff.
"""

from __future__ import annotations

import json
import mailbox
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from storage import db as storage_db
from storage import queries
from storage.db import session_scope
from storage.queries import QueueRow, triage_queue
from tocsin.config import load_settings
from tocsin.demo.feed import POSTS_FILE
from tocsin.demo.setup import TEAM
from triage import cases, publish, replies

COLLECT_SECONDS = 5
PIPELINE_SECONDS = 3
SPEED = 6.0
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(what: str, check: Callable[[], T | None], *, timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _first_live_critical() -> dict[str, Any]:
    posts = [json.loads(line) for line in POSTS_FILE.read_text(encoding="utf-8").splitlines()]
    live = sorted((p for p in posts if p["offset_minutes"] > 0), key=lambda p: p["offset_minutes"])
    return next(p for p in live if p["kind"] == "critical")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Path, int, subprocess.Popen[str]]]:
    folder, port = tmp_path / "demo", _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    command = [
        sys.executable, "-m", "tocsin", "demo", "--dir", str(folder), "--port", str(port),
        "--speed", str(SPEED), "--collect-seconds", str(COLLECT_SECONDS),
        "--pipeline-seconds", str(PIPELINE_SECONDS),
    ]  # fmt: skip
    log = (tmp_path / "demo.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        yield folder, port, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
        storage_db.dispose()


def _mail_texts(path: Path) -> list[str]:
    """The plain-text body of every message in the mailbox, decoded as a mail client would."""
    if not path.exists():
        return []
    texts = []
    for message in mailbox.mbox(path):
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    texts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return texts


def _top_of_queue() -> QueueRow | None:
    with session_scope() as session:
        rows = triage_queue(session, limit=1)
    return rows[0] if rows else None


def test_a_critical_post_reaches_the_top_is_alerted_and_answered(
    demo: tuple[Path, int, subprocess.Popen[str]], tmp_path: Path
) -> None:
    folder, port, process = demo
    log = tmp_path / "demo.log"

    def running() -> bool:
        assert process.poll() is None, log.read_text()
        return "Tocsin demo running" in log.read_text()

    _wait_for("the demo to start", running, timeout=600)
    banner = log.read_text()
    assert all(m.email in banner and m.password in banner for m in TEAM)

    def board_healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
                return bool(r.read().decode().strip() == "ok")
        except OSError:
            return False

    _wait_for("the board to answer", board_healthy, timeout=120)

    critical = _first_live_critical()
    feeds = folder / "feeds"
    appeared = _wait_for(
        "the critical post in the replay feed",
        lambda: any(critical["id"] in f.read_text() for f in feeds.glob("*.jsonl")) or None,
        timeout=critical["offset_minutes"] * 60 / SPEED + 60,
    )
    assert appeared
    seen_at = time.monotonic()

    os.environ["TOCSIN_CONFIG"] = str(folder / "tocsin.toml")
    settings = load_settings()
    storage_db.configure(f"sqlite:///{folder / 'tocsin.db'}")

    def critical_on_top() -> QueueRow | None:
        top = _top_of_queue()
        return top if top and top.mention and top.mention.external_id == critical["id"] else None

    # Within one collection interval plus scoring (and a margin for this shared 2-core machine).
    top = _wait_for("the critical case at the top of the queue", critical_on_top, timeout=90)
    latency = time.monotonic() - seen_at
    print(f"critical post on top of the queue {latency:.1f} s after it appeared")
    assert top.case.urgency_tier == "critical"
    assert top.score is not None and top.score.buzz_reasons
    case_id = top.case.id
    assert case_id is not None

    link = f"/case?id={case_id}"
    _wait_for(
        "the alert in the mailbox",
        lambda: any(link in text for text in _mail_texts(folder / "alerts.mbox")),
        timeout=60,
    )

    lead = next(m for m in TEAM if m.role == "lead")
    with session_scope() as session:
        member = queries.team_member_by_email(session, email=lead.email)
        assert member is not None
        assert member.id is not None
        member_id = member.id
        cases.claim(session, case_id=case_id, member_id=member_id)
        composed = replies.compose(
            session, case_id=case_id, member_id=member_id, settings=settings, action="dm_invite",
            text="Hi {first_name}, we're on it right now.",
        )  # fmt: skip
        draft = replies.create_draft(
            session, case_id=case_id, member_id=member_id, text=composed.text, action="dm_invite"
        )
        reply_id = draft.id
    assert reply_id is not None
    outcome = publish.publish_reply(reply_id=reply_id, member_id=member_id, settings=settings)
    assert outcome.mode == "manual" and outcome.post_url
    with session_scope() as session:
        publish.confirm_manual_send(
            session, reply_id=reply_id, member_id=member_id, settings=settings
        )
        handed = cases.get_case(session, case_id)
        assert handed.status == "handed_off" and handed.first_response_at is not None
        closed = cases.resolve(session, case_id=case_id, member_id=member_id)
    assert closed.status == "resolved"
