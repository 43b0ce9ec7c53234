"""Channel formats: HTML email, Slack Block Kit, Mattermost markdown, Teams Adaptive Card.

Everything in an `AlertMessage` may contain text from the public (a handle, a post), so every
string is escaped for the channel; nothing is trusted because it looks like ours.
- HTML: `html.escape`; only http(s) URLs become links.
- Slack: `&`, `<`, `>` escaped in mrkdwn (this is what turns `<!channel>` or `<url|label>` into
  inert text); the quoted post goes in a `plain_text` object, which Slack never formats.
- Mattermost and Teams (Markdown): Markdown punctuation is backslash-escaped and `@` is followed
  by a zero-width joiner, so `@channel`/`@all` in a post never notifies anyone.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote

from alerts.message import AlertMessage, Link, safe_http_url

SLACK_TEXT_LIMIT = 2900  # Slack refuses section texts over 3000 characters
SLACK_MAX_ITEMS = 20  # Slack refuses messages over 50 blocks
MARKDOWN_LIMIT = 12000
SEVERITY_COLOURS = {"critical": "#C62828", "warning": "#EF6C00", "info": "#1565C0"}

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~=:])")
# Adaptive Cards only know bold, italic, lists and links: escape just what starts those.
_CARD_SPECIAL = re.compile(r"([\\*_\[\]()`~])")
_CARD_LIST_START = re.compile(r"^(\s*)([-+]|\d+\.)(\s)", re.MULTILINE)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ----------------------------------------------------------------------------- HTML email


def _html_link(link: Link) -> str:
    url = safe_http_url(link.url)
    label = html.escape(link.label)
    return f'<a href="{html.escape(url, quote=True)}">{label}</a>' if url else label


def _html_body(message: AlertMessage) -> list[str]:
    parts = [f"<p>{html.escape(message.what)}</p>"]
    if message.facts:
        rows = "".join(
            f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
            for name, value in message.facts
        )
        parts.append(f"<table>{rows}</table>")
    if message.reasons:
        items = "".join(f"<li>{html.escape(reason)}</li>" for reason in message.reasons)
        parts.append(f"<p><strong>Why</strong></p><ul>{items}</ul>")
    if message.post is not None:
        post = message.post
        who = html.escape(f"{post.author or 'unknown'} on {post.platform or 'unknown'}")
        text = html.escape(post.text).replace("\n", "<br>")
        parts.append(f"<p>Post by {who}:</p><blockquote>{text}</blockquote>")
        if safe_http_url(post.url):
            parts.append(f"<p>{_html_link(Link('Original post', post.url or ''))}</p>")
    if message.links:
        parts.append("<p>" + " · ".join(_html_link(link) for link in message.links) + "</p>")
    return parts


def email_html(message: AlertMessage) -> str:
    colour = SEVERITY_COLOURS.get(message.severity, SEVERITY_COLOURS["warning"])
    parts = [
        "<!doctype html><html><body style='font-family:sans-serif'>",
        f"<h2 style='color:{colour}'>{html.escape(message.title)}</h2>",
        *_html_body(message),
    ]
    for index, item in enumerate(message.items, 1):
        parts.append(f"<hr><h3>{index}. {html.escape(item.title)}</h3>")
        parts += _html_body(item)
    parts.append("<p style='color:#777'>Sent by Tocsin.</p></body></html>")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- Slack


def slack_escape(text: str) -> str:
    """Slack mrkdwn's control characters (the three Slack documents) as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(link: Link) -> str:
    url = safe_http_url(link.url)
    if not url:
        return slack_escape(link.label)
    # A `|` or `>` in the URL would end Slack's <url|label> syntax early.
    safe_url = quote(url, safe=":/?#[]@!$&'()*+,;=%-._~")
    return f"<{safe_url}|{slack_escape(link.label).replace('|', '¦')}>"


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": _cut(text, SLACK_TEXT_LIMIT) or " ", "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _cut(text, SLACK_TEXT_LIMIT) or " "}


def _slack_blocks(message: AlertMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _plain(message.what)}]
    if message.facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    _mrkdwn(f"*{slack_escape(name)}*\n{slack_escape(value)}")
                    for name, value in message.facts[:10]
                ],
            }
        )
    if message.reasons:
        reasons = "\n".join(f"• {slack_escape(r)}" for r in message.reasons)
        blocks.append({"type": "section", "text": _mrkdwn(f"*Why*\n{reasons}")})
    if message.post is not None:
        post = message.post
        who = slack_escape(f"{post.author or 'unknown'} on {post.platform or 'unknown'}")
        if safe_http_url(post.url):
            who += " · " + _slack_link(Link("original post", post.url or ""))
        blocks.append({"type": "context", "elements": [_mrkdwn(f"Post by {who}")]})
        blocks.append({"type": "section", "text": _plain(post.text)})
    if message.links:
        links = " · ".join(_slack_link(link) for link in message.links)
        blocks.append({"type": "section", "text": _mrkdwn(links)})
    return blocks


