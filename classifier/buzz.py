"""Buzz risk: how likely a post is to turn into a public bad buzz, 0-100, with the reasons why.

A pure function of `BuzzInputs`. Four factors, each in [0, 1] and non-decreasing in its inputs:
- text: complaint severity and score, negativity, urgency, legal/press/safety threats in the text;
- reach: followers on a log scale, verified, VIP or journalist;
- velocity: engagement per minute since posting against the brand's usual level;
- clustering: similar negative posts in the last hour (an incident forming).

    exposure = 1 - (1 - reach)(1 - velocity)(1 - clustering)
    risk     = 100 * (0.15 text + 0.25 exposure + 0.60 text * exposure)

Every coefficient is positive and every factor is non-decreasing, so the risk never falls when an
input rises (the property tests check this). A furious post seen by nobody stays moderate; a mild
one by a journalist, or in a cluster of similar posts, climbs; both together are critical.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

TIERS = (("critical", 80.0), ("high", 60.0), ("medium", 30.0), ("low", 0.0))

# Profile words in en, fr, es, it, de (matched on whole words, case and accents ignored).
JOURNALIST_WORDS = (
    "journalist",
    "journalism",
    "reporter",
    "editor",
    "correspondent",
    "columnist",
    "newsroom",
    "news anchor",
    "broadcaster",
    "journaliste",
    "redacteur",
    "redactrice",
    "chroniqueur",
    "chroniqueuse",
    "correspondant",
    "correspondante",
    "periodista",
    "redactor",
    "redactora",
    "corresponsal",
    "columnista",
    "giornalista",
    "redattore",
    "redattrice",
    "corrispondente",
    "inviato",
    "journalistin",
    "redakteur",
    "redakteurin",
    "korrespondent",
    "korrespondentin",
    "reporterin",
    "chefredakteur",
)
VIP_WORDS = (
    "influencer",
    "content creator",
    "youtuber",
    "podcaster",
    "ceo",
    "founder",
    "actor",
    "actress",
    "singer",
    "athlete",
    "member of parliament",
    "senator",
    "mayor",
    "minister",
    "celebrity",
    "influenceur",
    "influenceuse",
    "createur de contenu",
    "fondateur",
    "fondatrice",
    "acteur",
    "actrice",
    "chanteur",
    "chanteuse",
    "depute",
    "deputee",
    "senateur",
    "maire",
    "ministre",
    "influencer",
    "creador de contenido",
    "fundador",
    "fundadora",
    "actor",
    "actriz",
    "cantante",
    "diputado",
    "diputada",
    "senador",
    "alcalde",
    "ministro",
    "ministra",
    "fondatore",
    "fondatrice",
    "attore",
    "attrice",
    "deputato",
    "deputata",
    "senatore",
    "sindaco",
    "gruender",
    "grunder",
    "schauspieler",
    "schauspielerin",
    "sanger",
    "sangerin",
    "abgeordneter",
    "abgeordnete",
    "burgermeister",
    "minister",
    "ministerin",
)
# Threats in the text that make a post dangerous whatever its reach: (reason, words).
THREATS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "mentions a lawyer",
        (
            "lawyer",
            "attorney",
            "solicitor",
            "lawsuit",
            "sue",
            "suing",
            "legal action",
            "court",
            "avocat",
            "avocate",
            "poursuite",
            "plainte",
            "tribunal",
            "abogado",
            "abogada",
            "demanda",
            "denuncia",
            "avvocato",
            "avvocata",
            "querela",
            "causa legale",
            "denuncia",
            "anwalt",
            "anwaltin",
            "klage",
            "verklagen",
            "gericht",
            "strafanzeige",
        ),
    ),
    (
        "mentions the press",
        (
            "journalist",
            "the press",
            "the media",
            "news channel",
            "watchdog",
            "ombudsman",
            "journaliste",
            "la presse",
            "les medias",
            "periodista",
            "la prensa",
            "los medios",
            "giornalista",
            "la stampa",
            "i media",
            "presse",
            "medien",
            "verbraucherzentrale",
        ),
    ),
    (
        "safety or health issue",
        (
            "unsafe",
            "dangerous",
            "injured",
            "injury",
            "hospital",
            "allergic",
            "poisoning",
            "fire",
            "smoke",
            "exploded",
            "dangereux",
            "blesse",
            "hopital",
            "allergie",
            "intoxication",
            "peligroso",
            "herido",
            "hospital",
            "alergia",
            "intoxicacion",
            "pericoloso",
            "ferito",
            "ospedale",
            "allergia",
            "intossicazione",
            "gefahrlich",
            "verletzt",
            "krankenhaus",
            "allergie",
            "vergiftung",
        ),
    ),
    (
        "calls for a boycott",
        (
            "boycott",
            "boycotter",
            "boicot",
            "boicottare",
            "boykott",
            "never again",
            "plus jamais",
            "nunca mas",
            "mai piu",
            "nie wieder",
        ),
    ),
)

SEVERITY_NAMES = ("none", "no explicit reproach", "disapproval", "accusation", "blame")


@dataclass(frozen=True)
class BuzzInputs:
    """Everything buzz risk depends on. Absent context counts as none."""

    complaint_severity: int = 0  # 0-4
    complaint_score: float = 0.0  # 0-1
    negativity: float = 0.0  # probability of negative sentiment, 0-1
    urgency_score: float = 0.0  # 0-1
    threats: tuple[str, ...] = ()  # reasons from `text_threats`
    followers: int = 0
    verified: bool = False
    vip: bool = False
    journalist: bool = False
    engagement_per_minute: float = 0.0  # likes + reposts + replies, per minute since posting
    reposts_per_minute: float = 0.0
    usual_per_minute: float = 0.2  # the brand's usual engagement per minute per post
    similar_negative_last_hour: int = 0


@dataclass(frozen=True)
class BuzzRisk:
    score: float  # 0-100
    tier: str  # low | medium | high | critical
    reasons: list[str] = field(default_factory=list)
    factors: dict[str, float] = field(default_factory=dict)


def _clip(value: float) -> float:
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, value))


def text_factor(inputs: BuzzInputs) -> float:
    severity = min(max(inputs.complaint_severity, 0), 4) / 4.0
    base = (
        0.35 * severity
        + 0.20 * _clip(inputs.complaint_score)
        + 0.25 * _clip(inputs.negativity)
        + 0.20 * _clip(inputs.urgency_score)
    )
    return _clip(base + 0.3 * min(len(set(inputs.threats)), 2))


def reach_factor(inputs: BuzzInputs) -> float:
    followers = math.log10(1 + max(inputs.followers, 0)) / 6.0  # 1M followers fill the scale
    status = 0.15 * inputs.verified + 0.25 * inputs.vip + 0.25 * inputs.journalist
    return _clip(followers + status)


def velocity_factor(inputs: BuzzInputs) -> float:
    usual = max(inputs.usual_per_minute, 1e-3)
    ratio = max(inputs.engagement_per_minute, 0.0) / usual
    reposts = max(inputs.reposts_per_minute, 0.0)
    # 20x the usual pace, or 30 reposts a minute, fill the scale.
    return _clip(max(math.log1p(ratio) / math.log1p(20.0), math.log1p(reposts) / math.log1p(30.0)))


def cluster_factor(inputs: BuzzInputs) -> float:
    similar = max(inputs.similar_negative_last_hour, 0)
    return _clip(math.log1p(similar) / math.log1p(20.0))  # 20 similar posts in the hour: full


def buzz_risk(inputs: BuzzInputs) -> BuzzRisk:
    text, reach = text_factor(inputs), reach_factor(inputs)
    velocity, cluster = velocity_factor(inputs), cluster_factor(inputs)
    exposure = 1.0 - (1.0 - reach) * (1.0 - velocity) * (1.0 - cluster)
    score = round(100.0 * _clip(0.15 * text + 0.25 * exposure + 0.60 * text * exposure), 1)
    tier = next(name for name, floor in TIERS if score >= floor)
    factors = {"text": text, "reach": reach, "velocity": velocity, "clustering": cluster}
    return BuzzRisk(score, tier, reasons(inputs), {k: round(v, 3) for k, v in factors.items()})


def humanise_count(value: float) -> str:
    """250000 -> "250k", 1300000 -> "1.3M"."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            text = f"{value / size:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return f"{value:.0f}"


def _rate(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def reasons(inputs: BuzzInputs) -> list[str]:
    """Short reasons, the strongest first, for the people who read the score."""
    out: list[str] = []
    out.extend(dict.fromkeys(inputs.threats))
    if inputs.journalist:
        out.append("author is a journalist")
    if inputs.vip:
        out.append("author is a VIP")
    if inputs.followers >= 10_000:
        out.append(f"author has {humanise_count(inputs.followers)} followers")
    if inputs.verified:
        out.append("verified account")
    if inputs.reposts_per_minute >= 1:
        out.append(f"reposts growing {_rate(inputs.reposts_per_minute)}/min")
    usual = max(inputs.usual_per_minute, 1e-3)
    if inputs.engagement_per_minute >= 3 * usual and inputs.engagement_per_minute >= 0.5:
        out.append(f"engagement {_rate(inputs.engagement_per_minute / usual)}x the usual pace")
    if inputs.similar_negative_last_hour >= 3:
        out.append(f"{inputs.similar_negative_last_hour} similar negative posts in the last hour")
    if inputs.complaint_severity >= 3:
        out.append(f"complaint: {SEVERITY_NAMES[min(inputs.complaint_severity, 4)]}")
    elif inputs.complaint_score >= 0.5:
        out.append("complaint")
    if inputs.negativity >= 0.8:
        out.append("very negative")
    if inputs.urgency_score >= 0.75:
        out.append("urgent")
    return out


def fold(text: str) -> str:
    """Lower case without accents, for keyword matching in several languages."""
    if text.isascii():  # most posts: nothing to decompose (casefold is lower for ASCII)
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char)).replace(
        "ß", "ss"
    )


