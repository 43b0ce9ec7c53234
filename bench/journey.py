"""The whole journey under a burst: posts appear at the source → cases on the board → alert sent.

    .venv/bin/python bench/journey.py                    # 10,000 posts, 10 s collection interval
    .venv/bin/python bench/journey.py --posts 2000 --collect-seconds 5

Runs the real stack as `tocsin demo` sets it up (service process with its crawl subprocesses,
the board process, SQLite in a temporary folder), appends a burst of posts to the replay feed at
once (a critical marker post first), and measures:
- time from the burst appearing to the marker's case in the queue, and to its alert
  in the mailbox (goal: under 10 s beyond the polling interval);
- time until the whole burst is stored, and scored;
- peak resident memory of the whole stack (goal: under 1.5 GB), sampled from /proc.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import platform
import random
import tempfile
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlmodel import col

from storage import db as storage_db
from storage.db import session_scope
from storage.models import Case, Mention
from tocsin.demo.feed import POSTS_FILE
from tocsin.demo.runner import Demo, DemoOptions
from tocsin.demo.setup import feed_path

MARKER = (
    "@altavia URGENT passenger on AV212 having a severe allergic reaction after the meal, "
    "crew can't find an epipen, please help NOW"
)


def burst(count: int) -> list[str]:
    """`count` feed lines made from the demo's Altavia texts, the critical marker first."""
    rng = random.Random(3)
    texts = [
        json.loads(line)
        for line in POSTS_FILE.read_text(encoding="utf-8").splitlines()
        if '"Altavia Airways"' in line and '"excluded"' not in line
    ]
    now = datetime.now(UTC).isoformat()
    lines = [
        {"id": "burst-marker", "text": MARKER, "lang": "en", "platform": "x", "created_at": now,
         "author": {"handle": "@marker", "followers": 120}},
    ]  # fmt: skip
    for i in range(count - 1):
        post = rng.choice(texts)
        lines.append(
            {
                "id": f"burst-{i}",
                "text": f"{post['text']} #{i}",
                "lang": post["lang"],
                "platform": post["platform"],
                "created_at": now,
                "author": {**post["author"], "handle": f"{post['author']['handle']}-{i % 997}"},
            }
        )
    return [json.dumps(line, ensure_ascii=False) + "\n" for line in lines]


def tree_rss(root_pids: list[int], parts: dict[str, int] | None = None) -> int:
    """Resident memory (bytes) of the given processes and all their descendants.

    `parts`, if given, receives each process's share by its command line (first 60 characters).
    """
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, list(root_pids)
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    size = int(line.split()[1]) * 1024
                    total += size
                    if parts is not None:
                        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                        name = f"{pid} {command.decode(errors='replace')[:60]}"
                        parts[name] = size
        except OSError:
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--collect-seconds", type=int, default=10)
    parser.add_argument("--pipeline-seconds", type=int, default=2)
    parser.add_argument("--port", type=int, default=8599)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="tocsin-journey-"))
    options = DemoOptions(
        demo_dir=folder,
        port=args.port,
        collect_seconds=args.collect_seconds,
        pipeline_seconds=args.pipeline_seconds,
    )
    demo = Demo(options, echo=lambda _line: None)
    settings = demo.prepare()
    feed = feed_path(folder.resolve(), "altavia")
    feed.parent.mkdir(parents=True, exist_ok=True)
    feed.write_text("", encoding="utf-8")
    feed_path(folder.resolve(), "fennel").write_text("", encoding="utf-8")
    storage_db.dispose()
    demo.start_processes()
    peak = {"rss": 0}
    peak_parts: dict[str, int] = {}
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            parts: dict[str, int] = {}
            total = tree_rss([c.pid for c in demo.children], parts)
            if total > peak["rss"]:
                peak["rss"] = total
                peak_parts.clear()
                peak_parts.update(parts)
            time.sleep(0.5)

    threading.Thread(target=sample, daemon=True).start()
    try:
        time.sleep(20)  # the service and the board start, the model loads
        lines = burst(args.posts)
        started = time.monotonic()
        with feed.open("a", encoding="utf-8") as out:
            out.writelines(lines)
        storage_db.configure(settings.resolved_database_url)
        mailbox = folder / "alerts.mbox"
        marks: dict[str, float] = {}
        deadline = started + 900
        while time.monotonic() < deadline and len(marks) < 4:
            now = time.monotonic() - started
            with session_scope(read_only=True) as session:
                stored = session.execute(select(func.count()).select_from(Mention)).scalar_one()
                scored = session.execute(
                    select(func.count()).select_from(Mention).where(col(Mention.scored))
                ).scalar_one()
                marker_case = session.execute(
                    select(col(Case.id))
                    .join(Mention, col(Mention.id) == col(Case.mention_id))
                    .where(col(Mention.external_id) == "burst-marker")
                ).first()
            if marker_case is not None:
                marks.setdefault("marker case on board", now)
            alerted = mailbox.exists() and "allergic" in mailbox.read_text(errors="replace")
            if alerted:
                marks.setdefault("marker alert sent", now)
            if "burst stored" not in marks and stored >= args.posts:
                marks["burst stored"] = now
            if "burst scored" not in marks and scored >= args.posts:
                marks["burst scored"] = now
            time.sleep(0.5)
    finally:
        sampling.set()
        demo.shutdown()
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    print(f"burst of {args.posts:,} posts, collection every {args.collect_seconds} s, "
          f"pipeline every {args.pipeline_seconds} s")  # fmt: skip
    for name, seconds in sorted(marks.items(), key=lambda item: item[1]):
        beyond = seconds - args.collect_seconds
        print(f"  {name:22} {seconds:7.1f} s after the burst ({beyond:+.1f} s beyond the interval)")
    print(f"  peak resident memory of the stack: {peak['rss'] / 2**20:,.0f} MiB, of which:")
    for name, size in sorted(peak_parts.items(), key=lambda item: -item[1]):
        print(f"    {size / 2**20:7,.0f} MiB  {name}")


if __name__ == "__main__":
    main()
