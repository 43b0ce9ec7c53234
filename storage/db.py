"""The one engine and the one session pattern.

    with session_scope() as session:   # commits on success, rolls back on error
        ...

`configure(url)` points the process at another database (tests, `tocsin --database`); everything
else asks `get_engine()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

_engine: Engine | None = None
_url: str | None = None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # A transaction that may write takes the write lock at BEGIN, so that read-then-write work
    # (claims, upserts) on two connections serialises instead of failing with "database is
    # locked" on upgrade. A read-only one starts deferred: under WAL it never waits for a writer.
    if conn.get_execution_options().get("tocsin_read_only"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling is switched off so that BEGIN is ours.
        event.listen(
            engine, "connect", lambda dbapi_conn, _rec: setattr(dbapi_conn, "isolation_level", None)
        )
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def configure(url: str | None = None) -> Engine:
    """Create (or replace) the process's engine. Without a URL, the settings decide."""
    global _engine, _url
    if url is None:
        from tocsin.config import get_settings

        url = get_settings().resolved_database_url
    if _engine is not None:
        _engine.dispose()
    _engine = make_engine(url)
    _url = url
    return _engine


def get_engine() -> Engine:
    return _engine if _engine is not None else configure()


def database_url() -> str:
    get_engine()
    assert _url is not None
    return _url


@contextmanager
def session_scope(*, read_only: bool = False) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises.

    `read_only=True` for work that only reads (pages, reports, the scorer's fetch): on SQLite it
    does not queue behind writers.
    """
    bind = get_engine()
    if read_only:
        bind = bind.execution_options(tocsin_read_only=True)
    session = Session(bind, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose() -> None:
    global _engine, _url
    if _engine is not None:
        _engine.dispose()
    _engine = None
    _url = None


def analyze() -> None:
    """Refresh the query planner's statistics. PostgreSQL's autovacuum does this by itself;
    SQLite gathers none unless asked, and without them it sorts the whole open queue instead of
    reading it in priority order."""
    with get_engine().begin() as connection:
        connection.exec_driver_sql("ANALYZE")
