"""Overview page: volume, sentiment and risk over time, SLA compliance, open incidents, the
weekly reports built so far and the latest alerts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from board import common
from board.safe import md_escape, one_line, plain
from storage import queries
from storage.types import utcnow

PERIODS = {"7 days": 7, "30 days": 30, "90 days": 90}


@st.cache_data(ttl=60, show_spinner=False)
def _figures(days: int, brand_id: int | None) -> dict[str, pd.DataFrame]:
    """Everything the charts need, as data frames (cached a minute: these scan many rows)."""
    since = utcnow() - timedelta(days=days)
    with common.db() as session:
        volume = queries.mention_volume_by_day(session, since=since, brand_id=brand_id)
        scores = queries.scores_by_day(session, since=since, brand_id=brand_id)
        sla = queries.sla_compliance_by_day(session, since=since, brand_id=brand_id)
    volume_df = pd.DataFrame(volume, columns=["day", "mentions"]).set_index("day")
    sentiment_df = pd.DataFrame(
        [(s.day, s.negative, s.neutral, s.positive) for s in scores],
        columns=["day", "negative", "neutral", "positive"],
    ).set_index("day")
    risk_df = pd.DataFrame(
        [(s.day, s.mean_risk, s.max_risk) for s in scores],
        columns=["day", "mean buzz risk", "max buzz risk"],
    ).set_index("day")
    sla_df = pd.DataFrame(
        [(day, 100.0 * ok / n if n else None) for day, n, ok in sla],
        columns=["day", "answered within SLA (%)"],
    ).set_index("day")
    return {"volume": volume_df, "sentiment": sentiment_df, "risk": risk_df, "sla": sla_df}


def _chart(title: str, frame: pd.DataFrame, kind: str = "line", **kwargs: object) -> None:
    st.subheader(title)
    if frame.empty:
        st.caption("No data for this period yet.")
    elif kind == "bar":
        st.bar_chart(frame, **kwargs)  # type: ignore[arg-type]
    else:
        st.line_chart(frame, **kwargs)  # type: ignore[arg-type]


def _incidents() -> None:
    st.subheader("Open incidents")
    with common.db() as session:
        incidents = queries.open_incidents(session)
    if not incidents:
        st.caption("No open incident.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Incident": i.id,
                    "Title": one_line(i.title, limit=120),
                    "Keywords": plain(", ".join(i.keywords)),
                    "Mentions": i.mention_count,
                    "First seen": common.when(i.first_seen_at),
                    "Last seen": common.when(i.last_seen_at),
                }
                for i in incidents
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def _reports() -> None:
    st.subheader("Weekly reports")
    with common.db() as session:
        runs = queries.recent_report_runs(session)
        brand_names = {b.id: b.name for b in queries.brands(session)}
    if not runs:
        st.caption("No weekly report built yet (`tocsin report`).")
        return
    for run in runs:
        cols = st.columns([3, 1, 1])
        sent = f"sent {common.when(run.sent_at)}" if run.sent_at else "not sent"
        cols[0].markdown(
            f"**{md_escape(run.week)}** · {md_escape(brand_names.get(run.brand_id, '?'))} · {sent}"
        )
        for col, path, mime in (
            (cols[1], run.html_path, "text/html"),
            (cols[2], run.pdf_path, "application/pdf"),
        ):
            file = Path(path) if path else None
            if file is not None and file.is_file():
                col.download_button(
                    file.suffix.lstrip(".").upper(),
                    data=file.read_bytes(),
                    file_name=file.name,
                    mime=mime,
                    key=f"report_{run.id}_{file.suffix}",
                )
            elif path:
                col.caption("file missing")


def _alerts() -> None:
    st.subheader("Recent alerts")
    with common.db() as session:
        alerts = queries.recent_alerts(session)
    if not alerts:
        st.caption("No alert yet.")
        return
    base = common.settings().board.base_url.rstrip("/")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "When": common.when(a.created_at),
                    "Kind": a.kind,
                    "Rule": a.rule,
                    "Channel": a.channel,
                    "Status": a.status,
                    "Subject": one_line(a.subject, limit=120),
                    "Case": f"{base}/case?id={a.case_id}" if a.case_id else None,
                }
                for a in alerts
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={"Case": st.column_config.LinkColumn("Case", display_text="open")},
    )


def render() -> None:
    common.require_member()
    st.title("Overview")
    with common.db() as session:
        brands = {b.name: b.id for b in queries.brands(session)}
    cols = st.columns(2)
    period = cols[0].segmented_control(
        "Period", list(PERIODS), default="30 days", key="overview_period"
    )
    brand = cols[1].selectbox("Brand", ["All brands", *brands], key="overview_brand")
    days = PERIODS.get(period or "30 days", 30)
    figures = _figures(days, brands.get(brand) if brand else None)
    left, right = st.columns(2)
    with left:
        _chart("Volume (mentions per day)", figures["volume"], kind="bar")
        _chart("Buzz risk", figures["risk"])
    with right:
        _chart("Sentiment", figures["sentiment"], kind="bar", stack=True)
        _chart("SLA compliance (first response)", figures["sla"])
    _incidents()
    left, right = st.columns(2)
    with left:
        _reports()
    with right:
        _alerts()


render()
