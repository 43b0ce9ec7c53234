"""Metrics per head and per source: the figures the model card and `tocsin eval` report.

Conventions: TweetEval sentiment by macro-averaged recall, XLM-T by macro-F1, complaints by F1
of the complaint class (and macro-F1), urgency by macro-F1 with the recall of each tier.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from classifier.labels import HEADS

PRIMARY = {
    "sentiment": "macro_recall",
    "urgency": "macro_f1",
    "complaint": "f1",
    "severity": "macro_f1",
}


def classification_metrics(
    gold: Sequence[int], pred: Sequence[int], n_classes: int
) -> dict[str, Any]:
    """Accuracy, macro recall/F1 over the classes present in gold, and per-class recall."""
    y, p = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    recalls, f1s = [], []
    per_class: dict[int, dict[str, float]] = {}
    for label in range(n_classes):
        support = int((y == label).sum())
        if support == 0:
            continue
        tp = float(((y == label) & (p == label)).sum())
        predicted = float((p == label).sum())
        recall = tp / support
        precision = tp / predicted if predicted else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        recalls.append(recall)
        f1s.append(f1)
        per_class[label] = {"recall": recall, "precision": precision, "f1": f1, "support": support}
    return {
        "n": len(y),
        "accuracy": float((y == p).mean()) if len(y) else 0.0,
        "macro_recall": float(np.mean(recalls)) if recalls else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "per_class": per_class,
    }


def head_metrics(head: str, gold: Sequence[int], pred: Sequence[int]) -> dict[str, Any]:
    names = HEADS[head]
    base = classification_metrics(gold, pred, len(names))
    per_class = {names[label]: values for label, values in base.pop("per_class").items()}
    result: dict[str, Any] = {
        key: round(value, 4) if isinstance(value, float) else value for key, value in base.items()
    }
    result["recall"] = {name: round(values["recall"], 4) for name, values in per_class.items()}
    if head == "complaint":
        yes = per_class.get("yes", {"f1": 0.0, "precision": 0.0, "recall": 0.0})
        result["f1"] = round(yes["f1"], 4)
        result["precision"] = round(yes["precision"], 4)
    if head == "severity" and len(gold):
        result["mae"] = round(float(np.abs(np.asarray(gold) - np.asarray(pred)).mean()), 4)
    return result


def evaluate_predictions(
    rows: Sequence[tuple[str, str, int, int]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """rows of (head, group, gold, predicted) -> {head: {"all": metrics, group: metrics}}."""
    by_head: dict[str, dict[str, tuple[list[int], list[int]]]] = defaultdict(
        lambda: defaultdict(lambda: ([], []))
    )
    for head, group, gold, pred in rows:
        for key in ("all", group):
            by_head[head][key][0].append(gold)
            by_head[head][key][1].append(pred)
    return {
        head: {group: head_metrics(head, golds, preds) for group, (golds, preds) in groups.items()}
        for head, groups in by_head.items()
    }


def selection_score(metrics: dict[str, dict[str, dict[str, Any]]]) -> float:
    """One number to pick the best epoch: the mean of each head's primary metric on all its data."""
    values = [
        float(groups["all"][PRIMARY[head]]) for head, groups in metrics.items() if "all" in groups
    ]
    return float(np.mean(values)) if values else 0.0


def format_metrics(metrics: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Human-readable lines, one per head and source."""
    lines = []
    for head in sorted(metrics):
        for group in sorted(metrics[head], key=lambda name: (name != "all", name)):
            values = metrics[head][group]
            main = PRIMARY[head]
            extra = f"  macro-F1 {values['macro_f1'] * 100:.1f}" if main != "macro_f1" else ""
            lines.append(
                f"{head:<9} {group:<28} n={values['n']:<5} {main} {values[main] * 100:.1f}"
                f"{extra}  accuracy {values['accuracy'] * 100:.1f}"
            )
    return lines


def evaluate_scorer(scorer: Any, examples: Sequence[Any], progress: Any = None) -> dict[str, Any]:
    """Score labelled `classifier.data.Example`s with a `Scorer`: metrics per head and source."""
    from classifier.labels import COMPLAINT, SENTIMENT, URGENCY

    predictions = scorer.predict([example.text for example in examples], progress=progress)
    rows: list[tuple[str, str, int, int]] = []
    for example, scores in zip(examples, predictions, strict=True):
        predicted = {
            "sentiment": SENTIMENT.index(scores.sentiment),
            "urgency": URGENCY.index(scores.urgency),
            "complaint": COMPLAINT.index("yes" if scores.is_complaint else "no"),
            "severity": scores.severity,
        }
        for head, gold in example.labels.items():
            rows.append((head, example.group, gold, predicted[head]))
    return evaluate_predictions(rows)


def vocabulary_fit(tokenizer: Any, texts: Sequence[str]) -> dict[str, float]:
    """How well the encoder's vocabulary covers the texts: unknown-token share, pieces per word."""
    from classifier.text import normalise

    unknown_id = getattr(tokenizer, "unk_token_id", None)
    tokens = unknown = words = 0
    for text in texts:
        cleaned = normalise(text)
        ids = tokenizer(cleaned, add_special_tokens=False)["input_ids"]
        tokens += len(ids)
        unknown += sum(1 for token in ids if token == unknown_id)
        words += max(len(cleaned.split()), 1)
    return {
        "unknown_rate": round(unknown / tokens, 4) if tokens else 0.0,
        "pieces_per_word": round(tokens / words, 3) if words else 0.0,
    }
