"""Data access: keyword-only functions over a session from `storage.db.session_scope()`.

Each function does one job in as few statements as it can; callers own the transaction.
Sections: mentions and authors · scoring · cases and the queue · audit · stats.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, case, func, insert, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlmodel import Session, SQLModel, col

from storage import bulk
from storage.models import (
    OPEN_CASE_STATUSES,
    Alert,
    AlertStatus,
    AuditEvent,
    Author,
    Brand,
    Case,
    CaseNote,
    CaseStatus,
    CaseView,
    EngagementSnapshot,
    Feedback,
    Incident,
    Mention,
    Reply,
    ReportRun,
    Score,
    SupportTask,
    TeamMember,
)
from storage.types import utcnow

MAX_TEXT_CHARS = 100_000
UPSERT_BATCH = 2_000


# ----------------------------------------------------------------------------- mentions, authors


@dataclass(slots=True)
class AuthorRecord:
    handle: str
    external_id: str | None = None
    display_name: str | None = None
    followers: int | None = None
    verified: bool = False
    bio: str | None = None


@dataclass(slots=True)
class MentionRecord:
    """One collected post, normalised, as the collectors hand it to storage."""

    platform: str
    external_id: str
    text: str = ""
    clean_text: str | None = None  # HTML removed; defaults to `text`
    url: str | None = None
    title: str | None = None
    lang: str | None = None
    created_at: datetime | None = None
    parent_external_id: str | None = None
    thread_external_id: str | None = None
    rating: float | None = None
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    observed_at: datetime | None = None
    matched_reason: str | None = None
    raw: dict[str, Any] | None = None
    deleted: bool = False
    author: AuthorRecord | None = None


@dataclass(slots=True)
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (index in input, why)
    warnings: list[tuple[int, str]] = field(default_factory=list)
    mention_ids: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, other: UpsertResult, offset: int) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.rejected += [(i + offset, why) for i, why in other.rejected]
        self.warnings += [(i + offset, why) for i, why in other.warnings]
        self.mention_ids.update(other.mention_ids)


def clean_text_value(value: str | None) -> str | None:
    """Text the databases accept: no NUL bytes, lone surrogates replaced by U+FFFD."""
    if value is None:
        return None
    value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text_value(value)
    if isinstance(value, dict):
        return {str(clean_text_value(str(k))): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    return value


def _nonnegative(value: Any) -> int | None:
    if value is None:
        return None
    number = int(value)
    return max(number, 0)


def _validated(index: int, record: MentionRecord, result: UpsertResult) -> MentionRecord | None:
    """A copy of the record that the database will accept, or None (with the reason recorded)."""
    platform = clean_text_value(record.platform or "")
    external_id = clean_text_value(str(record.external_id or ""))
    if not platform or not external_id:
        result.rejected.append((index, "missing platform or external_id"))
        return None
    if len(external_id) > 300:
        result.rejected.append((index, "external_id longer than 300 characters"))
        return None
    try:
        text = clean_text_value(record.text or "") or ""
        clean = clean_text_value(record.clean_text if record.clean_text is not None else text) or ""
        if len(text) > MAX_TEXT_CHARS or len(clean) > MAX_TEXT_CHARS:
            result.warnings.append((index, f"text cut to {MAX_TEXT_CHARS} characters"))
            text, clean = text[:MAX_TEXT_CHARS], clean[:MAX_TEXT_CHARS]
        for moment in (record.created_at, record.observed_at):
            if moment is not None and not isinstance(moment, datetime):
                raise TypeError("created_at/observed_at must be datetimes")
        author = record.author
        if author is not None:
            handle = clean_text_value(author.handle or "")
            author = (
                AuthorRecord(
                    handle=handle[:300],
                    external_id=clean_text_value(author.external_id),
                    display_name=(clean_text_value(author.display_name) or "")[:500] or None,
                    followers=_nonnegative(author.followers),
                    verified=bool(author.verified),
                    bio=clean_text_value(author.bio),
                )
                if handle
                else None
            )
        return MentionRecord(
            platform=platform[:50],
            external_id=external_id,
            text="" if record.deleted else text,
            clean_text="" if record.deleted else clean,
            url=(clean_text_value(record.url) or "")[:2000] or None,
            title=(clean_text_value(record.title) or "")[:1000] or None,
            lang=(clean_text_value(record.lang) or "")[:20] or None,
            created_at=record.created_at,
            parent_external_id=(clean_text_value(record.parent_external_id) or "")[:300] or None,
            thread_external_id=(clean_text_value(record.thread_external_id) or "")[:300] or None,
            rating=float(record.rating) if record.rating is not None else None,
            likes=_nonnegative(record.likes),
            reposts=_nonnegative(record.reposts),
            replies=_nonnegative(record.replies),
            observed_at=record.observed_at,
            matched_reason=(clean_text_value(record.matched_reason) or "")[:500] or None,
            raw=_clean_json(record.raw) if record.raw is not None else None,
            deleted=bool(record.deleted),
            author=author,
        )
    except (TypeError, ValueError) as exc:
        result.rejected.append((index, f"invalid field: {exc}"))
        return None


def _table(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


MENTION = _table(Mention)


def _insert_for(session: Session, model: type[SQLModel]) -> Any:
    dialect = session.get_bind().dialect.name
    table = _table(model)
    return pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)


def _upsert_authors(
    session: Session, records: Sequence[MentionRecord]
) -> dict[tuple[str, str], int]:
    latest: dict[tuple[str, str], AuthorRecord] = {}
    for record in records:
        if record.author is not None:
            latest[(record.platform, record.author.handle)] = record.author
    if not latest:
        return {}
    now = utcnow()
    rows = [
        {
            "platform": platform,
            "handle": handle,
            "external_id": a.external_id,
            "display_name": a.display_name,
            "followers": a.followers,
            "verified": a.verified,
            "bio": a.bio,
            "vip": False,
            "journalist": False,
            "updated_at": now,
        }
        for (platform, handle), a in latest.items()
    ]
    found = bulk.upsert(
        session,
        table=_table(Author),
        rows=rows,
        conflict=("platform", "handle"),
        update=_author_update,
        returning=("platform", "handle", "id"),
    )
    return {(p, h): i for p, h, i in found}


def _author_update(stmt: Any) -> dict[str, Any]:
    excluded, author = stmt.excluded, _table(Author).c
    return {
        "external_id": func.coalesce(excluded.external_id, author.external_id),
        "display_name": func.coalesce(excluded.display_name, author.display_name),
        "followers": func.coalesce(excluded.followers, author.followers),
        "verified": excluded.verified,
        "bio": func.coalesce(excluded.bio, author.bio),
        "updated_at": excluded.updated_at,
    }


def _existing_mentions(
    session: Session, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    if not keys:
        return {}
    # One IN list per platform: the unique (platform, external_id) index serves it on every
    # engine, where a row-value IN list makes PostgreSQL scan the table.
    by_platform: dict[str, list[str]] = {}
    for platform, external_id in keys:
        by_platform.setdefault(platform, []).append(external_id)
    found: dict[tuple[str, str], int] = {}
    for platform, external_ids in by_platform.items():
        rows = session.execute(
            select(col(Mention.external_id), col(Mention.id)).where(
                col(Mention.platform) == platform, col(Mention.external_id).in_(external_ids)
            )
        ).all()
        found.update({(platform, e): i for e, i in rows})
    return found


def _upsert_batch(
    session: Session,
    records: Sequence[tuple[int, MentionRecord]],
    *,
    source_id: int | None,
    brand_id: int | None,
) -> UpsertResult:
    result = UpsertResult()
    # The last copy of a post within one batch wins (a page can repeat a post).
    unique: dict[tuple[str, str], MentionRecord] = {}
    for _, record in records:
        unique[(record.platform, record.external_id)] = record
    author_ids = _upsert_authors(session, list(unique.values()))
    existing = _existing_mentions(session, list(unique))
    now = utcnow()
    rows = []
    for key, r in unique.items():
        rows.append(
            {
                "platform": r.platform,
                "external_id": r.external_id,
                "source_id": source_id,
                "brand_id": brand_id,
                "url": r.url,
                "text": r.text,
                "clean_text": r.clean_text,
                "title": r.title,
                "lang": r.lang,
                "author_id": author_ids.get((r.platform, r.author.handle)) if r.author else None,
                "created_at": r.created_at,
                "collected_at": now,
                "parent_external_id": r.parent_external_id,
                "thread_external_id": r.thread_external_id,
                "rating": r.rating,
                "likes": r.likes,
                "reposts": r.reposts,
                "replies": r.replies,
                "engagement_observed_at": r.observed_at or now,
                "matched_reason": r.matched_reason,
                "raw": r.raw,
                "deleted": r.deleted,
                "scored": False,
            }
        )
        if key in existing:
            result.updated += 1
        else:
            result.inserted += 1
    found = bulk.upsert(
        session,
        table=MENTION,
        rows=rows,
        conflict=("platform", "external_id"),
        update=_mention_update,
        returning=("platform", "external_id", "id"),
    )
    ids = {(p, e): i for p, e, i in found}
    result.mention_ids = ids
    snapshots = [
        {
            "mention_id": ids[(r.platform, r.external_id)],
            "observed_at": r.observed_at or now,
            "likes": r.likes,
            "reposts": r.reposts,
            "replies": r.replies,
        }
        for r in unique.values()
        if (r.likes, r.reposts, r.replies) != (None, None, None)
    ]
    bulk.insert_many(session, table=_table(EngagementSnapshot), rows=snapshots)
    deleted_ids = [ids[(r.platform, r.external_id)] for r in unique.values() if r.deleted]
    if deleted_ids:
        session.execute(
            update(Mention).where(col(Mention.id).in_(deleted_ids)).values(text="", clean_text="")
        )
    return result


def _mention_update(stmt: Any) -> dict[str, Any]:
    excluded, mention = stmt.excluded, MENTION.c
    newer = or_(
        mention.engagement_observed_at.is_(None),
        excluded.engagement_observed_at >= mention.engagement_observed_at,
    )

    def newest(column: str) -> Any:
        return case(
            (newer, func.coalesce(excluded[column], mention[column])), else_=mention[column]
        )

    return {
        "text": case((mention.deleted, ""), else_=excluded.text),
        "clean_text": case((mention.deleted, ""), else_=excluded.clean_text),
        "url": func.coalesce(excluded.url, mention.url),
        "title": func.coalesce(excluded.title, mention.title),
        "lang": func.coalesce(excluded.lang, mention.lang),
        "author_id": func.coalesce(excluded.author_id, mention.author_id),
        "source_id": func.coalesce(mention.source_id, excluded.source_id),
        "brand_id": func.coalesce(mention.brand_id, excluded.brand_id),
        "rating": func.coalesce(excluded.rating, mention.rating),
        "likes": newest("likes"),
        "reposts": newest("reposts"),
        "replies": newest("replies"),
        "engagement_observed_at": case(
            (newer, excluded.engagement_observed_at), else_=mention.engagement_observed_at
        ),
        "raw": func.coalesce(excluded.raw, mention.raw),
        # Once deleted at the source, a post stays deleted and textless.
        "deleted": or_(mention.deleted, excluded.deleted),
    }


def upsert_mentions(
    session: Session,
    *,
    records: Iterable[MentionRecord],
    source_id: int | None = None,
    brand_id: int | None = None,
    batch_size: int = UPSERT_BATCH,
) -> UpsertResult:
    """Store posts idempotently on `(platform, external_id)`.

    A record the database cannot take is left out with its reason in `rejected`; the others are
    stored. Engagement counts seen again are kept as a new `EngagementSnapshot`, and the mention
    keeps the most recently observed counts.
    """
    total = UpsertResult()
    indexed = enumerate(records)
    offset = 0
    while chunk := list(itertools.islice(indexed, batch_size)):
        checked = UpsertResult()
        valid = [(i, v) for i, r in chunk if (v := _validated(i, r, checked)) is not None]
        total.rejected += checked.rejected
        total.warnings += checked.warnings
        if valid:
            total.add(_upsert_batch(session, valid, source_id=source_id, brand_id=brand_id), 0)
        offset += len(chunk)
    return total


def mark_mentions_deleted(session: Session, *, platform: str, external_ids: Sequence[str]) -> int:
    """A post deleted at its source: flag it and drop its text (platform terms require it)."""
    if not external_ids:
        return 0
    outcome = session.execute(
        update(Mention)
        .where(col(Mention.platform) == platform, col(Mention.external_id).in_(external_ids))
        .values(deleted=True, text="", clean_text="", raw=null())
    )
    return int(cast(CursorResult[Any], outcome).rowcount or 0)


# ----------------------------------------------------------------------------- scoring


def unscored_mentions(session: Session, *, limit: int = 256, after_id: int = 0) -> list[Mention]:
    """The next batch of mentions without a score, oldest first (authors loaded alongside)."""
    stmt = (
        select(Mention)
        .where(
            col(Mention.scored).is_(False),
            col(Mention.deleted).is_(False),
            col(Mention.id) > after_id,
        )
        .order_by(col(Mention.id))
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def authors_by_id(session: Session, *, ids: Iterable[int]) -> dict[int, Author]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(Author).where(col(Author.id).in_(wanted))).scalars()
    return {a.id: a for a in rows if a.id is not None}


def latest_scores(session: Session, *, mention_ids: Iterable[int]) -> dict[int, Score]:
    """The most recent score of each mention."""
    wanted = list(set(mention_ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(Score).where(col(Score.mention_id).in_(wanted)).order_by(col(Score.scored_at))
    ).scalars()
    return {s.mention_id: s for s in rows}


# ----------------------------------------------------------------------------- cases, queue


@dataclass(slots=True)
class QueueFilters:
    statuses: Sequence[str] = tuple(OPEN_CASE_STATUSES)
    platforms: Sequence[str] = ()
    languages: Sequence[str] = ()
    tiers: Sequence[str] = ()
    brand_ids: Sequence[int] = ()
    assignee_id: int | None = None
    unassigned_only: bool = False


@dataclass(slots=True)
class QueueRow:
    case: Case
    mention: Mention | None
    author: Author | None
    score: Score | None
    assignee: TeamMember | None


def triage_queue(
    session: Session,
    *,
    filters: QueueFilters | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[QueueRow]:
    """One page of the queue, highest priority first, with what a row shows loaded in bulk."""
    stmt = (
        select(Case)
        .where(_queue_conditions(filters or QueueFilters()))
        .order_by(col(Case.priority).desc(), col(Case.id))
        .limit(limit)
        .offset(offset)
    )
    cases = list(session.execute(stmt).scalars())
    return _queue_rows(session, cases)


def _queue_conditions(f: QueueFilters) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if f.statuses:
        conditions.append(col(Case.status).in_(list(f.statuses)))
    if f.platforms:
        conditions.append(col(Case.platform).in_(list(f.platforms)))
    if f.languages:
        conditions.append(col(Case.lang).in_(list(f.languages)))
    if f.tiers:
        conditions.append(col(Case.urgency_tier).in_(list(f.tiers)))
    if f.brand_ids:
        conditions.append(col(Case.brand_id).in_(list(f.brand_ids)))
    if f.assignee_id is not None:
        conditions.append(col(Case.assignee_id) == f.assignee_id)
    if f.unassigned_only:
        conditions.append(col(Case.assignee_id).is_(None))
    return and_(True, *conditions)


def _queue_rows(session: Session, cases: Sequence[Case]) -> list[QueueRow]:
    mention_ids = [c.mention_id for c in cases if c.mention_id is not None]
    mentions = (
        {
            m.id: m
            for m in session.execute(
                select(Mention).where(col(Mention.id).in_(mention_ids))
            ).scalars()
        }
        if mention_ids
        else {}
    )
    authors = authors_by_id(session, ids=[m.author_id for m in mentions.values() if m.author_id])
    scores = latest_scores(session, mention_ids=mention_ids)
    member_ids = {c.assignee_id for c in cases if c.assignee_id is not None}
    members = (
        {
            m.id: m
            for m in session.execute(
                select(TeamMember).where(col(TeamMember.id).in_(member_ids))
            ).scalars()
        }
        if member_ids
        else {}
    )
    rows = []
    for c in cases:
        mention = mentions.get(c.mention_id) if c.mention_id is not None else None
        rows.append(
            QueueRow(
                case=c,
                mention=mention,
                author=authors.get(mention.author_id) if mention and mention.author_id else None,
                score=scores.get(c.mention_id) if c.mention_id is not None else None,
                assignee=members.get(c.assignee_id) if c.assignee_id is not None else None,
            )
        )
    return rows


def count_queue(session: Session, *, filters: QueueFilters | None = None) -> int:
    """How many cases the queue holds with these filters (all of them, not one page)."""
    where = _queue_conditions(filters or QueueFilters())
    stmt = select(func.count()).select_from(Case).where(where)
    return int(session.execute(stmt).scalar_one())


@dataclass(slots=True)
class ClaimResult:
    won: bool
    case: Case | None
    holder_id: int | None  # who holds the case now (the winner, or whoever beat us)
    reason: str = ""


def claim_case(
    session: Session,
    *,
    case_id: int,
    member_id: int,
    expected_version: int | None = None,
    actor: str | None = None,
) -> ClaimResult:
    """Take a case, atomically: one conditional UPDATE, so two claimers can never both win.

    With `expected_version`, the claim also fails when anything changed the case since the caller
    read it (optimistic locking).
    """
    current = session.get(Case, case_id, populate_existing=True)
    if current is None:
        return ClaimResult(False, None, None, "no such case")
    version = expected_version if expected_version is not None else current.version
    claimable = [CaseStatus.new, CaseStatus.assigned]
    outcome = session.execute(
        update(Case)
        .where(
            col(Case.id) == case_id,
            col(Case.version) == version,
            col(Case.status).in_(claimable),
            or_(col(Case.assignee_id).is_(None), col(Case.assignee_id) == member_id),
        )
        .values(
            assignee_id=member_id,
            status=CaseStatus.assigned,
            version=col(Case.version) + 1,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    refreshed = session.get(Case, case_id, populate_existing=True)
    if cast(CursorResult[Any], outcome).rowcount != 1:
        holder = refreshed.assignee_id if refreshed else None
        why = "held by another member" if holder not in (None, member_id) else "case changed"
        return ClaimResult(False, refreshed, holder, why)
    add_audit_event(
        session,
        action="case.claimed",
        entity_type="case",
        entity_id=case_id,
        actor_id=member_id,
        actor=actor,
        details={"version": version + 1},
    )
    return ClaimResult(True, refreshed, member_id)


def update_case_guarded(
    session: Session,
    *,
    case_id: int,
    expected_version: int,
    values: dict[str, Any],
    action: str,
    actor_id: int | None = None,
    actor: str | None = None,
    details: dict[str, Any] | None = None,
) -> Case | None:
    """Change a case only if nobody changed it since `expected_version`; audit the change.

    Returns the updated case, or None when the version moved on (the caller reloads and decides).
    """
    outcome = session.execute(
        update(Case)
        .where(col(Case.id) == case_id, col(Case.version) == expected_version)
        .values(**values, version=col(Case.version) + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], outcome).rowcount != 1:
        return None
    add_audit_event(
        session,
        action=action,
        entity_type="case",
        entity_id=case_id,
        actor_id=actor_id,
        actor=actor,
        details={**(details or {}), **{k: _jsonable(v) for k, v in values.items()}},
    )
    return session.get(Case, case_id, populate_existing=True)


# ----------------------------------------------------------------------------- audit


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def add_audit_event(
    session: Session,
    *,
    action: str,
    entity_type: str,
    entity_id: int | None,
    actor_id: int | None = None,
    actor: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        actor_id=actor_id,
        actor=actor or (f"member:{actor_id}" if actor_id is not None else "system"),
        details=details or {},
    )
    session.add(event)
    session.flush()
    return event


def add_audit_events(session: Session, *, events: Sequence[dict[str, Any]]) -> None:
    """Several system events in one statement (`action`, `entity_type`, `entity_id`, `details`)."""
    if not events:
        return
    now = utcnow()
    rows = [{"actor": "system", "actor_id": None, "created_at": now, **event} for event in events]
    session.execute(insert(AuditEvent), rows)


def audit_events(
    session: Session, *, entity_type: str, entity_id: int, limit: int = 200
) -> list[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(col(AuditEvent.entity_type) == entity_type, col(AuditEvent.entity_id) == entity_id)
        .order_by(col(AuditEvent.created_at), col(AuditEvent.id))
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


# ----------------------------------------------------------------------------- stats


def table_counts(session: Session) -> dict[str, int]:
    """Row counts of every table (for `tocsin db stats`)."""
    counts = {}
    for name, table in sorted(SQLModel.metadata.tables.items()):
        counts[name] = int(session.execute(select(func.count()).select_from(table)).scalar_one())
    return counts


# ----------------------------------------------------------------------------- board
# Reads and small writes for the Streamlit board (sign-in, team, overview, score corrections).


def team_member_by_email(session: Session, *, email: str) -> TeamMember | None:
    """The member with this email (case-insensitive), active or not."""
    stmt = select(TeamMember).where(func.lower(TeamMember.email) == email.strip().lower())
    return session.execute(stmt).scalars().first()


def team_members(session: Session, *, active_only: bool = True) -> list[TeamMember]:
    stmt = select(TeamMember).order_by(col(TeamMember.name))
    if active_only:
        stmt = stmt.where(col(TeamMember.active).is_(True))
    return list(session.execute(stmt).scalars())


def set_member_password_hash(session: Session, *, member_id: int, password_hash: str) -> bool:
    outcome = session.execute(
        update(TeamMember)
        .where(col(TeamMember.id) == member_id)
        .values(password_hash=password_hash)
        .execution_options(synchronize_session=False)
    )
    return int(cast(CursorResult[Any], outcome).rowcount or 0) == 1


def open_load_by_member(session: Session) -> dict[int, int]:
    """Open cases held by each member."""
    stmt = (
        select(col(Case.assignee_id), func.count())
        .where(
            col(Case.assignee_id).is_not(None),
            col(Case.status).in_([str(s) for s in OPEN_CASE_STATUSES]),
        )
        .group_by(col(Case.assignee_id))
    )
    return {int(member): int(n) for member, n in session.execute(stmt).all()}


@dataclass(slots=True)
class SlaTally:
    answered: int = 0  # cases with a first response in the window
    on_time: int = 0  # ... of which before their SLA was due
    overdue_open: int = 0  # open cases without a response whose SLA has passed

    @property
    def met_ratio(self) -> float | None:
        total = self.answered + self.overdue_open
        return self.on_time / total if total else None


def sla_tally_by_member(
    session: Session, *, since: datetime, now: datetime | None = None
) -> dict[int | None, SlaTally]:
    """First-response SLA per assignee (None: unassigned) for cases created since `since`."""
    moment = now or utcnow()
    on_time = case(
        (
            and_(
                col(Case.sla_due_at).is_not(None),
                col(Case.first_response_at) <= col(Case.sla_due_at),
            ),
            1,
        ),
        else_=0,
    )
    overdue = case(
        (
            and_(
                col(Case.first_response_at).is_(None),
                col(Case.sla_due_at).is_not(None),
                col(Case.sla_due_at) < moment,
                col(Case.status).in_([str(s) for s in OPEN_CASE_STATUSES]),
            ),
            1,
        ),
        else_=0,
    )
    answered = case((col(Case.first_response_at).is_not(None), 1), else_=0)
    stmt = (
        select(col(Case.assignee_id), func.sum(answered), func.sum(on_time), func.sum(overdue))
        .where(col(Case.created_at) >= since)
        .group_by(col(Case.assignee_id))
    )
    return {
        member: SlaTally(int(a or 0), int(o or 0), int(d or 0))
        for member, a, o, d in session.execute(stmt).all()
    }


def _day(column: Any) -> Any:
    return func.date(column)


def mention_volume_by_day(
    session: Session, *, since: datetime, brand_id: int | None = None
) -> list[tuple[str, int]]:
    """(ISO day, mentions collected that day), oldest first."""
    day = _day(Mention.created_at)
    stmt = (
        select(day, func.count())
        .where(col(Mention.created_at) >= since, col(Mention.deleted).is_(False))
        .group_by(day)
        .order_by(day)
    )
    if brand_id is not None:
        stmt = stmt.where(col(Mention.brand_id) == brand_id)
    return [(str(d), int(n)) for d, n in session.execute(stmt).all()]


@dataclass(slots=True)
class DailyScores:
    day: str
    negative: int
    neutral: int
    positive: int
    mean_risk: float
    max_risk: float


def scores_by_day(
    session: Session, *, since: datetime, brand_id: int | None = None
) -> list[DailyScores]:
    """Sentiment counts and buzz risk per day of posting, from the scores stored."""
    day = _day(Mention.created_at)

    def count_of(label: str) -> Any:
        return func.sum(case((col(Score.sentiment_label) == label, 1), else_=0))

    stmt = (
        select(
            day,
            count_of("negative"),
            count_of("neutral"),
            count_of("positive"),
            func.avg(col(Score.buzz_risk)),
            func.max(col(Score.buzz_risk)),
        )
        .join(Mention, col(Mention.id) == col(Score.mention_id))
        .where(col(Mention.created_at) >= since)
        .group_by(day)
        .order_by(day)
    )
    if brand_id is not None:
        stmt = stmt.where(col(Mention.brand_id) == brand_id)
    return [
        DailyScores(
            str(d), int(neg or 0), int(neu or 0), int(pos or 0), float(avg or 0), float(mx or 0)
        )
        for d, neg, neu, pos, avg, mx in session.execute(stmt).all()
    ]


def sla_compliance_by_day(
    session: Session, *, since: datetime, brand_id: int | None = None
) -> list[tuple[str, int, int]]:
    """(ISO day, cases answered, answered within SLA) by the day the case opened."""
    day = _day(Case.created_at)
    on_time = func.sum(case((col(Case.first_response_at) <= col(Case.sla_due_at), 1), else_=0))
    stmt = (
        select(day, func.count(), on_time)
        .where(col(Case.created_at) >= since, col(Case.first_response_at).is_not(None))
        .group_by(day)
        .order_by(day)
    )
    if brand_id is not None:
        stmt = stmt.where(col(Case.brand_id) == brand_id)
    return [(str(d), int(n), int(ok or 0)) for d, n, ok in session.execute(stmt).all()]


def open_incidents(session: Session, *, limit: int = 50) -> list[Incident]:
    stmt = (
        select(Incident)
        .where(col(Incident.status) == "open")
        .order_by(col(Incident.last_seen_at).desc())
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def recent_report_runs(session: Session, *, limit: int = 20) -> list[ReportRun]:
    stmt = select(ReportRun).order_by(col(ReportRun.created_at).desc()).limit(limit)
    return list(session.execute(stmt).scalars())


def recent_alerts(session: Session, *, limit: int = 20) -> list[Alert]:
    stmt = select(Alert).order_by(col(Alert.created_at).desc(), col(Alert.id).desc()).limit(limit)
    return list(session.execute(stmt).scalars())


def brands(session: Session) -> list[Brand]:
    return list(session.execute(select(Brand).order_by(col(Brand.name))).scalars())


def case_platforms_and_languages(session: Session) -> tuple[list[str], list[str]]:
    """The platforms and languages present among cases (for the queue's filters)."""
    platforms = session.execute(
        select(col(Case.platform)).where(col(Case.platform).is_not(None)).distinct()
    ).scalars()
    languages = session.execute(
        select(col(Case.lang)).where(col(Case.lang).is_not(None)).distinct()
    ).scalars()
    return sorted(str(p) for p in platforms), sorted(str(lang) for lang in languages)


def add_score_feedback(
    session: Session,
    *,
    mention_id: int,
    member_id: int | None,
    field_name: str,
    old_value: str | None,
    new_value: str,
    model_version: str | None,
) -> Feedback:
    """A team member's correction of one score field (kept for retraining), audited."""
    feedback = Feedback(
        mention_id=mention_id,
        member_id=member_id,
        field=field_name,
        old_value=old_value,
        new_value=new_value,
        model_version=model_version,
    )
    session.add(feedback)
    session.flush()
    add_audit_event(
        session,
        action="score.corrected",
        entity_type="mention",
        entity_id=mention_id,
        actor_id=member_id,
        details={"field": field_name, "old": old_value, "new": new_value},
    )
    return feedback


def feedback_for_mention(session: Session, *, mention_id: int) -> list[Feedback]:
    stmt = (
        select(Feedback)
        .where(col(Feedback.mention_id) == mention_id)
        .order_by(col(Feedback.created_at), col(Feedback.id))
    )
    return list(session.execute(stmt).scalars())


def failed_sign_ins_since(session: Session, *, member_id: int, since: datetime) -> int:
    """Failed sign-ins of a member since `since` and since their last successful one."""
    last_ok = session.execute(
        select(func.max(col(AuditEvent.created_at))).where(
            col(AuditEvent.entity_type) == "team_member",
            col(AuditEvent.entity_id) == member_id,
            col(AuditEvent.action) == "auth.signed_in",
        )
    ).scalar_one_or_none()
    stmt = select(func.count()).where(
        col(AuditEvent.entity_type) == "team_member",
        col(AuditEvent.entity_id) == member_id,
        col(AuditEvent.action) == "auth.failed",
        col(AuditEvent.created_at) >= since,
    )
    if last_ok is not None:
        stmt = stmt.where(col(AuditEvent.created_at) > last_ok)
    return int(session.execute(stmt).scalar_one())


def thread_mentions(session: Session, *, mention: Mention, limit: int = 50) -> list[Mention]:
    """The other posts of the mention's thread (its parent, siblings and replies), oldest first."""
    keys = {k for k in (mention.thread_external_id, mention.parent_external_id) if k}
    if not keys:
        return []
    stmt = (
        select(Mention)
        .where(
            col(Mention.platform) == mention.platform,
            col(Mention.id) != mention.id,
            or_(
                col(Mention.thread_external_id).in_(keys),
                col(Mention.external_id).in_(keys),
            ),
        )
        .order_by(col(Mention.created_at), col(Mention.id))
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def author_cases(
    session: Session, *, author_id: int, exclude_case_id: int | None = None, limit: int = 20
) -> list[Case]:
    """Cases opened on this author's posts, newest first (the author's history with us)."""
    stmt = (
        select(Case)
        .join(Mention, col(Mention.id) == col(Case.mention_id))
        .where(col(Mention.author_id) == author_id)
        .order_by(col(Case.created_at).desc(), col(Case.id).desc())
        .limit(limit)
    )
    if exclude_case_id is not None:
        stmt = stmt.where(col(Case.id) != exclude_case_id)
    return list(session.execute(stmt).scalars())


# ----------------------------------------------------------------------------- triage rules
# Reads and small writes for triage/ (cases, routing, replies, intake) and the case page.


def touch_case_view(session: Session, *, case_id: int, member_id: int, now: datetime) -> None:
    """Insert or refresh (case, member)'s "viewing" row."""
    stmt = _insert_for(session, CaseView).values(case_id=case_id, member_id=member_id, seen_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["case_id", "member_id"], set_={"seen_at": stmt.excluded.seen_at}
    )
    session.execute(stmt)


def clear_case_view(session: Session, *, case_id: int, member_id: int) -> None:
    session.execute(
        _table(CaseView)
        .delete()
        .where(col(CaseView.case_id) == case_id, col(CaseView.member_id) == member_id)
    )


def case_viewers(
    session: Session, *, case_id: int, since: datetime
) -> list[tuple[TeamMember, datetime]]:
    """Members who had the case open since `since`, most recent first."""
    stmt = (
        select(TeamMember, col(CaseView.seen_at))
        .join(CaseView, col(CaseView.member_id) == col(TeamMember.id))
        .where(col(CaseView.case_id) == case_id, col(CaseView.seen_at) >= since)
        .order_by(col(CaseView.seen_at).desc())
    )
    return [(m, seen) for m, seen in session.execute(stmt).all()]


def case_notes(session: Session, *, case_id: int) -> list[CaseNote]:
    """A case's internal notes, oldest first."""
    stmt = (
        select(CaseNote)
        .where(col(CaseNote.case_id) == case_id)
        .order_by(col(CaseNote.created_at), col(CaseNote.id))
    )
    return list(session.execute(stmt).scalars())


def case_replies(session: Session, *, case_id: int) -> list[Reply]:
    """Every reply of a case (drafts included), oldest first."""
    stmt = (
        select(Reply)
        .where(col(Reply.case_id) == case_id)
        .order_by(col(Reply.created_at), col(Reply.id))
    )
    return list(session.execute(stmt).scalars())


def case_support_tasks(session: Session, *, case_id: int) -> list[SupportTask]:
    stmt = (
        select(SupportTask)
        .where(col(SupportTask.case_id) == case_id)
        .order_by(col(SupportTask.created_at), col(SupportTask.id))
    )
    return list(session.execute(stmt).scalars())


def case_for_mention(session: Session, *, mention_id: int) -> Case | None:
    """The case opened for a mention, if any (Case.mention_id is unique)."""
    stmt = select(Case).where(col(Case.mention_id) == mention_id)
    return session.execute(stmt).scalars().first()


def unassigned_new_cases(session: Session, *, limit: int = 200) -> list[Case]:
    """New cases nobody holds, highest priority first (uses ix_case_status_priority)."""
    stmt = (
        select(Case)
        .where(col(Case.status) == CaseStatus.new, col(Case.assignee_id).is_(None))
        .order_by(col(Case.priority).desc(), col(Case.id))
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def members_on_shift(session: Session) -> list[TeamMember]:
    """Active members on shift, by id."""
    stmt = (
        select(TeamMember)
        .where(col(TeamMember.active).is_(True), col(TeamMember.on_shift).is_(True))
        .order_by(col(TeamMember.id))
    )
    return list(session.execute(stmt).scalars())


def mention_authors(session: Session, *, mention_ids: Iterable[int]) -> dict[int, int]:
    """mention id -> author id, for the mentions that have an author."""
    wanted = list(set(mention_ids))
    if not wanted:
        return {}
    stmt = select(col(Mention.id), col(Mention.author_id)).where(
        col(Mention.id).in_(wanted), col(Mention.author_id).is_not(None)
    )
    return {int(m): int(a) for m, a in session.execute(stmt).all()}


def replies_by_member_to_authors(
    session: Session, *, author_ids: Iterable[int]
) -> dict[int, dict[int, int]]:
    """author id -> {member id: cases of that author the member sent a reply on}."""
    wanted = list(set(author_ids))
    if not wanted:
        return {}
    stmt = (
        select(col(Mention.author_id), col(Reply.member_id), func.count(func.distinct(Case.id)))
        .join(Case, col(Case.mention_id) == col(Mention.id))
        .join(Reply, col(Reply.case_id) == col(Case.id))
        .where(
            col(Mention.author_id).in_(wanted),
            col(Reply.status) == "sent",
            col(Reply.member_id).is_not(None),
        )
        .group_by(col(Mention.author_id), col(Reply.member_id))
    )
    history: dict[int, dict[int, int]] = {}
    for author, member, n in session.execute(stmt).all():
        history.setdefault(int(author), {})[int(member)] = int(n)
    return history


def drafts_awaiting_approval(session: Session) -> list[Reply]:
    """Drafts whose author requires a lead's approval, oldest first."""
    stmt = (
        select(Reply)
        .join(TeamMember, col(TeamMember.id) == col(Reply.member_id))
        .where(col(Reply.status) == "draft", col(TeamMember.requires_approval).is_(True))
        .order_by(col(Reply.created_at), col(Reply.id))
    )
    return list(session.execute(stmt).scalars())


def brand_reply_in_thread(
    session: Session, *, mention_id: int, handles: Sequence[str], since: datetime
) -> tuple[str, datetime | None] | None:
    """A post from one of the brand's accounts answering this mention, posted since `since`
    and not one of our own published replies: (handle, posted at), or None."""
    post = session.get(Mention, mention_id)
    if post is None or not handles:
        return None
    threads = {post.external_id, *([post.thread_external_id] if post.thread_external_id else [])}
    ours = (
        select(col(Reply.external_id)).where(col(Reply.external_id).is_not(None)).scalar_subquery()
    )
    stmt = (
        select(col(Author.handle), col(Mention.created_at))
        .join(Author, col(Author.id) == col(Mention.author_id))
        .where(
            col(Mention.platform) == post.platform,
            col(Mention.thread_external_id).in_(threads),
            col(Mention.parent_external_id) == post.external_id,
            col(Mention.id) != mention_id,
            func.lower(col(Author.handle)).in_([h.lstrip("@").lower() for h in handles]),
            col(Mention.created_at) >= since,
            col(Mention.external_id).not_in(ours),
        )
        .order_by(col(Mention.created_at))
        .limit(1)
    )
    row = session.execute(stmt).first()
    return (str(row[0]), row[1]) if row else None


def viewers_by_case(
    session: Session, *, case_ids: Sequence[int], since: datetime
) -> dict[int, list[tuple[TeamMember, datetime]]]:
    """For a page of the queue at once: case id -> members who had it open since `since`."""
    if not case_ids:
        return {}
    stmt = (
        select(col(CaseView.case_id), TeamMember, col(CaseView.seen_at))
        .join(TeamMember, col(TeamMember.id) == col(CaseView.member_id))
        .where(col(CaseView.case_id).in_(list(case_ids)), col(CaseView.seen_at) >= since)
        .order_by(col(CaseView.seen_at).desc())
    )
    found: dict[int, list[tuple[TeamMember, datetime]]] = {}
    for case_id, member, seen in session.execute(stmt).all():
        found.setdefault(int(case_id), []).append((member, seen))
    return found


def mention_scores(session: Session, *, mention_id: int) -> list[Score]:
    """Every score of a mention, newest first (one per model version)."""
    stmt = (
        select(Score)
        .where(col(Score.mention_id) == mention_id)
        .order_by(col(Score.scored_at).desc(), col(Score.id).desc())
    )
    return list(session.execute(stmt).scalars())


def _time_bucket(session: Session, column: Any, bucket: str) -> Any:
    """The start of the hour or day of `column`, as text ('2026-11-16 09:00'), on both engines."""
    if bucket not in ("hour", "day"):
        raise ValueError("bucket must be 'hour' or 'day'")
    if session.get_bind().dialect.name == "postgresql":
        pattern = "YYYY-MM-DD HH24:00" if bucket == "hour" else "YYYY-MM-DD"
        return func.to_char(func.date_trunc(bucket, column), pattern)
    return func.strftime("%Y-%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d", column)


@dataclass(slots=True)
class OverviewPoint:
    bucket: str  # '2026-11-16 09:00' (hour) or '2026-11-16' (day), UTC
    mentions: int
    negative: int
    mean_risk: float
    max_risk: float
    high_risk: int  # scored mentions with buzz risk >= 70


def overview_series(
    session: Session,
    *,
    since: datetime,
    until: datetime | None = None,
    bucket: str = "hour",
    brand_id: int | None = None,
) -> list[OverviewPoint]:
    """Volume, negativity and buzz risk per hour or day of posting, oldest first.

    Mentions are counted by posting time; scores are the latest of each mention (one row per
    mention is enough: a mention scored by two model versions counts once, with the max risk).
    """
    conditions = [col(Mention.created_at) >= since, col(Mention.deleted).is_(False)]
    if until is not None:
        conditions.append(col(Mention.created_at) < until)
    if brand_id is not None:
        conditions.append(col(Mention.brand_id) == brand_id)
    # One row per mention of the window first (its scores folded), then the buckets: the score
    # lookups go through ix_score_mention_id for the window's mentions only.
    per_mention = (
        select(
            _time_bucket(session, col(Mention.created_at), bucket).label("bucket"),
            func.max(col(Score.buzz_risk)).label("risk"),
            func.max(case((col(Score.sentiment_label) == "negative", 1), else_=0)).label("neg"),
        )
        .select_from(Mention)
        .outerjoin(Score, col(Score.mention_id) == col(Mention.id))
        .where(*conditions)
        .group_by(col(Mention.id), col(Mention.created_at))
        .subquery()
    )
    stmt = (
        select(
            per_mention.c.bucket,
            func.count(),
            func.sum(func.coalesce(per_mention.c.neg, 0)),
            func.avg(per_mention.c.risk),
            func.max(per_mention.c.risk),
            func.sum(case((per_mention.c.risk >= 70, 1), else_=0)),
        )
        .group_by(per_mention.c.bucket)
        .order_by(per_mention.c.bucket)
    )
    return [
        OverviewPoint(str(b), int(n), int(neg or 0), float(avg or 0), float(mx or 0), int(hi or 0))
        for b, n, neg, avg, mx, hi in session.execute(stmt).all()
    ]


def sla_compliance_series(
    session: Session, *, since: datetime, bucket: str = "day", brand_id: int | None = None
) -> list[tuple[str, int, int]]:
    """(bucket, cases answered, answered within their SLA) by when the case opened."""
    moment = _time_bucket(session, col(Case.created_at), bucket)
    on_time = func.sum(case((col(Case.first_response_at) <= col(Case.sla_due_at), 1), else_=0))
    stmt = (
        select(moment, func.count(), on_time)
        .where(col(Case.created_at) >= since, col(Case.first_response_at).is_not(None))
        .group_by(moment)
        .order_by(moment)
    )
    if brand_id is not None:
        stmt = stmt.where(col(Case.brand_id) == brand_id)
    return [(str(b), int(n), int(ok or 0)) for b, n, ok in session.execute(stmt).all()]


# ---------------------------------------------------------------------- service, reports, data care
# Job locks for `tocsin run`, the figures of the weekly report, retention purges and exports.

from datetime import timedelta  # noqa: E402  (this section's imports stay with it)

from sqlalchemy import null as _null  # noqa: E402
from sqlmodel import col as _col  # noqa: E402

from storage import models as _m  # noqa: E402


def _rowcount(outcome: Any) -> int:
    return int(outcome.rowcount or 0)


def claim_job(
    session: Session, *, name: str, holder: str, lease_seconds: float, now: datetime | None = None
) -> bool:
    """Take the lock of a service job for `lease_seconds`; False when another holder has it.

    One conditional UPDATE on the `job_lock` row, so two processes (or hosts) can never both win.
    """
    moment = now or utcnow()
    session.execute(
        _insert_for(session, _m.JobLock)
        .values(name=name)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    until = _col(_m.JobLock.locked_until)
    outcome = session.execute(
        update(_m.JobLock)
        .where(_col(_m.JobLock.name) == name, or_(until.is_(None), until < moment))
        .values(
            holder=holder,
            locked_until=moment + timedelta(seconds=lease_seconds),
            last_started_at=moment,
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(outcome) == 1


def renew_job(
    session: Session, *, name: str, holder: str, lease_seconds: float, now: datetime | None = None
) -> bool:
    """Extend a held lock (a heartbeat while the job runs); False when the lease was lost."""
    moment = now or utcnow()
    outcome = session.execute(
        update(_m.JobLock)
        .where(_col(_m.JobLock.name) == name, _col(_m.JobLock.holder) == holder)
        .values(locked_until=moment + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return _rowcount(outcome) == 1


def release_job(
    session: Session,
    *,
    name: str,
    holder: str,
    finished: bool,
    error: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Give a lock back. `finished` records the run as done (what the next due time counts from);
    a failed or abandoned run keeps the previous `last_finished_at`, so it is due again at once."""
    values: dict[str, Any] = {"holder": None, "locked_until": None, "last_error": error}
    if finished:
        values["last_finished_at"] = now or utcnow()
    outcome = session.execute(
        update(_m.JobLock)
        .where(_col(_m.JobLock.name) == name, _col(_m.JobLock.holder) == holder)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(outcome) == 1


def job_locks(session: Session) -> dict[str, _m.JobLock]:
    rows = session.execute(select(_m.JobLock)).scalars()
    return {row.name: row for row in rows}


def brand_by_name(session: Session, *, name: str) -> _m.Brand | None:
    stmt = select(_m.Brand).where(_col(_m.Brand.name) == name)
    return session.execute(stmt).scalars().first()


@dataclass(slots=True)
class ReportMention:
    """One mention of the report's period with its latest score (sentiment None: not scored)."""

    id: int
    platform: str
    source: str
    created_at: datetime | None
    text: str
    url: str | None
    deleted: bool
    author_handle: str | None
    sentiment: str | None = None
    is_complaint: bool = False
    buzz_risk: float = 0.0
    urgency: str | None = None
    reasons: list[str] = field(default_factory=list)


def report_mentions(
    session: Session, *, brand_id: int, start: datetime, end: datetime
) -> list[ReportMention]:
    """A brand's mentions posted in [start, end), with source name, author handle and latest
    score, read as plain columns (a busy week is tens of thousands of rows)."""
    m, score = _m.Mention, _m.Score
    created = _col(m.created_at)
    rows = session.execute(
        select(
            _col(m.id),
            _col(m.platform),
            _col(_m.Source.name),
            created,
            _col(m.clean_text),
            _col(m.text),
            _col(m.url),
            _col(m.deleted),
            _col(_m.Author.handle),
            _col(score.sentiment_label),
            _col(score.is_complaint),
            _col(score.buzz_risk),
            _col(score.urgency_tier),
            _col(score.buzz_reasons),
        )
        .outerjoin(_m.Source, _col(_m.Source.id) == _col(m.source_id))
        .outerjoin(_m.Author, _col(_m.Author.id) == _col(m.author_id))
        .outerjoin(score, _col(score.mention_id) == _col(m.id))
        .where(_col(m.brand_id) == brand_id, created >= start, created < end)
        .order_by(_col(m.id), _col(score.scored_at))
    ).all()
    latest: dict[int, ReportMention] = {}
    for row in rows:  # ordered by score time: the last row of a mention is its latest score
        latest[row[0]] = ReportMention(
            id=row[0],
            platform=row[1],
            source=row[2] or row[1],
            created_at=row[3],
            text=row[4] or row[5] or "",
            url=row[6],
            deleted=bool(row[7]),
            author_handle=row[8],
            sentiment=row[9],
            is_complaint=bool(row[10]),
            buzz_risk=float(row[11] or 0.0),
            urgency=row[12],
            reasons=list(row[13] or []),
        )
    return list(latest.values())


@dataclass(slots=True)
class ReportCase:
    case: _m.Case
    assignee: str | None
    replies: list[_m.Reply]


def report_cases(
    session: Session, *, brand_id: int, start: datetime, end: datetime
) -> list[ReportCase]:
    """A brand's cases opened in [start, end), with the assignee's name and the sent replies."""
    created = _col(_m.Case.created_at)
    cases = list(
        session.execute(
            select(_m.Case)
            .where(_col(_m.Case.brand_id) == brand_id, created >= start, created < end)
            .order_by(_col(_m.Case.id))
        ).scalars()
    )
    case_ids = [c.id for c in cases if c.id is not None]
    replies: dict[int, list[_m.Reply]] = {}
    if case_ids:
        sent = session.execute(
            select(_m.Reply)
            .where(
                _col(_m.Reply.case_id).in_(case_ids),
                _col(_m.Reply.status) == _m.ReplyStatus.sent,
            )
            .order_by(_col(_m.Reply.id))
        ).scalars()
        for reply in sent:
            replies.setdefault(reply.case_id, []).append(reply)
    member_ids = {c.assignee_id for c in cases if c.assignee_id is not None}
    names: dict[int, str] = {}
    if member_ids:
        found = session.execute(
            select(_col(_m.TeamMember.id), _col(_m.TeamMember.name)).where(
                _col(_m.TeamMember.id).in_(member_ids)
            )
        ).all()
        names = {int(i): str(n) for i, n in found}
    return [
        ReportCase(
            case=c,
            assignee=names.get(c.assignee_id) if c.assignee_id is not None else None,
            replies=replies.get(c.id, []) if c.id is not None else [],
        )
        for c in cases
    ]


def report_incidents(
    session: Session, *, brand_id: int, start: datetime, end: datetime
) -> list[_m.Incident]:
    """Incidents of a brand active during [start, end), largest first."""
    return list(
        session.execute(
            select(_m.Incident)
            .where(
                _col(_m.Incident.brand_id) == brand_id,
                _col(_m.Incident.first_seen_at) < end,
                _col(_m.Incident.last_seen_at) >= start,
            )
            .order_by(_col(_m.Incident.mention_count).desc(), _col(_m.Incident.id))
        ).scalars()
    )


def report_alerts_sent(
    session: Session, *, brand_id: int, start: datetime, end: datetime
) -> list[_m.Alert]:
    """Alerts delivered in [start, end) about a brand (directly or through one of its cases)."""
    brand_cases = select(_col(_m.Case.id)).where(_col(_m.Case.brand_id) == brand_id)
    sent_at = _col(_m.Alert.sent_at)
    return list(
        session.execute(
            select(_m.Alert)
            .where(
                _col(_m.Alert.status) == _m.AlertStatus.sent,
                sent_at >= start,
                sent_at < end,
                or_(_col(_m.Alert.brand_id) == brand_id, _col(_m.Alert.case_id).in_(brand_cases)),
            )
            .order_by(sent_at)
        ).scalars()
    )


def report_run_for(session: Session, *, brand_id: int, week: str) -> _m.ReportRun | None:
    stmt = select(_m.ReportRun).where(
        _col(_m.ReportRun.brand_id) == brand_id, _col(_m.ReportRun.week) == week
    )
    return session.execute(stmt).scalars().first()


def save_report_run(
    session: Session,
    *,
    brand_id: int,
    week: str,
    html_path: str,
    pdf_path: str | None,
    figures: dict[str, Any],
) -> _m.ReportRun:
    """Record a built report; building the same week again replaces the files and figures."""
    run = report_run_for(session, brand_id=brand_id, week=week)
    if run is None:
        run = _m.ReportRun(brand_id=brand_id, week=week, html_path=html_path)
    run.html_path = html_path
    run.pdf_path = pdf_path
    run.figures = figures
    run.created_at = utcnow()
    session.add(run)
    session.flush()
    return run


def mark_report_sent(session: Session, *, report_id: int, now: datetime | None = None) -> None:
    session.execute(
        update(_m.ReportRun)
        .where(_col(_m.ReportRun.id) == report_id)
        .values(sent_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )


def purge_raw_payloads(session: Session, *, collected_before: datetime) -> int:
    """Drop the raw API payloads of mentions collected before a date (text and scores stay)."""
    outcome = session.execute(
        update(_m.Mention)
        .where(_col(_m.Mention.collected_at) < collected_before, _col(_m.Mention.raw).is_not(None))
        .values(raw=_null())  # SQL NULL; None would store a JSON null
        .execution_options(synchronize_session=False)
    )
    return _rowcount(outcome)


def purge_author_details(session: Session, *, seen_before: datetime) -> int:
    """Forget what we know about authors not seen since a date: name, bio, followers, ids, flags.

    The handle stays: it is part of every public post link and keeps past cases readable.
    """
    author = _m.Author
    has_details = or_(
        _col(author.display_name).is_not(None),
        _col(author.bio).is_not(None),
        _col(author.followers).is_not(None),
        _col(author.external_id).is_not(None),
        _col(author.verified).is_(True),
        _col(author.vip).is_(True),
        _col(author.journalist).is_(True),
    )
    outcome = session.execute(
        update(author)
        .where(_col(author.updated_at) < seen_before, has_details)
        .values(
            display_name=None,
            bio=None,
            followers=None,
            external_id=None,
            verified=False,
            vip=False,
            journalist=False,
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(outcome)


def scrub_deleted_mentions(session: Session) -> int:
    """Mentions deleted at their source keep no text and no payload (a later upsert of the same
    post may have brought the payload back)."""
    mention = _m.Mention
    leftovers = or_(
        _col(mention.raw).is_not(None), _col(mention.text) != "", _col(mention.clean_text) != ""
    )
    outcome = session.execute(
        update(mention)
        .where(_col(mention.deleted).is_(True), leftovers)
        .values(raw=_null(), text="", clean_text="")
        .execution_options(synchronize_session=False)
    )
    return _rowcount(outcome)


@dataclass(slots=True)
class ExportMention:
    mention: _m.Mention
    author: _m.Author | None
    score: _m.Score | None


def export_mentions(
    session: Session, *, brand_id: int, after_id: int = 0, limit: int = 2_000
) -> list[ExportMention]:
    """One page (by id) of a brand's mentions with their authors and latest scores."""
    mentions = list(
        session.execute(
            select(_m.Mention)
            .where(_col(_m.Mention.brand_id) == brand_id, _col(_m.Mention.id) > after_id)
            .order_by(_col(_m.Mention.id))
            .limit(limit)
        ).scalars()
    )
    authors = authors_by_id(session, ids=[m.author_id for m in mentions if m.author_id])
    scores = latest_scores(session, mention_ids=[m.id for m in mentions if m.id is not None])
    return [
        ExportMention(
            mention=m,
            author=authors.get(m.author_id) if m.author_id else None,
            score=scores.get(m.id) if m.id is not None else None,
        )
        for m in mentions
    ]


@dataclass(slots=True)
class ExportCase:
    case: _m.Case
    mention: _m.Mention | None
    author: _m.Author | None
    assignee: str | None


def export_cases(
    session: Session, *, brand_id: int, after_id: int = 0, limit: int = 2_000
) -> list[ExportCase]:
    """One page (by id) of a brand's cases with the mention, its author and the assignee."""
    cases = list(
        session.execute(
            select(_m.Case)
            .where(_col(_m.Case.brand_id) == brand_id, _col(_m.Case.id) > after_id)
            .order_by(_col(_m.Case.id))
            .limit(limit)
        ).scalars()
    )
    return [
        ExportCase(
            case=row.case,
            mention=row.mention,
            author=row.author,
            assignee=row.assignee.name if row.assignee else None,
        )
        for row in _queue_rows(session, cases)
    ]


# ----------------------------------------------------------------------------- alerts, incidents

ALERT_CLAIMED = AlertStatus.sending.value  # held by a sender; `next_attempt_at` ends the lease


def _mention_time() -> Any:
    return func.coalesce(col(Mention.created_at), col(Mention.collected_at))


def _negative_mention_ids(*, include_complaints: bool) -> Any:
    negative = col(Score.sentiment_label) == "negative"
    if include_complaints:
        negative = or_(negative, col(Score.is_complaint).is_(True))
    return select(col(Score.mention_id)).where(negative)


def count_negative_mentions(
    session: Session,
    *,
    brand_id: int | None,
    windows: Sequence[tuple[datetime, datetime]],
) -> list[int]:
    """Negative mentions of a brand published in each [start, end) window, in one statement."""
    if not windows:
        return []
    moment = _mention_time()
    inside = [and_(moment >= start, moment < end) for start, end in windows]
    brand = (
        col(Mention.brand_id).is_(None) if brand_id is None else col(Mention.brand_id) == brand_id
    )
    stmt = select(*[func.sum(case((w, 1), else_=0)) for w in inside]).where(
        brand,
        col(Mention.deleted).is_(False),
        col(Mention.id).in_(_negative_mention_ids(include_complaints=False)),
        or_(*inside),
    )
    row = session.execute(stmt).one()
    return [int(value or 0) for value in row]


def first_collected_at(session: Session, *, brand_id: int | None) -> datetime | None:
    """When monitoring of a brand began: its earliest collected mention."""
    brand = (
        col(Mention.brand_id).is_(None) if brand_id is None else col(Mention.brand_id) == brand_id
    )
    stmt = select(func.min(col(Mention.collected_at))).where(brand)
    return cast(datetime | None, session.execute(stmt).scalar())


def recent_negative_mentions(
    session: Session, *, since: datetime, until: datetime, limit: int = 2000
) -> list[Mention]:
    """Negative or complaining mentions published in [since, until], newest last."""
    moment = _mention_time()
    stmt = (
        select(Mention)
        .where(
            moment >= since,
            moment <= until,
            col(Mention.deleted).is_(False),
            col(Mention.id).in_(_negative_mention_ids(include_complaints=True)),
        )
        .order_by(moment.desc(), col(Mention.id).desc())
        .limit(limit)
    )
    return list(reversed(list(session.execute(stmt).scalars())))


def negative_texts_before(
    session: Session, *, brand_id: int | None, since: datetime, until: datetime, limit: int = 1000
) -> list[str]:
    """Texts of a brand's latest negative or complaining mentions published in [since, until)
    (the usual vocabulary of its complaints)."""
    moment = _mention_time()
    brand = (
        col(Mention.brand_id).is_(None) if brand_id is None else col(Mention.brand_id) == brand_id
    )
    stmt = (
        select(col(Mention.title), col(Mention.clean_text))
        .where(
            brand,
            moment >= since,
            moment < until,
            col(Mention.deleted).is_(False),
            col(Mention.id).in_(_negative_mention_ids(include_complaints=True)),
        )
        .order_by(moment.desc())
        .limit(limit)
    )
    return [" ".join(filter(None, row)) for row in session.execute(stmt).all()]


def incidents_seen_since(session: Session, *, since: datetime) -> list[Incident]:
    stmt = (
        select(Incident)
        .where(col(Incident.status) == "open", col(Incident.last_seen_at) >= since)
        .order_by(col(Incident.id))
    )
    return list(session.execute(stmt).scalars())


def mentions_of_incidents(session: Session, *, incident_ids: Sequence[int]) -> list[Mention]:
    if not incident_ids:
        return []
    stmt = select(Mention).where(col(Mention.incident_id).in_(list(incident_ids)))
    return list(session.execute(stmt.order_by(col(Mention.id))).scalars())


def attach_mentions_to_incident(
    session: Session, *, incident_id: int, mention_ids: Sequence[int]
) -> int:
    """Put mentions in an incident (only those in no incident yet); returns how many moved."""
    if not mention_ids:
        return 0
    outcome = session.execute(
        update(Mention)
        .where(col(Mention.id).in_(list(mention_ids)), col(Mention.incident_id).is_(None))
        .values(incident_id=incident_id)
        .execution_options(synchronize_session=False)
    )
    return int(cast(CursorResult[Any], outcome).rowcount or 0)


def close_quiet_incidents(session: Session, *, quiet_since: datetime) -> int:
    """Close open incidents that gained no mention since `quiet_since`."""
    outcome = session.execute(
        update(Incident)
        .where(col(Incident.status) == "open", col(Incident.last_seen_at) < quiet_since)
        .values(status="closed")
        .execution_options(synchronize_session=False)
    )
    return int(cast(CursorResult[Any], outcome).rowcount or 0)


def alert_rule_cases(
    session: Session,
    *,
    since: datetime,
    min_buzz_risk: float | None = None,
    urgency_tiers: Sequence[str] = (),
    brand_id: int | None = None,
    limit: int = 500,
) -> list[Case]:
    """Open cases changed since `since` that pass a rule's risk or urgency condition."""
    conditions = [
        col(Case.status).in_(list(OPEN_CASE_STATUSES)),
        col(Case.updated_at) >= since,
    ]
    if min_buzz_risk is not None:
        conditions.append(col(Case.buzz_risk) >= min_buzz_risk)
    if urgency_tiers:
        conditions.append(col(Case.urgency_tier).in_(list(urgency_tiers)))
    if brand_id is not None:
        conditions.append(col(Case.brand_id) == brand_id)
    stmt = select(Case).where(*conditions).order_by(col(Case.id)).limit(limit)
    return list(session.execute(stmt).scalars())


def cases_due_before(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    brand_id: int | None = None,
    limit: int = 500,
) -> list[Case]:
    """Open cases with no first response whose SLA falls due in [since, until]."""
    conditions = [
        col(Case.status).in_(list(OPEN_CASE_STATUSES)),
        col(Case.first_response_at).is_(None),
        col(Case.sla_due_at) >= since,
        col(Case.sla_due_at) <= until,
    ]
    if brand_id is not None:
        conditions.append(col(Case.brand_id) == brand_id)
    stmt = select(Case).where(*conditions).order_by(col(Case.sla_due_at)).limit(limit)
    return list(session.execute(stmt).scalars())


def cases_of_mentions(
    session: Session, *, mention_ids: Sequence[int], limit: int = 5
) -> list[Case]:
    """The riskiest cases opened for these mentions."""
    if not mention_ids:
        return []
    stmt = (
        select(Case)
        .where(col(Case.mention_id).in_(list(mention_ids)))
        .order_by(col(Case.buzz_risk).desc(), col(Case.id))
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def mentions_by_id(session: Session, *, ids: Iterable[int | None]) -> dict[int, Mention]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(Mention).where(col(Mention.id).in_(wanted))).scalars()
    return {m.id: m for m in rows if m.id is not None}


def add_alerts(session: Session, *, rows: Sequence[dict[str, Any]]) -> int:
    """Write alerts to the outbox; one already there (same dedup key and channel) is left alone.

    Returns how many were new.
    """
    added = 0
    for row in rows:
        stmt = (
            _insert_for(session, Alert)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["dedup_key", "channel"])
            .returning(col(Alert.id))
        )
        # RETURNING rather than rowcount, which psycopg reports as -1 for this statement.
        added += len(session.execute(stmt).all())
    return added


def alert_exists_since(
    session: Session, *, kind: str, brand_id: int | None, since: datetime
) -> bool:
    """Whether an alert of this kind was written for the brand since `since` (cool-downs)."""
    brand = col(Alert.brand_id).is_(None) if brand_id is None else col(Alert.brand_id) == brand_id
    stmt = select(col(Alert.id)).where(
        col(Alert.kind) == kind, brand, col(Alert.created_at) >= since
    )
    return session.execute(stmt.limit(1)).first() is not None


def _due(now: datetime) -> Any:
    pending = and_(
        col(Alert.status) == "pending",
        or_(col(Alert.next_attempt_at).is_(None), col(Alert.next_attempt_at) <= now),
    )
    lease_over = and_(col(Alert.status) == ALERT_CLAIMED, col(Alert.next_attempt_at) <= now)
    return or_(pending, lease_over)


def due_pending_counts(session: Session, *, now: datetime) -> dict[str, int]:
    """Alerts waiting for their first or next attempt, per channel (leases not included)."""
    stmt = (
        select(col(Alert.channel), func.count())
        .where(
            col(Alert.status) == "pending",
            or_(col(Alert.next_attempt_at).is_(None), col(Alert.next_attempt_at) <= now),
        )
        .group_by(col(Alert.channel))
    )
    return {channel: int(n) for channel, n in session.execute(stmt).all()}


def due_alert_ids(
    session: Session, *, now: datetime, channel: str | None = None, limit: int = 500
) -> list[int]:
    """Alerts to send now, oldest first: pending and due, or claimed by a process whose lease
    ran out (it died mid-send)."""
    stmt = select(col(Alert.id)).where(_due(now))
    if channel is not None:
        stmt = stmt.where(col(Alert.channel) == channel)
    return list(session.execute(stmt.order_by(col(Alert.id)).limit(limit)).scalars())


def claim_alert(
    session: Session, *, alert_id: int, now: datetime, lease_until: datetime
) -> Alert | None:
    """Take one due alert for sending, atomically (one conditional UPDATE); None if another
    process holds it or it is no longer due. The claim counts as an attempt."""
    outcome = session.execute(
        update(Alert)
        .where(col(Alert.id) == alert_id, _due(now))
        .values(status=ALERT_CLAIMED, attempts=Alert.attempts + 1, next_attempt_at=lease_until)
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], outcome).rowcount != 1:
        return None
    return session.get(Alert, alert_id, populate_existing=True)


def group_into_digest(
    session: Session, *, member_ids: Sequence[int], digest: Alert, now: datetime
) -> Alert | None:
    """Fold pending due alerts into one new digest alert (already claimed by the caller).

    All or nothing: if any member was taken meanwhile, None is returned and the caller must roll
    back its transaction.
    """
    ids = list(member_ids)
    outcome = session.execute(
        update(Alert)
        .where(
            col(Alert.id).in_(ids),
            col(Alert.status) == "pending",
            or_(col(Alert.next_attempt_at).is_(None), col(Alert.next_attempt_at) <= now),
        )
        .values(status="grouped")
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], outcome).rowcount != len(ids):
        return None
    session.add(digest)
    session.flush()
    session.execute(
        update(Alert)
        .where(col(Alert.id).in_(ids))
        .values(digest_id=digest.id)
        .execution_options(synchronize_session=False)
    )
    return digest


def alerts_by_ids(session: Session, *, ids: Sequence[int]) -> list[Alert]:
    if not ids:
        return []
    stmt = select(Alert).where(col(Alert.id).in_(list(ids))).order_by(col(Alert.id))
    return list(session.execute(stmt).scalars())


def digest_members(session: Session, *, digest_id: int) -> list[Alert]:
    stmt = select(Alert).where(col(Alert.digest_id) == digest_id).order_by(col(Alert.id))
    return list(session.execute(stmt).scalars())


def finish_alert(
    session: Session,
    *,
    alert_id: int,
    attempt: int,
    status: str,
    now: datetime,
    next_attempt_at: datetime | None = None,
    error: str | None = None,
) -> bool:
    """Record how a claimed send ended (sent, pending again, failed), if the claim is still ours.

    `attempt` is the attempt count the claim set: a process whose lease ran out and was
    reclaimed by another one changes nothing.
    """
    values: dict[str, Any] = {"status": status, "next_attempt_at": next_attempt_at}
    if status == "sent":
        values.update(sent_at=now, last_error=None)
    else:
        values["last_error"] = error
    outcome = session.execute(
        update(Alert)
        .where(
            col(Alert.id) == alert_id,
            col(Alert.status) == ALERT_CLAIMED,
            col(Alert.attempts) == attempt,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    done = cast(CursorResult[Any], outcome).rowcount == 1
    if done and status == "sent":  # the alerts a digest carried went out with it
        session.execute(
            update(Alert)
            .where(col(Alert.digest_id) == alert_id)
            .values(sent_at=now)
            .execution_options(synchronize_session=False)
        )
    return done


def outbox_alerts(
    session: Session,
    *,
    statuses: Sequence[str] = (),
    channel: str | None = None,
    limit: int = 50,
) -> list[Alert]:
    """The outbox, newest first (for `tocsin alerts list` and the board)."""
    stmt = select(Alert)
    if statuses:
        stmt = stmt.where(col(Alert.status).in_(list(statuses)))
    if channel is not None:
        stmt = stmt.where(col(Alert.channel) == channel)
    stmt = stmt.order_by(col(Alert.created_at).desc(), col(Alert.id).desc()).limit(limit)
    return list(session.execute(stmt).scalars())


def outbox_counts(session: Session) -> dict[str, int]:
    stmt = select(col(Alert.status), func.count()).group_by(col(Alert.status))
    return {status: int(n) for status, n in session.execute(stmt).all()}


def requeue_failed_alerts(session: Session, *, now: datetime, ids: Sequence[int] = ()) -> int:
    """Give alerts that ran out of attempts a fresh set of tries."""
    stmt = update(Alert).where(col(Alert.status) == "failed")
    if ids:
        stmt = stmt.where(col(Alert.id).in_(list(ids)))
    outcome = session.execute(
        stmt.values(status="pending", attempts=0, next_attempt_at=now).execution_options(
            synchronize_session=False
        )
    )
    return int(cast(CursorResult[Any], outcome).rowcount or 0)


# ----------------------------------------------------------------------------- collectors
# Sources and brands from the settings, and each source's incremental state.

from storage.models import Brand as _Brand  # noqa: E402  (this section's imports stay with it)
from storage.models import Source as _Source  # noqa: E402

# Settings fields a source's incremental state depends on: change one and the cursor starts over.
_SOURCE_IDENTITY = ("kind", "query", "base_url")


def sync_brands(session: Session, *, brands: Sequence[Any]) -> dict[str, int]:
    """Create or update Brand rows from the settings' `[[brands]]`; returns name -> id."""
    existing = {b.name: b for b in session.execute(select(_Brand)).scalars()}
    for config in brands:
        row = existing.get(config.name) or _Brand(name=config.name)
        row.keywords = list(config.keywords)
        row.handles = list(config.handles)
        row.excluded_terms = list(config.excluded_terms)
        row.languages = list(config.languages)
        session.add(row)
        existing[config.name] = row
    session.flush()
    return {name: row.id for name, row in existing.items() if row.id is not None}


def sync_sources(
    session: Session, *, sources: Sequence[Any], brand_ids: dict[str, int]
) -> list[_Source]:
    """Create or update Source rows from the settings' `[[sources]]`, keeping their state.

    The cursor, ETag and Last-Modified start over when the kind, query or base URL changed (they
    described another feed). Rows of sources no longer configured are left alone.
    """
    existing = {s.name: s for s in session.execute(select(_Source)).scalars()}
    synced = []
    for config in sources:
        row = existing.get(config.name)
        if row is None:
            row = _Source(name=config.name, kind=config.kind)
        elif any(getattr(row, f) != getattr(config, f) for f in _SOURCE_IDENTITY):
            row.cursor, row.etag, row.last_modified = {}, None, None
        row.kind = config.kind
        row.query = config.query
        row.base_url = config.base_url
        row.options = dict(config.options)
        row.enabled = config.enabled
        row.interval_minutes = config.interval_minutes
        row.brand_id = brand_ids.get(config.brand) if config.brand else None
        session.add(row)
        synced.append(row)
    session.flush()
    return synced


def get_source(session: Session, *, name: str) -> _Source | None:
    return session.execute(select(_Source).where(col(_Source.name) == name)).scalars().first()


def get_brand(session: Session, *, brand_id: int) -> _Brand | None:
    return session.get(_Brand, brand_id)


def list_sources(session: Session) -> list[_Source]:
    return list(session.execute(select(_Source).order_by(col(_Source.name))).scalars())


def record_crawl_outcome(
    session: Session,
    *,
    source_id: int,
    finished_at: datetime,
    advance: bool,
    cursor: dict[str, Any] | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    not_before: datetime | None = None,
    error: str | None = None,
) -> None:
    """Save how a crawl ended. The cursor and validators move only when `advance` is true."""
    values: dict[str, Any] = {
        "last_run": finished_at,
        "last_error": error,
        "not_before": not_before,
    }
    if advance:
        values.update(cursor=cursor or {}, etag=etag, last_modified=last_modified)
    session.execute(update(_Source).where(col(_Source.id) == source_id).values(**values))


# ----------------------------------------------------------------------------- demo


def open_cases_with_post_times(
    session: Session, *, before: datetime
) -> list[tuple[Case, datetime]]:
    """Open cases whose post appeared before `before`, with the post's time (demo history)."""
    stmt = (
        select(Case, col(Mention.created_at))
        .join(Mention, col(Mention.id) == col(Case.mention_id))
        .where(col(Case.status).in_(list(OPEN_CASE_STATUSES)), col(Mention.created_at) < before)
        .order_by(col(Case.id))
    )
    return [(case, posted) for case, posted in session.execute(stmt).all() if posted is not None]


# ----------------------------------------------------------------------------- classifier
# Reads for the batch scorer (clustering, the usual engagement pace, re-scores) and training.


def engagement_samples(
    session: Session, *, brand_ids: Iterable[int | None], since: datetime, limit: int = 2000
) -> dict[int | None, list[float]]:
    """Engagement per minute since posting of each brand's recent mentions (newest first)."""
    result: dict[int | None, list[float]] = {}
    for brand_id in set(brand_ids):
        brand_column = col(Mention.brand_id)
        brand_filter = brand_column.is_(None) if brand_id is None else brand_column == brand_id
        stmt = (
            select(
                col(Mention.likes),
                col(Mention.reposts),
                col(Mention.replies),
                col(Mention.created_at),
                col(Mention.engagement_observed_at),
            )
            .where(
                brand_filter,
                col(Mention.created_at) >= since,
                col(Mention.engagement_observed_at).is_not(None),
            )
            .order_by(col(Mention.created_at).desc())
            .limit(limit)
        )
        rates = []
        for likes, reposts, replies, created, observed in session.execute(stmt).all():
            minutes = max((observed - created).total_seconds() / 60.0, 1.0)
            rates.append(((likes or 0) + (reposts or 0) + (replies or 0)) / minutes)
        result[brand_id] = rates
    return result


def scores_for_version(
    session: Session, *, mention_ids: Iterable[int], model_version: str
) -> dict[int, Score]:
    """Existing scores of these mentions by one model version (a re-score updates them)."""
    wanted = list(set(mention_ids))
    if not wanted:
        return {}
    stmt = select(Score).where(
        col(Score.mention_id).in_(wanted), col(Score.model_version) == model_version
    )
    return {score.mention_id: score for score in session.execute(stmt).scalars()}


def cases_by_mention(session: Session, *, mention_ids: Iterable[int]) -> dict[int, Case]:
    """The cases already opened for these mentions (one query for a whole scoring batch)."""
    wanted = list(set(mention_ids))
    if not wanted:
        return {}
    stmt = select(Case).where(col(Case.mention_id).in_(wanted))
    return {c.mention_id: c for c in session.execute(stmt).scalars() if c.mention_id is not None}


def write_scores(
    session: Session, *, new: Sequence[dict[str, Any]], changed: Sequence[dict[str, Any]]
) -> None:
    """Insert new Score rows and update re-scored ones (by `id`), each in one statement."""
    if new:
        session.execute(insert(Score), list(new))
    if changed:
        session.execute(update(Score), list(changed))


def mark_mentions_scored(session: Session, *, mention_ids: Sequence[int]) -> None:
    ids = list(mention_ids)
    for start in range(0, len(ids), 900):  # below SQLite's bound-parameter ceiling
        session.execute(
            update(Mention)
            .where(col(Mention.id).in_(ids[start : start + 900]))
            .values(scored=True)
            .execution_options(synchronize_session=False)
        )


def insert_cases(session: Session, *, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Open several cases in one statement; their ids in the order of `rows`.

    Raises IntegrityError if another scorer opened a case for one of the mentions meanwhile.
    """
    if not rows:
        return []
    stmt = insert(Case).returning(col(Case.id), sort_by_parameter_order=True)
    return [int(case_id) for case_id in session.execute(stmt, list(rows)).scalars()]


def feedback_examples(session: Session) -> list[tuple[str, str | None, str, str]]:
    """(text, lang, field, value) of the team's score corrections, latest per mention and field."""
    stmt = (
        select(
            col(Feedback.mention_id),
            col(Feedback.field),
            col(Feedback.new_value),
            col(Mention.clean_text),
            col(Mention.text),
            col(Mention.lang),
        )
        .join(Mention, col(Mention.id) == col(Feedback.mention_id))
        .where(col(Mention.deleted).is_(False))
        .order_by(col(Feedback.created_at), col(Feedback.id))
    )
    latest: dict[tuple[int, str], tuple[str, str | None, str, str]] = {}
    for mention_id, field_name, value, clean, raw, lang in session.execute(stmt).all():
        latest[(mention_id, field_name)] = (clean or raw or "", lang, field_name, value)
    return list(latest.values())


def count_unscored(session: Session) -> int:
    """Mentions still waiting for a score."""
    waiting = (col(Mention.scored).is_(False), col(Mention.deleted).is_(False))
    return int(session.execute(select(func.count()).where(*waiting)).scalar() or 0)
