"""Intake: a scored mention becomes a case (or updates its case).

`open_or_update_case(session, *, mention, score, settings) -> Case | None` is called by the
classifier's batch scorer after each Score row is written:

- no case yet and the score passes `settings.triage` (buzz risk ≥ case_min_buzz_risk, urgency ≥
  case_min_urgency, or a complaint when case_on_complaint): a new case opens with its SLA due time
  (`triage.sla`), priority (`triage.priority`) and topic; audited as `case.opened`;
- a case exists (a re-score with a newer model, new engagement): its tier, risk, due time and
  priority follow the new score, audited as `case.rescored`; a closed case is left closed;
- otherwise None. Deleted posts never open a case.

`intake_batch(session, *, items, settings)` does the same for a whole scoring batch: one query
for the existing cases, one statement for the new cases and one for their audit events (the
per-mention path is the fallback when another scorer opened one of them meanwhile).

`detect_topic(text, settings) -> str | None` is the keyword topic used for skill routing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from storage import queries
from storage.models import Case, CaseStatus, Mention
from storage.types import utcnow
from tocsin.config import Settings
from triage import priority, sla

TIER_RANK = {"low": 0, "normal": 1, "high": 2, "critical": 3}

# Built-in topic keywords (en, fr, es, it, de); settings.triage.topics adds to them.
DEFAULT_TOPICS: dict[str, list[str]] = {
    "billing": [
        "bill",
        "invoice",
        "refund",
        "charged",
        "overcharged",
        "payment",
        "subscription",
        "facture",
        "remboursement",
        "prélèvement",
        "factura",
        "reembolso",
        "cobro",
        "fattura",
        "rimborso",
        "addebito",
        "rechnung",
        "erstattung",
    ],
    "delivery": [
        "delivery",
        "package",
        "parcel",
        "shipping",
        "tracking",
        "courier",
        "livraison",
        "colis",
        "entrega",
        "paquete",
        "envío",
        "consegna",
        "pacco",
        "spedizione",
        "lieferung",
        "paket",
    ],
    "account": [
        "login",
        "log in",
        "password",
        "account",
        "locked out",
        "hacked",
        "compte",
        "mot de passe",
        "cuenta",
        "contraseña",
        "password",
        "accesso",
        "konto",
        "passwort",
    ],
    "outage": [
        "down",
        "outage",
        "not working",
        "doesn't work",
        "crash",
        "error",
        "en panne",
        "ne marche pas",
        "ne fonctionne pas",
        "no funciona",
        "caído",
        "non funziona",
        "funktioniert nicht",
        "störung",
    ],
    "travel": [
        "flight",
        "cancelled",
        "canceled",
        "delayed",
        "luggage",
        "baggage",
        "boarding",
        "vol",
        "annulé",
        "retard",
        "bagage",
        "vuelo",
        "cancelado",
        "equipaje",
        "volo",
        "cancellato",
        "ritardo",
        "bagaglio",
        "flug",
        "gepäck",
    ],
    "safety": [
        "unsafe",
        "injured",
        "injury",
        "fire",
        "allergic",
        "poisoning",
        "danger",
        "blessé",
        "dangereux",
        "intoxication",
        "herido",
        "peligro",
        "ferito",
        "pericolo",
    ],
    "legal": [
        "lawyer",
        "lawsuit",
        "sue",
        "court",
        "avocat",
        "plainte",
        "procès",
        "abogado",
        "demanda",
        "avvocato",
        "denuncia",
        "anwalt",
        "klage",
    ],
    "press": ["journalist", "reporter", "article", "journaliste", "periodista", "giornalista"],
}


class ScoreView(Protocol):
    """What intake reads of a score: a stored `Score` or the scorer's values before writing."""

    @property
    def urgency_tier(self) -> str: ...
    @property
    def buzz_risk(self) -> float: ...
    @property
    def is_complaint(self) -> bool: ...
    @property
    def buzz_reasons(self) -> list[str]: ...
    @property
    def model_version(self) -> str: ...


