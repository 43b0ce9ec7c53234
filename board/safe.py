"""Showing text from the public without letting it act as Markdown or HTML.

Post text, author names and bios are shown with `st.text` (never interpreted), or escaped with
`md_escape` when they sit inside a Markdown sentence. Nothing public goes through
`unsafe_allow_html`.
"""

from __future__ import annotations

import re
import string
from urllib.parse import urlparse

# CommonMark lets any ASCII punctuation be backslash-escaped; that also covers HTML ("\<script>"),
# Streamlit's own directives (":red[...]", ":material/...:") and LaTeX ("$").
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def md_escape(text: str | None) -> str:
    """Text that st.markdown shows exactly as written, on one line."""
    if not text:
        return ""
    flat = " ".join(_CONTROL.sub("", text).split())
    return _PUNCTUATION.sub(r"\\\1", flat)


def plain(text: str | None, *, limit: int | None = None) -> str:
    """Text for st.text / tables: control characters removed, optionally shortened."""
    value = _CONTROL.sub("", text or "")
    if limit is not None and len(value) > limit:
        return value[: limit - 1].rstrip() + "…"
    return value


def one_line(text: str | None, *, limit: int = 160) -> str:
    return plain(" ".join((text or "").split()), limit=limit)


def safe_url(url: str | None) -> str | None:
    """The URL when it is a plain http(s) link, else None (no javascript: or data: links)."""
    if not url:
        return None
    parsed = urlparse(url.strip())
    if parsed.scheme in ("http", "https") and parsed.netloc:
        return url.strip()
    return None
