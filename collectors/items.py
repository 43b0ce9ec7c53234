"""The one normalised item every spider yields: `MentionItem` (with an optional `AuthorInfo`).

How a platform spider uses it: in its `parse` callback, turn each post of the platform's payload
into one `MentionItem` and yield it. Fill what the platform gives; leave the rest at its default.

    yield MentionItem(
        platform="mastodon",
        external_id=str(status["id"]),
        url=status.get("url") or self.build_url(...),   # build one when the API gives none
        text=status["content"],                          # as published, HTML allowed
        clean_text=html_to_text(status["content"]),      # from collectors.spiders.base
        created_at=parse_time(status["created_at"]),     # aware UTC datetime or None
        author=AuthorInfo(handle=acct, followers=..., verified=...),
        likes=..., reposts=..., replies=...,
        raw=status,                                      # the payload of this one post
    )

`clean_text` defaults to `text` when left empty (post_init), so sources without HTML fill `text`
only. `deleted=True` marks a post removed at its source (storage drops its text). The pipeline
(`collectors/pipelines.py`) checks the brand's keywords/handles/excluded terms, fills
`matched_reason`, and stores items in batches with `storage.queries.upsert_mentions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.queries import AuthorRecord, MentionRecord


@dataclass(slots=True)
class AuthorInfo:
    """Who wrote a post, as far as the platform says. `handle` is the platform's unique name."""

    handle: str
    external_id: str | None = None
    display_name: str | None = None
    followers: int | None = None
    verified: bool = False
    bio: str | None = None

    def to_record(self) -> AuthorRecord:
        return AuthorRecord(
            handle=self.handle,
            external_id=self.external_id,
            display_name=self.display_name,
            followers=self.followers,
            verified=self.verified,
            bio=self.bio,
        )


@dataclass(slots=True)
class MentionItem:
    """One public post, in Tocsin's shape, whatever platform it came from."""

    platform: str
    external_id: str
    text: str = ""
    clean_text: str = ""  # HTML removed; what is matched, scored and shown
    url: str | None = None
    title: str | None = None
    lang: str | None = None
    author: AuthorInfo | None = None
    created_at: datetime | None = None
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    parent_external_id: str | None = None
    thread_external_id: str | None = None
    rating: float | None = None  # app-store stars and the like
    raw: dict[str, Any] | None = None
    deleted: bool = False
    matched_reason: str | None = None  # set by the pipeline
    observed_at: datetime | None = None  # when the engagement counts were read (default: now)
    extra: dict[str, Any] = field(default_factory=dict)  # spider-to-pipeline hints, not stored

    def __post_init__(self) -> None:
        self.external_id = str(self.external_id)
        if not self.clean_text and self.text:
            self.clean_text = self.text

    @property
    def author_handle(self) -> str | None:
        return self.author.handle if self.author else None

    def to_record(self) -> MentionRecord:
        """The storage layer's record for this item."""
        return MentionRecord(
            platform=self.platform,
            external_id=self.external_id,
            text=self.text,
            clean_text=self.clean_text,
            url=self.url,
            title=self.title,
            lang=self.lang,
            created_at=self.created_at,
            parent_external_id=self.parent_external_id,
            thread_external_id=self.thread_external_id,
            rating=self.rating,
            likes=self.likes,
            reposts=self.reposts,
            replies=self.replies,
            observed_at=self.observed_at,
            matched_reason=self.matched_reason,
            raw=self.raw,
            deleted=self.deleted,
            author=self.author.to_record() if self.author else None,
        )
