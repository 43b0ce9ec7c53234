"""Board fixtures: a seeded SQLite database and Streamlit's AppTest on triage_app.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from board.common import MEMBER_KEY
from storage.db import session_scope
from storage.models import TeamMember
from tests.board.factories import Seeded, seed
from triage.auth import SignedIn

APP = Path(__file__).resolve().parents[2] / "triage_app.py"
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def seeded(sqlite_url: str) -> Seeded:
    with session_scope() as session:
        return seed(session)


@pytest.fixture
def app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def signed_in_as(member_id: int) -> SignedIn:
    with session_scope() as session:
        member = session.get(TeamMember, member_id)
        assert member is not None and member.id is not None
        return SignedIn(member.id, member.name, member.email, member.role)


@pytest.fixture
def open_page(app: AppTest) -> Callable[..., AppTest]:
    """Sign a member in (as the sign-in form would) and open one of the board's pages."""

    def _open(member_id: int, page: str = "board/queue.py", **query: str) -> AppTest:
        app.session_state[MEMBER_KEY] = signed_in_as(member_id)
        app.run()
        assert not app.exception, app.exception
        if page != "board/queue.py" or query:
            app.query_params.update(query)
            app.switch_page(page)
            app.run()
        assert not app.exception, app.exception
        return app

    return _open
