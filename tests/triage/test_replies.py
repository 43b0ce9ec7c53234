"""Replies: templates per language, platform length counting, handoff, approval, collision."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from storage.db import session_scope
from storage.models import Case, Mention, Reply
from storage.queries import audit_events, case_replies, case_support_tasks
from storage.types import utcnow
from tests.triage.factories import add_author, add_member, add_mention, open_case
from tocsin.config import Settings
from triage import cases, replies
from triage.errors import (
    CaseHeld,
    NotPermitted,
    ReplyCollision,
    ReplyTooLong,
    TemplateError,
)

# ----------------------------------------------------------------------------- pure rules


def test_every_builtin_template_exists_in_en_fr_es_it_and_renders() -> None:
    names = {t.name for t in replies.builtin_templates()}
    values = {"first_name": "Zoé", "agent": "Lea", "case_ref": "C-7", "handle": "@zoe"}
    for name in names:
        for lang in ("en", "fr", "es", "it"):
            template = next(
                t for t in replies.builtin_templates() if t.name == name and t.lang == lang
            )
            text = replies.render_template(template.text, values)
            assert "{" not in text and ("Zoé" in text or "Lea" in text)


def test_templates_follow_the_post_language_and_user_templates_come_first() -> None:
    settings = Settings(
        triage={  # type: ignore[arg-type]
            "templates": [
                {
                    "name": "refund",
                    "lang": "fr",
                    "text": "Bonjour {first_name}, remboursement en cours ({case_ref}).",
                    "topic": "billing",
                },
                {"name": "apology", "lang": "fr", "text": "Pardon {first_name} !"},
            ]
        }
    )
    french = replies.templates_for(settings, lang="fr-CA", topic="billing")
    assert french[0].name == "refund" and not french[0].builtin
    assert [t.text for t in french if t.name == "apology"] == ["Pardon {first_name} !"]
    assert all(t.lang == "fr" for t in french)
    assert {t.lang for t in replies.templates_for(settings, lang="pt")} == {"en"}


def test_template_variables_are_checked_and_values_are_inert() -> None:
    with pytest.raises(TemplateError, match="unknown variable"):
        replies.render_template("Hi {name}", {})
    with pytest.raises(TemplateError, match="unknown variable"):
        replies.render_template("Hi {first_name.__class__}", {})
    with pytest.raises(TemplateError, match="malformed"):
        replies.render_template("Hi {first_name", {})
    assert replies.render_template("Hi {first_name}", {"first_name": "{agent}"}) == "Hi {agent}"


@pytest.mark.parametrize(
    ("platform", "limit"),
    [("x", 280), ("bluesky", 300), ("mastodon", 500), ("reddit", 10_000), ("youtube", 10_000)],
)
def test_platform_limits(platform: str, limit: int) -> None:
    assert replies.length_limit(platform) == limit
    assert replies.check_length("a" * limit, platform) == limit
    with pytest.raises(ReplyTooLong, match=f"{limit + 1}/{limit} characters on {platform}"):
        replies.check_length("a" * (limit + 1), platform)


def test_x_counts_links_as_23_and_wide_characters_as_2() -> None:
    link = "https://example.org/a/very/long/path/that/goes/on/and/on?with=query&and=more"
    assert replies.count_length(f"see {link} now", "x") == 4 + 23 + 4
    assert replies.count_length("日本語", "x") == 6
    assert replies.count_length("ok 👍🏽", "x") == 3 + 2  # emoji with skin tone: one, weight 2
    assert replies.count_length("café", "x") == 4
    assert replies.check_length("a" * 256 + " " + link, "x") == 280
    with pytest.raises(ReplyTooLong):
        replies.check_length("a" * 257 + " " + link, "x")  # 257 + 1 + 23 = 281


def test_bluesky_counts_graphemes_and_mastodon_counts_remote_mentions_by_user() -> None:
    family = "👩\u200d👩\u200d👧"
    assert replies.count_length(family * 3, "bluesky") == 3
    assert replies.count_length("e\u0301", "bluesky") == 1
    text = "@zoe@mastodon.social see https://example.org/" + "x" * 60
    assert replies.count_length(text, "mastodon") == len("@zoe see ") + 23
    assert replies.count_length("a" * 50, "reddit") == 50


def test_dm_links_where_the_platform_has_one() -> None:
    settings = Settings(
        triage={"accounts": {"x": "1234", "reddit": "acme_help", "mastodon": "acme"}}  # type: ignore[arg-type]
    )
    assert replies.dm_link("x", settings) == "https://x.com/messages/compose?recipient_id=1234"
    assert replies.dm_link("reddit", settings) == (
        "https://www.reddit.com/message/compose/?to=acme_help"
    )
    assert replies.dm_link("mastodon", settings) is None
    assert replies.dm_link("bluesky", settings) is None


# ----------------------------------------------------------------------------- with a database


def _held_case(settings: Settings, *, platform: str = "x", lang: str = "en", **member: object):
    with session_scope() as session:
        author = add_author(session, "zoe_b", platform=platform, display_name="Zoé Bernard")
        agent = add_member(session, "Ana Lopez", **member)
        case = open_case(
            session,
            settings,
            "my parcel is lost",
            platform=platform,
            lang=lang,
            author_id=author.id,
        )
        cases.claim(session, case_id=case.id or 0, member_id=agent.id or 0)
        return case.id or 0, agent.id or 0


def _actions(case_id: int) -> list[str]:
    with session_scope() as session:
        return [e.action for e in audit_events(session, entity_type="case", entity_id=case_id)]


def test_compose_in_french_with_a_dm_invite_and_link(db_url: str) -> None:
    settings = Settings(triage={"accounts": {"x": "1234"}})  # type: ignore[arg-type]
    case_id, agent = _held_case(settings, lang="fr")
    with session_scope() as session:
        composed = replies.compose(
            session,
            case_id=case_id,
            member_id=agent,
            settings=settings,
            template="apology",
            action="dm_invite",
        )
    assert composed.text.startswith("Bonjour Zoé, désolé")
    assert "Je suis Ana" in composed.text and f"(réf. C-{case_id})" in composed.text
    assert composed.text.endswith("https://x.com/messages/compose?recipient_id=1234")
    assert composed.dm_link and composed.fits and composed.limit == 280
    assert composed.counter == f"{composed.length}/280"


def test_compose_on_mastodon_mentions_the_author(db_url: str, settings: Settings) -> None:
    case_id, agent = _held_case(settings, platform="mastodon")
    with session_scope() as session:
        composed = replies.compose(
            session,
            case_id=case_id,
            member_id=agent,
            settings=settings,
            text="Hi {first_name}, sorry!",
            action="dm_invite",
        )
    assert composed.text == (
        "@zoe_b Hi Zoé, sorry! Could you send us a private message with the details so we can"
        " sort it out?"
    )


def test_send_a_reply_with_a_dm_handoff(db_url: str, settings: Settings) -> None:
    case_id, agent = _held_case(settings)
    with session_scope() as session:
        draft = replies.create_draft(
            session, case_id=case_id, member_id=agent, text="Sorry! DM us", action="dm_invite"
        )
        ticket = replies.reserve_send(
            session, reply_id=draft.id or 0, member_id=agent, settings=settings
        )
        replies.record_published(
            session,
            reply_id=ticket.reply_id,
            external_id="99",
            external_url="https://x.com/acme/status/99",
            via="manual",
            member_id=agent,
        )
    with session_scope() as session:
        case = session.get(Case, case_id)
        reply = session.get(Reply, ticket.reply_id)
    assert case is not None and case.status == "handed_off" and case.handoff == "dm_invite"
    assert case.first_response_at is not None
    assert reply is not None and reply.status == "sent" and reply.external_id == "99"
    assert _actions(case_id)[-4:] == [
        "reply.drafted",
        "case.replied",
        "reply.sent",
        "reply.published",
    ]


def test_a_phone_callback_becomes_a_support_task(db_url: str, settings: Settings) -> None:
    case_id, agent = _held_case(settings)
    with session_scope() as session:
        composed = replies.compose(
            session,
            case_id=case_id,
            member_id=agent,
            settings=settings,
            template="apology",
            action="phone_callback",
        )
        assert "phone number" in composed.text
        draft = replies.create_draft(
            session,
            case_id=case_id,
            member_id=agent,
            text=composed.text,
            action="phone_callback",
        )
        assert case_support_tasks(session, case_id=case_id) == []  # not before it is sent
        replies.reserve_send(
            session,
            reply_id=draft.id or 0,
            member_id=agent,
            settings=settings,
            callback_note="prefers afternoons",
        )
    with session_scope() as session:
        tasks = case_support_tasks(session, case_id=case_id)
        case = session.get(Case, case_id)
    assert len(tasks) == 1 and tasks[0].kind == "phone_callback" and tasks[0].status == "open"
    assert "@zoe_b on x" in tasks[0].details and "prefers afternoons" in tasks[0].details
    assert case is not None and case.handoff == "phone_callback"
    assert "support_task.created" in _actions(case_id)


def test_a_newer_agent_needs_a_lead_to_approve(db_url: str, settings: Settings) -> None:
    case_id, agent = _held_case(settings, requires_approval=True)
    with session_scope() as session:
        lead = add_member(session, "Lea", role="lead").id or 0
        other = add_member(session, "Bob").id or 0
        draft = replies.create_draft(session, case_id=case_id, member_id=agent, text="Sorry!")
        assert [r.id for r in replies.pending_approvals(session)] == [draft.id]
        with pytest.raises(NotPermitted, match="approval"):
            replies.reserve_send(
                session, reply_id=draft.id or 0, member_id=agent, settings=settings
            )
        with pytest.raises(NotPermitted, match="lead"):
            replies.approve(session, reply_id=draft.id or 0, lead_id=other)
        replies.reject(session, reply_id=draft.id or 0, lead_id=lead, reason="be warmer")
        edited = replies.update_draft(
            session, reply_id=draft.id or 0, member_id=agent, text="So sorry, Zoé!"
        )
        assert edited.status == "draft"
        replies.approve(session, reply_id=draft.id or 0, lead_id=lead)
        assert replies.pending_approvals(session) == []
        replies.reserve_send(session, reply_id=draft.id or 0, member_id=agent, settings=settings)
    actions = _actions(case_id)
    assert (
        actions.index("reply.rejected")
        < actions.index("reply.edited")
        < actions.index("reply.approved")
        < actions.index("reply.sent")
    )


def test_collision_another_member_answered_meanwhile(db_url: str, settings: Settings) -> None:
    case_id, ana = _held_case(settings)
    with session_scope() as session:
        lead = add_member(session, "Lea", role="lead").id or 0
        mine = replies.create_draft(session, case_id=case_id, member_id=ana, text="Sorry!")
        theirs = replies.create_draft(session, case_id=case_id, member_id=lead, text="Hello!")
        replies.reserve_send(session, reply_id=theirs.id or 0, member_id=lead, settings=settings)
    with session_scope() as session:
        with pytest.raises(ReplyCollision, match="Lea already answered this post") as refused:
            replies.reserve_send(session, reply_id=mine.id or 0, member_id=ana, settings=settings)
        assert refused.value.answered_by == "Lea"
        assert session.get(Reply, mine.id).status == "draft"  # type: ignore[union-attr]


def test_collision_the_brand_account_answered_in_the_thread(db_url: str) -> None:
    settings = Settings(brands=[{"name": "Acme", "handles": ["@AcmeHelp"]}])  # type: ignore[list-item]
    case_id, ana = _held_case(settings)
    with session_scope() as session:
        draft = replies.create_draft(session, case_id=case_id, member_id=ana, text="Sorry!")
        case = session.get(Case, case_id)
        post = session.get(Mention, case.mention_id)  # type: ignore[union-attr]
        assert post is not None
        brand = add_author(session, "acmehelp")
        add_mention(
            session,
            "We're on it!",
            author=brand,
            parent_external_id=post.external_id,
            thread_external_id=post.external_id,
            created_at=utcnow() + timedelta(seconds=5),
        )
    with session_scope() as session, pytest.raises(ReplyCollision, match="@acmehelp already"):
        replies.reserve_send(session, reply_id=draft.id or 0, member_id=ana, settings=settings)


def test_two_senders_at_once_only_one_reply_goes_out(db_url: str, settings: Settings) -> None:
    case_id, ana = _held_case(settings)
    with session_scope() as session:
        lead = add_member(session, "Lea", role="lead").id or 0
        drafts = {
            ana: replies.create_draft(session, case_id=case_id, member_id=ana, text="A").id,
            lead: replies.create_draft(session, case_id=case_id, member_id=lead, text="B").id,
        }
    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def send(member: int) -> None:
        barrier.wait()
        try:
            with session_scope() as session:
                replies.reserve_send(
                    session, reply_id=drafts[member] or 0, member_id=member, settings=settings
                )
            outcomes[member] = "sent"
        except Exception as exc:  # the loser's error is what we check
            outcomes[member] = type(exc).__name__

    threads = [threading.Thread(target=send, args=(m,)) for m in drafts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) in (
        ["CaseChanged", "sent"],
        ["ReplyCollision", "sent"],
        ["CaseHeld", "sent"],
    )
    with session_scope() as session:
        sent = [r for r in case_replies(session, case_id=case_id) if r.status == "sent"]
    assert len(sent) == 1


def test_only_the_holder_answers(db_url: str, settings: Settings) -> None:
    case_id, _ = _held_case(settings)
    with session_scope() as session:
        bob = add_member(session, "Bob").id or 0
        with pytest.raises(CaseHeld, match="held by Ana Lopez"):
            replies.create_draft(session, case_id=case_id, member_id=bob, text="hi")
    with session_scope() as session:
        fresh = open_case(session, settings, "another one")
        with pytest.raises(NotPermitted, match="claim"):
            replies.create_draft(session, case_id=fresh.id or 0, member_id=bob, text="hi")


def test_undo_send_restores_the_case(db_url: str, settings: Settings) -> None:
    case_id, ana = _held_case(settings)
    with session_scope() as session:
        draft = replies.create_draft(
            session, case_id=case_id, member_id=ana, text="call?", action="phone_callback"
        )
        ticket = replies.reserve_send(
            session, reply_id=draft.id or 0, member_id=ana, settings=settings
        )
    with session_scope() as session:
        replies.undo_send(session, ticket=ticket, error="HTTP 503")
    with session_scope() as session:
        case = session.get(Case, case_id)
        reply = session.get(Reply, draft.id)
        tasks = case_support_tasks(session, case_id=case_id)
    assert case is not None and case.status == "assigned" and case.first_response_at is None
    assert reply is not None and reply.status == "draft" and reply.sent_at is None
    assert [t.status for t in tasks] == ["cancelled"]
    assert _actions(case_id)[-2:] == ["case.reply_undone", "reply.send_failed"]