def slack_payload(message: AlertMessage) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(_cut(message.title, 150))},
    ]
    blocks += _slack_blocks(message)
    for index, item in enumerate(message.items[:SLACK_MAX_ITEMS], 1):
        links = " · ".join(_slack_link(link) for link in item.links)
        reasons = "; ".join(item.reasons)
        text = f"*{index}. {slack_escape(item.title)}*"
        if reasons:
            text += f"\n{slack_escape(reasons)}"
        if links:
            text += f"\n{links}"
        blocks.append({"type": "section", "text": _mrkdwn(text)})
    if len(message.items) > SLACK_MAX_ITEMS:
        more = len(message.items) - SLACK_MAX_ITEMS
        blocks.append({"type": "context", "elements": [_mrkdwn(f"… and {more} more")]})
    return {"text": slack_escape(message.title), "blocks": blocks}


# ----------------------------------------------------------------------------- Markdown


def markdown_escape(text: str) -> str:
    """Inert Markdown: punctuation backslash-escaped, mentions broken, no raw HTML."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return escaped.replace("@", "@\u2060").replace("\r", "")


def _md_link(link: Link) -> str:
    url = safe_http_url(link.url)
    if not url:
        return markdown_escape(link.label)
    return f"[{markdown_escape(link.label)}]({quote(url, safe=':/?#[]@!$&*+,;=%-._~')})"


def _markdown_body(message: AlertMessage) -> list[str]:
    lines = [markdown_escape(message.what)]
    if message.facts:
        lines.append("")
        lines += [f"**{markdown_escape(n)}:** {markdown_escape(v)}  " for n, v in message.facts]
    if message.reasons:
        lines += ["", "**Why**"] + [f"- {markdown_escape(r)}" for r in message.reasons]
    if message.post is not None:
        post = message.post
        who = markdown_escape(f"{post.author or 'unknown'} on {post.platform or 'unknown'}")
        lines += ["", f"Post by {who}:"]
        lines += [f"> {markdown_escape(line)}" for line in post.text.splitlines() or [""]]
        if safe_http_url(post.url):
            lines.append(_md_link(Link("Original post", post.url or "")))
    if message.links:
        lines += ["", " · ".join(_md_link(link) for link in message.links)]
    return lines


def markdown_text(message: AlertMessage) -> str:
    lines = [f"#### {markdown_escape(message.title)}", *_markdown_body(message)]
    for index, item in enumerate(message.items, 1):
        lines += ["", f"**{index}. {markdown_escape(item.title)}**"]
        if item.reasons:
            lines.append(markdown_escape("; ".join(item.reasons)))
        lines += [" · ".join(_md_link(link) for link in item.links)]
    return _cut("\n".join(lines), MARKDOWN_LIMIT)


def mattermost_payload(message: AlertMessage) -> dict[str, Any]:
    return {"username": "Tocsin", "text": markdown_text(message)}


# ----------------------------------------------------------------------------- Teams


def card_escape(text: str) -> str:
    """Inert Adaptive Card text: its few Markdown marks escaped, mentions broken."""
    escaped = _CARD_SPECIAL.sub(r"\\\1", text)
    escaped = _CARD_LIST_START.sub(lambda m: m.group(1) + "\\" + m.group(2) + m.group(3), escaped)
    return escaped.replace("@", "@\u2060").replace("\r", "")


def _card_link(link: Link) -> str:
    url = safe_http_url(link.url)
    if not url:
        return card_escape(link.label)
    return f"[{card_escape(link.label)}]({quote(url, safe=':/?#@!$&*+,;=%-._~')})"


def _text_block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _card_body(message: AlertMessage) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = [_text_block(card_escape(message.what))]
    if message.facts:
        body.append(
            {
                "type": "FactSet",
                "facts": [
                    {"title": card_escape(n), "value": card_escape(v)} for n, v in message.facts
                ],
            }
        )
    if message.reasons:
        body.append(_text_block("**Why**"))
        body.append(_text_block("\n".join(f"- {card_escape(r)}" for r in message.reasons)))
    if message.post is not None:
        post = message.post
        who = card_escape(f"{post.author or 'unknown'} on {post.platform or 'unknown'}")
        body.append(_text_block(f"Post by {who}:", isSubtle=True))
        body.append(_text_block(card_escape(_cut(post.text, 3000)), fontType="Monospace"))
    return body


def teams_payload(message: AlertMessage) -> dict[str, Any]:
    """A Teams Workflows ("When a Teams webhook request is received") Adaptive Card message."""
    colour = "Attention" if message.severity == "critical" else "Warning"
    body = [_text_block(card_escape(message.title), weight="Bolder", size="Medium", color=colour)]
    body += _card_body(message)
    for index, item in enumerate(message.items, 1):
        body.append(_text_block(f"**{index}. {card_escape(item.title)}**", separator=True))
        if item.reasons:
            body.append(_text_block(card_escape("; ".join(item.reasons))))
        if item.links:
            body.append(_text_block(" · ".join(_card_link(link) for link in item.links)))
    actions = [
        {"type": "Action.OpenUrl", "title": _cut(link.label, 60), "url": url}
        for link in message.links
        if (url := safe_http_url(link.url))
    ]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": actions,
    }
    return {
        "type": "message",
        "summary": _cut(message.title, 200),
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }
