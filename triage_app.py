"""The triage board: `streamlit run triage_app.py` (or `tocsin board`).

Signed out, only the sign-in form runs; signed in, `st.navigation` serves the pages in board/.
A case has its own address, /case?id=N, which alerts and reports link to.
"""

from __future__ import annotations

import streamlit as st

from board import common, sign_in
from board.safe import md_escape

st.set_page_config(page_title="Tocsin board", page_icon="🔔", layout="wide")

PAGES = [
    st.Page("board/queue.py", title="Queue", icon="📥", url_path="queue", default=True),
    st.Page("board/case.py", title="Case", icon="🗂️", url_path="case"),
    st.Page("board/team.py", title="Team", icon="👥", url_path="team"),
    st.Page("board/overview.py", title="Overview", icon="📈", url_path="overview"),
]

member = common.refresh_member()
if member is None:
    # Pages stay registered (hidden) so that a link such as /case?id=7 opens after signing in.
    st.navigation(PAGES, position="hidden")
    sign_in.render()
else:
    page = st.navigation(PAGES)
    with st.sidebar:
        st.markdown(f"Signed in as **{md_escape(member.name)}** · {member.role}")
        if st.button("Sign out", key="sign_out"):
            common.forget()
            st.rerun()
    page.run()
