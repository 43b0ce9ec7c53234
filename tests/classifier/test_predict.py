"""Scoring: order restored, one or many posts, and the JSONL batch contract with bad lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from classifier.model import load_model
from classifier.predict import EMPTY_SCORES, Scorer, score_jsonl
from classifier.text import normalise
from tests.classifier.conftest import pin_negative
from tocsin.config import BuzzConfig

TEXTS = [
    "short",
    "a much longer post about a flight that was cancelled at the last minute with no help at all",
    "",
    "😡😡😡",
    "medium length post about a refund",
    "short",
]


@pytest.fixture(scope="module")
def scorer(tiny_model: Path) -> Scorer:
    return Scorer(load_model(tiny_model), batch_size=2, max_length=32)


def test_order_is_restored_and_one_post_equals_many(scorer: Scorer) -> None:
    many = scorer.predict(TEXTS)
    assert len(many) == len(TEXTS)
    for text, result in zip(TEXTS, many, strict=True):
        single = scorer.predict(text)
        assert single.sentiment == result.sentiment
        assert single.sentiment_scores == pytest.approx(result.sentiment_scores, abs=1e-3)
        assert single.urgency_score == pytest.approx(result.urgency_score, abs=1e-3)
    reversed_results = scorer.predict(list(reversed(TEXTS)))
    for got, expected in zip(reversed_results, reversed(many), strict=True):
        assert got.sentiment_scores == pytest.approx(expected.sentiment_scores, abs=1e-3)
    assert many[2] == EMPTY_SCORES  # nothing to read: neutral, low, no complaint


def test_probabilities_and_derived_fields_are_consistent(scorer: Scorer) -> None:
    for result in scorer.predict(TEXTS):
        assert sum(result.sentiment_scores.values()) == pytest.approx(1.0, abs=1e-3)
        assert 0.0 <= result.urgency_score <= 1.0
        assert result.is_complaint == (result.complaint_score >= 0.5)
        assert (result.severity == 0) == (not result.is_complaint) or result.severity >= 1


def test_text_clean_up() -> None:
    assert normalise("Thanks @Delta 😍😍😍 https://t.co/abc") == (
        "Thanks @user smiling face with heart-shaped eyes http"
    )
    assert normalise("  \n ") == ""
    assert len(normalise("x " * 10_000)) <= 2000


def _run(scorer: Scorer, lines: list[str]) -> list[dict]:
    sink = io.StringIO()
    score_jsonl(io.StringIO("\n".join(lines) + "\n"), sink, scorer, BuzzConfig())
    return [json.loads(line) for line in sink.getvalue().splitlines()]


def test_jsonl_contract_fields_and_names(scorer: Scorer) -> None:
    post = {
        "id": "p1",
        "text": "My flight is cancelled and nobody answers",
        "lang": "en",
        "author": {"followers": 250000, "verified": True, "bio": "Reporter at the Daily Post"},
        "engagement": {"likes": 300, "reposts": 200, "replies": 40},
        "created_at": "2026-11-22T08:00:00Z",
        "observed_at": "2026-11-22T08:10:00+00:00",
    }
    [out] = _run(scorer, [json.dumps(post)])
    assert set(out) == {"id", "sentiment", "urgency", "complaint", "buzz_risk", "model_version"}
    assert out["id"] == "p1"
    assert set(out["sentiment"]) == {"label", "scores"}
    assert set(out["sentiment"]["scores"]) == {"negative", "neutral", "positive"}
    assert out["sentiment"]["label"] in ("negative", "neutral", "positive")
    assert set(out["urgency"]) == {"tier", "score"}
    assert out["urgency"]["tier"] in ("low", "normal", "high", "critical")
    assert set(out["complaint"]) == {"is_complaint", "severity", "score"}
    assert out["complaint"]["severity"] in range(5)
    assert set(out["buzz_risk"]) == {"score", "tier", "reasons"}
    assert "author has 250k followers" in out["buzz_risk"]["reasons"]
    assert "author is a journalist" in out["buzz_risk"]["reasons"]
    assert "reposts growing 20/min" in out["buzz_risk"]["reasons"]
    assert out["model_version"] == "tiny-test-1"


def test_every_line_gets_a_result_or_an_error_and_the_run_goes_on(scorer: Scorer) -> None:
    lines = [
        json.dumps({"id": 1, "text": ""}),
        json.dumps({"id": 2, "text": "🙏🔥💯"}),
        json.dumps({"id": 3, "text": "refund " * 3000}),  # about 20 kB
        "{not json",
        json.dumps({"id": 4, "text": "Ваш сервис ужасен, верните деньги"}),
        json.dumps({"id": 5, "text": "航班取消了，没有人帮忙"}),
        json.dumps({"id": 6, "text": "الخدمة سيئة جدا"}),
        json.dumps({"text": "no id here"}),
        json.dumps(["a", "list"]),
        json.dumps({"id": 7, "text": 42}),
        json.dumps({"id": 8, "text": "ok", "created_at": "yesterday"}),
        json.dumps({"id": 9, "text": "ok", "author": {"followers": -5}}),
        "",
        json.dumps({"id": 10, "text": "still scored after the bad lines"}),
    ]
    out = _run(scorer, lines)
    assert len(out) == 13  # one per non-blank line, in order
    assert [o.get("id") for o in out] == [1, 2, 3, None, 4, 5, 6, None, None, 7, 8, 9, 10]
    errors = {o["line"]: o["error"] for o in out if "error" in o}
    assert set(errors) == {4, 8, 9, 10, 11, 12}
    assert "not valid JSON" in errors[4]
    assert "id" in errors[8]
    assert "JSON object" in errors[9]
    assert "text" in errors[10]
    assert "created_at" in errors[11]
    assert "followers" in errors[12]
    scored = [o for o in out if "error" not in o]
    assert len(scored) == 7
    assert scored[0]["sentiment"]["label"] == "neutral" and scored[0]["urgency"]["tier"] == "low"


def test_clustering_counts_similar_negative_posts_within_the_hour(tiny_model: Path) -> None:
    loaded = load_model(tiny_model)
    scorer = Scorer(loaded)
    pin_negative(loaded)  # every post negative: clustering is what is under test here
    storm = [
        {
            "id": i,
            "text": f"payment terminal outage again store {i}, card payment refused",
            "created_at": f"2026-11-22T08:{10 + i:02d}:00Z",
        }
        for i in range(6)
    ]
    late = {
        "id": "late",
        "text": "payment terminal outage, card payment refused",
        "created_at": "2026-11-22T11:00:00Z",
    }
    other = {
        "id": "other",
        "text": "lovely weather in the park",
        "created_at": "2026-11-22T08:20:00Z",
    }
    out = _run(scorer, [json.dumps(p) for p in [*storm, late, other]])
    reasons = {o["id"]: o["buzz_risk"]["reasons"] for o in out}
    assert "5 similar negative posts in the last hour" in reasons[5]
    assert not any("similar" in r for r in reasons["late"])
    assert not any("similar" in r for r in reasons["other"])
