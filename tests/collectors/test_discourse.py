"""Discourse spider on the discourse_api fixtures (dev-instance output) and a written search."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import scrapy
from sqlalchemy import select
from sqlmodel import col

from collectors.crawl import run_crawls
from collectors.items import MentionItem
from collectors.spiders.base import SourceSpec
from collectors.spiders.discourse import DiscourseSpider
from storage.db import session_scope
from storage.models import Mention
from storage.queries import get_source
from tests.collectors.support import DATA, Reply, ScriptedServer, Seen, json_response, started
from tocsin.config import BrandConfig, Settings, SourceConfig

SHARED = Path("/work/shared/payloads/discourse")
FORUM = "https://forum.example.com/community"


def load(name: str) -> Any:
    return json.loads((SHARED / name).read_text(encoding="utf-8"))


def latest_post(post_id: int) -> dict[str, Any]:
    return next(p for p in load("posts_latest.json")["latest_posts"] if p["id"] == post_id)


def make(query: str = "", cursor: dict[str, Any] | None = None, **options: Any) -> DiscourseSpider:
    spec = SourceSpec(
        name="acme-forum",
        kind="discourse",
        base_url=FORUM,
        query=query,
        options=options,
        cursor=cursor or {},
    )
    return DiscourseSpider(source=spec)


def split(out: list[Any]) -> tuple[list[MentionItem], list[scrapy.Request]]:
    return (
        [o for o in out if isinstance(o, MentionItem)],
        [o for o in out if isinstance(o, scrapy.Request)],
    )


def test_latest_posts_give_every_field() -> None:
    spider = make()
    page = json_response(f"{FORUM}/posts.json", SHARED / "posts_latest.json")
    items, [older] = split(list(spider.parse(page)))
    assert [i.external_id for i in items] == [
        "forum.example.com/community/t/11/2",
        "forum.example.com/community/t/11/1",
        "forum.example.com/community/t/7/1",
        "forum.example.com/community/t/2/1",
    ]
    reply = items[0]
    assert reply.platform == "discourse"
    assert reply.url == f"{FORUM}/t/this-is-an-uncategorized-title/11/2"
    assert reply.title == "This is an uncategorized title"
    assert reply.text == "<p>holla bullhonky.</p>" and reply.clean_text == "holla bullhonky."
    assert reply.lang is None
    assert reply.author is not None
    assert (reply.author.handle, reply.author.external_id) == ("johndoe", "1")
    assert reply.author.display_name is None and reply.author.followers is None
    assert reply.created_at == datetime(2020, 1, 25, 2, 10, 7, 971000, tzinfo=UTC)
    assert (reply.likes, reply.reposts, reply.replies) == (0, None, 0)
    assert reply.thread_external_id == "forum.example.com/community/t/11"
    assert reply.parent_external_id is None  # reply_to_post_number is null
    assert reply.deleted is False
    assert reply.rating is None and reply.observed_at is None  # set by storage: now
    assert reply.raw is not None and reply.raw["id"] == 15
    # The older page starts at the oldest id seen (Discourse's `before` is inclusive).
    assert older.url == f"{FORUM}/posts.json?before=2"
    assert spider.new_cursor == {"last_post_id": 15}


def test_cooked_html_with_lists_images_and_emoji_becomes_text() -> None:
    items, _ = split(
        list(make().parse(json_response(f"{FORUM}/posts.json", SHARED / "posts_latest.json")))
    )
    welcome = items[2]
    assert welcome.author is not None and welcome.author.display_name == "system"
    assert "<strong>" not in welcome.clean_text and "<img" not in welcome.clean_text
    assert "It’s important!" in welcome.clean_text
    assert "Who is it for?\n\nWhat can they find here?" in welcome.clean_text
    assert "so that replies don’t pile up on an announcement." in welcome.clean_text


def test_before_page_that_only_repeats_posts_ends_the_crawl() -> None:
    spider = make()
    list(spider.parse(json_response(f"{FORUM}/posts.json", SHARED / "posts_latest.json")))
    before = json_response(f"{FORUM}/posts.json?before=14", SHARED / "posts_before.json")
    items, requests = split(list(spider.parse(before)))
    assert items == [] and requests == []


def test_next_crawl_takes_only_newer_posts_and_stops() -> None:
    spider = make(cursor={"last_post_id": 14})
    items, requests = split(
        list(spider.parse(json_response(f"{FORUM}/posts.json", SHARED / "posts_latest.json")))
    )
    assert [i.raw["id"] for i in items if i.raw] == [15]
    assert requests == []
    assert spider.new_cursor == {"last_post_id": 15}


def test_page_cap_before_the_cursor_is_counted() -> None:
    spider = make(cursor={"last_post_id": 1}, max_pages=1)
    page = json_response(f"{FORUM}/posts.json", SHARED / "posts_latest.json")
    items, requests = split(list(spider.parse(page)))
    assert len(items) == 4 and requests == [] and spider.counters["pages_capped"] == 1


def test_deleted_reply_and_whisper() -> None:
    page = load("posts_latest.json")
    page["latest_posts"][0].update(user_deleted=True, reply_to_post_number=1)
    page["latest_posts"][1]["post_type"] = 4  # a whisper: staff only, not public
    items, _ = split(list(make().parse(json_response(f"{FORUM}/posts.json", page))))
    assert [i.external_id.rsplit("/t/", 1)[1] for i in items] == ["11/2", "7/1", "2/1"]
    assert items[0].deleted is True
    assert items[0].parent_external_id == "forum.example.com/community/t/11/1"


def test_search_reads_each_new_hit_in_full_and_the_next_page() -> None:
    spider = make(query="hi")
    [search] = started(spider)
    assert search.url == f"{FORUM}/search.json?q=hi+order%3Alatest&page=1"
    page = json_response(search.url, DATA / "discourse/search.json")
    items, requests = split(list(spider.parse_search(page, page=1)))
    assert items == []
    assert [r.url for r in requests] == [
        f"{FORUM}/posts/15.json",
        f"{FORUM}/posts/14.json",
        f"{FORUM}/posts/10.json",
        f"{FORUM}/search.json?q=hi+order%3Alatest&page=2",
    ]
    full = json_response(requests[0].url, latest_post(15))
    [post] = list(spider.parse_post(full, **requests[0].cb_kwargs))
    assert post.clean_text == "holla bullhonky."
    assert post.url == f"{FORUM}/t/this-is-an-uncategorized-title/11/2"
    assert spider.new_cursor == {"last_post_id": 15}


def test_search_blurbs_only_when_asked_and_stops_at_the_cursor() -> None:
    spider = make(query="hi", cursor={"last_post_id": 10}, full_posts=False)
    page = json_response(f"{FORUM}/search.json", DATA / "discourse/search.json")
    items, requests = split(list(spider.parse_search(page, page=1)))
    assert requests == []  # post 10 was collected before: no further page
    assert [i.external_id.rsplit("/t/", 1)[1] for i in items] == ["11/2", "11/1"]
    first = items[0]
    assert first.title == "This is an uncategorized title"  # from the topic list
    assert first.url == f"{FORUM}/t/this-is-an-uncategorized-title/11/2"
    assert first.likes == 1 and first.clean_text == "holla bullhonky."


def test_a_hit_without_topic_id_is_skipped_and_counted() -> None:
    page = json.loads((DATA / "discourse/search.json").read_text())
    broken = copy.deepcopy(page)
    del broken["posts"][1]["topic_id"]
    spider = make(query="hi", full_posts=False)
    items, _ = split(list(spider.parse_search(json_response(f"{FORUM}/search.json", broken))))
    assert len(items) == 2
    assert spider.counters["malformed"] == 1 and spider.finished_without_loss


def test_a_source_without_forum_url_asks_for_nothing() -> None:
    spec = SourceSpec(name="no-forum", kind="discourse")
    spider = DiscourseSpider(source=spec)
    assert started(spider) == []
    assert spider.counters["malformed"] == 1


# ---------------------------------------------------------------------- real crawls, end to end


def forum_handler(extra: list[dict[str, Any]]) -> Any:
    """A forum under /forum: latest posts with inclusive `before`, search, and single posts."""
    recorded = load("posts_latest.json")["latest_posts"]
    search = json.loads((DATA / "discourse/search.json").read_text(encoding="utf-8"))

    def handler(request: Seen) -> Reply:
        posts = sorted([*extra, *recorded], key=lambda p: -int(p["id"]))
        if request.path == "/forum/posts.json":
            before = int(request.query.get("before", 10**9))
            return Reply.json({"latest_posts": [p for p in posts if p["id"] <= before][:2]})
        if request.path == "/forum/search.json":
            if request.query.get("page") == "1":
                return Reply.json(search)
            return Reply.json({"posts": [], "topics": [], "grouped_search_result": {}})
        if request.path.startswith("/forum/posts/"):
            wanted = int(request.path.rsplit("/", 1)[1].removesuffix(".json"))
            return Reply.json(next(p for p in posts if p["id"] == wanted))
        return Reply(status=404, body="not found")

    return handler


def test_latest_and_search_crawls_store_posts_and_advance(sqlite_url: str, tmp_path: Path) -> None:
    extra: list[dict[str, Any]] = []
    with ScriptedServer(forum_handler(extra)) as server:
        base = server.url("/forum")
        sources = [
            {"name": "forum-latest", "kind": "discourse", "brand": "Forum", "base_url": base},
            {
                "name": "forum-search",
                "kind": "discourse",
                "brand": "Forum",
                "base_url": base,
                "query": "discourse",
            },
        ]
        brand = BrandConfig(name="Forum", keywords=["holla", "discourse", "site feedback"])
        settings = Settings(
            data_dir=tmp_path / "data",
            brands=[brand],
            sources=[SourceConfig.model_validate(s) for s in sources],
        )
        latest, searched = run_crawls(settings=settings)
        # Two posts a page: 15, 14 | 14, 10 | 10, 2 | 2 (the boundary post repeats, then the end).
        # The latest posts of the forum are all kept (its own forum); search hits are matched.
        assert (latest.status, latest.new, latest.skipped) == ("ok", 4, 0), latest
        befores = [r.query.get("before") for r in server.hits("/forum/posts.json")]
        assert befores == [None, "14", "10", "2"]
        assert cursor_of("forum-latest") == {"last_post_id": 15}
        # Search: three hits read in full, page 2 empty; posts already stored are updated.
        assert (searched.status, searched.new, searched.updated) == ("ok", 0, 2), searched
        assert searched.skipped == 1
        assert cursor_of("forum-search") == {"last_post_id": 15}

        newer = {**latest_post(15), "id": 16, "post_number": 3, "reply_to_post_number": 2}
        newer["cooked"] = "<p>Holla back &amp; welcome 🎉</p>"
        extra.append(newer)
        asked = len(server.hits("/forum/posts.json"))
        [again] = run_crawls(["forum-latest"], settings=settings)
        assert (again.status, again.new, again.updated) == ("ok", 1, 0), again
        assert len(server.hits("/forum/posts.json")) == asked + 1  # the first page was enough
    assert cursor_of("forum-latest") == {"last_post_id": 16}
    with session_scope() as session:
        rows = session.execute(select(Mention).order_by(col(Mention.created_at))).scalars().all()
    host = f"127.0.0.1:{server.port}/forum"
    assert [r.external_id for r in rows] == [
        f"{host}/t/2/1",
        f"{host}/t/7/1",
        f"{host}/t/11/1",
        f"{host}/t/11/2",
        f"{host}/t/11/3",
    ]
    reply = rows[-1]
    assert reply.clean_text == "Holla back & welcome 🎉"
    assert reply.parent_external_id == f"{host}/t/11/2"
    assert reply.url == f"{base}/t/this-is-an-uncategorized-title/11/3"


def cursor_of(name: str) -> dict[str, Any]:
    with session_scope() as session:
        row = get_source(session, name=name)
        assert row is not None
        return dict(row.cursor)
