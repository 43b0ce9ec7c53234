"""`tocsin export`: a brand's mentions and cases as CSV or Parquet, optionally pseudonymised.

With `--pseudonymise`, every author handle (and every @handle quoted in a post) becomes a stable
salted hash, so that exports from different days still join on the same pseudonym; the salt comes
from TOCSIN_EXPORT_SALT and never sits in the files. Post links, platform ids, display names and
bios are left out, since any of them leads back to the person.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from storage import db as storage_db
from storage import queries
from storage.models import Author
from tocsin.config import get_secrets, get_settings
from tocsin.errors import UserError

app = typer.Typer(help="Export a brand's data.")

SALT_ENV = "TOCSIN_EXPORT_SALT"
PAGE = 2_000
QUOTED_HANDLE = re.compile(r"(?<![\w@])@([A-Za-z0-9_.]{1,100})")

MENTION_COLUMNS: dict[str, str] = {
    "mention_id": "int",
    "platform": "str",
    "external_id": "str",
    "url": "str",
    "created_at": "time",
    "collected_at": "time",
    "lang": "str",
    "author": "str",
    "author_name": "str",
    "author_followers": "int",
    "author_verified": "bool",
    "text": "str",
    "deleted": "bool",
    "rating": "float",
    "likes": "int",
    "reposts": "int",
    "replies": "int",
    "incident_id": "int",
    "sentiment": "str",
    "urgency": "str",
    "is_complaint": "bool",
    "complaint_severity": "int",
    "buzz_risk": "float",
    "model_version": "str",
}
CASE_COLUMNS: dict[str, str] = {
    "case_id": "int",
    "mention_id": "int",
    "incident_id": "int",
    "platform": "str",
    "lang": "str",
    "author": "str",
    "status": "str",
    "urgency": "str",
    "priority": "float",
    "buzz_risk": "float",
    "topic": "str",
    "assignee": "str",
    "created_at": "time",
    "sla_due_at": "time",
    "first_response_at": "time",
    "first_response_minutes": "float",
    "sla_met": "bool",
    "handoff": "str",
    "resolved_at": "time",
}
IDENTIFYING = ("url", "external_id", "author_name")


class Format(StrEnum):
    csv = "csv"
    parquet = "parquet"


class Pseudonyms:
    """Stable salted pseudonyms of handles (HMAC-SHA256, per platform)."""

    def __init__(self, salt: str) -> None:
        self._key = salt.encode("utf-8")

    def of(self, platform: str, handle: str) -> str:
        message = f"{platform}:{handle.lstrip('@').lower()}".encode()
        return "anon_" + hmac.new(self._key, message, hashlib.sha256).hexdigest()[:16]

    def text(self, platform: str, text: str) -> str:
        return QUOTED_HANDLE.sub(lambda m: "@" + self.of(platform, m[1]), text)


def _author(platform: str, author: Author | None, pseudonyms: Pseudonyms | None) -> str | None:
    if author is None:
        return None
    return pseudonyms.of(platform, author.handle) if pseudonyms else author.handle


def mention_rows(brand_id: int, pseudonyms: Pseudonyms | None) -> Iterator[list[dict[str, Any]]]:
    after = 0
    while True:
        with storage_db.session_scope() as session:
            page = queries.export_mentions(session, brand_id=brand_id, after_id=after, limit=PAGE)
        if not page:
            return
        rows = []
        for item in page:
            m, a, s = item.mention, item.author, item.score
            text = m.clean_text or m.text or ""
            rows.append(
                {
                    "mention_id": m.id,
                    "platform": m.platform,
                    "external_id": m.external_id,
                    "url": m.url,
                    "created_at": m.created_at,
                    "collected_at": m.collected_at,
                    "lang": m.lang,
                    "author": _author(m.platform, a, pseudonyms),
                    "author_name": a.display_name if a else None,
                    "author_followers": a.followers if a else None,
                    "author_verified": a.verified if a else None,
                    "text": pseudonyms.text(m.platform, text) if pseudonyms else text,
                    "deleted": m.deleted,
                    "rating": m.rating,
                    "likes": m.likes,
                    "reposts": m.reposts,
                    "replies": m.replies,
                    "incident_id": m.incident_id,
                    "sentiment": s.sentiment_label if s else None,
                    "urgency": s.urgency_tier if s else None,
                    "is_complaint": s.is_complaint if s else None,
                    "complaint_severity": s.complaint_severity if s else None,
                    "buzz_risk": s.buzz_risk if s else None,
                    "model_version": s.model_version if s else None,
                }
            )
        after = page[-1].mention.id or after
        yield rows


def case_rows(brand_id: int, pseudonyms: Pseudonyms | None) -> Iterator[list[dict[str, Any]]]:
    after = 0
    while True:
        with storage_db.session_scope() as session:
            page = queries.export_cases(session, brand_id=brand_id, after_id=after, limit=PAGE)
        if not page:
            return
        rows = []
        for item in page:
            c = item.case
            platform = c.platform or (item.mention.platform if item.mention else "")
            answered = c.first_response_at
            rows.append(
                {
                    "case_id": c.id,
                    "mention_id": c.mention_id,
                    "incident_id": c.incident_id,
                    "platform": platform,
                    "lang": c.lang,
                    "author": _author(platform, item.author, pseudonyms),
                    "status": c.status,
                    "urgency": c.urgency_tier,
                    "priority": c.priority,
                    "buzz_risk": c.buzz_risk,
                    "topic": c.topic,
                    "assignee": item.assignee,
                    "created_at": c.created_at,
                    "sla_due_at": c.sla_due_at,
                    "first_response_at": answered,
                    "first_response_minutes": (
                        round((answered - c.created_at).total_seconds() / 60, 1)
                        if answered
                        else None
                    ),
                    "sla_met": (answered <= c.sla_due_at if answered and c.sla_due_at else None),
                    "handoff": c.handoff,
                    "resolved_at": c.resolved_at,
                }
            )
        after = page[-1].case.id or after
        yield rows


def _cell(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def write_csv(path: Path, columns: list[str], pages: Iterator[list[dict[str, Any]]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for rows in pages:
            writer.writerows({k: _cell(row.get(k)) for k in columns} for row in rows)
            count += len(rows)
    return count


def write_parquet(
    path: Path, columns: dict[str, str], pages: Iterator[list[dict[str, Any]]]
) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(
            "Parquet needs pyarrow: `pip install pyarrow` (or use --format csv)"
        ) from None
    types = {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "str": pa.string(),
        "time": pa.timestamp("us", tz="UTC"),
    }
    schema = pa.schema([(name, types[kind]) for name, kind in columns.items()])
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        for rows in pages:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            count += len(rows)
        if count == 0:
            writer.write_table(schema.empty_table())
    return count


def _columns(spec: dict[str, str], pseudonymise: bool) -> dict[str, str]:
    if not pseudonymise:
        return dict(spec)
    return {k: v for k, v in spec.items() if k not in IDENTIFYING}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "brand"


@app.command()
def export(
    brand: Annotated[str, typer.Option("--brand", help="Brand name as in tocsin.toml.")],
    fmt: Annotated[Format, typer.Option("--format", help="csv or parquet.")] = Format.csv,
    out: Annotated[Path, typer.Option("--out", help="Folder to write to.")] = Path("."),
    pseudonymise: Annotated[
        bool,
        typer.Option(
            "--pseudonymise",
            help=f"Replace author handles by salted hashes (salt from {SALT_ENV}).",
        ),
    ] = False,
) -> None:
    """Write the brand's mentions and cases to two files (<brand>-mentions, <brand>-cases)."""
    settings = get_settings()
    storage_db.configure(settings.resolved_database_url)
    pseudonyms = None
    if pseudonymise:
        salt = get_secrets().env(SALT_ENV)
        if not salt or len(salt) < 16:
            raise UserError(f"--pseudonymise needs {SALT_ENV} set to a secret of 16+ characters")
        pseudonyms = Pseudonyms(salt)
    with storage_db.session_scope() as session:
        row = queries.brand_by_name(session, name=brand)
    if row is None or row.id is None:
        known = ", ".join(b.name for b in settings.brands) or "none configured"
        raise UserError(f"no brand {brand!r} in the database (brands: {known})")
    out.mkdir(parents=True, exist_ok=True)
    brand_id = row.id
    tables: list[tuple[str, dict[str, str], Callable[..., Iterator[list[dict[str, Any]]]]]] = [
        ("mentions", MENTION_COLUMNS, mention_rows),
        ("cases", CASE_COLUMNS, case_rows),
    ]
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as progress:
        for name, spec, rows in tables:
            task = progress.add_task(f"exporting {name}…")
            columns = _columns(spec, pseudonymise)
            path = out / f"{_slug(brand)}-{name}.{fmt.value}"
            pages = rows(brand_id, pseudonyms)
            if fmt is Format.csv:
                count = write_csv(path, list(columns), pages)
            else:
                count = write_parquet(path, columns, pages)
            progress.remove_task(task)
            typer.echo(f"{count} {name} -> {path}")
