"""Queue page: open cases by priority, with SLA countdowns, risk, reasons, filters and claiming."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from board import common
from board.safe import md_escape, one_line
from storage import queries
from storage.models import OPEN_CASE_STATUSES, CaseStatus, UrgencyTier
from triage import cases, replies
from triage.auth import SignedIn

PAGE_SIZE = 25
ANYONE, UNASSIGNED = "Anyone", "Unassigned"


@st.cache_data(ttl=120, show_spinner=False)
def _filter_choices() -> tuple[list[str], list[str], dict[str, int], dict[str, int]]:
    """Platforms, languages, brands and members to filter on (cached: they rarely change)."""
    with common.db() as session:
        platforms, languages = queries.case_platforms_and_languages(session)
        brands = {b.name: b.id for b in queries.brands(session) if b.id is not None}
        members = {m.name: m.id for m in queries.team_members(session) if m.id is not None}
    return platforms, languages, brands, members


def _filters(member: SignedIn) -> queries.QueueFilters:
    platforms, languages, brands, members = _filter_choices()
    with st.expander("Filters", expanded=False):
        top = st.columns(3)
        chosen_platforms = top[0].multiselect("Source", platforms, key="f_platform")
        chosen_langs = top[1].multiselect("Language", languages, key="f_lang")
        chosen_tiers = top[2].multiselect(
            "Urgency tier", [t.value for t in reversed(UrgencyTier)], key="f_tier"
        )
        bottom = st.columns(3)
        chosen_status = bottom[0].multiselect(
            "Status",
            [s.value for s in CaseStatus],
            default=[s.value for s in OPEN_CASE_STATUSES],
            key="f_status",
        )
        assignee = bottom[1].selectbox("Assignee", [ANYONE, UNASSIGNED, *members], key="f_assignee")
        chosen_brands = bottom[2].multiselect("Brand", list(brands), key="f_brand")
    mine = st.toggle("My cases", key="f_mine")
    filters = queries.QueueFilters(
        statuses=chosen_status,
        platforms=chosen_platforms,
        languages=chosen_langs,
        tiers=chosen_tiers,
        brand_ids=[brands[name] for name in chosen_brands],
    )
    if mine:
        filters.assignee_id = member.member_id
    elif assignee == UNASSIGNED:
        filters.unassigned_only = True
    elif assignee != ANYONE:
        filters.assignee_id = members[assignee]
    return filters


def _claim(member: SignedIn, case_id: int, version: int) -> None:
    with common.db() as session:
        outcome = cases.claim(
            session, case_id=case_id, member_id=member.member_id, expected_version=version
        )
    if outcome.won:
        st.session_state["queue_notice"] = ("success", f"You hold case #{case_id}.")
    else:
        st.session_state["queue_notice"] = ("warning", outcome.message)


def _row(member: SignedIn, row: queries.QueueRow, viewers: list[cases.Viewer]) -> None:
    case = row.case
    assert case.id is not None
    author = row.author
    who = (author.display_name or author.handle) if author else "unknown author"
    # Few elements per row: the browser draws 25 of these on every refresh.
    with st.container(border=True, key=f"case_row_{case.id}"):
        main, actions = st.columns([8, 1.2])
        clock = common.sla_badge(case.sla_due_at, answered=case.first_response_at)
        holder = row.assignee.name if row.assignee else "nobody"
        status = common.STATUS_LABELS.get(case.status, case.status)
        main.markdown(
            f"{common.tier_badge(case.urgency_tier)} {common.risk_badge(case.buzz_risk)} "
            f"{clock} **#{case.id}** · {md_escape(case.platform or '?')} · "
            f"{md_escape(case.lang or '?')} · {md_escape(who)} · {md_escape(status)}, "
            f"held by {md_escape(holder)} {common.priority_label(case)}"
        )
        text = row.mention.clean_text if row.mention else ""
        main.text(one_line(text, limit=280) or "(no text)")
        notes = []
        reasons = row.score.buzz_reasons if row.score else []
        if reasons:
            notes.append("Why: " + " · ".join(md_escape(r) for r in reasons[:4]))
        if viewers:
            notes.append("👀 viewing: " + ", ".join(md_escape(v.name) for v in viewers))
        if notes:
            main.caption(" — ".join(notes))
        claimable = case.status in (CaseStatus.new, CaseStatus.assigned) and (
            case.assignee_id in (None, member.member_id)
        )
        actions.button(
            "Claim",
            key=f"claim_{case.id}",
            disabled=not claimable or case.assignee_id == member.member_id,
            on_click=_claim,
            args=(member, case.id, case.version),
            width="stretch",
        )
        # A real link: opens in place, or in a new tab with a middle click.
        actions.page_link(
            common.CASE_PAGE, label="Open", query_params={"id": str(case.id)}, width="stretch"
        )


def _rows(member: SignedIn, filters: queries.QueueFilters, page: int) -> None:
    notice = st.session_state.pop("queue_notice", None)
    if notice:
        common.notice(notice[1], kind=notice[0])
    with common.db() as session:
        total = queries.count_queue(session, filters=filters)
        rows = queries.triage_queue(
            session, filters=filters, limit=PAGE_SIZE, offset=page * PAGE_SIZE
        )
        watching = {
            row.case.id: cases.viewers(
                session, case_id=row.case.id, exclude_member_id=member.member_id
            )
            for row in rows
            if row.case.id is not None
        }
    first = page * PAGE_SIZE + 1 if rows else 0
    shown = f"{first}–{page * PAGE_SIZE + len(rows)}"
    # count_queue counts by status only: a total is shown only when it matches the filters.
    narrowed = any((filters.platforms, filters.languages, filters.tiers, filters.brand_ids)) or (
        filters.assignee_id is not None or filters.unassigned_only
    )
    of_total = "" if narrowed else f" of {total:,}"
    st.caption(f"{shown}{of_total} cases · refreshed {_now()}")
    if not rows:
        st.info("Nothing in the queue for these filters.")
    for row in rows:
        _row(member, row, watching.get(row.case.id or 0, []))


def _now() -> str:
    from storage.types import utcnow

    return utcnow().strftime("%H:%M:%S UTC")


def _approvals(member: SignedIn) -> None:
    """Leads: drafts of newer agents waiting for approval, each a link to its case."""
    if not member.is_lead:
        return
    with common.db() as session:
        waiting = replies.pending_approvals(session)
    if not waiting:
        return
    with st.expander(f"{len(waiting)} draft(s) waiting for your approval", expanded=True):
        for reply in waiting[:20]:
            st.page_link(
                common.CASE_PAGE,
                label=f"Case #{reply.case_id} · {md_escape(one_line(reply.text, limit=90))}",
                query_params={"id": str(reply.case_id)},
            )


def render() -> None:
    member = common.require_member()
    st.title("Queue")
    common.show_flash()
    _approvals(member)
    filters = _filters(member)
    page = (
        int(st.number_input("Page", min_value=1, value=1, step=1, key="queue_page", width=140)) - 1
    )
    refresh = max(int(common.settings().board.refresh_seconds), 1)

    @st.fragment(run_every=timedelta(seconds=refresh))
    def live() -> None:
        _rows(member, filters, page)

    live()


render()
