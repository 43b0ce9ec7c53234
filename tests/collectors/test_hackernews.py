"""Hacker News (Algolia search_by_date) spider on the recorded and written payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import scrapy

from collectors.items import MentionItem
from collectors.spiders.base import SourceSpec
from collectors.spiders.hackernews import HackerNewsSpider
from tests.collectors.support import DATA, json_response, started

SHARED = Path("/work/shared/payloads/hackernews")
BASE = "https://hn.algolia.com/api/v1"


def make(cursor: dict | None = None, **options: object) -> HackerNewsSpider:
    spec = SourceSpec(
        name="acme-hn", kind="hackernews", query="acme air", cursor=cursor or {}, options=options
    )
    return HackerNewsSpider(source=spec)


def split(out: list) -> tuple[list[MentionItem], list[scrapy.Request]]:
    return (
        [o for o in out if isinstance(o, MentionItem)],
        [o for o in out if isinstance(o, scrapy.Request)],
    )


def test_documented_example_response() -> None:
    spider = make()
    url = f"{BASE}/search?query=pg"
    items, requests = split(
        list(spider.parse(json_response(url, SHARED / "algolia-docs-search-example.json")))
    )
    assert len(items) == 1 and not requests
    story = items[0]
    assert story.external_id == "1"
    assert story.title == "Y Combinator"
    assert story.url == "https://news.ycombinator.com/item?id=1"
    assert story.likes == 57 and story.replies == 2
    assert story.author is not None and story.author.handle == "pg"
    assert story.raw is not None and "_highlightResult" not in story.raw


def test_search_by_date_pages_comments_and_cursor() -> None:
    spider = make()
    url = f"{BASE}/search_by_date?query=acme+air&page=0"
    page0 = json_response(url, DATA / "hackernews/search_by_date_page0.json")
    items, requests = split(list(spider.parse(page0, page=0)))
    assert [i.external_id for i in items] == ["46100003", "46100002", "46100001"]
    comment = items[0]
    assert comment.clean_text.startswith("Former Acme Air dev here")
    assert "<p>" in comment.text and "<p>" not in comment.clean_text
    assert comment.parent_external_id == "46100002"
    assert comment.thread_external_id == "46100001"
    assert comment.title == "Acme Air grounds fleet after software glitch"
    assert comment.created_at == datetime(2026, 11, 20, 10, 2, 11, tzinfo=UTC)
    story = items[2]
    assert story.thread_external_id == "46100001" and story.likes == 212 and story.replies == 2
    assert len(requests) == 1 and "page=1" in requests[0].url
    page1 = json_response(
        url.replace("page=0", "page=1"), DATA / "hackernews/search_by_date_page1.json"
    )
    items1, requests1 = split(list(spider.parse(page1, page=1)))
    assert not requests1
    assert (
        items1[0].clean_text == "Flight cancelled on the 2nd; chat bot loops. Any tips & contacts?"
    )
    assert "—" in items1[1].clean_text
    assert spider.new_cursor["created_at_i"] == int(
        datetime(2026, 11, 20, 10, 2, 11, tzinfo=UTC).timestamp()
    )
    assert spider.finished_without_loss


def test_start_reads_from_a_little_before_the_cursor() -> None:
    spider = make(cursor={"created_at_i": 1795168680})
    [request] = started(spider)
    assert request.url.startswith(f"{BASE}/search_by_date?query=acme+air")
    assert "numericFilters=created_at_i%3E%3D1795168380" in request.url  # 5 minutes of overlap
    assert "tags=%28story%2Ccomment%29" in request.url
    [exact] = started(make(cursor={"created_at_i": 1795168680}, overlap_seconds=0))
    assert "numericFilters=created_at_i%3E%3D1795168680" in exact.url


def test_first_run_reads_a_week_back() -> None:
    import time
    from urllib.parse import parse_qs, urlsplit

    [request] = started(make())
    numeric = parse_qs(urlsplit(request.url).query)["numericFilters"][0]
    since = int(numeric.removeprefix("created_at_i>="))
    assert abs(since - (time.time() - 7 * 86400)) < 60
    [two_days] = started(make(since_days=2))
    assert "numericFilters=created_at_i%3E%3D" in two_days.url


def test_truncated_page_is_a_loss_and_asks_for_nothing_more() -> None:
    spider = make()
    body = (DATA / "hackernews/search_by_date_page0.json").read_bytes()[:500]
    from tests.collectors.support import response_for

    assert list(spider.parse(response_for(f"{BASE}/search_by_date", body))) == []
    assert not spider.finished_without_loss and spider.counters["malformed"] == 1
