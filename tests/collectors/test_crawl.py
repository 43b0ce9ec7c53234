"""End to end: real Scrapy crawls in subprocesses against a scripted server on 127.0.0.1.

Each test checks what lands in the database (a real SQLite file both processes open): no
duplicates, no gaps, the cursor where it should be, and kill -9 / restart safety.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from collectors.crawl import (
    crawl_command,
    preflight,
    run_crawls,
    source_lock,
    sync_from_settings,
)
from collectors.spiders.base import MentionSpider
from storage.db import session_scope
from storage.models import Mention, Source
from storage.queries import get_source
from storage.types import utcnow
from tests.collectors.support import DATA, FakeHnSearch, Reply, ScriptedServer, wait_until
from tocsin.config import Secrets, Settings

BRAND = {"name": "Acme Air", "keywords": ["acme air"], "excluded_terms": ["acme air fryer"]}
T0 = int(time.time()) - 86_400  # posts of yesterday: inside the first run's window


def settings_for(tmp_path: Path, *sources: dict[str, Any]) -> Settings:
    return Settings.model_validate(
        {"data_dir": tmp_path / "data", "brands": [BRAND], "sources": list(sources)}
    )


def hn_source(server: ScriptedServer, **options: Any) -> dict[str, Any]:
    return {
        "name": "acme-hn",
        "kind": "hackernews",
        "brand": "Acme Air",
        "query": "acme air",
        "base_url": server.url(),
        "options": {"hits_per_page": 10, **options},
    }


def mention_ids(platform: str) -> list[str]:
    with session_scope() as session:
        stmt = select(col(Mention.external_id)).where(col(Mention.platform) == platform)
        return list(session.execute(stmt).scalars())


def source_row(name: str) -> Source:
    with session_scope() as session:
        row = get_source(session, name=name)
        assert row is not None
        return row


def test_hn_crawl_through_429_500_and_a_slow_page(sqlite_url: str, tmp_path: Path) -> None:
    api = FakeHnSearch()
    api.add(45, start_id=1000, start_time=T0)
    assert api.script is not None
    api.script.queue("page=1", Reply(status=429, headers={"Retry-After": "1"}))
    api.script.queue("page=2", Reply(status=500, body="oops"))
    api.script.queue("page=3", Reply.json({"hits": []}, delay=4))  # past the 1 s timeout

    first_page_served: list[bool] = []

    def quota_spent_on_page0(request: Any) -> Reply:
        reply = api(request)
        if request.query.get("page") == "0" and not first_page_served:
            first_page_served.append(True)
            reply.headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"})
        return reply

    with ScriptedServer(quota_spent_on_page0) as server:
        settings = settings_for(tmp_path, hn_source(server, timeout_seconds=1, retries=2))
        [summary] = run_crawls(settings=settings)
        assert (summary.status, summary.new, summary.errors) == ("ok", 45, 0), summary
        asked = server.hits("/search_by_date")
        page1 = [r for r in asked if r.query.get("page") == "1"]
        assert page1[0].at - asked[0].at >= 1.0  # quota spent on page 0: waited for the reset
        assert len(page1) == 2 and page1[1].at - page1[0].at >= 1.0  # waited for Retry-After
        assert sorted(mention_ids("hackernews")) == [str(i) for i in range(1000, 1045)]
        assert source_row("acme-hn").cursor == {"created_at_i": T0 + 44}
        assert source_row("acme-hn").last_error is None

        api.add(5, start_id=2000, start_time=T0 + 100)
        api.add(1, start_id=3000, start_time=T0 - 100)  # indexed late, within the overlap
        [again] = run_crawls(settings=settings)
        last = server.hits("/search_by_date")[-1]
        assert f"created_at_i>={T0 + 44 - 300}" in last.query["numericFilters"]
        assert (again.status, again.new, again.updated) == ("ok", 6, 45)
    ids = mention_ids("hackernews")
    assert len(ids) == len(set(ids)) == 51
    assert source_row("acme-hn").cursor == {"created_at_i": T0 + 104}


def test_malformed_page_keeps_the_cursor_and_the_next_run_fills_the_gap(
    sqlite_url: str, tmp_path: Path
) -> None:
    api = FakeHnSearch()
    api.add(30, start_id=1, start_time=T0)
    assert api.script is not None
    api.script.queue("page=1", Reply(body='{"hits": [{"objectID": "7", "crea', headers={}))
    with ScriptedServer(api) as server:
        settings = settings_for(tmp_path, hn_source(server))
        [first] = run_crawls(settings=settings)
        assert first.status == "partial" and first.errors == 1 and first.new == 10
        assert "malformed payload" in first.message and server.url() in first.message
        row = source_row("acme-hn")
        assert row.cursor == {} and row.last_error and "invalid JSON" in row.last_error
        [second] = run_crawls(settings=settings)
        assert (second.status, second.new, second.updated) == ("ok", 20, 10)
    assert len(set(mention_ids("hackernews"))) == 30
    assert source_row("acme-hn").cursor == {"created_at_i": T0 + 29}


def test_html_error_page_and_lasting_503_are_counted_and_the_rest_goes_on(
    sqlite_url: str, tmp_path: Path
) -> None:
    feed = (DATA / "rss" / "news_search.rss").read_bytes()
    error_page = (DATA / "rss" / "error_page.html").read_bytes()

    def handler(request: Any) -> Reply:
        if request.path == "/proxied.rss":  # a proxy's error page, served with 200
            return Reply(body=error_page, headers={"Content-Type": "text/html"})
        if request.path == "/down.rss":
            return Reply(status=503, body="down")
        return Reply(body=feed, headers={"Content-Type": "application/rss+xml", "ETag": '"v1"'})

    with ScriptedServer(handler) as server:
        source = {
            "name": "acme-news",
            "kind": "rss",
            "brand": "Acme Air",
            "base_url": server.url("/news.rss"),
            "options": {
                "feeds": [server.url("/proxied.rss"), server.url("/down.rss")],
                "retries": 1,
            },
        }
        [summary] = run_crawls(settings=settings_for(tmp_path, source))
        assert len(server.hits("/down.rss")) == 2  # retried once, then given up
    assert (summary.status, summary.new, summary.errors) == ("partial", 2, 2)
    assert "(+1 more)" in summary.message
    row = source_row("acme-news")
    assert row.etag is None and row.cursor == {}  # nothing advanced: the next run reads all
    assert row.last_error is not None and "/proxied.rss" in row.last_error + summary.message


def test_long_retry_after_stops_the_source_until_not_before(
    sqlite_url: str, tmp_path: Path
) -> None:
    api = FakeHnSearch()
    api.add(25, start_id=1, start_time=T0)
    assert api.script is not None
    api.script.queue("page=1", Reply(status=429, headers={"Retry-After": "3600"}))
    with ScriptedServer(api) as server:
        settings = settings_for(tmp_path, hn_source(server))
        [summary] = run_crawls(settings=settings)
        assert summary.status == "rate_limited" and summary.new == 10
        row = source_row("acme-hn")
        assert row.not_before is not None
        assert timedelta(minutes=55) < row.not_before - utcnow() <= timedelta(minutes=61)
        assert row.cursor == {}
        asked = len(server.requests)
        [later] = run_crawls(settings=settings)
        assert later.status == "deferred" and "rate limited until" in later.message
        assert len(server.requests) == asked  # the next run respects not_before


def test_spent_quota_header_keeps_the_page_then_stops(sqlite_url: str, tmp_path: Path) -> None:
    api = FakeHnSearch()
    api.add(25, start_id=1, start_time=T0)
    assert api.script is not None
    page0 = api._answer  # the real first page, with quota headers added

    def spent(request: Any) -> Reply:
        reply = page0(request)
        reply.headers.update({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1800"})
        return reply

    with ScriptedServer(lambda r: spent(r) if r.query.get("page") == "0" else api(r)) as server:
        settings = settings_for(tmp_path, hn_source(server))
        [summary] = run_crawls(settings=settings)
        assert summary.status == "rate_limited" and summary.new == 10
        assert not [r for r in server.requests if r.query.get("page") == "1"]
    assert source_row("acme-hn").not_before is not None


def test_kill_9_mid_crawl_then_restart_loses_and_duplicates_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    api = FakeHnSearch(delay=0.15)
    api.add(200, start_id=10_000, start_time=T0)
    with ScriptedServer(api) as server:
        settings = settings_for(tmp_path, hn_source(server, batch_size=10))
        sync_from_settings(settings)
        command = crawl_command("acme-hn", url=sqlite_url, lock_dir=tmp_path / "locks")
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert wait_until(lambda: len(mention_ids("hackernews")) >= 30, timeout=60)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        stored = len(mention_ids("hackernews"))
        assert 30 <= stored < 200
        assert source_row("acme-hn").cursor == {}  # not advanced by the killed crawl
        api.delay = 0
        [summary] = run_crawls(settings=settings)
        assert summary.status == "ok"
        assert summary.new == 200 - stored and summary.updated == stored
    ids = mention_ids("hackernews")
    assert sorted(ids) == [str(i) for i in range(10_000, 10_200)]
    assert source_row("acme-hn").cursor == {"created_at_i": T0 + 199}


def test_rss_conditional_get_and_matching(sqlite_url: str, tmp_path: Path) -> None:
    feed = (DATA / "rss" / "news_search.rss").read_bytes()

    def handler(request: Any) -> Reply:
        if request.headers.get("if-none-match") == '"v1"':
            return Reply(status=304)
        return Reply(body=feed, headers={"Content-Type": "application/rss+xml", "ETag": '"v1"'})

    with ScriptedServer(handler) as server:
        source = {
            "name": "acme-news",
            "kind": "rss",
            "brand": "Acme Air",
            "base_url": server.url("/rss/search?q={query}"),
            "query": "acme air",
        }
        settings = settings_for(tmp_path, source)
        [first] = run_crawls(settings=settings)
        assert (first.status, first.new, first.skipped) == ("ok", 2, 2)
        assert server.requests[0].query == {"q": "acme air"}
        assert source_row("acme-news").etag == '"v1"'
        [second] = run_crawls(settings=settings)
        assert (second.status, second.new, second.updated) == ("ok", 0, 0)
        assert server.requests[-1].headers["if-none-match"] == '"v1"'
    with session_scope() as session:
        reasons = session.execute(select(col(Mention.matched_reason))).scalars().all()
    assert set(reasons) == {'keyword "acme air"'}


def test_appstore_reviews_end_to_end(sqlite_url: str, tmp_path: Path) -> None:
    pages = {
        "/us/rss/customerreviews/page=1/id=1234567890/sortby=mostrecent/json": "page1",
        "/us/rss/customerreviews/page=2/id=1234567890/sortby=mostrecent/json": "page2",
    }

    def handler(request: Any) -> Reply:
        name = pages.get(request.path)
        if name is None:
            return Reply(status=404)
        body = (DATA / "appstore" / f"customerreviews_us_{name}.json").read_bytes()
        return Reply(body=body, headers={"Content-Type": "application/json"})

    with ScriptedServer(handler) as server:
        source = {
            "name": "acme-ios",
            "kind": "appstore",
            "brand": "Acme Air",
            "query": "1234567890",
            "base_url": server.url(),
        }
        [summary] = run_crawls(settings=settings_for(tmp_path, source))
        assert (summary.status, summary.new) == ("ok", 5)
    with session_scope() as session:
        ratings = session.execute(select(col(Mention.rating)).order_by(col(Mention.external_id)))
        assert list(ratings.scalars()) == [3.0, 4.0, 2.0, 5.0, 1.0]
    assert source_row("acme-ios").cursor == {"latest": {"us": "2026-11-20T16:41:12+00:00"}}


def test_replay_over_http_takes_only_new_lines(sqlite_url: str, tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"

    def append(*ids: int) -> None:
        with feed.open("a", encoding="utf-8") as out:
            for n in ids:
                out.write(json.dumps({"id": n, "text": f"Acme Air delay {n}", "platform": "x"}))
                out.write("\n")

    append(1, 2, 3)
    with ScriptedServer(lambda r: Reply(body=feed.read_bytes())) as server:
        source = {
            "name": "demo",
            "kind": "replay",
            "brand": "Acme Air",
            "base_url": server.url("/feed.jsonl"),
        }
        settings = settings_for(tmp_path, source)
        assert run_crawls(settings=settings)[0].new == 3
        append(4, 5)
        again = run_crawls(settings=settings)[0]
        assert (again.status, again.new, again.updated) == ("ok", 2, 0)
    assert sorted(mention_ids("x")) == ["1", "2", "3", "4", "5"]


class NeedsKey(MentionSpider):
    name = "needs_key"
    platform = "test"
    required_secrets = ("youtube_api_key",)


def test_missing_credentials_unknown_kind_and_busy_source(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = Source(name="yt", kind="needs_key")
    refusal = preflight(row, NeedsKey, Secrets(), utcnow())
    assert refusal is not None and refusal.status == "skipped: no credentials"
    assert refusal.message == "set TOCSIN_YOUTUBE_API_KEY"
    monkeypatch.setenv("TOCSIN_YOUTUBE_API_KEY", "k")
    assert preflight(row, NeedsKey, Secrets(), utcnow()) is None

    monkeypatch.delenv("TOCSIN_YOUTUBE_API_KEY")
    reddit = {"name": "acme-reddit", "kind": "reddit", "query": "acme air"}
    [skipped] = run_crawls(settings=settings_for(tmp_path, reddit))
    assert skipped.status == "skipped: no credentials"
    assert skipped.message == "set TOCSIN_REDDIT_CLIENT_ID, TOCSIN_REDDIT_CLIENT_SECRET"

    odd = {"name": "odd", "kind": "no_such_kind", "base_url": "http://127.0.0.1:9"}
    [summary] = run_crawls(settings=settings_for(tmp_path, odd))
    assert summary.status == "failed" and "unknown source kind" in summary.message
    with pytest.raises(LookupError, match="nope"):
        run_crawls(["nope"], settings=settings_for(tmp_path, odd))

    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": 1, "text": "Acme Air"}\n', encoding="utf-8")
    demo = {"name": "demo", "kind": "replay", "base_url": feed.as_uri(), "enabled": False}
    settings = settings_for(tmp_path, demo)
    assert run_crawls(settings=settings) == []  # off the schedule
    with source_lock(settings.data_dir / "locks", "demo") as locked:
        assert locked
        [busy] = run_crawls(["demo"], settings=settings)  # named: runs even though disabled
        assert busy.status == "busy"  # ... but not while another crawl of it holds the lock


def test_crawl_into_postgresql(postgres_url: str, tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    posts = [{"id": n, "text": f"Acme Air post {n}", "author": {"handle": "ann"}} for n in range(3)]
    feed.write_text("".join(json.dumps(p) + "\n" for p in posts), encoding="utf-8")
    source = {"name": "demo", "kind": "replay", "brand": "Acme Air", "base_url": feed.as_uri()}
    [summary] = run_crawls(settings=settings_for(tmp_path, source))
    assert (summary.status, summary.new) == ("ok", 3)
    assert sorted(mention_ids("replay")) == ["0", "1", "2"]
    assert source_row("demo").cursor["last_id"] == "2"