def _pattern(words: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted({fold(word) for word in words if word.strip()}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in alternatives) + r")(?!\w)")


_JOURNALIST = _pattern(JOURNALIST_WORDS)
_VIP = _pattern(VIP_WORDS)
_THREATS = [(reason, _pattern(words)) for reason, words in THREATS]


def text_threats(text: str) -> tuple[str, ...]:
    folded = fold(text)
    return tuple(reason for reason, pattern in _THREATS if pattern.search(folded))


@dataclass(frozen=True)
class Profile:
    journalist: bool
    vip: bool


def classify_profile(
    *,
    bio: str | None,
    handle: str | None = None,
    journalist_flag: bool = False,
    vip_flag: bool = False,
    journalist_handles: Sequence[str] = (),
    vip_handles: Sequence[str] = (),
    extra_journalist_words: Sequence[str] = (),
    extra_vip_words: Sequence[str] = (),
) -> Profile:
    """Journalist or VIP: from the stored flags, a configured list of handles, or bio keywords."""
    folded = fold(bio or "")
    name = (handle or "").lstrip("@").casefold()

    def listed(handles: Sequence[str]) -> bool:
        return bool(name) and name in {h.lstrip("@").casefold() for h in handles}

    journalist = journalist_flag or listed(journalist_handles) or bool(_JOURNALIST.search(folded))
    if extra_journalist_words and not journalist:
        journalist = bool(_pattern(extra_journalist_words).search(folded))
    vip = vip_flag or listed(vip_handles) or bool(_VIP.search(folded))
    if extra_vip_words and not vip:
        vip = bool(_pattern(extra_vip_words).search(folded))
    return Profile(journalist=journalist, vip=vip)


def tier_of(score: float) -> str:
    return next(name for name, floor in TIERS if score >= floor)
