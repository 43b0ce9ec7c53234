"""App Store customer reviews, from Apple's public RSS feed in its JSON form (no key).

    GET {base_url}/{country}/rss/customerreviews/page={n}/id={app_id}/sortby=mostrecent/json

`query` (or `options.app_id`) is the app's numeric id; `options.countries` lists storefronts
(default ["us"]). The feed gives up to 10 pages of 50 reviews, newest first. Each review keeps
its star rating. The cursor holds, per storefront, the `updated` time of the newest review seen;
paging stops once a page reaches reviews older than that.

Every review of the brand's own app is about the brand, so this source keeps all of them
(`match_all_by_default`); excluded terms still apply.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

from scrapy.http import Response

from collectors.items import AuthorInfo, MentionItem
from collectors.spiders.base import MentionSpider, html_to_text, parse_time, to_int

MAX_PAGES = 10  # what the feed serves
_PAGE_IN_URL = re.compile(r"/page=(\d+)/")
_REVIEWER_ID = re.compile(r"/id(\d+)")


def _label(node: Any) -> Any:
    """The feed wraps every value as {"label": value}."""
    return node.get("label") if isinstance(node, dict) else node


class AppStoreSpider(MentionSpider):
    name = "appstore"
    platform = "appstore"
    default_base_url = "https://itunes.apple.com"
    match_all_by_default = True

    @property
    def app_id(self) -> str:
        return str(self.option("app_id", "") or self.query).strip()

    @property
    def countries(self) -> list[str]:
        countries = self.option("countries", [self.option("country", "us")])
        return [str(c).lower() for c in countries]

    async def start(self) -> AsyncIterator[Any]:
        if not self.app_id.isdigit():
            self.malformed(self.base_url, f"app id {self.app_id!r} is not numeric")
            return
        for country in self.countries:
            yield self._page(country, 1)

    def _page(self, country: str, page: int) -> Any:
        url = (
            f"{self.base_url}/{country}/rss/customerreviews/page={page}"
            f"/id={self.app_id}/sortby=mostrecent/json"
        )
        return self.request(url, callback=self.parse, cb_kwargs={"country": country, "page": page})

    def parse(self, response: Response, country: str = "us", page: int = 1) -> Iterator[Any]:
        payload = self.load_json(response)
        if payload is None:
            return
        feed = payload.get("feed") if isinstance(payload, dict) else None
        if not isinstance(feed, dict):
            self.malformed(response, "no 'feed' object")
            return
        since = parse_time(self.cursor.get("latest", {}).get(country))
        reached_known = False
        for entry in self._parse_entries(feed):
            item = self.guarded(response, self._parse_review, entry, country)
            if item is None:
                continue
            if since is not None and item.created_at is not None and item.created_at < since:
                reached_known = True
                continue
            self._advance_latest(country, item.created_at)
            yield item
        if not reached_known and page < self._parse_last_page(feed) and feed.get("entry"):
            yield self._page(country, page + 1)

    def _parse_entries(self, feed: dict[str, Any]) -> list[dict[str, Any]]:
        entries = feed.get("entry") or []
        if isinstance(entries, dict):  # a single review comes as an object, not a list
            entries = [entries]
        # The first entry of some feeds describes the app itself (no rating): not a review.
        return [e for e in entries if isinstance(e, dict) and "im:rating" in e]

    def _parse_last_page(self, feed: dict[str, Any]) -> int:
        links = feed.get("link") or []
        for link in links if isinstance(links, list) else [links]:
            attributes = link.get("attributes", {}) if isinstance(link, dict) else {}
            if attributes.get("rel") == "last":
                match = _PAGE_IN_URL.search(str(attributes.get("href", "")))
                if match:
                    return min(int(match.group(1)), MAX_PAGES)
        return MAX_PAGES

    def _parse_review(self, entry: dict[str, Any], country: str) -> MentionItem:
        review_id = str(_label(entry["id"]))
        content = entry.get("content") or {}
        text = str(_label(content) or "")
        is_html = (content.get("attributes") or {}).get("type") == "html"
        return MentionItem(
            platform=self.platform,
            external_id=review_id,
            url=self._parse_url(entry, country, review_id),
            text=text,
            clean_text=html_to_text(text) if is_html else text,
            title=_label(entry.get("title")),
            author=self._parse_author(entry.get("author")),
            created_at=parse_time(_label(entry.get("updated"))),
            rating=float(_label(entry["im:rating"])),
            likes=to_int(_label(entry.get("im:voteSum"))),
            raw={**entry, "tocsin_storefront": country, "tocsin_app_id": self.app_id},
        )

    def _parse_url(self, entry: dict[str, Any], country: str, review_id: str) -> str:
        link = entry.get("link")
        href = (link.get("attributes") or {}).get("href") if isinstance(link, dict) else None
        if href:
            return str(href)
        # Apple gives reviews no page of their own: point at the app's reviews in the storefront.
        return f"https://apps.apple.com/{country}/app/id{self.app_id}?see-all=reviews#{review_id}"

    def _parse_author(self, author: Any) -> AuthorInfo | None:
        if not isinstance(author, dict):
            return None
        name = _label(author.get("name"))
        if not name:
            return None
        uri = str(_label(author.get("uri")) or "")
        match = _REVIEWER_ID.search(uri)
        reviewer_id = match.group(1) if match else None
        # Nicknames are not unique across reviewers; the reviewer id is.
        handle = f"{name}#{reviewer_id}" if reviewer_id else str(name)
        return AuthorInfo(handle=handle, display_name=str(name), external_id=reviewer_id)

    def _advance_latest(self, country: str, moment: datetime | None) -> None:
        if moment is None:
            return
        latest = dict(self.new_cursor.get("latest", {}))
        known = parse_time(latest.get(country))
        if known is None or moment > known:
            latest[country] = moment.isoformat()
            self.update_cursor(latest=latest)
