"""Reddit: search and subreddit `new` listings through the OAuth API, application-only.

Flow: one POST to `{auth_url}/api/v1/access_token` (HTTP basic auth with the app's client id and
secret, `grant_type=client_credentials`) gives a bearer token; the listings then come from
`{base_url}` (default https://oauth.reddit.com):

* `mode = "search"` (the default when the source has a query): `/search` or, with
  `options.subreddits`, `/r/<a+b>/search?restrict_sr=1`, sorted by new;
* `mode = "new"`: `/r/<a+b>/new` (every new post of those subreddits; set `match_all` when the
  subreddit is the brand's own);
* `mode = "comments"`: `/r/<a+b>/comments`, the newest comments of those subreddits (Reddit's
  search does not reach comments).

Pages follow `after` until the listing reaches a post already seen (the cursor keeps the newest
`created_utc` and its fullname), up to `options.max_pages` (default 10). Deleted and removed posts
(body "[deleted]"/"[removed]", or removed by a moderator) are stored as deleted; an author
"[deleted]" (account gone) leaves the post without an author.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

from scrapy.http import Response

from collectors.items import AuthorInfo, MentionItem
from collectors.spiders.base import MentionSpider, html_to_text, parse_time, to_int

DEFAULT_AUTH_URL = "https://www.reddit.com"
DEFAULT_WEB_URL = "https://www.reddit.com"
GONE_MARKERS = frozenset({"[deleted]", "[removed]"})
PAGE_SIZE = 100


class RedditSpider(MentionSpider):
    name = "reddit"
    platform = "reddit"
    default_base_url = "https://oauth.reddit.com"
    required_secrets = ("reddit_client_id", "reddit_client_secret")

    token: str | None = None
    pages_read = 0

    # ------------------------------------------------------------------ requests

    @property
    def auth_url(self) -> str:
        """Where the token comes from; a custom base URL (self-hosted proxy, tests) serves both."""
        default = self.base_url if self.source.base_url else DEFAULT_AUTH_URL
        return str(self.option("auth_url", default)).rstrip("/")

    @property
    def web_url(self) -> str:
        return str(self.option("web_url", DEFAULT_WEB_URL)).rstrip("/")

    @property
    def mode(self) -> str:
        return str(self.option("mode", "search" if self.query else "new"))

    @property
    def subreddits(self) -> str:
        value: Any = self.option("subreddits", [])
        names = value.split("+") if isinstance(value, str) else [str(v) for v in value]
        return "+".join(n.strip().removeprefix("r/").removeprefix("/r/") for n in names if n)

    async def start(self) -> AsyncIterator[Any]:
        if self.mode not in ("search", "new", "comments") or (
            self.mode != "search" and not self.subreddits
        ):
            self.malformed(
                self.base_url, f"mode {self.mode!r} needs a query (search) or options.subreddits"
            )
            return
        pair = f"{self.secret('reddit_client_id')}:{self.secret('reddit_client_secret')}"
        yield self.request(
            f"{self.auth_url}/api/v1/access_token",
            method="POST",
            body="grant_type=client_credentials",
            headers={
                "Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii"),
                "Content-Type": "application/x-www-form-urlencoded",
                **self._user_agent(),
            },
            callback=self.parse_token,
            allow_statuses=(400, 401, 403),
        )

    def _user_agent(self) -> dict[str, str]:
        agent = self.option("user_agent", "")
        return {"User-Agent": str(agent)} if agent else {}

    def parse_token(self, response: Response) -> Iterator[Any]:
        if response.status != 200:
            self.mark_loss(f"token refused: HTTP {response.status}")
            self.counters["errors"] += 1
            self.logger.error(
                "source=%s url=%s Reddit refused the app credentials (HTTP %s): check "
                "TOCSIN_REDDIT_CLIENT_ID / TOCSIN_REDDIT_CLIENT_SECRET",
                self.source.name,
                response.url,
                response.status,
            )
            return
        payload = self.load_json(response)
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not token:
            if payload is not None:
                self.malformed(response, "no access_token in the token reply")
            return
        self.token = str(token)
        yield self._listing_request(after=None)

    def _listing_request(self, after: str | None) -> Any:
        params: dict[str, Any] = {"limit": PAGE_SIZE, "raw_json": 1, "after": after}
        where = f"/r/{self.subreddits}" if self.subreddits else ""
        if self.mode == "search":
            params.update(q=self.query, sort="new", t="all", type="link")
            if self.subreddits:
                params["restrict_sr"] = 1
            url = f"{self.base_url}{where}/search"
        else:
            url = f"{self.base_url}{where}/{self.mode}"
        headers = {"Authorization": f"Bearer {self.token}", **self._user_agent()}
        return self.request(url, params=params, headers=headers, callback=self.parse)

    # ------------------------------------------------------------------ parsing

    def parse(self, response: Response, **_: Any) -> Iterator[Any]:
        self.pages_read += 1
        payload = self.load_json(response)
        if payload is None:
            return
        data = payload.get("data") if isinstance(payload, dict) else None
        children = data.get("children") if isinstance(data, dict) else None
        if not isinstance(children, list):
            self.malformed(response, "not a Listing (no data.children)")
            return
        seen_before = self.cursor.get("newest_created_utc")
        reached_known = False
        for child in children:
            item = self.guarded(response, self._item, child)
            if item is None:
                continue
            created = float(child["data"]["created_utc"])
            if seen_before is not None and created <= float(seen_before):
                reached_known = True
            self._stage_cursor(created, item.external_id)
            yield item
        after = data.get("after") if isinstance(data, dict) else None
        if after and not reached_known and children:
            if self.pages_read < int(self.option("max_pages", 10)):
                yield self._listing_request(after=str(after))
            elif seen_before is not None:
                self.page_cap_reached(response.url, self.pages_read)

    def _stage_cursor(self, created: float, fullname: str) -> None:
        newest = self.new_cursor.get("newest_created_utc")
        if newest is None or created > float(newest):
            self.update_cursor(newest_created_utc=created, newest_fullname=fullname)

    def _item(self, child: dict[str, Any]) -> MentionItem:
        kind = child["kind"]
        post = child["data"]
        if kind not in ("t3", "t1"):
            raise ValueError(f"unexpected listing kind {kind!r}")
        is_submission = kind == "t3"
        body = str(post.get("selftext" if is_submission else "body") or "")
        body_html = post.get("selftext_html" if is_submission else "body_html")
        return MentionItem(
            platform=self.platform,
            external_id=str(post.get("name") or f"{kind}_{post['id']}"),
            text=body,
            clean_text=self._parse_clean_text(post, body, body_html, is_submission),
            url=self._parse_url(post, kind),
            title=post.get("title") if is_submission else None,
            author=self._parse_author(post),
            created_at=parse_time(post["created_utc"]),
            likes=to_int(post.get("score", post.get("ups"))),
            reposts=to_int(post.get("num_crossposts")),
            replies=to_int(post.get("num_comments")) if is_submission else None,
            parent_external_id=None if is_submission else post.get("parent_id"),
            thread_external_id=str(post["name"]) if is_submission else post.get("link_id"),
            deleted=self._parse_deleted(post, body),
            raw=post,
        )

    @staticmethod
    def _parse_clean_text(
        post: dict[str, Any], body: str, body_html: str | None, is_submission: bool
    ) -> str:
        text = html_to_text(body_html) if body_html else body
        title = str(post.get("title") or "").strip() if is_submission else ""
        # A submission's title is most of what it says (link posts have nothing else).
        return "\n\n".join(part for part in (title, text) if part)

    def _parse_url(self, post: dict[str, Any], kind: str) -> str:
        permalink = post.get("permalink")
        if permalink:
            return self.web_url + urlsplit(str(permalink)).path
        if kind == "t3":
            return f"{self.web_url}/comments/{post['id']}/"
        thread = str(post.get("link_id") or "").removeprefix("t3_")
        return f"{self.web_url}/comments/{thread}/_/{post['id']}/"

    @staticmethod
    def _parse_author(post: dict[str, Any]) -> AuthorInfo | None:
        handle = post.get("author")
        if not handle or handle in GONE_MARKERS:
            return None
        return AuthorInfo(handle=str(handle), external_id=post.get("author_fullname"))

    @staticmethod
    def _parse_deleted(post: dict[str, Any], body: str) -> bool:
        return body.strip() in GONE_MARKERS or bool(post.get("removed_by_category"))
