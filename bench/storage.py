"""Storage benchmark: upsert rate and triage-queue latency at 1,000,000 mentions.

    .venv/bin/python bench/storage.py                      # SQLite file + local PostgreSQL
    .venv/bin/python bench/storage.py --mentions 100000 --engines sqlite

Goals (issue 2): >= 20,000 mentions/s upserted in batches; a queue page (50 rows, filtered, ordered
by priority) under 50 ms at 1M mentions, on both engines. Results go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the
# `storage` package: put the repository root first instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import platform
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import insert

from storage import db as storage_db
from storage.db import session_scope
from storage.migrate import upgrade
from storage.models import Case
from storage.queries import AuthorRecord, MentionRecord, QueueFilters, triage_queue, upsert_mentions

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
PLATFORMS = ["x", "reddit", "mastodon", "bluesky", "rss"]
LANGS = ["en", "en", "en", "fr", "es", "it"]
TIERS = ["low", "normal", "normal", "high", "critical"]


def records(start: int, count: int) -> list[MentionRecord]:
    rng = random.Random(start)
    return [
        MentionRecord(
            platform=PLATFORMS[i % len(PLATFORMS)],
            external_id=str(i),
            text=f"@acme my order {i} has not arrived and nobody answers #fail",
            url=f"https://example.org/p/{i}",
            lang=LANGS[i % len(LANGS)],
            created_at=T0 + timedelta(seconds=i),
            likes=rng.randint(0, 50),
            reposts=rng.randint(0, 10),
            replies=rng.randint(0, 5),
            author=AuthorRecord(handle=f"user{i % 50_000}", followers=rng.randint(0, 100_000)),
        )
        for i in range(start, start + count)
    ]


def bench_upsert(total: int, batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, total, batch):
        chunk = records(start, min(batch, total - start))
        with session_scope() as session:
            upsert_mentions(session, records=chunk)
    return total / (time.perf_counter() - started)


def add_cases(total_mentions: int, every: int) -> int:
    """One case per `every` mentions (the risky share), written in bulk."""
    rng = random.Random(7)
    rows = [
        {
            "mention_id": mention_id,
            "platform": rng.choice(PLATFORMS),
            "lang": rng.choice(LANGS),
            "urgency_tier": rng.choice(TIERS),
            "buzz_risk": rng.uniform(0, 100),
            "status": rng.choice(["new", "new", "assigned", "resolved", "resolved", "dismissed"]),
            "priority": rng.uniform(0, 1_000_000),
            "tags": [],
            "created_at": T0,
            "updated_at": T0,
            "version": 1,
        }
        for mention_id in range(1, total_mentions + 1, every)
    ]
    with session_scope() as session:
        for start in range(0, len(rows), 20_000):
            session.execute(insert(Case), rows[start : start + 20_000])
    return len(rows)


def bench_queue(runs: int = 30) -> dict[str, float]:
    variants = {
        "open, all": QueueFilters(),
        "open, fr + critical/high": QueueFilters(languages=["fr"], tiers=["critical", "high"]),
        "open, reddit, unassigned": QueueFilters(platforms=["reddit"], unassigned_only=True),
    }
    figures = {}
    for name, filters in variants.items():
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            with session_scope() as session:
                rows = triage_queue(session, filters=filters, limit=50)
            times.append((time.perf_counter() - started) * 1000)
            assert len(rows) == 50, name
        figures[name] = statistics.median(times)
    return figures


def run(engine: str, mentions: int, batch: int) -> None:
    if engine == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="tocsin-bench-"))
        url = f"sqlite:///{folder / 'bench.db'}"
        cleanup = None
    else:
        name = f"tocsin_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        cleanup = name
    try:
        upgrade(url=url)
        storage_db.configure(url)
        rate = bench_upsert(mentions, batch)
        again = bench_upsert(min(mentions, 100_000), batch)  # the same posts again: updates
        cases = add_cases(mentions, every=10)
        storage_db.analyze()  # as the service's nightly job does
        queue = bench_queue()
        print(f"\n{engine}: {mentions:,} mentions, {cases:,} cases")
        print(f"  upsert (new posts)       {rate:,.0f} mentions/s (batches of {batch:,})")
        print(f"  upsert (same posts again) {again:,.0f} mentions/s")
        for name, ms in queue.items():
            print(f"  queue page 50 rows [{name}]  median {ms:.1f} ms")
    finally:
        storage_db.dispose()
        if cleanup:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{cleanup}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--engines", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    for engine in args.engines:
        run(engine, args.mentions, args.batch)


if __name__ == "__main__":
    main()
