"""Tocsin's tables (SQLModel). Schema changes go through Alembic (storage/migrations).

Enumerated fields are stored as short strings; the allowed values live in the StrEnums below so
that every module spells them the same way.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import JSONType, UTCDateTime, utcnow


def _json(**kwargs: Any) -> Any:
    return Field(default_factory=kwargs.pop("default_factory", dict), sa_type=JSONType, **kwargs)


def _when(*, index: bool = False, nullable: bool = True, default_now: bool = False) -> Any:
    if default_now:
        return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=index)
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class Sentiment(StrEnum):
    negative = "negative"
    neutral = "neutral"
    positive = "positive"


class UrgencyTier(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    critical = "critical"


class CaseStatus(StrEnum):
    new = "new"
    assigned = "assigned"
    replied = "replied"
    handed_off = "handed_off"
    resolved = "resolved"
    dismissed = "dismissed"


OPEN_CASE_STATUSES = (
    CaseStatus.new,
    CaseStatus.assigned,
    CaseStatus.replied,
    CaseStatus.handed_off,
)


class ReplyAction(StrEnum):
    public_reply = "public_reply"
    dm_invite = "dm_invite"
    phone_callback = "phone_callback"


class ReplyStatus(StrEnum):
    draft = "draft"
    approved = "approved"
    sent = "sent"
    rejected = "rejected"


class Role(StrEnum):
    agent = "agent"
    lead = "lead"
    admin = "admin"


class AlertStatus(StrEnum):
    pending = "pending"
    sending = "sending"  # claimed by a sender (with a lease); back to pending if it dies
    sent = "sent"
    failed = "failed"  # gave up after the last retry; kept for the record
    grouped = "grouped"  # folded into a digest alert


class Brand(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True, index=True)
    keywords: list[str] = _json(default_factory=list)
    handles: list[str] = _json(default_factory=list)
    excluded_terms: list[str] = _json(default_factory=list)
    languages: list[str] = _json(default_factory=list)
    created_at: datetime = _when(default_now=True)


class Source(SQLModel, table=True):
    """One (source kind, query) pair to collect, with its incremental state."""

    __table_args__ = (UniqueConstraint("name", name="uq_source_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=50, index=True)
    brand_id: int | None = Field(default=None, foreign_key="brand.id", index=True)
    query: str = Field(default="", sa_type=Text)
    base_url: str = Field(default="", max_length=2000)
    options: dict[str, Any] = _json()
    enabled: bool = True
    interval_minutes: int = 15
    cursor: dict[str, Any] = _json()
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    not_before: datetime | None = _when()
    last_run: datetime | None = _when()
    last_error: str | None = Field(default=None, sa_type=Text)


class Author(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("platform", "handle", name="uq_author_platform_handle"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=50)
    handle: str = Field(max_length=300)
    external_id: str | None = Field(default=None, max_length=300)
    display_name: str | None = Field(default=None, max_length=500)
    followers: int | None = None
    verified: bool = False
    bio: str | None = Field(default=None, sa_type=Text)
    vip: bool = False
    journalist: bool = False
    updated_at: datetime = _when(default_now=True)


class Incident(SQLModel, table=True):
    """A cluster of similar negative mentions arriving together (a bad buzz forming)."""

    id: int | None = Field(default=None, primary_key=True)
    brand_id: int | None = Field(default=None, foreign_key="brand.id", index=True)
    title: str = Field(default="", max_length=500)
    keywords: list[str] = _json(default_factory=list)
    status: str = Field(default="open", max_length=20, index=True)
    mention_count: int = 0
    first_seen_at: datetime = _when(default_now=True)
    last_seen_at: datetime = _when(default_now=True)


class Mention(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("platform", "external_id", name="uq_mention_platform_external_id"),
        Index("ix_mention_brand_created", "brand_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=50)
    external_id: str = Field(max_length=300)
    source_id: int | None = Field(default=None, foreign_key="source.id", index=True)
    brand_id: int | None = Field(default=None, foreign_key="brand.id")
    url: str | None = Field(default=None, max_length=2000)
    text: str = Field(default="", sa_type=Text)  # as published (may hold HTML)
    clean_text: str = Field(default="", sa_type=Text)  # HTML removed; what is scored and shown
    title: str | None = Field(default=None, max_length=1000)
    lang: str | None = Field(default=None, max_length=20)
    author_id: int | None = Field(default=None, foreign_key="author.id", index=True)
    created_at: datetime | None = _when(index=True)  # overview and report windows
    collected_at: datetime = _when(default_now=True)
    parent_external_id: str | None = Field(default=None, max_length=300)
    thread_external_id: str | None = Field(default=None, max_length=300, index=True)
    rating: float | None = None  # app-store stars and the like
    likes: int | None = None  # latest observed engagement (history in EngagementSnapshot)
    reposts: int | None = None
    replies: int | None = None
    engagement_observed_at: datetime | None = _when()
    matched_reason: str | None = Field(default=None, max_length=500)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    raw: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    deleted: bool = False
    scored: bool = Field(default=False, index=True)


class EngagementSnapshot(SQLModel, table=True):
    __tablename__ = "engagement_snapshot"

    id: int | None = Field(default=None, primary_key=True)
    mention_id: int = Field(foreign_key="mention.id", index=True)
    observed_at: datetime = _when(default_now=True)
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None


class Score(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("mention_id", "model_version", name="uq_score_mention_model"),
    )

    id: int | None = Field(default=None, primary_key=True)
    mention_id: int = Field(foreign_key="mention.id", index=True)
    model_version: str = Field(max_length=100)
    sentiment_label: str = Field(max_length=20)
    sentiment_negative: float = 0.0
    sentiment_neutral: float = 0.0
    sentiment_positive: float = 0.0
    urgency_tier: str = Field(max_length=20, index=True)
    urgency_score: float = 0.0
    is_complaint: bool = False
    complaint_score: float = 0.0
    complaint_severity: int = 0
    buzz_risk: float = 0.0
    buzz_tier: str = Field(default="low", max_length=20)
    buzz_reasons: list[str] = _json(default_factory=list)
    priority: float = 0.0
    scored_at: datetime = _when(default_now=True)


class TeamMember(SQLModel, table=True):
    __tablename__ = "team_member"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320, unique=True, index=True)
    role: str = Field(default=Role.agent, max_length=20)
    languages: list[str] = _json(default_factory=list)
    skills: list[str] = _json(default_factory=list)
    max_open_cases: int = 10
    on_shift: bool = False
    requires_approval: bool = False  # newer agents: drafts need a lead's approval
    password_hash: str | None = Field(default=None, max_length=200)
    active: bool = True
    created_at: datetime = _when(default_now=True)


class Case(SQLModel, table=True):
    """One mention (or incident) to handle. `version` guards every change (optimistic locking)."""

    __table_args__ = (
        Index("ix_case_status_priority", "status", "priority"),
        # The queue's order: lets the unfiltered page read 50 rows instead of sorting them all.
        Index("ix_case_priority_id", "priority", "id"),
        Index("ix_case_assignee_status", "assignee_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    mention_id: int | None = Field(default=None, foreign_key="mention.id", unique=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    brand_id: int | None = Field(default=None, foreign_key="brand.id", index=True)
    # Copied from the mention and score so that the queue filters without joins.
    platform: str | None = Field(default=None, max_length=50, index=True)
    lang: str | None = Field(default=None, max_length=20, index=True)
    urgency_tier: str = Field(default=UrgencyTier.normal, max_length=20, index=True)
    buzz_risk: float = 0.0
    topic: str | None = Field(default=None, max_length=100)
    status: str = Field(default=CaseStatus.new, max_length=20)
    assignee_id: int | None = Field(default=None, foreign_key="team_member.id")
    priority: float = 0.0  # higher is handled first
    sla_due_at: datetime | None = _when(index=True)
    first_response_at: datetime | None = _when()
    handoff: str | None = Field(default=None, max_length=30)
    tags: list[str] = _json(default_factory=list)
    created_at: datetime = _when(default_now=True, index=True)
    updated_at: datetime = _when(default_now=True)
    resolved_at: datetime | None = _when()
    version: int = Field(default=1, nullable=False)


class CaseNote(SQLModel, table=True):
    __tablename__ = "case_note"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="team_member.id")
    text: str = Field(sa_type=Text)
    created_at: datetime = _when(default_now=True)


class CaseView(SQLModel, table=True):
    """Who is looking at a case right now (refreshed while the page is open)."""

    __tablename__ = "case_view"
    __table_args__ = (UniqueConstraint("case_id", "member_id", name="uq_case_view"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    member_id: int = Field(foreign_key="team_member.id")
    seen_at: datetime = _when(default_now=True)


class Reply(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="team_member.id")
    text: str = Field(sa_type=Text)
    action: str = Field(default=ReplyAction.public_reply, max_length=30)
    status: str = Field(default=ReplyStatus.draft, max_length=20)
    approved_by_id: int | None = Field(default=None, foreign_key="team_member.id")
    external_id: str | None = Field(default=None, max_length=300)
    external_url: str | None = Field(default=None, max_length=2000)
    created_at: datetime = _when(default_now=True)
    sent_at: datetime | None = _when()


class SupportTask(SQLModel, table=True):
    """A phone-callback request handed to support."""

    __tablename__ = "support_task"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    kind: str = Field(default=ReplyAction.phone_callback, max_length=30)
    details: str = Field(default="", sa_type=Text)
    status: str = Field(default="open", max_length=20)
    created_by_id: int | None = Field(default=None, foreign_key="team_member.id")
    created_at: datetime = _when(default_now=True)
    done_at: datetime | None = _when()


class Alert(SQLModel, table=True):
    """The outbox: written first, then sent; retried with backoff until it is delivered."""

    __table_args__ = (
        UniqueConstraint("dedup_key", "channel", name="uq_alert_dedup_channel"),
        Index("ix_alert_status_next", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=50)
    rule: str = Field(default="", max_length=100)
    brand_id: int | None = Field(default=None, foreign_key="brand.id")
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id")
    channel: str = Field(max_length=100)
    recipients: list[str] = _json(default_factory=list)
    dedup_key: str = Field(max_length=300)
    subject: str = Field(default="", max_length=500)
    body: str = Field(default="", sa_type=Text)
    payload: dict[str, Any] = _json()
    status: str = Field(default=AlertStatus.pending, max_length=20)
    attempts: int = 0
    next_attempt_at: datetime | None = _when()
    last_error: str | None = Field(default=None, sa_type=Text)
    digest_id: int | None = Field(default=None, foreign_key="alert.id")
    created_at: datetime = _when(default_now=True)
    sent_at: datetime | None = _when()


class Feedback(SQLModel, table=True):
    """A team member's correction of a score, used for retraining."""

    id: int | None = Field(default=None, primary_key=True)
    mention_id: int = Field(foreign_key="mention.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="team_member.id")
    field: str = Field(max_length=30)  # sentiment | urgency | complaint | severity
    old_value: str | None = Field(default=None, max_length=50)
    new_value: str = Field(max_length=50)
    model_version: str | None = Field(default=None, max_length=100)
    created_at: datetime = _when(default_now=True)


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_entity", "entity_type", "entity_id"),)

    id: int | None = Field(default=None, primary_key=True)
    actor_id: int | None = Field(default=None, foreign_key="team_member.id")
    actor: str = Field(default="system", max_length=200)
    action: str = Field(max_length=100)
    entity_type: str = Field(max_length=50)
    entity_id: int | None = None
    details: dict[str, Any] = _json()
    created_at: datetime = _when(default_now=True)


class ReportRun(SQLModel, table=True):
    """A weekly report that was built (the board links to these)."""

    __tablename__ = "report_run"
    __table_args__ = (UniqueConstraint("brand_id", "week", name="uq_report_brand_week"),)

    id: int | None = Field(default=None, primary_key=True)
    brand_id: int = Field(foreign_key="brand.id")
    week: str = Field(max_length=10)  # ISO week, e.g. 2026-W47
    html_path: str = Field(max_length=1000)
    pdf_path: str | None = Field(default=None, max_length=1000)
    figures: dict[str, Any] = _json()
    created_at: datetime = _when(default_now=True)
    sent_at: datetime | None = _when()


class JobLock(SQLModel, table=True):
    """Service jobs: a row claim so that several service processes never run one job twice."""

    __tablename__ = "job_lock"

    name: str = Field(primary_key=True, max_length=200)
    holder: str | None = Field(default=None, max_length=200)
    locked_until: datetime | None = _when()
    last_started_at: datetime | None = _when()
    last_finished_at: datetime | None = _when()
    last_error: str | None = Field(default=None, sa_type=Text)
