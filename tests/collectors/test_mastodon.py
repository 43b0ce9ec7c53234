"""Mastodon spider on the documentation's Status example and the Mastodon.py cassettes."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import scrapy
import yaml
from sqlalchemy import select

from collectors.crawl import run_crawls
from collectors.items import MentionItem
from collectors.spiders.base import SourceSpec
from collectors.spiders.mastodon import MastodonSpider, link_targets
from storage.db import session_scope
from storage.models import Author, Mention
from storage.queries import get_source
from tests.collectors.support import Reply, ScriptedServer, Seen, response_for, started
from tocsin.config import BrandConfig, Settings, SourceConfig

SHARED = Path("/work/shared/payloads/mastodon")
INSTANCE = "https://mastodon.example"


def interaction(name: str, index: int) -> tuple[Any, dict[str, str]]:
    """The JSON body and the headers of the `index`-th interaction of a VCR.py cassette."""
    data = yaml.safe_load((SHARED / name).read_text(encoding="utf-8"))
    response = data["interactions"][index]["response"]
    headers = {k: v[0] for k, v in response["headers"].items()}
    return json.loads(response["body"]["string"]), headers


def docs_status() -> dict[str, Any]:
    return json.loads((SHARED / "docs-status-example.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def make(
    query: str = "",
    cursor: dict[str, Any] | None = None,
    token: str | None = None,
    base_url: str = INSTANCE,
    **options: Any,
) -> MastodonSpider:
    spec = SourceSpec(
        name="acme-mastodon",
        kind="mastodon",
        base_url=base_url,
        query=query,
        options=options,
        cursor=cursor or {},
        secrets={"mastodon_token": token} if token else {},
    )
    return MastodonSpider(source=spec)


def page(url: str, body: Any, headers: dict[str, str] | None = None) -> scrapy.http.TextResponse:
    wanted = {"Content-Type": "application/json; charset=utf-8"}
    if headers and "link" in headers:
        wanted["Link"] = headers["link"]
    return response_for(url, json.dumps(body), headers=wanted)


def split(out: list[Any]) -> tuple[list[MentionItem], list[scrapy.Request]]:
    return (
        [o for o in out if isinstance(o, MentionItem)],
        [o for o in out if isinstance(o, scrapy.Request)],
    )


def test_documented_status_gives_every_field() -> None:
    spider = make(base_url="https://mastodon.social", hashtags=["acme"])
    url = "https://mastodon.social/api/v1/timelines/tag/acme"
    [status], _ = split(list(spider.parse(page(url, [docs_status()]), tag="acme")))
    assert status.platform == "mastodon"
    assert status.external_id == "https://mastodon.social/users/Gargron/statuses/103270115826048975"
    assert status.url == "https://mastodon.social/@Gargron/103270115826048975"
    assert status.text.startswith("<p>&quot;I lost my inheritance")
    assert status.clean_text == (
        '"I lost my inheritance with one wrong digit on my sort code"\n'
        "https://www.theguardian.com/money/2019/dec/07/"
        "i-lost-my-193000-inheritance-with-one-wrong-digit-on-my-sort-code"
    )
    assert status.lang == "en"
    assert status.created_at == datetime(2019, 12, 8, 3, 48, 33, 901000, tzinfo=UTC)
    assert (status.likes, status.reposts, status.replies) == (11, 6, 5)
    assert status.parent_external_id is None and status.title is None
    assert status.deleted is False
    assert status.rating is None and status.observed_at is None  # set by storage: now
    author = status.author
    assert author is not None
    assert author.handle == "Gargron@mastodon.social"  # a local account, made unique
    assert author.display_name == "Eugen"
    assert author.followers == 322930
    assert author.verified is True  # the Homepage link is verified
    assert author.bio is not None and author.bio.startswith("Developer of Mastodon")
    assert author.external_id == "https://mastodon.social/@Gargron"
    assert status.raw is not None and status.raw["account"]["bot"] is False
    assert spider.new_cursor == {"min_id:acme": "103270115826048975"}


def test_hashtag_timeline_cassette_first_crawl_follows_older_pages() -> None:
    statuses, headers = interaction("mastodonpy-test_hashtag_tl.yaml", 2)
    spider = make(hashtags="#hoot")
    [first] = started(spider)
    assert first.url == f"{INSTANCE}/api/v1/timelines/tag/hoot?limit=40"
    assert "Authorization" not in first.headers  # no token needed for hashtags
    items, [older] = split(list(spider.parse(page(first.url, statuses, headers), tag="hoot")))
    [hoot] = items
    assert hoot.clean_text == "#hoot (hashtag toot)"
    assert hoot.lang == "ja"
    assert hoot.author is not None and hoot.author.handle == "mastodonpy_test_2@mastodon.example"
    assert hoot.author.display_name is None and hoot.author.followers == 0
    assert hoot.author.verified is False and hoot.author.bio is None
    # The instance names itself (localhost:3000); the next page keeps the configured base URL.
    assert older.url == f"{INSTANCE}/api/v1/timelines/tag/hoot?max_id=117020593741189701"
    assert spider.new_cursor == {"min_id:hoot": "117020593741189701"}


def test_next_crawl_goes_forward_from_the_cursor_with_prev_links() -> None:
    statuses, headers = interaction("mastodonpy-test_fetch_next_previous.yaml", 13)
    assert statuses[0]["content"] == "<p>Toot number 9!</p>"
    spider = make(hashtags=["acme"], cursor={"min_id:acme": "117020580481736214"})
    [first] = started(spider)
    assert "min_id=117020580481736214" in first.url
    items, [newer] = split(
        list(spider.parse(page(first.url, statuses, headers), tag="acme", forward=True))
    )
    assert [i.clean_text for i in items] == [f"Toot number {n}!" for n in (9, 8, 7, 6, 5)]
    assert all(i.author and i.author.bio == "I walk funny" for i in items)
    assert newer.url.endswith("statuses?limit=5&min_id=117020580518794573")
    assert spider.new_cursor == {"min_id:acme": "117020580518794573"}
    # An empty forward page ends the crawl.
    assert list(spider.parse(page(newer.url, [], headers), tag="acme", forward=True)) == []


def test_hashtag_option_spellings() -> None:
    assert make(hashtag="acmeair").hashtags == ["acmeair"]
    assert make(hashtags=["#acme", "acme_help"]).hashtags == ["acme", "acme_help"]
    assert make(query="#acmeair #acme").hashtags == ["acmeair", "acme"]
    assert make(query="acme air").hashtags == []


def test_link_header_parsing() -> None:
    _, headers = interaction("mastodonpy-test_fetch_next_previous.yaml", 12)
    links = link_targets(headers["link"])
    assert links["next"].endswith("statuses?limit=5&max_id=117020580452511285")
    assert links["prev"].endswith("statuses?limit=5&min_id=117020580481736214")
    assert link_targets(None) == {}


def test_search_without_token_is_skipped_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    spider = make(query="acme air")
    with caplog.at_level(logging.WARNING):
        assert started(spider) == []
    [line] = [r.getMessage() for r in caplog.records]
    assert "skipped: status search needs TOCSIN_MASTODON_TOKEN" in line
    assert spider.counters["errors"] == 0


def test_search_with_token() -> None:
    spider = make(query="acme air", token="s3cret")
    [search] = started(spider)
    assert search.url.startswith(f"{INSTANCE}/api/v2/search?q=acme+air&type=statuses&limit=40")
    assert search.headers["Authorization"] == b"Bearer s3cret"
    empty, _ = interaction("mastodonpy-test_search.yaml", 2)  # type=statuses, nothing found
    assert list(spider.parse_search(page(search.url, empty), **search.cb_kwargs)) == []
    found = {"accounts": [], "statuses": [docs_status()], "hashtags": []}
    [status] = list(spider.parse_search(page(search.url, found), **search.cb_kwargs))
    assert isinstance(status, MentionItem) and status.likes == 11
    assert spider.new_cursor == {"min_id:search": "103270115826048975"}


def test_boost_content_warning_media_and_emoji() -> None:
    original = docs_status()
    original.update(
        content='<p>Acme lost my bag again 😡 <a href="https://x.example/tags/acme">#<span>acme</span></a></p>',
        spoiler_text="travel rant",
        media_attachments=[{"type": "image", "description": "An empty luggage belt"}],
    )
    boost = copy.deepcopy(docs_status())
    boost.update(
        id="103270115826049999",
        uri="https://mastodon.social/users/x/statuses/1/activity",
        reblog=original,
    )
    [item], _ = split(list(make(hashtags=["acme"]).parse(page(INSTANCE, [boost]), tag="acme")))
    assert item.external_id == original["uri"]  # stored as the boosted status
    assert (
        item.clean_text
        == "CW: travel rant\n\nAcme lost my bag again 😡 #acme\n\nAn empty luggage belt"
    )


def test_a_status_without_account_is_skipped_and_counted() -> None:
    broken = docs_status()
    del broken["account"]
    spider = make(hashtags=["acme"])
    items, _ = split(list(spider.parse(page(INSTANCE, [broken, docs_status()]), tag="acme")))
    assert len(items) == 1
    assert spider.counters["malformed"] == 1 and spider.finished_without_loss


def test_a_timeline_that_is_not_a_list_is_a_loss() -> None:
    not_found, _ = interaction("mastodonpy-test_status_missing.yaml", 0)
    spider = make(hashtags=["acme"])
    assert list(spider.parse(page(INSTANCE, not_found), tag="acme")) == []
    assert not spider.finished_without_loss


# ---------------------------------------------------------------------- a real crawl, end to end


class FakeTagTimeline:
    """`/api/v1/timelines/tag/<tag>` over recorded statuses: max_id/min_id paging, Link headers.

    Like the recorded instance, it names itself http://localhost:3000 in its Link headers.
    """

    page_size = 4

    def __init__(self, statuses: list[dict[str, Any]]) -> None:
        self.statuses = statuses

    def __call__(self, request: Seen) -> Reply:
        if request.path != "/api/v1/timelines/tag/acme":
            return Reply(status=404, body='{"error":"Not Found"}')
        newest_first = sorted(self.statuses, key=lambda s: -int(s["id"]))
        if "min_id" in request.query:
            after = [s for s in newest_first if int(s["id"]) > int(request.query["min_id"])]
            page = after[-self.page_size :]
        else:
            below = int(request.query.get("max_id", 10**30))
            page = [s for s in newest_first if int(s["id"]) < below][: self.page_size]
        headers = {}
        if page:
            here = "http://localhost:3000/api/v1/timelines/tag/acme"
            older, newer = page[-1]["id"], page[0]["id"]
            headers["Link"] = (
                f'<{here}?max_id={older}>; rel="next", <{here}?min_id={newer}>; rel="prev"'
            )

        return Reply.json(page, headers=headers)


def recorded_toots() -> list[dict[str, Any]]:
    first, _ = interaction("mastodonpy-test_fetch_next_previous.yaml", 11)
    second, _ = interaction("mastodonpy-test_fetch_next_previous.yaml", 12)
    return [*first, *second]  # "Toot number 9!" ... "Toot number 0!"


def test_hashtag_crawl_backfills_then_moves_forward(sqlite_url: str, tmp_path: Path) -> None:
    toots = recorded_toots()
    timeline = FakeTagTimeline(toots)
    with ScriptedServer(timeline) as server:
        source = {
            "name": "acme-mastodon",
            "kind": "mastodon",
            "brand": "Toots",
            "base_url": server.url(),
            "options": {"hashtags": ["acme"]},
        }
        settings = Settings(
            data_dir=tmp_path / "data",
            brands=[
                BrandConfig(name="Toots", keywords=["toot number"], excluded_terms=["number 3"])
            ],
            sources=[SourceConfig.model_validate(source)],
        )
        [first] = run_crawls(settings=settings)
        assert (first.status, first.new, first.skipped) == ("ok", 9, 1), first
        asked = [r.query.get("max_id") for r in server.hits("/api/v1/timelines/tag/acme")]
        assert asked == [None, "117020580496489811", "117020580467310235", "117020580452511285"]
        assert cursor_of("acme-mastodon") == {"min_id:acme": "117020580518794573"}

        later = []
        for n in range(1, 6):  # five new toots, with larger ids
            toot = copy.deepcopy(toots[0])
            toot["id"] = str(117020580518794573 + n * 1000)
            toot["uri"] = f"{toot['uri']}-{n}"
            toot["content"] = f"<p>Toot number {9 + n}! &lt;3</p>"
            later.append(toot)
        timeline.statuses.extend(later)
        [second] = run_crawls(settings=settings)
        assert (second.status, second.new, second.updated) == ("ok", 5, 0), second
        forward = [r.query.get("min_id") for r in server.hits("/api/v1/timelines/tag/acme")[4:]]
        assert forward == ["117020580518794573", "117020580518798573", later[-1]["id"]]
    assert cursor_of("acme-mastodon") == {"min_id:acme": later[-1]["id"]}
    with session_scope() as session:
        rows = session.execute(select(Mention)).scalars().all()
        texts = sorted(r.clean_text for r in rows)
        authors = {session.get(Author, r.author_id).handle for r in rows if r.author_id}  # type: ignore[union-attr]
    assert len(rows) == 14 and "Toot number 14! <3" in texts and "Toot number 3!" not in texts
    assert authors == {f"mastodonpy_test@127.0.0.1:{server.port}"}


def cursor_of(name: str) -> dict[str, Any]:
    with session_scope() as session:
        row = get_source(session, name=name)
        assert row is not None
        return dict(row.cursor)


def test_status_search_crawl_reads_the_token_from_the_environment(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = docs_status()

    def handler(request: Seen) -> Reply:
        if request.path != "/api/v2/search":
            return Reply(status=404)
        if request.headers.get("authorization") != "Bearer env-token":
            return Reply.json({"accounts": [], "statuses": [], "hashtags": []})  # anonymous
        found = [status] if int(request.query.get("min_id", 0)) < int(status["id"]) else []
        return Reply.json({"accounts": [], "statuses": found, "hashtags": []})

    with ScriptedServer(handler) as server:
        source = {
            "name": "acme-search",
            "kind": "mastodon",
            "query": "sort code",
            "base_url": server.url(),
        }
        settings = Settings(
            data_dir=tmp_path / "data", sources=[SourceConfig.model_validate(source)]
        )
        [anonymous] = run_crawls(settings=settings)
        assert (anonymous.status, anonymous.new) == ("ok", 0)
        assert server.requests == []  # no token: nothing asked, one warning line in the log
        log = (settings.data_dir / "logs" / "crawl-acme-search.log").read_text(encoding="utf-8")
        assert "skipped: status search needs TOCSIN_MASTODON_TOKEN" in log
        monkeypatch.setenv("TOCSIN_MASTODON_TOKEN", "env-token")
        [signed] = run_crawls(settings=settings)
        assert (signed.status, signed.new) == ("ok", 1)
        assert server.requests[0].query["type"] == "statuses"
        assert "env-token" not in (settings.data_dir / "logs" / "crawl-acme-search.log").read_text()
    assert cursor_of("acme-search") == {"min_id:search": "103270115826048975"}
