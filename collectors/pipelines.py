"""From spider items to storage: validate, match against the brand, store in batches.

`MentionPipeline` keeps a post only when it names the source's brand (a keyword, or one of its
handles) and none of its excluded terms; `matched_reason` says why it was kept. Posts by the
brand's own accounts are skipped. Kept posts are stored with `storage.queries.upsert_mentions`,
one transaction per batch, so a crawl killed mid-way keeps what it stored and a re-run only
updates those rows. An item marked `deleted` is not matched: it flags the stored post, if any,
as deleted (text dropped). The spider's `counters` get new / updated / skipped / errors.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from collectors.items import MentionItem
from collectors.spiders.base import BrandRules, MentionSpider
from storage.db import session_scope
from storage.queries import mark_mentions_deleted, upsert_mentions

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


def _phrase(term: str) -> re.Pattern[str]:
    """A case-insensitive pattern for `term` as a whole word or phrase (any run of spaces)."""
    words = [re.escape(w) for w in term.split()]
    return re.compile(r"(?<![\w@#])" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def _handle_name(handle: str) -> str:
    return handle.strip().lstrip("@").casefold()


@dataclass(slots=True)
class Match:
    keep: bool
    reason: str


class BrandMatcher:
    """Decides whether a post is about the brand, and says why."""

    def __init__(self, brand: BrandRules | None, *, source_name: str, match_all: bool) -> None:
        self.brand = brand
        self.source_name = source_name
        self.match_all = match_all or brand is None
        terms = brand.keywords if brand else []
        self.keywords = [(k, _phrase(k)) for k in terms if k.strip()]
        handles = brand.handles if brand else []
        self.handles = [(h, _phrase("@" + _handle_name(h))) for h in handles if h.strip("@ ")]
        self.own_handles = {_handle_name(h) for h in handles}
        excluded = brand.excluded_terms if brand else []
        self.excluded = [(t, _phrase(t)) for t in excluded if t.strip()]

    def match(self, item: MentionItem) -> Match:
        haystack = f"{item.title or ''}\n{item.clean_text or ''}"
        for term, pattern in self.excluded:
            if pattern.search(haystack):
                return Match(False, f'excluded term "{term}"')
        handle = item.author_handle
        if handle and _handle_name(handle) in self.own_handles:
            return Match(False, "posted by the brand's own account")
        if self.match_all:
            why = "no brand set" if self.brand is None else "source keeps every post"
            return Match(True, f"source {self.source_name}: {why}")
        reasons = [f'keyword "{k}"' for k, pattern in self.keywords if pattern.search(haystack)]
        reasons += [f"handle {h}" for h, pattern in self.handles if pattern.search(haystack)]
        if not reasons:
            return Match(False, "does not mention the brand")
        return Match(True, "; ".join(reasons)[:500])


def item_problem(item: Any) -> str | None:
    """Why an item cannot be stored, or None."""
    if not isinstance(item, MentionItem):
        return f"not a MentionItem: {type(item).__name__}"
    if not item.platform:
        return "no platform"
    if not item.external_id or item.external_id == "None":
        return "no external id"
    return None


class MentionPipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.batch_size = max(crawler.settings.getint("TOCSIN_BATCH_SIZE", 500), 1)
        self.buffer: list[MentionItem] = []
        self.deleted: list[MentionItem] = []
        self.matcher: BrandMatcher | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MentionPipeline:
        return cls(crawler)

    @property
    def spider(self) -> MentionSpider:
        spider = self.crawler.spider
        assert isinstance(spider, MentionSpider), "Tocsin pipelines serve MentionSpider only"
        return spider

    def open_spider(self) -> None:
        spider = self.spider
        self.matcher = BrandMatcher(
            spider.source.brand, source_name=spider.source.name, match_all=spider.match_all
        )

    def process_item(self, item: Any) -> Any:
        spider = self.spider
        problem = item_problem(item)
        if problem is not None:
            spider.counters["errors"] += 1
            spider.logger.warning("source=%s item skipped: %s", spider.source.name, problem)
            return item
        if item.deleted:
            # A removal notice carries no text to match: it only flags a post we already hold.
            self.deleted.append(item)
            return item
        assert self.matcher is not None
        verdict = self.matcher.match(item)
        if not verdict.keep:
            spider.counters["skipped"] += 1
            return item
        item.matched_reason = verdict.reason
        self.buffer.append(item)
        if len(self.buffer) + len(self.deleted) >= self.batch_size:
            self.flush()
        return item

    def close_spider(self) -> None:
        self.flush()

    def flush(self) -> None:
        batch, self.buffer = self.buffer, []
        if batch:
            store_batch(self.spider, batch)
        deleted, self.deleted = self.deleted, []
        if deleted:
            mark_deleted(self.spider, deleted)


def store_batch(spider: MentionSpider, batch: Sequence[MentionItem]) -> None:
    """One transaction for the batch; a database failure is logged and counted as loss."""
    source = spider.source
    try:
        with session_scope() as session:
            result = upsert_mentions(
                session,
                records=[item.to_record() for item in batch],
                source_id=source.source_id,
                brand_id=source.brand.id if source.brand else None,
            )
    except SQLAlchemyError as exc:
        spider.counters["errors"] += len(batch)
        spider.mark_loss(f"database error: {type(exc).__name__}")
        spider.logger.error(
            "source=%s could not store %d mentions: %s", source.name, len(batch), exc
        )
        return
    spider.counters["new"] += result.inserted
    spider.counters["updated"] += result.updated
    spider.counters["errors"] += len(result.rejected)
    for index, why in result.rejected:
        item = batch[index]
        spider.logger.warning(
            "source=%s url=%s mention %s rejected by storage: %s",
            source.name,
            item.url or "-",
            item.external_id,
            why,
        )


def mark_deleted(spider: MentionSpider, items: Sequence[MentionItem]) -> None:
    """Flag stored posts that their platform reports deleted (text dropped); others are ignored."""
    by_platform: dict[str, list[str]] = {}
    for item in items:
        by_platform.setdefault(item.platform, []).append(item.external_id)
    try:
        with session_scope() as session:
            for platform, ids in by_platform.items():
                spider.counters["updated"] += mark_mentions_deleted(
                    session, platform=platform, external_ids=ids
                )
    except SQLAlchemyError as exc:
        spider.counters["errors"] += len(items)
        spider.mark_loss(f"database error: {type(exc).__name__}")
        spider.logger.error("source=%s could not flag deleted posts: %s", spider.source.name, exc)
