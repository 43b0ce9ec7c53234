"""AppTest tests for the sign-in form and the queue, team and overview pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlmodel import select
from streamlit.testing.v1 import AppTest

from board.common import MEMBER_KEY
from storage.db import session_scope
from storage.models import AuditEvent, Case, CaseStatus, ReportRun
from tests.board.factories import HOSTILE_TEXT, PASSWORDS, Seeded, shown

OpenPage = Callable[..., AppTest]


def _texts(app: AppTest) -> list[str]:
    return [t.value for t in app.text]


def _markdown(app: AppTest) -> str:
    return "\n".join(m.value for m in app.markdown)


def _shown(markdown: str) -> str:
    """Markdown as displayed: backslash escapes removed."""
    return re.sub(r"\\(.)", r"\1", markdown)


def test_signed_out_shows_only_the_sign_in_form(app: AppTest, seeded: Seeded) -> None:
    app.run()
    assert not app.exception
    assert [t.value for t in app.title] == ["Tocsin · triage board"]
    assert len(app.text_input) == 2
    assert not app.button(key="sign_out") if "sign_out" in _keys(app) else True
    assert all("flight" not in t for t in _texts(app))


def _keys(app: AppTest) -> set[str]:
    return {b.key for b in app.button if b.key}


def test_sign_in_with_the_right_password_opens_the_queue(app: AppTest, seeded: Seeded) -> None:
    app.run()
    app.text_input(key="sign_in_email").input("Sam@Example.org ")
    app.text_input(key="sign_in_password").input(PASSWORDS["sam@example.org"])
    app.button[0].click()  # the form's submit button
    app.run()
    assert not app.exception
    assert app.session_state[MEMBER_KEY].member_id == seeded.agent_id
    assert "Queue" in [t.value for t in app.title]
    assert any("cancelled" in t for t in _texts(app))
    # Sign out: back to the form, nothing of the queue left.
    app.button(key="sign_out").click().run()
    assert MEMBER_KEY not in app.session_state
    assert [t.value for t in app.title] == ["Tocsin · triage board"]


def test_sign_in_with_a_wrong_password_is_refused(app: AppTest, seeded: Seeded) -> None:
    app.run()
    app.text_input(key="sign_in_email").input("sam@example.org")
    app.text_input(key="sign_in_password").input("not-the-password")
    app.button[0].click()
    app.run()
    assert [shown(e.value) for e in app.error] == ["Wrong email or password."]
    assert MEMBER_KEY not in app.session_state
    with session_scope() as session:
        failed = session.execute(
            select(AuditEvent).where(AuditEvent.action == "auth.failed")
        ).scalars()
        assert [e.entity_id for e in failed] == [seeded.agent_id]


def test_queue_lists_cases_by_priority_with_sla_and_reasons(
    open_page: OpenPage, seeded: Seeded
) -> None:
    app = open_page(seeded.agent_id)
    rows = [t.value for t in app.text]
    assert rows[0].startswith("My flight with Acme Air was cancelled")
    assert rows[1].startswith("Acme Air lost my bag")
    assert HOSTILE_TEXT in rows  # shown as plain text, exactly as posted
    markdown = _markdown(app)
    assert "min left" in markdown
    assert ":orange-badge[high]" in markdown
    assert any("author has 25,000 followers" in _shown(c.value) for c in app.caption)


def test_claim_from_the_queue(open_page: OpenPage, seeded: Seeded) -> None:
    app = open_page(seeded.agent_id)
    top = seeded.case_ids[0]
    app.button(key=f"claim_{top}").click().run()
    assert not app.exception
    assert any(f"You hold case #{top}" in shown(s.value) for s in app.success)
    with session_scope() as session:
        case = session.get(Case, top)
        assert case is not None
        assert (case.assignee_id, case.status) == (seeded.agent_id, CaseStatus.assigned)
    assert app.button(key=f"claim_{top}").disabled


def test_claim_lost_to_another_session_names_the_holder(
    open_page: OpenPage, seeded: Seeded
) -> None:
    sam = open_page(seeded.agent_id)  # Sam's page shows the case as unclaimed
    top = seeded.case_ids[0]
    lea = AppTest.from_file(sam._script_path, default_timeout=60)
    lea.session_state[MEMBER_KEY] = sam.session_state[MEMBER_KEY].__class__(
        seeded.lead_id, "Lea Martin", "lea@example.org", "lead"
    )
    lea.run()
    lea.button(key=f"claim_{top}").click().run()
    assert any(f"You hold case #{top}" in shown(s.value) for s in lea.success)
    sam.button(key=f"claim_{top}").click().run()  # Sam clicks on his stale page
    assert any("held by Lea Martin" in shown(w.value) for w in sam.warning)
    with session_scope() as session:
        case = session.get(Case, top)
        assert case is not None and case.assignee_id == seeded.lead_id


def test_my_cases_filter(open_page: OpenPage, seeded: Seeded) -> None:
    app = open_page(seeded.agent_id)
    app.button(key=f"claim_{seeded.case_ids[1]}").click().run()
    app.toggle(key="f_mine").set_value(True).run()
    assert [t.value for t in app.text] == ["Acme Air lost my bag again, third time this year"]


def test_each_row_links_to_its_case_page(open_page: OpenPage, seeded: Seeded) -> None:
    app = open_page(seeded.agent_id)
    links = [
        (link.proto.page, link.proto.label, link.proto.query_string)
        for link in app.get("page_link")
    ]
    expected = [("case", "Open", f"id={case_id}") for case_id in seeded.case_ids]
    assert links[:3] == expected
    # Following the link opens /case?id=N.
    app.query_params["id"] = str(seeded.case_ids[0])
    app.switch_page("board/case.py").run()
    assert not app.exception
    assert any(f"Case #{seeded.case_ids[0]}" in t.value for t in app.title)


def test_team_page_shows_load_and_sla(open_page: OpenPage, seeded: Seeded) -> None:
    with session_scope() as session:
        case = session.get(Case, seeded.case_ids[0])
        assert case is not None
        case.assignee_id, case.status = seeded.agent_id, CaseStatus.assigned
    app = open_page(seeded.agent_id, "board/team.py")
    frame = app.dataframe[0].value
    sam = frame[frame["Name"] == "Sam Okafor"].iloc[0]
    assert sam["Open cases"] == 1 and bool(sam["On shift"])
    # Agents see the table, not the reassign form.
    assert not [s for s in app.selectbox if s.key == "reassign_case"]
    assert any("Leads can reassign" in c.value for c in app.caption)


def test_lead_reassigns_a_case(open_page: OpenPage, seeded: Seeded) -> None:
    app = open_page(seeded.lead_id, "board/team.py")
    target = seeded.case_ids[1]
    app.selectbox(key="reassign_case").set_value(target)
    app.selectbox(key="reassign_to").set_value(seeded.agent_id)
    app.text_input(key="reassign_reason").input("Sam knows this customer")
    app.button(key="FormSubmitter:reassign-Reassign").click().run()
    assert not app.exception
    assert any(f"Case #{target} is now with Sam Okafor" in shown(s.value) for s in app.success)
    with session_scope() as session:
        case = session.get(Case, target)
        assert case is not None and case.assignee_id == seeded.agent_id
        actions = session.execute(
            select(AuditEvent.action).where(
                AuditEvent.entity_type == "case", AuditEvent.entity_id == target
            )
        ).scalars()
        assert "case.reassigned" in list(actions)


def test_overview_renders_charts_and_reports(
    open_page: OpenPage, seeded: Seeded, tmp_path: Path
) -> None:
    html = tmp_path / "acme-2026-W47.html"
    html.write_text("<html>report</html>", encoding="utf-8")
    with session_scope() as session:
        session.add(ReportRun(brand_id=seeded.brand_id, week="2026-W47", html_path=str(html)))
        answered = session.get(Case, seeded.case_ids[0])
        assert answered is not None and answered.sla_due_at is not None
        answered.first_response_at = answered.sla_due_at - timedelta(minutes=3)
    app = open_page(seeded.agent_id, "board/overview.py")
    assert not app.exception
    subheaders = [s.value for s in app.subheader]
    assert "Volume (mentions per day)" in subheaders and "SLA compliance (first response)" in (
        subheaders
    )
    assert len(app.get("vega_lite_chart")) == 4  # volume, risk, sentiment, SLA
    assert any("2026-W47" in _shown(m.value) for m in app.markdown)
    assert app.get("download_button")


def test_queue_filters(open_page: OpenPage, seeded: Seeded) -> None:
    app = open_page(seeded.agent_id)
    app.multiselect(key="f_tier").set_value(["normal"]).run()
    assert [t.value for t in app.text] == [HOSTILE_TEXT]
    app.multiselect(key="f_tier").set_value([]).run()
    app.button(key=f"claim_{seeded.case_ids[0]}").click().run()
    app.selectbox(key="f_assignee").set_value("Unassigned").run()
    assert len(app.text) == 3 and not any("cancelled" in t.value for t in app.text)
    app.selectbox(key="f_assignee").set_value("Sam Okafor").run()
    assert app.text[0].value.startswith("My flight with Acme Air was cancelled")
    app.multiselect(key="f_status").set_value(["resolved"]).run()
    assert not app.text
    assert any("Nothing in the queue" in shown(i.value) for i in app.info)
