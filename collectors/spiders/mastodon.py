"""Mastodon: hashtag timelines (no account needed) or status search (with an access token).

`base_url` is the instance (default https://mastodon.social).

* Hashtags (`options.hashtags` or `options.hashtag`, or a query written `#tag`):
  `/api/v1/timelines/tag/<tag>`. The first crawl reads the newest page and follows
  `Link: rel="next"` (older) up to `options.max_pages` (default 10). Later crawls ask for
  `min_id=<newest id seen>` and follow `rel="prev"` (newer) until an empty page: they move forward
  from the cursor, so nothing between two crawls is skipped, and a crawl cut short by `max_pages`
  goes on from there next time.
* Search (a plain query): `/api/v2/search?type=statuses&q=<query>` with
  `Authorization: Bearer $TOCSIN_MASTODON_TOKEN` (instances answer status searches only to
  signed-in accounts), `min_id` from the cursor and `offset` paging.

A status is stored under its ActivityPub `uri`, which is the same on every instance, so two
sources on two instances never store one post twice; a boost is stored as the boosted status. The
content is HTML (a content warning, when set, comes first in the clean text). The author carries
followers, the bio, and `verified` when one of the profile links is verified; bot accounts are
noted in `raw`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from scrapy.http import Response

from collectors.items import AuthorInfo, MentionItem
from collectors.spiders.base import MentionSpider, html_to_text, parse_time, to_int
from tocsin.config import get_secrets

PAGE_SIZE = 40
_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([a-z]+)"?')


def link_targets(header: str | None) -> dict[str, str]:
    """The URLs of a `Link` header by relation (`next`, `prev`)."""
    return {rel: url for url, rel in _LINK.findall(header or "")}


class MastodonSpider(MentionSpider):
    name = "mastodon"
    platform = "mastodon"
    default_base_url = "https://mastodon.social"
    required_secrets = ()
    optional_secrets = ("mastodon_token",)  # status search only

    pages_read = 0
    _token: str | None = None

    # ------------------------------------------------------------------ configuration

    @property
    def hashtags(self) -> list[str]:
        value: Any = self.option("hashtags", None) or self.option("hashtag", [])
        tags = [value] if isinstance(value, str) else [str(v) for v in value]
        if not tags and self.query.strip().startswith("#"):
            tags = self.query.split()
        return [t.strip().lstrip("#") for t in tags if t.strip().lstrip("#")]

    @property
    def instance_host(self) -> str:
        return urlsplit(self.base_url).netloc

    def token(self) -> str | None:
        value = self.source.secrets.get("mastodon_token")
        if value:
            return value
        secret = get_secrets().mastodon_token
        return secret.get_secret_value() if secret is not None else None

    def _headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    # ------------------------------------------------------------------ requests

    async def start(self) -> AsyncIterator[Any]:
        self._token = self.token()
        if self.hashtags:
            # A token is not needed here, but sent when set (some instances ask for one).
            for tag in self.hashtags:
                since = self.cursor.get(f"min_id:{tag}")
                url = f"{self.base_url}/api/v1/timelines/tag/{quote(tag, safe='')}"
                params = {"limit": PAGE_SIZE, "min_id": since}
                yield self.request(
                    url,
                    params=params,
                    headers=self._headers(self._token),
                    callback=self.parse,
                    cb_kwargs={"tag": tag, "forward": since is not None},
                )
            return
        if not self.query.strip():
            self.malformed(self.base_url, "a Mastodon source needs options.hashtags or a query")
            return
        token = self._token
        if not token:
            self.counters["skipped_no_credentials"] += 1
            self.logger.warning(
                "source=%s skipped: status search needs TOCSIN_MASTODON_TOKEN "
                "(or use options.hashtags, which needs none)",
                self.source.name,
            )
            return
        yield self._search_request(token, offset=0)

    def _search_request(self, token: str, offset: int) -> Any:
        params = {
            "q": self.query,
            "type": "statuses",
            "limit": PAGE_SIZE,
            "offset": offset or None,
            "min_id": self.cursor.get("min_id:search"),
            "resolve": "false",
        }
        return self.request(
            f"{self.base_url}/api/v2/search",
            params=params,
            headers=self._headers(token),
            callback=self.parse_search,
            cb_kwargs={"token": token, "offset": offset},
        )

    def _more_pages(self) -> bool:
        return self.pages_read < int(self.option("max_pages", 10))

    # ------------------------------------------------------------------ parsing

    def parse(self, response: Response, tag: str = "", forward: bool = False) -> Iterator[Any]:
        self.pages_read += 1
        statuses = self.load_json(response)
        if statuses is None:
            return
        if not isinstance(statuses, list):
            self.malformed(response, "a timeline must be a JSON list")
            return
        yield from self._items(response, statuses, f"min_id:{tag}")
        links = link_targets((response.headers.get("Link") or b"").decode("latin-1"))
        # Forward (newer) pages go on until an empty one: no gap since the last crawl.
        target = links.get("prev") if forward else links.get("next")
        # A cap on forward pages loses nothing: the next crawl goes on from the cursor.
        if statuses and target and self._more_pages():
            if not target.startswith(self.base_url):  # the instance names itself; keep our base
                ours, theirs = urlsplit(self.base_url), urlsplit(target)
                target = urlunsplit((ours.scheme, ours.netloc, theirs.path, theirs.query, ""))
            yield self.request(
                target,
                headers=self._headers(self._token),
                callback=self.parse,
                cb_kwargs={"tag": tag, "forward": forward},
            )

    def parse_search(self, response: Response, token: str = "", offset: int = 0) -> Iterator[Any]:
        self.pages_read += 1
        payload = self.load_json(response)
        if payload is None:
            return
        statuses = payload.get("statuses") if isinstance(payload, dict) else None
        if not isinstance(statuses, list):
            self.malformed(response, "no statuses list in the search result")
            return
        yield from self._items(response, statuses, "min_id:search")
        if len(statuses) >= PAGE_SIZE and self._more_pages():
            yield self._search_request(token, offset=offset + len(statuses))

    def _items(self, response: Response, statuses: list[Any], cursor_key: str) -> Iterator[Any]:
        for status in statuses:
            item = self.guarded(response, self._item, status)
            if item is None:
                continue
            # Ids grow with time on one instance; compare them as numbers, store them as text.
            local_id = str(status["id"])
            staged = self.new_cursor.get(cursor_key)
            if staged is None or int(local_id) > int(staged):
                self.update_cursor(**{cursor_key: local_id})
            yield item

    def _item(self, status: dict[str, Any]) -> MentionItem:
        original = status.get("reblog") or status
        content = str(original.get("content") or "")
        return MentionItem(
            platform=self.platform,
            external_id=str(original.get("uri") or f"{self.base_url}/statuses/{original['id']}"),
            text=content,
            clean_text=self._parse_clean_text(original, content),
            url=original.get("url") or original.get("uri"),
            lang=original.get("language"),
            author=self._parse_author(original["account"]),
            created_at=parse_time(original["created_at"]),
            likes=to_int(original.get("favourites_count")),
            reposts=to_int(original.get("reblogs_count")),
            replies=to_int(original.get("replies_count")),
            raw=original,
        )

    @staticmethod
    def _parse_clean_text(status: dict[str, Any], content: str) -> str:
        text = html_to_text(content)
        warning = str(status.get("spoiler_text") or "").strip()
        media = [
            str(m.get("description")).strip()
            for m in status.get("media_attachments") or []
            if isinstance(m, dict) and m.get("description")
        ]
        parts = [f"CW: {warning}" if warning else "", text, *media]
        return "\n\n".join(p for p in parts if p)

    def _parse_author(self, account: dict[str, Any]) -> AuthorInfo:
        acct = str(account["acct"])
        if "@" not in acct:  # a local account: make the handle unique across instances
            acct = f"{acct}@{self.instance_host}"
        fields = account.get("fields") or []
        return AuthorInfo(
            handle=acct,
            external_id=str(account.get("url") or account.get("id") or "") or None,
            display_name=account.get("display_name") or None,
            followers=to_int(account.get("followers_count")),
            verified=any(isinstance(f, dict) and f.get("verified_at") for f in fields),
            bio=html_to_text(account.get("note")) or None,
        )
