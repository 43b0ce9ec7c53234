"""App Store reviews spider on the written feed pages (tests/data/appstore/NOTE.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import scrapy

from collectors.items import MentionItem
from collectors.spiders.appstore import AppStoreSpider
from collectors.spiders.base import SourceSpec
from tests.collectors.support import DATA, json_response, response_for, started

URL = "https://itunes.apple.com/us/rss/customerreviews/page=1/id=1234567890/sortby=mostrecent/json"


def make(cursor: dict | None = None, **options: object) -> AppStoreSpider:
    spec = SourceSpec(
        name="acme-ios", kind="appstore", query="1234567890", options=options, cursor=cursor or {}
    )
    return AppStoreSpider(source=spec)


def test_page_one_gives_reviews_with_ratings_and_asks_for_page_two() -> None:
    spider = make()
    out = list(spider.parse(json_response(URL, DATA / "appstore/customerreviews_us_page1.json")))
    items = [o for o in out if isinstance(o, MentionItem)]
    requests = [o for o in out if isinstance(o, scrapy.Request)]
    assert [i.external_id for i in items] == ["11000000005", "11000000004", "11000000003"]
    first = items[0]
    assert first.platform == "appstore"
    assert first.rating == 1.0
    assert first.title == "Boarding pass vanished"
    assert "boarding pass is gone" in first.clean_text
    assert first.created_at == datetime(2026, 11, 20, 16, 41, 12, tzinfo=UTC)
    assert first.author is not None
    assert first.author.display_name == "stuckinLHR"
    assert first.author.external_id == "900005"
    assert first.likes == 3
    assert first.url and first.url.startswith("https://itunes.apple.com/us/review?id=1234567890")
    assert first.raw is not None and first.raw["tocsin_storefront"] == "us"
    assert len(requests) == 1 and "/page=2/" in requests[0].url
    assert spider.new_cursor["latest"]["us"] == "2026-11-20T16:41:12+00:00"


def test_last_page_stops_paging() -> None:
    spider = make()
    url = URL.replace("page=1", "page=2")
    out = list(
        spider.parse(json_response(url, DATA / "appstore/customerreviews_us_page2.json"), page=2)
    )
    assert all(isinstance(o, MentionItem) for o in out)
    assert [o.rating for o in out] == [4.0, 3.0]
    assert "passport & then" in out[1].clean_text


def test_cursor_stops_at_reviews_already_seen() -> None:
    spider = make(cursor={"latest": {"us": "2026-11-20T13:02:55+00:00"}})
    out = list(spider.parse(json_response(URL, DATA / "appstore/customerreviews_us_page1.json")))
    assert [o.external_id for o in out if isinstance(o, MentionItem)] == [
        "11000000005",
        "11000000004",
    ]
    assert not [o for o in out if isinstance(o, scrapy.Request)]


def test_single_review_as_object_and_empty_feed() -> None:
    spider = make(countries=["fr"])
    fr = URL.replace("/us/", "/fr/")
    single = DATA / "appstore/customerreviews_fr_single.json"
    items = list(spider.parse(json_response(fr, single), country="fr"))
    assert [i.external_id for i in items] == ["21000000001"]
    assert items[0].created_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert list(spider.parse(json_response(fr, DATA / "appstore/customerreviews_empty.json"))) == []
    assert spider.counters["errors"] == 0


def test_error_page_and_unknown_shape_are_counted() -> None:
    spider = make()
    html = response_for(
        URL, "<html>Service Unavailable</html>", headers={"Content-Type": "text/html"}
    )
    assert list(spider.parse(html)) == []
    assert list(spider.parse(json_response(URL, {"unexpected": True}))) == []
    broken = {"feed": {"entry": [{"im:rating": {"label": "5"}}]}}  # a review without an id
    out = list(spider.parse(json_response(URL, broken)))
    assert not [o for o in out if isinstance(o, MentionItem)]
    assert spider.counters["malformed"] == 3
    assert len(spider.loss_reasons) == 2  # the bad review alone is not a lost page


def test_start_asks_each_storefront() -> None:
    spider = make(countries=["us", "GB"])
    urls = [r.url for r in started(spider)]
    assert urls == [URL, URL.replace("/us/", "/gb/")]
