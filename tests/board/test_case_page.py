"""AppTest tests for the case page: the post, the author, claim/release/resolve/dismiss, notes,
score corrections, and public text shown as plain text."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlmodel import col, select
from streamlit.testing.v1 import AppTest

from storage.db import session_scope
from storage.models import AuditEvent, Case, CaseNote, CaseStatus, CaseView, Feedback, Mention
from tests.board.factories import HOSTILE_TEXT, Seeded, add_scored_case, shown

OpenPage = Callable[..., AppTest]
CASE = "board/case.py"


def _shown(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)


def _open(open_page: OpenPage, member_id: int, case_id: int) -> AppTest:
    return open_page(member_id, CASE, id=str(case_id))


def test_case_page_shows_post_author_scores_and_thread(open_page: OpenPage, seeded: Seeded) -> None:
    case_id = seeded.case_ids[0]
    with session_scope() as session:
        mention = session.get(Mention, seeded.mention_ids[0])
        assert mention is not None
        # The same author complained before, and someone answered in the thread.
        add_scored_case(
            session, n=20, brand_id=seeded.brand_id, text="older", author_id=mention.author_id
        )
        session.add(
            Mention(
                platform="mastodon",
                external_id="reply-1",
                text="Same here <i>today</i>",
                clean_text="Same here today",
                thread_external_id=mention.thread_external_id,
                parent_external_id=mention.external_id,
            )
        )
    app = _open(open_page, seeded.agent_id, case_id)
    assert [t.value for t in app.title] == [f"Case #{case_id}"]
    texts = [t.value for t in app.text]
    assert texts[0].startswith("My flight with Acme Air was cancelled")
    assert "Same here today" in texts  # the thread
    assert "Jo Traveller" in texts and "Frequent flyer" in texts
    captions = " ".join(_shown(c.value) for c in app.caption)
    assert "25,000 followers" in captions and "verified" in captions
    assert "1 earlier case(s) with this author" in captions
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Sentiment"] == "negative" and metrics["Buzz risk"] == "55"
    assert any("complaint, severity 3" in _shown(m.value) for m in app.markdown)
    with session_scope() as session:
        views = list(session.execute(select(CaseView)).scalars())
        assert [(v.case_id, v.member_id) for v in views] == [(case_id, seeded.agent_id)]


def test_viewer_is_shown_to_the_other_agent(open_page: OpenPage, seeded: Seeded) -> None:
    _open(open_page, seeded.lead_id, seeded.case_ids[0])
    app = _open(open_page, seeded.agent_id, seeded.case_ids[0])
    assert any("Also viewing now: Lea Martin" in shown(i.value) for i in app.info)


def test_claim_release_and_resolve(open_page: OpenPage, seeded: Seeded) -> None:
    case_id = seeded.case_ids[0]
    app = _open(open_page, seeded.agent_id, case_id)
    app.button(key="case_claim").click().run()
    assert any(f"You hold case #{case_id}" in shown(s.value) for s in app.success)
    assert app.button(key="case_claim").disabled
    app.button(key="case_release").click().run()
    assert any("back in the queue" in shown(s.value) for s in app.success)
    app.button(key="case_claim").click().run()
    app.text_input(key="resolve_note").input("Rebooked on the evening flight")
    app.button(key="case_resolve").click().run()
    assert not app.exception
    assert any("resolved" in shown(s.value) for s in app.success)
    with session_scope() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.status == CaseStatus.resolved
        notes = list(session.execute(select(CaseNote.text)).scalars())
        assert notes == ["Rebooked on the evening flight"]
        actions = list(
            session.execute(
                select(AuditEvent.action)
                .where(AuditEvent.entity_type == "case", AuditEvent.entity_id == case_id)
                .order_by(col(AuditEvent.id))
            ).scalars()
        )
    assert actions == ["case.claimed", "case.released", "case.claimed", "case.resolved"]
    # The history table lists them.
    history = app.dataframe[-1].value
    assert list(history["What"]) == actions


def test_dismiss_needs_a_reason(open_page: OpenPage, seeded: Seeded) -> None:
    case_id = seeded.case_ids[2]
    app = _open(open_page, seeded.agent_id, case_id)
    app.button(key="case_dismiss").click().run()
    assert any("say why" in shown(e.value) for e in app.error)
    app.text_input(key="dismiss_reason").input("spam")
    app.button(key="case_dismiss").click().run()
    with session_scope() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.status == CaseStatus.dismissed
    assert app.button(key="case_reopen")


def test_case_held_by_someone_else(open_page: OpenPage, seeded: Seeded) -> None:
    case_id = seeded.case_ids[0]
    with session_scope() as session:
        case = session.get(Case, case_id)
        assert case is not None
        case.assignee_id, case.status = seeded.lead_id, CaseStatus.assigned
    app = _open(open_page, seeded.agent_id, case_id)
    assert any("Lea Martin holds this case" in shown(w.value) for w in app.warning)
    assert app.button(key="case_release").disabled
    app.button(key="case_claim").click().run()
    assert any("held by Lea Martin" in shown(w.value) for w in app.warning)


def test_add_a_note(open_page: OpenPage, seeded: Seeded) -> None:
    app = _open(open_page, seeded.agent_id, seeded.case_ids[1])
    app.text_area(key="note_text").input("Customer called the hotline too. **not bold**")
    app.button(key="FormSubmitter:add_note-Add note").click().run()
    assert not app.exception
    assert "Customer called the hotline too. **not bold**" in [t.value for t in app.text]


def test_correct_a_score(open_page: OpenPage, seeded: Seeded) -> None:
    case_id = seeded.case_ids[0]
    app = _open(open_page, seeded.agent_id, case_id)
    app.selectbox(key="fix_field").set_value("urgency").run()
    assert app.selectbox(key="fix_value").options == ["low", "normal", "critical"]
    app.selectbox(key="fix_value").set_value("critical")
    app.button(key="fix_save").click().run()
    assert not app.exception
    assert any("urgency recorded as critical" in shown(s.value) for s in app.success)
    with session_scope() as session:
        rows = list(session.execute(select(Feedback)).scalars())
    assert [(f.mention_id, f.field, f.old_value, f.new_value, f.model_version) for f in rows] == [
        (seeded.mention_ids[0], "urgency", "high", "critical", "test-1")
    ]
    assert rows[0].member_id == seeded.agent_id


def test_public_text_is_never_interpreted(open_page: OpenPage, seeded: Seeded) -> None:
    app = _open(open_page, seeded.agent_id, seeded.hostile_case_id)
    texts = [t.value for t in app.text]
    assert HOSTILE_TEXT in texts
    assert "<b>Mallory</b> **bold**" in texts
    assert "<script>alert('bio')</script> _italic_" in texts
    # Wherever public text sits inside Markdown it is escaped (no live tag, link or directive).
    for block in [m.value for m in app.markdown] + [c.value for c in app.caption]:
        assert "<script" not in block and "<b>" not in block and "](" not in block


def test_unknown_or_missing_case_id(open_page: OpenPage, seeded: Seeded) -> None:
    app = _open(open_page, seeded.agent_id, 9999)
    assert [shown(e.value) for e in app.error] == ["There is no case #9999."]
    app.query_params["id"] = "not-a-number"
    app.run()
    assert not app.exception
    assert any("Open a case from the queue" in shown(i.value) for i in app.info)


def test_tag_a_case(open_page: OpenPage, seeded: Seeded) -> None:
    case_id = seeded.case_ids[0]
    app = _open(open_page, seeded.agent_id, case_id)
    app.multiselect(key=f"tags_{case_id}").set_value(["Lost Baggage", "press"]).run()
    assert not app.exception
    with session_scope() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.tags == ["lost-baggage", "press"]
    app.run()
    assert app.multiselect(key=f"tags_{case_id}").value == ["lost-baggage", "press"]
    app.multiselect(key=f"tags_{case_id}").set_value(["press"]).run()
    with session_scope() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.tags == ["press"]
