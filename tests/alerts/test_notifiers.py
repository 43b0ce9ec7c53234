"""Each channel against a real local receiver: what arrives, escaped for the channel."""

from __future__ import annotations

import hashlib
import hmac
import mailbox
import ssl
from pathlib import Path

import pytest

from alerts.message import AlertMessage, Link, QuotedPost
from alerts.notifiers import DeliveryError, send
from tests.alerts.servers import body_of, free_port, http_receiver, self_signed_cert, smtp_server
from tocsin.config import AlertChannelConfig, Secrets, Settings, SmtpConfig

CASE_URL = "http://board.example.org/case?id=42"
HOSTILE = "<!channel> @channel *free* <script>alert(1)</script> [click](javascript:alert(1)) & co"


def _message(**extra: object) -> AlertMessage:
    values: dict[str, object] = {
        "ref": "tocsin-alert-7",
        "kind": "urgency",
        "rule": "critical",
        "title": "Critical post: @jane_doe on mastodon",
        "what": "A post was scored critical urgency. Case #42 is new.",
        "reasons": ["author has 250k followers", "mentions a lawyer"],
        "facts": [("Urgency", "critical"), ("Buzz risk", "82/100")],
        "links": [Link("Open case #42 on the board", CASE_URL)],
        "post": QuotedPost(
            text=HOSTILE,
            author="@jane_doe",
            platform="mastodon",
            url="https://social.example.org/@jane/1",
        ),
        "severity": "critical",
        "recipients": ["lea@example.org"],
    }
    values.update(extra)
    return AlertMessage(**values)  # type: ignore[arg-type]


def _with_smtp(settings: Settings, **smtp: object) -> Settings:
    alerts = settings.alerts.model_copy(update={"smtp": SmtpConfig(**smtp)})  # type: ignore[arg-type]
    return settings.model_copy(update={"alerts": alerts})


def _secrets(monkeypatch: pytest.MonkeyPatch, **env: str) -> Secrets:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Secrets()


# ----------------------------------------------------------------------------- email


