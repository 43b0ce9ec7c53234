"""Team page: who is on shift, open load against their cap, first-response SLA met per person;
leads reassign open cases here."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from board import common
from board.safe import one_line, plain
from storage import queries
from storage.models import TeamMember
from storage.types import utcnow
from triage import cases
from triage.auth import SignedIn
from triage.errors import TriageError

WINDOWS = {"Last 24 hours": 1, "Last 7 days": 7, "Last 30 days": 30}


def _table(
    members: list[TeamMember], load: dict[int, int], tally: dict[int | None, queries.SlaTally]
) -> pd.DataFrame:
    rows = []
    for m in members:
        t = tally.get(m.id, queries.SlaTally())
        ratio = t.met_ratio
        rows.append(
            {
                "Name": plain(m.name),
                "Role": m.role,
                "On shift": m.on_shift,
                "Languages": ", ".join(m.languages),
                "Skills": ", ".join(m.skills),
                "Open cases": load.get(m.id or 0, 0),
                "Cap": m.max_open_cases,
                "Answered": t.answered,
                "Within SLA": t.on_time,
                "Overdue (open)": t.overdue_open,
                "SLA met %": round(100 * ratio, 1) if ratio is not None else None,
            }
        )
    return pd.DataFrame(rows)


def _reassign(member: SignedIn, members: list[TeamMember]) -> None:
    st.subheader("Reassign a case")
    with common.db() as session:
        rows = queries.triage_queue(session, limit=200)
    if not rows:
        st.caption("No open cases.")
        return
    labels = {}
    for row in rows:
        holder = row.assignee.name if row.assignee else "unassigned"
        text = one_line(row.mention.clean_text if row.mention else "", limit=70)
        labels[row.case.id] = f"#{row.case.id} · {row.case.urgency_tier} · {holder} · {text}"
    people = {m.id: f"{m.name} ({m.role})" for m in members if m.id is not None}
    with st.form("reassign"):
        case_id = st.selectbox(
            "Case", list(labels), format_func=lambda i: labels[i], key="reassign_case"
        )
        to_id = st.selectbox(
            "Give it to", list(people), format_func=lambda i: people[i], key="reassign_to"
        )
        reason = st.text_input("Reason (kept in the history)", key="reassign_reason")
        submitted = st.form_submit_button("Reassign", type="primary")
    if not submitted or case_id is None or to_id is None:
        return
    try:
        with common.db() as session:
            cases.assign(
                session,
                case_id=int(case_id),
                assignee_id=int(to_id),
                by_id=member.member_id,
                reason=reason or "reassigned by a lead",
                action="case.reassigned",
            )
    except TriageError as exc:
        common.notice(str(exc), kind="error")
        return
    common.flash(f"Case #{case_id} is now with {people[to_id]}.")
    st.rerun()


def render() -> None:
    member = common.require_member()
    st.title("Team")
    common.show_flash()
    window = st.segmented_control(
        "SLA window", list(WINDOWS), default="Last 7 days", key="team_window"
    )
    days = WINDOWS.get(window or "Last 7 days", 7)
    with common.db() as session:
        members = queries.team_members(session)
        load = queries.open_load_by_member(session)
        tally = queries.sla_tally_by_member(session, since=utcnow() - timedelta(days=days))
    on_shift = [m for m in members if m.on_shift]
    cols = st.columns(3)
    cols[0].metric("On shift", f"{len(on_shift)} / {len(members)}")
    cols[1].metric("Open cases held", sum(load.values()))
    unassigned = tally.get(None, queries.SlaTally())
    cols[2].metric("Unassigned overdue", unassigned.overdue_open)
    if not members:
        st.info("No team members yet: list them under [[team]] in tocsin.toml.")
        return
    st.dataframe(
        _table(members, load, tally),
        hide_index=True,
        width="stretch",
        column_config={
            "SLA met %": st.column_config.ProgressColumn(
                "SLA met %", min_value=0, max_value=100, format="%.0f%%"
            ),
        },
    )
    if member.is_lead:
        _reassign(member, members)
    else:
        st.caption("Leads can reassign cases from this page.")


render()
