"""`tocsin db`: create or upgrade the schema, and show what is stored."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from storage import db as storage_db
from storage import migrate, queries

app = typer.Typer(help="The database: schema upgrades and statistics.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Alembic revision to reach.")) -> None:
    """Create the schema or bring it up to date (Alembic migrations)."""
    storage_db.configure()
    migrate.upgrade(revision)
    typer.echo(f"Database at {migrate.current_revision()}: {_safe_url()}")


@app.command()
def stats() -> None:
    """Row counts per table and the schema revision."""
    storage_db.configure()
    revision = migrate.current_revision()
    if revision is None:
        from tocsin.errors import UserError

        raise UserError(f"{_safe_url()} has no schema yet: run `tocsin db upgrade`")
    with storage_db.session_scope() as session:
        counts = queries.table_counts(session)
    table = Table(title=f"{_safe_url()} (revision {revision})")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    Console().print(table)


def _safe_url() -> str:
    from sqlalchemy.engine import make_url

    return make_url(storage_db.database_url()).render_as_string(hide_password=True)
