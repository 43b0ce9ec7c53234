"""`tocsin collect [SOURCE...]`: run the collectors now and show what each one brought in."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from collectors.crawl import CrawlSummary, run_crawls
from storage import db as storage_db
from tocsin.config import get_settings
from tocsin.errors import UserError

app = typer.Typer(help="Run the collectors now.")

_STATUS_STYLE = {"ok": "green", "partial": "yellow", "rate_limited": "yellow", "failed": "red"}


@app.command()
def collect(
    sources: Annotated[
        list[str] | None,
        typer.Argument(help="Source names from tocsin.toml (default: every enabled source)."),
    ] = None,
) -> None:
    """Sync the sources from tocsin.toml, crawl them now (one process each), print a summary."""
    settings = get_settings()
    if not settings.sources:
        raise UserError(
            "no [[sources]] in the settings: add one to tocsin.toml (see `tocsin init`)"
        )
    storage_db.configure(settings.resolved_database_url)
    console = Console()
    with console.status("Collecting...") as status:

        def show(name: str, index: int, total: int) -> None:
            status.update(f"Collecting {name} ({index + 1}/{total})...")

        try:
            summaries = run_crawls(sources or None, settings=settings, on_start=show)
        except LookupError as exc:
            raise UserError(str(exc)) from None
    console.print(summary_table(summaries))
    if any(s.status == "failed" for s in summaries):
        raise typer.Exit(1)


def summary_table(summaries: list[CrawlSummary]) -> Table:
    table = Table(title="Collection")
    table.add_column("source")
    table.add_column("kind")
    for column in ("new", "updated", "skipped", "errors"):
        table.add_column(column, justify="right")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    for s in summaries:
        style = _STATUS_STYLE.get(s.status, "dim")
        status = f"[{style}]{_escape(s.status)}[/]" + (
            f": {_escape(s.message)}" if s.message else ""
        )
        table.add_row(
            _escape(s.source),
            _escape(s.kind),
            str(s.new),
            str(s.updated),
            str(s.skipped),
            str(s.errors),
            status,
            f"{s.seconds:.1f}",
        )
    return table


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
