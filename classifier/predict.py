"""Scoring: texts through the model (sorted by length, batched, order restored), then buzz risk.

Three entry points:
- `Scorer.predict(text_or_texts)`: the heads' judgements for one text or many;
- `score_jsonl(...)`: the batch contract (`tocsin score --input posts.jsonl --output out.jsonl`);
- the database mode (unscored mentions -> Score rows and cases) is `classifier.pending`.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, overload

import torch

from classifier.buzz import BuzzInputs, BuzzRisk, buzz_risk, classify_profile, text_threats
from classifier.cluster import NegativePost, content_words, count_similar
from classifier.labels import SENTIMENT, URGENCY, URGENCY_WEIGHTS
from classifier.model import DEFAULT_ENCODER, LoadedModel, load_model
from classifier.quantize import quantize_static, ranges_from_json
from classifier.text import normalise
from tocsin.config import BuzzConfig, ModelConfig

Progress = Callable[[int], None]  # called with the number of posts just finished


@dataclass(frozen=True)
class TextScores:
    """What the text alone says: the heads' outputs."""

    sentiment: str
    sentiment_scores: dict[str, float]
    urgency: str
    urgency_score: float
    is_complaint: bool
    complaint_score: float
    severity: int


EMPTY_SCORES = TextScores(
    sentiment="neutral",
    sentiment_scores={"negative": 0.0, "neutral": 1.0, "positive": 0.0},
    urgency="low",
    urgency_score=0.0,
    is_complaint=False,
    complaint_score=0.0,
    severity=0,
)


class Scorer:
    """A loaded model ready to score: batches sorted by length, inference mode, order restored."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        batch_size: int = 64,
        max_length: int = 128,
        suffix: str = "",
    ):
        self.loaded = loaded
        self.batch_size = max(1, batch_size)
        self.max_length = max_length
        self.suffix = suffix  # "+int8" when the weights run quantised: scores differ slightly
        loaded.model.eval()

    @property
    def version(self) -> str:
        return self.loaded.spec.version + self.suffix

    @overload
    def predict(  # type: ignore[overload-overlap]
        self, texts: str, *, progress: Progress | None = None
    ) -> TextScores: ...

    @overload
    def predict(
        self, texts: Sequence[str], *, progress: Progress | None = None
    ) -> list[TextScores]: ...

    def predict(
        self, texts: str | Sequence[str], *, progress: Progress | None = None
    ) -> TextScores | list[TextScores]:
        if isinstance(texts, str):
            return self.predict([texts])[0]
        cleaned = [normalise(text) for text in texts]
        unique = [text for text in dict.fromkeys(cleaned) if text]  # copies are scored once
        scored = dict(zip(unique, self._predict_unique(unique, progress), strict=True))
        if progress is not None and len(cleaned) > len(unique):
            progress(len(cleaned) - len(unique))
        return [scored.get(text, EMPTY_SCORES) for text in cleaned]

    def _predict_unique(self, texts: list[str], progress: Progress | None) -> list[TextScores]:
        if not texts:
            return []
        tokenizer = self.loaded.tokenizer
        encoded = tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        results: list[TextScores | None] = [None] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                picked = order[start : start + self.batch_size]
                batch = tokenizer.pad(
                    {"input_ids": [encoded[i] for i in picked]}, return_tensors="pt"
                )
                logits = self.loaded.model(batch["input_ids"], batch["attention_mask"])
                for index, scores in zip(picked, _decode_batch(logits), strict=True):
                    results[index] = scores
                if progress is not None:
                    progress(len(picked))
        return [result for result in results if result is not None]


def _decode_batch(logits: dict[str, torch.Tensor]) -> list[TextScores]:
    """The heads' logits for a batch -> one TextScores per row (softmax once per head)."""
    probs = {head: torch.softmax(values.float(), -1).tolist() for head, values in logits.items()}
    return [
        _decode(
            probs["sentiment"][row],
            probs["urgency"][row],
            probs["complaint"][row][1],
            probs["severity"][row],
        )
        for row in range(len(probs["sentiment"]))
    ]


def _decode(
    sentiment: list[float], urgency: list[float], complaint_score: float, severity: list[float]
) -> TextScores:
    is_complaint = complaint_score >= 0.5
    # Severity only describes complaints: the most likely of 1-4 when it is one, else 0.
    level = 1 + max(range(4), key=lambda i: severity[i + 1]) if is_complaint else 0
    best_sentiment = max(range(len(SENTIMENT)), key=lambda i: sentiment[i])
    best_urgency = max(range(len(URGENCY)), key=lambda i: urgency[i])
    return TextScores(
        sentiment=SENTIMENT[best_sentiment],
        sentiment_scores={name: round(p, 4) for name, p in zip(SENTIMENT, sentiment, strict=True)},
        urgency=URGENCY[best_urgency],
        urgency_score=round(sum(p * w for p, w in zip(urgency, URGENCY_WEIGHTS, strict=True)), 4),
        is_complaint=is_complaint,
        complaint_score=round(complaint_score, 4),
        severity=level,
    )


