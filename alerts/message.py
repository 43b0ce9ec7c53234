"""What an alert says, independent of the channel that carries it.

An alert's content is stored as plain data in `Alert.payload` when the rule fires and turned
into an `AlertMessage` at send time, so that a digest can be built from several of them. Every
string in it may hold text from the public: renderers escape all of it for their channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from storage.models import Alert

DIGEST_KIND = "digest"


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class QuotedPost:
    text: str
    author: str = ""
    platform: str = ""
    url: str | None = None
    created_at: str | None = None  # ISO 8601


@dataclass(slots=True)
class AlertMessage:
    """One message to send: an alert, or a digest of several (`items`)."""

    ref: str  # stable identifier, also the idempotency key receivers can drop repeats on
    kind: str
    title: str
    what: str
    reasons: list[str] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    post: QuotedPost | None = None
    severity: str = "warning"  # critical | warning | info
    brand: str | None = None
    rule: str = ""
    created_at: str | None = None
    items: list[AlertMessage] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)

    @property
    def is_digest(self) -> bool:
        return self.kind == DIGEST_KIND

    def as_json(self) -> dict[str, Any]:
        """The generic webhook's body (raw strings: the receiver escapes for its own display)."""
        data: dict[str, Any] = {
            "id": self.ref,
            "kind": self.kind,
            "rule": self.rule,
            "severity": self.severity,
            "brand": self.brand,
            "title": self.title,
            "what": self.what,
            "reasons": list(self.reasons),
            "facts": {name: value for name, value in self.facts},
            "links": [{"label": link.label, "url": link.url} for link in self.links],
            "post": None,
            "created_at": self.created_at,
        }
        if self.post is not None:
            data["post"] = {
                "text": self.post.text,
                "author": self.post.author,
                "platform": self.post.platform,
                "url": self.post.url,
                "created_at": self.post.created_at,
            }
        if self.is_digest:
            data["items"] = [item.as_json() for item in self.items]
        return data


def safe_http_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) link, else None (never link `javascript:` and the like)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if any(ch.isspace() or ord(ch) < 32 for ch in url.strip()):
        return None
    return url.strip()


def build_payload(
    *,
    title: str,
    what: str,
    reasons: list[str] | None = None,
    facts: list[tuple[str, str]] | None = None,
    links: list[Link] | None = None,
    post: QuotedPost | None = None,
    severity: str = "warning",
    brand: str | None = None,
) -> dict[str, Any]:
    """The JSON stored in `Alert.payload`."""
    return {
        "title": title,
        "what": what,
        "reasons": list(reasons or []),
        "facts": [[name, value] for name, value in facts or []],
        "links": [{"label": link.label, "url": link.url} for link in links or []],
        "post": None
        if post is None
        else {
            "text": post.text,
            "author": post.author,
            "platform": post.platform,
            "url": post.url,
            "created_at": post.created_at,
        },
        "severity": severity,
        "brand": brand,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def message_from_alert(alert: Alert) -> AlertMessage:
    """The message an outbox row carries (not digests: see `digest_message`)."""
    payload = alert.payload or {}
    post_data = payload.get("post")
    post = None
    if isinstance(post_data, dict):
        post = QuotedPost(
            text=str(post_data.get("text") or ""),
            author=str(post_data.get("author") or ""),
            platform=str(post_data.get("platform") or ""),
            url=post_data.get("url"),
            created_at=post_data.get("created_at"),
        )
    return AlertMessage(
        ref=f"tocsin-alert-{alert.id}",
        kind=alert.kind,
        rule=alert.rule,
        title=str(payload.get("title") or alert.subject or alert.kind),
        what=str(payload.get("what") or alert.body or ""),
        reasons=[str(r) for r in payload.get("reasons") or []],
        facts=[(str(name), str(value)) for name, value in payload.get("facts") or []],
        links=[Link(str(x["label"]), str(x["url"])) for x in payload.get("links") or []],
        post=post,
        severity=str(payload.get("severity") or "warning"),
        brand=payload.get("brand"),
        created_at=_iso(alert.created_at),
        recipients=list(alert.recipients or []),
    )


def digest_message(digest: Alert, members: list[Alert]) -> AlertMessage:
    """One message that lists several alerts that piled up on a channel."""
    items = [message_from_alert(member) for member in members]
    severity = "critical" if any(i.severity == "critical" for i in items) else "warning"
    recipients = sorted({r for member in members for r in member.recipients or []})
    kinds = sorted({i.kind for i in items})
    return AlertMessage(
        ref=f"tocsin-alert-{digest.id}",
        kind=DIGEST_KIND,
        rule="",
        title=digest.subject or f"{len(items)} Tocsin alerts",
        what=(
            f"{len(items)} alerts ({', '.join(kinds)}) arrived close together on this channel, "
            "so they are grouped into this one message."
        ),
        severity=severity,
        created_at=_iso(digest.created_at),
        items=items,
        recipients=recipients,
    )


def plain_text(message: AlertMessage) -> str:
    """The message as plain text (email text part, mailbox, `tocsin alerts list`)."""
    lines = [message.title, "", message.what]
    if message.facts:
        lines.append("")
        lines += [f"{name}: {value}" for name, value in message.facts]
    if message.reasons:
        lines += ["", "Why:"] + [f"  - {reason}" for reason in message.reasons]
    if message.post is not None:
        post = message.post
        lines += ["", f"Post by {post.author or 'unknown'} on {post.platform or 'unknown'}:"]
        lines += [f"  > {line}" for line in post.text.splitlines() or [""]]
        if safe_http_url(post.url):
            lines.append(f"  {post.url}")
    if message.links:
        lines.append("")
        lines += [f"{link.label}: {link.url}" for link in message.links]
    for index, item in enumerate(message.items, 1):
        lines += ["", f"--- {index}. " + item.title, item.what]
        if item.reasons:
            lines.append("Why: " + "; ".join(item.reasons))
        lines += [f"{link.label}: {link.url}" for link in item.links]
    return "\n".join(lines).strip() + "\n"
