"""The report as HTML (Jinja2, autoescaped: public text is never markup) and as PDF (WeasyPrint
renders the same HTML, charts included, with no browser and no network)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from reports import charts
from reports.figures import SENTIMENTS, WeekFigures
from tocsin.errors import UserError

TEMPLATES = Path(__file__).with_name("templates")

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _safe_url(url: str | None) -> str:
    """Only web links become links (no javascript: or data: from a post's URL field)."""
    if not url:
        return ""
    return url if urlsplit(url).scheme in ("http", "https") else ""


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}"


def _delta(value: float | None, unit: str) -> str:
    return "no comparison" if value is None else f"{value:+g}{unit}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


def _minutes(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 90:
        return f"{value:.0f} min"
    return f"{value / 60:.1f} h"


def render_html(figures: WeekFigures) -> str:
    zone = ZoneInfo(figures.timezone)

    def local(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%a %d %b %H:%M")

    def local_iso(text: str | None) -> str:
        return local(datetime.fromisoformat(text)) if text else "–"

    first, last = date.fromisoformat(figures.days[0]), date.fromisoformat(figures.days[-1])
    context: dict[str, Any] = {
        "f": figures,
        "charts": {
            "volume": charts.volume_chart(figures),
            "sentiment": charts.sentiment_chart(figures),
            "agents": charts.agents_chart(figures),
        },
        "sentiments": SENTIMENTS,
        "day_labels": [date.fromisoformat(d).strftime("%a %d") for d in figures.days],
        "period": f"{first:%d %b} – {last:%d %b %Y}",
        "built": figures.built_at.astimezone(zone).strftime("%d %b %Y %H:%M"),
        "local": local,
        "local_iso": local_iso,
        "safe_url": _safe_url,
        "signed": _signed,
        "delta": _delta,
        "pct": _pct,
        "minutes": _minutes,
    }
    return _env.get_template("weekly.html.j2").render(**context)


def pdf_available() -> bool:
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def write_pdf(html: str, path: Path) -> None:
    """HTML to PDF with WeasyPrint (needs the Pango library: `make report-deps`)."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:
        raise UserError(
            "the PDF needs WeasyPrint and the Pango library: `pip install weasyprint` and "
            f"`apt-get install libpango-1.0-0 libpangoft2-1.0-0` ({exc.__class__.__name__})"
        ) from None
    # No base URL: everything the page shows is inline, so nothing is fetched.
    HTML(string=html).write_pdf(path)
