"""Incidents: similar negative mentions arriving together (an outage, a bad buzz forming).

`update_incidents(session, *, now=None, window_minutes=60)` looks at the negative or complaining
mentions published in the last `window_minutes`, per brand:
1. a mention similar enough to an open incident (cosine similarity to the incident's centroid)
   joins it;
2. among the rest, the mention with the most similar neighbours seeds a cluster (its neighbours,
   kept if they are close to the cluster's centroid); a cluster of `min_size` posts or more
   whose posts mostly share at least two words opens an Incident ("please help" and "DM sent"
   are in every kind of complaint, "app", "down" name a problem). Repeated until no seed has
   enough neighbours.
Incidents that gained nothing for `close_after_hours` are closed.

Similarity: TF-IDF cosine over word stems and character 4-grams of the words (so "crash",
"crashes", "crashed" and "crashing" meet). URLs, handles, stop words (English, French), the words
any support request contains ("help", "dm", "waiting"...) and the brand's own keywords are left
out, since unrelated posts share them. IDF is counted over the window plus the brand's usual
complaints (up to `BACKGROUND_POSTS` negative posts of the week before): what the brand always
hears ("flight delayed" for an airline) weighs little, what is suddenly everywhere weighs a lot.
`IDF_PRIOR_DOCS` more unrelated posts are assumed, so that a burst filling the whole window of a
brand with no history still keeps the weight of the words its posts share. An incident's title
lists the words most of its posts share.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from scipy import sparse
from sqlmodel import Session

from storage import queries
from storage.models import Incident, Mention
from storage.types import utcnow

DEFAULT_MIN_SIZE = 5
DEFAULT_MIN_SIMILARITY = 0.3
CHAR_GRAM = 4
CHAR_WEIGHT = 0.35  # relative weight of a character n-gram against a whole word
# IDF is computed as if the window also held this many posts about other things: when a burst
# is nearly all the window holds, the words its posts share must keep their weight.
IDF_PRIOR_DOCS = 30
# The brand's usual complaints: up to this many negative posts of the week before the window.
BACKGROUND_POSTS = 1000
BACKGROUND_SPAN = timedelta(days=7)
TITLE_WORDS = 4
MIN_SHARED_WORDS = 2  # words most posts of an incident must have in common
MAX_REJECTED_SEEDS = 50  # bounds the work on a window full of loosely similar posts

_STOP_TEXT = """
a about above after again against all am an and any are as at be because been before being
below between both but by can cannot could did do does doing during each few for from further
had has have having he her here hers him his how i if in into is it its itself just me more most
my no nor not now of on once only or other our own same she should so some such than that the
their them then there these they this those through to too under until very was we were what
when where which while who whom why will with would you your yours im ive dont cant didnt doesnt
isnt wont still again anyone else get got please thanks thank one two today yesterday also even
ever really much many every time since le la les un une des du de et est en que qui pour pas
sur au aux avec ce cette ces mon ma mes ne ni se sa son ses il elle ils elles nous vous je tu
mais ou donc car par plus tres deja encore toujours rien fait faire ete etre avoir suis sont
"""
# What people write to any support account whatever went wrong: shared by unrelated complaints,
# so it never makes two posts "about the same thing". ("down", "out", "off" are kept on purpose:
# "app down", "out of service".)
_SUPPORT_TEXT = """
help hi hello hey dm dms pm message messages reply replied answer yes ok okay sure know need
want going go like would could sent send contact customer customers service support team issue
issues problem problems account hour hours day days week weeks waiting wait still already guys
anything something nothing someone nobody sorry asap urgent
aide bonjour merci svp besoin message probleme service client
"""
STOP_WORDS = frozenset(_STOP_TEXT.split()) | frozenset(_SUPPORT_TEXT.split())
_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"@\w+")
_WORD = re.compile(r"[^\W_]{2,}")


@dataclass(slots=True)
class _Doc:
    mention: Mention
    words: list[str]  # stems, in order
    surface: dict[str, str]  # stem → a surface form seen
    features: Counter[str]


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def stem(word: str) -> str:
    """A light suffix strip, enough to group "crashes", "crashed" and "crashing"."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def words_of(text: str, *, ignore: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """(stem, surface form) of each meaningful word."""
    folded = _HANDLE.sub(" ", _URL.sub(" ", _fold(text)))
    out = []
    for word in _WORD.findall(folded):
        if word in STOP_WORDS or word in ignore or word.isdigit():
            continue
        out.append((stem(word), word))
    return out


def _features(pairs: Sequence[tuple[str, str]]) -> Counter[str]:
    features: Counter[str] = Counter()
    for word_stem, surface in pairs:
        features["w:" + word_stem] += 1
        padded = f"_{surface}_"
        for i in range(max(len(padded) - CHAR_GRAM + 1, 1)):
            features["c:" + padded[i : i + CHAR_GRAM]] += 1
    return features


def _doc(mention: Mention, ignore: frozenset[str]) -> _Doc:
    text = " ".join(filter(None, [mention.title, mention.clean_text or mention.text]))
    pairs = words_of(text, ignore=ignore)
    return _Doc(
        mention=mention,
        words=[s for s, _ in pairs],
        surface={s: w for s, w in pairs},
        features=_features(pairs),
    )


@dataclass(slots=True)
class Background:
    """How often each feature appears in a brand's usual complaints (document frequency)."""

    size: int = 0
    df: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, texts: Sequence[str], ignore: frozenset[str]) -> Background:
        df: Counter[str] = Counter()
        for text in texts:
            df.update(_features(words_of(text, ignore=ignore)).keys())
        return cls(len(texts), df)


