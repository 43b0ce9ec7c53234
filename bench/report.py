"""Weekly report benchmark: figures, charts + HTML, and the PDF, for a busy brand's week.

    .venv/bin/python bench/report.py                     # 20,000 mentions, SQLite
    .venv/bin/python bench/report.py --mentions 100000 --engine postgresql

Fills a fresh database with one week (and the week before) of scored mentions, cases with
first responses and sent alerts, then times `compute_figures`, `render_html` and `write_pdf`
(WeasyPrint; Chromium print-to-PDF through Playwright too when /usr/bin/chromium exists).
Results go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide packages.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from reports.render import render_html, write_pdf
from reports.weekly import compute_figures
from storage import db
from storage.migrate import upgrade
from storage.models import Brand, Case, Mention, Score, Source, TeamMember
from tocsin.config import Settings

WEEK_START = datetime(2026, 11, 15, 23, 0, tzinfo=UTC)  # 2026-W47 in Paris
WORDS = [
    "lost",
    "luggage",
    "refund",
    "delay",
    "cancelled",
    "gate",
    "crew",
    "seat",
    "wifi",
    "meal",
    "app",
    "booking",
    "card",
    "charged",
]


def fill(mentions: int) -> None:
    rng = random.Random(7)
    with db.session_scope() as session:
        brand = Brand(name="Acme Air", keywords=["acme air"])
        session.add(brand)
        session.flush()
        sources = [Source(name=f"src-{i}", kind="replay", brand_id=brand.id) for i in range(4)]
        agents = [TeamMember(name=f"Agent {i}", email=f"a{i}@example.org") for i in range(6)]
        session.add_all([*sources, *agents])
        session.flush()
        mention_rows, score_rows, case_rows = [], [], []
        for i in range(mentions):
            created = WEEK_START - timedelta(days=7) + timedelta(seconds=rng.uniform(0, 14 * 86400))
            words = " ".join(rng.sample(WORDS, 4))
            mention_rows.append(
                {
                    "id": i + 1,
                    "platform": "replay",
                    "external_id": str(i),
                    "brand_id": brand.id,
                    "source_id": sources[i % 4].id,
                    "text": f"Acme Air {words}",
                    "clean_text": f"Acme Air {words}",
                    "created_at": created,
                    "collected_at": created,
                    "scored": True,
                    "deleted": False,
                }
            )
            sentiment = rng.choices(["negative", "neutral", "positive"], [4, 4, 2])[0]
            score_rows.append(
                {
                    "mention_id": i + 1,
                    "model_version": "bench",
                    "sentiment_label": sentiment,
                    "urgency_tier": "normal",
                    "is_complaint": sentiment == "negative",
                    "buzz_risk": rng.uniform(0, 100),
                    "buzz_reasons": [],
                    "scored_at": created,
                }
            )
            if i % 10 == 0:
                answered = created + timedelta(minutes=rng.expovariate(1 / 40))
                case_rows.append(
                    {
                        "mention_id": i + 1,
                        "brand_id": brand.id,
                        "assignee_id": agents[i % 6].id,
                        "created_at": created,
                        "updated_at": created,
                        "sla_due_at": created + timedelta(minutes=60),
                        "first_response_at": answered if rng.random() < 0.9 else None,
                        "status": "replied",
                    }
                )
        for model, rows in ((Mention, mention_rows), (Score, score_rows), (Case, case_rows)):
            for start in range(0, len(rows), 5000):
                session.execute(model.__table__.insert(), rows[start : start + 5000])  # type: ignore[union-attr]


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mentions", type=int, default=20_000)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    pg_name = None
    if args.engine == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
    else:
        pg_name = f"tocsin_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{pg_name}"')
        url = f"postgresql://postgres@127.0.0.1:5432/{pg_name}"
    try:
        upgrade(url=url)
        db.configure(url)
        fill(args.mentions)
        settings = Settings(data_dir=folder, timezone="Europe/Paris", brands=[{"name": "Acme Air"}])  # type: ignore[list-item]
        now = WEEK_START + timedelta(days=8)

        def figures() -> Any:
            with db.session_scope() as session:
                return compute_figures(
                    session, brand="Acme Air", week="2026-W47", settings=settings, now=now
                )

        t_fig, f = timed(figures, args.runs)
        t_html, html = timed(lambda: render_html(f), args.runs)
        write_pdf(html, folder / "warm.pdf")
        t_pdf, _ = timed(lambda: write_pdf(html, folder / "r.pdf"), args.runs)
        print(f"{args.engine}, {f.volume_total} mentions in the week, {f.response.cases} cases")
        print(f"  compute_figures       {t_fig:6.2f} s")
        print(f"  charts + HTML         {t_html:6.2f} s")
        size = (folder / "r.pdf").stat().st_size / 1024
        print(f"  WeasyPrint PDF        {t_pdf:6.2f} s  ({size:.0f} KiB)")
        chromium = shutil.which("chromium")
        if chromium:
            from playwright.sync_api import sync_playwright

            page_file = folder / "r.html"
            page_file.write_text(html, encoding="utf-8")

            def chromium_pdf() -> None:
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=chromium)
                    page = browser.new_page()
                    page.goto(page_file.as_uri())
                    page.pdf(path=str(folder / "c.pdf"), format="A4")
                    browser.close()

            t_chrome, _ = timed(chromium_pdf, args.runs)
            size = (folder / "c.pdf").stat().st_size / 1024
            print(f"  Chromium PDF (launch) {t_chrome:6.2f} s  ({size:.0f} KiB)")
    finally:
        db.dispose()
        if pg_name:
            with psycopg.connect(
                "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
            ) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
