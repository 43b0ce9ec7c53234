"""Reddit spider on the PRAW cassettes recorded against oauth.reddit.com."""

from __future__ import annotations

import base64
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

from collectors.crawl import run_crawls
from collectors.items import MentionItem
from collectors.spiders.base import SourceSpec
from collectors.spiders.reddit import RedditSpider
from storage.db import session_scope
from storage.models import Mention
from storage.queries import get_source
from tests.collectors.support import (
    Reply,
    ScriptedServer,
    Seen,
    json_response,
    response_for,
    started,
)
from tocsin.config import BrandConfig, Settings, SourceConfig

SHARED = Path("/work/shared/payloads/reddit")
API = "https://oauth.reddit.com"
SECRETS = {"reddit_client_id": "app-id", "reddit_client_secret": "app-secret"}


def cassette(name: str, index: int) -> Any:
    """The JSON body of the `index`-th interaction of a Betamax cassette."""
    data = json.loads((SHARED / name).read_text(encoding="utf-8"))
    return json.loads(data["interactions"][index]["response"]["body"]["string"])


def make(query: str = "praw", cursor: dict[str, Any] | None = None, **options: Any) -> RedditSpider:
    spec = SourceSpec(
        name="acme-reddit",
        kind="reddit",
        query=query,
        options=options,
        cursor=cursor or {},
        secrets=dict(SECRETS),
    )
    return RedditSpider(source=spec)


def split(out: list[Any]) -> tuple[list[MentionItem], list[scrapy.Request]]:
    return (
        [o for o in out if isinstance(o, MentionItem)],
        [o for o in out if isinstance(o, scrapy.Request)],
    )


def search_listing() -> dict[str, Any]:
    return cassette("praw-TestSubreddit.test_search.json", 1)  # type: ignore[no-any-return]


def test_search_listing_gives_every_field_of_a_submission() -> None:
    spider = make()
    url = f"{API}/search?q=praw&sort=new"
    items, requests = split(list(spider.parse(json_response(url, search_listing()))))
    assert len(items) == 6 and not requests  # `after` is null: the last page
    post = items[2]
    assert post.platform == "reddit"
    assert post.external_id == "t3_3b4erh"
    assert post.url == (
        "https://www.reddit.com/r/learnpython/comments/3b4erh/collecting_submission_data_from_reddit/"
    )
    assert post.title == "Collecting submission data from Reddit"
    assert post.text.startswith("First off, I don't want to use PRAW.")
    assert post.clean_text.startswith(
        "Collecting submission data from Reddit\n\nFirst off, I don't want to use PRAW."
    )
    assert post.lang is None
    assert post.author is not None and post.author.handle == "Ouiski"
    assert post.author.followers is None and not post.author.verified
    assert post.created_at == datetime.fromtimestamp(1435268798, UTC)
    assert (post.likes, post.reposts, post.replies) == (2, None, 13)
    assert post.parent_external_id is None and post.thread_external_id == "t3_3b4erh"
    assert post.deleted is False
    assert post.rating is None and post.observed_at is None  # set by storage: now
    assert post.raw is not None and post.raw["subreddit"] == "learnpython"


def test_selftext_html_becomes_text_and_unicode_urls_survive() -> None:
    items, _ = split(list(make().parse(json_response(f"{API}/search", search_listing()))))
    solved = items[0]
    # selftext_html: headings, links, <pre> blocks and entities turned into plain text.
    assert "<h1>" not in solved.clean_text and "&quot;" not in solved.clean_text
    assert "solved\n\nProblem solved with this:" in solved.clean_text
    assert 'print("connexion…", end=" ")' in solved.clean_text
    japanese = items[5]
    assert japanese.url is not None and "たびたび話題になる" in japanese.url
    assert japanese.clean_text.startswith("たびたび話題になるサイドバーの閲覧中ユーザ数について")
    assert "?ref=search_posts" not in (japanese.url or "")


