"""Replay spider: a JSON-lines feed read incrementally (file and HTTP, Range or not)."""

from __future__ import annotations

import json

import scrapy

from collectors.items import MentionItem
from collectors.spiders.base import SourceSpec
from collectors.spiders.replay import ReplaySpider
from tests.collectors.support import response_for, started

URL = "http://127.0.0.1:9/feed.jsonl"


def line(n: int, **extra: object) -> bytes:
    post = {"id": f"p{n}", "text": f"Acme Air post {n}", "author": {"handle": f"u{n}"}, **extra}
    return (json.dumps(post) + "\n").encode()


def make(cursor: dict | None = None) -> ReplaySpider:
    return ReplaySpider(
        source=SourceSpec(name="demo", kind="replay", base_url=URL, cursor=cursor or {})
    )


def run(
    spider: ReplaySpider,
    body: bytes,
    *,
    start: int = 0,
    verify: bool = False,
    status: int = 200,
    headers: dict | None = None,
) -> list:
    response = response_for(URL, body, status=status, headers=headers)
    return list(spider.parse(response, start=start, verify=verify))


def test_first_run_reads_every_complete_line() -> None:
    spider = make()
    first = line(1, likes=4, created_at="2026-11-20T10:00:00Z")
    items = run(spider, first + line(2) + b'{"id": "p3", "te')
    assert [i.external_id for i in items] == ["p1", "p2"]
    assert items[0].likes == 4 and items[0].author is not None and items[0].author.handle == "u1"
    assert spider.new_cursor == {
        "offset": len(first + line(2)),
        "last_id": "p2",
        "last_len": len(line(2)),
    }


def test_next_run_starts_at_the_last_line_and_checks_it() -> None:
    done = line(1) + line(2)
    spider = make({"offset": len(done), "last_id": "p2", "last_len": len(line(2))})
    [request] = started(spider)
    assert request.headers.get("Range") == f"bytes={len(line(1))}-".encode()
    grown = done + line(3) + line(4)
    # A server that ignores Range sends everything; one that honours it sends the tail.
    for response_body, status, headers in [
        (grown, 200, {}),
        (
            grown[len(line(1)) :],
            206,
            {"Content-Range": f"bytes {len(line(1))}-{len(grown) - 1}/{len(grown)}"},
        ),
    ]:
        spider = make({"offset": len(done), "last_id": "p2", "last_len": len(line(2))})
        items = run(
            spider, response_body, start=len(line(1)), verify=True, status=status, headers=headers
        )
        assert [i.external_id for i in items] == ["p3", "p4"]
        assert spider.new_cursor["offset"] == len(grown)


def test_replaced_feed_is_read_again_from_the_start() -> None:
    spider = make({"offset": len(line(1) + line(2)), "last_id": "p2", "last_len": len(line(2))})
    out = run(spider, line(7) + line(8), start=len(line(1)), verify=True)
    assert len(out) == 1 and isinstance(out[0], scrapy.Request)
    assert out[0].cb_kwargs == {"start": 0, "verify": False}
    assert spider.new_cursor == {}


def test_nothing_new_and_bad_lines() -> None:
    spider = make({"offset": 10, "last_id": None, "last_len": 0})
    assert run(spider, b"", start=10, status=416) == []
    spider = make()
    items = run(spider, b"{not json}\n" + line(1) + b"[1, 2]\n" + b'{"text": "no id"}\n')
    assert [i.external_id for i in items if isinstance(i, MentionItem)] == ["p1"]
    assert spider.counters["malformed"] == 3 and spider.finished_without_loss


def test_score_input_shape_is_accepted() -> None:
    spider = make()
    post = {
        "id": 5,
        "text": "<p>Acme Air &amp; me</p>",
        "lang": "en",
        "platform": "x",
        "author": {"handle": "ana", "followers": 250000, "verified": True, "bio": "journalist"},
        "engagement": {"likes": 10, "reposts": 2, "replies": 1},
    }
    [item] = run(spider, (json.dumps(post) + "\n").encode())
    assert item.platform == "x" and item.external_id == "5"
    assert item.clean_text == "Acme Air & me"
    assert (item.likes, item.reposts, item.replies) == (10, 2, 1)
    assert item.author is not None and item.author.followers == 250000 and item.author.verified
