"""Replies: templates, platform length limits, the handoff, drafts, approval, send-time checks.

A reply is composed from a template (a macro) in the post's language, filled with variables
({first_name} {handle} {agent} {case_ref} {brand} {dm_link}), and ends with the handoff chosen
with it: `public_reply` (none), `dm_invite` (continue in private, with the platform's DM link
where one exists) or `phone_callback` (we call the customer back: a SupportTask for support is
created when the reply is sent). Its length is counted the way the platform counts it (URLs as
23 on X and Mastodon, graphemes on Bluesky, ...) and refused over the platform's limit.

Flow: `create_draft` → (`approve` by a lead when the author `requires_approval`, or `reject`) →
`reserve_send` (the send-time checks: the sender holds the case, nobody else answered meanwhile,
through Tocsin or from the brand's account in the thread; then the reply is recorded as sent, the
case moves to replied/handed_off, first_response_at is set) → `record_published` with the
platform's id/url, or `undo_send` when the platform refused it. `triage.publish` runs these steps
around the API call; the manual path ("copy and open the post") calls `reserve_send` when the
agent confirms the post went out. Every step is audited on the case.

Public functions: `builtin_templates()`, `templates_for(settings, *, lang, topic=None)`,
`render_template(...)`, `compose(...) -> ComposedReply`, `count_length(text, platform)`,
`length_limit(platform)`, `check_length(text, platform)`, `dm_link(platform, settings)`,
`case_reference(case_id)`, `create_draft`, `update_draft`, `approve`, `reject`, `check_can_send`,
`check_no_collision`, `reserve_send`, `record_published`, `undo_send`, `pending_approvals`.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import regex
from sqlmodel import Session

from storage import queries
from storage.models import (
    Author,
    Case,
    Mention,
    Reply,
    ReplyAction,
    ReplyStatus,
    SupportTask,
    TeamMember,
)
from storage.types import utcnow
from tocsin.config import Settings
from triage import cases
from triage.errors import (
    CaseHeld,
    InvalidTransition,
    NotPermitted,
    ReplyCollision,
    ReplyTooLong,
    TemplateError,
    TriageError,
)

# ----------------------------------------------------------------------------- length limits

# Characters allowed in one public reply, as each platform counts them.
LENGTH_LIMITS: dict[str, int] = {
    "x": 280,
    "twitter": 280,
    "bluesky": 300,
    "mastodon": 500,
    "threads": 500,
    "reddit": 10_000,
    "youtube": 10_000,
    "facebook": 8_000,
    "instagram": 2_200,
    "linkedin": 1_250,
    "discourse": 32_000,
    "googleplay": 350,
    "appstore": 5_970,
    "trustpilot": 2_048,
}
DEFAULT_LIMIT = 5_000
URL_WEIGHT = 23  # X and Mastodon count every link as 23 characters
_URL = regex.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
_MASTODON_MENTION = regex.compile(r"(?<![\w@])(@[A-Za-z0-9_]+)@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_GRAPHEME = regex.compile(r"\X")
# twitter-text v3: these code points weigh 1, every other one 2 (CJK, emoji, ...).
_X_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def length_limit(platform: str | None) -> int:
    return LENGTH_LIMITS.get((platform or "").lower(), DEFAULT_LIMIT)


def _x_weight(grapheme: str) -> int:
    if len(grapheme) > 1 and any(unicodedata.category(c) == "So" for c in grapheme):
        return 2  # an emoji sequence (skin tone, ZWJ family, flag) counts once, as 2
    first = ord(grapheme[0])
    light = any(low <= first <= high for low, high in _X_LIGHT_RANGES)
    return 1 if light else 2


def count_length(text: str, platform: str | None) -> int:
    """The length the platform will count for `text`."""
    name = (platform or "").lower()
    text = unicodedata.normalize("NFC", text)
    if name in ("x", "twitter"):
        total, last = 0, 0
        for match in _URL.finditer(text):
            total += sum(_x_weight(g) for g in _GRAPHEME.findall(text[last : match.start()]))
            total += URL_WEIGHT
            last = match.end()
        return total + sum(_x_weight(g) for g in _GRAPHEME.findall(text[last:]))
    if name == "mastodon":
        # Links count as 23 and remote mentions only by their local part (@user).
        text = _MASTODON_MENTION.sub(r"\1", text)
        text = _URL.sub("x" * URL_WEIGHT, text)
        return len(_GRAPHEME.findall(text))
    if name in ("bluesky", "threads", "instagram"):
        return len(_GRAPHEME.findall(text))
    return len(text)


def check_length(text: str, platform: str | None) -> int:
    """The counted length, or `ReplyTooLong` saying by how much to shorten."""
    used, limit = count_length(text, platform), length_limit(platform)
    if used > limit:
        raise ReplyTooLong(
            f"the reply is {used}/{limit} characters on {platform or 'this platform'}: "
            f"shorten it by {used - limit}"
        )
    return used


# ----------------------------------------------------------------------------- templates


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    lang: str
    text: str
    topic: str | None = None
    builtin: bool = True


VARIABLES = ("first_name", "handle", "agent", "case_ref", "brand", "dm_link")

_BUILTIN: dict[str, dict[str, str]] = {
    "apology": {
        "en": "Hi {first_name}, I'm sorry about this, it's not the experience we want for you."
        " I'm {agent} and I'll look into it personally (ref. {case_ref}).",
        "fr": "Bonjour {first_name}, désolé pour ce désagrément, ce n'est pas ce que nous"
        " voulons pour vous. Je suis {agent} et je m'en occupe personnellement (réf. {case_ref}).",
        "es": "Hola {first_name}, lamentamos mucho lo ocurrido, no es la experiencia que"
        " queremos para ti. Soy {agent} y me encargo personalmente (ref. {case_ref}).",
        "it": "Ciao {first_name}, ci dispiace davvero, non è l'esperienza che vogliamo per te."
        " Sono {agent} e me ne occupo personalmente (rif. {case_ref}).",
        "de": "Hallo {first_name}, das tut uns leid, so soll es nicht sein. Ich bin {agent}"
        " und kümmere mich persönlich darum (Ref. {case_ref}).",
    },
    "looking_into_it": {
        "en": "Thanks for flagging this, {first_name}. We're checking it now and will come back"
        " to you shortly. ^{agent}",
        "fr": "Merci de nous l'avoir signalé, {first_name}. Nous vérifions tout de suite et"
        " revenons vers vous rapidement. ^{agent}",
        "es": "Gracias por avisarnos, {first_name}. Lo estamos revisando y te respondemos"
        " enseguida. ^{agent}",
        "it": "Grazie per la segnalazione, {first_name}. Stiamo verificando e ti rispondiamo"
        " a breve. ^{agent}",
        "de": "Danke für den Hinweis, {first_name}. Wir prüfen das gerade und melden uns gleich."
        " ^{agent}",
    },
    "known_issue": {
        "en": "Hi {first_name}, we know about this issue and our teams are on it. Sorry for"
        " the trouble, we'll keep you posted. ^{agent}",
        "fr": "Bonjour {first_name}, nous avons identifié ce problème et nos équipes sont"
        " dessus. Désolés pour la gêne, nous vous tenons informé. ^{agent}",
        "es": "Hola {first_name}, conocemos la incidencia y nuestros equipos ya trabajan en"
        " ella. Perdona las molestias, te mantenemos informado. ^{agent}",
        "it": "Ciao {first_name}, conosciamo il problema e i nostri team ci stanno lavorando."
        " Scusa per il disagio, ti terremo aggiornato. ^{agent}",
        "de": "Hallo {first_name}, das Problem ist bekannt und unsere Teams arbeiten daran."
        " Entschuldige die Umstände, wir halten dich auf dem Laufenden. ^{agent}",
    },
    "thanks": {
        "en": "Thank you so much, {first_name}! This made our day. ^{agent}",
        "fr": "Merci beaucoup {first_name} ! Ça nous fait très plaisir. ^{agent}",
        "es": "¡Muchas gracias, {first_name}! Nos alegra mucho leerte. ^{agent}",
        "it": "Grazie mille, {first_name}! Ci fa davvero piacere. ^{agent}",
        "de": "Vielen Dank, {first_name}! Das freut uns sehr. ^{agent}",
    },
}

_HANDOFF: dict[str, dict[str, str]] = {
    "dm_link": {
        "en": "Could you send us a DM with the details so we can sort it out? {dm_link}",
        "fr": "Pouvez-vous nous écrire en message privé avec les détails ? {dm_link}",
        "es": "¿Nos escribes por mensaje privado con los detalles para resolverlo? {dm_link}",
        "it": "Ci scrivi in privato con i dettagli così risolviamo? {dm_link}",
        "de": "Schreib uns bitte eine Direktnachricht mit den Details: {dm_link}",
    },
    "dm": {
        "en": "Could you send us a private message with the details so we can sort it out?",
        "fr": "Pouvez-vous nous écrire en message privé avec les détails pour qu'on règle ça ?",
        "es": "¿Nos escribes por mensaje privado con los detalles para resolverlo?",
        "it": "Ci scrivi un messaggio privato con i dettagli così risolviamo?",
        "de": "Schreib uns bitte eine private Nachricht mit den Details, dann klären wir das.",
    },
    "phone_callback": {
        "en": "We'd like to call you to fix this: send us your phone number and a good time"
        " in a private message (ref. {case_ref}).",
        "fr": "Nous souhaitons vous rappeler : envoyez-nous votre numéro et un créneau en"
        " message privé (réf. {case_ref}).",
        "es": "Queremos llamarte para resolverlo: envíanos tu teléfono y una hora por mensaje"
        " privado (ref. {case_ref}).",
        "it": "Vorremmo richiamarti: mandaci il tuo numero e un orario in privato"
        " (rif. {case_ref}).",
        "de": "Wir rufen dich gern zurück: schick uns deine Nummer und eine passende Uhrzeit"
        " per Direktnachricht (Ref. {case_ref}).",
    },
}

# Where the platform has a link that opens a private conversation with an account.
DM_LINK_PATTERNS: dict[str, str] = {
    "x": "https://x.com/messages/compose?recipient_id={account}",
    "twitter": "https://x.com/messages/compose?recipient_id={account}",
    "reddit": "https://www.reddit.com/message/compose/?to={account}",
    "facebook": "https://m.me/{account}",
    "instagram": "https://ig.me/m/{account}",
}


def builtin_templates() -> list[Template]:
    return [
        Template(name, lang, text)
        for name, texts in _BUILTIN.items()
        for lang, text in texts.items()
    ]


def _lang(lang: str | None) -> str:
    return (lang or "en").replace("_", "-").split("-")[0].lower() or "en"


def templates_for(
    settings: Settings, *, lang: str | None, topic: str | None = None
) -> list[Template]:
    """Templates in the post's language (English when none exist in it): the team's own first
    (those for the case's topic leading), then the built-in ones."""
    wanted = _lang(lang)
    own = [
        Template(t.name, _lang(t.lang), t.text, t.topic, builtin=False)
        for t in settings.triage.templates
    ]
    pool = own + builtin_templates()
    chosen = [t for t in pool if t.lang == wanted] or [t for t in pool if t.lang == "en"]
    overridden = {t.name for t in chosen if not t.builtin}
    chosen = [t for t in chosen if not t.builtin or t.name not in overridden]
    return sorted(chosen, key=lambda t: (t.builtin, topic is None or t.topic != topic))


def template_by_name(settings: Settings, *, name: str, lang: str | None) -> Template:
    for template in templates_for(settings, lang=lang):
        if template.name == name:
            return template
    raise TemplateError(f"no template named {name!r}")


def _fields(text: str) -> list[str]:
    try:
        return [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise TemplateError(f"template is malformed ({exc}); write braces as {{{{ }}}}") from None


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Fill a template; unknown variables and formatting tricks are refused."""
    for name in _fields(text):
        if name not in VARIABLES:
            allowed = ", ".join("{" + v + "}" for v in VARIABLES)
            raise TemplateError(f"unknown variable {{{name}}} in template; use {allowed}")
    filled = {v: str(values.get(v, "")) for v in VARIABLES}
    # format_map never re-reads substituted values, so braces in a customer's name are harmless.
    return " ".join(text.format_map(filled).split())


def case_reference(case_id: int) -> str:
    return f"C-{case_id}"


def handle_for(platform: str | None, handle: str) -> str:
    clean = handle.lstrip("@")
    if (platform or "").lower() == "reddit":
        return f"u/{clean}"
    return f"@{clean}"


def first_name(author: Author | None) -> str:
    """The first word of the display name when it looks like a name, else the handle."""
    if author is None:
        return ""
    if author.display_name:
        word = author.display_name.strip().split()[0] if author.display_name.strip() else ""
        if word and all(c.isalpha() or c in "-'." for c in word):
            return word
    return handle_for(author.platform, author.handle)


def dm_link(platform: str | None, settings: Settings) -> str | None:
    """The link that opens a DM with the brand's account, when the platform has one."""
    name = (platform or "").lower()
    account = settings.triage.accounts.get(name)
    if not account:
        return None
    if account.startswith(("https://", "http://")):
        return account
    pattern = DM_LINK_PATTERNS.get(name)
    return pattern.format(account=account.lstrip("@")) if pattern else None


@dataclass(slots=True)
class ComposedReply:
    text: str
    length: int
    limit: int
    action: str
    dm_link: str | None

    @property
    def fits(self) -> bool:
        return self.length <= self.limit

    @property
    def counter(self) -> str:
        return f"{self.length}/{self.limit}"


def variables_for(
    session: Session, *, case: Case, agent: TeamMember, settings: Settings
) -> dict[str, str]:
    mention = session.get(Mention, case.mention_id) if case.mention_id else None
    author = session.get(Author, mention.author_id) if mention and mention.author_id else None
    brand = settings.brands[0].name if settings.brands else ""
    if case.brand_id is not None:
        found = next((b for b in queries.brands(session) if b.id == case.brand_id), None)
        brand = found.name if found else brand
    return {
        "first_name": first_name(author),
        "handle": handle_for(case.platform, author.handle) if author else "",
        "agent": agent.name.split()[0] if agent.name.strip() else agent.name,
        "case_ref": case_reference(case.id or 0),
        "brand": brand,
        "dm_link": dm_link(case.platform, settings) or "",
    }


def compose(
    session: Session,
    *,
    case_id: int,
    member_id: int,
    settings: Settings,
    action: str = ReplyAction.public_reply.value,
    template: str | None = None,
    text: str | None = None,
) -> ComposedReply:
    """The reply as it will be posted: a template (by name) or the agent's own text, filled,
    with the handoff sentence appended, and its length as the platform counts it.

    Does not refuse an over-long text (the composer shows the counter); drafts and sends do.
    """
    if action not in {a.value for a in ReplyAction}:
        raise TriageError(f"unknown reply action {action!r}")
    case = cases.get_case(session, case_id)
    agent = cases.get_member(session, member_id)
    values = variables_for(session, case=case, agent=agent, settings=settings)
    lang = _lang(case.lang)
    if template is not None:
        body = render_template(template_by_name(settings, name=template, lang=lang).text, values)
    else:
        body = render_template(text or "", values)
    handoff = _handoff_sentence(action, lang, values)
    full = " ".join(part for part in (body, handoff) if part)
    if (case.platform or "").lower() == "mastodon" and values["handle"]:
        # A Mastodon reply only reaches the author when it mentions them.
        mention = session.get(Mention, case.mention_id) if case.mention_id else None
        account = _mastodon_account(mention) or values["handle"]
        if account.lower() not in full.lower():
            full = f"{account} {full}"
    link = values["dm_link"] or None
    return ComposedReply(
        full, count_length(full, case.platform), length_limit(case.platform), action, link
    )


def _mastodon_account(mention: Mention | None) -> str | None:
    raw = mention.raw if mention and isinstance(mention.raw, dict) else {}
    account = raw.get("account") if isinstance(raw.get("account"), dict) else None
    acct = account.get("acct") if account else None
    return f"@{acct}" if isinstance(acct, str) and acct else None


def _handoff_sentence(action: str, lang: str, values: Mapping[str, str]) -> str:
    if action == ReplyAction.public_reply:
        return ""
    if action == ReplyAction.dm_invite:
        key = "dm_link" if values.get("dm_link") else "dm"
    else:
        key = "phone_callback"
    texts = _HANDOFF[key]
    return render_template(texts.get(lang, texts["en"]), values)


# ----------------------------------------------------------------------------- drafts, approval


def _audit(
    session: Session, case_id: int, action: str, member: TeamMember | None, **details: Any
) -> None:
    queries.add_audit_event(
        session,
        action=action,
        entity_type="case",
        entity_id=case_id,
        actor_id=member.id if member else None,
        actor=member.name if member else None,
        details=details,
    )


def _get_reply(session: Session, reply_id: int) -> Reply:
    reply = session.get(Reply, reply_id, populate_existing=True)
    if reply is None:
        raise TriageError(f"reply {reply_id} does not exist")
    return reply


def create_draft(
    session: Session,
    *,
    case_id: int,
    member_id: int,
    text: str,
    action: str = ReplyAction.public_reply.value,
) -> Reply:
    """Save the composed text as a draft. The author must hold the case (or be a lead); the
    text must fit the platform."""
    if action not in {a.value for a in ReplyAction}:
        raise TriageError(f"unknown reply action {action!r}")
    if not text.strip():
        raise TriageError("the reply is empty")
    member = cases.get_member(session, member_id)
    case = cases.get_case(session, case_id)
    if case.status not in cases.OPEN:
        raise InvalidTransition(f"case {case_id} is {case.status}: it takes no more replies")
    _ensure_holder(session, case, member)
    check_length(text, case.platform)
    reply = Reply(case_id=case_id, member_id=member.id, text=text, action=action)
    session.add(reply)
    session.flush()
    needs = needs_approval(member)
    _audit(session, case_id, "reply.drafted", member, reply_id=reply.id, needs_approval=needs)
    return reply


def update_draft(session: Session, *, reply_id: int, member_id: int, text: str) -> Reply:
    """Edit a draft; an approved reply that is edited needs approval again."""
    member = cases.get_member(session, member_id)
    reply = _get_reply(session, reply_id)
    if reply.member_id != member.id and not cases.is_lead(member):
        raise NotPermitted("only the author or a lead can edit this draft")
    if reply.status not in (ReplyStatus.draft, ReplyStatus.approved, ReplyStatus.rejected):
        raise InvalidTransition(f"reply {reply_id} is {reply.status} and can no longer change")
    case = cases.get_case(session, reply.case_id)
    check_length(text, case.platform)
    reply.text = text
    reply.status = ReplyStatus.draft
    reply.approved_by_id = None
    session.add(reply)
    session.flush()
    _audit(session, reply.case_id, "reply.edited", member, reply_id=reply.id)
    return reply


def needs_approval(member: TeamMember) -> bool:
    return bool(member.requires_approval) and not cases.is_lead(member)


def approve(session: Session, *, reply_id: int, lead_id: int) -> Reply:
    lead = cases.get_member(session, lead_id)
    if not cases.is_lead(lead):
        raise NotPermitted("only a lead can approve a reply")
    reply = _get_reply(session, reply_id)
    if reply.status != ReplyStatus.draft:
        raise InvalidTransition(f"reply {reply_id} is {reply.status}, not a draft")
    reply.status = ReplyStatus.approved
    reply.approved_by_id = lead.id
    session.add(reply)
    session.flush()
    _audit(session, reply.case_id, "reply.approved", lead, reply_id=reply.id)
    return reply


def reject(session: Session, *, reply_id: int, lead_id: int, reason: str) -> Reply:
    """Send a draft back to its author with the reason (kept as a case note)."""
    lead = cases.get_member(session, lead_id)
    if not cases.is_lead(lead):
        raise NotPermitted("only a lead can reject a reply")
    if not reason.strip():
        raise TriageError("say what to change so the author can fix the draft")
    reply = _get_reply(session, reply_id)
    if reply.status not in (ReplyStatus.draft, ReplyStatus.approved):
        raise InvalidTransition(f"reply {reply_id} is {reply.status}")
    reply.status = ReplyStatus.rejected
    reply.approved_by_id = None
    session.add(reply)
    session.flush()
    cases.add_note(
        session, case_id=reply.case_id, member_id=lead.id or 0, text=f"Draft rejected: {reason}"
    )
    _audit(session, reply.case_id, "reply.rejected", lead, reply_id=reply.id, reason=reason)
    return reply


def pending_approvals(session: Session) -> list[Reply]:
    """Drafts waiting for a lead (authors who require approval), oldest first."""
    return queries.drafts_awaiting_approval(session)


# ----------------------------------------------------------------------------- sending


def _ensure_holder(session: Session, case: Case, member: TeamMember) -> None:
    if case.assignee_id == member.id:
        return
    if case.assignee_id is None and not cases.is_lead(member):
        raise NotPermitted(f"claim case {case.id} before answering it")
    if case.assignee_id is not None and not cases.is_lead(member):
        name = cases.holder_name(session, case)
        raise CaseHeld(
            f"case {case.id} is held by {name}", holder_id=case.assignee_id, holder_name=name
        )


def check_no_collision(session: Session, *, reply: Reply, brand_handles: list[str]) -> None:
    """Refuse when someone else answered the post since this reply was drafted: another sent
    reply on the case, or a post from the brand's own accounts replying in the thread."""
    for other in queries.case_replies(session, case_id=reply.case_id):
        if other.id == reply.id or other.status != ReplyStatus.sent:
            continue
        if other.member_id == reply.member_id and (other.sent_at or utcnow()) < reply.created_at:
            continue  # the author's own earlier reply: this one is a follow-up
        who = session.get(TeamMember, other.member_id) if other.member_id else None
        name = who.name if who else "someone"
        when = other.sent_at.strftime("%H:%M UTC") if other.sent_at else "just now"
        raise ReplyCollision(
            f"{name} already answered this post at {when}; read their reply before sending",
            answered_by=name,
        )
    case = cases.get_case(session, reply.case_id)
    if case.mention_id is None or not brand_handles:
        return
    answer = queries.brand_reply_in_thread(
        session, mention_id=case.mention_id, handles=brand_handles, since=reply.created_at
    )
    if answer is not None:
        handle, posted_at = answer
        when = posted_at.strftime("%H:%M UTC") if posted_at else "recently"
        raise ReplyCollision(
            f"@{handle} already answered this post at {when} (outside Tocsin); "
            "read that answer before sending",
            answered_by=f"@{handle}",
        )


@dataclass(slots=True)
class SendTicket:
    """What was recorded when a reply was reserved for sending (enough to undo it)."""

    reply_id: int
    case_id: int
    text: str
    action: str
    platform: str | None
    post_url: str | None
    post_external_id: str | None
    previous_reply_status: str
    previous_case: dict[str, Any]
    case_version: int
    support_task_id: int | None


def brand_handles(settings: Settings) -> list[str]:
    handles = [h for b in settings.brands for h in b.handles]
    handles += [a for a in settings.triage.accounts.values() if not a.startswith("http")]
    return sorted({h.lstrip("@").lower() for h in handles if h})


def check_can_send(
    session: Session, *, reply_id: int, member_id: int, settings: Settings
) -> tuple[TeamMember, Reply, Case]:
    """Every send-time check, without recording anything (the composer calls it before showing
    "copy and open the post"; `reserve_send` calls it again at the moment of sending)."""
    member = cases.get_member(session, member_id)
    reply = _get_reply(session, reply_id)
    case = cases.get_case(session, reply.case_id)
    author = cases.get_member(session, reply.member_id) if reply.member_id else member
    if reply.status == ReplyStatus.sent:
        raise InvalidTransition(f"reply {reply_id} was already sent")
    if reply.status == ReplyStatus.rejected:
        raise InvalidTransition(f"reply {reply_id} was rejected: edit it first")
    if reply.status == ReplyStatus.draft and needs_approval(author) and not cases.is_lead(member):
        raise NotPermitted("this draft needs a lead's approval before it can be sent")
    if reply.member_id != member.id and not cases.is_lead(member):
        raise NotPermitted("only the author of the draft (or a lead) can send it")
    if case.status not in cases.OPEN:
        raise InvalidTransition(f"case {case.id} is {case.status}: it takes no more replies")
    _ensure_holder(session, case, member)
    check_length(reply.text, case.platform)
    check_no_collision(session, reply=reply, brand_handles=brand_handles(settings))
    return member, reply, case


def reserve_send(
    session: Session,
    *,
    reply_id: int,
    member_id: int,
    settings: Settings,
    callback_note: str = "",
    sent_at: datetime | None = None,
) -> SendTicket:
    """The send-time checks, then the reply is recorded as sent (see the module docstring).

    Raises `ReplyCollision` (naming who answered), `CaseHeld`, `NotPermitted` (approval missing)
    or `ReplyTooLong`; nothing is recorded then.
    """
    member, reply, case = check_can_send(
        session, reply_id=reply_id, member_id=member_id, settings=settings
    )
    mention = session.get(Mention, case.mention_id) if case.mention_id else None
    previous = {
        "status": case.status,
        "first_response_at": case.first_response_at,
        "handoff": case.handoff,
        "priority": case.priority,
        "assignee_id": case.assignee_id,
    }
    previous_status = reply.status
    when = sent_at or utcnow()
    # The case update is guarded by its version: of two simultaneous senders only one passes.
    updated = cases.mark_replied(
        session,
        case_id=case.id or 0,
        member_id=member.id or 0,
        reply_id=reply.id or 0,
        action=reply.action,
        sent_at=when,
        expected_version=case.version,
    )
    reply.status = ReplyStatus.sent
    reply.sent_at = when
    session.add(reply)
    task_id = None
    if reply.action == ReplyAction.phone_callback:
        task_id = _callback_task(
            session, case=case, mention=mention, member=member, note=callback_note
        )
    session.flush()
    _audit(
        session,
        case.id or 0,
        "reply.sent",
        member,
        reply_id=reply.id,
        reply_action=reply.action,
        support_task_id=task_id,
    )
    return SendTicket(
        reply_id=reply.id or 0,
        case_id=case.id or 0,
        text=reply.text,
        action=reply.action,
        platform=case.platform,
        post_url=mention.url if mention else None,
        post_external_id=mention.external_id if mention else None,
        previous_reply_status=previous_status,
        previous_case=previous,
        case_version=updated.version,
        support_task_id=task_id,
    )


def _callback_task(
    session: Session, *, case: Case, mention: Mention | None, member: TeamMember, note: str
) -> int:
    author = session.get(Author, mention.author_id) if mention and mention.author_id else None
    who = handle_for(case.platform, author.handle) if author else "the author"
    lines = [
        f"Phone callback requested for {who} on {case.platform or 'an unknown platform'}"
        f" (case {case_reference(case.id or 0)}).",
        "The customer sends their number and a good time by private message.",
    ]
    if mention and mention.url:
        lines.append(f"Post: {mention.url}")
    if note.strip():
        lines.append(f"Note from {member.name}: {note.strip()}")
    task = SupportTask(
        case_id=case.id or 0,
        kind=ReplyAction.phone_callback.value,
        details="\n".join(lines),
        created_by_id=member.id,
    )
    session.add(task)
    session.flush()
    _audit(session, case.id or 0, "support_task.created", member, support_task_id=task.id)
    return task.id or 0


def record_published(
    session: Session,
    *,
    reply_id: int,
    external_id: str | None,
    external_url: str | None,
    via: str,
    member_id: int | None = None,
) -> Reply:
    """Store where the reply lives on the platform (after the API call, or the agent's link)."""
    reply = _get_reply(session, reply_id)
    if reply.status != ReplyStatus.sent:
        raise InvalidTransition(f"reply {reply_id} is {reply.status}, not sent")
    reply.external_id = (external_id or "")[:300] or reply.external_id
    reply.external_url = (external_url or "")[:2000] or reply.external_url
    session.add(reply)
    session.flush()
    member = session.get(TeamMember, member_id) if member_id else None
    _audit(
        session,
        reply.case_id,
        "reply.published",
        member,
        reply_id=reply.id,
        via=via,
        external_id=reply.external_id,
        external_url=reply.external_url,
    )
    return reply


def undo_send(session: Session, *, ticket: SendTicket, error: str) -> None:
    """The platform refused the reply: put the reply and the case back as they were."""
    reply = _get_reply(session, ticket.reply_id)
    reply.status = ticket.previous_reply_status
    reply.sent_at = None
    session.add(reply)
    restored = queries.update_case_guarded(
        session,
        case_id=ticket.case_id,
        expected_version=ticket.case_version,
        values=dict(ticket.previous_case),
        action="case.reply_undone",
        details={"reply_id": ticket.reply_id, "error": error[:500]},
    )
    if restored is None:
        _audit(
            session,
            ticket.case_id,
            "case.reply_undo_skipped",
            None,
            reply_id=ticket.reply_id,
            why="the case changed meanwhile",
        )
    if ticket.support_task_id:
        task = session.get(SupportTask, ticket.support_task_id)
        if task is not None:
            task.status = "cancelled"
            session.add(task)
    session.flush()
    _audit(
        session,
        ticket.case_id,
        "reply.send_failed",
        None,
        reply_id=ticket.reply_id,
        error=error[:500],
    )