def similarity_matrix(docs: Sequence[_Doc], background: Background | None = None) -> np.ndarray:
    """Cosine similarities of the docs' TF-IDF vectors (dense n × n, diagonal 1).

    IDF counts the docs and the `background` (the brand's usual complaints, when known): a word
    the brand's complaints always use ("flight" for an airline) weighs little, a word that is
    suddenly everywhere weighs a lot. Only features that two docs or more share can make two docs
    similar, so the (sparse) matrix product runs over those; each vector is still normalised with
    all of its features.
    """
    n = len(docs)
    usual = background or Background()
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(doc.features.keys())
    total = 1 + n + usual.size + IDF_PRIOR_DOCS
    shared = {f: i for i, f in enumerate(f for f, count in df.items() if count >= 2)}
    rows: list[int] = []
    columns: list[int] = []
    values: list[float] = []
    for row, doc in enumerate(docs):
        weights = {}
        for feature, count in doc.features.items():
            idf = math.log(total / (1 + df[feature] + usual.df[feature])) + 1.0
            kind = CHAR_WEIGHT if feature.startswith("c:") else 1.0
            weights[feature] = kind * (1 + math.log(count)) * idf
        norm = math.sqrt(sum(v * v for v in weights.values())) or 1.0
        for feature, weight in weights.items():
            column = shared.get(feature)
            if column is not None:
                rows.append(row)
                columns.append(column)
                values.append(weight / norm)
    matrix = sparse.csr_matrix(
        (np.asarray(values, dtype=np.float32), (rows, columns)), shape=(n, len(shared))
    )
    similarities = np.asarray((matrix @ matrix.T).todense(), dtype=np.float32)
    np.fill_diagonal(similarities, 1.0)
    return similarities


def centroid_similarity(similarities: np.ndarray, group: Sequence[int]) -> np.ndarray:
    """Each doc's cosine similarity to the centroid (sum) of `group`, from pairwise values."""
    members = list(group)
    norm = math.sqrt(max(float(similarities[np.ix_(members, members)].sum()), 1e-12))
    return np.asarray(similarities[:, members].sum(axis=1) / norm)


