"""X spider on the Tweepy cassettes (recorded from api.twitter.com) and documented pages."""

from __future__ import annotations

import copy
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import scrapy
import yaml
from sqlalchemy import select
from sqlmodel import col

from collectors.crawl import run_crawls
from collectors.items import MentionItem
from collectors.spiders.base import SourceSpec
from collectors.spiders.x import XSpider
from storage.db import session_scope
from storage.models import Author, Mention
from storage.queries import get_source
from tests.collectors.support import (
    DATA,
    Reply,
    ScriptedServer,
    Seen,
    json_response,
    response_for,
    started,
)
from tocsin.config import BrandConfig, Settings, SourceConfig

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
    assert post.rating is None and post.observed_at is None  # set by storage: now
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


def test_a_since_id_older_than_seven_days_is_dropped_once() -> None:
    refusal = {
        "errors": [
            {
                "parameters": {"since_id": ["1578516068309794817"]},
                "message": "Invalid 'since_id':'1578516068309794817'. 'since_id' must be a "
                "tweet id created after 2026-11-15T09:30:00Z.",
            }
        ],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }
    spider = make(cursor={"since_id": "1578516068309794817"})
    bad = response_for(
        SEARCH, json.dumps(refusal), status=400, headers={"Content-Type": "application/json"}
    )
    [retry] = list(spider.parse(bad))
    assert "since_id" not in retry.url and spider.counters["since_id_expired"] == 1
    assert spider.finished_without_loss
    # Any other 400, or the same one again, is a refused request: counted, a loss.
    assert list(spider.parse(bad)) == []
    assert not spider.finished_without_loss and spider.counters["malformed"] == 1


def test_errors_only_reply_is_a_loss() -> None:
    reply = {"errors": [{"message": "Invalid query", "title": "Invalid Request"}]}
    spider = make()
    assert list(spider.parse(json_response(SEARCH, reply))) == []
    assert not spider.finished_without_loss and spider.counters["malformed"] == 1


# ---------------------------------------------------------------------- a real crawl, end to end


def test_crawl_through_a_429_then_since_id(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOCSIN_X_BEARER_TOKEN", "AAAA-test-bearer")
    page1 = json.loads((DATA / "x/search_recent_page1.json").read_text(encoding="utf-8"))
    page2 = json.loads((DATA / "x/search_recent_page2.json").read_text(encoding="utf-8"))
    limited = {"done": False}
    quota = {
        "x-rate-limit-limit": "450",
        "x-rate-limit-remaining": "448",
        "x-rate-limit-reset": "1665183229",
    }

    def handler(request: Seen) -> Reply:
        if request.path != "/2/tweets/search/recent":
            return Reply(status=404)
        if request.headers.get("authorization") != "Bearer AAAA-test-bearer":
            return Reply.json({"title": "Unauthorized", "status": 401}, status=401)
        if not limited["done"]:
            limited["done"] = True
            return Reply.json(
                {"title": "Too Many Requests"}, status=429, headers={"Retry-After": "1"}
            )
        since = int(request.query.get("since_id", 0))
        if since:
            newer = [p for p in page1["data"] if int(p["id"]) > since]
            return Reply.json(
                {
                    "data": newer,
                    "includes": page1["includes"],
                    "meta": {"result_count": len(newer)},
                },
                headers=quota,
            )
        body = page2 if request.query.get("next_token") else page1
        return Reply.json(body, headers=quota)

    with ScriptedServer(handler) as server:
        source = {
            "name": "acme-x",
            "kind": "x",
            "brand": "Acme Air",
            "query": "acme air OR @AcmeAir",
            "base_url": server.url("/2"),
        }
        brand = BrandConfig(name="Acme Air", keywords=["acme air"], handles=["AcmeAir"])
        settings = Settings(
            data_dir=tmp_path / "data",
            brands=[brand],
            sources=[SourceConfig.model_validate(source)],
        )
        [first] = run_crawls(settings=settings)
        assert (first.status, first.new, first.skipped, first.errors) == ("ok", 3, 1, 0), first
        calls = server.hits("/2/tweets/search/recent")
        assert len(calls) == 3 and calls[1].at - calls[0].at >= 1.0  # waited for Retry-After
        assert calls[2].query["next_token"] == "b26v89c19zqg8o3fpzbn1e0ffhxjiofzw6po136rvbnul"
        assert cursor_of("acme-x") == {"since_id": "1858831712345678901"}

        fresh = copy.deepcopy(page1["data"][0])
        fresh.update(id="1858840000000000000", text="Acme Air finally answered, thanks @AcmeAir")
        page1["data"].insert(0, fresh)
        [second] = run_crawls(settings=settings)
        assert (second.status, second.new, second.updated) == ("ok", 1, 0), second
        assert server.hits("/2/tweets/search/recent")[-1].query["since_id"] == "1858831712345678901"
    assert cursor_of("acme-x") == {"since_id": "1858840000000000000"}
    with session_scope() as session:
        rows = session.execute(select(Mention)).scalars().all()
        jane = session.execute(
            select(Author).where(col(Author.handle) == "jane_flies")
        ).scalar_one()
    assert len(rows) == 4 and jane.followers == 251000 and jane.verified
    assert {r.parent_external_id for r in rows} == {None, "1858829900011122233"}


def cursor_of(name: str) -> dict[str, Any]:
    with session_scope() as session:
        row = get_source(session, name=name)
        assert row is not None
        return dict(row.cursor)
