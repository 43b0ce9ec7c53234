"""Deliver one `AlertMessage` on one configured channel.

`send(channel, message, settings=..., secrets=...)` returns when the channel accepted the message
and raises `DeliveryError` (a message safe to store and log: no password, no webhook URL, which
usually embeds a key) when it did not.

Every message carries its stable `ref`: as the email Message-ID and `X-Tocsin-Alert` header, as
the webhooks' `Idempotency-Key` header and JSON `id`. A receiver that sees the same ref twice
(possible only if a process dies between the send and the write that marks it sent) can drop it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import mailbox
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx

from alerts.message import AlertMessage, plain_text
from alerts.render import email_html, mattermost_payload, slack_payload, teams_payload
from tocsin.config import AlertChannelConfig, Secrets, Settings

log = logging.getLogger(__name__)

USER_AGENT = "Tocsin-alerts/1"
DEFAULT_MAILBOX = "alerts.mbox"


class DeliveryError(Exception):
    """The channel did not take the message; the text is safe to log and store."""


def send(
    channel: AlertChannelConfig, message: AlertMessage, *, settings: Settings, secrets: Secrets
) -> None:
    senders: dict[str, Callable[[], None]] = {
        "smtp": lambda: send_email(channel, message, settings=settings, secrets=secrets),
        "mailbox": lambda: append_to_mailbox(channel, message, settings=settings),
        "slack": lambda: post_json(channel, slack_payload(message), message, secrets=secrets),
        "mattermost": lambda: post_json(
            channel, mattermost_payload(message), message, secrets=secrets
        ),
        "teams": lambda: post_json(channel, teams_payload(message), message, secrets=secrets),
        "webhook": lambda: post_json(channel, message.as_json(), message, secrets=secrets),
    }
    senders[channel.type]()


# ----------------------------------------------------------------------------- email


def _header_text(text: str, limit: int = 250) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def build_email(message: AlertMessage, *, sender: str, recipients: list[str]) -> EmailMessage:
    email = EmailMessage()
    email["Subject"] = _header_text(f"[Tocsin] {message.title}")
    email["From"] = sender
    email["To"] = ", ".join(recipients)
    email["Date"] = formatdate(localtime=False)
    domain = sender.rsplit("@", 1)[-1] if "@" in sender else "tocsin.local"
    email["Message-ID"] = f"<{message.ref}@{domain}>"
    email["X-Tocsin-Alert"] = message.ref
    if message.severity == "critical":
        email["X-Priority"] = "1"
    email.set_content(plain_text(message))
    email.add_alternative(email_html(message), subtype="html")
    return email


def email_recipients(channel: AlertChannelConfig, message: AlertMessage) -> list[str]:
    return list(dict.fromkeys(message.recipients or channel.recipients))


def _tls_context(settings: Settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.alerts.smtp.ca_file or None)


def send_email(
    channel: AlertChannelConfig, message: AlertMessage, *, settings: Settings, secrets: Secrets
) -> None:
    smtp = settings.alerts.smtp
    recipients = email_recipients(channel, message)
    if not recipients:
        raise DeliveryError(f"channel {channel.name!r}: no recipients (set them on the rule)")
    password = secrets.smtp_password.get_secret_value() if secrets.smtp_password else None
    if smtp.username and not password:
        raise DeliveryError("SMTP user is set but TOCSIN_SMTP_PASSWORD is not")
    email = build_email(message, sender=smtp.sender, recipients=recipients)
    where = f"SMTP {smtp.host}:{smtp.port}"
    try:
        client: smtplib.SMTP
        if smtp.ssl:
            client = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=_tls_context(settings)
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
        with client:
            client.ehlo()
            if smtp.starttls and not smtp.ssl:
                client.starttls(context=_tls_context(settings))
                client.ehlo()
            if smtp.username and password:
                client.login(smtp.username, password)
            refused = client.send_message(email, from_addr=smtp.sender, to_addrs=recipients)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(
            f"{where}: login refused for {smtp.username!r} ({exc.smtp_code})"
        ) from None
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        reply = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        raise DeliveryError(f"{where}: {exc.smtp_code} {_header_text(reply, 200)}") from None
    except smtplib.SMTPRecipientsRefused:
        raise DeliveryError(f"{where}: every recipient was refused") from None
    except (OSError, smtplib.SMTPException) as exc:
        detail = _header_text(str(exc), 200)
        raise DeliveryError(f"{where}: {exc.__class__.__name__}: {detail}") from None
    if refused:
        log.warning("%s refused %d recipient(s) of %s", where, len(refused), message.ref)


# ----------------------------------------------------------------------------- mailbox


def mailbox_path(channel: AlertChannelConfig, settings: Settings) -> tuple[Path, bool]:
    """Where a mailbox channel writes, and whether it is a Maildir (a path ending in "/")."""
    raw = channel.path or DEFAULT_MAILBOX
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = settings.data_dir / path
    return path, raw.endswith("/") or path.is_dir()


def append_to_mailbox(
    channel: AlertChannelConfig, message: AlertMessage, *, settings: Settings
) -> None:
    recipients = email_recipients(channel, message) or ["team@localhost"]
    email = build_email(message, sender=settings.alerts.smtp.sender, recipients=recipients)
    path, is_maildir = mailbox_path(channel, settings)
    try:
        if is_maildir:
            path.parent.mkdir(parents=True, exist_ok=True)
            mailbox.Maildir(path, create=True).add(email)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        box = mailbox.mbox(path, create=True)
        box.lock()
        try:
            box.add(email)
            box.flush()
        finally:
            box.unlock()
            box.close()
    except (OSError, mailbox.Error) as exc:
        raise DeliveryError(f"mailbox {path}: {exc.__class__.__name__}: {exc}") from None


# ----------------------------------------------------------------------------- webhooks


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _http() -> httpx.Client:
    """One client for the process: building one per request costs ~150 ms (TLS set-up)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(headers={"User-Agent": USER_AGENT}, follow_redirects=False)
        return _client


