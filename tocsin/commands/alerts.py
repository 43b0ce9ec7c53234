"""`tocsin alerts`: test the channels, look at the outbox, evaluate rules, send what is due."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from alerts.message import AlertMessage, Link
from alerts.notifiers import DeliveryError, send
from storage import db as storage_db
from storage import queries
from storage.types import utcnow
from tocsin.config import get_secrets, get_settings
from tocsin.errors import UserError

app = typer.Typer(help="Escalation alerts: channels, rules and the outbox.", no_args_is_help=True)
# Piped output (cron mails, `| grep`) keeps one alert per line instead of folding at 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _test_message(channel: str, recipients: list[str]) -> AlertMessage:
    settings = get_settings()
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")
    return AlertMessage(
        ref=f"tocsin-test-{channel}-{stamp}",
        kind="test",
        title=f"Tocsin test message on {channel}",
        what="If you can read this, Tocsin's alerts reach this channel. Nothing to do.",
        reasons=["sent by `tocsin alerts test`"],
        links=[Link("Open the board", settings.board.base_url)],
        severity="info",
        recipients=recipients,
    )


@app.command("test")
def test_channels(
    channel: Annotated[
        list[str] | None, typer.Option("--channel", "-c", help="Only this channel (repeatable).")
    ] = None,
    to: Annotated[
        list[str] | None, typer.Option("--to", help="Email recipients for the test (repeatable).")
    ] = None,
) -> None:
    """Send a test message on every configured channel and report what failed."""
    settings = get_settings()
    secrets = get_secrets()
    channels = settings.alerts.channels
    if channel:
        unknown = sorted(set(channel) - {c.name for c in channels})
        if unknown:
            raise UserError(f"no channel named {', '.join(unknown)} in [[alerts.channels]]")
        channels = [c for c in channels if c.name in channel]
    if not channels:
        raise UserError("no alert channel is configured ([[alerts.channels]] in tocsin.toml)")
    table = Table(title="Alert channels")
    for column in ("channel", "type", "result"):
        table.add_column(column)
    failures = 0
    for config in channels:
        recipients = list(to or [])
        if not recipients:
            for rule in settings.alerts.rules:
                if config.name in rule.channels:
                    recipients += [r for r in rule.recipients if r not in recipients]
        if config.type == "smtp" and not recipients and not config.recipients:
            failures += 1
            table.add_row(
                escape(config.name),
                config.type,
                "[red]FAILED[/red]: no recipients: pass --to ADDRESS or set them on a rule",
            )
            continue
        try:
            send(
                config,
                _test_message(config.name, recipients),
                settings=settings,
                secrets=secrets,
            )
        except DeliveryError as exc:
            failures += 1
            table.add_row(
                escape(config.name), config.type, f"[red]FAILED[/red]: {escape(str(exc))}"
            )
        else:
            table.add_row(escape(config.name), config.type, "[green]sent[/green]")
    console.print(table)
    if failures:
        raise UserError(f"{failures} of {len(channels)} channel(s) failed")


@app.command("list")
def list_outbox(
    status: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help="pending, sending, sent, failed, grouped."),
    ] = None,
    channel: Annotated[str | None, typer.Option("--channel", "-c")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 50,
) -> None:
    """Show the outbox, newest first."""
    storage_db.configure()
    with storage_db.session_scope() as session:
        rows = queries.outbox_alerts(session, statuses=status or (), channel=channel, limit=limit)
        counts = queries.outbox_counts(session)
    table = Table(
        title="Outbox: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "empty")
    )
    for column in (
        "id",
        "created",
        "kind",
        "rule",
        "channel",
        "status",
        "tries",
        "next try",
        "subject / last error",
    ):
        table.add_column(column, overflow="fold")
    for alert in rows:
        # Subjects quote public handles and errors quote servers: never read them as markup.
        detail = escape(alert.subject)
        if alert.last_error and alert.status != "sent":
            detail += f"\n[red]{escape(alert.last_error)}[/red]"
        table.add_row(
            str(alert.id),
            f"{alert.created_at:%Y-%m-%d %H:%M}",
            escape(alert.kind),
            escape(alert.rule),
            escape(alert.channel),
            alert.status,
            str(alert.attempts),
            f"{alert.next_attempt_at:%H:%M:%S}" if alert.next_attempt_at else "",
            detail,
            end_section=False,
        )
    console.print(table)


@app.command("evaluate")
def evaluate() -> None:
    """Run the alert rules once and write new alerts to the outbox (sends nothing)."""
    from alerts.engine import evaluate_rules

    settings = get_settings()
    storage_db.configure()
    with storage_db.session_scope() as session:
        added = evaluate_rules(session, settings=settings)
    typer.echo(f"{added} new alert(s) in the outbox.")


@app.command("send")
def send_due(
    evaluate_first: Annotated[
        bool, typer.Option("--evaluate", help="Run the rules first.")
    ] = False,
) -> None:
    """Deliver the alerts that are due (retries included); failures stay in the outbox."""
    from alerts.engine import evaluate_rules
    from alerts.outbox import deliver_pending

    settings = get_settings()
    storage_db.configure()
    if evaluate_first:
        with storage_db.session_scope() as session:
            evaluate_rules(session, settings=settings)
    with console.status("Sending alerts…"):
        report = deliver_pending(settings=settings)
    typer.echo(report.summary())
    for error in report.errors:
        typer.echo(f"  {error}", err=True)


@app.command("retry")
def retry(
    alert_id: Annotated[
        list[int] | None, typer.Argument(help="Alert ids (default: every failed alert).")
    ] = None,
) -> None:
    """Give alerts that used all their attempts a new round of tries."""
    storage_db.configure()
    with storage_db.session_scope() as session:
        count = queries.requeue_failed_alerts(session, now=utcnow(), ids=alert_id or ())
    typer.echo(f"{count} alert(s) queued again.")
