"""The reply composer of the case page: template, message, handoff, preview with the platform's
length counter, drafts and a lead's approval, then sending (through the platform's API where
Tocsin can post, otherwise "copy, open the post, confirm")."""

from __future__ import annotations

from typing import Any

import streamlit as st

from board import common
from board.safe import md_escape, plain, safe_url
from storage.models import Author, Case, Mention, Reply, ReplyAction, ReplyStatus, SupportTask
from triage import cases, publish, replies
from triage.auth import SignedIn
from triage.errors import TriageError

HANDOFFS = {
    ReplyAction.dm_invite.value: "Invite to DM",
    ReplyAction.phone_callback.value: "Phone callback",
    ReplyAction.public_reply.value: "Public reply only",
}
OWN_TEXT = "(write my own)"
OPEN_STATUSES = ("new", "assigned", "replied", "handed_off")


def _key(case: Case, name: str) -> str:
    return f"reply_{name}_{case.id}"


# ----------------------------------------------------------------------------- what was sent


def _sent(sent: list[Reply], tasks: list[SupportTask], members: dict[int, str]) -> None:
    for reply in sent:
        who = members.get(reply.member_id or -1, "someone")
        st.caption(
            f"{common.when(reply.sent_at)} · {md_escape(who)} · "
            f"{md_escape(HANDOFFS.get(reply.action, reply.action))} · sent"
        )
        st.text(plain(reply.text))
        url = safe_url(reply.external_url)
        if url:
            st.link_button("See the reply", url)
    for task in tasks:
        with st.expander(f"Support task #{task.id}: {task.kind} ({task.status})"):
            st.text(plain(task.details))


# ----------------------------------------------------------------------------- drafts, approval


def _run(label: str, action: Any, **kwargs: Any) -> None:
    try:
        with common.db() as session:
            action(session, **kwargs)
    except TriageError as exc:
        common.flash(str(exc), kind="error")
        return
    common.flash(label)


def _drafts(case: Case, drafts: list[Reply], member: SignedIn, members: dict[int, str]) -> None:
    for reply in drafts:
        assert reply.id is not None
        who = members.get(reply.member_id or -1, "someone")
        with st.container(border=True, key=f"draft_{reply.id}"):
            st.caption(
                f"Draft by {md_escape(who)} · {md_escape(HANDOFFS.get(reply.action, ''))} · "
                f"**{md_escape(reply.status)}**"
            )
            st.text(plain(reply.text))
            cols = st.columns(3)
            if reply.status == ReplyStatus.draft and member.is_lead:
                cols[0].button(
                    "Approve",
                    key=f"approve_{reply.id}",
                    on_click=_run,
                    args=("Reply approved.", replies.approve),
                    kwargs={"reply_id": reply.id, "lead_id": member.member_id},
                )
                with cols[1].popover("Reject"):
                    st.text_input("What to change", key=f"reject_reason_{reply.id}")
                    st.button(
                        "Send back",
                        key=f"reject_{reply.id}",
                        on_click=lambda r=reply.id: _run(
                            "Draft sent back to its author.",
                            replies.reject,
                            reply_id=r,
                            lead_id=member.member_id,
                            reason=st.session_state.get(f"reject_reason_{r}") or "",
                        ),
                    )
            sendable = reply.status == ReplyStatus.approved or (
                reply.status == ReplyStatus.draft and member.is_lead
            )
            may_send = sendable and (reply.member_id == member.member_id or member.is_lead)
            if may_send and cols[2].button("Send", key=f"send_draft_{reply.id}", type="primary"):
                _start_send(case, reply, member)


# ----------------------------------------------------------------------------- sending


def _start_send(case: Case, reply: Reply, member: SignedIn) -> None:
    """Send through the platform's API where Tocsin can post; otherwise hand over to the agent
    (copy, open the post, confirm). The send-time checks run first either way."""
    try:
        outcome = publish.publish_reply(
            reply_id=reply.id or 0,
            member_id=member.member_id,
            settings=common.settings(),
            callback_note=st.session_state.get(_key(case, "saved_note")) or "",
        )
    except TriageError as exc:
        common.flash(str(exc), kind="error")
        st.rerun()
    if outcome.mode == "api":
        st.session_state.pop(_key(case, "saved_note"), None)
        common.flash(f"Reply posted on {case.platform}: {outcome.external_url or 'done'}.")
    else:
        st.session_state[_key(case, "posting")] = (reply.id, outcome.open_url or outcome.post_url)
    st.rerun()


def _posting(case: Case, reply: Reply, open_url: str | None, member: SignedIn) -> None:
    """The manual path: copy the text, open the post, answer there, confirm here."""
    st.info(
        "Tocsin cannot post on this platform for you: copy the reply, open the post, answer "
        "it there, then confirm here."
    )
    st.code(reply.text, language=None, wrap_lines=True)
    url = safe_url(open_url)
    if url:
        st.link_button("Open the post", url)
    st.text_input("Link to your reply (optional)", key=_key(case, "posted_url"))
    cols = st.columns(2)
    if cols[0].button("I posted it", key=_key(case, "confirm"), type="primary"):
        _confirm(case, reply.id or 0, member)
    if cols[1].button("Not now", key=_key(case, "cancel")):
        del st.session_state[_key(case, "posting")]
        st.rerun()


