"""The int8 encoder: close to fp32, and a post's scores never depend on its batch mates."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from classifier.model import ModelSpec, load_model
from classifier.predict import Scorer, get_scorer
from classifier.quantize import (
    StaticInt8Linear,
    calibrate,
    encoder_linears,
    quantize_static,
    ranges_from_json,
)
from tests.classifier.conftest import TRAIN_TEXTS
from tocsin.config import ModelConfig

TEXTS = [text for text, _ in TRAIN_TEXTS] + [
    "refund please, charged twice for one ticket",
    "Merci pour le vol, équipage adorable",
    "a much longer post about a delayed train, a missed connection, a night in a station hotel "
    "and a refund form that keeps rejecting the booking number",
]


def test_training_writes_a_range_for_every_encoder_linear_layer(tiny_model: Path) -> None:
    spec = ModelSpec.read(tiny_model)
    loaded = load_model(tiny_model)
    assert set(spec.activation_ranges) == set(encoder_linears(loaded))
    assert all(low < high for low, high in spec.activation_ranges.values())


def test_calibration_is_repeatable(tiny_model: Path) -> None:
    loaded = load_model(tiny_model)
    first = calibrate(loaded, TEXTS, batch_size=4)
    assert first == calibrate(loaded, TEXTS, batch_size=4)
    assert set(first) == set(encoder_linears(loaded))


def test_int8_scores_are_close_to_fp32_and_independent_of_the_batch(tiny_model: Path) -> None:
    exact = Scorer(load_model(tiny_model)).predict(TEXTS)
    loaded = load_model(tiny_model)
    assert quantize_static(loaded, ranges_from_json(loaded.spec.activation_ranges))
    scorer = Scorer(loaded, batch_size=4)
    together = scorer.predict(TEXTS)
    alone = [scorer.predict(text) for text in TEXTS]
    assert together == alone  # bit for bit: ranges are fixed, not taken from the batch
    for fast, slow in zip(together, exact, strict=True):
        for label, p in slow.sentiment_scores.items():
            assert fast.sentiment_scores[label] == pytest.approx(p, abs=0.05)
        assert fast.urgency_score == pytest.approx(slow.urgency_score, abs=0.05)


def test_precision_setting_and_model_version(tiny_model: Path, tiny_encoder: str) -> None:
    def scorer(precision: Literal["int8", "fp32"]) -> Scorer:
        config = ModelConfig(encoder=tiny_encoder, weights=str(tiny_model), precision=precision)
        return get_scorer(config)

    assert scorer("int8").version == "tiny-test-1+int8"
    assert scorer("fp32").version == "tiny-test-1"

    def swapped(precision: Literal["int8", "fp32"]) -> int:
        encoder = scorer(precision).loaded.model.encoder
        return sum(isinstance(module, StaticInt8Linear) for module in encoder.modules())

    # Every linear layer of the transformer blocks runs on int8, or none does.
    assert swapped("int8") == len(encoder_linears(load_model(tiny_model))) > 0
    assert swapped("fp32") == 0


def test_a_model_without_ranges_runs_in_fp32(tiny_model: Path, tmp_path: Path) -> None:
    for item in tiny_model.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    spec = ModelSpec.read(tmp_path)
    spec.activation_ranges = {}
    spec.write(tmp_path)
    loaded = load_model(tmp_path)
    assert not quantize_static(loaded, ranges_from_json(loaded.spec.activation_ranges))
    assert Scorer(loaded).predict(TEXTS[0]).sentiment in ("negative", "neutral", "positive")
