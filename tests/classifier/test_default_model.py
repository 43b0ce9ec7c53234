"""The shipped default weights: they load out of the box and get the clear cases right."""

from __future__ import annotations

import json

import pytest

from classifier.model import DEFAULT_WEIGHTS, load_model
from classifier.predict import Scorer
from classifier.quantize import quantize_static, ranges_from_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["fp32", "int8"])
def scorer(request: pytest.FixtureRequest) -> Scorer:
    """The default weights as shipped, and as run by default (int8 encoder)."""
    loaded = load_model()
    if request.param == "int8":
        assert quantize_static(loaded, ranges_from_json(loaded.spec.activation_ranges))
        return Scorer(loaded, suffix="+int8")
    return Scorer(loaded)


def test_the_default_weights_are_a_small_delta_with_their_metrics() -> None:
    size = sum(path.stat().st_size for path in DEFAULT_WEIGHTS.iterdir() if path.is_file())
    assert size <= 25 * 1024 * 1024
    spec = json.loads((DEFAULT_WEIGHTS / "model.json").read_text())
    assert spec["encoder"] == "default"
    assert spec["labels"]["sentiment"] == ["negative", "neutral", "positive"]
    assert "sentiment" in spec["metrics"]["validation"]


def test_clear_cases(scorer: Scorer) -> None:
    angry, praise, urgent = scorer.predict(
        [
            "@AcmeAir worst airline ever. Lost my luggage AGAIN, nobody answers the phone, "
            "absolutely disgusting service. I want my money back!",
            "Huge thanks to the @AcmeAir crew today, lovely flight and super friendly staff! 😍",
            "@AcmeBank someone is using my card RIGHT NOW, 5 payments I did not make in the last "
            "10 minutes. Block it please!!",
        ]
    )
    assert angry.sentiment == "negative"
    assert angry.is_complaint and angry.severity >= 2
    assert praise.sentiment == "positive"
    assert not praise.is_complaint
    assert praise.urgency == "low"
    assert urgent.urgency in ("high", "critical")
    assert urgent.urgency_score > praise.urgency_score
    assert urgent.urgency_score > 0.6


def test_clear_cases_outside_english(scorer: Scorer) -> None:
    praise, question, fraud = scorer.predict(
        [
            "Merci @AcmeAir pour ce vol parfait, équipage adorable et arrivée en avance !",
            "@AcmeMobile ¿el plan de 20 GB incluye roaming en Portugal? Gracias",
            "@AcmeBank qualcuno sta usando la mia carta in questo momento, 4 pagamenti che non ho "
            "fatto negli ultimi 10 minuti! Bloccatela subito!!",
        ]
    )
    assert praise.urgency in ("low", "normal") and praise.sentiment != "negative"
    assert question.urgency in ("low", "normal")
    assert fraud.urgency in ("high", "critical")
    assert fraud.urgency_score > max(praise.urgency_score, question.urgency_score)
