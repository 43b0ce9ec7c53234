"""Reading Retry-After and the platforms' rate-limit headers."""

from __future__ import annotations

from scrapy.http.headers import Headers

from collectors.middlewares import quota_reset, quota_spent, reset_seconds, retry_after_seconds

NOW = 1_795_168_680.0  # 2026-11-20T09:58:00Z


def test_retry_after_seconds_or_http_date() -> None:
    assert retry_after_seconds("7", now=NOW) == 7
    assert retry_after_seconds("Fri, 20 Nov 2026 09:59:00 GMT", now=NOW) == 60
    assert retry_after_seconds("Fri, 20 Nov 2026 09:00:00 GMT", now=NOW) == 0
    assert retry_after_seconds("soon", now=NOW) is None
    assert retry_after_seconds(None, now=NOW) is None


def test_reset_as_delay_epoch_or_iso_time() -> None:
    assert reset_seconds("42.5", now=NOW) == 42.5  # Reddit: seconds until the reset
    assert reset_seconds(str(int(NOW) + 900), now=NOW) == 900  # X, GitHub: epoch seconds
    assert reset_seconds("2026-11-20T10:03:00.000Z", now=NOW) == 300  # Mastodon: ISO time
    assert reset_seconds("garbage", now=NOW) is None


def test_quota_headers() -> None:
    spent = Headers({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"})
    assert quota_spent(spent) and quota_reset(spent, now=NOW) == 30
    x_style = Headers({"x-rate-limit-remaining": "0.0", "x-rate-limit-reset": str(int(NOW) + 60)})
    assert quota_spent(x_style) and quota_reset(x_style, now=NOW) == 60
    assert not quota_spent(Headers({"x-ratelimit-remaining": "12"}))
    assert not quota_spent(Headers({}))
