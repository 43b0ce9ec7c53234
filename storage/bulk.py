"""Bulk upserts fast enough for collection bursts (tens of thousands of rows a second).

SQLAlchemy's generic multi-row path spends most of its time building and parsing statements
with thousands of parameters. Here each engine gets what its driver does best, with the very
same ON CONFLICT statement:

- PostgreSQL: COPY the rows into a temporary table, then one INSERT ... SELECT ... ON CONFLICT
  DO UPDATE ... RETURNING.
- SQLite: the upsert compiled once, run by the driver's executemany over the rows (values
  converted by SQLAlchemy's own bind processors, so they are stored exactly as the ORM stores
  them), then the keys looked up per first key column (the unique index serves it).

Callers pass rows as dicts of column values and get back the `returning` columns of every row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import BindParameter, Column, MetaData, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.types import JSON
from sqlmodel import Session

UpdateSet = Callable[[Any], dict[str, Any]]  # given the INSERT statement, the SET clause


def upsert(
    session: Session,
    *,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict: tuple[str, str],
    update: UpdateSet,
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Insert or update `rows` (all with the same keys) and return `returning` for each."""
    if not rows:
        return []
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        return _postgres(session, table, rows, conflict, update, returning)
    if dialect.name == "sqlite":
        return _sqlite(session, dialect, table, rows, conflict, update, returning)
    stmt = pg_insert(table)  # other engines: the generic path
    stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_=update(stmt))
    result = session.execute(stmt.returning(*(table.c[c] for c in returning)), list(rows))
    return [tuple(r) for r in result]


def insert_many(session: Session, *, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Plain inserts (no conflicts possible), through COPY on PostgreSQL."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        columns = list(rows[0])
        _copy(session, table.name, table, columns, rows)
        return
    session.execute(table.insert(), list(rows))


def _copy(
    session: Session,
    target: str,
    table: Table,
    columns: list[str],
    rows: Sequence[dict[str, Any]],
) -> None:
    cursor = session.connection().connection.cursor()
    names = ", ".join(f'"{c}"' for c in columns)
    as_json = [isinstance(table.c[c].type, JSON) for c in columns]
    with cursor.copy(f'COPY "{target}" ({names}) FROM STDIN') as copy:  # type: ignore[attr-defined]
        for row in rows:
            values = [row[c] for c in columns]
            for i, is_json in enumerate(as_json):
                if is_json and values[i] is not None:
                    values[i] = json.dumps(values[i])
            copy.write_row(values)


def _postgres(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict: tuple[str, str],
    update: UpdateSet,
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    columns = list(rows[0])
    staging_name = f"tocsin_stage_{uuid.uuid4().hex[:12]}"
    staging = Table(staging_name, MetaData(), *(Column(c, table.c[c].type) for c in columns))
    connection = session.connection()
    quoted = [f'"{c}"' for c in columns]
    connection.exec_driver_sql(
        f'CREATE TEMPORARY TABLE "{staging_name}" ON COMMIT DROP AS '
        f'SELECT {", ".join(quoted)} FROM "{table.name}" WITH NO DATA'
    )
    _copy(session, staging_name, table, columns, rows)
    stmt = pg_insert(table).from_select(columns, select(*staging.c))
    stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_=update(stmt))
    result = session.execute(stmt.returning(*(table.c[c] for c in returning)))
    found = [tuple(r) for r in result]
    connection.exec_driver_sql(f'DROP TABLE "{staging_name}"')
    return found


def _sqlite(
    session: Session,
    dialect: Dialect,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict: tuple[str, str],
    update: UpdateSet,
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    columns = list(rows[0])
    stmt = sqlite_insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_=update(stmt))
    compiled = stmt.compile(dialect=dialect, column_keys=columns)
    getters = [
        _sqlite_getter(compiled.binds[name], dialect, columns)
        for name in compiled.positiontup or []
    ]
    params = [tuple(get(row) for get in getters) for row in rows]
    session.connection().connection.cursor().executemany(str(compiled), params)
    return _lookup(session, table, rows, conflict, returning)


def _sqlite_getter(
    bind: BindParameter[Any], dialect: Dialect, columns: Sequence[str]
) -> Callable[[dict[str, Any]], Any]:
    """How to fill one placeholder: a row's column value, or a constant of the statement (such
    as the empty text in a CASE), converted the way SQLAlchemy converts it."""
    process = bind.type._cached_bind_processor(dialect)
    if bind.key not in columns:
        constant = process(bind.effective_value) if process else bind.effective_value
        return lambda _row: constant
    key = bind.key
    if process is None:
        return lambda row: row[key]
    return lambda row: process(row[key])


def _lookup(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict: tuple[str, str],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    first, second = conflict
    grouped: dict[Any, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row[first], []).append(row[second])
    found: list[tuple[Any, ...]] = []
    wanted = [table.c[c] for c in returning]
    for value, seconds in grouped.items():
        for start in range(0, len(seconds), 5000):  # under SQLite's bound-parameter limit
            chunk = seconds[start : start + 5000]
            stmt = select(*wanted).where(table.c[first] == value, table.c[second].in_(chunk))
            found.extend(tuple(r) for r in session.execute(stmt))
    return found
