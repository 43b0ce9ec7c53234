"""`tocsin report`: build a brand's weekly reputation report (HTML + PDF) and optionally send it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from storage import db as storage_db
from tocsin.config import get_settings
from tocsin.errors import UserError

app = typer.Typer(help="The weekly reputation report.")


@app.command()
def report(
    brand: Annotated[str, typer.Option("--brand", help="Brand name as in tocsin.toml.")],
    week: Annotated[
        str | None,
        typer.Option("--week", help="ISO week, e.g. 2026-W47 (default: the last complete week)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the files (default: data/reports).")
    ] = None,
    send: Annotated[
        bool,
        typer.Option(
            "--send", help="Email it to the report readers of tocsin.toml (PDF attached)."
        ),
    ] = False,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also write the PDF.")] = True,
) -> None:
    """Write the weekly report for one brand and week: an HTML page with charts and its PDF."""
    from reports.mail import ReportMailError
    from reports.period import last_complete_week
    from reports.weekly import build, reports_dir
    from reports.weekly import send as send_report
    from storage.types import utcnow

    settings = get_settings()
    storage_db.configure(settings.resolved_database_url)
    if send and not settings.reports.readers:
        raise UserError("--send: no readers; set `readers` in [reports] of tocsin.toml")
    chosen = week or str(last_complete_week(utcnow(), ZoneInfo(settings.timezone)))
    with storage_db.session_scope() as session:
        built = build(
            session,
            brand=brand,
            week=chosen,
            settings=settings,
            out_dir=out or reports_dir(settings),
            pdf=pdf,
        )
    f = built.figures
    typer.echo(f"{f.brand} {f.week}: {f.volume_total} mentions, net sentiment {f.net_sentiment}")
    typer.echo(f"HTML: {built.html_path}")
    if built.pdf_path:
        typer.echo(f"PDF:  {built.pdf_path}")
    if send:
        try:
            send_report(built, settings=settings)
        except ReportMailError as exc:
            raise UserError(f"report written but not sent: {exc}") from None
        typer.echo(f"Sent to {', '.join(settings.reports.readers)}")
