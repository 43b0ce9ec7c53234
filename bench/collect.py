"""Collection throughput: mentions parsed, matched and stored per second, end to end.

    .venv/bin/python bench/collect.py [--mentions N] [--database URL] [--kinds hackernews,replay]

Serves synthetic posts from a local HTTP server on 127.0.0.1 (Hacker News search pages of 1,000
hits, or one JSON-lines feed for replay), runs a real crawl with `collectors.crawl.run_crawls`
(a subprocess, Scrapy, the matching pipeline, batched upserts) into a fresh database, and reports:

* crawl rate: stored mentions / the crawl's own time (Scrapy start to last commit);
* end-to-end rate: stored mentions / wall time of `run_crawls`, process start included.

Without --database a fresh SQLite file in a temporary folder is used; with a PostgreSQL URL the
database must exist and be migrated (`tocsin db upgrade`) and empty of these mentions.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.crawl import run_crawls
from storage import db as storage_db
from storage.migrate import upgrade
from tocsin.config import Settings

T0 = int(time.time()) - 86_400  # inside the first run's window
WORDS = [
    "delayed",
    "flight",
    "refund",
    "bag",
    "lost",
    "gate",
    "crew",
    "app",
    "crash",
    "check-in",
    "seat",
    "great",
    "thanks",
]


def post_text(n: int) -> str:
    words = " ".join(WORDS[(n + k) % len(WORDS)] for k in range(12))
    return f"<p>Acme Air {words} #{n}</p>"


class Feeds:
    """The synthetic data: HN hits (newest first) and a JSON-lines feed, built once."""

    def __init__(self, count: int) -> None:
        self.hits = [
            {
                "objectID": str(1_000_000 + n),
                "created_at_i": T0 + n,
                "author": f"user{n % 5000}",
                "comment_text": post_text(n),
                "story_id": 1,
                "parent_id": 1,
                "story_title": "Acme Air thread",
                "points": None,
                "_tags": ["comment"],
            }
            for n in range(count - 1, -1, -1)
        ]
        lines = (
            json.dumps(
                {
                    "id": f"r{n}",
                    "platform": "replay",
                    "text": post_text(n),
                    "author": {"handle": f"user{n % 5000}", "followers": n % 10_000},
                    "created_at": T0 + n,
                    "likes": n % 50,
                }
            )
            for n in range(count)
        )
        self.jsonl = ("\n".join(lines) + "\n").encode()

    def answer(self, path: str, query: dict[str, str]) -> bytes:
        if path == "/feed.jsonl":
            return self.jsonl
        per_page = int(query.get("hitsPerPage", 1000))
        page = int(query.get("page", 0))
        pages = (len(self.hits) + per_page - 1) // per_page
        body = {
            "hits": self.hits[page * per_page : (page + 1) * per_page],
            "nbHits": len(self.hits),
            "nbPages": pages,
            "page": page,
            "hitsPerPage": per_page,
        }
        return json.dumps(body).encode()


def serve(feeds: Feeds) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            body = feeds.answer(parts.path, query)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def source_for(kind: str, base: str) -> dict[str, Any]:
    if kind == "hackernews":
        return {
            "name": "bench-hn",
            "kind": "hackernews",
            "brand": "Acme Air",
            "query": "acme air",
            "base_url": base,
            "options": {"hits_per_page": 1000, "max_pages": 10_000},
        }
    return {
        "name": "bench-replay",
        "kind": "replay",
        "brand": "Acme Air",
        "base_url": f"{base}/feed.jsonl",
    }


def _children_cpu() -> float:
    """CPU seconds used by finished child processes (the crawl), user plus system."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=20_000)
    parser.add_argument("--database", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--kinds", default="hackernews,replay", help="hackernews and/or replay")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tocsin-bench-"))
    url = args.database or f"sqlite:///{workdir / 'bench.db'}"
    if not args.database:
        upgrade(url=url)
    storage_db.configure(url)
    feeds = Feeds(args.mentions)
    server = serve(feeds)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    print(
        f"machine: {platform.machine()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; database: {url.split(':')[0]}"
    )
    print(
        f"{'source':<12} {'mentions':>9} {'crawl s':>8} {'crawl/s':>9} {'wall s':>8} "
        f"{'e2e/s':>8} {'cpu s':>7} {'per cpu-s':>10}"
    )
    for kind in args.kinds.split(","):
        settings = Settings.model_validate(
            {
                "data_dir": workdir / "data",
                "database_url": url,
                "brands": [{"name": "Acme Air", "keywords": ["acme air"]}],
                "sources": [source_for(kind, base)],
            }
        )
        started = time.perf_counter()
        cpu_before = _children_cpu()
        [summary] = run_crawls(settings=settings)
        wall = time.perf_counter() - started
        cpu = _children_cpu() - cpu_before
        stored = summary.new + summary.updated
        if summary.status != "ok" or stored != args.mentions:
            print(f"{kind}: unexpected outcome {summary}", file=sys.stderr)
        print(
            f"{kind:<12} {stored:>9,} {summary.seconds:>8.2f} {stored / summary.seconds:>9,.0f} "
            f"{wall:>8.2f} {stored / wall:>8,.0f} {cpu:>7.2f} {stored / cpu:>10,.0f}"
        )
    server.shutdown()
    storage_db.dispose()
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
