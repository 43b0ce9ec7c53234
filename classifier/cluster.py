"""Similar negative posts in the last hour: the clustering input of buzz risk.

Similarity is lexical (shared content words), so it is cheap, needs no stored embeddings and can be
explained ("12 similar negative posts"). Handles, links, stop words and the brand's own names are
left out, since every mention of a brand shares those.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from classifier.buzz import fold

WINDOW = timedelta(hours=1)
MAX_COMPARED = 2000  # most recent posts compared per post: bounds the cost in a storm

_WORD = re.compile(r"[^\W\d_]{3,}")
_NOISE = re.compile(r"https?://\S+|www\.\S+|@\w+")
STOP_WORDS = frozenset(
    fold(word)
    for word in """
    the and for are but not you your with this that have has had was were will just can cant
    dont don get got from they them their there what when why how who all any been our out
    about into than then too very its it's also again still now today here more some would
    could should really even only one why because after before over being does did doing les
    des une est pas que qui pour dans sur avec mais vous nous ils elle ses son sont cette tout
    tous plus moins comme fait faire ete avoir etre deja encore aujourd hui los las una por
    para con pero que del como mas esta este son hay muy sin todo ya gli della delle che per
    con non sono una come piu anche questo questa ancora oggi der die das und nicht ist ein
    eine mit fur auf den dem des sich auch noch schon heute
    """.split()  # noqa: SIM905
)


def content_words(text: str, ignore: Iterable[str] = ()) -> frozenset[str]:
    words = _content_words(text)
    skip = {fold(word) for word in ignore}
    return frozenset(words - skip) if skip else words


@lru_cache(maxsize=8192)  # the last hour's negative posts are compared with every new batch
def _content_words(text: str) -> frozenset[str]:
    folded = fold(_NOISE.sub(" ", text))
    return frozenset(word for word in _WORD.findall(folded) if word not in STOP_WORDS)


def similar(a: frozenset[str], b: frozenset[str]) -> bool:
    """At least two shared content words covering half of the shorter post."""
    shared = len(a & b)
    return shared >= 2 and shared >= 0.5 * min(len(a), len(b))


@dataclass(frozen=True)
class NegativePost:
    key: object  # the post's id, so that a post is never counted as its own neighbour
    at: datetime
    words: frozenset[str]


def count_similar(
    post_key: object,
    at: datetime,
    words: frozenset[str],
    pool: Sequence[NegativePost],
    times: Sequence[datetime] | None = None,
) -> int:
    """Negative posts of `pool` (sorted by time) within the hour before `at` that look similar.

    `times` (the pool's times, in order) saves rebuilding them when one pool serves many posts.
    """
    if len(words) < 2:
        return 0
    if times is None:
        times = [item.at for item in pool]
    end = bisect.bisect_right(times, at)
    start = max(bisect.bisect_left(times, at - WINDOW), end - MAX_COMPARED)
    return sum(1 for item in pool[start:end] if item.key != post_key and similar(words, item.words))
