"""YouTube spider on commentThreads.list replies recorded from the real API (python-youtube)."""

from __future__ import annotations

import json
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
from collectors.spiders.youtube import YoutubeSpider, next_quota_reset
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

SHARED = Path("/work/shared/payloads/youtube")
API = "https://yt.example/youtube/v3"
THREADS = f"{API}/commentThreads"


def load(name: str) -> Any:
    return json.loads((SHARED / name).read_text(encoding="utf-8"))


def make(query: str = "", cursor: dict[str, Any] | None = None, **options: Any) -> YoutubeSpider:
    options.setdefault("fetch_channels", False)  # the channel lookup has its own tests
    spec = SourceSpec(
        name="acme-youtube",
        kind="youtube",
        base_url=API,
        query=query,
        options=options,
        cursor=cursor or {},
        secrets={"youtube_api_key": "AIza-test-key"},
    )
    return YoutubeSpider(source=spec)


def split(out: list[Any]) -> tuple[list[MentionItem], list[scrapy.Request]]:
    return (
        [o for o in out if isinstance(o, MentionItem)],
        [o for o in out if isinstance(o, scrapy.Request)],
    )


def by_video(spider: YoutubeSpider, name: str) -> list[Any]:
    page = json_response(THREADS, SHARED / name)
    return list(spider.parse(page, param="videoId", value="F1UP7wRCPH8"))


def test_first_page_gives_every_field_and_asks_for_the_next() -> None:
    spider = make(video_ids=["F1UP7wRCPH8"])
    items, [next_page] = split(by_video(spider, "comment_threads_by_video_paged_1.json"))
    assert len(items) == 5
    thread = items[4]
    assert thread.platform == "youtube"
    assert thread.external_id == "UgwI_ylXVnzPS8Q-oAV4AaABAg"
    assert thread.url == "https://www.youtube.com/watch?v=F1UP7wRCPH8&lc=UgwI_ylXVnzPS8Q-oAV4AaABAg"
    assert thread.text.startswith("Lot&#39;s of good light coming in from here <a href=")
    assert thread.clean_text.startswith("Lot's of good light coming in from here #ChromeDevSummit")
    assert thread.title is None and thread.lang is None
    assert thread.created_at == datetime(2019, 11, 14, 23, 31, 33, tzinfo=UTC)
    assert (thread.likes, thread.reposts, thread.replies) == (0, None, 2)
    assert thread.parent_external_id is None and thread.thread_external_id == "video:F1UP7wRCPH8"
    assert thread.deleted is False
    assert thread.rating is None and thread.observed_at is None  # set by storage: now
    author = thread.author
    assert author is not None
    assert author.handle == author.external_id == "UCACHW4qVHoE4zqhHxcVE3Kw"
    assert author.display_name == "matrix uduma" and author.followers is None
    assert thread.raw is not None and thread.raw["snippet"]["totalReplyCount"] == 2
    assert "pageToken=QURTSl9p" in next_page.url
    assert next_page.headers["X-Goog-Api-Key"] == b"AIza-test-key"
    assert "AIza" not in next_page.url  # the key never shows in a logged URL
    assert spider.new_cursor == {"newest:F1UP7wRCPH8": "2019-11-26T15:51:44.000000Z"}


def test_commenters_subscriber_counts_come_from_channels_list() -> None:
    spider = make(video_ids=["F1UP7wRCPH8"], fetch_channels=True)
    items, [lookup, _next_page] = split(by_video(spider, "comment_threads_by_video_paged_1.json"))
    assert items == []  # they wait for the channels
    assert lookup.url.startswith(f"{API}/channels?part=snippet%2Cstatistics&id=UCzj-CjKYmGlZ7vTL")
    assert lookup.url.count("%2CUC") == 4 and lookup.headers["X-Goog-Api-Key"] == b"AIza-test-key"
    reply = json_response(lookup.url, DATA / "youtube/channels.json")
    comments = list(spider.parse_channels(reply, **lookup.cb_kwargs))
    by_author = {c.author.external_id: c.author for c in comments}
    assert by_author["UCACHW4qVHoE4zqhHxcVE3Kw"].followers == 1250
    assert by_author["UCACHW4qVHoE4zqhHxcVE3Kw"].bio == "Web developer. Lagos."
    assert by_author["UCzj-CjKYmGlZ7vTL-vOe57A"].followers is None  # hidden
    assert len(comments) == 5 and sum(a.followers is None for a in by_author.values()) == 4
    failure = Failure(OSError("timeout"))
    failure.request = lookup  # type: ignore[attr-defined]
    assert len(list(spider.lookup_failed(failure))) == 5
    assert spider.counters["errors"] == 1 and spider.finished_without_loss


