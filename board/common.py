"""What every page shares: the signed-in member, settings, the database session, small formats."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import streamlit as st
from sqlmodel import Session

from board.safe import md_escape
from storage.db import session_scope
from storage.models import Case
from storage.types import utcnow
from tocsin.config import Settings, get_settings
from triage.auth import SignedIn, current_member

MEMBER_KEY = "tocsin_member"
CASE_PAGE = "board/case.py"
QUEUE_PAGE = "board/queue.py"

TIER_COLOURS = {"critical": "red", "high": "orange", "normal": "blue", "low": "gray"}
STATUS_LABELS = {
    "new": "New",
    "assigned": "Assigned",
    "replied": "Replied",
    "handed_off": "Handed off",
    "resolved": "Resolved",
    "dismissed": "Dismissed",
}


def settings() -> Settings:
    return get_settings()


@contextmanager
def db() -> Iterator[Session]:
    with session_scope() as session:
        yield session


def signed_in() -> SignedIn | None:
    value = st.session_state.get(MEMBER_KEY)
    return value if isinstance(value, SignedIn) else None


def remember(member: SignedIn) -> None:
    st.session_state[MEMBER_KEY] = member


def forget() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def refresh_member() -> SignedIn | None:
    """The signed-in member re-read from the database (a deactivated member is signed out)."""
    member = signed_in()
    if member is None:
        return None
    with db() as session:
        fresh = current_member(session, member_id=member.member_id)
    if fresh is None:
        forget()
        return None
    remember(fresh)
    return fresh


def require_member() -> SignedIn:
    member = signed_in()
    if member is None:
        st.error("Please sign in.")
        st.stop()
    assert member is not None
    return member


def open_case(case_id: int) -> None:
    st.switch_page(CASE_PAGE, query_params={"id": str(case_id)})


def tier_badge(tier: str | None) -> str:
    """Markdown for a tier badge (the tier is one of our own words, never public text)."""
    name = tier if tier in TIER_COLOURS else "normal"
    return f":{TIER_COLOURS[name]}-badge[{name}]"


def risk_badge(risk: float | None) -> str:
    value = float(risk or 0.0)
    colour = "red" if value >= 70 else "orange" if value >= 40 else "gray"
    return f":{colour}-badge[risk {value:.0f}]"


def sla_countdown(due: datetime | None, *, now: datetime | None = None) -> tuple[str, str]:
    """("12 min left" | "overdue 5 min" | "no SLA", state) with state ok | soon | overdue | none."""
    if due is None:
        return "no SLA", "none"
    left = due - (now or utcnow())
    if left < timedelta(0):
        return f"overdue {format_duration(-left)}", "overdue"
    state = "soon" if left <= timedelta(minutes=5) else "ok"
    return f"{format_duration(left)} left", state


def sla_badge(
    due: datetime | None, *, answered: datetime | None = None, now: datetime | None = None
) -> str:
    """The first-response clock: time left or overdue, or how the first answer went."""
    if answered is not None:
        late = due is not None and answered > due
        return ":orange-badge[answered late]" if late else ":green-badge[✓ answered in time]"
    text, state = sla_countdown(due, now=now)
    colour = {"overdue": "red", "soon": "orange", "ok": "green"}.get(state, "gray")
    return f":{colour}-badge[⏱ {text}]"


def priority_label(case: Case) -> str:
    # Answered and closed cases sink to the bottom of the queue; their raw priority means nothing.
    if case.status in ("new", "assigned"):
        return f"priority {case.priority:.1f}"
    return ""


def format_duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d}"
    return f"{hours // 24} d {hours % 24} h"


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def flash(message: str, *, kind: str = "success") -> None:
    """A message shown once on the next run (after st.rerun or a page switch)."""
    st.session_state["tocsin_flash"] = (kind, message)


def notice(message: str, *, kind: str = "info") -> None:
    """A message box whose text is shown as written (it may quote names, tags, handles)."""
    show = {"success": st.success, "warning": st.warning, "error": st.error}.get(kind, st.info)
    show(md_escape(message))


def show_flash() -> None:
    pending = st.session_state.pop("tocsin_flash", None)
    if pending:
        notice(pending[1], kind=pending[0])
