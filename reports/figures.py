"""The figures of a weekly report, computed from what storage returns for the week.

Definitions (the report's footnotes say the same):
- volume counts every mention posted in the week (local days), deleted ones included;
- net sentiment = (positive − negative) / scored mentions × 100, from each mention's latest score;
  its change is in points against the week before;
- first-response time runs from the case being opened to the first reply; p50 and p90 use linear
  interpolation between the ordered values (numpy's default);
- SLA met % = cases answered by their deadline / cases whose deadline has passed or that were
  answered; cases still inside their deadline when the report is built are left out;
- handoffs count cases moved to DM or to a phone callback.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from reports.period import Week
from storage.models import Alert, Incident, ReplyAction
from storage.queries import ReportCase, ReportMention

SENTIMENTS = ("negative", "neutral", "positive")
HANDOFFS = {ReplyAction.dm_invite.value: "dm", ReplyAction.phone_callback.value: "phone"}

_STOPWORDS_TEXT = """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing don done down during each even
    ever every few for from further get got had has have having he her here hers him his how i if
    in into is it its itself just let like me more most my no nor not now of off on once only or
    other our out over own really same she should since so some still such than that the their
    them then there these they this those through to too under until up us very via was way we
    were what when where which while who whom why will with would yet you your yours im ive dont
    cant thats today yesterday tomorrow day days time again one two three please thanks thank
    au aux avec ce ces dans de des du elle en est et eux il ils je la le les leur lui ma mais me
    mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te tes toi ton
    tu un une vos votre vous cest jai plus tout tres
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
WORD = re.compile(r"[^\W\d_][\w'’-]{2,}", re.UNICODE)
URL = re.compile(r"https?://\S+|www\.\S+")
HANDLE = re.compile(r"[@#][\w.]+")


@dataclass(slots=True)
class Post:
    """A post shown in the report (public text: always escaped when rendered)."""

    mention_id: int
    text: str
    url: str | None
    source: str
    author: str | None
    created_at: datetime | None
    buzz_risk: float
    urgency: str
    sentiment: str
    reasons: list[str]


@dataclass(slots=True)
class Theme:
    keyword: str
    mentions: int
    share: float  # of the week's complaints, in %
    examples: list[Post]


@dataclass(slots=True)
class AgentFigures:
    agent: str
    cases: int
    responded: int
    p50_minutes: float | None
    sla_met_pct: float | None
    dm: int
    phone: int


@dataclass(slots=True)
class ResponseFigures:
    cases: int
    responded: int
    p50_minutes: float | None
    p90_minutes: float | None
    sla_met: int
    sla_counted: int
    sla_met_pct: float | None
    dm: int
    phone: int
    per_agent: list[AgentFigures]


@dataclass(slots=True)
class WeekFigures:
    brand: str
    week: str
    previous_week: str
    timezone: str
    built_at: datetime
    days: list[str]
    volume_total: int
    volume_previous: int
    volume_by_source: dict[str, int]
    volume_by_day: dict[str, int]
    volume_by_source_day: dict[str, dict[str, int]]
    scored: int
    sentiment_share: dict[str, float]
    sentiment_share_previous: dict[str, float]
    net_sentiment: float | None
    net_sentiment_previous: float | None
    net_sentiment_change: float | None
    complaints: int
    themes: list[Theme]
    riskiest: list[Post]
    incidents: list[dict[str, Any]]
    response: ResponseFigures
    alerts_sent: int
    alerts_by_kind: dict[str, int]
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def stored(self) -> dict[str, Any]:
        """What the ReportRun row keeps: numbers and ids, never the public text."""
        data = asdict(self)
        data["built_at"] = self.built_at.isoformat()
        data["themes"] = [
            {
                "keyword": t.keyword,
                "mentions": t.mentions,
                "share": t.share,
                "example_ids": [p.mention_id for p in t.examples],
            }
            for t in self.themes
        ]
        data["riskiest"] = [
            {"mention_id": p.mention_id, "buzz_risk": p.buzz_risk, "urgency": p.urgency}
            for p in self.riskiest
        ]
        return data


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def percentile(values: Sequence[float], q: float) -> float | None:
    return _round(float(np.percentile(np.asarray(values, dtype=float), q))) if values else None


