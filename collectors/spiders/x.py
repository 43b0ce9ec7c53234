"""X (Twitter): recent search, API v2, app bearer token.

`GET {base_url}/tweets/search/recent?query=<query>` (default base https://api.x.com/2) with
`Authorization: Bearer $TOCSIN_X_BEARER_TOKEN`, asking for the post fields Tocsin uses
(`created_at`, `lang`, `public_metrics`, `conversation_id`, `referenced_tweets`, `note_tweet`)
and `expansions=author_id` with `user.fields=public_metrics,verified,description` so that each
post comes with its author's followers. After the first crawl, `since_id=<newest id seen>` asks
only for newer posts; pages follow `meta.next_token` up to `options.max_pages` (default 10). X
refuses a `since_id` older than the 7 days recent search covers: the crawl then reads the whole
window and says that older posts were out of reach.

X escapes `&`, `<` and `>` in post text; the clean text is unescaped. Long posts carry their full
text in `note_tweet`. URLs are built as `https://x.com/<username>/status/<id>`.
"""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy.http import Response

from collectors.items import AuthorInfo, MentionItem
from collectors.spiders.base import MentionSpider, parse_time, to_int

PAGE_SIZE = 100
WEB_URL = "https://x.com"
TWEET_FIELDS = (
    "created_at,lang,public_metrics,author_id,conversation_id,referenced_tweets,"
    "in_reply_to_user_id,note_tweet"
)
USER_FIELDS = "name,username,public_metrics,verified,verified_type,description"


class XSpider(MentionSpider):
    name = "x"
    platform = "x"
    default_base_url = "https://api.x.com/2"
    required_secrets = ("x_bearer_token",)

    pages_read = 0
    since_dropped = False

    async def start(self) -> AsyncIterator[Any]:
        if not self.query.strip():
            self.malformed(self.base_url, "an X source needs a query")
            return
        yield self._search_request(next_token=None)

    def _search_request(self, next_token: str | None) -> Any:
        params = {
            "query": self.query,
            "max_results": PAGE_SIZE,
            "since_id": None if self.since_dropped else self.cursor.get("since_id"),
            "next_token": next_token,
            "tweet.fields": TWEET_FIELDS,
            "expansions": "author_id",
            "user.fields": USER_FIELDS,
        }
        return self.request(
            f"{self.base_url}/tweets/search/recent",
            params=params,
            headers={"Authorization": f"Bearer {self.secret('x_bearer_token')}"},
            callback=self.parse,
            allow_statuses=(400,),
        )

    def parse(self, response: Response, **_: Any) -> Iterator[Any]:
        self.pages_read += 1
        payload = self.load_json(response)
        if payload is None:
            return
        if response.status == 400:
            yield from self._refused(response, payload)
            return
        if not isinstance(payload, dict) or not isinstance(payload.get("data", []), list):
            self.malformed(response, "not a search result (no data list)")
            return
        if "data" not in payload and payload.get("errors"):
            self.malformed(response, f"errors only: {str(payload['errors'])[:200]}")
            return
        users = {
            str(u.get("id")): u
            for u in (payload.get("includes") or {}).get("users") or []
            if isinstance(u, dict)
        }
        posts = payload.get("data") or []
        for post in posts:
            item = self.guarded(response, self._item, post, users)
            if item is not None:
                self._stage_since_id(item.external_id)
                yield item
        meta = payload.get("meta") or {}
        self._stage_since_id(meta.get("newest_id"))
        next_token = meta.get("next_token")
        if next_token and posts:
            if self.pages_read < int(self.option("max_pages", 10)):
                yield self._search_request(next_token=str(next_token))
            else:
                self.page_cap_reached(response.url, self.pages_read)

    def _refused(self, response: Response, payload: Any) -> Iterator[Any]:
        """A 400. Recent search only reaches 7 days back, and refuses an older `since_id`."""
        if (
            "since_id" in json.dumps(payload)
            and self.cursor.get("since_id")
            and not self.since_dropped
        ):
            self.since_dropped = True
            self.counters["since_id_expired"] += 1
            self.logger.warning(
                "source=%s url=%s since_id is older than recent search reaches (7 days): reading "
                "the whole window; posts between the last crawl and then are out of reach",
                self.source.name,
                response.url,
            )
            self.pages_read = 0
            yield self._search_request(next_token=None)
            return
        detail = (
            payload.get("detail") or payload.get("title") if isinstance(payload, dict) else None
        )
        self.malformed(response, f"request refused (HTTP 400): {str(detail or payload)[:200]}")

    def _stage_since_id(self, post_id: Any) -> None:
        # Post ids are snowflakes: they grow with time. Compare as numbers, keep as text.
        if post_id is None or not str(post_id).isdigit():
            return
        staged = self.new_cursor.get("since_id")
        if staged is None or int(post_id) > int(staged):
            self.update_cursor(since_id=str(post_id))

    def _item(self, post: dict[str, Any], users: dict[str, dict[str, Any]]) -> MentionItem:
        post_id = str(post["id"])
        text = str((post.get("note_tweet") or {}).get("text") or post["text"])
        user = users.get(str(post.get("author_id")))
        metrics = post.get("public_metrics") or {}
        return MentionItem(
            platform=self.platform,
            external_id=post_id,
            text=text,
            clean_text=html.unescape(text),
            url=self._parse_url(post_id, user),
            lang=self._parse_lang(post),
            author=self._parse_author(user),
            created_at=parse_time(post.get("created_at")),
            likes=to_int(metrics.get("like_count")),
            reposts=to_int(metrics.get("retweet_count")),
            replies=to_int(metrics.get("reply_count")),
            parent_external_id=self._parse_parent(post),
            thread_external_id=post.get("conversation_id"),
            raw={**post, "author": user} if user else post,
        )

    def _parse_url(self, post_id: str, user: dict[str, Any] | None) -> str:
        web = str(self.option("web_url", WEB_URL)).rstrip("/")
        if user and user.get("username"):
            return f"{web}/{user['username']}/status/{post_id}"
        return f"{web}/i/web/status/{post_id}"

    @staticmethod
    def _parse_lang(post: dict[str, Any]) -> str | None:
        lang = post.get("lang")
        return None if not lang or lang in ("und", "zxx", "qme", "qht") else str(lang)

    @staticmethod
    def _parse_parent(post: dict[str, Any]) -> str | None:
        for ref in post.get("referenced_tweets") or []:
            if isinstance(ref, dict) and ref.get("type") == "replied_to":
                return str(ref["id"])
        return None

    @staticmethod
    def _parse_author(user: dict[str, Any] | None) -> AuthorInfo | None:
        if not user or not user.get("username"):
            return None
        metrics = user.get("public_metrics") or {}
        return AuthorInfo(
            handle=str(user["username"]),
            external_id=str(user["id"]) if user.get("id") is not None else None,
            display_name=user.get("name") or None,
            followers=to_int(metrics.get("followers_count")),
            verified=bool(user.get("verified"))
            or user.get("verified_type")
            in (
                "business",
                "government",
            ),
            bio=user.get("description") or None,
        )
