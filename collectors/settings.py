"""Scrapy settings shared by every Tocsin crawl (one source per process, see collectors.crawl).

A source tunes its own crawl through `options` in tocsin.toml: `timeout_seconds`, `retries`,
`concurrency`, `delay_seconds`, `max_short_wait_seconds` (see `crawl_settings`).
"""

from __future__ import annotations

from typing import Any

BOT_NAME = "tocsin"
SPIDER_MODULES = ["collectors.spiders"]
NEWSPIDER_MODULE = "collectors.spiders"

USER_AGENT = "Tocsin/0.1 (+https://github.com/tocsin; brand-mention monitor)"
ROBOTSTXT_OBEY = False  # public APIs and feeds the user configured, not web pages
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False

CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.0
DOWNLOAD_TIMEOUT = 30
RETRY_ENABLED = True
RETRY_TIMES = 2
# 429 is ours (collectors.middlewares.RateLimitMiddleware), not the generic retry's.
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]

DOWNLOADER_MIDDLEWARES = {
    "collectors.middlewares.RateLimitMiddleware": 560,
}
# Every spider-middleware layer wraps every item a callback yields; these serve web crawling
# (link depth, URL length), not API polling. (The redirect middleware wants the referer one.)
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
}
EXTENSIONS = {
    "scrapy.extensions.memusage.MemoryUsage": None,
    "scrapy.extensions.feedexport.FeedExporter": None,
    "scrapy.extensions.spiderstate.SpiderState": None,
    "scrapy.extensions.telnet.TelnetConsole": None,
}
ITEM_PIPELINES = {
    "collectors.pipelines.MentionPipeline": 300,
}
# Conditional GET is done by the spiders themselves (ETag/Last-Modified from the database).
HTTPCACHE_ENABLED = False
LOG_LEVEL = "INFO"

# Tocsin's own knobs.
TOCSIN_MAX_SHORT_WAIT = 60.0  # seconds: a rate-limit wait up to this is slept through and retried
TOCSIN_RATE_LIMIT_RETRIES = 3  # per request, before the source stops for this run
TOCSIN_BATCH_SIZE = 500  # mentions per upsert transaction

_OPTION_TO_SETTING = {
    "timeout_seconds": "DOWNLOAD_TIMEOUT",
    "retries": "RETRY_TIMES",
    "concurrency": "CONCURRENT_REQUESTS_PER_DOMAIN",
    "delay_seconds": "DOWNLOAD_DELAY",
    "max_short_wait_seconds": "TOCSIN_MAX_SHORT_WAIT",
    "batch_size": "TOCSIN_BATCH_SIZE",
}


def crawl_settings(options: dict[str, Any] | None = None) -> dict[str, Any]:
    """This module's settings as a dict, with a source's `options` applied."""
    values = {k: v for k, v in globals().items() if k.isupper() and not k.startswith("_")}
    for option, setting in _OPTION_TO_SETTING.items():
        if options and options.get(option) is not None:
            values[setting] = options[option]
    return values
