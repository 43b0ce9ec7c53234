"""The encoder/heads model: any Hugging Face folder as encoder, split forward, delta save/load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from classifier.model import DELTA_FILE, ModelError, load_model, new_model
from classifier.predict import Scorer


def test_a_folder_encoder_loads_with_the_transformers_code(tiny_encoder: str) -> None:
    loaded = new_model(tiny_encoder)
    assert loaded.model.num_layers == 2
    assert set(loaded.model.heads) == {"sentiment", "urgency", "complaint", "severity"}
    assert loaded.model.heads["urgency"].out_features == 4


def test_bottom_then_top_equals_one_full_pass(tiny_encoder: str) -> None:
    loaded = new_model(tiny_encoder)
    model = loaded.model.eval()
    batch = loaded.tokenizer(["my flight is cancelled", "ok"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        full = model(batch["input_ids"], batch["attention_mask"])
        hidden = model.bottom(batch["input_ids"], batch["attention_mask"], 1)
        split = model.top(hidden, batch["attention_mask"], 1)
    for head in full:
        assert torch.allclose(full[head], split[head], atol=1e-5)


def test_trained_folder_holds_a_delta_and_reloads_to_the_same_scores(tiny_model: Path) -> None:
    spec = json.loads((tiny_model / "model.json").read_text())
    assert spec["version"] == "tiny-test-1"
    assert spec["labels"]["urgency"] == ["low", "normal", "high", "critical"]
    assert "validation" in spec["metrics"]
    from safetensors.torch import load_file

    delta = load_file(str(tiny_model / DELTA_FILE))
    assert any(key.startswith("heads.") for key in delta)
    assert not any("embeddings" in key for key in delta)  # the base part is never copied
    first = Scorer(load_model(tiny_model)).predict("lost my luggage, furious")
    second = Scorer(load_model(tiny_model)).predict("lost my luggage, furious")
    assert first == second


def test_wrong_encoder_or_missing_folder_is_a_clear_error(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="trained on encoder"):
        load_model(tiny_model, encoder="some-other/encoder")
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nothing-here")
    with pytest.raises(ModelError, match="cannot load encoder"):
        new_model(str(tmp_path / "no-such-encoder-folder"))
