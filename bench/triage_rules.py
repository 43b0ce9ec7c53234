"""Triage benchmark: the triage rules' reads and writes at 1,000,000 mentions.

    .venv/bin/python bench/triage_rules.py                     # SQLite file + local PostgreSQL
    .venv/bin/python bench/triage_rules.py --mentions 100000 --engines sqlite

Fills a fresh database (mentions, 50k authors, scores for 10 %, cases for 2 %, threads, sent
replies), then times each triage function (median of several runs) and prints the query plan of
the heavier reads, so that a missing index shows up as a scan. Results go to docs/benchmarks.md by
hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide packages.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import select, text
from sqlmodel import col

from storage import db as storage_db
from storage import queries
from storage.db import session_scope
from storage.migrate import upgrade
from storage.models import Author, Case, Mention, Reply, Score, TeamMember
from tocsin.config import Settings
from triage import cases, intake, routing

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
PLATFORMS = ["x", "reddit", "mastodon", "bluesky", "rss"]
LANGS = ["en", "en", "en", "fr", "es", "it"]
TIERS = ["low", "normal", "normal", "high", "critical"]
AUTHORS = 50_000
BATCH = 20_000


def fill(n_mentions: int) -> dict[str, Any]:
    rng = random.Random(7)
    with session_scope() as session:
        session.execute(
            Author.__table__.insert(),  # type: ignore[attr-defined]
            [
                {"platform": "x", "handle": f"user{i}", "followers": rng.randint(0, 10**5)}
                for i in range(AUTHORS)
            ],
        )
        members = [
            {
                "name": f"Agent {i}",
                "email": f"agent{i}@acme.test",
                "languages": ["en", "fr"] if i % 2 else ["en", "es", "it"],
                "skills": ["billing"] if i % 3 == 0 else ["delivery"],
                "on_shift": True,
                "max_open_cases": 1_000_000,
                "role": "lead" if i == 0 else "agent",
            }
            for i in range(12)
        ]
        session.execute(
            TeamMember.__table__.insert(),  # type: ignore[attr-defined]
            members,
        )
    member_ids = list(range(1, 13))
    for start in range(0, n_mentions, BATCH):
        rows = [
            {
                "platform": PLATFORMS[i % 5],
                "external_id": str(i),
                "url": f"https://example.org/p/{i}",
                "text": f"@acme my parcel {i} never arrived, refund please",
                "clean_text": f"@acme my parcel {i} never arrived, refund please",
                "lang": LANGS[i % 6],
                "author_id": 1 + (i * 7919) % AUTHORS,
                "created_at": T0 + timedelta(seconds=i),
                "collected_at": T0 + timedelta(seconds=i + 30),
                "thread_external_id": str(i - i % 20),
                "parent_external_id": str(i - i % 20) if i % 20 else None,
                "scored": i % 10 == 0,
                "deleted": False,
            }
            for i in range(start, min(start + BATCH, n_mentions))
        ]
        with session_scope() as session:
            session.execute(
                Mention.__table__.insert(),  # type: ignore[attr-defined]
                rows,
            )
    with session_scope() as session:
        ids = list(session.execute(select(col(Mention.id)).where(col(Mention.scored))).scalars())
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        with session_scope() as session:
            session.execute(
                Score.__table__.insert(),  # type: ignore[attr-defined]
                [
                    {
                        "mention_id": m,
                        "model_version": "bench",
                        "sentiment_label": "negative" if m % 3 else "neutral",
                        "urgency_tier": TIERS[m % 5],
                        "buzz_risk": float(m % 100),
                        "buzz_reasons": [],
                        "scored_at": T0,
                    }
                    for m in chunk
                ],
            )
            case_rows = [
                {
                    "mention_id": m,
                    "platform": PLATFORMS[m % 5],
                    "lang": LANGS[m % 6],
                    "urgency_tier": TIERS[m % 5],
                    "buzz_risk": float(m % 100),
                    "topic": "billing" if m % 2 else "delivery",
                    "status": "new" if k % 4 else "resolved",
                    "assignee_id": None if k % 4 else member_ids[m % 12],
                    "priority": -float(m),
                    "sla_due_at": T0 + timedelta(seconds=m + 3600),
                    "first_response_at": None if k % 4 else T0 + timedelta(seconds=m + 600),
                    "created_at": T0 + timedelta(seconds=m),
                    "updated_at": T0 + timedelta(seconds=m),
                    "tags": [],
                    "version": 1,
                }
                for k, m in enumerate(chunk)
                if k % 5 == 0  # a case for 2 % of all mentions
            ]
            if case_rows:
                session.execute(
                    Case.__table__.insert(),  # type: ignore[attr-defined]
                    case_rows,
                )
    with session_scope() as session:
        resolved = list(
            session.execute(
                select(col(Case.id), col(Case.assignee_id)).where(col(Case.status) == "resolved")
            )
        )
        session.execute(
            Reply.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "case_id": c,
                    "member_id": m,
                    "text": "sorry!",
                    "status": "sent",
                    "action": "dm_invite",
                }
                for c, m in resolved
            ],
        )
    return {"members": member_ids}


def timed(runs: int, fn: Callable[[], Any]) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def bench(url: str, n: int) -> list[tuple[str, float]]:
    storage_db.configure(url)
    start = time.perf_counter()
    fill(n)
    print(f"  filled {n:,} mentions in {time.perf_counter() - start:.0f} s", flush=True)
    with session_scope() as session:
        session.execute(text("ANALYZE"))
    settings = Settings()
    now = T0 + timedelta(seconds=n)
    results: list[tuple[str, float]] = []

    def record(name: str, ms: float) -> None:
        results.append((name, ms))
        print(f"  {name:<52} {ms:8.1f} ms", flush=True)

    with session_scope() as session:
        case = session.execute(
            select(Case)
            .where(col(Case.status) == "new")
            .order_by(col(Case.priority).desc())
            .limit(1)
        ).scalar_one()
        mention = session.get(Mention, case.mention_id)
        assert mention is not None
        score = queries.latest_scores(session, mention_ids=[mention.id or 0])[mention.id or 0]
        page = [c.id or 0 for c in queries.unassigned_new_cases(session, limit=50)]

    def in_session(fn: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with session_scope() as s:
                out = fn(s)
                s.rollback()
                return out

        return run

    record(
        "intake.open_or_update_case (existing case)",
        timed(
            20,
            in_session(
                lambda s: intake.open_or_update_case(
                    s, mention=s.get(Mention, mention.id), score=score, settings=settings
                )
            ),
        ),
    )
    record(
        "queries.unassigned_new_cases(200)",
        timed(20, in_session(lambda s: queries.unassigned_new_cases(s, limit=200))),
    )
    record(
        "routing.plan_routes (200 cases)",
        timed(5, in_session(lambda s: routing.plan_routes(s, settings=settings))),
    )
    record(
        "routing.route_new_cases (200 cases, rolled back)",
        timed(3, in_session(lambda s: routing.route_new_cases(s, settings=settings))),
    )
    record(
        "cases.claim + release (rolled back)",
        timed(
            20,
            in_session(
                lambda s: (
                    cases.claim(s, case_id=case.id or 0, member_id=2),
                    cases.release(s, case_id=case.id or 0, member_id=2),
                )
            ),
        ),
    )
    record(
        "cases.viewers_for (50 cases)",
        timed(20, in_session(lambda s: cases.viewers_for(s, case_ids=page, now=now))),
    )
    record(
        "queries.thread_mentions",
        timed(20, in_session(lambda s: queries.thread_mentions(s, mention=mention))),
    )
    record(
        "queries.author_cases",
        timed(20, in_session(lambda s: queries.author_cases(s, author_id=mention.author_id or 0))),
    )
    record(
        "queries.replies_by_member_to_authors (200 authors)",
        timed(
            10,
            in_session(lambda s: queries.replies_by_member_to_authors(s, author_ids=range(1, 201))),
        ),
    )
    record(
        "queries.brand_reply_in_thread",
        timed(
            20,
            in_session(
                lambda s: queries.brand_reply_in_thread(
                    s, mention_id=mention.id or 0, handles=["acmehelp"], since=T0
                )
            ),
        ),
    )
    record(
        "queries.overview_series (last 24 h, hourly)",
        timed(
            5,
            in_session(
                lambda s: queries.overview_series(s, since=now - timedelta(hours=24), bucket="hour")
            ),
        ),
    )
    record(
        "queries.overview_series (all, daily)",
        timed(3, in_session(lambda s: queries.overview_series(s, since=T0, bucket="day"))),
    )
    record(
        "queries.sla_compliance_series (all, daily)",
        timed(5, in_session(lambda s: queries.sla_compliance_series(s, since=T0, bucket="day"))),
    )
    return results


def sqlite_run(n: int) -> list[tuple[str, float]]:
    folder = Path(tempfile.mkdtemp(prefix="tocsin-bench-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(url=url)
    return bench(url, n)


def postgres_run(n: int) -> list[tuple[str, float]]:
    name = f"tocsin_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url=url)
        return bench(url, n)
    finally:
        storage_db.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    for engine in args.engines.split(","):
        print(f"{engine}:", flush=True)
        (sqlite_run if engine == "sqlite" else postgres_run)(args.mentions)


if __name__ == "__main__":
    main()
