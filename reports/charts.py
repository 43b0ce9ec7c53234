"""The report's charts: matplotlib's object API (no pyplot state, safe in the scheduler's worker
threads, no display), embedded as PNG data URIs."""

from __future__ import annotations

import base64
import io
from datetime import date

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reports.figures import SENTIMENTS, WeekFigures

COLOURS = {"negative": "#c0392b", "neutral": "#95a5a6", "positive": "#27ae60"}
PALETTE = ["#2c6fbb", "#e67e22", "#8e44ad", "#16a085", "#d35400", "#7f8c8d", "#2c3e50", "#c0392b"]


def _data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _axes(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def volume_chart(figures: WeekFigures) -> str:
    """Mentions per local day, stacked by source."""
    fig, ax = _axes(7.5, 2.8)
    labels = [date.fromisoformat(d).strftime("%a %d") for d in figures.days]
    bottom = [0] * len(figures.days)
    for i, (source, per_day) in enumerate(figures.volume_by_source_day.items()):
        values = [per_day.get(d, 0) for d in figures.days]
        ax.bar(labels, values, bottom=bottom, label=source, color=PALETTE[i % len(PALETTE)])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("mentions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.spines[["top", "right"]].set_visible(False)
    if figures.volume_by_source_day:
        ax.legend(frameon=False, fontsize=8, ncols=min(4, len(figures.volume_by_source_day)))
    return _data_uri(fig)


def sentiment_chart(figures: WeekFigures) -> str:
    """Sentiment shares, this week against the week before."""
    fig, ax = _axes(7.5, 1.6)
    rows = [
        (figures.previous_week, figures.sentiment_share_previous),
        (figures.week, figures.sentiment_share),
    ]
    for y, (label, share) in enumerate(rows):
        left = 0.0
        for sentiment in SENTIMENTS:
            value = share.get(sentiment, 0.0)
            legend = sentiment if y else None
            ax.barh(label, value, left=left, color=COLOURS[sentiment], label=legend)
            if value >= 6:
                ax.text(left + value / 2, y, f"{value:.0f}%", ha="center", va="center", fontsize=8)
            left += value
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of scored mentions")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8, ncols=3, loc="upper center", bbox_to_anchor=(0.5, 1.45))
    return _data_uri(fig)


def agents_chart(figures: WeekFigures) -> str | None:
    """Median first-response minutes per agent (agents who answered something)."""
    agents = [a for a in figures.response.per_agent if a.p50_minutes is not None]
    if not agents:
        return None
    fig, ax = _axes(7.5, 0.5 + 0.35 * len(agents))
    ax.barh([a.agent for a in agents], [a.p50_minutes or 0 for a in agents], color="#2c6fbb")
    ax.invert_yaxis()
    ax.set_xlabel("median first response (minutes)")
    ax.spines[["top", "right"]].set_visible(False)
    return _data_uri(fig)
