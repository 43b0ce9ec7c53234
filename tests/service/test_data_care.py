"""Data care: the retention purge and `tocsin export` (CSV, Parquet, pseudonymised)."""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlmodel import col, select

from storage import queries
from storage.db import session_scope
from storage.models import Author, Case, Mention, Score
from storage.queries import AuthorRecord, MentionRecord
from storage.retention import purge
from tocsin.config import Settings
from tocsin.errors import UserError

NOW = datetime(2026, 11, 22, 3, 30, tzinfo=UTC)
SALT = "a-test-salt-of-some-length"
REPO = Path(__file__).resolve().parents[2]


def seed(session) -> int:  # type: ignore[no-untyped-def]
    brand = queries.sync_brands(session, brands=[Settings(brands=[{"name": "Acme Air"}]).brands[0]])  # type: ignore[list-item]
    brand_id = brand["Acme Air"]
    records = [
        MentionRecord(
            platform="x",
            external_id=str(i),
            text=f"@AcmeAir my bag is lost, ask @friend_{i} #{i}",
            url=f"https://x.example/jane_doe_{i}/status/{i}",
            created_at=NOW - timedelta(days=5),
            raw={"payload": i, "user": {"screen_name": f"jane_doe_{i}"}},
            author=AuthorRecord(
                handle=f"jane_doe_{i}", display_name=f"Jane Doe {i}", followers=10 * i, bio="me"
            ),
        )
        for i in range(3)
    ]
    queries.upsert_mentions(session, records=records, brand_id=brand_id)
    mentions = list(session.execute(select(Mention).order_by(col(Mention.id))).scalars())
    for m in mentions:
        session.add(
            Score(
                mention_id=m.id,
                model_version="t",
                sentiment_label="negative",
                urgency_tier="high",
                buzz_risk=50.0,
            )
        )
    session.add(
        Case(
            mention_id=mentions[0].id,
            brand_id=brand_id,
            platform="x",
            created_at=NOW - timedelta(days=5),
            sla_due_at=NOW - timedelta(days=5) + timedelta(minutes=30),
            first_response_at=NOW - timedelta(days=5) + timedelta(minutes=12),
        )
    )
    session.flush()
    return brand_id


def test_retention_purges_old_payloads_and_author_details_only(sqlite_url: str) -> None:
    with session_scope() as session:
        seed(session)
        mentions = list(session.execute(select(Mention).order_by(col(Mention.id))).scalars())
        authors = list(session.execute(select(Author).order_by(col(Author.id))).scalars())
        # The first post was collected long ago, its author not seen for a long time.
        mentions[0].collected_at = NOW - timedelta(days=100)
        authors[0].updated_at = NOW - timedelta(days=400)
        # The third was deleted at its source, then a late upsert brought a payload back.
        mentions[2].deleted, mentions[2].text, mentions[2].raw = True, "", {"again": 1}
    settings = Settings(retention={"raw_days": 90, "author_days": 365})  # type: ignore[arg-type]
    report = purge(settings=settings, now=NOW)
    assert (report.raw_payloads, report.author_details, report.deleted_scrubbed) == (1, 1, 1)
    with session_scope() as session:
        m = list(session.execute(select(Mention).order_by(col(Mention.id))).scalars())
        a = list(session.execute(select(Author).order_by(col(Author.id))).scalars())
        assert m[0].raw is None and m[0].text.startswith("@AcmeAir"), "text and score stay"
        assert m[1].raw == {"payload": 1, "user": {"screen_name": "jane_doe_1"}}
        assert (m[2].raw, m[2].text, m[2].clean_text) == (None, "", "")
        assert (a[0].handle, a[0].display_name, a[0].bio, a[0].followers) == (
            "jane_doe_0",
            None,
            None,
            None,
        )
        assert a[1].display_name == "Jane Doe 1"
        assert len(list(session.execute(select(Score)).scalars())) == 3
        assert session.execute(select(Case)).scalar_one().first_response_at is not None
    assert purge(settings=settings, now=NOW).raw_payloads == 0, "nothing left to purge"


def tocsin(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "TOCSIN_EXPORT_SALT"} | env
    return subprocess.run(
        [sys.executable, "-m", "tocsin", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=180,
    )


def export_in_process(*args: str, monkeypatch: pytest.MonkeyPatch, salt: str | None = None) -> Any:
    from typer.testing import CliRunner

    from tocsin.cli import app

    if salt:
        monkeypatch.setenv("TOCSIN_EXPORT_SALT", salt)
    return CliRunner().invoke(app, ["export", *args])


def test_export_csv_and_parquet_pseudonymised(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope() as session:
        seed(session)
    plain = export_in_process(
        "--brand", "Acme Air", "--out", str(tmp_path / "plain"), monkeypatch=monkeypatch
    )
    assert plain.exit_code == 0, plain.output
    rows = list(csv.DictReader((tmp_path / "plain" / "acme-air-mentions.csv").open()))
    assert [r["author"] for r in rows] == ["jane_doe_0", "jane_doe_1", "jane_doe_2"]
    assert rows[0]["sentiment"] == "negative" and rows[0]["url"].startswith("https://")
    unknown = export_in_process("--brand", "Nope", monkeypatch=monkeypatch)
    assert isinstance(unknown.exception, UserError) and "no brand 'Nope'" in str(unknown.exception)

    # As a user runs it: a missing salt is one line on stderr and exit status 1.
    refused = tocsin("export", "--brand", "Acme Air", "--pseudonymise", cwd=REPO)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "Error: --pseudonymise needs TOCSIN_EXPORT_SALT set to a secret of 16+ characters"
    )
    out = tmp_path / "anon"
    done = tocsin(
        "export",
        "--brand",
        "Acme Air",
        "--pseudonymise",
        "--out",
        str(out),
        cwd=REPO,
        TOCSIN_EXPORT_SALT=SALT,
    )
    assert done.returncode == 0, done.stderr
    assert "3 mentions" in done.stdout and "1 cases" in done.stdout
    first = (out / "acme-air-mentions.csv").read_text()
    assert "jane_doe" not in first and "Jane Doe" not in first and "friend_" not in first
    # Stable: the pseudonym is a salted hash of platform and handle, the same on every export.
    expected = "anon_" + hmac.new(SALT.encode(), b"x:jane_doe_0", hashlib.sha256).hexdigest()[:16]
    rows = list(csv.DictReader(first.splitlines()))
    assert rows[0]["author"] == expected and "url" not in rows[0] and "external_id" not in rows[0]
    assert rows[0]["text"].startswith("@anon_") and "my bag is lost" in rows[0]["text"]
    cases = list(csv.DictReader((out / "acme-air-cases.csv").open()))
    assert cases[0]["author"] == expected
    assert (cases[0]["first_response_minutes"], cases[0]["sla_met"]) == ("12.0", "True")

    parquet = export_in_process(
        "--brand",
        "Acme Air",
        "--format",
        "parquet",
        "--pseudonymise",
        "--out",
        str(tmp_path / "pq"),
        monkeypatch=monkeypatch,
        salt=SALT,
    )
    assert parquet.exit_code == 0, parquet.output
    table = pq.read_table(tmp_path / "pq" / "acme-air-mentions.parquet")
    assert table.num_rows == 3 and table.column("author").to_pylist()[0] == expected
    assert "url" not in table.column_names
    assert pq.read_table(tmp_path / "pq" / "acme-air-cases.parquet").num_rows == 1
