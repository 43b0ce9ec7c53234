"""The reply composer of the case page."""

from __future__ import annotations

import streamlit as st

from board import common
from board.safe import md_escape, plain
from storage.models import Author, Case, Mention, Reply, SupportTask
from triage.auth import SignedIn


def _sent(replies: list[Reply], tasks: list[SupportTask]) -> None:
    for reply in replies:
        st.caption(
            f"{common.when(reply.sent_at or reply.created_at)} · {md_escape(reply.action)} · "
            f"{md_escape(reply.status)}"
        )
        st.text(plain(reply.text))
    for task in tasks:
        st.caption(f"Support task #{task.id} ({md_escape(task.kind)}, {md_escape(task.status)})")


def render(
    case: Case,
    mention: Mention | None,
    author: Author | None,
    replies: list[Reply],
    tasks: list[SupportTask],
    member: SignedIn,
) -> None:
    st.subheader("Reply")
    _sent(replies, tasks)