def test_deleted_comment_is_marked_deleted_without_author() -> None:
    listing = cassette("praw-TestComment.test_refresh__deleted_comment.json", 1)
    [comment], _ = split(list(make().parse(json_response(f"{API}/api/info", listing))))
    assert comment.external_id == "t1_d7ltvl0"
    assert comment.deleted is True
    assert comment.author is None  # "[deleted]" is not an account
    assert comment.title is None
    assert comment.parent_external_id == "t3_52o2fl" and comment.thread_external_id == "t3_52o2fl"
    assert comment.url == "https://www.reddit.com/comments/52o2fl/_/d7ltvl0/"
    assert comment.created_at == datetime.fromtimestamp(1473815863, UTC)
    assert comment.likes == 1 and comment.replies is None


def test_live_comment_uses_permalink_and_author_fullname() -> None:
    listing = cassette("praw-TestComment.test_notes.json", 1)
    [comment], _ = split(list(make().parse(json_response(f"{API}/api/info", listing))))
    assert comment.deleted is False
    assert comment.text == "test reply" and comment.clean_text == "test reply"
    assert comment.author is not None
    assert comment.author.handle == "Lil_SpazTest"
    assert comment.author.external_id == "t2_75u2lqkb"
    assert (
        comment.url
        == "https://www.reddit.com/r/<TEST_SUBREDDIT>/comments/uflrmv/test_post/i6yklz7/"
    )


@pytest.mark.parametrize(
    ("changes", "deleted"),
    [
        ({"selftext": "[removed]", "selftext_html": None}, True),
        ({"selftext": "[deleted]", "author": "[deleted]"}, True),
        ({"removed_by_category": "moderator"}, True),
        ({"author": "[deleted]"}, False),  # the account is gone, the post is still there
    ],
)
def test_removed_and_deleted_submissions(changes: dict[str, Any], deleted: bool) -> None:
    listing = search_listing()
    listing["data"]["children"] = [copy.deepcopy(listing["data"]["children"][1])]
    listing["data"]["children"][0]["data"].update(changes)
    [post], _ = split(list(make().parse(json_response(f"{API}/search", listing))))
    assert post.deleted is deleted
    if changes.get("author") == "[deleted]":
        assert post.author is None


def test_unknown_listing_kind_is_skipped_and_counted() -> None:
    listing = cassette("praw-TestSubreddits.test_stream.json", 1)  # subreddits (t5), not posts
    listing["data"]["children"] = (
        listing["data"]["children"][:3] + search_listing()["data"]["children"][:1]
    )
    spider = make()
    items, _ = split(list(spider.parse(json_response(f"{API}/r/x/new", listing))))
    assert [i.external_id for i in items] == ["t3_3gpbiu"]
    assert spider.counters["malformed"] == 3
    assert spider.finished_without_loss  # bad posts in a good page are not a loss


def test_start_asks_for_an_app_only_token_with_basic_auth() -> None:
    spider = make()
    [token_request] = started(spider)
    assert token_request.method == "POST"
    assert token_request.url == "https://www.reddit.com/api/v1/access_token"
    assert token_request.body == b"grant_type=client_credentials"
    expected = base64.b64encode(b"app-id:app-secret").decode()
    assert token_request.headers["Authorization"] == f"Basic {expected}".encode()


def test_token_reply_leads_to_the_search_listing() -> None:
    spider = make(subreddits=["redditdev", "learnpython"])
    token = cassette("praw-TestSubreddit.test_search.json", 0)
    _, [listing] = split(list(spider.parse_token(json_response(token_url(), token))))
    assert listing.url.startswith(f"{API}/r/redditdev+learnpython/search?")
    assert "restrict_sr=1" in listing.url and "sort=new" in listing.url and "q=praw" in listing.url
    assert listing.headers["Authorization"] == b"Bearer <ACCESS_TOKEN>"