def _confirm(case: Case, reply_id: int, member: SignedIn) -> None:
    link = (st.session_state.get(_key(case, "posted_url")) or "").strip()
    if link and safe_url(link) is None:
        st.error("Paste the link of your reply (https://…), or leave it empty.")
        return
    try:
        with common.db() as session:
            publish.confirm_manual_send(
                session,
                reply_id=reply_id,
                member_id=member.member_id,
                settings=common.settings(),
                external_url=link or None,
                callback_note=st.session_state.get(_key(case, "saved_note")) or "",
            )
    except TriageError as exc:
        st.session_state.pop(_key(case, "posting"), None)
        common.flash(str(exc), kind="error")
        st.rerun()
    st.session_state.pop(_key(case, "posting"), None)
    st.session_state.pop(_key(case, "saved_note"), None)
    common.flash("Reply sent and recorded.")
    st.rerun()


# ----------------------------------------------------------------------------- composing


def _apply_template(case: Case, names: dict[str, str]) -> None:
    chosen = st.session_state.get(_key(case, "template"))
    if chosen in names:
        st.session_state[_key(case, "body")] = names[chosen]


def _compose(case: Case, member: SignedIn) -> None:
    settings = common.settings()
    assert case.id is not None
    if st.session_state.pop(_key(case, "reset"), False):
        # A reply just went out: start the next one from a blank composer.
        st.session_state[_key(case, "body")] = ""
        st.session_state[_key(case, "template")] = OWN_TEXT
    templates = replies.templates_for(settings, lang=case.lang, topic=case.topic)
    names = {t.name: t.text for t in templates}
    st.selectbox(
        "Template",
        [OWN_TEXT, *names],
        key=_key(case, "template"),
        on_change=_apply_template,
        args=(case, names),
        help="Variables: " + ", ".join("{" + v + "}" for v in replies.VARIABLES),
    )
    body = st.text_area("Message", key=_key(case, "body"), height=110)
    action = st.radio(
        "Handoff",
        list(HANDOFFS),
        format_func=lambda a: HANDOFFS[a],
        key=_key(case, "handoff"),
        horizontal=True,
        help="How the conversation continues: in private, or by a phone call from support.",
    )
    if action == ReplyAction.phone_callback:
        st.text_input(
            "Note for the support team (optional)",
            key=_key(case, "callback_note"),
            help="Goes into the callback task support receives, never into the public reply.",
        )
    if not body.strip():
        st.caption("Pick a template or write a message to see the preview.")
        return
    try:
        with common.db() as session:
            composed = replies.compose(
                session,
                case_id=case.id,
                member_id=member.member_id,
                settings=settings,
                action=action or ReplyAction.public_reply.value,
                text=body,
            )
            needs_lead = replies.needs_approval(cases.get_member(session, member.member_id))
    except TriageError as exc:
        common.notice(str(exc), kind="error")
        return
    st.caption("Preview")
    with st.container(border=True, key="reply_preview"):
        st.text(composed.text)
    st.progress(min(composed.length / composed.limit, 1.0))
    counter = f"{composed.counter} characters on {case.platform or 'this platform'}"
    if composed.fits:
        st.caption(md_escape(counter))
    else:
        common.notice(f"{counter}: shorten it by {composed.length - composed.limit}.", kind="error")
    label = "Submit for approval" if needs_lead else "Send reply"
    if st.button(label, key=_key(case, "send"), type="primary", disabled=not composed.fits):
        _submit(case, member, composed.text, composed.action, needs_lead)


def _submit(case: Case, member: SignedIn, text: str, action: str, needs_lead: bool) -> None:
    try:
        with common.db() as session:
            reply = replies.create_draft(
                session, case_id=case.id or 0, member_id=member.member_id, text=text, action=action
            )
    except TriageError as exc:
        common.notice(str(exc), kind="error")
        return
    st.session_state[_key(case, "reset")] = True
    st.session_state[_key(case, "saved_note")] = st.session_state.get(_key(case, "callback_note"))
    if needs_lead:
        common.flash("Draft saved: a lead approves it before it goes out.")
        st.rerun()
    _start_send(case, reply, member)


def render(
    case: Case,
    mention: Mention | None,
    author: Author | None,
    case_replies: list[Reply],
    tasks: list[SupportTask],
    member: SignedIn,
    members: dict[int, str],
) -> None:
    st.subheader("Reply")
    sent = [r for r in case_replies if r.status == ReplyStatus.sent]
    drafts = [r for r in case_replies if r.status != ReplyStatus.sent]
    _sent(sent, tasks, members)
    posting = st.session_state.get(_key(case, "posting"))
    reply_id, open_url = posting if isinstance(posting, tuple) else (None, None)
    waiting = next((r for r in drafts if r.id == reply_id), None)
    if waiting is not None:
        _posting(case, waiting, open_url, member)
        return
    st.session_state.pop(_key(case, "posting"), None)
    _drafts(case, drafts, member, members)
    if case.status not in OPEN_STATUSES:
        st.caption("The case is closed: reopen it to answer again.")
        return
    if case.assignee_id != member.member_id and not member.is_lead:
        st.caption("Claim the case to answer it.")
        return
    _compose(case, member)