def webhook_url(channel: AlertChannelConfig, secrets: Secrets) -> str:
    if channel.url_env:
        url = secrets.env(channel.url_env)
        if not url:
            raise DeliveryError(f"channel {channel.name!r}: {channel.url_env} is not set")
        return url
    if channel.url:
        return channel.url
    raise DeliveryError(f"channel {channel.name!r} has no url or url_env")


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over `timestamp + "." + body`, as `sha256=<hex>` (see alerts/README.md)."""
    digest = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _signed_headers(channel: AlertChannelConfig, body: bytes, secrets: Secrets) -> dict[str, str]:
    if channel.type != "webhook" or not channel.secret_env:
        return {}
    key = secrets.env(channel.secret_env)
    if not key:
        raise DeliveryError(f"channel {channel.name!r}: {channel.secret_env} is not set")
    timestamp = str(int(time.time()))
    return {
        "X-Tocsin-Timestamp": timestamp,
        channel.signature_header: signature(key.encode("utf-8"), timestamp, body),
    }


def post_json(
    channel: AlertChannelConfig,
    payload: dict[str, Any],
    message: AlertMessage,
    *,
    secrets: Secrets,
) -> None:
    url = webhook_url(channel, secrets)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": message.ref,
        "X-Tocsin-Alert": message.ref,
        **_signed_headers(channel, body, secrets),
    }
    where = f"{channel.type} channel {channel.name!r}"
    try:
        response = _http().post(url, content=body, headers=headers, timeout=channel.timeout_seconds)
    except httpx.HTTPError as exc:
        # httpx's messages can quote the URL, and the URL may hold the webhook's key.
        raise DeliveryError(f"{where}: {exc.__class__.__name__}") from None
    if response.status_code >= 300:
        excerpt = " ".join(response.text[:200].split())
        raise DeliveryError(f"{where}: HTTP {response.status_code} {excerpt}".rstrip())
