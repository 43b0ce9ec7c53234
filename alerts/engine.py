"""Alert rules: read the database, write alerts to the outbox (never send anything here).

`evaluate_rules(session, *, settings, now=None) -> int` runs every `[[alerts.rules]]` entry and
writes one Alert row per (event, channel); the dedup key names the event, and the outbox's
unique (dedup_key, channel) constraint makes a second evaluation of the same event a no-op.

Rule kinds (`kind` in tocsin.toml):
- `buzz_risk`: an open case whose buzz risk is `threshold` (70) or more;
- `urgency`: an open case of critical urgency (`threshold` unused);
- `sla`: an open case without a first response whose SLA falls due within `threshold` minutes
  ("about to breach"), and again once it is breached;
- `spike`: the brand's negative mentions of the last hour far above its usual level for that
  hour of the week (alerts/spike.py documents the test); at most one per brand per 2 hours;
- `incident`: an incident formed (`min_count` (5) similar negative posts within an hour, see
  triage/incidents.py), and again each time it doubles (10, 20, 40... posts).
Case rules only look at cases changed in the last `alerts.lookback_hours`, so adding a rule to
an old database does not alert on last month's cases.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from alerts.message import Link, QuotedPost, build_payload, message_from_alert, plain_text
from alerts.spike import DEFAULT_MIN_COUNT, DEFAULT_Z, baseline_windows, spike_test
from storage import queries
from storage.models import (
    Alert,
    Author,
    Brand,
    Case,
    Incident,
    Mention,
    Score,
    TeamMember,
    UrgencyTier,
)
from storage.types import utcnow
from tocsin.config import AlertRuleConfig, Settings
from triage.incidents import DEFAULT_MIN_SIZE, update_incidents

log = logging.getLogger(__name__)

DEFAULT_BUZZ_THRESHOLD = 70.0
CRITICAL_BUZZ = 85.0
SPIKE_COOLDOWN = timedelta(hours=2)
INCIDENT_WINDOW_MINUTES = 60
POST_EXCERPT = 1000
MAX_CASE_LINKS = 5


@dataclass(slots=True)
class Draft:
    """One event a rule found; becomes one Alert row per channel of the rule."""

    kind: str
    dedup_key: str
    payload: dict[str, Any]
    brand_id: int | None = None
    case_id: int | None = None
    incident_id: int | None = None


@dataclass(slots=True)
class _Context:
    session: Session
    settings: Settings
    now: datetime
    brands: dict[int, Brand]

    def case_url(self, case_id: int | None) -> str:
        return f"{self.settings.board.base_url.rstrip('/')}/case?id={case_id}"

    def local(self, moment: datetime | None) -> str:
        if moment is None:
            return "unknown"
        zone = ZoneInfo(self.settings.timezone)
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    def brand_name(self, brand_id: int | None) -> str | None:
        brand = self.brands.get(brand_id) if brand_id is not None else None
        return brand.name if brand else None


@dataclass(slots=True)
class _CaseView:
    case: Case
    mention: Mention | None
    author: Author | None
    score: Score | None


def _load_cases(session: Session, cases: Sequence[Case]) -> list[_CaseView]:
    mentions = queries.mentions_by_id(session, ids=[c.mention_id for c in cases])
    authors = queries.authors_by_id(
        session, ids=[m.author_id for m in mentions.values() if m.author_id is not None]
    )
    scores = queries.latest_scores(session, mention_ids=list(mentions))
    views = []
    for case in cases:
        mention = mentions.get(case.mention_id) if case.mention_id is not None else None
        author = authors.get(mention.author_id) if mention and mention.author_id else None
        score = scores.get(mention.id) if mention and mention.id is not None else None
        views.append(_CaseView(case, mention, author, score))
    return views


def _who(view: _CaseView) -> str:
    if view.author is not None:
        handle = view.author.handle
        handle = handle if handle.startswith("@") else f"@{handle}"
        return f"{handle} ({view.author.display_name})" if view.author.display_name else handle
    return "someone"


def _post(view: _CaseView) -> QuotedPost | None:
    if view.mention is None:
        return None
    text = view.mention.clean_text or view.mention.text or ""
    if len(text) > POST_EXCERPT:
        text = text[: POST_EXCERPT - 1] + "…"
    created = view.mention.created_at
    return QuotedPost(
        text=text,
        author=_who(view),
        platform=view.mention.platform,
        url=view.mention.url,
        created_at=created.isoformat() if created else None,
    )


def _case_facts(ctx: _Context, view: _CaseView) -> list[tuple[str, str]]:
    case = view.case
    facts = [
        ("Urgency", case.urgency_tier),
        ("Buzz risk", f"{case.buzz_risk:.0f}/100"),
        ("Status", case.status),
    ]
    if view.score is not None:
        facts.append(("Sentiment", view.score.sentiment_label))
    if view.author is not None and view.author.followers is not None:
        facts.append(("Followers", f"{view.author.followers:,}"))
    if case.assignee_id is not None:
        member = ctx.session.get(TeamMember, case.assignee_id)
        facts.append(("Assigned to", member.name if member else f"member #{case.assignee_id}"))
    else:
        facts.append(("Assigned to", "nobody yet"))
    if case.sla_due_at is not None:
        facts.append(("First reply due", ctx.local(case.sla_due_at)))
    return facts


def _case_reasons(view: _CaseView) -> list[str]:
    reasons = list(view.score.buzz_reasons) if view.score is not None else []
    if view.score is not None and view.score.is_complaint:
        reasons.append(f"complaint, severity {view.score.complaint_severity}/4")
    return reasons


def _case_draft(
    ctx: _Context,
    view: _CaseView,
    *,
    kind: str,
    dedup_key: str,
    title: str,
    what: str,
    extra_reasons: Sequence[str] = (),
    severity: str = "warning",
) -> Draft:
    case = view.case
    payload = build_payload(
        title=title,
        what=what,
        reasons=[*extra_reasons, *_case_reasons(view)],
        facts=_case_facts(ctx, view),
        links=[Link(f"Open case #{case.id} on the board", ctx.case_url(case.id))],
        post=_post(view),
        severity=severity,
        brand=ctx.brand_name(case.brand_id),
    )
    return Draft(kind, dedup_key, payload, brand_id=case.brand_id, case_id=case.id)


def _about(ctx: _Context, brand_id: int | None) -> str:
    name = ctx.brand_name(brand_id)
    return f" about {name}" if name else ""


# ----------------------------------------------------------------------------- rule kinds


def _buzz_rule(ctx: _Context, rule: AlertRuleConfig, brand_id: int | None) -> list[Draft]:
    threshold = rule.threshold if rule.threshold is not None else DEFAULT_BUZZ_THRESHOLD
    cases = queries.alert_rule_cases(
        ctx.session,
        since=ctx.now - timedelta(hours=ctx.settings.alerts.lookback_hours),
        min_buzz_risk=threshold,
        brand_id=brand_id,
    )
    drafts = []
    for view in _load_cases(ctx.session, cases):
        case = view.case
        platform = view.mention.platform if view.mention else case.platform or "?"
        drafts.append(
            _case_draft(
                ctx,
                view,
                kind="buzz_risk",
                dedup_key=f"buzz_risk:{rule.name}:case:{case.id}",
                title=f"Buzz risk {case.buzz_risk:.0f}/100: {_who(view)} on {platform}",
                what=(
                    f"A post{_about(ctx, case.brand_id)} reached a buzz risk of "
                    f"{case.buzz_risk:.0f}/100 (this rule alerts from {threshold:g}). "
                    f"Case #{case.id} is {case.status}."
                ),
                severity="critical" if case.buzz_risk >= CRITICAL_BUZZ else "warning",
            )
        )
    return drafts


def _urgency_rule(ctx: _Context, rule: AlertRuleConfig, brand_id: int | None) -> list[Draft]:
    cases = queries.alert_rule_cases(
        ctx.session,
        since=ctx.now - timedelta(hours=ctx.settings.alerts.lookback_hours),
        urgency_tiers=[UrgencyTier.critical],
        brand_id=brand_id,
    )
    drafts = []
    for view in _load_cases(ctx.session, cases):
        case = view.case
        platform = view.mention.platform if view.mention else case.platform or "?"
        urgency = f" ({view.score.urgency_score:.2f})" if view.score is not None else ""
        drafts.append(
            _case_draft(
                ctx,
                view,
                kind="urgency",
                dedup_key=f"urgency:{rule.name}:case:{case.id}",
                title=f"Critical post: {_who(view)} on {platform}",
                what=(
                    f"A post{_about(ctx, case.brand_id)} was scored critical urgency "
                    f"(safety, fraud, a loss about to happen, or a legal or press threat). "
                    f"Case #{case.id} is {case.status}; first reply due "
                    f"{ctx.local(case.sla_due_at)}."
                ),
                extra_reasons=[f"urgency critical{urgency}"],
                severity="critical",
            )
        )
    return drafts


def _sla_rule(ctx: _Context, rule: AlertRuleConfig, brand_id: int | None) -> list[Draft]:
    drafts = []
    lookback = timedelta(hours=ctx.settings.alerts.lookback_hours)
    breached = queries.cases_due_before(
        ctx.session, since=ctx.now - lookback, until=ctx.now, brand_id=brand_id
    )
    for view in _load_cases(ctx.session, breached):
        case = view.case
        assert case.sla_due_at is not None
        late = int((ctx.now - case.sla_due_at).total_seconds() // 60)
        drafts.append(
            _case_draft(
                ctx,
                view,
                kind="sla_breached",
                dedup_key=f"sla_breached:{rule.name}:case:{case.id}:{case.sla_due_at:%Y%m%dT%H%M}",
                title=f"SLA breached: case #{case.id} ({case.urgency_tier}), {late} min overdue",
                what=(
                    f"Case #{case.id}{_about(ctx, case.brand_id)} had no first reply by "
                    f"{ctx.local(case.sla_due_at)} ({case.urgency_tier} target). "
                    f"It is {case.status}."
                ),
                extra_reasons=["no first response yet"],
                severity="critical",
            )
        )
    if rule.threshold is not None and rule.threshold > 0:
        soon = queries.cases_due_before(
            ctx.session,
            since=ctx.now + timedelta(microseconds=1),
            until=ctx.now + timedelta(minutes=rule.threshold),
            brand_id=brand_id,
        )
        for view in _load_cases(ctx.session, soon):
            case = view.case
            assert case.sla_due_at is not None
            left = max(int((case.sla_due_at - ctx.now).total_seconds() // 60), 0)
            drafts.append(
                _case_draft(
                    ctx,
                    view,
                    kind="sla_soon",
                    dedup_key=f"sla_soon:{rule.name}:case:{case.id}:{case.sla_due_at:%Y%m%dT%H%M}",
                    title=f"SLA breach in {left} min: case #{case.id} ({case.urgency_tier})",
                    what=(
                        f"Case #{case.id}{_about(ctx, case.brand_id)} needs a first reply by "
                        f"{ctx.local(case.sla_due_at)} and has none yet. It is {case.status}."
                    ),
                    extra_reasons=["no first response yet"],
                )
            )
    return drafts


def _spike_targets(ctx: _Context, brand_id: int | None, rule: AlertRuleConfig) -> list[int | None]:
    if rule.brand is not None:
        return [brand_id] if brand_id is not None else []
    return list(ctx.brands) if ctx.brands else [None]


def _spike_rule(ctx: _Context, rule: AlertRuleConfig, brand_id: int | None) -> list[Draft]:
    drafts = []
    for target in _spike_targets(ctx, brand_id, rule):
        if queries.alert_exists_since(
            ctx.session, kind="spike", brand_id=target, since=ctx.now - SPIKE_COOLDOWN
        ):
            continue
        first = queries.first_collected_at(ctx.session, brand_id=target)
        if first is None:
            continue
        last_hour = (ctx.now - timedelta(hours=1), ctx.now)
        windows = baseline_windows(
            ctx.now,
            weeks=rule.lookback_weeks,
            timezone=ctx.settings.timezone,
            not_before=first,
        )
        counts = queries.count_negative_mentions(
            ctx.session, brand_id=target, windows=[last_hour, *windows]
        )
        verdict = spike_test(
            counts[0],
            counts[1:],
            z_threshold=rule.threshold if rule.threshold is not None else DEFAULT_Z,
            min_count=rule.min_count or DEFAULT_MIN_COUNT,
        )
        log.debug("spike test for brand %s: %s", target, verdict.why)
        if verdict.fired:
            drafts.append(_spike_draft(ctx, rule, target, verdict.observed, verdict))
    return drafts


def _cases_for_mentions(ctx: _Context, mention_ids: list[int]) -> list[Link]:
    cases = queries.cases_of_mentions(ctx.session, mention_ids=mention_ids, limit=MAX_CASE_LINKS)
    return [Link(f"Case #{c.id} (risk {c.buzz_risk:.0f})", ctx.case_url(c.id)) for c in cases]


def _spike_draft(
    ctx: _Context, rule: AlertRuleConfig, brand_id: int | None, observed: int, verdict: Any
) -> Draft:
    name = ctx.brand_name(brand_id) or "all mentions"
    recent = queries.recent_negative_mentions(
        ctx.session, since=ctx.now - timedelta(hours=1), until=ctx.now
    )
    mine = [m for m in recent if m.brand_id == brand_id and m.id is not None]
    links = _cases_for_mentions(ctx, [m.id for m in mine if m.id is not None])
    payload = build_payload(
        title=f"Spike of negative mentions: {name} ({observed} in the last hour)",
        what=(
            f"{observed} negative mentions of {name} in the last hour; a usual hour like this "
            f"one has about {verdict.expected:.0f}."
        ),
        reasons=[
            verdict.why,
            f"compared with {verdict.samples} similar hours of the last "
            f"{rule.lookback_weeks} weeks (median {verdict.expected:.1f}, "
            f"spread {verdict.spread:.1f})",
        ],
        facts=[
            ("Negative mentions, last hour", str(observed)),
            ("Usual for this hour", f"{verdict.expected:.0f}"),
            ("z-score", f"{verdict.z:.1f}"),
        ],
        links=links,
        post=None,
        severity="critical",
        brand=ctx.brand_name(brand_id),
    )
    bucket = ctx.now.strftime("%Y%m%dT%H")
    return Draft("spike", f"spike:{rule.name}:brand:{brand_id}:{bucket}", payload, brand_id)


def _incident_rule(ctx: _Context, rule: AlertRuleConfig, brand_id: int | None) -> list[Draft]:
    minimum = rule.min_count or DEFAULT_MIN_SIZE
    since = ctx.now - timedelta(minutes=INCIDENT_WINDOW_MINUTES)
    drafts = []
    for incident in queries.incidents_seen_since(ctx.session, since=since):
        if incident.mention_count < minimum:
            continue
        if brand_id is not None and incident.brand_id != brand_id:
            continue
        drafts.append(_incident_draft(ctx, rule, incident, growth_level(incident, minimum)))
    return drafts


def growth_level(incident: Incident, minimum: int) -> int:
    """0 when an incident forms; 1, 2, 3... each time it doubles (10, 20, 40 posts for 5)."""
    return max(int(math.log2(max(incident.mention_count, minimum) / minimum)), 0)


def _incident_draft(ctx: _Context, rule: AlertRuleConfig, incident: Incident, level: int) -> Draft:
    assert incident.id is not None
    members = queries.mentions_of_incidents(ctx.session, incident_ids=[incident.id])
    links = _cases_for_mentions(ctx, [m.id for m in members if m.id is not None])
    example = members[-1] if members else None
    post = None
    if example is not None:
        author = ctx.session.get(Author, example.author_id) if example.author_id else None
        post = QuotedPost(
            text=(example.clean_text or example.text or "")[:POST_EXCERPT],
            author=f"@{author.handle.lstrip('@')}" if author else "someone",
            platform=example.platform,
            url=example.url,
            created_at=example.created_at.isoformat() if example.created_at else None,
        )
    name = ctx.brand_name(incident.brand_id)
    payload = build_payload(
        title=f"Incident {'growing' if level else 'forming'}: {incident.title}",
        what=(
            f"{incident.mention_count} similar negative posts{_about(ctx, incident.brand_id)} "
            f"since {ctx.local(incident.first_seen_at)} "
            f"(latest {ctx.local(incident.last_seen_at)}). The latest one is quoted below."
        ),
        reasons=[
            f"{incident.mention_count} similar complaints since "
            f"{ctx.local(incident.first_seen_at)}",
            "shared words: " + (", ".join(incident.keywords) or "none"),
        ],
        facts=[("Posts", str(incident.mention_count)), ("Incident", f"#{incident.id}")],
        links=links,
        post=post,
        severity="critical" if level >= 2 else "warning",
        brand=name,
    )
    # One alert when it forms, one more each time it doubles.
    suffix = f":x{2**level}" if level else ""
    return Draft(
        "incident",
        f"incident:{rule.name}:{incident.id}{suffix}",
        payload,
        brand_id=incident.brand_id,
        incident_id=incident.id,
    )


RuleFunction = Callable[[_Context, AlertRuleConfig, "int | None"], list[Draft]]
RULES: dict[str, RuleFunction] = {
    "buzz_risk": _buzz_rule,
    "urgency": _urgency_rule,
    "sla": _sla_rule,
    "spike": _spike_rule,
    "incident": _incident_rule,
}


# ----------------------------------------------------------------------------- entry point


def _alert_rows(draft: Draft, rule: AlertRuleConfig, now: datetime) -> list[dict[str, Any]]:
    preview = Alert(kind=draft.kind, channel="", dedup_key="", payload=draft.payload)
    message = message_from_alert(preview)
    return [
        {
            "kind": draft.kind,
            "rule": rule.name,
            "brand_id": draft.brand_id,
            "case_id": draft.case_id,
            "incident_id": draft.incident_id,
            "channel": channel,
            "recipients": list(rule.recipients),
            "dedup_key": draft.dedup_key[:300],
            "subject": message.title[:500],
            "body": plain_text(message),
            "payload": draft.payload,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for channel in rule.channels
    ]


def evaluate_rules(session: Session, *, settings: Settings, now: datetime | None = None) -> int:
    """Run every configured rule; returns how many new alerts went into the outbox."""
    now = now or utcnow()
    rules = settings.alerts.rules
    incident_rules = [r for r in rules if r.kind == "incident"]
    if incident_rules:
        update_incidents(
            session,
            now=now,
            window_minutes=INCIDENT_WINDOW_MINUTES,
            min_size=min(r.min_count or DEFAULT_MIN_SIZE for r in incident_rules),
        )
    ctx = _Context(session, settings, now, {b.id: b for b in queries.brands(session) if b.id})
    rows: list[dict[str, Any]] = []
    for rule in rules:
        if not rule.channels:
            log.warning("alert rule %r names no channel: skipped", rule.name)
            continue
        brand_id = None
        if rule.brand is not None:
            brand = next((b for b in ctx.brands.values() if b.name == rule.brand), None)
            if brand is None:
                log.info("alert rule %r: brand %r has no data yet", rule.name, rule.brand)
                continue
            brand_id = brand.id
        for draft in RULES[rule.kind](ctx, rule, brand_id):
            rows += _alert_rows(draft, rule, now)
    return queries.add_alerts(session, rows=rows) if rows else 0
