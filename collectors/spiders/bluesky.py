"""Bluesky: `app.bsky.feed.searchPosts`, signed in with an app password.

Flow: `POST {base_url}/xrpc/com.atproto.server.createSession` with the account's handle and app
password (`TOCSIN_BLUESKY_HANDLE`, `TOCSIN_BLUESKY_APP_PASSWORD`) gives an `accessJwt`; then
`GET {base_url}/xrpc/app.bsky.feed.searchPosts?q=<query>&sort=latest` with it, following `cursor`
until a post already collected (the cursor keeps the newest `indexedAt`, sent back as `since`), the
end of the results, or `options.max_pages` (default 10). `base_url` defaults to https://bsky.social
(the account's PDS, which forwards the search to the AppView).

Search results carry no follower counts, so each page's authors are looked up with
`app.bsky.actor.getProfiles` (25 a call; `options.fetch_profiles = false` skips it); a failed
lookup keeps the posts without the counts.

A post is stored under its `at://` uri; its web URL is built from the author's handle and the
record key (`https://bsky.app/profile/<handle>/post/<rkey>`). Posts with no text (images only) are
kept: the images' alt texts, when written, become their clean text. Replies point at their parent
and thread root.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

from scrapy.http import Response

from collectors.items import AuthorInfo, MentionItem
from collectors.spiders.base import MentionSpider, parse_time, to_int

PAGE_SIZE = 100
PROFILES_PER_CALL = 25  # app.bsky.actor.getProfiles accepts at most 25 actors
WEB_URL = "https://bsky.app"
INVALID_HANDLE = "handle.invalid"


def record_key(uri: str) -> str:
    """The last segment of an at:// uri (`at://did/app.bsky.feed.post/<rkey>`)."""
    parts = uri.removeprefix("at://").split("/")
    if len(parts) != 3 or not parts[2]:
        raise ValueError(f"not a post uri: {uri!r}")
    return parts[2]


def alt_texts(embed: Any) -> list[str]:
    """Alt texts of the images in a post record's embed (plain, or with a quoted record)."""
    if not isinstance(embed, dict):
        return []
    media = embed.get("media") if isinstance(embed.get("media"), dict) else embed
    images = media.get("images") if isinstance(media, dict) else None
    return [
        str(image["alt"]).strip()
        for image in images or []
        if isinstance(image, dict) and str(image.get("alt") or "").strip()
    ]


