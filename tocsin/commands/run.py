"""`tocsin run`: the scheduler service; `tocsin run --once` runs every job once and exits."""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from typing import Annotated

import typer

from storage import db as storage_db
from tocsin.config import get_settings

app = typer.Typer(help="Run the service.")


def _log_to_stderr() -> None:
    # The root logger stays at WARNING unless -v; the service says what it does at INFO.
    logger = logging.getLogger("tocsin.service")
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def run(
    once: Annotated[
        bool, typer.Option("--once", help="Run every job once, in order, then exit.")
    ] = False,
    force_report: Annotated[
        bool,
        typer.Option("--force-report", help="With --once: build and send the weekly report now."),
    ] = False,
    status: Annotated[
        bool, typer.Option("--status", help="Show each job's last run, holder and error; exit.")
    ] = False,
) -> None:
    """Collect, score, route, alert, report and purge on schedule until stopped (SIGTERM/Ctrl-C).

    Several hosts can run it against one PostgreSQL: a job runs on one of them at a time.
    """
    from tocsin.service import Service, ShutdownTimeout, describe, limit_allocator_arenas

    limit_allocator_arenas()
    settings = get_settings()  # a configuration error stops here, with exit status 1
    storage_db.configure(settings.resolved_database_url)
    if status:
        _show_status()
        return
    _log_to_stderr()
    service = Service(settings)
    if once:
        outcomes = service.run_once(force_report=force_report)
        for line in describe(outcomes):
            typer.echo(line)
        failed = [o.name for o in outcomes if o.status == "failed"]
        if failed:
            typer.echo(f"{len(failed)} job(s) failed (see the log); they run again next time.")
        return
    try:
        service.run_forever()
    except ShutdownTimeout as exc:
        logging.getLogger("tocsin.service").warning(
            "exiting with jobs still running after the grace period: %s", exc
        )
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        # A worker thread cannot be interrupted; its transaction rolls back when the process ends.
        os._exit(0)


def _show_status() -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from storage import queries
    from storage.types import utcnow

    with storage_db.session_scope() as session:
        locks = queries.job_locks(session)
    if not locks:
        typer.echo("No job has run yet.")
        return
    now = utcnow()
    table = Table(title="Service jobs")
    for column in ("job", "last finished", "running on", "last error"):
        table.add_column(column)

    def ago(moment: datetime | None) -> str:
        if moment is None:
            return "never"
        minutes = (now - moment).total_seconds() / 60
        return f"{minutes:.0f} min ago" if minutes < 120 else f"{minutes / 60:.1f} h ago"

    for name in sorted(locks):
        lock = locks[name]
        running = lock.holder if lock.locked_until and lock.locked_until > now else ""
        table.add_row(
            escape(name),
            ago(lock.last_finished_at),
            escape(running or ""),
            escape((lock.last_error or "")[:120]),
        )
    Console().print(table)