def test_html_display_text_when_the_original_is_not_given() -> None:
    page = load("comment_threads_by_video_paged_2.json")
    for thread in page["items"]:
        del thread["snippet"]["topLevelComment"]["snippet"]["textOriginal"]
    spider = make(video_ids=["F1UP7wRCPH8"])
    items, requests = split(
        list(spider.parse(json_response(THREADS, page), param="videoId", value="F1UP7wRCPH8"))
    )
    assert requests == []  # no nextPageToken: the last page
    assert items[0].text == '<a href="http://google.com/">Google.com</a>'
    assert items[0].clean_text == "Google.com"
    assert items[4].clean_text.startswith("Lot's of good light coming in from here")


def test_the_second_crawl_stops_at_known_comments() -> None:
    spider = make(
        video_ids=["F1UP7wRCPH8"], cursor={"newest:F1UP7wRCPH8": "2019-11-20T00:00:00.000000Z"}
    )
    items, requests = split(by_video(spider, "comment_threads_by_video_paged_1.json"))
    assert len(items) == 5 and requests == []


def test_page_cap_before_the_cursor_is_counted() -> None:
    spider = make(cursor={"newest:F1UP7wRCPH8": "2001-01-01T00:00:00.000000Z"}, max_pages=1)
    items, requests = split(by_video(spider, "comment_threads_by_video_paged_1.json"))
    assert len(items) == 5 and requests == [] and spider.counters["pages_capped"] == 1


def test_channel_threads_with_search_terms() -> None:
    spider = make(query="hello", channel_id="UC_x5XG1OV2P6uZZ5FSM9Ttw", video_ids="abc, def")
    requests = started(spider)
    assert [r.url.split("?")[1].split("&")[1] for r in requests] == [
        "videoId=abc",
        "videoId=def",
        "allThreadsRelatedToChannelId=UC_x5XG1OV2P6uZZ5FSM9Ttw",
    ]
    assert all("searchTerms=hello" in r.url and "order=time" in r.url for r in requests)
    page = json_response(THREADS, SHARED / "comment_threads_with_search.json")
    [comment] = list(
        spider.parse(page, param="allThreadsRelatedToChannelId", value="UC_x5XG1OV2P6uZZ5FSM9Ttw")
    )
    assert isinstance(comment, MentionItem)
    assert comment.clean_text == "Hello"
    assert comment.thread_external_id is None
    assert comment.url == (
        "https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw?lc=UgyUBI0HsgL9emxcZpR4AaABAg"
    )


def test_new_style_handles_are_kept_as_handles() -> None:
    page = load("comment_threads_by_video_paged_2.json")
    page["items"][0]["snippet"]["topLevelComment"]["snippet"]["authorDisplayName"] = "@himani"
    items, _ = split(
        list(make().parse(json_response(THREADS, page), param="videoId", value="F1UP7wRCPH8"))
    )
    assert items[0].author is not None and items[0].author.handle == "@himani"
    assert items[1].author is not None and items[1].author.handle.startswith("UC")


def api_error(code: int, reason: str) -> dict[str, Any]:
    """An error reply in the Data API's documented shape."""
    message = f"The request cannot be completed: {reason}."
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "youtube.commentThread", "reason": reason}],
        }
    }


def test_comments_turned_off_are_skipped_without_loss() -> None:
    spider = make(video_ids=["F1UP7wRCPH8"])
    reply = response_for(THREADS, json.dumps(api_error(403, "commentsDisabled")), status=403)
    assert list(spider.parse(reply, param="videoId", value="F1UP7wRCPH8")) == []
    assert spider.counters["errors"] == 1 and spider.finished_without_loss