class BlueskySpider(MentionSpider):
    name = "bluesky"
    platform = "bluesky"
    default_base_url = "https://bsky.social"
    required_secrets = ("bluesky_handle", "bluesky_app_password")

    access_jwt: str | None = None
    pages_read = 0

    async def start(self) -> AsyncIterator[Any]:
        if not self.query.strip():
            self.malformed(self.base_url, "a Bluesky source needs a query")
            return
        body = {
            "identifier": self.secret("bluesky_handle"),
            "password": self.secret("bluesky_app_password"),
        }
        yield self.request(
            f"{self.base_url}/xrpc/com.atproto.server.createSession",
            method="POST",
            body=json.dumps(body),
            headers={"Content-Type": "application/json"},
            callback=self.parse_session,
            allow_statuses=(400, 401),
        )

    def parse_session(self, response: Response) -> Iterator[Any]:
        if response.status != 200:
            self.counters["errors"] += 1
            self.mark_loss(f"sign-in refused: HTTP {response.status}")
            self.logger.error(
                "source=%s url=%s Bluesky refused the sign-in (HTTP %s): check "
                "TOCSIN_BLUESKY_HANDLE / TOCSIN_BLUESKY_APP_PASSWORD",
                self.source.name,
                response.url,
                response.status,
            )
            return
        session = self.load_json(response)
        token = session.get("accessJwt") if isinstance(session, dict) else None
        if not token:
            if session is not None:
                self.malformed(response, "no accessJwt in the session reply")
            return
        self.access_jwt = str(token)
        yield self._search_request(cursor=None)

    def _search_request(self, cursor: str | None) -> Any:
        params: dict[str, Any] = {
            "q": self.query,
            "sort": "latest",
            "limit": PAGE_SIZE,
            "since": self.cursor.get("newest_indexed_at"),
            "cursor": cursor,
        }
        lang = self.option("lang", "")
        if lang:
            params["lang"] = lang
        return self.request(
            f"{self.base_url}/xrpc/app.bsky.feed.searchPosts",
            params=params,
            headers={"Authorization": f"Bearer {self.access_jwt}"},
            callback=self.parse,
        )

    def parse(self, response: Response, **_: Any) -> Iterator[Any]:
        self.pages_read += 1
        payload = self.load_json(response)
        if payload is None:
            return
        posts = payload.get("posts") if isinstance(payload, dict) else None
        if not isinstance(posts, list):
            self.malformed(response, "no posts list in the search result")
            return
        known = parse_time(self.cursor.get("newest_indexed_at"))
        reached_known = False
        items = []
        for post in posts:
            item = self.guarded(response, self._item, post)
            if item is None:
                continue
            indexed = parse_time(post.get("indexedAt")) or item.created_at
            if known is not None and indexed is not None and indexed <= known:
                reached_known = True
            if indexed is not None:
                self.advance_cursor("newest_indexed_at", _iso(indexed))
            items.append(item)
        yield from self._with_profiles(items)
        next_cursor = payload.get("cursor")
        if next_cursor and posts and not reached_known:
            if self.pages_read < int(self.option("max_pages", 10)):
                yield self._search_request(cursor=str(next_cursor))
            elif known is not None:
                self.page_cap_reached(response.url, self.pages_read)

    # ------------------------------------------------------------------ authors' follower counts

    def _with_profiles(self, items: list[MentionItem]) -> Iterator[Any]:
        """Search results carry no follower counts: ask getProfiles for each page's authors.

        The items leave with the profiles' answer (or without it if that call fails).
        """
        if not items or not self.option("fetch_profiles", True):
            yield from items
            return
        dids = list(
            dict.fromkeys(i.author.external_id for i in items if i.author and i.author.external_id)
        )
        if not dids:
            yield from items
            return
        waiting = {id(i) for i in items}
        for start in range(0, len(dids), PROFILES_PER_CALL):
            chunk = dids[start : start + PROFILES_PER_CALL]
            group = [i for i in items if i.author and i.author.external_id in chunk]
            waiting -= {id(i) for i in group}
            request = self.request(
                f"{self.base_url}/xrpc/app.bsky.actor.getProfiles",
                params={"actors": chunk},
                headers={"Authorization": f"Bearer {self.access_jwt}"},
                callback=self.parse_profiles,
                cb_kwargs={"items": group},
            )
            yield request.replace(errback=self.lookup_failed)
        yield from (i for i in items if id(i) in waiting)  # authors without a DID

    def parse_profiles(self, response: Response, items: list[MentionItem]) -> Iterator[Any]:
        payload = self.load_json(response)
        profiles = payload.get("profiles") if isinstance(payload, dict) else None
        if payload is not None and not isinstance(profiles, list):
            self.malformed(response, "no profiles list", loss=False)
        by_did = {p.get("did"): p for p in profiles or [] if isinstance(p, dict)}
        for item in items:
            profile = by_did.get(item.author.external_id) if item.author else None
            if item.author is not None and profile is not None:
                item.author.followers = to_int(profile.get("followersCount"))
                item.author.bio = profile.get("description") or item.author.bio
                item.author.display_name = profile.get("displayName") or item.author.display_name
            yield item

    def _item(self, post: dict[str, Any]) -> MentionItem:
        uri = str(post["uri"])
        record = post.get("record") or {}
        author = post["author"]
        text = str(record.get("text") or "")
        langs = record.get("langs") or []
        reply = record.get("reply") or {}
        return MentionItem(
            platform=self.platform,
            external_id=uri,
            text=text,
            clean_text=text or "\n".join(alt_texts(record.get("embed"))),
            url=self._parse_url(uri, author),
            lang=str(langs[0]) if langs else None,
            author=self._parse_author(author),
            created_at=parse_time(record.get("createdAt")) or parse_time(post.get("indexedAt")),
            likes=to_int(post.get("likeCount")),
            reposts=to_int(post.get("repostCount")),
            replies=to_int(post.get("replyCount")),
            parent_external_id=(reply.get("parent") or {}).get("uri"),
            thread_external_id=(reply.get("root") or {}).get("uri") or uri,
            raw=post,
        )

    def _parse_url(self, uri: str, author: dict[str, Any]) -> str:
        who = author.get("handle") or author.get("did")
        if not who or who == INVALID_HANDLE:
            who = author.get("did") or uri.removeprefix("at://").split("/")[0]
        web = str(self.option("web_url", WEB_URL)).rstrip("/")
        return f"{web}/profile/{who}/post/{record_key(uri)}"

    @staticmethod
    def _parse_author(author: dict[str, Any]) -> AuthorInfo:
        verification = author.get("verification") or {}
        handle = str(author["handle"])
        if handle == INVALID_HANDLE:  # the handle no longer resolves; the DID stays unique
            handle = str(author.get("did") or handle)
        return AuthorInfo(
            handle=handle,
            external_id=author.get("did"),
            display_name=author.get("displayName") or None,
            followers=to_int(author.get("followersCount")),
            verified=verification.get("verifiedStatus") == "valid",
            bio=author.get("description") or None,
        )


def _iso(moment: datetime) -> str:
    """One fixed format, so that cursor values compare as text in time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
