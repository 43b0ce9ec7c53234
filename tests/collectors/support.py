"""Test helpers for the collectors: Scrapy responses from files, and a scripted local HTTP server.

response = json_response("https://api.example/x", DATA / "hackernews" / "page0.json")
items = list(spider.parse(response))

with ScriptedServer(handler) as server:        # handler(request) -> Reply
    url = server.url("/search_by_date")
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from scrapy.http import HtmlResponse, Request, TextResponse

DATA = Path(__file__).resolve().parents[1] / "data"


def response_for(
    url: str,
    body: bytes | str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    meta: dict[str, Any] | None = None,
) -> TextResponse:
    """A Scrapy response as the downloader would hand it to a callback."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    request = Request(url, meta=meta or {})
    cls = HtmlResponse if "html" in (headers or {}).get("Content-Type", "") else TextResponse
    return cls(
        url=url, body=raw, status=status, headers=headers or {}, request=request, encoding="utf-8"
    )


def json_response(url: str, source: Path | Any, *, status: int = 200) -> TextResponse:
    body = source.read_bytes() if isinstance(source, Path) else json.dumps(source).encode()
    return response_for(
        url, body, status=status, headers={"Content-Type": "application/json; charset=utf-8"}
    )


@dataclass
class Reply:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a slow server)

    @classmethod
    def json(cls, data: Any, **kwargs: Any) -> Reply:
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        return cls(body=json.dumps(data), headers=headers, **kwargs)


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


Handler = Callable[[Seen], Reply]


class ScriptedServer:
    """A threaded HTTP server on 127.0.0.1 whose answers come from a Python function."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                seen = Seen(
                    method="GET",
                    path=parts.path,
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    at=time.time(),
                )
                with server._lock:
                    server.requests.append(seen)
                reply = server.handler(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body.encode() if isinstance(reply.body, str) else reply.body
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def hits(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]


class Script:
    """Answers in order per key (the last answer repeats): scripted failures, then the real one."""

    def __init__(self, fallback: Handler) -> None:
        self.fallback = fallback
        self.queued: dict[str, list[Reply]] = defaultdict(list)
        self._lock = threading.Lock()

    def queue(self, key: str, *replies: Reply) -> None:
        with self._lock:
            self.queued[key].extend(replies)

    def __call__(self, request: Seen, key: str) -> Reply:
        with self._lock:
            if self.queued.get(key):
                return self.queued[key].pop(0)
        return self.fallback(request)


# ---------------------------------------------------------------------- a fake HN Search API


@dataclass
class FakeHnSearch:
    """`search_by_date` over an in-memory list of posts, honouring numericFilters and paging.

    `script` lets a test queue failures for a given page ("page=2") before the real answer.
    """

    posts: list[dict[str, Any]] = field(default_factory=list)
    hits_per_page: int = 20
    delay: float = 0.0
    script: Script | None = None

    def __post_init__(self) -> None:
        self.script = Script(self._answer)

    def add(self, count: int, *, start_id: int, start_time: int, text: str = "Acme Air") -> None:
        for n in range(count):
            stamp = start_time + n
            self.posts.append(hn_hit(start_id + n, stamp, f"{text} comment {start_id + n}"))

    def __call__(self, request: Seen) -> Reply:
        assert self.script is not None
        return self.script(request, f"page={request.query.get('page', '0')}")

    def _answer(self, request: Seen) -> Reply:
        if request.path != "/search_by_date":
            return Reply(status=404, body="not found")
        selected = sorted(self.posts, key=lambda p: (-p["created_at_i"], p["objectID"]))
        for condition in filter(None, request.query.get("numericFilters", "").split(",")):
            for op in (">=", "<=", ">", "<"):
                if op in condition:
                    value = int(condition.split(op)[1])
                    selected = [p for p in selected if _compare(p["created_at_i"], op, value)]
                    break
        per_page = int(request.query.get("hitsPerPage", self.hits_per_page))
        page = int(request.query.get("page", 0))
        pages = max((len(selected) + per_page - 1) // per_page, 1) if selected else 0
        hits = selected[page * per_page : (page + 1) * per_page]
        body = {
            "hits": hits,
            "nbHits": len(selected),
            "page": page,
            "nbPages": pages,
            "hitsPerPage": per_page,
            "query": request.query.get("query", ""),
        }
        return Reply.json(body, delay=self.delay)


def _compare(left: int, op: str, right: int) -> bool:
    return {
        ">=": left >= right,
        "<=": left <= right,
        ">": left > right,
        "<": left < right,
    }[op]


def hn_hit(object_id: int, created_at_i: int, text: str) -> dict[str, Any]:
    return {
        "objectID": str(object_id),
        "created_at_i": created_at_i,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(created_at_i)),
        "author": f"user{object_id % 97}",
        "comment_text": f"<p>{text}</p>",
        "story_id": 1,
        "parent_id": 1,
        "story_title": "Acme Air thread",
        "_tags": ["comment"],
    }


def wait_until(
    predicate: Callable[[], bool], *, timeout: float = 30.0, every: float = 0.05
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def started(spider: Any) -> list[Any]:
    """What a spider's async `start()` yields, collected synchronously."""
    import asyncio

    async def collect() -> list[Any]:
        return [r async for r in spider.start()]

    return asyncio.run(collect())
