"""Replay: posts from a local JSON-lines feed (the demo's collector, and a test bed).

`base_url` is the feed: `http://127.0.0.1:PORT/feed.jsonl` (served by any HTTP server) or
`file:///path/feed.jsonl`. One post per line; the feed only grows (a writer appends lines).
Each run takes only what was appended since the last successful run:

* the cursor holds the byte `offset` consumed, and the `last_id`/`last_len` of the last line;
* the next run asks for the feed from the start of that last line (`Range` header; a server that
  ignores it sends everything and the spider slices) and checks that line is still the same post;
  if not, the feed was replaced and it is read again from the start (upserts absorb repeats);
* a half-written last line (no newline yet) is left for the next run.

A line: {"id", "text", "platform"?, "url"?, "title"?, "lang"?, "created_at"?, "observed_at"?,
"author"?: {"handle", "display_name"|"name", "followers", "verified", "bio", "id"},
"likes"?, "reposts"?, "replies"? (or "engagement": {...}), "parent_id"?, "thread_id"?,
"rating"?, "deleted"?} (the `tocsin score` input shape is accepted as is).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy.http import Response

from collectors.items import AuthorInfo, MentionItem
from collectors.spiders.base import MentionSpider, html_to_text, parse_time, to_int

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-")


class ReplaySpider(MentionSpider):
    name = "replay"
    platform = "replay"

    async def start(self) -> AsyncIterator[Any]:
        offset = int(self.cursor.get("offset", 0) or 0)
        last_len = int(self.cursor.get("last_len", 0) or 0)
        if self.cursor.get("last_id") is not None and 0 < last_len <= offset:
            yield self._feed_request(offset - last_len, verify=True)
        else:  # nothing read yet, or the last line read was unusable: no line to check
            yield self._feed_request(offset, verify=False)

    def _feed_request(self, start: int, *, verify: bool) -> Any:
        ranged = start and self.base_url.startswith("http")
        return self.request(
            self.base_url,
            callback=self.parse,
            headers={"Range": f"bytes={start}-"} if ranged else {},
            cb_kwargs={"start": start, "verify": verify},
            allow_statuses=(416,),
        )

    def parse(self, response: Response, start: int = 0, verify: bool = False) -> Iterator[Any]:
        if response.status == 416:  # nothing past the offset: no new posts
            return
        body = self._body_from(response, start)
        if body is None:
            return
        if verify and not self._same_last_line(body):
            self.logger.info("source=%s feed was replaced: reading it again", self.source.name)
            self.new_cursor = {}
            yield self._feed_request(0, verify=False)
            return
        offset = start
        if verify:
            first_end = body.index(b"\n") + 1
            offset += first_end
            body = body[first_end:]
        yield from self._parse_lines(response, body, offset)

    def _body_from(self, response: Response, start: int) -> bytes | None:
        """The feed's bytes from `start`, whether or not the server honoured the Range."""
        if response.status == 206:
            header = (response.headers.get(b"Content-Range") or b"").decode("latin-1")
            match = _CONTENT_RANGE.search(header)
            if match is None or int(match.group(1)) != start:
                self.malformed(response, f"unexpected Content-Range {header!r}")
                return None
            return response.body
        return response.body[start:]  # empty when the feed got shorter: replaced

    def _same_last_line(self, body: bytes) -> bool:
        end = body.find(b"\n")
        if end < 0 or end + 1 != int(self.cursor.get("last_len", 0)):
            return False
        try:
            post = json.loads(body[:end])
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False
        return isinstance(post, dict) and str(post.get("id")) == str(self.cursor.get("last_id"))

    def _parse_lines(self, response: Response, body: bytes, offset: int) -> Iterator[Any]:
        for raw_line in body.splitlines(keepends=True):
            if not raw_line.endswith(b"\n"):
                break  # being written: next run
            offset += len(raw_line)
            line = raw_line.strip()
            if not line:
                continue
            item = self.guarded(response, self._parse_line, line)
            if item is not None:
                self.update_cursor(offset=offset, last_id=item.external_id, last_len=len(raw_line))
                yield item
            else:
                self.update_cursor(offset=offset, last_id=None, last_len=0)

    def _parse_line(self, line: bytes) -> MentionItem:
        post = json.loads(line)
        if not isinstance(post, dict):
            raise TypeError("a line must be a JSON object")
        if post.get("id") in (None, ""):
            raise KeyError("id")
        engagement = post.get("engagement") or {}
        text = str(post.get("text") or "")
        return MentionItem(
            platform=str(post.get("platform") or self.option("platform", self.platform)),
            external_id=str(post["id"]),
            text=text,
            clean_text=html_to_text(text) if "<" in text else text,
            url=post.get("url") or f"{self.base_url}#{post['id']}",
            title=post.get("title"),
            lang=post.get("lang"),
            author=self._parse_author(post.get("author")),
            created_at=parse_time(post.get("created_at")),
            observed_at=parse_time(post.get("observed_at")),
            likes=to_int(post.get("likes", engagement.get("likes"))),
            reposts=to_int(post.get("reposts", engagement.get("reposts"))),
            replies=to_int(post.get("replies", engagement.get("replies"))),
            parent_external_id=_str_or_none(post.get("parent_id")),
            thread_external_id=_str_or_none(post.get("thread_id")),
            rating=post.get("rating"),
            deleted=bool(post.get("deleted", False)),
            raw=post,
        )

    def _parse_author(self, author: Any) -> AuthorInfo | None:
        if not isinstance(author, dict):
            return AuthorInfo(handle=author) if isinstance(author, str) and author else None
        handle = author.get("handle") or author.get("username") or author.get("name")
        if not handle:
            return None
        return AuthorInfo(
            handle=str(handle),
            external_id=_str_or_none(author.get("id")),
            display_name=author.get("display_name") or author.get("name"),
            followers=to_int(author.get("followers")),
            verified=bool(author.get("verified", False)),
            bio=author.get("bio"),
        )


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