def _brand_terms(session: Session) -> dict[int, frozenset[str]]:
    """Words of each brand's own keywords and handles: every mention has them, so they say
    nothing about what a cluster is about."""
    terms = {}
    for brand in queries.brands(session):
        if brand.id is None:
            continue
        text = " ".join([brand.name, *brand.keywords, *brand.handles])
        found = {w for pair in words_of(text) for w in pair}
        found |= {_fold(h).lstrip("@#") for h in [*brand.keywords, *brand.handles]}
        terms[brand.id] = frozenset(found)
    return terms


def _moment(mention: Mention) -> datetime:
    return mention.created_at or mention.collected_at


def incident_keywords(docs: Sequence[_Doc], *, limit: int = TITLE_WORDS) -> list[str]:
    """The words at least half of the posts share, most shared first."""
    counts: Counter[str] = Counter()
    surfaces: dict[str, Counter[str]] = defaultdict(Counter)
    for doc in docs:
        counts.update(set(doc.words))
        for word_stem, surface in doc.surface.items():
            surfaces[word_stem][surface] += 1
    needed = max(2, math.ceil(len(docs) / 2))
    shared = [(s, n) for s, n in counts.most_common() if n >= needed]
    return [surfaces[s].most_common(1)[0][0] for s, _ in shared[:limit]]


def incident_title(keywords: Sequence[str], size: int) -> str:
    about = ", ".join(keywords) if keywords else "similar posts"
    return f"{size} similar complaints: {about}"


def _join_open_incidents(
    similarities: np.ndarray,
    free: Sequence[int],
    members: dict[int, list[int]],
    threshold: float,
) -> dict[int, list[int]]:
    """Attach each free doc to the open incident it is closest to (above the threshold)."""
    joined: dict[int, list[int]] = defaultdict(list)
    if not members or not free:
        return joined
    closeness = {iid: centroid_similarity(similarities, rows) for iid, rows in members.items()}
    for row in free:
        best_id, best = None, threshold
        for incident_id, values in closeness.items():
            if values[row] >= best:
                best_id, best = incident_id, float(values[row])
        if best_id is not None:
            joined[best_id].append(row)
    return joined


def _new_clusters(
    docs: Sequence[_Doc],
    similarities: np.ndarray,
    free: Sequence[int],
    *,
    min_size: int,
    threshold: float,
) -> list[list[int]]:
    clusters: list[list[int]] = []
    in_pool = np.zeros(len(docs), dtype=bool)
    in_pool[list(free)] = True
    close = similarities >= threshold
    degree = close[:, in_pool].sum(axis=1) - 1  # neighbours in the pool, not counting itself
    rejected = 0

    def leave(rows: Sequence[int]) -> None:
        nonlocal degree
        in_pool[list(rows)] = False
        degree = degree - close[:, list(rows)].sum(axis=1)

    while in_pool.sum() >= min_size and rejected < MAX_REJECTED_SEEDS:
        candidates = np.where(in_pool, degree, -1)
        seed = int(np.argmax(candidates))  # ties: the earliest post
        if candidates[seed] + 1 < min_size:
            break
        group = np.flatnonzero(close[seed] & in_pool).tolist()
        closeness = centroid_similarity(similarities, group)
        # Keep those close to the group as a whole: a chain of pairwise-similar posts drifting
        # from one topic to another is not one incident.
        cluster = sorted({seed, *np.flatnonzero(in_pool & (closeness >= threshold)).tolist()})
        # A real incident is about something: most of its posts share words ("app", "login",
        # "crash"). A group sharing one word or none is generic complaints that look alike.
        shared = incident_keywords([docs[r] for r in cluster])
        if len(cluster) < min_size or len(shared) < MIN_SHARED_WORDS:
            leave([seed])
            rejected += 1
            continue
        clusters.append(cluster)
        leave(cluster)
    return clusters


