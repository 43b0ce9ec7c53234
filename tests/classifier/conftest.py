"""A tiny BERT encoder saved to a folder (the "any Hugging Face folder" path), and a tiny model
trained on it with the real training code. Most classifier tests use these: fast on a CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from classifier.data import Dataset, Example
from classifier.model import LoadedModel, encoder_path
from classifier.train import TrainConfig, train

TRAIN_TEXTS = [
    (
        "I love this, thank you so much!",
        {"sentiment": 2, "urgency": 0, "complaint": 0, "severity": 0},
    ),
    (
        "Great service today, well done",
        {"sentiment": 2, "urgency": 0, "complaint": 0, "severity": 0},
    ),
    (
        "My card was stolen and someone is using it right now",
        {"sentiment": 0, "urgency": 3, "complaint": 1, "severity": 3},
    ),
    (
        "Worst airline ever, lost my bag again",
        {"sentiment": 0, "urgency": 2, "complaint": 1, "severity": 4},
    ),
    (
        "When does the new store open?",
        {"sentiment": 1, "urgency": 1, "complaint": 0, "severity": 0},
    ),
    ("The app is fine I guess", {"sentiment": 1, "urgency": 0, "complaint": 0, "severity": 0}),
]


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 2-layer, 32-wide BERT with the packaged tokenizer, saved like any Hugging Face folder."""
    folder = tmp_path_factory.mktemp("tiny-encoder")
    tokenizer = AutoTokenizer.from_pretrained(encoder_path("default"), local_files_only=True)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    BertModel(config).save_pretrained(folder)
    return str(folder)


def tiny_dataset(copies: int = 4) -> Dataset:
    examples = [
        Example(text, dict(labels), "tiny", "en", None) for text, labels in TRAIN_TEXTS
    ] * copies
    return Dataset(
        train=examples, val=[Example(t, dict(y), "tiny", "en", "val") for t, y in TRAIN_TEXTS]
    )


@pytest.fixture(scope="session")
def tiny_model(tiny_encoder: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder trained on the tiny encoder (one epoch, the real code path)."""
    folder = tmp_path_factory.mktemp("tiny-model")
    config = TrainConfig(
        encoder=tiny_encoder, epochs=1, batch_size=8, min_per_head=1, version="tiny-test-1"
    )
    train(tiny_dataset(), folder, config, log=lambda line: None)
    return folder


def pin_negative(loaded: LoadedModel) -> None:
    """Pin the sentiment head to "negative" (for tests of what follows from negativity)."""
    head: Any = loaded.model.heads["sentiment"]
    with torch.no_grad():
        head.bias[:] = torch.tensor([50.0, 0.0, 0.0])
