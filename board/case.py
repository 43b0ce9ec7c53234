"""Case page (/case?id=N): the post and its thread, the author, scores and reasons, the reply
composer, notes and history; claim, release, resolve, dismiss; correct a wrong score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st

from board import common, composer
from board.safe import md_escape, one_line, plain, safe_url
from storage import queries
from storage.models import (
    Author,
    Case,
    CaseNote,
    CaseStatus,
    Feedback,
    Mention,
    Reply,
    Score,
    SupportTask,
    UrgencyTier,
)
from triage import cases
from triage.auth import SignedIn
from triage.errors import TriageError

CORRECTIONS: dict[str, list[str]] = {
    "sentiment": ["negative", "neutral", "positive"],
    "urgency": [t.value for t in UrgencyTier],
    "complaint": ["yes", "no"],
    "severity": ["0", "1", "2", "3", "4"],
}


@dataclass(slots=True)
class CasePage:
    case: Case
    mention: Mention | None
    author: Author | None
    score: Score | None
    thread: list[Mention]
    past_cases: list[Case]
    notes: list[CaseNote]
    replies: list[Reply]
    tasks: list[SupportTask]
    history: list[Any]
    feedback: list[Feedback]
    members: dict[int, str]
    viewers: list[cases.Viewer]


def _case_id() -> int | None:
    raw = st.query_params.get("id")
    try:
        return int(str(raw)) if raw is not None else None
    except ValueError:
        return None


def _load(case_id: int, member: SignedIn) -> CasePage | None:
    with common.db() as session:
        try:
            case = cases.get_case(session, case_id)
        except TriageError:
            return None
        cases.mark_viewing(session, case_id=case_id, member_id=member.member_id)
        mention = (
            queries.mentions_by_id(session, ids=[case.mention_id]).get(case.mention_id)
            if case.mention_id is not None
            else None
        )
        author = None
        if mention is not None and mention.author_id is not None:
            author = queries.authors_by_id(session, ids=[mention.author_id]).get(mention.author_id)
        score = (
            queries.latest_scores(session, mention_ids=[mention.id]).get(mention.id)
            if mention is not None and mention.id is not None
            else None
        )
        return CasePage(
            case=case,
            mention=mention,
            author=author,
            score=score,
            thread=queries.thread_mentions(session, mention=mention) if mention else [],
            past_cases=(
                queries.author_cases(session, author_id=author.id, exclude_case_id=case_id)
                if author is not None and author.id is not None
                else []
            ),
            notes=queries.case_notes(session, case_id=case_id),
            replies=queries.case_replies(session, case_id=case_id),
            tasks=queries.case_support_tasks(session, case_id=case_id),
            history=queries.audit_events(session, entity_type="case", entity_id=case_id),
            feedback=(
                queries.feedback_for_mention(session, mention_id=mention.id)
                if mention is not None and mention.id is not None
                else []
            ),
            members={
                m.id: m.name
                for m in queries.team_members(session, active_only=False)
                if m.id is not None
            },
            viewers=cases.viewers(session, case_id=case_id, exclude_member_id=member.member_id),
        )


# ----------------------------------------------------------------------------- actions


def _act(label: str, action: Callable[..., Any], **kwargs: Any) -> None:
    """Run one triage action in its own transaction; the outcome shows on the next run."""
    try:
        with common.db() as session:
            action(session, **kwargs)
    except TriageError as exc:
        common.flash(str(exc), kind="error")
        return
    common.flash(label)


def _claim(member: SignedIn, case_id: int, version: int) -> None:
    with common.db() as session:
        outcome = cases.claim(
            session, case_id=case_id, member_id=member.member_id, expected_version=version
        )
    if outcome.won:
        common.flash(f"You hold case #{case_id}.")
    else:
        common.flash(outcome.message, kind="warning")


def _actions(view: CasePage, member: SignedIn) -> None:
    case = view.case
    assert case.id is not None
    mine = case.assignee_id == member.member_id
    may_act = mine or case.assignee_id is None or member.is_lead
    is_open = case.status not in (CaseStatus.resolved, CaseStatus.dismissed)
    cols = st.columns(4)
    cols[0].button(
        "Claim",
        key="case_claim",
        type="primary",
        disabled=mine or case.status not in (CaseStatus.new, CaseStatus.assigned),
        on_click=_claim,
        args=(member, case.id, case.version),
        width="stretch",
    )
    cols[1].button(
        "Release",
        key="case_release",
        disabled=case.status != CaseStatus.assigned or not (mine or member.is_lead),
        on_click=_act,
        args=(f"Case #{case.id} is back in the queue.", cases.release),
        kwargs={
            "case_id": case.id,
            "member_id": member.member_id,
            "expected_version": case.version,
        },
        width="stretch",
    )
    with cols[2].popover("Resolve", disabled=not (is_open and may_act), width="stretch"):
        st.text_input("Closing note (optional)", key="resolve_note")
        st.button(
            "Resolve case",
            key="case_resolve",
            on_click=lambda: _act(
                f"Case #{case.id} resolved.",
                cases.resolve,
                case_id=case.id,
                member_id=member.member_id,
                note=st.session_state.get("resolve_note") or None,
                expected_version=case.version,
            ),
        )
    with cols[3].popover("Dismiss", disabled=not (is_open and may_act), width="stretch"):
        st.text_input("Why (spam, duplicate, not about us…)", key="dismiss_reason")
        st.button(
            "Dismiss case",
            key="case_dismiss",
            on_click=lambda: _act(
                f"Case #{case.id} dismissed.",
                cases.dismiss,
                case_id=case.id,
                member_id=member.member_id,
                reason=st.session_state.get("dismiss_reason") or "",
                expected_version=case.version,
            ),
        )
    if not is_open:
        st.button(
            "Reopen",
            key="case_reopen",
            on_click=_act,
            args=(f"Case #{case.id} reopened.", cases.reopen),
            kwargs={
                "case_id": case.id,
                "member_id": member.member_id,
                "expected_version": case.version,
            },
        )


# ----------------------------------------------------------------------------- sections


def _header(view: CasePage, member: SignedIn) -> None:
    case = view.case
    st.title(f"Case #{case.id}")
    holder = view.members.get(case.assignee_id or -1, "nobody")
    st.markdown(
        f"{common.tier_badge(case.urgency_tier)} {common.risk_badge(case.buzz_risk)} "
        f"{common.sla_badge(case.sla_due_at, answered=case.first_response_at)} · "
        f"**{md_escape(common.STATUS_LABELS.get(case.status, case.status))}** · "
        f"held by **{md_escape(holder)}** {common.priority_label(case)}"
    )
    if case.assignee_id not in (None, member.member_id):
        common.notice(
            f"{holder} holds this case. Only they or a lead can answer or close it.",
            kind="warning",
        )
    if view.viewers:
        names = ", ".join(v.name for v in view.viewers)
        common.notice(f"Also viewing now: {names}")


def _post(view: CasePage) -> None:
    st.subheader("Post")
    mention = view.mention
    if mention is None:
        st.caption("This case has no post (an incident case).")
        return
    meta = f"{md_escape(mention.platform)} · {common.when(mention.created_at)}"
    if mention.likes is not None or mention.reposts is not None:
        meta += f" · ♥ {mention.likes or 0} · ⟳ {mention.reposts or 0} · 💬 {mention.replies or 0}"
    st.caption(meta)
    if mention.title:
        st.text(plain(mention.title))
    with st.container(border=True, key="post_text"):
        st.text(plain(mention.clean_text) if not mention.deleted else "(deleted at the source)")
    url = safe_url(mention.url)
    if url:
        st.link_button("Open the post", url)
    if view.thread:
        with st.expander(f"Thread ({len(view.thread)} other posts)", expanded=False):
            for other in view.thread:
                st.caption(common.when(other.created_at))
                st.text(plain(other.clean_text))


def _author(view: CasePage) -> None:
    st.subheader("Author")
    author = view.author
    if author is None:
        st.caption("Unknown author.")
        return
    with st.container(border=True, key="author_card"):
        st.text(plain(author.display_name or author.handle))
        flags = [
            f"{author.followers:,} followers" if author.followers is not None else "reach unknown",
            "verified" if author.verified else "not verified",
        ]
        if author.vip:
            flags.append("VIP")
        if author.journalist:
            flags.append("journalist")
        where = f"@{md_escape(author.handle)} · {md_escape(author.platform)}"
        st.caption(" · ".join([where, *flags]))
        if author.bio:
            st.text(plain(author.bio))
    if view.past_cases:
        st.caption(f"{len(view.past_cases)} earlier case(s) with this author")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Case": c.id,
                        "Opened": common.when(c.created_at),
                        "Status": c.status,
                        "Tier": c.urgency_tier,
                        "Held by": view.members.get(c.assignee_id or -1, ""),
                    }
                    for c in view.past_cases
                ]
            ),
            hide_index=True,
        )
    else:
        st.caption("First case with this author.")


def _scores(view: CasePage, member: SignedIn) -> None:
    st.subheader("Scores")
    score = view.score
    if score is None:
        st.caption("Not scored yet.")
        return
    top, bottom = st.columns(2), st.columns(2)
    top[0].metric("Sentiment", score.sentiment_label, f"{score.sentiment_negative:.0%} negative")
    top[1].metric("Urgency", score.urgency_tier, f"score {score.urgency_score:.2f}")
    bottom[0].metric(
        "Complaint",
        "yes" if score.is_complaint else "no",
        f"severity {score.complaint_severity}",
    )
    bottom[1].metric("Buzz risk", f"{score.buzz_risk:.0f}", score.buzz_tier)
    if score.buzz_reasons:
        st.markdown("\n".join(f"- {md_escape(reason)}" for reason in score.buzz_reasons))
    st.caption(f"model {md_escape(score.model_version)} · scored {common.when(score.scored_at)}")
    _correction(view, member, score)


def _current_value(score: Score, field_name: str) -> str:
    return {
        "sentiment": score.sentiment_label,
        "urgency": score.urgency_tier,
        "complaint": "yes" if score.is_complaint else "no",
        "severity": str(score.complaint_severity),
    }[field_name]


def _correction(view: CasePage, member: SignedIn, score: Score) -> None:
    with st.expander("Correct a wrong score", expanded=False):
        st.caption("Corrections are kept for retraining the model; the score itself is unchanged.")
        field_name = st.selectbox("Which score", list(CORRECTIONS), key="fix_field")
        field_name = field_name or "sentiment"
        current = _current_value(score, field_name)
        choices = [v for v in CORRECTIONS[field_name] if v != current]
        new_value = st.selectbox(f"Should be (now: {current})", choices, key="fix_value")
        if st.button("Save correction", key="fix_save") and new_value is not None:
            with common.db() as session:
                queries.add_score_feedback(
                    session,
                    mention_id=score.mention_id,
                    member_id=member.member_id,
                    field_name=field_name,
                    old_value=current,
                    new_value=str(new_value),
                    model_version=score.model_version,
                )
            common.flash(f"Thanks: {field_name} recorded as {new_value} for retraining.")
            st.rerun()
        for fb in view.feedback:
            who = view.members.get(fb.member_id or -1, "someone")
            st.caption(
                f"{common.when(fb.created_at)} · {md_escape(who)}: {fb.field} "
                f"{md_escape(fb.old_value or '?')} → {md_escape(fb.new_value)}"
            )


def _notes(view: CasePage, member: SignedIn) -> None:
    st.subheader("Notes")
    for note in view.notes:
        who = view.members.get(note.member_id or -1, "someone")
        st.caption(f"{common.when(note.created_at)} · {md_escape(who)}")
        st.text(plain(note.text))
    with st.form("add_note", clear_on_submit=True):
        text = st.text_area("Internal note (never published)", key="note_text", height=80)
        if st.form_submit_button("Add note"):
            _act(
                "Note added.",
                cases.add_note,
                case_id=view.case.id,
                member_id=member.member_id,
                text=text,
            )
            st.rerun()


def _save_tags(case_id: int, member: SignedIn, before: list[str]) -> None:
    key = f"tags_{case_id}"
    chosen = list(st.session_state.get(key) or [])
    added = [t for t in chosen if t not in before]
    removed = [t for t in before if t not in chosen]
    if added:
        _act("Tags saved.", cases.add_tags, case_id=case_id, member_id=member.member_id, tags=added)
    if removed:
        _act(
            "Tags saved.",
            cases.remove_tags,
            case_id=case_id,
            member_id=member.member_id,
            tags=removed,
        )
    # Rebuilt from the stored (normalised) tags on the next run.
    del st.session_state[key]


def _tags(view: CasePage, member: SignedIn) -> None:
    case = view.case
    assert case.id is not None
    st.multiselect(
        "Tags",
        options=list(case.tags),
        default=list(case.tags),
        accept_new_options=True,
        key=f"tags_{case.id}",
        on_change=_save_tags,
        args=(case.id, member, list(case.tags)),
        help="Type a new tag and press Enter (e.g. refund, lost-baggage, press).",
    )


def _history(view: CasePage) -> None:
    with st.expander(f"History ({len(view.history)} events)", expanded=False):
        if not view.history:
            st.caption("Nothing yet.")
            return
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "When": common.when(e.created_at),
                        "Who": plain(e.actor),
                        "What": e.action,
                        "Details": one_line(
                            ", ".join(f"{k}: {v}" for k, v in (e.details or {}).items()),
                            limit=200,
                        ),
                    }
                    for e in view.history
                ]
            ),
            hide_index=True,
            width="stretch",
        )


def _pick_case() -> None:
    st.title("Case")
    st.info("Open a case from the queue, or enter its number.")
    number = st.number_input("Case number", min_value=1, step=1, value=None, key="case_pick")
    if number is not None and st.button("Open", key="case_pick_open"):
        common.open_case(int(number))


def render() -> None:
    member = common.require_member()
    case_id = _case_id()
    if case_id is None:
        _pick_case()
        return
    refresh = max(int(common.settings().board.refresh_seconds), 1)

    @st.fragment(run_every=timedelta(seconds=refresh))
    def presence() -> None:
        # Keeps "who is viewing" fresh for the others while this page stays open.
        with common.db() as session:
            cases.mark_viewing(session, case_id=case_id, member_id=member.member_id)

    view = _load(case_id, member)
    if view is None:
        st.title("Case")
        st.error(f"There is no case #{case_id}.")
        st.page_link(common.QUEUE_PAGE, label="Back to the queue")
        return
    presence()
    _header(view, member)
    common.show_flash()
    _actions(view, member)
    left, right = st.columns([3, 2])
    with left:
        _post(view)
        composer.render(
            view.case, view.mention, view.author, view.replies, view.tasks, member, view.members
        )
        _notes(view, member)
    with right:
        _tags(view, member)
        _author(view)
        _scores(view, member)
    _history(view)


render()
