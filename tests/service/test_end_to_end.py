"""`tocsin run` on the real pipeline: a local feed is collected, scored, routed and alerted on,
and a service killed in the middle of sending loses no alert and sends none twice."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sqlmodel import col, select

from storage.db import session_scope
from storage.models import Alert, Brand, Case, Mention, Score
from storage.types import utcnow
from tests.service.conftest import Processes, wait_until
from tests.service.pipeline import (
    POSTS,
    feed_server,
    smtp_server,
    untrained_model,
    webhook_receiver,
    write_config,
)


def rows(model):  # type: ignore[no-untyped-def]
    with session_scope() as session:
        return list(session.execute(select(model).order_by(col(model.id))).scalars())


@pytest.mark.slow
def test_run_once_collects_scores_routes_and_alerts(
    sqlite_url: str, tmp_path: Path, processes: Processes
) -> None:
    with (
        feed_server(tmp_path / "feed", POSTS) as feed,
        smtp_server() as (inbox, smtp_port),
        webhook_receiver() as (hooks, hook_url),
    ):
        config = write_config(
            tmp_path / "tocsin.toml",
            feed=feed,
            smtp_port=smtp_port,
            hook=hook_url,
            data_dir=tmp_path / "data",
            model=untrained_model(tmp_path / "model"),
        )
        log = tmp_path / "once.log"
        run = processes.start(["-m", "tocsin", "run", "--once"], log=log, TOCSIN_CONFIG=str(config))
        assert run.wait(timeout=400) == 0, log.read_text()
        output = log.read_text()
        for stage in ("collect:feed", "score", "incidents", "route", "alerts", "outbox"):
            assert f"job {stage} done" in output, output

        mentions = rows(Mention)
        assert sorted(m.external_id for m in mentions) == ["p1", "p2", "p3"]
        assert len(rows(Score)) == 3
        cases = rows(Case)
        assert len(cases) == 3 and {c.assignee_id for c in cases} != {None}
        alerts = rows(Alert)
        assert len(alerts) == 6 and {a.status for a in alerts} == {"sent"}

        assert len(inbox.messages) == 3 and len(hooks) == 3
        bodies = "\n".join(
            part.get_payload(decode=True).decode()  # type: ignore[union-attr]
            for m in inbox.messages
            for part in m.walk()
            if part.get_content_type() == "text/plain"
        )
        for case in cases:
            assert f"http://board.example/case?id={case.id}" in bodies
        assert all(m["To"] == "lea@example.org" for m in inbox.messages)
        assert len({h["headers"]["Idempotency-Key"] for h in hooks}) == 3
        assert all(h["json"] for h in hooks)

        again = processes.start(
            ["-m", "tocsin", "run", "--once"], log=tmp_path / "again.log", TOCSIN_CONFIG=str(config)
        )
        assert again.wait(timeout=400) == 0
        assert len(inbox.messages) == 3 and len(hooks) == 3, "nothing is sent twice"


def open_cases(count: int) -> None:
    """Cases as scoring leaves them (the pipeline's earlier stages are tested above)."""
    with session_scope() as session:
        brand = Brand(name="Acme Air", keywords=["acme air"])
        session.add(brand)
        session.flush()
        for i in range(count):
            mention = Mention(
                platform="replay",
                external_id=f"k{i}",
                brand_id=brand.id,
                text=f"Acme Air lost my bag {i}",
                clean_text=f"Acme Air lost my bag {i}",
                created_at=utcnow(),
                scored=True,
            )
            session.add(mention)
            session.flush()
            assert mention.id is not None
            session.add(
                Score(
                    mention_id=mention.id,
                    model_version="t",
                    sentiment_label="negative",
                    urgency_tier="high",
                    buzz_risk=60.0,
                )
            )
            session.add(
                Case(mention_id=mention.id, brand_id=brand.id, urgency_tier="high", buzz_risk=60.0)
            )


@pytest.mark.slow
def test_a_service_killed_while_sending_loses_no_alert_and_sends_none_twice(
    sqlite_url: str, tmp_path: Path, processes: Processes
) -> None:
    open_cases(3)
    with smtp_server() as (inbox, smtp_port):
        config = write_config(
            tmp_path / "tocsin.toml",
            feed=None,
            smtp_port=smtp_port,
            hook=None,
            data_dir=tmp_path / "data",
        )
        env = {
            "TOCSIN_CONFIG": str(config),
            "TOCSIN_SERVICE__PIPELINE_SECONDS": "2",
            "TOCSIN_ALERTS__LEASE_SECONDS": "30",
        }
        inbox.stall.set()  # the first delivery hangs: the service is killed in the middle of it
        first = processes.start(["-m", "tocsin", "run"], log=tmp_path / "first.log", **env)
        wait_until(inbox.stalled.is_set, timeout=300, what="a delivery in progress")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        inbox.stall.clear()
        assert inbox.messages == []
        assert len(rows(Alert)) == 3, "every alert was written to the outbox before sending"

        second = processes.start(["-m", "tocsin", "run"], log=tmp_path / "second.log", **env)
        wait_until(
            lambda: {a.status for a in rows(Alert)} == {"sent"}, timeout=300, what="all sent"
        )
        assert Processes.terminate(second) == 0
        refs = [m["Message-ID"] for m in inbox.messages]
        assert len(refs) == 3 and len(set(refs)) == 3, refs
        once = processes.start(
            ["-m", "tocsin", "run", "--once"], log=tmp_path / "once.log", TOCSIN_CONFIG=str(config)
        )
        assert once.wait(timeout=300) == 0
        assert len(inbox.messages) == 3, "nothing sent twice"
