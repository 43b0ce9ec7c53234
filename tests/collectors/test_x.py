"""X spider on the Tweepy cassettes (recorded from api.twitter.com) and documented pages."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import scrapy
import yaml

from collectors.items import MentionItem
from collectors.spiders.base import SourceSpec
from collectors.spiders.x import XSpider
from tests.collectors.support import DATA, json_response, response_for

SHARED = Path("/work/shared/payloads/x-twitter")
API = "https://x.example/2"
SEARCH = f"{API}/tweets/search/recent"


def cassette_body(name: str) -> bytes:
    """The first response body of a VCR.py cassette, gunzipped: the bytes X sent."""
    data = yaml.safe_load((SHARED / name).read_text(encoding="utf-8"))
    return gzip.decompress(data["interactions"][0]["response"]["body"]["string"])


def make(query: str = "@AcmeAir", cursor: dict[str, Any] | None = None, **options: Any) -> XSpider:
    spec = SourceSpec(
        name="acme-x",
        kind="x",
        base_url=API,
        query=query,
        options=options,
        cursor=cursor or {},
        secrets={"x_bearer_token": "AAAA-test-bearer"},
    )
    return XSpider(source=spec)


def split(out: list[Any]) -> tuple[list[MentionItem], list[scrapy.Request]]:
    return (
        [o for o in out if isinstance(o, MentionItem)],
        [o for o in out if isinstance(o, scrapy.Request)],
    )


def started(spider: XSpider) -> list[Any]:
    async def collect() -> list[Any]:
        return [r async for r in spider.start()]

    return asyncio.run(collect())


def test_expanded_page_gives_every_field() -> None:
    spider = make()
    items, [page2] = split(
        list(spider.parse(json_response(SEARCH, DATA / "x/search_recent_page1.json")))
    )
    post, reply = items
    assert post.platform == "x"
    assert post.external_id == "1858831712345678901"
    assert post.url == "https://x.com/jane_flies/status/1858831712345678901"
    assert post.text.startswith("@AcmeAir 3 hours on the tarmac &amp; no water")
    assert post.clean_text == (
        "@AcmeAir 3 hours on the tarmac & no water, no info. Flight AC123 > worst trip ever 😡 "
        "https://t.co/AbCdEf1234"
    )
    assert post.title is None and post.lang == "en"
    assert post.created_at == datetime(2026, 11, 20, 9, 20, 11, tzinfo=UTC)
    assert (post.likes, post.reposts, post.replies) == (340, 57, 12)
    assert post.parent_external_id is None and post.thread_external_id == "1858831712345678901"
    assert post.deleted is False
    author = post.author
    assert author is not None
    assert (author.handle, author.external_id, author.display_name) == (
        "jane_flies",
        "2244994945",
        "Jane Flies ✈️",
    )
    assert author.followers == 251000 and author.verified is True
    assert author.bio == "Travel journalist at The Daily Example. Opinions mine."
    assert post.raw is not None and post.raw["author"]["username"] == "jane_flies"
    assert reply.parent_external_id == "1858829900011122233"
    assert reply.thread_external_id == "1858829900011122233"
    assert reply.author is not None and reply.author.verified is False and reply.author.bio is None
    assert "next_token=b26v89c19zqg8o3fpzbn1e0ffhxjiofzw6po136rvbnul" in page2.url
    assert spider.new_cursor == {"since_id": "1858831712345678901"}


def test_long_post_unknown_author_and_no_language() -> None:
    spider = make()
    items, requests = split(
        list(spider.parse(json_response(SEARCH, DATA / "x/search_recent_page2.json")))
    )
    assert requests == []  # no next_token: the end
    long_post, laughing = items
    assert long_post.clean_text.endswith("@AcmeAir please answer.")  # note_tweet, not the cut text
    assert laughing.author is None  # missing from includes (the partial error)
    assert laughing.url == "https://x.com/i/web/status/1858829000000000001"
    assert laughing.lang is None and laughing.clean_text == "😂😂😂"
    assert spider.finished_without_loss


def test_recorded_default_fields_reply() -> None:
    spider = make()
    body = cassette_body("tweepy-test_client_search_recent_tweets.yaml")
    items, [more] = split(
        list(spider.parse(response_for(SEARCH, body, headers={"Content-Type": "application/json"})))
    )
    assert len(items) == 10
    first = items[0]
    assert first.external_id == "1578516068309794817"
    assert first.clean_text == "2022-10-07 22:42:12.637103 tweepy"
    assert first.author is None and first.created_at is None and first.likes is None
    assert first.url == "https://x.com/i/web/status/1578516068309794817"
    assert spider.new_cursor == {"since_id": "1578516068309794817"}
    assert "next_token=b26v89c19zqg8o3fpzbn1e0ffhxjiofzw6po136rvbnul" in more.url


def test_emoji_sent_as_surrogate_pairs_are_decoded() -> None:
    body = cassette_body("tweepy-test_client_get_tweets.yaml")
    assert b"\\ud83e\\udd41" in body.lower()  # X escapes emoji as UTF-16 surrogate pairs
    items, _ = split(
        list(
            make().parse(
                response_for(f"{API}/tweets", body, headers={"Content-Type": "application/json"})
            )
        )
    )
    assert "Say hello to the new #TwitterAPI" in items[0].clean_text
    assert "🥁" in items[0].clean_text


def test_start_sends_fields_expansions_and_since_id() -> None:
    spider = make(cursor={"since_id": "1858829000000000001"})
    [search] = started(spider)
    assert search.url.startswith(
        f"{SEARCH}?query=%40AcmeAir&max_results=100&since_id=1858829000000000001"
    )
    assert "expansions=author_id" in search.url
    assert (
        "user.fields=name%2Cusername%2Cpublic_metrics%2Cverified%2Cverified_type%2Cdescription"
        in search.url
    )
    assert "public_metrics" in search.url.split("tweet.fields=")[1]
    assert search.headers["Authorization"] == b"Bearer AAAA-test-bearer"


def test_page_cap_is_logged_and_counted() -> None:
    spider = make(max_pages=1)
    _, requests = split(
        list(spider.parse(json_response(SEARCH, DATA / "x/search_recent_page1.json")))
    )
    assert requests == [] and spider.counters["pages_capped"] == 1


def test_errors_only_reply_is_a_loss() -> None:
    reply = {"errors": [{"message": "Invalid query", "title": "Invalid Request"}]}
    spider = make()
    assert list(spider.parse(json_response(SEARCH, reply))) == []
    assert not spider.finished_without_loss and spider.counters["malformed"] == 1