def test_new_mode_reads_the_subreddit_listing() -> None:
    spider = make(query="", subreddits="AcmeAir")
    token = cassette("praw-TestSubreddit.test_search.json", 0)
    _, [listing] = split(list(spider.parse_token(json_response(token_url(), token))))
    assert listing.url.startswith(f"{API}/r/AcmeAir/new?limit=100&raw_json=1")


def test_comments_mode_reads_the_subreddit_comments() -> None:
    spider = make(query="", subreddits=["AcmeAir"], mode="comments")
    token = cassette("praw-TestSubreddit.test_search.json", 0)
    _, [listing] = split(list(spider.parse_token(json_response(token_url(), token))))
    assert listing.url.startswith(f"{API}/r/AcmeAir/comments?limit=100&raw_json=1")
    assert started(make(query="", mode="comments")) == []  # no subreddit: nothing to read


def test_refused_credentials_are_one_clear_line(caplog: pytest.LogCaptureFixture) -> None:
    spider = make()
    reply = response_for(token_url(), '{"message": "Unauthorized", "error": 401}', status=401)
    with caplog.at_level(logging.ERROR):
        assert list(spider.parse_token(reply)) == []
    assert not spider.finished_without_loss
    [line] = [r.getMessage() for r in caplog.records]
    assert "refused the app credentials (HTTP 401)" in line and "app-secret" not in line


def test_after_pages_until_the_cursor_is_reached() -> None:
    listing = search_listing()
    listing["data"]["after"] = "t3_4at068"
    spider = make()
    _, [next_page] = split(list(spider.parse(json_response(f"{API}/search", listing))))
    assert "after=t3_4at068" in next_page.url
    assert spider.new_cursor == {"newest_created_utc": 1458221634.0, "newest_fullname": "t3_4at068"}
    # Next crawl: the page holds posts at or before the cursor, so no further page is asked for.
    later = make(cursor=dict(spider.new_cursor))
    _, requests = split(list(later.parse(json_response(f"{API}/search", listing))))
    assert requests == []


def test_page_cap_before_the_cursor_is_logged_and_counted() -> None:
    listing = search_listing()
    listing["data"]["after"] = "t3_4at068"
    spider = make(cursor={"newest_created_utc": 1.0, "newest_fullname": "t3_old"}, max_pages=1)
    _, requests = split(list(spider.parse(json_response(f"{API}/search", listing))))
    assert requests == [] and spider.counters["pages_capped"] == 1


def test_html_error_page_is_a_loss() -> None:
    spider = make()
    page = response_for(
        f"{API}/search",
        "<html><body>Our CDN was unable to reach our servers</body></html>",
        status=200,
        headers={"Content-Type": "text/html"},
    )
    assert list(spider.parse(page)) == []
    assert spider.counters["malformed"] == 1 and not spider.finished_without_loss


def token_url() -> str:
    return "https://www.reddit.com/api/v1/access_token"


# ---------------------------------------------------------------------- a real crawl, end to end


def allow_post(server: ScriptedServer, bodies: list[bytes]) -> None:
    """Let the scripted server answer POSTs like GETs (their bodies kept in `bodies`)."""
    handler = server.httpd.RequestHandlerClass

    def do_post(self: Any) -> None:
        bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        handler.do_GET(self)  # type: ignore[attr-defined]

    handler.do_POST = do_post  # type: ignore[attr-defined]


