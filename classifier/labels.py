"""Label names shared by the heads, the training data and the batch contract."""

from __future__ import annotations

SENTIMENT = ("negative", "neutral", "positive")
URGENCY = ("low", "normal", "high", "critical")
COMPLAINT = ("no", "yes")
SEVERITY = ("0", "1", "2", "3", "4")

HEADS: dict[str, tuple[str, ...]] = {
    "sentiment": SENTIMENT,
    "urgency": URGENCY,
    "complaint": COMPLAINT,
    "severity": SEVERITY,
}

# Urgency score (0-1) = expected tier position under the head's probabilities.
URGENCY_WEIGHTS = (0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0)
