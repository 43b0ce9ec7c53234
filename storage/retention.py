"""Data care: what `[retention]` in tocsin.toml says to forget, forgotten by a daily job.

Raw API payloads older than `raw_days` and the details of authors not seen for `author_days` are
purged; scores, cases, replies and report figures stay (they hold no more than the public post).
Posts deleted at their source keep neither text nor payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from storage import queries
from storage.db import session_scope
from storage.types import utcnow
from tocsin.config import Settings


@dataclass(frozen=True, slots=True)
class PurgeReport:
    raw_payloads: int
    author_details: int
    deleted_scrubbed: int

    def __str__(self) -> str:
        return (
            f"purged {self.raw_payloads} raw payloads, {self.author_details} authors' details, "
            f"{self.deleted_scrubbed} deleted posts' leftovers"
        )


def purge(*, settings: Settings, now: datetime | None = None) -> PurgeReport:
    """Apply the retention settings once, in one transaction."""
    moment = now or utcnow()
    retention = settings.retention
    with session_scope() as session:
        raw = queries.purge_raw_payloads(
            session, collected_before=moment - timedelta(days=retention.raw_days)
        )
        authors = queries.purge_author_details(
            session, seen_before=moment - timedelta(days=retention.author_days)
        )
        scrubbed = queries.scrub_deleted_mentions(session)
    return PurgeReport(raw_payloads=raw, author_details=authors, deleted_scrubbed=scrubbed)
