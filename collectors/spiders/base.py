"""The base spider every source extends: `MentionSpider`, with the helpers sources share.

How a platform spider uses it
-----------------------------
A source is a subclass that names itself, its platform and the secrets it needs, builds its
requests with `self.request(...)` (which logs and counts failures against the source) and turns
each response into `MentionItem`s:

    class MastodonSpider(MentionSpider):
        name = "mastodon"                      # the `kind` in tocsin.toml's [[sources]]
        platform = "mastodon"                  # Mention.platform
        default_base_url = "https://mastodon.social"
        required_secrets = ()                  # e.g. ("reddit_client_id", "reddit_client_secret")

        async def start(self):
            since = self.cursor.get("since_id")
            yield self.request(f"{self.base_url}/api/v1/timelines/tag/{self.query}",
                               callback=self.parse, params={"since_id": since, "limit": 40})

        def parse(self, response):
            payload = self.load_json(response)       # None (logged, counted) if malformed
            if payload is None:
                return
            for status in payload:
                item = self.guarded(response, self._item, status)  # bad post: logged, skipped
                if item is not None:
                    self.advance_cursor("since_id", int(status["id"]))
                    yield item

What the spider receives (`self.source`, a `SourceSpec`): `base_url` (falls back to
`default_base_url`; every URL must start from it so tests and self-hosted instances work),
`query`, `options` (free-form per source, read with `self.option("name", default)`), `cursor`
(JSON state from the last successful crawl; read it from `self.cursor`), `etag`/`last_modified`,
`secrets` (only the ones in `required_secrets`, read with `self.secret(name)`), and `brand`.

Secrets: `required_secrets` names fields of `tocsin.config.Secrets` (environment variables
`TOCSIN_<NAME>`). `collectors.crawl` checks them with `missing_secrets()` before starting a crawl:
a source whose credentials are missing is reported "skipped: no credentials (...)" and never runs.

Cursor: call `update_cursor(key=value)` / `advance_cursor(key, value)` (keeps the maximum) and
`set_validators(etag=..., last_modified=...)` while parsing. Nothing is saved until the crawl ends;
`collectors.crawl` saves the staged cursor only when `finished_without_loss` (no request failed for
good, no page was malformed, no rate-limit stop). So a crawl that loses a page, or is killed, runs
again from the previous cursor; upserts make the re-read harmless.

Bad input: `load_json` rejects HTML error pages, truncated and malformed bodies; `malformed()` logs
one line with the source and URL and counts it; `guarded()` wraps the parsing of a single post so a
post with an unexpected shape is skipped and counted while the rest of the page goes on. Failed
requests (5xx after retries, timeouts, DNS) reach `on_request_error`, which does the same.

Helpers for fields: `html_to_text` (HTML to plain text), `parse_time` (ISO 8601, RFC 2822, epoch
seconds or milliseconds, always aware UTC), `to_int`.
"""

from __future__ import annotations

import copy
import email.utils
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlencode

import scrapy
from scrapy import signals
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro
from twisted.python.failure import Failure
from w3lib.html import remove_tags, remove_tags_with_content, replace_entities

T = TypeVar("T")


@dataclass(slots=True)
class BrandRules:
    """What a source's brand is called, so that the pipeline can decide which posts to keep."""

    name: str
    id: int | None = None
    keywords: list[str] = field(default_factory=list)
    handles: list[str] = field(default_factory=list)
    excluded_terms: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SourceSpec:
    """One configured source as a crawl sees it: config, incremental state and secrets."""

    name: str
    kind: str
    base_url: str = ""
    query: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    cursor: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    source_id: int | None = None
    brand: BrandRules | None = None
    secrets: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print secrets
        return f"SourceSpec(name={self.name!r}, kind={self.kind!r}, base_url={self.base_url!r})"