def test_email_arrives_with_reasons_link_and_escaped_html(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server() as (inbox, port):
        configured = _with_smtp(settings, host="127.0.0.1", port=port, sender="tocsin@acme.test")
        channel = AlertChannelConfig(name="leads", type="smtp")
        send(channel, _message(), settings=configured, secrets=_secrets(monkeypatch))
    assert len(inbox.messages) == 1
    email = inbox.messages[0]
    assert inbox.envelopes[0] == ("tocsin@acme.test", ["lea@example.org"])
    assert email["Subject"] == "[Tocsin] Critical post: @jane_doe on mastodon"
    assert email["Message-ID"] == "<tocsin-alert-7@acme.test>"
    text = body_of(email, "plain")
    html = body_of(email, "html")
    for part in (text, html):
        assert "author has 250k followers" in part and "mentions a lawyer" in part
        assert CASE_URL in part.replace("&amp;", "&")
    assert f'href="{CASE_URL}"' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html
    assert HOSTILE in text  # the plain-text part shows the post as written


def test_email_over_starttls_with_login(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert, key = self_signed_cert(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    with smtp_server(tls_context=server_tls, credentials=("tocsin", "s3cret!")) as (inbox, port):
        configured = _with_smtp(
            settings,
            host="127.0.0.1",
            port=port,
            starttls=True,
            username="tocsin",
            ca_file=str(cert),
        )
        channel = AlertChannelConfig(name="leads", type="smtp")
        secrets = _secrets(monkeypatch, TOCSIN_SMTP_PASSWORD="s3cret!")
        send(channel, _message(), settings=configured, secrets=secrets)
        assert len(inbox.messages) == 1

        wrong = _secrets(monkeypatch, TOCSIN_SMTP_PASSWORD="not-the-password")
        with pytest.raises(DeliveryError) as refused:
            send(channel, _message(), settings=configured, secrets=wrong)
        assert "login refused" in str(refused.value)
        assert "not-the-password" not in str(refused.value)

        plain = _with_smtp(settings, host="127.0.0.1", port=port, username="tocsin")
        with pytest.raises(DeliveryError):  # the server insists on STARTTLS before login
            send(channel, _message(), settings=plain, secrets=secrets)
    assert len(inbox.messages) == 1


def test_starttls_refuses_an_untrusted_certificate(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert, key = self_signed_cert(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    with smtp_server(tls_context=server_tls) as (inbox, port):
        configured = _with_smtp(settings, host="127.0.0.1", port=port, starttls=True)
        channel = AlertChannelConfig(name="leads", type="smtp")
        with pytest.raises(DeliveryError, match=r"SSL|certificate"):
            send(channel, _message(), settings=configured, secrets=_secrets(monkeypatch))
    assert inbox.messages == []


def test_email_without_password_or_recipients_is_a_clear_error(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = _with_smtp(settings, host="127.0.0.1", port=free_port(), username="tocsin")
    channel = AlertChannelConfig(name="leads", type="smtp")
    with pytest.raises(DeliveryError, match="TOCSIN_SMTP_PASSWORD is not"):
        send(channel, _message(), settings=configured, secrets=_secrets(monkeypatch))
    with pytest.raises(DeliveryError, match="no recipients"):
        send(channel, _message(recipients=[]), settings=configured, secrets=Secrets())


def test_smtp_down_is_a_delivery_error(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    configured = _with_smtp(settings, host="127.0.0.1", port=free_port())
    channel = AlertChannelConfig(name="leads", type="smtp")
    with pytest.raises(DeliveryError, match="ConnectionRefused"):
        send(channel, _message(), settings=configured, secrets=_secrets(monkeypatch))


# ----------------------------------------------------------------------------- webhooks


def test_slack_payload_escapes_public_text(settings: Settings) -> None:
    with http_receiver() as receiver:
        channel = AlertChannelConfig(name="care", type="slack", url=receiver.url + "/hooks/slack")
        send(channel, _message(), settings=settings, secrets=Secrets())
    (request,) = receiver.requests
    assert request.path == "/hooks/slack" and request.headers["idempotency-key"] == "tocsin-alert-7"
    body = request.json()
    assert body["text"] == "Critical post: @jane_doe on mastodon"
    blocks = body["blocks"]
    assert blocks[0]["type"] == "header"
    mrkdwn = [b["text"]["text"] for b in blocks if b.get("text", {}).get("type") == "mrkdwn"]
    plain = [b["text"]["text"] for b in blocks if b.get("text", {}).get("type") == "plain_text"]
    assert HOSTILE in plain  # the post goes as plain_text: Slack shows it, never formats it
    assert any("• author has 250k followers" in t for t in mrkdwn)
    assert any(f"<{CASE_URL}|Open case #42 on the board>" in t for t in mrkdwn)
    assert not any("<!channel>" in t for t in mrkdwn)


def test_slack_mrkdwn_escaping_of_reasons(settings: Settings) -> None:
    with http_receiver() as receiver:
        channel = AlertChannelConfig(name="care", type="slack", url=receiver.url)
        send(
            channel,
            _message(reasons=["quotes <!here> & <https://evil.example|bank>"]),
            settings=settings,
            secrets=Secrets(),
        )
    text = str(receiver.requests[0].json())
    assert "&lt;!here&gt; &amp; &lt;https://evil.example|bank&gt;" in text
    assert "<!here>" not in text


def test_mattermost_payload_is_inert_markdown(settings: Settings) -> None:
    with http_receiver() as receiver:
        channel = AlertChannelConfig(name="mm", type="mattermost", url=receiver.url)
        send(channel, _message(), settings=settings, secrets=Secrets())
    body = receiver.requests[0].json()
    text = body["text"]
    assert body["username"] == "Tocsin"
    assert f"[Open case \\#42 on the board]({CASE_URL})" in text
    assert "@channel" not in text and "@\u2060channel" in text  # no @channel notification
    assert "\\*free\\*" in text and "\\<script\\>" in text
    assert "](javascript" not in text


def test_teams_payload_is_an_adaptive_card(settings: Settings) -> None:
    with http_receiver() as receiver:
        channel = AlertChannelConfig(name="teams", type="teams", url=receiver.url)
        send(channel, _message(), settings=settings, secrets=Secrets())
    body = receiver.requests[0].json()
    assert body["type"] == "message"
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open case #42 on the board", "url": CASE_URL}
    ]
    texts = " ".join(b.get("text", "") for b in card["body"])
    assert "author has 250k followers" in texts
    assert "\\*free\\*" in texts and "\\[click\\]\\(javascript" in texts
    facts = next(b for b in card["body"] if b["type"] == "FactSet")["facts"]
    assert {"title": "Urgency", "value": "critical"} in facts


def test_generic_webhook_is_signed_with_hmac(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = _secrets(monkeypatch, HOOK_KEY="k3y-for-hmac", HOOK_URL="")
    with http_receiver() as receiver:
        monkeypatch.setenv("HOOK_URL", receiver.url + "/in?token=abc")
        channel = AlertChannelConfig(
            name="ops", type="webhook", url_env="HOOK_URL", secret_env="HOOK_KEY"
        )
        send(channel, _message(), settings=settings, secrets=secrets)
    (request,) = receiver.requests
    assert request.path == "/in?token=abc"
    timestamp = request.headers["x-tocsin-timestamp"]
    expected = hmac.new(
        b"k3y-for-hmac", timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(request.headers["x-tocsin-signature"], f"sha256={expected}")
    body = request.json()
    assert body["id"] == "tocsin-alert-7" and body["kind"] == "urgency"
    assert body["reasons"] == ["author has 250k followers", "mentions a lawyer"]
    assert body["links"] == [{"label": "Open case #42 on the board", "url": CASE_URL}]
    assert body["post"]["text"] == HOSTILE  # raw JSON: the receiver escapes for its display
    assert body["facts"] == {"Urgency": "critical", "Buzz risk": "82/100"}


def test_webhook_errors_never_show_the_url(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_url = f"http://127.0.0.1:{free_port()}/hooks/T000/B000/SECRETKEY"
    secrets = _secrets(monkeypatch, SLACK_URL=secret_url)
    channel = AlertChannelConfig(name="care", type="slack", url_env="SLACK_URL")
    with pytest.raises(DeliveryError) as down:
        send(channel, _message(), settings=settings, secrets=secrets)
    assert "SECRETKEY" not in str(down.value)
    with http_receiver() as receiver:
        receiver.status = 500
        monkeypatch.setenv("SLACK_URL", receiver.url + "/SECRETKEY")
        with pytest.raises(DeliveryError, match="HTTP 500") as refused:
            send(channel, _message(), settings=settings, secrets=Secrets())
    assert "SECRETKEY" not in str(refused.value)
    monkeypatch.delenv("SLACK_URL")
    with pytest.raises(DeliveryError, match="SLACK_URL is not set"):
        send(channel, _message(), settings=settings, secrets=Secrets())


# ----------------------------------------------------------------------------- mailbox


def test_mailbox_appends_to_an_mbox_file_and_a_maildir(settings: Settings, tmp_path: Path) -> None:
    mbox_channel = AlertChannelConfig(name="box", type="mailbox", path="alerts.mbox")
    send(mbox_channel, _message(), settings=settings, secrets=Secrets())
    send(mbox_channel, _message(ref="tocsin-alert-8"), settings=settings, secrets=Secrets())
    box = mailbox.mbox(settings.data_dir / "alerts.mbox")
    assert [m["X-Tocsin-Alert"] for m in box] == ["tocsin-alert-7", "tocsin-alert-8"]

    maildir = tmp_path / "maildir"
    dir_channel = AlertChannelConfig(name="md", type="mailbox", path=f"{maildir}/")
    send(dir_channel, _message(), settings=settings, secrets=Secrets())
    (only,) = list(mailbox.Maildir(maildir))
    assert only["Subject"] == "[Tocsin] Critical post: @jane_doe on mastodon"


def test_digest_message_lists_every_alert(settings: Settings) -> None:
    items = [
        _message(
            ref=f"tocsin-alert-{i}",
            title=f"Case {i}",
            links=[Link(f"Case #{i}", f"http://board.example.org/case?id={i}")],
        )
        for i in range(1, 8)
    ]
    digest = AlertMessage(
        ref="tocsin-alert-99", kind="digest", title="7 Tocsin alerts", what="7 alerts", items=items
    )
    with http_receiver() as receiver:
        channel = AlertChannelConfig(name="care", type="slack", url=receiver.url)
        send(channel, digest, settings=settings, secrets=Secrets())
    text = str(receiver.requests[0].json())
    for i in range(1, 8):
        assert f"http://board.example.org/case?id={i}|Case #{i}" in text
