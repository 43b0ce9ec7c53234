"""Discourse forums: the latest posts (`/posts.json`) or a search (`/search.json`).

`base_url` is the forum (https://forum.example.com, or a sub-folder install). Two modes:

* `mode = "latest"` (the default without a query; the brand's own forum, so every post is kept
  unless `options.match_all = false`): `/posts.json` lists the newest posts first; older pages
  come with `before=<smallest id seen>`, until a post already collected (cursor `last_post_id`)
  or `options.max_pages` (default 10).
* `mode = "search"` (the default with a query): `/search.json?q=<query> order:latest&page=N`.
  Search hits only carry a short plain-text blurb, so each new hit's full post is read from
  `/posts/<id>.json` (set `options.full_posts = false` to keep the blurbs and spare requests).

A post's cooked HTML becomes the clean text; its URL is `/t/<slug>/<topic id>/<post number>`; its
external id is `<forum host and path>/t/<topic id>/<post number>`, so replies point at their
parent (`reply_to_post_number`) and every post at its topic. Whispers and small-action posts
(staff-only or "closed the topic" lines) are not public mentions and are left out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

from scrapy.http import Response

from collectors.items import AuthorInfo, MentionItem
from collectors.spiders.base import MentionSpider, html_to_text, parse_time, to_int

PUBLIC_POST_TYPES = frozenset({1, 2})  # regular, moderator action (3 small action, 4 whisper)
LIKE_ACTION = 2  # actions_summary id of "like"


class DiscourseSpider(MentionSpider):
    name = "discourse"
    platform = "discourse"
    default_base_url = ""

    pages_read = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen_ids: set[int] = set()

    @property
    def mode(self) -> str:
        return str(self.option("mode", "search" if self.query else "latest"))

    @property
    def match_all(self) -> bool:
        """The latest posts of the brand's own forum are all about it; search hits are matched."""
        return bool(self.options.get("match_all", self.mode == "latest"))

    @property
    def forum_key(self) -> str:
        """The forum's host and path: what makes post ids unique across forums."""
        parts = urlsplit(self.base_url)
        return f"{parts.netloc}{parts.path}".rstrip("/")

    @property
    def last_post_id(self) -> int:
        return int(self.cursor.get("last_post_id") or 0)

    def _headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    async def start(self) -> AsyncIterator[Any]:
        if not self.base_url.startswith(("http://", "https://")):
            self.malformed(self.base_url or "-", "a Discourse source needs base_url (the forum)")
            return
        if self.mode == "search" and self.query:
            yield self._search_request(page=1)
        elif self.mode == "latest":
            yield self._latest_request(before=None)
        else:
            self.malformed(self.base_url, f"mode {self.mode!r} needs a query (search) or 'latest'")

    def _more_pages(self) -> bool:
        return self.pages_read < int(self.option("max_pages", 10))

    # ------------------------------------------------------------------ latest posts

    def _latest_request(self, before: int | None) -> Any:
        return self.request(
            f"{self.base_url}/posts.json",
            params={"before": before},
            headers=self._headers(),
            callback=self.parse,
        )

    def parse(self, response: Response, **_: Any) -> Iterator[Any]:
        self.pages_read += 1
        payload = self.load_json(response)
        if payload is None:
            return
        posts = payload.get("latest_posts") if isinstance(payload, dict) else None
        if not isinstance(posts, list):
            self.malformed(response, "no latest_posts list")
            return
        fresh = 0
        oldest: int | None = None
        for post in posts:
            post_id = to_int(post.get("id")) if isinstance(post, dict) else None
            if post_id is not None:
                oldest = post_id if oldest is None else min(oldest, post_id)
            if post_id is not None and (post_id <= self.last_post_id or post_id in self.seen_ids):
                continue  # collected by an earlier crawl, or repeated at a page boundary
            fresh += 1
            item = self.guarded(response, self._item, post, None)
            if item is not None and post_id is not None:
                self.seen_ids.add(post_id)
                self.advance_cursor("last_post_id", post_id)
                yield item
        # `before` is inclusive on Discourse (before=14 lists 14 first), so a page boundary
        # repeats one post; asking from the oldest id seen is right whichever way a forum reads it.
        if fresh and oldest is not None and oldest > self.last_post_id:
            if self._more_pages():
                yield self._latest_request(before=oldest)
            elif self.last_post_id:
                self.page_cap_reached(response.url, self.pages_read)

    # ------------------------------------------------------------------ search

    def _search_request(self, page: int) -> Any:
        return self.request(
            f"{self.base_url}/search.json",
            params={"q": f"{self.query} order:latest", "page": page},
            headers=self._headers(),
            callback=self.parse_search,
            cb_kwargs={"page": page},
        )

    def parse_search(self, response: Response, page: int = 1) -> Iterator[Any]:
        self.pages_read += 1
        payload = self.load_json(response)
        if payload is None:
            return
        hits = payload.get("posts") if isinstance(payload, dict) else None
        if not isinstance(hits, list):
            self.malformed(response, "no posts list in the search result")
            return
        topics = {t.get("id"): t for t in payload.get("topics") or [] if isinstance(t, dict)}
        reached_known = False
        for hit in hits:
            post_id = to_int(hit.get("id")) if isinstance(hit, dict) else None
            if post_id is not None and post_id <= self.last_post_id:
                reached_known = True
                continue
            yield from self._from_hit(response, hit, topics)
        grouped = payload.get("grouped_search_result") or {}
        more = bool(grouped.get("more_full_page_results")) if isinstance(grouped, dict) else False
        if more and hits and not reached_known:
            if self._more_pages():
                yield self._search_request(page=page + 1)
            elif self.last_post_id:
                self.page_cap_reached(response.url, self.pages_read)

    def _from_hit(
        self, response: Response, hit: Any, topics: dict[Any, dict[str, Any]]
    ) -> Iterator[Any]:
        topic = topics.get(hit.get("topic_id")) if isinstance(hit, dict) else None
        if self.option("full_posts", True) and isinstance(hit, dict) and "id" in hit:
            yield self.request(
                f"{self.base_url}/posts/{int(hit['id'])}.json",
                headers=self._headers(),
                callback=self.parse_post,
                cb_kwargs={"topic": topic},
            )
            return
        item = self.guarded(response, self._item, hit, topic)
        if item is not None:
            self.advance_cursor("last_post_id", int(hit["id"]))
            yield item

    def parse_post(self, response: Response, topic: dict[str, Any] | None = None) -> Iterator[Any]:
        post = self.load_json(response)
        if post is None:
            return
        item = self.guarded(response, self._item, post, topic)
        if item is not None:
            self.advance_cursor("last_post_id", int(post["id"]))
            yield item

    # ------------------------------------------------------------------ one post

    def _item(self, post: dict[str, Any], topic: dict[str, Any] | None) -> MentionItem | None:
        int(post["id"])  # a post without an id is malformed
        if to_int(post.get("post_type")) not in (None, *PUBLIC_POST_TYPES):
            self.counters["not_public"] += 1
            return None
        topic_id = int(post["topic_id"])
        number = int(post.get("post_number") or 1)
        cooked = post.get("cooked")
        text = str(cooked if cooked is not None else post.get("blurb") or "")
        reply_to = to_int(post.get("reply_to_post_number"))
        return MentionItem(
            platform=self.platform,
            external_id=f"{self.forum_key}/t/{topic_id}/{number}",
            text=text,
            clean_text=html_to_text(text),
            url=self._parse_url(post, topic, topic_id, number),
            title=self._parse_title(post, topic),
            author=self._parse_author(post),
            created_at=parse_time(post.get("created_at")),
            likes=self._parse_likes(post),
            replies=to_int(post.get("reply_count")),
            parent_external_id=f"{self.forum_key}/t/{topic_id}/{reply_to}" if reply_to else None,
            thread_external_id=f"{self.forum_key}/t/{topic_id}",
            deleted=bool(post.get("deleted_at") or post.get("user_deleted")),
            raw=post,
        )

    def _parse_url(
        self, post: dict[str, Any], topic: dict[str, Any] | None, topic_id: int, number: int
    ) -> str:
        slug = post.get("topic_slug") or (topic or {}).get("slug") or "-"
        return f"{self.base_url}/t/{slug}/{topic_id}/{number}"

    @staticmethod
    def _parse_title(post: dict[str, Any], topic: dict[str, Any] | None) -> str | None:
        title = post.get("topic_title") or (topic or {}).get("title")
        return str(title) if title else None

    @staticmethod
    def _parse_likes(post: dict[str, Any]) -> int | None:
        if post.get("like_count") is not None:
            return to_int(post["like_count"])
        for action in post.get("actions_summary") or []:
            if isinstance(action, dict) and action.get("id") == LIKE_ACTION:
                return to_int(action.get("count"))
        return 0 if "actions_summary" in post else None

    @staticmethod
    def _parse_author(post: dict[str, Any]) -> AuthorInfo | None:
        username = post.get("username")
        if not username:
            return None
        return AuthorInfo(
            handle=str(username),
            external_id=str(post["user_id"]) if post.get("user_id") is not None else None,
            display_name=post.get("name") or post.get("display_username") or None,
        )