_SCORERS: dict[tuple[Any, ...], Scorer] = {}


def get_scorer(config: ModelConfig) -> Scorer:
    """The process's scorer for these model settings (loaded once)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    key = (config.encoder, config.weights, config.batch_size, config.max_length, config.precision)
    if key not in _SCORERS:
        if config.weights:
            loaded = load_model(config.weights, encoder=config.encoder)
        elif config.encoder != DEFAULT_ENCODER:
            from classifier.model import ModelError

            raise ModelError(
                f"encoder {config.encoder!r} has no fine-tuned heads: train them with "
                f"`tocsin train --encoder {config.encoder} ...` and set model.weights to the folder"
            )
        else:
            loaded = load_model()
        quantized = config.precision == "int8" and quantize_static(
            loaded, ranges_from_json(loaded.spec.activation_ranges)
        )
        _SCORERS[key] = Scorer(
            loaded,
            batch_size=config.batch_size,
            max_length=config.max_length,
            suffix="+int8" if quantized else "",
        )
    return _SCORERS[key]


# ----------------------------------------------------------------------------- context and buzz


@dataclass
class PostContext:
    """What buzz risk needs beyond the text."""

    followers: int = 0
    verified: bool = False
    bio: str | None = None
    handle: str | None = None
    vip: bool = False
    journalist: bool = False
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    created_at: datetime | None = None
    observed_at: datetime | None = None

    def minutes_live(self) -> float | None:
        if self.created_at is None or self.observed_at is None:
            return None
        return max((self.observed_at - self.created_at).total_seconds() / 60.0, 1.0)

    def engagement_per_minute(self) -> float:
        minutes = self.minutes_live()
        if minutes is None:
            return 0.0
        return (self.likes + self.reposts + self.replies) / minutes

    def reposts_per_minute(self) -> float:
        minutes = self.minutes_live()
        return self.reposts / minutes if minutes is not None else 0.0


def usual_pace(rates: Sequence[float], default: float, minimum_samples: int = 20) -> float:
    """The median engagement pace when there is enough history, else the configured default."""
    known = [rate for rate in rates if math.isfinite(rate) and rate >= 0]
    if len(known) < minimum_samples:
        return default
    return max(statistics.median(known), 1e-3)


def buzz_for(
    text: str,
    scores: TextScores,
    context: PostContext,
    *,
    similar: int,
    usual: float,
    config: BuzzConfig,
) -> BuzzRisk:
    profile = classify_profile(
        bio=context.bio,
        handle=context.handle,
        journalist_flag=context.journalist,
        vip_flag=context.vip,
        journalist_handles=config.journalist_handles,
        vip_handles=config.vip_handles,
        extra_journalist_words=config.journalist_keywords,
        extra_vip_words=config.vip_keywords,
    )
    return buzz_risk(
        BuzzInputs(
            complaint_severity=scores.severity,
            complaint_score=scores.complaint_score,
            negativity=scores.sentiment_scores["negative"],
            urgency_score=scores.urgency_score,
            threats=text_threats(text),
            followers=max(context.followers, 0),
            verified=context.verified,
            vip=profile.vip,
            journalist=profile.journalist,
            engagement_per_minute=context.engagement_per_minute(),
            reposts_per_minute=context.reposts_per_minute(),
            usual_per_minute=usual,
            similar_negative_last_hour=similar,
        )
    )


def result_record(post_id: Any, scores: TextScores, buzz: BuzzRisk, version: str) -> dict[str, Any]:
    """One output line of the batch contract (DESIGN.md, "Scoring contract")."""
    return {
        "id": post_id,
        "sentiment": {"label": scores.sentiment, "scores": dict(scores.sentiment_scores)},
        "urgency": {"tier": scores.urgency, "score": scores.urgency_score},
        "complaint": {
            "is_complaint": scores.is_complaint,
            "severity": scores.severity,
            "score": scores.complaint_score,
        },
        "buzz_risk": {"score": buzz.score, "tier": buzz.tier, "reasons": list(buzz.reasons)},
        "model_version": version,
    }


# ----------------------------------------------------------------------------- JSONL batch mode


class LineError(ValueError):
    """One input line that cannot be scored; the run goes on."""


@dataclass
class ParsedPost:
    id: Any
    text: str
    lang: str | None
    context: PostContext


@dataclass
class JsonlSummary:
    scored: int = 0
    errors: int = 0
    skipped_blank: int = 0
    error_lines: list[int] = field(default_factory=list)


def parse_time(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise LineError(f"{name}: expected an ISO 8601 time string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise LineError(f"{name}: not an ISO 8601 time ({value[:40]!r})") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _count(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise LineError(f"{name}: expected a non-negative number")
    if isinstance(value, float) and not math.isfinite(value):
        raise LineError(f"{name}: expected a non-negative number")
    return int(value)


def _flag(value: Any, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise LineError(f"{name}: expected true or false")
    return value


def _section(record: dict[str, Any], name: str) -> dict[str, Any]:
    value = record.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LineError(f"{name}: expected an object")
    return value


def parse_post(record: Any, now: datetime) -> ParsedPost:
    if not isinstance(record, dict):
        raise LineError("expected a JSON object")
    post_id = record.get("id")
    if post_id is None or isinstance(post_id, (dict, list, bool)) or post_id == "":
        raise LineError('missing "id" (a string or a number)')
    text = record.get("text")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise LineError('"text": expected a string')
    lang = record.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise LineError('"lang": expected a string')
    author = _section(record, "author")
    engagement = _section(record, "engagement")
    bio = author.get("bio")
    handle = author.get("handle")
    context = PostContext(
        followers=_count(author.get("followers"), "author.followers"),
        verified=_flag(author.get("verified"), "author.verified"),
        bio=bio if isinstance(bio, str) else None,
        handle=handle if isinstance(handle, str) else None,
        vip=_flag(author.get("vip"), "author.vip"),
        journalist=_flag(author.get("journalist"), "author.journalist"),
        likes=_count(engagement.get("likes"), "engagement.likes"),
        reposts=_count(engagement.get("reposts"), "engagement.reposts"),
        replies=_count(engagement.get("replies"), "engagement.replies"),
        created_at=parse_time(record.get("created_at"), "created_at"),
        observed_at=parse_time(record.get("observed_at"), "observed_at") or now,
    )
    return ParsedPost(post_id, text, lang, context)


def _error_record(post_id: Any, line: int, message: str) -> dict[str, Any]:
    return {"id": post_id, "line": line, "error": message}


def _read_lines(
    handle: IO[str], now: datetime
) -> tuple[list[tuple[int, ParsedPost | dict[str, Any]]], int]:
    entries: list[tuple[int, ParsedPost | dict[str, Any]]] = []
    blank = 0
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            blank += 1
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            entries.append((number, _error_record(None, number, f"not valid JSON ({exc.msg})")))
            continue
        try:
            entries.append((number, parse_post(record, now)))
        except LineError as exc:
            post_id = record.get("id") if isinstance(record, dict) else None
            if isinstance(post_id, (dict, list)):
                post_id = None
            entries.append((number, _error_record(post_id, number, str(exc))))
    return entries, blank


def score_posts(
    posts: Sequence[ParsedPost],
    scorer: Scorer,
    config: BuzzConfig,
    *,
    now: datetime,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Contract records for parsed posts; clustering and the usual pace come from the batch."""
    text_scores = scorer.predict([post.text for post in posts], progress=progress)
    moments = [post.context.created_at or post.context.observed_at or now for post in posts]
    words = [content_words(post.text) for post in posts]
    pool = sorted(
        (
            NegativePost(index, moments[index], words[index])
            for index, scores in enumerate(text_scores)
            if scores.sentiment == "negative"
        ),
        key=lambda item: item.at,
    )
    usual = usual_pace(
        [p.context.engagement_per_minute() for p in posts if p.context.minutes_live() is not None],
        config.usual_engagement_per_minute,
    )
    times = [item.at for item in pool]
    records = []
    for index, (post, scores) in enumerate(zip(posts, text_scores, strict=True)):
        similar = count_similar(index, moments[index], words[index], pool, times)
        buzz = buzz_for(
            post.text, scores, post.context, similar=similar, usual=usual, config=config
        )
        records.append(result_record(post.id, scores, buzz, scorer.version))
    return records