def sentiment_share(
    mentions: Iterable[ReportMention],
) -> tuple[int, dict[str, float], float | None]:
    counts = Counter(m.sentiment for m in mentions if m.sentiment is not None)
    scored = sum(counts[s] for s in SENTIMENTS)
    if not scored:
        return 0, dict.fromkeys(SENTIMENTS, 0.0), None
    share = {s: round(100.0 * counts[s] / scored, 1) for s in SENTIMENTS}
    net = 100.0 * (counts["positive"] - counts["negative"]) / scored
    return scored, share, _round(net)


def _post(row: ReportMention, limit: int = 400) -> Post:
    text = row.text
    return Post(
        mention_id=row.id,
        text=text if len(text) <= limit else text[: limit - 1] + "…",
        url=row.url,
        source=row.source,
        author=row.author_handle,
        created_at=row.created_at,
        buzz_risk=round(row.buzz_risk, 1),
        urgency=row.urgency or "",
        sentiment=row.sentiment or "",
        reasons=row.reasons[:4],
    )


def _risk(row: ReportMention) -> float:
    return row.buzz_risk


def _terms(text: str, ignored: frozenset[str]) -> set[str]:
    text = HANDLE.sub(" ", URL.sub(" ", text.lower()))
    words = [w.strip("'’-") for w in WORD.findall(text)]
    words = [w for w in words if len(w) > 2 and w not in STOPWORDS and w not in ignored]
    bigrams = {f"{a} {b}" for a, b in itertools.pairwise(words)}
    return set(words) | bigrams


def complaint_themes(
    complaints: Sequence[ReportMention], *, brand_terms: Iterable[str], limit: int
) -> list[Theme]:
    """Keyword clusters: the term found in most complaints becomes a theme and takes those
    posts; the next theme is counted on the posts left, and so on. Two-word terms win over a
    single word found in as many posts (they say more: "lost luggage" rather than "lost")."""
    ignored = frozenset(w for term in brand_terms for w in WORD.findall(term.lower()))
    docs = {i: _terms(row.text, ignored) for i, row in enumerate(complaints) if not row.deleted}
    themes: list[Theme] = []
    while docs and len(themes) < limit:
        df = Counter(term for terms in docs.values() for term in terms)
        candidates = [(n + (0.5 if " " in t else 0.0), t) for t, n in df.items() if n >= 2]
        if not candidates:
            break
        _, keyword = max(candidates, key=lambda c: (c[0], -len(c[1]), c[1]))
        members = sorted(
            (i for i, terms in docs.items() if keyword in terms),
            key=lambda i: -_risk(complaints[i]),
        )
        themes.append(
            Theme(
                keyword=keyword,
                mentions=len(members),
                share=round(100.0 * len(members) / len(complaints), 1),
                examples=[_post(complaints[i], 280) for i in members[:2]],
            )
        )
        for i in members:
            docs.pop(i)
    return themes


def _is_complaint(row: ReportMention) -> bool:
    return row.is_complaint or row.sentiment == "negative"


def _first_response_minutes(row: ReportCase) -> float | None:
    c = row.case
    if c.first_response_at is None:
        return None
    return max((c.first_response_at - c.created_at).total_seconds() / 60.0, 0.0)


def _sla(row: ReportCase, now: datetime) -> bool | None:
    """True met, False missed, None not counted (no deadline, or still running)."""
    c = row.case
    if c.sla_due_at is None:
        return None
    if c.first_response_at is not None:
        return c.first_response_at <= c.sla_due_at
    return False if c.sla_due_at < now else None


def _handoffs(row: ReportCase) -> set[str]:
    kinds = {HANDOFFS[r.action] for r in row.replies if r.action in HANDOFFS}
    if row.case.handoff in HANDOFFS:
        kinds.add(HANDOFFS[row.case.handoff])
    return kinds


