"""The sign-in form: nothing else of the board runs until a team member signs in."""

from __future__ import annotations

import streamlit as st

from board import common
from triage.auth import SignInLocked, sign_in


def render() -> None:
    st.title("Tocsin · triage board")
    st.caption("Team members only. Ask a lead for an account (`tocsin board set-password`).")
    with st.form("sign_in", clear_on_submit=False):
        email = st.text_input("Email", key="sign_in_email")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    try:
        with common.db() as session:
            member = sign_in(session, email=email, password=password)
    except SignInLocked as exc:
        common.notice(f"Sign-in refused: {exc}.", kind="error")
        return
    if member is None:
        st.error("Wrong email or password.")
        return
    common.forget()
    common.remember(member)
    st.rerun()