def update_incidents(
    session: Session,
    *,
    now: datetime | None = None,
    window_minutes: int = 60,
    min_size: int = DEFAULT_MIN_SIZE,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    close_after_hours: float = 6.0,
) -> list[Incident]:
    """Cluster recent negative mentions into incidents; returns those opened or grown now."""
    now = now or utcnow()
    since = now - timedelta(minutes=window_minutes)
    recent = queries.recent_negative_mentions(session, since=since, until=now)
    incidents = queries.incidents_seen_since(session, since=since)
    member_mentions = queries.mentions_of_incidents(
        session, incident_ids=[i.id for i in incidents if i.id is not None]
    )
    seen = {m.id for m in recent}
    everything = recent + [m for m in member_mentions if m.id not in seen]
    brand_terms = _brand_terms(session)

    by_brand: dict[int | None, list[_Doc]] = defaultdict(list)
    for mention in everything:
        ignore = brand_terms.get(mention.brand_id or -1, frozenset())
        by_brand[mention.brand_id].append(_doc(mention, ignore))

    changed: dict[int, Incident] = {}
    for brand_id, docs in by_brand.items():
        usual = queries.negative_texts_before(
            session,
            brand_id=brand_id,
            since=since - BACKGROUND_SPAN,
            until=since,
            limit=BACKGROUND_POSTS,
        )
        ignore = brand_terms.get(brand_id or -1, frozenset())
        similarities = similarity_matrix(docs, Background.of(usual, ignore))
        members: dict[int, list[int]] = defaultdict(list)
        for row, doc in enumerate(docs):
            if doc.mention.incident_id is not None:
                members[doc.mention.incident_id].append(row)
        brand_incidents = {i.id: i for i in incidents if i.brand_id == brand_id}
        members = {iid: rows for iid, rows in members.items() if iid in brand_incidents}
        free = [row for row, doc in enumerate(docs) if doc.mention.incident_id is None]
        joined = _join_open_incidents(similarities, free, members, min_similarity)
        for incident_id, rows in joined.items():
            incident = brand_incidents[incident_id]
            old = [docs[r] for r in members[incident_id]]
            if _grow(session, incident, old, [docs[r] for r in rows]):
                changed[incident_id] = incident
        taken = {row for rows in joined.values() for row in rows}
        rest = [row for row in free if row not in taken]
        for cluster in _new_clusters(
            docs, similarities, rest, min_size=min_size, threshold=min_similarity
        ):
            incident = _open(session, brand_id, [docs[r] for r in cluster])
            changed[incident.id or -1] = incident

    queries.close_quiet_incidents(session, quiet_since=now - timedelta(hours=close_after_hours))
    return list(changed.values())


def _open(session: Session, brand_id: int | None, cluster: list[_Doc]) -> Incident:
    keywords = incident_keywords(cluster)
    moments = [_moment(d.mention) for d in cluster]
    incident = Incident(
        brand_id=brand_id,
        title=incident_title(keywords, len(cluster))[:500],
        keywords=keywords,
        status="open",
        mention_count=0,
        first_seen_at=min(moments),
        last_seen_at=max(moments),
    )
    session.add(incident)
    session.flush()
    assert incident.id is not None
    ids = [d.mention.id for d in cluster if d.mention.id is not None]
    incident.mention_count = queries.attach_mentions_to_incident(
        session, incident_id=incident.id, mention_ids=ids
    )
    for doc in cluster:
        doc.mention.incident_id = incident.id
    queries.add_audit_event(
        session,
        action="incident.opened",
        entity_type="incident",
        entity_id=incident.id,
        details={"mentions": ids, "keywords": keywords},
    )
    session.flush()
    return incident


def _grow(session: Session, incident: Incident, old: list[_Doc], new: list[_Doc]) -> bool:
    assert incident.id is not None
    ids = [d.mention.id for d in new if d.mention.id is not None]
    added = queries.attach_mentions_to_incident(session, incident_id=incident.id, mention_ids=ids)
    if not added:
        return False
    for doc in new:
        doc.mention.incident_id = incident.id
    everyone = old + new
    incident.mention_count = (incident.mention_count or 0) + added
    incident.keywords = incident_keywords(everyone)
    incident.title = incident_title(incident.keywords, incident.mention_count)[:500]
    incident.last_seen_at = max([incident.last_seen_at, *(_moment(d.mention) for d in new)])
    session.add(incident)
    session.flush()
    return True