def response_figures(cases: Sequence[ReportCase], *, now: datetime) -> ResponseFigures:
    def summarise(rows: Sequence[ReportCase]) -> tuple[int, list[float], int, int, int, int]:
        minutes = [m for r in rows if (m := _first_response_minutes(r)) is not None]
        verdicts = [v for r in rows if (v := _sla(r, now)) is not None]
        handoffs = Counter(kind for r in rows for kind in _handoffs(r))
        return len(rows), minutes, sum(verdicts), len(verdicts), handoffs["dm"], handoffs["phone"]

    count, minutes, met, counted, dm, phone = summarise(cases)
    by_agent: dict[str, list[ReportCase]] = defaultdict(list)
    for row in cases:
        by_agent[row.assignee or "(unassigned)"].append(row)
    per_agent = []
    for agent in sorted(by_agent):
        n, mins, a_met, a_counted, a_dm, a_phone = summarise(by_agent[agent])
        per_agent.append(
            AgentFigures(
                agent=agent,
                cases=n,
                responded=len(mins),
                p50_minutes=percentile(mins, 50),
                sla_met_pct=_round(100.0 * a_met / a_counted) if a_counted else None,
                dm=a_dm,
                phone=a_phone,
            )
        )
    return ResponseFigures(
        cases=count,
        responded=len(minutes),
        p50_minutes=percentile(minutes, 50),
        p90_minutes=percentile(minutes, 90),
        sla_met=met,
        sla_counted=counted,
        sla_met_pct=_round(100.0 * met / counted) if counted else None,
        dm=dm,
        phone=phone,
        per_agent=per_agent,
    )


def _incident(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "keywords": list(incident.keywords or []),
        "mentions": incident.mention_count,
        "status": incident.status,
        "first_seen": incident.first_seen_at.isoformat(),
        "last_seen": incident.last_seen_at.isoformat(),
    }


def week_figures(
    *,
    brand: str,
    brand_terms: Iterable[str],
    week: Week,
    mentions: Sequence[ReportMention],
    previous: Sequence[ReportMention],
    cases: Sequence[ReportCase],
    incidents: Sequence[Incident],
    alerts: Sequence[Alert],
    now: datetime,
    top_posts: int = 5,
    themes: int = 5,
) -> WeekFigures:
    days = [d.isoformat() for d in week.days]
    by_source: Counter[str] = Counter()
    by_day: Counter[str] = Counter()
    by_source_day: dict[str, Counter[str]] = defaultdict(Counter)
    for row in mentions:
        if row.created_at is None:
            continue
        day = week.local_day(row.created_at).isoformat()
        by_source[row.source] += 1
        by_day[day] += 1
        by_source_day[row.source][day] += 1
    scored, share, net = sentiment_share(mentions)
    _, share_prev, net_prev = sentiment_share(previous)
    complaints = [row for row in mentions if _is_complaint(row)]
    visible = [row for row in mentions if row.sentiment is not None and not row.deleted]
    riskiest = sorted(visible, key=lambda r: (-_risk(r), r.id))
    kinds = Counter(a.kind for a in alerts)
    change = _round(net - net_prev) if net is not None and net_prev is not None else None
    return WeekFigures(
        brand=brand,
        week=str(week),
        previous_week=str(week.previous()),
        timezone=week.tz.key,
        built_at=now,
        days=days,
        volume_total=sum(by_day.values()),
        volume_previous=len(previous),
        volume_by_source=dict(by_source.most_common()),
        volume_by_day={d: by_day[d] for d in days},
        volume_by_source_day={s: {d: c[d] for d in days} for s, c in sorted(by_source_day.items())},
        scored=scored,
        sentiment_share=share,
        sentiment_share_previous=share_prev,
        net_sentiment=net,
        net_sentiment_previous=net_prev,
        net_sentiment_change=change,
        complaints=len(complaints),
        themes=complaint_themes(complaints, brand_terms=brand_terms, limit=themes),
        riskiest=[_post(row) for row in riskiest[:top_posts]],
        incidents=[_incident(i) for i in incidents],
        response=response_figures(cases, now=now),
        alerts_sent=len(alerts),
        alerts_by_kind=dict(kinds.most_common()),
        alerts=[
            {
                "kind": a.kind,
                "rule": a.rule,
                "channel": a.channel,
                "subject": a.subject,
                "sent_at": a.sent_at.isoformat() if a.sent_at else None,
            }
            for a in alerts[:50]
        ],
    )
