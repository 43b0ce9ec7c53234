"""The base spider's helpers: text, times, JSON checks, cursor staging, secrets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collectors.spiders.base import (
    MentionSpider,
    SourceSpec,
    html_to_text,
    parse_time,
    to_int,
)
from tests.collectors.support import response_for


class NeedsKey(MentionSpider):
    name = "needs_key"
    platform = "test"
    required_secrets = ("youtube_api_key",)


def spider(**cursor: object) -> MentionSpider:
    return MentionSpider(source=SourceSpec(name="s1", kind="test", cursor=dict(cursor)))


def test_html_to_text_keeps_lines_and_decodes_entities() -> None:
    html = "<p>Lost &amp; found<br/>at <b>JFK</b></p><script>alert(1)</script><p>Gate&nbsp;12</p>"
    assert html_to_text(html) == "Lost & found\nat JFK\nGate 12"
    assert html_to_text(None) == ""
    assert html_to_text("plain text") == "plain text"


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-20T09:58:00Z",
        "2026-11-20T10:58:00+01:00",
        "Fri, 20 Nov 2026 09:58:00 GMT",
        1795168680,
        "1795168680",
        1795168680000,
        datetime(2026, 11, 20, 9, 58),
    ],
)
def test_parse_time_reads_every_shape_as_utc(value: object) -> None:
    assert parse_time(value) == datetime(2026, 11, 20, 9, 58, tzinfo=UTC)


def test_parse_time_gives_none_for_nonsense() -> None:
    assert parse_time("not a date at all") is None
    assert parse_time("") is None
    assert parse_time(None) is None
    assert to_int("12") == 12 and to_int(None) is None and to_int("x") is None


def test_load_json_rejects_html_truncated_and_empty_bodies() -> None:
    s = spider()
    page = response_for("http://h/x", "<html><body>502</body></html>", status=200)
    assert s.load_json(page) is None
    assert s.load_json(response_for("http://h/y", '{"hits": [1, 2')) is None
    assert s.load_json(response_for("http://h/z", "  ")) is None
    assert s.load_json(response_for("http://h/ok", '{"a": 1}')) == {"a": 1}
    assert s.counters["malformed"] == 3 and s.counters["errors"] == 3
    assert not s.finished_without_loss
    assert "http://h/y" in s.loss_reasons[1]


def test_load_json_logs_source_and_url(caplog: pytest.LogCaptureFixture) -> None:
    s = spider()
    s.load_json(response_for("http://h/broken", "{oops"))
    assert "source=s1 url=http://h/broken malformed payload" in caplog.text


def test_guarded_skips_one_bad_post_without_loss() -> None:
    s = spider()
    assert s.guarded("http://h/p", lambda post: post["id"], {"text": "no id"}) is None
    assert s.guarded("http://h/p", lambda post: post["id"], {"id": 7}) == 7
    assert s.counters["errors"] == 1
    assert s.finished_without_loss


def test_cursor_changes_are_staged_not_applied() -> None:
    s = spider(since=5)
    s.advance_cursor("since", 3)
    s.advance_cursor("since", 9)
    s.update_cursor(page_token="abc")
    assert s.cursor == {"since": 5}
    assert s.new_cursor == {"since": 9, "page_token": "abc"}


def test_missing_secrets_and_secret_lookup() -> None:
    assert NeedsKey.missing_secrets({}) == ["youtube_api_key"]
    assert NeedsKey.missing_secrets({"youtube_api_key": "k"}) == []
    secret = "s3cr3t-value"
    s = NeedsKey(
        source=SourceSpec(name="yt", kind="needs_key", secrets={"youtube_api_key": secret})
    )
    assert s.secret("youtube_api_key") == secret
    assert secret not in repr(s.source)
    with pytest.raises(KeyError):
        spider().secret("youtube_api_key")


def test_request_adds_params_and_errback() -> None:
    s = spider()
    request = s.request("http://h/search?x=1", params={"q": "acme air", "since": None, "n": 2})
    assert request.url == "http://h/search?x=1&q=acme+air&n=2"
    assert request.errback == s.on_request_error
    assert request.meta["tocsin_source"] == "s1"


def test_callback_and_item_errors_count_as_loss() -> None:
    from twisted.python.failure import Failure

    s = spider()
    response = response_for("http://h/page", "{}")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failure = Failure()
    s.on_callback_error(failure, response, spider=s)
    s.on_item_error({"x": 1}, response, failure, spider=s)
    assert s.counters["errors"] == 2
    assert s.loss_reasons == [
        "parse error: RuntimeError: boom (http://h/page)",
        "item not stored: RuntimeError: boom (http://h/page)",
    ]
