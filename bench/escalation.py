"""Alerts benchmark: incident clustering, the spike rule and outbox delivery.

    .venv/bin/python bench/escalation.py                    # SQLite file
    .venv/bin/python bench/escalation.py --engines sqlite postgresql --last-hour 2000
    .venv/bin/python bench/escalation.py --background ../shared/data/complaints-severity/train.csv

Fills a fresh database with one brand, 8 weeks of negative mentions (20 an hour) and a last hour
of `--last-hour` negative mentions (10 Zipf-drawn words each) holding three bursts of 30 similar
complaints, then times:
`update_incidents` on that hour, `evaluate_rules` with a spike rule, and `deliver_pending` of
300 alerts to a local webhook receiver (one HTTP POST each). With `--background CSV` (a `tweet`
or `text` column), the last hour's other posts are real complaints instead of made-up words.
Results go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide packages.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import psycopg

from alerts.engine import evaluate_rules
from alerts.outbox import deliver_pending
from storage import db as storage_db
from storage import queries
from storage.db import session_scope
from storage.migrate import upgrade
from storage.models import Brand, Incident, Mention, Score
from tests.alerts.servers import http_receiver
from tocsin.config import AlertChannelConfig, AlertRuleConfig, Settings
from triage.incidents import update_incidents

T = TypeVar("T")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# A Zipf-distributed vocabulary of 3,000 made-up words: a few are in many posts (like "flight"
# in airline complaints), most are rare, as in real text once stop words are gone.
VOCABULARY = ["".join(random.Random(i).choices(_LETTERS, k=5 + i % 4)) for i in range(3000)]
ZIPF = [1 / (rank + 1) ** 1.1 for rank in range(len(VOCABULARY))]
BURSTS = [
    "app crashes at login since the update",
    "charged twice for my booking, refund please",
    "gate changed and nobody told us, missed the flight",
]


def _rows(brand_id: int, moments: list[datetime], texts: list[str], start_id: int) -> tuple:
    mentions = [
        {
            "id": start_id + i,
            "platform": "x",
            "external_id": f"m{start_id + i}",
            "brand_id": brand_id,
            "text": text,
            "clean_text": text,
            "created_at": at,
            "collected_at": at,
            "scored": True,
            "deleted": False,
        }
        for i, (at, text) in enumerate(zip(moments, texts, strict=True))
    ]
    scores = [
        {
            "mention_id": m["id"],
            "model_version": "bench",
            "sentiment_label": "negative",
            "urgency_tier": "normal",
            "is_complaint": True,
            "buzz_reasons": [],
            "scored_at": m["created_at"],
        }
        for m in mentions
    ]
    return mentions, scores


def real_posts(path: Path | None) -> list[str]:
    if path is None:
        return []
    import pandas as pd

    table = pd.read_csv(path)
    column = "tweet" if "tweet" in table.columns else "text"
    return [str(t) for t in table[column].dropna()]


def fill(last_hour: int, background: list[str]) -> int:
    rng = random.Random(3)
    with session_scope() as session:
        brand = Brand(name="Acme Air", keywords=["acme air"])
        session.add(brand)
        session.flush()
        assert brand.id is not None
        brand_id = brand.id
    history_hours = 8 * 7 * 24
    moments = [
        NOW - timedelta(hours=h) - timedelta(minutes=rng.uniform(0, 60))
        for h in range(1, history_hours + 1)
        for _ in range(20)
    ]

    def post() -> str:
        return " ".join(rng.choices(VOCABULARY, weights=ZIPF, k=10))

    texts = [post() for _ in moments]
    others = last_hour - 90
    recent_texts = (
        [background[i % len(background)] for i in range(others)]
        if background
        else [post() for _ in range(others)]
    )
    for burst in BURSTS:
        recent_texts += [f"acme air {burst} {rng.choice(VOCABULARY)}" for _ in range(30)]
    recent = [NOW - timedelta(minutes=rng.uniform(0, 59)) for _ in recent_texts]
    mentions, scores = _rows(brand_id, moments + recent, texts + recent_texts, 1)
    with session_scope() as session:
        for i in range(0, len(mentions), 5000):
            session.execute(Mention.__table__.insert(), mentions[i : i + 5000])  # type: ignore[attr-defined]
            session.execute(Score.__table__.insert(), scores[i : i + 5000])  # type: ignore[attr-defined]
    return len(mentions)


def timed(label: str, action: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = action()
    print(f"  {label}: {time.perf_counter() - start:.2f} s")
    return result


def run(url: str, last_hour: int, background: list[str]) -> None:
    upgrade(url=url)
    storage_db.configure(url)
    total = timed("fill", lambda: fill(last_hour, background))
    print(f"  {total:,} mentions")

    def cluster() -> list[Incident]:
        with session_scope() as session:
            return update_incidents(session, now=NOW)

    opened = timed(f"update_incidents over {last_hour} posts", cluster)
    print(f"  incidents opened: {len(opened)}")
    for incident in opened:
        print(f"    {incident.title}")

    settings = Settings(data_dir=Path(tempfile.mkdtemp()))
    box = AlertChannelConfig(name="box", type="mailbox")
    rule = AlertRuleConfig(name="spike", kind="spike", channels=["box"])
    spiky = settings.model_copy(
        update={"alerts": settings.alerts.model_copy(update={"channels": [box], "rules": [rule]})}
    )

    def spike() -> int:
        with session_scope() as session:
            return evaluate_rules(session, settings=spiky, now=NOW)

    print(f"  spike alerts: {timed('evaluate_rules (spike, 8 weeks)', spike)}")

    with http_receiver() as receiver:
        hook = AlertChannelConfig(name="hook", type="webhook", url=receiver.url)
        sending = settings.model_copy(
            update={
                "alerts": settings.alerts.model_copy(
                    update={"channels": [hook], "digest_after": 10_000}
                )
            }
        )
        with session_scope() as session:
            queries.add_alerts(
                session,
                rows=[
                    {
                        "kind": "bench",
                        "channel": "hook",
                        "dedup_key": f"bench:{i}",
                        "subject": f"alert {i}",
                        "payload": {"title": f"alert {i}", "what": "bench"},
                        "status": "pending",
                        "next_attempt_at": NOW,
                    }
                    for i in range(300)
                ],
            )
        start = time.perf_counter()
        report = deliver_pending(settings=sending, now=NOW + timedelta(seconds=1))
        seconds = time.perf_counter() - start
        print(
            f"  deliver_pending: {report.sent} sent in {seconds:.2f} s "
            f"({seconds / max(report.sent, 1) * 1000:.1f} ms per alert)"
        )
    storage_db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engines", nargs="+", default=["sqlite"])
    parser.add_argument("--last-hour", type=int, default=2000)
    parser.add_argument("--background", type=Path, default=None)
    args = parser.parse_args()
    background = real_posts(args.background)
    for engine in args.engines:
        print(engine)
        if engine == "sqlite":
            run(f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}", args.last_hour, background)
            continue
        name = f"tocsin_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            run(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", args.last_hour, background)
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
