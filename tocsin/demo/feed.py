"""The demo's source side: posts written for the demo, appended to local feeds as time passes.

Each post has an `offset_minutes` from the demo's start: the backlog (negative offsets) is
written at once, its times shifted to cover the past week; live posts (positive offsets) are
appended when their moment comes, as a platform would publish them. The replay collector
reads these feeds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

POSTS_FILE = Path(__file__).with_name("posts.jsonl")
FEED_FIELDS = ("id", "text", "platform", "lang", "author", "likes", "reposts", "replies")


@dataclass(frozen=True)
class DemoPost:
    brand: str
    offset_minutes: float
    line: dict[str, Any]

    @property
    def live(self) -> bool:
        return self.offset_minutes > 0


def load_posts(path: Path = POSTS_FILE) -> list[DemoPost]:
    posts = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
            posts.append(
                DemoPost(
                    brand=str(data["brand"]),
                    offset_minutes=float(data["offset_minutes"]),
                    line={k: data[k] for k in FEED_FIELDS if k in data},
                )
            )
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{path}:{number}: not a demo post ({exc})") from exc
    return sorted(posts, key=lambda p: p.offset_minutes)


def feed_line(post: DemoPost, *, start: datetime) -> str:
    created = start + timedelta(minutes=post.offset_minutes)
    line = dict(post.line)
    line["created_at"] = created.isoformat()
    # Backlog posts were seen a while after they were posted; live ones just now.
    seen = created + timedelta(minutes=30) if not post.live else created
    line["observed_at"] = min(seen, max(created, start)).isoformat()
    return json.dumps(line, ensure_ascii=False) + "\n"


class FeedWriter:
    """Appends each brand's posts to its feed file; live posts on a timer thread."""

    def __init__(
        self,
        posts: Iterable[DemoPost],
        *,
        feeds: dict[str, Path],
        start: datetime,
        speed: float = 1.0,
        on_post: Callable[[DemoPost], None] | None = None,
    ) -> None:
        self.posts = list(posts)
        self.feeds = feeds
        self.start = start
        self.speed = speed
        self.on_post = on_post
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def write_backlog(self) -> int:
        for path in self.feeds.values():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("", encoding="utf-8")
        backlog = [p for p in self.posts if not p.live]
        for post in backlog:
            self._append(post)
        return len(backlog)

    def live_posts(self) -> list[DemoPost]:
        return [p for p in self.posts if p.live]

    def start_live(self) -> None:
        self._thread = threading.Thread(target=self._run_live, name="demo-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run_live(self) -> None:
        origin = datetime.now(self.start.tzinfo)
        for post in self.live_posts():
            due = origin + timedelta(minutes=post.offset_minutes / self.speed)
            wait = (due - datetime.now(self.start.tzinfo)).total_seconds()
            if wait > 0 and self.stop_event.wait(wait):
                return
            self._append(post, at=datetime.now(self.start.tzinfo))

    def _append(self, post: DemoPost, *, at: datetime | None = None) -> None:
        path = self.feeds.get(post.brand)
        if path is None:
            return
        start = self.start if at is None else at - timedelta(minutes=post.offset_minutes)
        with path.open("a", encoding="utf-8") as feed:
            feed.write(feed_line(post, start=start))
        if self.on_post is not None:
            self.on_post(post)