def test_crawl_signs_in_pages_and_advances_the_cursor(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOCSIN_REDDIT_CLIENT_ID", "app-id")
    monkeypatch.setenv("TOCSIN_REDDIT_CLIENT_SECRET", "app-secret")
    children = search_listing()["data"]["children"]
    token = cassette("praw-TestSubreddit.test_search.json", 0)
    newer = copy.deepcopy(children[1])
    newer["data"].update(id="9zzzzz", name="t3_9zzzzz", created_utc=1460000000.0)
    newer["data"]["permalink"] = "/r/redditdev/comments/9zzzzz/praw_new_question/"
    pages = {None: (children[:3], "t3_3b4erh"), "t3_3b4erh": (children[3:], None)}

    def handler(request: Seen) -> Reply:
        if request.path == "/api/v1/access_token":
            return Reply.json(token)
        if (
            request.path != "/search"
            or request.headers.get("authorization") != "Bearer <ACCESS_TOKEN>"
        ):
            return Reply(status=404)
        posts, after = pages[request.query.get("after")]
        return Reply.json({"kind": "Listing", "data": {"children": posts, "after": after}})

    bodies: list[bytes] = []
    with ScriptedServer(handler) as server:
        allow_post(server, bodies)
        source = {
            "name": "acme-reddit",
            "kind": "reddit",
            "brand": "PRAW",
            "query": "praw",
            "base_url": server.url(),
        }
        settings = Settings(
            data_dir=tmp_path / "data",
            brands=[BrandConfig(name="PRAW", keywords=["praw"], excluded_terms=["OAuth2Util"])],
            sources=[SourceConfig.model_validate(source)],
        )
        [first] = run_crawls(settings=settings)
        assert (first.status, first.new, first.skipped, first.errors) == ("ok", 5, 1, 0), first
        [token_call] = server.hits("/api/v1/access_token")
        expected = base64.b64encode(b"app-id:app-secret").decode()
        assert token_call.headers["authorization"] == f"Basic {expected}"
        assert bodies == [b"grant_type=client_credentials"]
        assert [r.query.get("after") for r in server.hits("/search")] == [None, "t3_3b4erh"]
        assert stored_cursor("acme-reddit") == {
            "newest_created_utc": 1458221634.0,
            "newest_fullname": "t3_4at068",
        }
        # A new post arrives on top, and a moderator removes one already stored; the next crawl
        # stores the first, flags the second, and stops at the first page (known posts).
        removed = copy.deepcopy(children[1])
        removed["data"].update(selftext="[removed]", selftext_html=None)
        removed["data"]["removed_by_category"] = "moderator"
        pages[None] = ([newer, children[0], removed, children[2]], "t3_3b4erh")
        [second] = run_crawls(settings=settings)
        assert (second.status, second.new, second.updated, second.skipped) == ("ok", 1, 2, 1)
        assert len(server.hits("/search")) == 3
    with session_scope() as session:
        rows = session.execute(select(Mention).order_by(col(Mention.created_at))).scalars().all()
        assert len(rows) == 6 and len({r.external_id for r in rows}) == 6
        assert "t3_3gpbiu" not in {r.external_id for r in rows}  # excluded term
        newest = rows[-1]
        assert newest.external_id == "t3_9zzzzz"
        assert newest.url == "https://www.reddit.com/r/redditdev/comments/9zzzzz/praw_new_question/"
        assert newest.matched_reason == 'keyword "praw"'
        assert all(r.platform == "reddit" and r.source_id is not None for r in rows)
        gone = next(r for r in rows if r.external_id == "t3_3x4kt2")
        assert gone.deleted and gone.text == "" and gone.clean_text == ""
        assert [r.external_id for r in rows if r.deleted] == ["t3_3x4kt2"]
    assert stored_cursor("acme-reddit") == {
        "newest_created_utc": 1460000000.0,
        "newest_fullname": "t3_9zzzzz",
    }


def test_missing_credentials_skip_the_source(sqlite_url: str, tmp_path: Path) -> None:
    source = {
        "name": "acme-reddit",
        "kind": "reddit",
        "query": "acme",
        "base_url": "http://127.0.0.1:9",
    }
    settings = Settings(data_dir=tmp_path / "data", sources=[SourceConfig.model_validate(source)])
    [summary] = run_crawls(settings=settings)
    assert summary.status == "skipped: no credentials"
    assert summary.message == "set TOCSIN_REDDIT_CLIENT_ID, TOCSIN_REDDIT_CLIENT_SECRET"


def stored_cursor(name: str) -> dict[str, Any]:
    with session_scope() as session:
        row = get_source(session, name=name)
        assert row is not None
        return dict(row.cursor)
