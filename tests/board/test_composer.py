"""AppTest tests for the reply composer: template, DM handoff, preview and counter, sending
(manual path), approval by a lead, and the send-time collision check."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlmodel import col, select
from streamlit.testing.v1 import AppTest

from storage.db import session_scope
from storage.models import Case, CaseStatus, Reply, SupportTask, TeamMember
from tests.board.factories import Seeded, shown
from tocsin.config import get_settings

OpenPage = Callable[..., AppTest]
CASE = "board/case.py"


def _hold(case_id: int, member_id: int) -> None:
    with session_scope() as session:
        case = session.get(Case, case_id)
        assert case is not None
        case.assignee_id, case.status = member_id, CaseStatus.assigned


def _open_case(open_page: OpenPage, member_id: int, case_id: int) -> AppTest:
    return open_page(member_id, CASE, id=str(case_id))


def _write(app: AppTest, case_id: int, *, template: str, handoff: str) -> None:
    app.selectbox(key=f"reply_template_{case_id}").set_value(template).run()
    app.radio(key=f"reply_handoff_{case_id}").set_value(handoff).run()


def test_compose_and_send_a_reply_with_a_dm_handoff(open_page: OpenPage, seeded: Seeded) -> None:
    case_id = seeded.case_ids[0]
    _hold(case_id, seeded.agent_id)
    app = _open_case(open_page, seeded.agent_id, case_id)
    _write(app, case_id, template="apology", handoff="dm_invite")
    assert not app.exception
    body = app.text_area(key=f"reply_body_{case_id}").value
    assert body is not None and body.startswith(
        "Hi {first_name}"
    )  # the template, variables still visible
    preview = [t.value for t in app.text if t.value.startswith("@traveller0")]
    assert len(preview) == 1
    text = preview[0]
    assert "Hi Jo, I'm sorry" in text and "I'm Sam" in text and "C-1" in text
    assert "private message" in text  # the DM handoff sentence
    assert any("/500 characters on mastodon" in c.value for c in app.caption)
    app.button(key=f"reply_send_{case_id}").click().run()
    assert not app.exception
    # Tocsin cannot post to this test platform: copy, open the post, confirm.
    assert [c.value for c in app.code] == [text]
    app.text_input(key=f"reply_posted_url_{case_id}").input("https://social.example.org/@acme/9")
    app.button(key=f"reply_confirm_{case_id}").click().run()
    assert not app.exception
    assert any("Reply sent" in shown(s.value) for s in app.success)
    with session_scope() as session:
        sent = list(session.execute(select(Reply)).scalars())
        case = session.get(Case, case_id)
    assert [(r.action, r.status, r.text, r.external_url) for r in sent] == [
        ("dm_invite", "sent", text, "https://social.example.org/@acme/9")
    ]
    assert case is not None and case.first_response_at is not None
    assert case.status in (CaseStatus.replied, CaseStatus.handed_off)
    assert text in [t.value for t in app.text]  # now in the case's replies
    assert app.text_area(key=f"reply_body_{case_id}").value == ""  # ready for the next one


def test_phone_callback_becomes_a_support_task(open_page: OpenPage, seeded: Seeded) -> None:
    case_id = seeded.case_ids[1]
    _hold(case_id, seeded.agent_id)
    app = _open_case(open_page, seeded.agent_id, case_id)
    _write(app, case_id, template="looking_into_it", handoff="phone_callback")
    app.text_input(key=f"reply_callback_note_{case_id}").input("Prefers mornings").run()
    app.button(key=f"reply_send_{case_id}").click().run()
    app.button(key=f"reply_confirm_{case_id}").click().run()
    assert not app.exception
    with session_scope() as session:
        tasks = list(session.execute(select(SupportTask)).scalars())
    assert len(tasks) == 1 and "Prefers mornings" in tasks[0].details


def test_over_long_reply_cannot_be_sent(open_page: OpenPage, seeded: Seeded) -> None:
    case_id = seeded.case_ids[0]
    _hold(case_id, seeded.agent_id)
    app = _open_case(open_page, seeded.agent_id, case_id)
    app.text_area(key=f"reply_body_{case_id}").input("word " * 150).run()
    assert any("shorten it by" in shown(e.value) for e in app.error)
    assert app.button(key=f"reply_send_{case_id}").disabled


def test_draft_of_a_new_agent_waits_for_a_lead(open_page: OpenPage, seeded: Seeded) -> None:
    case_id = seeded.case_ids[0]
    with session_scope() as session:
        sam = session.get(TeamMember, seeded.agent_id)
        assert sam is not None
        sam.requires_approval = True
    _hold(case_id, seeded.agent_id)
    app = _open_case(open_page, seeded.agent_id, case_id)
    _write(app, case_id, template="apology", handoff="dm_invite")
    send = app.button(key=f"reply_send_{case_id}")
    assert send.label == "Submit for approval"
    send.click().run()
    assert any("a lead approves it" in shown(s.value) for s in app.success)
    with session_scope() as session:
        draft = session.execute(select(Reply)).scalars().one()
    assert draft.status == "draft"
    # The lead approves it from the case page ...
    lead = _open_case(open_page, seeded.lead_id, case_id)
    lead.button(key=f"approve_{draft.id}").click().run()
    assert any("Reply approved" in shown(s.value) for s in lead.success)
    # ... and Sam sends it.
    sam_app = _open_case(open_page, seeded.agent_id, case_id)
    sam_app.button(key=f"send_draft_{draft.id}").click().run()
    sam_app.button(key=f"reply_confirm_{case_id}").click().run()
    with session_scope() as session:
        sent = session.execute(select(Reply)).scalars().one()
    assert (sent.status, sent.approved_by_id) == ("sent", seeded.lead_id)


def test_send_refused_when_someone_answered_meanwhile(open_page: OpenPage, seeded: Seeded) -> None:
    case_id = seeded.case_ids[0]
    _hold(case_id, seeded.agent_id)
    app = _open_case(open_page, seeded.agent_id, case_id)
    _write(app, case_id, template="apology", handoff="dm_invite")
    # Meanwhile Lea (a lead) answers the same post from her own session.
    with session_scope() as session:
        session.add(
            Reply(
                case_id=case_id,
                member_id=seeded.lead_id,
                text="Hi Jo, Lea here, DM us please.",
                action="dm_invite",
                status="sent",
                sent_at=session.get(Case, case_id).updated_at,  # type: ignore[union-attr]
            )
        )
    app.button(key=f"reply_send_{case_id}").click().run()
    assert any("Lea Martin already answered" in shown(e.value) for e in app.error)
    assert not app.code  # nothing offered for posting
    with session_scope() as session:
        mine = list(
            session.execute(select(Reply).where(col(Reply.member_id) == seeded.agent_id)).scalars()
        )
    assert [r.status for r in mine] == ["draft"]  # kept, not sent


class _Mastodon(BaseHTTPRequestHandler):
    """A Mastodon instance that records what the board posts."""

    posted: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:  # the post lives on another instance: looked up first
        self._answer({"statuses": [{"id": "777"}]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        _Mastodon.posted.append({"auth": self.headers.get("Authorization"), **body})
        self._answer({"id": "9001", "url": "http://127.0.0.1/@acme/9001"})

    def _answer(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def mastodon(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Mastodon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    Path(os.environ["TOCSIN_CONFIG"]).write_text(
        f'[triage.publish.mastodon]\nbase_url = "{base}"\n', encoding="utf-8"
    )
    monkeypatch.setenv("TOCSIN_MASTODON_TOKEN", "test-token")
    get_settings.cache_clear()
    _Mastodon.posted.clear()
    try:
        yield base
    finally:
        server.shutdown()
        get_settings.cache_clear()


def test_reply_posted_through_the_platform_api(
    open_page: OpenPage, seeded: Seeded, mastodon: str
) -> None:
    case_id = seeded.case_ids[0]
    _hold(case_id, seeded.agent_id)
    app = _open_case(open_page, seeded.agent_id, case_id)
    _write(app, case_id, template="apology", handoff="dm_invite")
    app.button(key=f"reply_send_{case_id}").click().run()
    assert not app.exception
    assert any("Reply posted on mastodon" in shown(s.value) for s in app.success)
    assert not app.code  # no manual step
    assert len(_Mastodon.posted) == 1
    posted = _Mastodon.posted[0]
    assert posted["auth"] == "Bearer test-token" and posted["in_reply_to_id"] == "777"
    with session_scope() as session:
        reply = session.execute(select(Reply)).scalars().one()
    assert (reply.status, reply.external_id, reply.text) == ("sent", "9001", posted["status"])


def test_leads_see_drafts_waiting_for_approval_in_the_queue(
    open_page: OpenPage, seeded: Seeded
) -> None:
    case_id = seeded.case_ids[1]
    with session_scope() as session:
        sam = session.get(TeamMember, seeded.agent_id)
        assert sam is not None
        sam.requires_approval = True
        session.add(
            Reply(case_id=case_id, member_id=seeded.agent_id, text="Hi Jo, DM us", status="draft")
        )
    lead = open_page(seeded.lead_id)
    links = [(shown(p.proto.label), p.proto.query_string) for p in lead.get("page_link")]
    assert (f"Case #{case_id} · Hi Jo, DM us", f"id={case_id}") in links
    agent = AppTest.from_file(lead._script_path, default_timeout=60)
    agent.session_state["tocsin_member"] = lead.session_state["tocsin_member"].__class__(
        seeded.agent_id, "Sam Okafor", "sam@example.org", "agent"
    )
    agent.run()
    assert not [p for p in agent.get("page_link") if "Hi Jo" in p.proto.label]
