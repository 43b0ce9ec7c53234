"""Queue page render time with a large database (run by hand; results in docs/benchmarks.md).

    .venv/bin/python bench/board_queue.py                      # 1,000,000 mentions in a SQLite file
    .venv/bin/python bench/board_queue.py --mentions 200000 --database-url postgresql://...

The database is built once (mentions, authors, one score per mention, a case for each risky
mention) and kept under --work-dir, so later runs only measure. The queue page is measured two ways:
Streamlit's AppTest as a signed-in agent (one warm-up run, then --runs re-renders of the whole
script: sign-in check, filters, the page of 25 cases, who is viewing), and the real board served
by `tocsin board` in headless Chromium (a click on "Queue" until the 25 rows are on screen).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select

from storage import db as storage_db
from storage.migrate import upgrade
from storage.models import Author, Brand, Case, Mention, Score, TeamMember

BATCH = 20_000
CASE_SHARE = 20  # one mention in 20 opens a case (50,000 cases per million mentions)
TIERS = ["low", "normal", "high", "critical"]
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _table(model: Any) -> Any:
    return model.__table__


def build(url: str, mentions: int) -> None:
    upgrade(url=url)
    storage_db.configure(url)
    engine = storage_db.get_engine()
    with engine.begin() as conn:
        have = conn.execute(select(func.count()).select_from(_table(Mention))).scalar_one()
    if have >= mentions:
        print(f"database ready: {have:,} mentions")
        return
    if have:
        raise SystemExit(f"{url} holds {have:,} mentions, fewer than asked: remove it first")
    rng = random.Random(7)
    authors = max(mentions // 20, 1)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(_table(Brand)), [{"name": "Acme Air", "keywords": ["acme air"]}])
        conn.execute(
            insert(_table(TeamMember)),
            [
                {"name": f"Agent {i}", "email": f"agent{i}@example.org", "role": "agent"}
                for i in range(8)
            ],
        )
        for start in range(0, authors, BATCH):
            conn.execute(
                insert(_table(Author)),
                [
                    {
                        "platform": "mastodon",
                        "handle": f"user{i}",
                        "display_name": f"User {i}",
                        "followers": rng.randint(0, 300_000),
                        "verified": i % 50 == 0,
                    }
                    for i in range(start, min(start + BATCH, authors))
                ],
            )
    for start in range(0, mentions, BATCH):
        stop = min(start + BATCH, mentions)
        with engine.begin() as conn:
            _insert_batch(conn, rng, start, stop, authors)
        print(f"\r{stop:,} / {mentions:,} mentions", end="", flush=True)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")  # planner statistics, as a running database has them
    print(f"\nbuilt in {time.perf_counter() - started:.0f} s")


def _insert_batch(conn: Any, rng: random.Random, start: int, stop: int, authors: int) -> None:
    now = datetime.now(UTC)
    mention_rows, score_rows, case_rows = [], [], []
    for i in range(start, stop):
        mention_id = i + 1
        created = T0 + timedelta(seconds=i * 2)
        tier = rng.choices(TIERS, weights=[50, 35, 12, 3])[0]
        risk = round(rng.random() ** 2 * 100, 1)
        mention_rows.append(
            {
                "id": mention_id,
                "platform": "mastodon",
                "external_id": str(i),
                "brand_id": 1,
                "text": f"post {i} about Acme Air: my flight {i % 977} was delayed again",
                "clean_text": f"post {i} about Acme Air: my flight {i % 977} was delayed again",
                "lang": "en" if i % 4 else "fr",
                "author_id": i % authors + 1,
                "created_at": created,
                "collected_at": created,
                "scored": True,
            }
        )
        score_rows.append(
            {
                "mention_id": mention_id,
                "model_version": "bench",
                "sentiment_label": rng.choice(["negative", "neutral", "positive"]),
                "urgency_tier": tier,
                "buzz_risk": risk,
                "buzz_reasons": ["author has 12k followers"],
                "scored_at": created,
            }
        )
        if i % CASE_SHARE == 0:
            status = "new" if rng.random() < 0.3 else rng.choice(["assigned", "resolved"])
            case_rows.append(
                {
                    "mention_id": mention_id,
                    "brand_id": 1,
                    "platform": "mastodon",
                    "lang": "en" if i % 4 else "fr",
                    "urgency_tier": tier,
                    "buzz_risk": risk,
                    "status": status,
                    "assignee_id": None if status == "new" else rng.randint(1, 8),
                    "priority": round(rng.random() * 100, 2),
                    "sla_due_at": now + timedelta(minutes=rng.randint(-60, 240)),
                    "created_at": created,
                    "updated_at": created,
                }
            )
    conn.execute(insert(_table(Mention)), mention_rows)
    conn.execute(insert(_table(Score)), score_rows)
    if case_rows:
        conn.execute(insert(_table(Case)), case_rows)


def _signed_in_app() -> Any:
    from streamlit.testing.v1 import AppTest

    from board.common import MEMBER_KEY
    from triage.auth import SignedIn

    app = AppTest.from_file(str(ROOT / "triage_app.py"), default_timeout=120)
    app.session_state[MEMBER_KEY] = SignedIn(1, "Agent 0", "agent0@example.org", "agent")
    return app


def _timed(app: Any) -> float:
    started = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - started
    if app.exception:
        raise SystemExit(f"the queue page failed: {app.exception}")
    if len(app.text) != 25:
        raise SystemExit(f"the queue page showed {len(app.text)} cases instead of 25")
    return elapsed


def measure(url: str, runs: int) -> dict[str, list[float]]:
    """Re-renders of one open page (what auto-refresh and each click cost)."""
    os.environ["TOCSIN_DATABASE_URL"] = url
    storage_db.configure(url)
    warm = _signed_in_app()
    _timed(warm)  # warm-up: imports, first connection, filter choices cached
    return {"AppTest: re-render of the open queue page": [_timed(warm) for _ in range(runs)]}


BENCH_PASSWORD = "bench-password-123"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def measure_browser(url: str, runs: int) -> dict[str, list[float]]:
    """The real board (`tocsin board`) in headless Chromium: from a click on "Queue" in the
    sidebar (coming from the Team page) until the 25 rows are on screen."""
    import socket
    import subprocess

    import httpx
    from playwright.sync_api import sync_playwright

    from storage.db import session_scope
    from storage.queries import set_member_password_hash
    from triage.auth import hash_password

    with session_scope() as session:
        set_member_password_hash(
            session, member_id=1, password_hash=hash_password(BENCH_PASSWORD, rounds=4)
        )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {**os.environ, "TOCSIN_DATABASE_URL": url}
    server = subprocess.Popen(
        [sys.executable, "-m", "tocsin", "board", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    timings = []
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1440, "height": 1500})
            page.goto(base)
            page.get_by_role("textbox", name="Email").fill("agent0@example.org")
            page.get_by_role("textbox", name="Password").fill(BENCH_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            rows = page.locator("[class*='st-key-case_row_']")
            rows.nth(24).wait_for(timeout=120_000)
            running = page.locator("[data-testid='stStatusWidget']")
            for _ in range(runs):
                page.get_by_role("link", name="Team").click()
                page.get_by_role("heading", name="Team").wait_for(timeout=120_000)
                running.wait_for(state="detached", timeout=120_000)  # the Team page finished
                started = time.perf_counter()
                page.get_by_role("link", name="Queue").click()
                rows.nth(24).wait_for(timeout=120_000)
                timings.append(time.perf_counter() - started)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"Chromium: sidebar click to the 25 queue rows on screen": timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "tocsin-data" / "bench")
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--no-browser", action="store_true", help="Skip the measure in headless Chromium."
    )
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{args.work_dir / f'board-{args.mentions}.db'}"
    os.environ.setdefault("TOCSIN_CONFIG", str(args.work_dir / "empty.toml"))
    Path(os.environ["TOCSIN_CONFIG"]).touch()
    build(url, args.mentions)
    machine = f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs"
    results = measure(url, args.runs)
    if not args.no_browser:
        results.update(measure_browser(url, args.runs))
    for label, timings in results.items():
        print(
            f"{label}, {args.mentions:,} mentions, {args.runs} runs: "
            f"median {statistics.median(timings):.3f} s, max {max(timings):.3f} s ({machine})"
        )


if __name__ == "__main__":
    main()
