"""Hacker News, through the Algolia HN Search API (`search_by_date`, newest first, no key).

    GET {base_url}/search_by_date?query=Q&tags=(story,comment)&hitsPerPage=N&page=P
        &numericFilters=created_at_i>=CURSOR

The cursor is the newest `created_at_i` seen; the next run asks for posts from `overlap_seconds`
(default 300) before it, because the search index can receive a post some minutes after its
creation time; upserts absorb the repeats (and refresh points/comments). The first run reads
`since_days` (default 7) back. Pages are read until `nbPages`. Algolia serves at most
`paginationLimitedTo` (1,000) hits per query, so when more matched, the spider continues below
the oldest time it saw.

Options: `tags` (default "(story,comment)"), `hits_per_page` (default 100, at most 1,000),
`since_days`, `overlap_seconds`, `max_pages` (default 50, a safety stop).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy.http import Response

from collectors.items import AuthorInfo, MentionItem
from collectors.spiders.base import MentionSpider, html_to_text, parse_time, to_int

ITEM_URL = "https://news.ycombinator.com/item?id={}"
DEFAULT_SINCE_DAYS = 7  # how far back the first run of a source reads
DEFAULT_OVERLAP = 300  # seconds re-read before the cursor: the index can lag behind a post


class HackerNewsSpider(MentionSpider):
    name = "hackernews"
    platform = "hackernews"
    default_base_url = "https://hn.algolia.com/api/v1"

    async def start(self) -> AsyncIterator[Any]:
        yield self._search(page=0, upper=None)

    def _search(self, *, page: int, upper: int | None) -> Any:
        filters = []
        since = self.cursor.get("created_at_i")
        if since is not None:
            lookback = int(self.option("overlap_seconds", DEFAULT_OVERLAP))
            filters.append(f"created_at_i>={int(since) - lookback}")
        else:  # first run: recent history only, not every post since 2006
            days = float(self.option("since_days", DEFAULT_SINCE_DAYS))
            filters.append(f"created_at_i>={int(time.time() - days * 86400)}")
        if upper is not None:
            filters.append(f"created_at_i<={upper}")
        params = {
            "query": self.query,
            "tags": self.option("tags", "(story,comment)"),
            "hitsPerPage": min(int(self.option("hits_per_page", 100)), 1000),
            "page": page,
            "numericFilters": ",".join(filters) or None,
        }
        return self.request(
            f"{self.base_url}/search_by_date",
            params=params,
            callback=self.parse,
            cb_kwargs={"page": page, "upper": upper},
        )

    def parse(self, response: Response, page: int = 0, upper: int | None = None) -> Iterator[Any]:
        payload = self.load_json(response)
        if payload is None:
            return
        hits = payload.get("hits") if isinstance(payload, dict) else None
        if not isinstance(hits, list):
            self.malformed(response, "no 'hits' list")
            return
        oldest: int | None = None
        for hit in hits:
            item = self.guarded(response, self._parse_hit, hit)
            if item is None:
                continue
            stamp = to_int(hit.get("created_at_i"))
            self.advance_cursor("created_at_i", stamp)
            if stamp is not None:
                oldest = stamp if oldest is None else min(oldest, stamp)
            yield item
        yield from self._next(response, payload, page=page, upper=upper, oldest=oldest)

    def _next(
        self,
        response: Response,
        payload: dict[str, Any],
        *,
        page: int,
        upper: int | None,
        oldest: int | None,
    ) -> Iterator[Any]:
        hits = payload.get("hits") or []
        pages = to_int(payload.get("nbPages")) or 0
        if not hits:
            return
        if page + 1 >= int(self.option("max_pages", 50)):
            self.mark_loss(f"stopped after {page + 1} pages ({response.url})")
            return
        if page + 1 < pages:
            yield self._search(page=page + 1, upper=upper)
            return
        per_page = to_int(payload.get("hitsPerPage")) or len(hits)
        if (to_int(payload.get("nbHits")) or 0) > pages * per_page and oldest is not None:
            if upper is not None and oldest >= upper:
                self.mark_loss(f"more than one result window in one second ({response.url})")
                return
            yield self._search(page=0, upper=oldest)

    def _parse_hit(self, hit: dict[str, Any]) -> MentionItem:
        object_id = str(hit["objectID"])
        tags = hit.get("_tags") or []
        html = hit.get("comment_text") or hit.get("story_text") or ""
        is_comment = "comment" in tags or hit.get("comment_text") is not None
        return MentionItem(
            platform=self.platform,
            external_id=object_id,
            url=ITEM_URL.format(object_id),
            text=html,
            clean_text=html_to_text(html),
            title=hit.get("title") or hit.get("story_title"),
            author=AuthorInfo(handle=hit["author"]) if hit.get("author") else None,
            created_at=parse_time(hit.get("created_at_i") or hit.get("created_at")),
            likes=to_int(hit.get("points")),
            replies=None if is_comment else to_int(hit.get("num_comments")),
            parent_external_id=_id(hit.get("parent_id")),
            thread_external_id=_id(hit.get("story_id")) or (None if is_comment else object_id),
            raw={k: v for k, v in hit.items() if k != "_highlightResult"},
        )


def _id(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
