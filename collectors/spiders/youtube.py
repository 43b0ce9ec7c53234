"""YouTube: comment threads of videos or of a whole channel (Data API v3, API key).

`GET {base_url}/commentThreads?part=snippet&order=time&textFormat=html` with either
`videoId=<id>` for each of `options.video_ids`, or `allThreadsRelatedToChannelId=<id>` for
`options.channel_id` (every comment on the channel's videos). The source's query, when set, is
passed as `searchTerms`. The key goes in the `X-Goog-Api-Key` header rather than the URL, so that
it never shows in logged URLs. Pages follow `nextPageToken` until a comment already collected
(the cursor keeps the newest `publishedAt` per video or channel) or `options.max_pages`
(default 10).

Every comment is kept by default (`match_all`): the videos and the channel are chosen for the
brand, and "my order never came" under its video does not name it. Excluded terms still apply.

A video whose comments cannot be read (turned off, private, gone) is logged and skipped without
holding the cursor back; a spent daily quota stops the source until midnight Pacific time.

One item per thread: its top-level comment, with its like count and the thread's reply count.
The URL opens the video at that comment (`watch?v=<video>&lc=<comment id>`). The commenters'
channels are then looked up with `channels.list` (50 a call, 1 quota unit;
`options.fetch_channels = false` skips it) for their subscriber counts (unless hidden) and
descriptions; a failed lookup keeps the comments without them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scrapy.http import Response

from collectors.items import AuthorInfo, MentionItem
from collectors.spiders.base import MentionSpider, html_to_text, parse_time, to_int

PAGE_SIZE = 100
# A video or channel whose comments cannot be read (turned off, private, deleted).
UNREADABLE_REASONS = frozenset(
    {"commentsDisabled", "videoNotFound", "channelNotFound", "forbidden", "notFound"}
)
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
CHANNELS_PER_CALL = 50  # channels.list accepts at most 50 ids
WEB_URL = "https://www.youtube.com"


class YoutubeSpider(MentionSpider):
    name = "youtube"
    platform = "youtube"
    default_base_url = "https://www.googleapis.com/youtube/v3"
    required_secrets = ("youtube_api_key",)
    # The videos and channels are the brand's own (or chosen for it): their comments are about
    # the brand even when they do not name it. `options.match_all = false` filters them again.
    match_all_by_default = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pages_read: dict[str, int] = {}

    def _targets(self) -> list[tuple[str, str]]:
        """(API parameter, id) pairs: one per video, or the channel."""
        videos: Any = self.option("video_ids", [])
        if isinstance(videos, str):
            videos = [v for v in videos.replace(",", " ").split() if v]
        targets = [("videoId", str(v)) for v in videos]
        channel = self.option("channel_id", "")
        if channel:
            targets.append(("allThreadsRelatedToChannelId", str(channel)))
        return targets

    async def start(self) -> AsyncIterator[Any]:
        targets = self._targets()
        if not targets:
            self.malformed(
                self.base_url, "a YouTube source needs options.video_ids or options.channel_id"
            )
            return
        for param, value in targets:
            yield self._threads_request(param, value, page_token=None)

    def _threads_request(self, param: str, value: str, page_token: str | None) -> Any:
        params = {
            "part": "snippet",
            param: value,
            "order": "time",
            "textFormat": "html",
            "maxResults": PAGE_SIZE,
            "searchTerms": self.query or None,
            "pageToken": page_token,
        }
        return self.request(
            f"{self.base_url}/commentThreads",
            params=params,
            headers={"X-Goog-Api-Key": self.secret("youtube_api_key")},
            callback=self.parse,
            cb_kwargs={"param": param, "value": value},
            allow_statuses=(400, 403, 404),
        )

    def parse(self, response: Response, param: str = "", value: str = "") -> Iterator[Any]:
        self.pages_read[value] = self.pages_read.get(value, 0) + 1
        if response.status != 200:
            self._refused(response, param, value)
            return
        payload = self.load_json(response)
        if payload is None:
            return
        threads = payload.get("items") if isinstance(payload, dict) else None
        if not isinstance(threads, list):
            self.malformed(response, "no items list in the commentThreads reply")
            return
        cursor_key = f"newest:{value}"
        known = parse_time(self.cursor.get(cursor_key))
        reached_known = False
        items = []
        for thread in threads:
            item = self.guarded(response, self._item, thread)
            if item is None:
                continue
            if known is not None and item.created_at is not None and item.created_at <= known:
                reached_known = True
            if item.created_at is not None:
                self.advance_cursor(cursor_key, _iso(item.created_at))
            items.append(item)
        yield from self._with_channels(items)
        token = payload.get("nextPageToken")
        if token and threads and not reached_known:
            if self.pages_read[value] < int(self.option("max_pages", 10)):
                yield self._threads_request(param, value, page_token=str(token))
            elif known is not None:
                self.page_cap_reached(response.url, self.pages_read[value])

    def _refused(self, response: Response, param: str, value: str) -> None:
        """An API error: a video that cannot be read is skipped; a spent quota stops the source."""
        try:
            error = json.loads(response.body).get("error") or {}
            reason = str((error.get("errors") or [{}])[0].get("reason") or error.get("status"))
        except (ValueError, AttributeError, TypeError, IndexError):
            reason = "unreadable error"
        if reason in UNREADABLE_REASONS:  # asking again will not help: not a loss
            self.counters["errors"] += 1
            self.logger.warning(
                "source=%s url=%s %s %s skipped: %s",
                self.source.name,
                response.url,
                param,
                value,
                reason,
            )
        elif reason in QUOTA_REASONS:
            self.stop_for_rate_limit(next_quota_reset(), response.url)
        else:
            self.counters["errors"] += 1
            self.mark_loss(f"API refused (HTTP {response.status}: {reason}) ({response.url})")
            hint = ": check TOCSIN_YOUTUBE_API_KEY" if "key" in reason.lower() else ""
            self.logger.error(
                "source=%s url=%s API refused (HTTP %s: %s)%s",
                self.source.name,
                response.url,
                response.status,
                reason,
                hint,
            )

    # ------------------------------------------------------------------ commenters' subscribers

    def _with_channels(self, items: list[MentionItem]) -> Iterator[Any]:
        """Comment threads carry no audience size: ask channels.list for the commenters'.

        The items leave with its answer (or without it if that call fails).
        """
        ids = list(
            dict.fromkeys(i.author.external_id for i in items if i.author and i.author.external_id)
        )
        if not ids or not self.option("fetch_channels", True):
            yield from items
            return
        waiting = {id(i) for i in items}
        for start in range(0, len(ids), CHANNELS_PER_CALL):
            chunk = ids[start : start + CHANNELS_PER_CALL]
            group = [i for i in items if i.author and i.author.external_id in chunk]
            waiting -= {id(i) for i in group}
            request = self.request(
                f"{self.base_url}/channels",
                params={"part": "snippet,statistics", "id": ",".join(chunk), "maxResults": 50},
                headers={"X-Goog-Api-Key": self.secret("youtube_api_key")},
                callback=self.parse_channels,
                cb_kwargs={"items": group},
            )
            yield request.replace(errback=self.lookup_failed)
        yield from (i for i in items if id(i) in waiting)  # commenters without a channel id

    def parse_channels(self, response: Response, items: list[MentionItem]) -> Iterator[Any]:
        payload = self.load_json(response)
        channels = payload.get("items") if isinstance(payload, dict) else None
        if payload is not None and not isinstance(channels, list):
            channels = []  # channels.list leaves `items` out when none of the ids exists
        by_id = {c.get("id"): c for c in channels or [] if isinstance(c, dict)}
        for item in items:
            channel = by_id.get(item.author.external_id) if item.author else None
            if item.author is not None and channel is not None:
                statistics = channel.get("statistics") or {}
                if not statistics.get("hiddenSubscriberCount"):
                    item.author.followers = to_int(statistics.get("subscriberCount"))
                snippet = channel.get("snippet") or {}
                item.author.bio = snippet.get("description") or None
            yield item

    def _item(self, thread: dict[str, Any]) -> MentionItem:
        snippet = thread["snippet"]
        comment = snippet["topLevelComment"]
        top = comment["snippet"]
        display = str(top.get("textDisplay") or "")
        video_id = top.get("videoId") or snippet.get("videoId")
        return MentionItem(
            platform=self.platform,
            external_id=str(comment.get("id") or thread["id"]),
            text=display,
            clean_text=self._parse_clean_text(top, display),
            url=self._parse_url(video_id, snippet, str(comment.get("id") or thread["id"])),
            author=self._parse_author(top),
            created_at=parse_time(top["publishedAt"]),
            likes=to_int(top.get("likeCount")),
            replies=to_int(snippet.get("totalReplyCount")),
            thread_external_id=f"video:{video_id}" if video_id else None,
            raw=thread,
        )

    @staticmethod
    def _parse_clean_text(top: dict[str, Any], display: str) -> str:
        # textOriginal (what was typed) is only given to some callers; textDisplay is HTML.
        original = top.get("textOriginal")
        return str(original) if original else html_to_text(display)

    def _parse_url(self, video_id: str | None, snippet: dict[str, Any], comment_id: str) -> str:
        web = str(self.option("web_url", WEB_URL)).rstrip("/")
        if video_id:
            return f"{web}/watch?v={video_id}&lc={comment_id}"
        channel = snippet.get("channelId") or ""
        return f"{web}/channel/{channel}?lc={comment_id}"

    @staticmethod
    def _parse_author(top: dict[str, Any]) -> AuthorInfo | None:
        name = top.get("authorDisplayName")
        channel = (top.get("authorChannelId") or {}).get("value")
        if not name and not channel:
            return None
        # Since 2023 the display name is the channel's unique @handle; older replies gave a name.
        handle = name if isinstance(name, str) and name.startswith("@") else channel or name
        return AuthorInfo(
            handle=str(handle),
            external_id=channel,
            display_name=str(name) if name else None,
        )


def next_quota_reset(now: datetime | None = None) -> datetime:
    """The Data API's daily quota resets at midnight Pacific time."""
    pacific = (now or datetime.now(UTC)).astimezone(ZoneInfo("America/Los_Angeles"))
    midnight = datetime.combine(pacific.date() + timedelta(days=1), time(), tzinfo=pacific.tzinfo)
    return midnight.astimezone(UTC)


def _iso(moment: datetime) -> str:
    """One fixed format, so that cursor values compare as text in time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
