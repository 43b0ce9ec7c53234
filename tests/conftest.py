"""Shared fixtures: real databases (a SQLite file and a PostgreSQL database per test), settings.

A migrated template is built once per test session and cloned for each test, so every test
starts from the real Alembic schema without paying for the migrations again.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from storage import db as storage_db
from storage.migrate import upgrade
from tocsin import config as tocsin_config
from tocsin.config import Settings

PG_ADMIN_DSN = os.environ.get("TOCSIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ARTIFACTS = Path(os.environ.get("TOCSIN_TEST_ARTIFACTS", "test-artifacts"))


def _pg_url(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}"


def _pg_admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(url=f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[str]:
    # PostgreSQL missing is a failure, not a skip: the storage suite must run on both engines.
    name = f"tocsin_tpl_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        upgrade(url=_pg_url(name))
        yield name
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test reads the developer's tocsin.toml, TOCSIN_* variables or data folder."""
    for key in list(os.environ):
        if key.startswith("TOCSIN_") and key != "TOCSIN_TEST_PG":
            monkeypatch.delenv(key)
    config_file = tmp_path / ".isolated" / "tocsin.toml"
    config_file.parent.mkdir()
    config_file.write_text("", encoding="utf-8")
    monkeypatch.setenv("TOCSIN_CONFIG", str(config_file))
    monkeypatch.setenv("TOCSIN_DATA_DIR", str(tmp_path / "data"))
    tocsin_config.get_settings.cache_clear()
    yield
    tocsin_config.get_settings.cache_clear()
    storage_db.dispose()


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "tocsin.db"
    shutil.copy(_sqlite_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("TOCSIN_DATABASE_URL", url)
    storage_db.configure(url)
    return url


@pytest.fixture
def postgres_url(_pg_template: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"tocsin_t_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{_pg_template}"')
    url = _pg_url(name)
    monkeypatch.setenv("TOCSIN_DATABASE_URL", url)
    storage_db.configure(url)
    try:
        yield url
    finally:
        storage_db.dispose()
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database on each engine; the process engine points at it."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests keep what a person may want to look at (screenshots, PDF pages)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS.resolve()