class MentionSpider(scrapy.Spider):
    """Base class of every Tocsin source (see the module docstring)."""

    name: str = "mention"
    platform: ClassVar[str] = ""
    required_secrets: ClassVar[tuple[str, ...]] = ()
    default_base_url: ClassVar[str] = ""
    # Sources that are about the brand by construction (its own app's reviews) keep every post;
    # others keep only posts that match the brand. `options.match_all` overrides it per source.
    match_all_by_default: ClassVar[bool] = False

    def __init__(self, source: SourceSpec | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source or SourceSpec(name=self.name, kind=self.name)
        self.cursor: dict[str, Any] = copy.deepcopy(self.source.cursor or {})
        self.new_cursor: dict[str, Any] = copy.deepcopy(self.cursor)
        self.new_etag: str | None = self.source.etag
        self.new_last_modified: str | None = self.source.last_modified
        self.counters: Counter[str] = Counter()
        self.loss_reasons: list[str] = []
        self.rate_limited_until: datetime | None = None  # a long wait stopped this crawl
        self.not_before_hint: datetime | None = None  # quota spent: start no sooner next time

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> Any:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.on_callback_error, signal=signals.spider_error)
        crawler.signals.connect(spider.on_item_error, signal=signals.item_error)
        return spider

    # ------------------------------------------------------------------ configuration

    @property
    def base_url(self) -> str:
        return (self.source.base_url or self.default_base_url).rstrip("/")

    @property
    def query(self) -> str:
        return self.source.query

    @property
    def options(self) -> dict[str, Any]:
        return self.source.options

    def option(self, name: str, default: T) -> T:
        value = self.source.options.get(name, default)
        return default if value is None else value  # type: ignore[no-any-return]

    @property
    def match_all(self) -> bool:
        return bool(self.source.options.get("match_all", self.match_all_by_default))

    @classmethod
    def missing_secrets(cls, secrets: Mapping[str, str | None]) -> list[str]:
        """The names in `required_secrets` that have no value."""
        return [name for name in cls.required_secrets if not secrets.get(name)]

    def secret(self, name: str) -> str:
        value = self.source.secrets.get(name)
        if not value:
            raise KeyError(f"secret {name!r} is not set for source {self.source.name!r}")
        return value

    # ------------------------------------------------------------------ requests

    def request(
        self,
        url: str,
        *,
        callback: Callable[..., Any] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
        body: str | bytes | None = None,
        meta: Mapping[str, Any] | None = None,
        cb_kwargs: Mapping[str, Any] | None = None,
        dont_filter: bool = True,
        allow_statuses: tuple[int, ...] = (),
    ) -> scrapy.Request:
        """A request whose failures are logged and counted against this source.

        `params` are added to the query string (None values left out). Responses with a status
        in `allow_statuses` (304, 404...) reach the callback instead of the error path.
        """
        if params:
            query = urlencode([(k, v) for k, v in params.items() if v is not None], doseq=True)
            if query:
                url = f"{url}{'&' if '?' in url else '?'}{query}"
        return scrapy.Request(
            url,
            callback=callback or self.parse,
            errback=self.on_request_error,
            method=method,
            headers=dict(headers or {}),
            body=body,
            meta={
                "tocsin_source": self.source.name,
                **({"handle_httpstatus_list": list(allow_statuses)} if allow_statuses else {}),
                **(meta or {}),
            },
            cb_kwargs=dict(cb_kwargs or {}),
            dont_filter=dont_filter,
        )

    def on_request_error(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        if failure.check(IgnoreRequest) and self.rate_limited_until is not None:
            return  # stopped for a rate limit: already logged and counted
        response = getattr(failure.value, "response", None)
        why = f"HTTP {response.status}" if response is not None else failure.getErrorMessage()
        why = why or type(failure.value).__name__
        self.counters["errors"] += 1
        self.counters["failed_requests"] += 1
        self.mark_loss(f"request failed: {why} ({url})")
        self.logger.error("source=%s url=%s request failed: %s", self.source.name, url, why)

    def on_callback_error(self, failure: Failure, response: Response, **_: Any) -> None:
        """A callback raised (a bug or a payload shape nobody expected): the page is lost."""
        why = f"{type(failure.value).__name__}: {failure.getErrorMessage()}"
        self.counters["errors"] += 1
        self.mark_loss(f"parse error: {why} ({response.url})")
        self.logger.error("source=%s url=%s parse error: %s", self.source.name, response.url, why)

    def on_item_error(
        self, item: Any, response: Response | None, failure: Failure, **_: Any
    ) -> None:
        url = response.url if response is not None else "-"
        why = f"{type(failure.value).__name__}: {failure.getErrorMessage()}"
        self.counters["errors"] += 1
        self.mark_loss(f"item not stored: {why} ({url})")
        self.logger.error("source=%s url=%s item not stored: %s", self.source.name, url, why)

    # ------------------------------------------------------------------ bad input

    def mark_loss(self, reason: str) -> None:
        """Data may have been missed: the cursor must not advance at the end of this crawl."""
        self.loss_reasons.append(reason)

    @property
    def finished_without_loss(self) -> bool:
        return not self.loss_reasons and self.rate_limited_until is None

    def malformed(self, response: Response | str, reason: str, *, loss: bool = True) -> None:
        """Log one line naming the source and URL, count it; by default the page counts as lost."""
        url = response if isinstance(response, str) else response.url
        self.counters["errors"] += 1
        self.counters["malformed"] += 1
        if loss:
            self.mark_loss(f"malformed payload: {reason} ({url})")
        self.logger.warning("source=%s url=%s malformed payload: %s", self.source.name, url, reason)

    def page_cap_reached(self, url: str, pages: int) -> None:
        """Stopped by `max_pages` before reaching posts collected earlier: say so, count it."""
        self.counters["pages_capped"] += 1
        self.logger.warning(
            "source=%s url=%s stopped after %d pages (options.max_pages) before reaching the "
            "posts of the last crawl; older new posts of this window are not collected",
            self.source.name,
            url,
            pages,
        )

    def lookup_failed(self, failure: Failure) -> Iterator[Any]:
        """An extra lookup (author profiles, channels) failed: keep the items it was to enrich.

        Reach details are a nicety; the posts themselves must not be lost with them.
        """
        request = failure.request  # type: ignore[attr-defined]
        self.counters["errors"] += 1
        self.logger.warning(
            "source=%s url=%s author lookup failed (%s): posts kept without reach details",
            self.source.name,
            request.url,
            failure.getErrorMessage() or type(failure.value).__name__,
        )
        yield from request.cb_kwargs.get("items", [])

    def load_json(self, response: Response) -> Any | None:
        """The decoded JSON body, or None when it is not JSON (HTML error page, truncated...)."""
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        body = response.body
        if "html" in content_type or body.lstrip()[:1] == b"<":
            self.malformed(response, f"HTML instead of JSON (HTTP {response.status})")
            return None
        if not body.strip():
            self.malformed(response, f"empty body (HTTP {response.status})")
            return None
        try:
            return json.loads(body)
        except UnicodeDecodeError:
            self.malformed(response, "body is not UTF-8")
        except json.JSONDecodeError as exc:
            self.malformed(response, f"invalid JSON ({exc.msg} at char {exc.pos})")
        return None

    def guarded(self, response: Response | str, parse: Callable[..., T], *args: Any) -> T | None:
        """Run `parse(*args)` for one post; a post of unexpected shape is logged and skipped.

        A single bad post in a good page is not a loss: re-reading the page would not fix it.
        """
        try:
            return parse(*args)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            self.malformed(response, f"post skipped: {type(exc).__name__}: {exc}", loss=False)
            return None

    # ------------------------------------------------------------------ incremental state

    def update_cursor(self, **values: Any) -> None:
        """Stage cursor values; saved only if the crawl ends without loss."""
        self.new_cursor.update(values)

    def advance_cursor(self, key: str, value: Any) -> None:
        """Stage `key` = max(staged value, value) (ids, timestamps: the newest seen)."""
        if value is None:
            return
        current = self.new_cursor.get(key)
        if current is None or value > current:
            self.new_cursor[key] = value

    def set_validators(self, *, etag: str | None = None, last_modified: str | None = None) -> None:
        """Stage the HTTP validators for the next conditional GET."""
        if etag is not None:
            self.new_etag = etag
        if last_modified is not None:
            self.new_last_modified = last_modified

    def stop_for_rate_limit(self, until: datetime, url: str) -> None:
        """A long rate-limit wait: stop this source now; the next run starts after `until`."""
        if self.rate_limited_until is None or until > self.rate_limited_until:
            self.rate_limited_until = until
        self.counters["rate_limited"] += 1
        self.logger.warning(
            "source=%s url=%s rate limited until %s: stopping this source",
            self.source.name,
            url,
            until.isoformat(timespec="seconds"),
        )
        crawler = getattr(self, "crawler", None)
        if crawler is not None and crawler.engine is not None and crawler.engine.spider is not None:
            deferred_from_coro(crawler.engine.close_spider_async(reason="rate_limited"))


# ---------------------------------------------------------------------- field helpers

_BLOCK_END = re.compile(r"(?i)<\s*(br\s*/?|/p|/div|/li|/h[1-6]|/blockquote|/pre|/tr)\s*>")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(html: str | None) -> str:
    """Plain text from an HTML fragment: tags dropped, entities decoded, line breaks kept."""
    if not html:
        return ""
    text = remove_tags_with_content(html, which_ones=("script", "style"))
    text = _BLOCK_END.sub("\n", text)
    text = replace_entities(remove_tags(text))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601, RFC 2822 or epoch seconds/milliseconds; else None."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        number = float(value)
        if number > 1e12:  # milliseconds
            number /= 1000
        try:
            return datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return _parse_time_loosely(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parse_time_loosely(text: str) -> datetime | None:
    from dateutil import parser as date_parser

    try:
        moment = date_parser.parse(text)
    except (ValueError, OverflowError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def to_int(value: Any) -> int | None:
    """An int from a count the API may give as int, float or string; None when absent."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def first_present(mapping: Mapping[str, Any], keys: Iterable[str]) -> Any:
    """The first value among `keys` that is neither missing nor None."""
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            return value
    return None
