"""RSS 2.0, RSS 1.0 (RDF) and Atom feeds: news sites, blogs, news-search feeds.

`base_url` is the feed; a `{query}` in it is replaced by the URL-encoded `query`, which makes any
news-search feed a source (`https://news.example.org/rss/search?q={query}`). `options.feeds`
adds more feed URLs to the same source. `options.platform` names the platform the posts are filed
under (default "news").

Each feed is fetched with a conditional GET (`If-None-Match` / `If-Modified-Since` from the last
successful run); a 304 means nothing new. The validators live in the cursor per feed (and, for
the main feed, in `Source.etag`/`last_modified`). Entries that were in the feed at the last
successful fetch are not sent again (by id, not date: news searches surface older articles). A
feed that does not parse is logged and counted, its validators kept, so the next run fetches it
whole; a truncated feed gives what it could and is retried next run.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

from lxml import etree
from scrapy.http import Response

from collectors.items import AuthorInfo, MentionItem
from collectors.spiders.base import MentionSpider, html_to_text, parse_time

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MAX_SEEN = 1000  # ids of the last fetch kept per feed, to send only new entries
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
_RECOVERING = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, recover=True
)


def _local(element: Any) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child(element: Any, *names: str) -> Any | None:
    for name in names:
        for child in element:
            if _local(child) == name:
                return child
    return None


def _text(element: Any, *names: str) -> str | None:
    child = _child(element, *names)
    if child is None:
        return None
    value = "".join(child.itertext()).strip()
    return value or None


class RssSpider(MentionSpider):
    name = "rss"
    platform = "news"

    @property
    def feed_urls(self) -> list[str]:
        urls = [self.base_url] if self.base_url else []
        extra: list[Any] = list(self.option("feeds", []))
        urls += [str(u) for u in extra]
        query = quote_plus(self.query)
        return list(dict.fromkeys(u.replace("{query}", query) for u in urls))

    async def start(self) -> AsyncIterator[Any]:
        validators = self.cursor.get("validators", {})
        for index, url in enumerate(self.feed_urls):
            known = dict(validators.get(url, {}))
            if index == 0:
                known.setdefault("etag", self.source.etag)
                known.setdefault("last_modified", self.source.last_modified)
            headers = {}
            if known.get("etag"):
                headers["If-None-Match"] = str(known["etag"])
            if known.get("last_modified"):
                headers["If-Modified-Since"] = str(known["last_modified"])
            yield self.request(
                url,
                headers=headers,
                callback=self.parse,
                cb_kwargs={"feed_url": url, "main": index == 0},
                allow_statuses=(304,),
            )

    def parse(self, response: Response, feed_url: str = "", main: bool = True) -> Iterator[Any]:
        feed_url = feed_url or response.url
        if response.status == 304:
            self.counters["not_modified"] += 1
            return
        root = self._parse_xml(response)
        if root is None:
            return
        entries = [e for e in root.iter() if _local(e) in ("item", "entry")]
        if _local(root) not in ("rss", "feed", "RDF"):
            self.malformed(response, f"not a feed (root element <{_local(root)}>)")
            return
        lang = self._parse_feed_lang(root)
        seen_before = set(self.cursor.get("feeds", {}).get(feed_url, {}).get("seen", []))
        in_feed: list[str] = []
        for entry in entries:
            item = self.guarded(response, self._parse_entry, entry, lang, feed_url)
            if item is None:
                continue
            in_feed.append(item.external_id)
            if item.external_id not in seen_before:
                yield item
        # Ids, not dates: news searches surface older articles too. A feed holds tens of entries.
        feeds = self.new_cursor.setdefault("feeds", {})
        feeds[feed_url] = {"seen": in_feed[:MAX_SEEN]}
        self._keep_validators(response, feed_url, main=main)

    def _parse_xml(self, response: Response) -> Any | None:
        body = response.body
        if not body.strip():
            self.malformed(response, f"empty body (HTTP {response.status})")
            return None
        try:
            return etree.fromstring(body, parser=_PARSER)
        except etree.XMLSyntaxError as exc:
            reason = f"XML does not parse ({exc})"
        # Take what a broken or truncated feed still holds, but count the feed as lost so that
        # its validators do not move and the next run reads it whole.
        self.malformed(response, reason)
        try:
            return etree.fromstring(body, parser=_RECOVERING)
        except etree.XMLSyntaxError:
            return None

    def _keep_validators(self, response: Response, feed_url: str, *, main: bool) -> None:
        etag = (response.headers.get(b"ETag") or b"").decode("latin-1") or None
        modified = (response.headers.get(b"Last-Modified") or b"").decode("latin-1") or None
        validators = self.new_cursor.setdefault("validators", {})
        validators[feed_url] = {"etag": etag, "last_modified": modified}
        if main:
            self.new_etag, self.new_last_modified = etag, modified

    def _parse_feed_lang(self, root: Any) -> str | None:
        channel = _child(root, "channel")
        lang = _text(channel, "language") if channel is not None else None
        return (lang or root.get(XML_LANG) or "").split("-")[0].lower() or None

    def _parse_entry(self, entry: Any, feed_lang: str | None, feed_url: str) -> MentionItem:
        link = self._parse_link(entry)
        title = _text(entry, "title")
        html = _text(entry, "encoded", "content") or _text(entry, "description", "summary") or ""
        published = self._parse_published(entry)
        external_id = _text(entry, "guid", "id") or entry.get(
            "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about"
        )
        if not external_id:
            external_id = link or _digest(feed_url, title, published)
        if not (title or html):
            raise ValueError("entry has neither title nor content")
        lang = (entry.get(XML_LANG) or "").split("-")[0].lower() or feed_lang
        return MentionItem(
            platform=str(self.option("platform", self.platform)),
            external_id=external_id[:300],
            url=link,
            title=html_to_text(title) if title else None,
            text=html,
            clean_text=html_to_text(html),
            lang=lang,
            author=self._parse_author(entry),
            created_at=published,
            raw={"feed": feed_url, "xml": etree.tostring(entry, encoding="unicode")[:20_000]},
        )

    def _parse_link(self, entry: Any) -> str | None:
        for child in entry:
            if _local(child) != "link":
                continue
            href = child.get("href")
            if href and child.get("rel", "alternate") == "alternate":
                return str(href)
            if not href and (child.text or "").strip():
                return str(child.text).strip()
        return None

    def _parse_published(self, entry: Any) -> datetime | None:
        return parse_time(_text(entry, "pubDate", "published", "date", "issued", "updated"))

    def _parse_author(self, entry: Any) -> AuthorInfo | None:
        author = _child(entry, "author")
        name = _text(author, "name") if author is not None and len(author) else None
        name = name or _text(entry, "creator") or _text(entry, "author")
        if not name:
            return None
        # RSS 2.0 <author> is "email (Name)"; keep the name.
        if "(" in name and name.endswith(")"):
            name = name[name.index("(") + 1 : -1].strip() or name
        return AuthorInfo(handle=name[:300], display_name=name[:500])


def _digest(*parts: Any) -> str:
    joined = "\x1f".join("" if p is None else str(p) for p in parts)
    return "sha1:" + hashlib.sha1(joined.encode("utf-8")).hexdigest()
