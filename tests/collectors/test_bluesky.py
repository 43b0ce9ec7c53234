"""Bluesky spider on the atproto SDK's recorded post view and lexicon-shaped search replies."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import scrapy
from sqlalchemy import select
from sqlmodel import col
from twisted.python.failure import Failure

from collectors.crawl import run_crawls
from collectors.items import MentionItem
from collectors.spiders.base import SourceSpec
from collectors.spiders.bluesky import BlueskySpider, alt_texts, record_key
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

SHARED = Path("/work/shared/payloads/bluesky")
PDS = "https://pds.example"
SEARCH = f"{PDS}/xrpc/app.bsky.feed.searchPosts"
JSON = {"Content-Type": "application/json"}
SECRETS = {"bluesky_handle": "acme-monitor.bsky.social", "bluesky_app_password": "abcd-efgh-ijkl"}


def make(
    query: str = "acme air", cursor: dict[str, Any] | None = None, **options: Any
) -> BlueskySpider:
    options.setdefault("fetch_profiles", False)  # the profile lookup has its own tests
    spec = SourceSpec(
        name="acme-bluesky",
        kind="bluesky",
        base_url=PDS,
        query=query,
        options=options,
        cursor=cursor or {},
        secrets=dict(SECRETS),
    )
    return BlueskySpider(source=spec)


def split(out: list[Any]) -> tuple[list[MentionItem], list[scrapy.Request]]:
    return (
        [o for o in out if isinstance(o, MentionItem)],
        [o for o in out if isinstance(o, scrapy.Request)],
    )


def signed_in(spider: BlueskySpider) -> scrapy.Request:
    session = json_response(
        f"{PDS}/xrpc/com.atproto.server.createSession", DATA / "bluesky/createSession.json"
    )
    _, [search] = split(list(spider.parse_session(session)))
    return search


def recorded_post_view() -> dict[str, Any]:
    thread = json.loads((SHARED / "atproto-thread_view_post_with_embed_media.json").read_text())
    return thread["thread"]["post"]  # type: ignore[no-any-return]


def test_image_only_post_is_kept_with_every_field() -> None:
    spider = make()
    [post], _ = split(list(spider.parse(json_response(SEARCH, {"posts": [recorded_post_view()]}))))
    assert post.platform == "bluesky"
    assert (
        post.external_id == "at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3kaheyt6vpc22"
    )
    assert post.url == "https://bsky.app/profile/test.marshal.dev/post/3kaheyt6vpc22"
    assert post.text == "" and post.clean_text == ""  # images with no alt text, a quote
    assert post.lang == "en"
    assert post.created_at == datetime(2023, 9, 28, 12, 49, 36, 735000, tzinfo=UTC)
    assert (post.likes, post.reposts, post.replies) == (0, 0, 0)
    assert post.parent_external_id is None and post.thread_external_id == post.external_id
    assert post.title is None and post.deleted is False
    assert post.rating is None and post.observed_at is None  # set by storage: now
    author = post.author
    assert author is not None
    assert (author.handle, author.external_id, author.display_name) == (
        "test.marshal.dev",
        "did:plc:kvwvcn5iqfooopmyzvb4qzba",
        "Python SDK",
    )
    assert author.followers is None and author.verified is False
    assert (
        post.raw is not None and post.raw["embed"]["$type"] == "app.bsky.embed.recordWithMedia#view"
    )
    assert spider.new_cursor == {"newest_indexed_at": "2023-09-28T12:49:36.735000Z"}


def test_records_with_unknown_fields_and_naive_times() -> None:
    extended = json.loads((SHARED / "atproto-extended_post_record.json").read_text())
    view = {
        "uri": extended["uri"],
        "cid": extended["cid"],
        "author": {"did": "did:plc:kvwvcn5iqfooopmyzvb4qzba", "handle": "test.marshal.dev"},
        "record": extended["value"],  # carries an unknown "lol" field
    }
    [post], _ = split(list(make().parse(json_response(SEARCH, {"posts": [view]}))))
    assert post.clean_text == "regress test"
    assert post.created_at == datetime(2023, 7, 21, 1, 33, 51, 481951, tzinfo=UTC)
    assert post.likes is None and post.author is not None and post.author.display_name is None


def test_alt_text_is_the_clean_text_of_an_image_only_post() -> None:
    view = recorded_post_view()
    view["record"]["embed"]["media"]["images"][0]["alt"] = "Photo of a cancelled flight board"
    [post], _ = split(list(make().parse(json_response(SEARCH, {"posts": [view]}))))
    assert post.text == "" and post.clean_text == "Photo of a cancelled flight board"
    assert alt_texts(
        {"$type": "app.bsky.embed.images", "images": [{"alt": " A "}, {"alt": ""}]}
    ) == ["A"]
    assert alt_texts(None) == []


def test_sign_in_then_search_pages_until_the_end() -> None:
    spider = make(lang="en")
    [session] = started(spider)
    assert session.method == "POST"
    assert session.url == f"{PDS}/xrpc/com.atproto.server.createSession"
    assert json.loads(session.body) == {
        "identifier": "acme-monitor.bsky.social",
        "password": "abcd-efgh-ijkl",
    }
    search = signed_in(spider)
    assert search.url == f"{SEARCH}?q=acme+air&sort=latest&limit=100&lang=en"
    assert search.headers["Authorization"] == b"Bearer test-access-jwt.not-a-real-token"
    items, [page2] = split(
        list(spider.parse(json_response(search.url, DATA / "bluesky/searchPosts_page1.json")))
    )
    assert "&cursor=2" in page2.url
    jane, reply = items
    assert jane.clean_text.endswith("Stuck at the gate 😤") and "&" in jane.clean_text
    assert jane.author is not None and jane.author.display_name == "Jane 🧳"
    assert (jane.likes, jane.reposts, jane.replies) == (31, 12, 4)
    assert reply.lang == "fr"
    assert reply.author is not None and reply.author.handle == "did:plc:acmefan000000000000000"
    assert reply.url == "https://bsky.app/profile/did:plc:acmefan000000000000000/post/3lbqyzzzaaa2b"
    assert reply.parent_external_id.endswith("/3lbqz1parentp")  # type: ignore[union-attr]
    assert reply.thread_external_id.endswith("/3lbqz0rootpost")  # type: ignore[union-attr]
    last, none = split(
        list(spider.parse(json_response(page2.url, DATA / "bluesky/searchPosts_page2.json")))
    )
    assert none == []
    [news] = last
    assert news.author is not None and news.author.verified is True
    assert spider.new_cursor == {"newest_indexed_at": "2026-11-20T09:15:03.481000Z"}


def test_next_crawl_sends_since_and_stops_at_known_posts() -> None:
    spider = make(cursor={"newest_indexed_at": "2026-11-20T09:01:45.002000Z"})
    search = signed_in(spider)
    assert "since=2026-11-20T09%3A01%3A45.002000Z" in search.url
    items, requests = split(
        list(spider.parse(json_response(search.url, DATA / "bluesky/searchPosts_page1.json")))
    )
    assert len(items) == 2 and requests == []  # the second post was seen: no further page


def test_page_cap_before_the_cursor_is_counted() -> None:
    spider = make(cursor={"newest_indexed_at": "2001-01-01T00:00:00.000000Z"}, max_pages=1)
    page = json_response(SEARCH, DATA / "bluesky/searchPosts_page1.json")
    items, requests = split(list(spider.parse(page)))
    assert len(items) == 2 and requests == [] and spider.counters["pages_capped"] == 1


def test_each_page_asks_for_its_authors_follower_counts() -> None:
    spider = make(fetch_profiles=True)
    search = signed_in(spider)
    page = json_response(search.url, DATA / "bluesky/searchPosts_page1.json")
    items, [lookup, next_page] = split(list(spider.parse(page)))
    assert items == []  # they wait for the profiles
    assert "cursor=2" in next_page.url
    assert lookup.url == (
        f"{PDS}/xrpc/app.bsky.actor.getProfiles"
        "?actors=did%3Aplc%3Atravelerjane00000000000&actors=did%3Aplc%3Aacmefan000000000000000"
    )
    assert lookup.headers["Authorization"] == b"Bearer test-access-jwt.not-a-real-token"
    profiles = json_response(lookup.url, DATA / "bluesky/getProfiles.json")
    jane, fan = list(spider.parse_profiles(profiles, **lookup.cb_kwargs))
    assert jane.author is not None and jane.author.followers == 48211
    assert jane.author.bio == "Travel writer. Carry-on only. Press: jane@travels.example"
    assert fan.author is not None and fan.author.followers == 3
    # A lookup that fails keeps the posts, without counts, and says so.
    failure = Failure(OSError("connection refused"))
    failure.request = lookup  # type: ignore[attr-defined]
    kept = list(spider.lookup_failed(failure))
    assert kept == lookup.cb_kwargs["items"] and spider.counters["errors"] == 1
    assert spider.finished_without_loss


def test_refused_app_password_is_one_clear_line(caplog: pytest.LogCaptureFixture) -> None:
    spider = make()
    refused = response_for(
        f"{PDS}/xrpc/com.atproto.server.createSession",
        '{"error":"AuthenticationRequired","message":"Invalid identifier or password"}',
        status=401,
    )
    with caplog.at_level(logging.ERROR):
        assert list(spider.parse_session(refused)) == []
    [line] = [r.getMessage() for r in caplog.records]
    assert "refused the sign-in (HTTP 401)" in line and "abcd-efgh-ijkl" not in line
    assert not spider.finished_without_loss


def test_a_post_with_a_bad_uri_is_skipped_and_counted() -> None:
    broken = recorded_post_view()
    broken["uri"] = "at://did:plc:kvwvcn5iqfooopmyzvb4qzba"
    spider = make()
    items, _ = split(
        list(spider.parse(json_response(SEARCH, {"posts": [broken, recorded_post_view()]})))
    )
    assert len(items) == 1 and spider.counters["malformed"] == 1 and spider.finished_without_loss
    with pytest.raises(ValueError):
        record_key("at://did:plc:x/app.bsky.feed.post/")


# ---------------------------------------------------------------------- a real crawl, end to end


def allow_post(server: ScriptedServer, bodies: list[bytes]) -> None:
    """Let the scripted server answer POSTs like GETs (their bodies kept in `bodies`)."""
    handler = server.httpd.RequestHandlerClass

    def do_post(self: Any) -> None:
        bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        handler.do_GET(self)  # type: ignore[attr-defined]

    handler.do_POST = do_post  # type: ignore[attr-defined]


def test_crawl_signs_in_pages_and_sends_since_next_time(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOCSIN_BLUESKY_HANDLE", "acme-monitor.bsky.social")
    monkeypatch.setenv("TOCSIN_BLUESKY_APP_PASSWORD", "abcd-efgh-ijkl")
    page1 = json.loads((DATA / "bluesky/searchPosts_page1.json").read_text(encoding="utf-8"))
    page2 = json.loads((DATA / "bluesky/searchPosts_page2.json").read_text(encoding="utf-8"))

    def handler(request: Seen) -> Reply:
        if request.path == "/xrpc/com.atproto.server.createSession":
            return Reply(
                body=(DATA / "bluesky/createSession.json").read_bytes(),
                headers={"Content-Type": "application/json"},
            )
        if request.headers.get("authorization") != "Bearer test-access-jwt.not-a-real-token":
            return Reply.json({"error": "AuthMissing"}, status=401)
        if request.path == "/xrpc/app.bsky.actor.getProfiles":
            return Reply(body=(DATA / "bluesky/getProfiles.json").read_bytes(), headers=JSON)
        if request.path != "/xrpc/app.bsky.feed.searchPosts":
            return Reply(status=404)
        return Reply.json(page2 if request.query.get("cursor") == "2" else page1)

    bodies: list[bytes] = []
    with ScriptedServer(handler) as server:
        allow_post(server, bodies)
        source = {
            "name": "acme-bsky",
            "kind": "bluesky",
            "brand": "Acme Air",
            "query": "acme air",
            "base_url": server.url(),
        }
        brand = BrandConfig(name="Acme Air", keywords=["acme air"], handles=["@acmeair.example"])
        settings = Settings(
            data_dir=tmp_path / "data",
            brands=[brand],
            sources=[SourceConfig.model_validate(source)],
        )
        [first] = run_crawls(settings=settings)
        assert (first.status, first.new, first.errors) == ("ok", 3, 0), first
        assert json.loads(bodies[0]) == {
            "identifier": "acme-monitor.bsky.social",
            "password": "abcd-efgh-ijkl",
        }
        assert [r.query.get("cursor") for r in server.hits("/xrpc/app.bsky.feed.searchPosts")] == [
            None,
            "2",
        ]
        assert cursor_of("acme-bsky") == {"newest_indexed_at": "2026-11-20T09:15:03.481000Z"}

        fresh = copy.deepcopy(page1["posts"][0])
        fresh["uri"] = fresh["uri"].replace("3lbqz2kxyz22a", "3lbr0newpost2")
        fresh["record"]["text"] = "Update: Acme Air rebooked me 🙏"
        fresh["indexedAt"] = "2026-11-20T10:00:00.000Z"
        page1["posts"].insert(0, fresh)
        [second] = run_crawls(settings=settings)
        assert (second.status, second.new, second.updated) == ("ok", 1, 2), second
        last = server.hits("/xrpc/app.bsky.feed.searchPosts")[-1]
        assert (
            last.query.get("since") == "2026-11-20T09:15:03.481000Z" and "cursor" not in last.query
        )
    assert cursor_of("acme-bsky") == {"newest_indexed_at": "2026-11-20T10:00:00.000000Z"}
    with session_scope() as session:
        rows = session.execute(select(Mention)).scalars().all()
    assert len(rows) == 4
    assert {r.url for r in rows} >= {
        "https://bsky.app/profile/jane.travels.example/post/3lbr0newpost2"
    }
    jane = next(r for r in rows if r.external_id.endswith("3lbqz2kxyz22a"))
    assert jane.matched_reason == "handle @acmeair.example" and jane.likes == 31
    with session_scope() as session:
        pairs = session.execute(select(col(Author.handle), col(Author.followers))).all()
    followers = {handle: count for handle, count in pairs}
    assert followers == {
        "jane.travels.example": 48211,
        "did:plc:acmefan000000000000000": 3,
        "pilot-news.example": None,  # no profile served for it
    }


def cursor_of(name: str) -> dict[str, Any]:
    with session_scope() as session:
        row = get_source(session, name=name)
        assert row is not None
        return dict(row.cursor)
