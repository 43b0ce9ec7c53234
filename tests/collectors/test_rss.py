"""RSS/Atom spider on the written feeds (tests/data/rss/NOTE.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from collectors.items import MentionItem
from collectors.spiders.base import SourceSpec
from collectors.spiders.rss import RssSpider
from tests.collectors.support import DATA, response_for, started

FEED = "https://news.example.org/rss/search?q=acme+air"


def make(cursor: dict | None = None, **spec: object) -> RssSpider:
    values: dict = {"name": "acme-news", "kind": "rss", "base_url": FEED, "cursor": cursor or {}}
    values.update(spec)
    return RssSpider(source=SourceSpec(**values))


def feed_response(name: str, url: str = FEED, headers: dict | None = None, status: int = 200):
    body = (DATA / "rss" / name).read_bytes()
    return response_for(url, body, status=status, headers=headers or {})


def test_rss2_items() -> None:
    spider = make()
    response = feed_response(
        "news_search.rss",
        headers={"ETag": '"v1"', "Last-Modified": "Fri, 20 Nov 2026 10:05:00 GMT"},
    )
    items = list(spider.parse(response, feed_url=FEED))
    assert len(items) == 4 and all(isinstance(i, MentionItem) for i in items)
    first = items[0]
    assert first.platform == "news"
    assert first.external_id == "news-example-88412"
    assert first.url == "https://news.example.org/2026/11/20/acme-air-grounds-fleet"
    assert first.title == "Acme Air grounds fleet after software glitch"
    assert first.clean_text.startswith("Hundreds of passengers were stranded")
    assert "track()" not in first.clean_text and "&" in first.clean_text
    assert first.lang == "en"
    assert first.author is not None and first.author.handle == "Dana Whitfield"
    assert first.created_at == datetime(2026, 11, 20, 9, 58, tzinfo=UTC)
    assert items[1].author is not None and items[1].author.handle == "Raj Patel"
    assert items[3].external_id == "https://news.example.org/2026/11/17/weather"  # no guid: link
    assert spider.new_etag == '"v1"'
    assert spider.new_last_modified == "Fri, 20 Nov 2026 10:05:00 GMT"
    assert spider.new_cursor["feeds"][FEED]["seen"][0] == "news-example-88412"
    assert spider.finished_without_loss


def test_atom_entries_with_languages() -> None:
    spider = make(base_url="https://blog.example.fr/feed.atom")
    items = list(spider.parse(feed_response("blog.atom", "https://blog.example.fr/feed.atom")))
    assert [i.lang for i in items] == ["fr", "en"]
    first = items[0]
    assert first.external_id == "tag:blog.example.fr,2026:/vol-annule"
    assert first.url == "https://blog.example.fr/2026/11/vol-annule"
    assert first.title == "Mon vol Acme Air annulé & aucun remboursement"
    assert "@acmeair ne répond toujours pas" in first.clean_text
    assert first.created_at == datetime(2026, 11, 20, 6, 30, tzinfo=UTC)  # published, not updated
    assert first.author is not None and first.author.handle == "Claire Dubois"
    assert items[1].clean_text == "Ten things to bring, whichever airline you fly."


def test_rss1_rdf_items() -> None:
    spider = make()
    [item] = list(spider.parse(feed_response("rdf.xml")))
    assert item.external_id == "https://forum.example.net/t/991"
    assert item.author is not None and item.author.handle == "bagless"
    assert item.created_at == datetime(2026, 11, 19, 18, 20, tzinfo=UTC)


def test_entries_seen_at_the_last_fetch_are_not_sent_again() -> None:
    seen = ["news-example-88412", "news-example-88100"]
    spider = make(cursor={"feeds": {FEED: {"seen": seen}}})
    items = list(spider.parse(feed_response("news_search.rss"), feed_url=FEED))
    assert [i.external_id for i in items] == [
        "https://news.example.org/2026/11/19/travel-stocks",
        "https://news.example.org/2026/11/17/weather",
    ]
    assert len(spider.new_cursor["feeds"][FEED]["seen"]) == 4


def test_conditional_get_headers_and_304() -> None:
    spider = make(etag='"v1"', last_modified="Fri, 20 Nov 2026 10:05:00 GMT")
    [request] = started(spider)
    assert request.headers.get("If-None-Match") == b'"v1"'
    assert request.headers.get("If-Modified-Since") == b"Fri, 20 Nov 2026 10:05:00 GMT"
    assert 304 in request.meta["handle_httpstatus_list"]
    assert list(spider.parse(response_for(FEED, b"", status=304), feed_url=FEED)) == []
    assert spider.counters["not_modified"] == 1
    assert spider.new_etag == '"v1"' and spider.finished_without_loss


def test_query_template_and_extra_feeds() -> None:
    spider = make(
        base_url="https://news.example.org/rss/search?q={query}",
        query="acme air",
        options={"feeds": ["https://blog.example.fr/feed.atom"]},
    )
    assert spider.feed_urls == [FEED, "https://blog.example.fr/feed.atom"]


def test_truncated_feed_gives_what_it_holds_but_counts_as_lost() -> None:
    spider = make()
    items = list(spider.parse(feed_response("truncated.rss")))
    assert items and items[0].external_id == "news-example-88412"
    assert not spider.finished_without_loss and spider.counters["malformed"] == 1


def test_html_error_page_is_not_a_feed() -> None:
    spider = make()
    response = feed_response("error_page.html", headers={"Content-Type": "text/html"})
    assert list(spider.parse(response)) == []
    assert spider.counters["malformed"] >= 1 and not spider.finished_without_loss