def test_spent_quota_stops_until_midnight_pacific() -> None:
    spider = make(video_ids=["F1UP7wRCPH8"])
    reply = response_for(THREADS, json.dumps(api_error(403, "quotaExceeded")), status=403)
    assert list(spider.parse(reply, param="videoId", value="F1UP7wRCPH8")) == []
    assert spider.rate_limited_until is not None and not spider.finished_without_loss
    moment = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)  # 15:30 in Los Angeles
    assert next_quota_reset(moment) == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def test_a_bad_key_is_a_loss_with_a_hint(caplog: pytest.LogCaptureFixture) -> None:
    spider = make(video_ids=["F1UP7wRCPH8"])
    reply = response_for(THREADS, json.dumps(api_error(400, "keyInvalid")), status=400)
    list(spider.parse(reply, param="videoId", value="F1UP7wRCPH8"))
    assert not spider.finished_without_loss
    assert "check TOCSIN_YOUTUBE_API_KEY" in caplog.text and "AIza" not in caplog.text


def test_a_source_without_video_or_channel_asks_for_nothing() -> None:
    spider = make()
    assert started(spider) == []
    assert spider.counters["malformed"] == 1


def test_a_thread_without_top_level_comment_is_skipped() -> None:
    page = load("comment_threads_by_video_paged_2.json")
    del page["items"][2]["snippet"]["topLevelComment"]
    spider = make()
    items, _ = split(
        list(spider.parse(json_response(THREADS, page), param="videoId", value="F1UP7wRCPH8"))
    )
    assert len(items) == 4 and spider.counters["malformed"] == 1 and spider.finished_without_loss


# ---------------------------------------------------------------------- a real crawl, end to end


def test_crawl_pages_with_the_key_in_a_header(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOCSIN_YOUTUBE_API_KEY", "AIza-test-key")
    page1 = load("comment_threads_by_video_paged_1.json")
    page2 = load("comment_threads_by_video_paged_2.json")  # the same threads again: no duplicates

    def handler(request: Seen) -> Reply:
        if request.headers.get("x-goog-api-key") != "AIza-test-key" or "key" in request.query:
            return Reply.json({"error": {"code": 403, "message": "API key missing"}}, status=403)
        if request.path == "/youtube/v3/channels":
            return Reply(body=(DATA / "youtube/channels.json").read_bytes())
        if request.path != "/youtube/v3/commentThreads":
            return Reply(status=404)
        if request.query.get("videoId") != "F1UP7wRCPH8":
            return Reply.json(api_error(404, "videoNotFound"), status=404)
        return Reply.json(page2 if request.query.get("pageToken") else page1)

    with ScriptedServer(handler) as server:
        source = {
            "name": "acme-yt",
            "kind": "youtube",
            "brand": "Chrome",
            "base_url": server.url("/youtube/v3"),
            "options": {"video_ids": ["F1UP7wRCPH8"], "match_all": True},
        }
        settings = Settings(
            data_dir=tmp_path / "data",
            brands=[BrandConfig(name="Chrome", keywords=["chrome"])],
            sources=[SourceConfig.model_validate(source)],
        )
        [first] = run_crawls(settings=settings)
        assert (first.status, first.new, first.errors) == ("ok", 5, 0), first
        assert len(server.hits("/youtube/v3/commentThreads")) == 2
        assert cursor_of("acme-yt") == {"newest:F1UP7wRCPH8": "2019-11-26T15:51:44.000000Z"}
        [second] = run_crawls(settings=settings)
        assert (second.status, second.new, second.updated) == ("ok", 0, 5), second
        assert len(server.hits("/youtube/v3/commentThreads")) == 3  # stopped at known comments

        source["options"] = {"video_ids": ["F1UP7wRCPH8", "gone"], "match_all": True}
        settings.sources = [SourceConfig.model_validate(source)]
        [third] = run_crawls(settings=settings)
        # A video that is gone is skipped and counted, and holds nothing back.
        assert (third.status, third.errors, third.updated) == ("ok", 1, 5), third
    with session_scope() as session:
        rows = session.execute(select(Mention).order_by(col(Mention.created_at))).scalars().all()
    assert len(rows) == 5
    assert rows[0].replies == 2 and rows[0].clean_text.startswith("Lot's of good light")
    assert rows[-1].text == '<a href="http://google.com/">Google.com</a>'
    with session_scope() as session:
        author = session.get(Author, rows[0].author_id)
        assert author is not None and author.followers == 1250


def cursor_of(name: str) -> dict[str, Any]:
    with session_scope() as session:
        row = get_source(session, name=name)
        assert row is not None
        return dict(row.cursor)