def score_jsonl(
    source: IO[str],
    sink: IO[str],
    scorer: Scorer,
    config: BuzzConfig,
    *,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> JsonlSummary:
    """Score every line of `source` into `sink`, one output line per non-blank input line, in order.

    `progress(done, total)` is called as posts are scored.
    """
    now = now or datetime.now(UTC)
    entries, blank = _read_lines(source, now)
    posts = [entry for _, entry in entries if isinstance(entry, ParsedPost)]
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, len(posts))

    records = iter(score_posts(posts, scorer, config, now=now, progress=advance))
    summary = JsonlSummary(skipped_blank=blank)
    for number, entry in entries:
        if isinstance(entry, ParsedPost):
            record = next(records)
            summary.scored += 1
        else:
            record = entry
            summary.errors += 1
            summary.error_lines.append(number)
        sink.write(json.dumps(record, ensure_ascii=False) + "\n")
    return summary


def score_file(
    input_path: Path,
    output_path: Path,
    scorer: Scorer,
    config: BuzzConfig,
    progress: Callable[[int, int], None] | None = None,
) -> JsonlSummary:
    """`score_jsonl` between two paths ("-" for standard input/output is handled by the CLI)."""
    with (
        input_path.open(encoding="utf-8", errors="replace") as source,
        output_path.open("w", encoding="utf-8") as sink,
    ):
        return score_jsonl(source, sink, scorer, config, progress=progress)