def _topic_patterns(settings: Settings) -> list[tuple[str, re.Pattern[str]]]:
    configured = tuple((topic, tuple(words)) for topic, words in settings.triage.topics.items())
    return _compiled_topics(configured)


@lru_cache(maxsize=16)
def _compiled_topics(
    configured: tuple[tuple[str, tuple[str, ...]], ...],
) -> list[tuple[str, re.Pattern[str]]]:
    merged: dict[str, list[str]] = {k: list(v) for k, v in DEFAULT_TOPICS.items()}
    for topic, extra in configured:
        merged.setdefault(topic, []).extend(extra)
    own = [topic for topic, _ in configured]
    patterns = []
    # Configured topics first: a team's own vocabulary beats the generic lists.
    order = own + [t for t in merged if t not in own]
    for topic in order:
        words = sorted({w.lower() for w in merged[topic] if w.strip()}, key=len, reverse=True)
        if words:
            alternatives = "|".join(re.escape(w) for w in words)
            patterns.append((topic, re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")))
    return patterns


def detect_topic(text: str, settings: Settings) -> str | None:
    """The topic whose keywords occur most often in the text (ties: configured order)."""
    lowered = text.lower()
    best, best_hits = None, 0
    for topic, pattern in _topic_patterns(settings):
        hits = len(pattern.findall(lowered))
        if hits > best_hits:
            best, best_hits = topic, hits
    return best


def passes_thresholds(score: ScoreView, settings: Settings) -> bool:
    rules = settings.triage
    tier_rank = TIER_RANK.get(score.urgency_tier, 0)
    return (
        score.buzz_risk >= rules.case_min_buzz_risk
        or tier_rank >= TIER_RANK[rules.case_min_urgency]
        or (rules.case_on_complaint and score.is_complaint)
    )


def _timing(
    *, tier: str, risk: float, opened_at: datetime, answered: bool, settings: Settings
) -> tuple[datetime, float]:
    due = sla.due_at(opened_at, tier, sla=settings.sla, timezone=settings.timezone)
    return due, priority.priority_for(tier=tier, buzz_risk=risk, due_at=due, answered=answered)


def open_or_update_case(
    session: Session, *, mention: Mention, score: ScoreView, settings: Settings
) -> Case | None:
    """Open a case for a scored mention that needs one, or update its existing case."""
    if mention.id is None:
        raise ValueError("the mention must be stored (flushed) before intake")
    existing = queries.case_for_mention(session, mention_id=mention.id)
    if existing is not None:
        return _update(session, existing, score=score, settings=settings)
    if mention.deleted or not passes_thresholds(score, settings):
        return None
    return _open(session, mention=mention, score=score, settings=settings)


def intake_batch(
    session: Session, *, items: Sequence[tuple[Mention, ScoreView]], settings: Settings
) -> dict[int, float]:
    """`open_or_update_case` for a scoring batch; returns the case priority by mention id."""
    existing = queries.cases_by_mention(
        session, mention_ids=[mention.id for mention, _ in items if mention.id is not None]
    )
    priorities: dict[int, float] = {}
    to_open: list[tuple[Mention, ScoreView]] = []
    for mention, score in items:
        if mention.id is None:
            raise ValueError("the mentions must be stored before intake")
        case = existing.get(mention.id)
        if case is not None:
            priorities[mention.id] = _update(session, case, score=score, settings=settings).priority
        elif not mention.deleted and passes_thresholds(score, settings):
            to_open.append((mention, score))
    if not to_open:
        return priorities
    opened_at = utcnow()
    rows = [_case_row(m, s, opened_at=opened_at, settings=settings) for m, s in to_open]
    try:
        with session.begin_nested():
            ids = queries.insert_cases(session, rows=rows)
    except IntegrityError:
        # Another scorer opened one of them at the same moment: go one by one.
        for mention, score in to_open:
            case = open_or_update_case(session, mention=mention, score=score, settings=settings)
            if case is not None and mention.id is not None:
                priorities[mention.id] = case.priority
        return priorities
    queries.add_audit_events(
        session,
        events=[
            {
                "action": "case.opened",
                "entity_type": "case",
                "entity_id": case_id,
                "details": _opened_details(mention, score, row),
            }
            for case_id, (mention, score), row in zip(ids, to_open, rows, strict=True)
        ],
    )
    for (mention, _), row in zip(to_open, rows, strict=True):
        priorities[mention.id or 0] = row["priority"]
    return priorities


def _case_row(
    mention: Mention, score: ScoreView, *, opened_at: datetime, settings: Settings
) -> dict[str, Any]:
    tier = score.urgency_tier
    due, rank = _timing(
        tier=tier, risk=score.buzz_risk, opened_at=opened_at, answered=False, settings=settings
    )
    return {
        "mention_id": mention.id,
        "incident_id": mention.incident_id,
        "brand_id": mention.brand_id,
        "platform": mention.platform,
        "lang": mention.lang,
        "urgency_tier": tier,
        "buzz_risk": score.buzz_risk,
        "topic": detect_topic(f"{mention.title or ''} {mention.clean_text}", settings),
        "status": CaseStatus.new,
        "priority": rank,
        "sla_due_at": due,
        "tags": [],
        "created_at": opened_at,
        "updated_at": opened_at,
        "version": 1,
    }


def _opened_details(mention: Mention, score: ScoreView, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "mention_id": mention.id,
        "tier": row["urgency_tier"],
        "buzz_risk": score.buzz_risk,
        "reasons": list(score.buzz_reasons or []),
        "topic": row["topic"],
        "sla_due_at": row["sla_due_at"].isoformat(),
        "model_version": score.model_version,
    }


def _open(
    session: Session, *, mention: Mention, score: ScoreView, settings: Settings
) -> Case | None:
    row = _case_row(mention, score, opened_at=utcnow(), settings=settings)
    case = Case(**row)
    try:
        with session.begin_nested():
            session.add(case)
            session.flush()
    except IntegrityError:
        # Another scorer opened it at the same moment: update theirs instead.
        found = queries.case_for_mention(session, mention_id=mention.id or 0)
        return _update(session, found, score=score, settings=settings) if found else None
    queries.add_audit_event(
        session,
        action="case.opened",
        entity_type="case",
        entity_id=case.id,
        details=_opened_details(mention, score, row),
    )
    return case


def _update(session: Session, case: Case, *, score: ScoreView, settings: Settings) -> Case:
    if case.status in (CaseStatus.resolved, CaseStatus.dismissed):
        return case
    tier = score.urgency_tier
    due, rank = _timing(
        tier=tier,
        risk=score.buzz_risk,
        opened_at=case.created_at,
        answered=case.first_response_at is not None,
        settings=settings,
    )
    if (case.urgency_tier, round(case.buzz_risk, 3), case.sla_due_at) == (
        tier,
        round(score.buzz_risk, 3),
        due,
    ):
        return case
    for _ in range(3):  # a claim may bump the version between our read and write
        updated = queries.update_case_guarded(
            session,
            case_id=case.id or 0,
            expected_version=case.version,
            values={
                "urgency_tier": tier,
                "buzz_risk": score.buzz_risk,
                "sla_due_at": due,
                "priority": rank,
            },
            action="case.rescored",
            details={
                "previous_tier": case.urgency_tier,
                "previous_buzz_risk": case.buzz_risk,
                "model_version": score.model_version,
                "reasons": list(score.buzz_reasons or []),
            },
        )
        if updated is not None:
            return updated
        refreshed = session.get(Case, case.id, populate_existing=True)
        if refreshed is None:
            break
        case = refreshed
    return case
