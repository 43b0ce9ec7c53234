"""Rate limits: honour `Retry-After` and the platforms' rate-limit headers.

* A 429 (or a 503 with `Retry-After`) whose wait is short (`TOCSIN_MAX_SHORT_WAIT`) is slept
  through and the request retried (at most `TOCSIN_RATE_LIMIT_RETRIES` times); every other
  request of the source waits too.
* A long wait stops the source for this run: the spider records `rate_limited_until`, which
  `collectors.crawl` saves as `Source.not_before`; the cursor does not advance.
* A successful response that says the quota is spent (`x-ratelimit-remaining: 0` and a reset)
  pauses the next requests until the reset, or, when that is far, records the reset as the
  source's next allowed start and stops before sending another request.

Reset headers come in three shapes: seconds from now (Reddit, IETF `RateLimit-Reset`), epoch
seconds (X, GitHub) and ISO 8601 times (Mastodon); all are read.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import task

from collectors.spiders.base import MentionSpider, parse_time

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http.headers import Headers

REMAINING_HEADERS = ("x-ratelimit-remaining", "x-rate-limit-remaining", "ratelimit-remaining")
RESET_HEADERS = ("x-ratelimit-reset", "x-rate-limit-reset", "ratelimit-reset")
EPOCH_THRESHOLD = 1_000_000_000  # a "reset" above this is an epoch time, not a delay


def _header(headers: Headers, name: str) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1").strip() if value else None


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` value (delay in seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


def reset_seconds(value: str | None, *, now: float) -> float | None:
    """Seconds until a rate-limit window resets, from any of the reset header shapes."""
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        moment = parse_time(value)
        return None if moment is None else max(moment.timestamp() - now, 0.0)
    if number > EPOCH_THRESHOLD:
        return max(number - now, 0.0)
    return max(number, 0.0)


def quota_spent(headers: Headers) -> bool:
    for name in REMAINING_HEADERS:
        value = _header(headers, name)
        if value is not None:
            try:
                return float(value) <= 0
            except ValueError:
                return False
    return False


def quota_reset(headers: Headers, *, now: float) -> float | None:
    for name in RESET_HEADERS:
        seconds = reset_seconds(_header(headers, name), now=now)
        if seconds is not None:
            return seconds
    return None


async def _sleep(seconds: float) -> None:
    from twisted.internet import reactor

    await maybe_deferred_to_future(task.deferLater(reactor, seconds, lambda: None))  # type: ignore[arg-type]


class RateLimitMiddleware:
    """Downloader middleware; sits before Scrapy's retry so that 429s are handled here."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.max_short_wait = crawler.settings.getfloat("TOCSIN_MAX_SHORT_WAIT", 60.0)
        self.max_retries = crawler.settings.getint("TOCSIN_RATE_LIMIT_RETRIES", 3)
        self.paused_until = 0.0  # epoch seconds; requests wait until then
        self.stop_before_next: float | None = None  # a far reset seen on a good response

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RateLimitMiddleware:
        return cls(crawler)

    @property
    def spider(self) -> MentionSpider | None:
        spider = self.crawler.spider
        return spider if isinstance(spider, MentionSpider) else None

    async def process_request(self, request: Request) -> None:
        now = time.time()
        if self.stop_before_next is not None and self.stop_before_next > now:
            self._stop(self.stop_before_next, request.url)
            raise IgnoreRequest("rate limit: quota spent until the reset")
        if self.paused_until > now:
            await _sleep(self.paused_until - now)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        now = time.time()
        if response.status == 429 or (
            response.status == 503 and response.headers.get("Retry-After")
        ):
            return await self._limited(request, response, now)
        if quota_spent(response.headers):
            wait = quota_reset(response.headers, now=now)
            if wait is not None and wait <= self.max_short_wait:
                self.paused_until = max(self.paused_until, now + wait)
            elif wait is not None:
                self.stop_before_next = now + wait
                if self.spider is not None:
                    self.spider.not_before_hint = _as_datetime(now + wait)
        return response

    async def _limited(self, request: Request, response: Response, now: float) -> Request:
        wait = retry_after_seconds(_header(response.headers, "Retry-After"), now=now)
        if wait is None:
            wait = quota_reset(response.headers, now=now)
        attempts = int(request.meta.get("tocsin_rate_limit_retries", 0))
        if wait is None:
            wait = float(2**attempts)
        if wait > self.max_short_wait or attempts >= self.max_retries:
            self._stop(now + max(wait, 1.0), request.url)
            raise IgnoreRequest(f"rate limited (HTTP {response.status})")
        self.paused_until = max(self.paused_until, now + wait)
        if self.spider is not None:
            self.spider.counters["rate_limit_waits"] += 1
            self.spider.logger.info(
                "source=%s url=%s HTTP %s: waiting %.1fs before retrying",
                self.spider.source.name,
                request.url,
                response.status,
                wait,
            )
        await _sleep(wait)
        meta: dict[str, Any] = {**request.meta, "tocsin_rate_limit_retries": attempts + 1}
        return request.replace(dont_filter=True, meta=meta)

    def _stop(self, until: float, url: str) -> None:
        if self.spider is not None:
            self.spider.stop_for_rate_limit(_as_datetime(until), url)


def _as_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
