"""Sending a built report by email: SMTP settings from `[alerts.smtp]`, the password from
TOCSIN_SMTP_PASSWORD, the PDF attached (the HTML when no PDF could be made)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

from reports.figures import WeekFigures
from tocsin.config import Settings, get_secrets
from tocsin.errors import UserError


class ReportMailError(Exception):
    """The report could not be sent; it stays unsent and the next run tries again."""


def build_message(
    figures: WeekFigures, *, sender: str, readers: list[str], attachment: Path, link: str | None
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"{figures.brand}: reputation report {figures.week}"
    message["From"] = sender
    message["To"] = ", ".join(readers)
    net = "–" if figures.net_sentiment is None else f"{figures.net_sentiment:+.1f}"
    change = (
        "" if figures.net_sentiment_change is None else f" ({figures.net_sentiment_change:+g} pts)"
    )
    sla = "–" if figures.response.sla_met_pct is None else f"{figures.response.sla_met_pct:.1f}%"
    lines = [
        f"Weekly reputation report for {figures.brand}, week {figures.week}.",
        "",
        f"Mentions: {figures.volume_total} (previous week {figures.volume_previous})",
        f"Net sentiment: {net}{change}",
        f"Complaints: {figures.complaints}",
        f"SLA met: {sla}",
        f"Alerts sent: {figures.alerts_sent}",
        "",
        f"The full report is attached ({attachment.name}).",
    ]
    if link:
        lines.append(f"Past reports: {link}")
    message.set_content("\n".join(lines))
    subtype = "pdf" if attachment.suffix == ".pdf" else "html"
    maintype = "application" if subtype == "pdf" else "text"
    message.add_attachment(
        attachment.read_bytes(), maintype=maintype, subtype=subtype, filename=attachment.name
    )
    return message


def send_report_email(
    figures: WeekFigures, *, attachment: Path, settings: Settings, readers: list[str]
) -> None:
    if not readers:
        raise UserError("no readers: set `readers` in [reports] of tocsin.toml")
    smtp = settings.alerts.smtp
    password_secret = get_secrets().smtp_password
    password = password_secret.get_secret_value() if password_secret else None
    if smtp.username and not password:
        raise ReportMailError("SMTP user is set but TOCSIN_SMTP_PASSWORD is not")
    link = f"{settings.board.base_url.rstrip('/')}/overview"  # the board lists past reports there
    message = build_message(
        figures, sender=smtp.sender, readers=readers, attachment=attachment, link=link
    )
    where = f"SMTP {smtp.host}:{smtp.port}"
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as client:
            client.ehlo()
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if smtp.username and password:
                client.login(smtp.username, password)
            client.send_message(message, from_addr=smtp.sender, to_addrs=readers)
    except smtplib.SMTPAuthenticationError as exc:
        raise ReportMailError(f"{where}: login refused ({exc.smtp_code})") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise ReportMailError(f"{where}: {exc.__class__.__name__}: {exc}") from None
