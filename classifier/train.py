"""Fine-tuning: the top encoder layers and the heads, on cached outputs of the frozen bottom layers.

On a CPU the encoder's forward pass dominates. The bottom layers stay frozen, so their output for
each text is computed once (and kept on disk under the cache folder, keyed by encoder, split point
and text); every epoch then only runs the trainable top layers. Encoders without a BERT-like layer
list are fine-tuned whole, without the cache.
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from classifier.data import Dataset, Example
from classifier.evaluate import evaluate_predictions, selection_score
from classifier.labels import HEADS
from classifier.model import (
    DELTA_FILE,
    LoadedModel,
    MultiHeadModel,
    load_model,
    new_model,
    save_model,
)
from classifier.quantize import calibrate, ranges_to_json
from classifier.text import normalise

Log = Callable[[str], None]
Progress = Callable[[int, int, str], None]  # (done, total, description)


@dataclass
class TrainConfig:
    encoder: str = "default"
    init_from: Path | None = None  # continue from a trained model folder
    top_layers: int = 2  # trainable transformer layers, counted from the top
    max_length: int = 64
    epochs: int = 4
    batch_size: int = 32
    lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.05
    min_per_head: int = 6000  # heads with fewer training labels are repeated up to this per epoch
    class_balance: float = 0.5  # class weight = frequency ** -class_balance
    threads: int | None = None
    cache_dir: Path | None = None
    seed: int = 13
    version: str | None = None
    heads: tuple[str, ...] | None = None  # train only these heads (the others stay as they are)
    freeze_layers: bool = False  # train the heads alone (the top layers run but stay fixed)
    max_examples: dict[str, int] = field(default_factory=dict)  # per source: a sample per epoch


@dataclass
class TrainResult:
    folder: Path
    version: str
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Item:
    key: str  # normalised text
    labels: dict[str, int]
    group: str


def _items(examples: Sequence[Example]) -> list[_Item]:
    return [
        _Item(normalise(example.text), dict(example.labels), example.group) for example in examples
    ]


class HiddenCache:
    """Bottom-layer outputs per normalised text, fp16, optionally persisted to one file."""

    def __init__(self, path: Path | None):
        self.path = path
        self.states: dict[str, torch.Tensor] = {}
        if path is not None and path.is_file():
            self.states = torch.load(path, weights_only=True)

    def missing(self, keys: Sequence[str]) -> list[str]:
        return [key for key in dict.fromkeys(keys) if key not in self.states]

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(".tmp")
            torch.save(self.states, partial)
            partial.replace(self.path)


def _cache_file(config: TrainConfig, split: int, loaded: LoadedModel) -> Path | None:
    if config.cache_dir is None:
        return None
    origin = loaded.spec.encoder
    if config.init_from is not None and any(i < split for i in loaded.spec.trained_layers):
        # The starting model changed some of the frozen layers: its outputs are its own.
        origin += hashlib.sha1((Path(config.init_from) / DELTA_FILE).read_bytes()).hexdigest()
    tag = hashlib.sha1(origin.encode()).hexdigest()[:12]
    return Path(config.cache_dir) / f"hidden-{tag}-s{split}-L{config.max_length}.pt"


def _fill_cache(
    loaded: LoadedModel,
    cache: HiddenCache,
    keys: Sequence[str],
    split: int,
    config: TrainConfig,
    progress: Progress,
    *,
    save_every: int = 4096,
) -> None:
    """Encode the missing texts in the given order (sorted by length within each block)."""
    todo = cache.missing(keys)
    model, tokenizer = loaded.model, loaded.tokenizer
    model.eval()
    step, done = 64, 0
    with torch.inference_mode():
        for block_start in range(0, len(todo), save_every):
            block = sorted(todo[block_start : block_start + save_every], key=len)
            for start in range(0, len(block), step):
                chunk = block[start : start + step]
                batch = tokenizer(
                    chunk,
                    truncation=True,
                    max_length=config.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                hidden = model.bottom(batch["input_ids"], batch["attention_mask"], split)
                lengths = batch["attention_mask"].sum(1).tolist()
                for key, state, length in zip(chunk, hidden, lengths, strict=True):
                    cache.states[key] = state[: int(length)].to(torch.float16).clone()
                done += len(chunk)
                progress(done, len(todo), "encoding (frozen layers)")
            cache.save()


def _class_weights(items: Sequence[_Item], power: float) -> dict[str, torch.Tensor]:
    weights = {}
    for head, names in HEADS.items():
        counts = Counter(item.labels[head] for item in items if head in item.labels)
        if not counts:
            continue
        total = sum(counts.values())
        raw = [((counts.get(i, 0) or 1) / total) ** -power for i in range(len(names))]
        mean = sum(raw[i] for i in counts) / len(counts)
        weights[head] = torch.tensor([value / mean for value in raw], dtype=torch.float32)
    return weights


def _epoch_items(items: Sequence[_Item], config: TrainConfig, rng: random.Random) -> list[_Item]:
    if config.max_examples:
        by_group: dict[str, list[_Item]] = {}
        for item in items:
            by_group.setdefault(item.group, []).append(item)
        items = []
        for group, members in by_group.items():
            cap = config.max_examples.get(group)
            items.extend(rng.sample(members, cap) if cap and cap < len(members) else members)
    counts = Counter(head for item in items for head in item.labels)
    # Small heads are repeated up to min_per_head labels an epoch (never past the largest head).
    target = min(config.min_per_head, max(counts.values(), default=0))
    factor = {head: max(1, round(target / n)) for head, n in counts.items()}
    repeated = [item for item in items for _ in range(max(factor[h] for h in item.labels))]
    rng.shuffle(repeated)
    # Batches of similar length waste little on padding; their order is shuffled again.
    window = config.batch_size * 50
    batches: list[list[_Item]] = []
    for start in range(0, len(repeated), window):
        chunk = sorted(repeated[start : start + window], key=lambda item: len(item.key))
        batches.extend(
            chunk[i : i + config.batch_size] for i in range(0, len(chunk), config.batch_size)
        )
    rng.shuffle(batches)
    return [item for batch in batches for item in batch]


def _stack(states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(state.shape[0] for state in states)
    hidden = torch.zeros(len(states), longest, states[0].shape[1])
    mask = torch.zeros(len(states), longest, dtype=torch.long)
    for row, state in enumerate(states):
        hidden[row, : state.shape[0]] = state.float()
        mask[row, : state.shape[0]] = 1
    return hidden, mask


def _label_tensor(batch: Sequence[_Item], head: str) -> torch.Tensor:
    return torch.tensor([item.labels.get(head, -100) for item in batch], dtype=torch.long)


class _Runner:
    """Runs the trainable part: the top layers on cached states, or the whole model on tokens."""

    def __init__(
        self, loaded: LoadedModel, split: int | None, cache: HiddenCache | None, max_length: int
    ):
        self.loaded, self.split, self.cache, self.max_length = loaded, split, cache, max_length

    def logits(self, batch: Sequence[_Item]) -> dict[str, torch.Tensor]:
        model = self.loaded.model
        if self.split is not None and self.cache is not None:
            hidden, mask = _stack([self.cache.states[item.key] for item in batch])
            return model.top(hidden, mask, self.split)
        tokens = self.loaded.tokenizer(
            [item.key for item in batch],
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )
        return model(tokens["input_ids"], tokens["attention_mask"])


def _evaluate(runner: _Runner, items: Sequence[_Item], batch_size: int = 128) -> dict[str, Any]:
    runner.loaded.model.eval()
    rows: list[tuple[str, str, int, int]] = []
    ordered = sorted(items, key=lambda item: len(item.key))
    with torch.inference_mode():
        for start in range(0, len(ordered), batch_size):
            batch = ordered[start : start + batch_size]
            logits = runner.logits(batch)
            for head, values in logits.items():
                predicted = values.argmax(-1).tolist()
                for item, pred in zip(batch, predicted, strict=True):
                    if head in item.labels:
                        rows.append((head, item.group, item.labels[head], int(pred)))
    return evaluate_predictions(rows)


def _trainable(
    model: MultiHeadModel, split: int | None, config: TrainConfig
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    for parameter in model.parameters():
        parameter.requires_grad = False
    layers = model.layers
    body: list[nn.Parameter] = []
    if config.freeze_layers:
        pass
    elif layers is not None:
        for index in range(split or 0, model.num_layers):
            body.extend(layers[index].parameters())
    else:  # no layer list: the whole encoder but its embeddings
        body = [p for name, p in model.encoder.named_parameters() if "embeddings" not in name]
    wanted = config.heads or tuple(model.heads.keys())
    heads = [p for name in wanted for p in model.heads[name].parameters()]
    for parameter in [*body, *heads]:
        parameter.requires_grad = True
    return body, heads


def train(
    data: Dataset,
    out_dir: Path,
    config: TrainConfig,
    *,
    log: Log = print,
    progress: Progress = lambda done, total, what: None,
) -> TrainResult:
    """Fine-tune on `data.train`, keep the epoch that scores best on `data.val`, write a folder."""
    if not data.train:
        raise ValueError("no training examples")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    started = time.monotonic()

    loaded = load_model(config.init_from) if config.init_from else new_model(config.encoder)
    loaded.spec.encoder = loaded.spec.encoder if config.init_from else config.encoder
    model = loaded.model
    num_layers = model.num_layers
    split: int | None = None
    if model.layers is not None:
        split = max(0, num_layers - max(1, config.top_layers))
    train_items, val_items = _items(data.train), _items(data.val)

    cache: HiddenCache | None = None
    if split is not None:
        cache = HiddenCache(_cache_file(config, split, loaded))
        keys = [item.key for item in [*train_items, *val_items]]
        log(f"{len(cache.missing(keys))} texts to encode through the {split} frozen layers")
        _fill_cache(loaded, cache, keys, split, config, progress)
        log(f"encoded in {time.monotonic() - started:.0f}s")
    runner = _Runner(loaded, split, cache, config.max_length)

    body, heads = _trainable(model, split, config)
    # The delta keeps every layer that differs from the base: trained now or by the start model.
    trained_now = list(range(split or 0, num_layers)) if body else []
    trained_layers = sorted(set(trained_now) | set(loaded.spec.trained_layers))
    optimiser = torch.optim.AdamW(
        [{"params": body, "lr": config.lr}, {"params": heads, "lr": config.head_lr}],
        weight_decay=config.weight_decay,
    )
    class_weights = _class_weights(train_items, config.class_balance)
    losses = {
        head: nn.CrossEntropyLoss(weight=weight, ignore_index=-100)
        for head, weight in class_weights.items()
        if config.heads is None or head in config.heads
    }
    if not losses:
        raise ValueError("no training labels for the heads being trained")
    per_epoch = math.ceil(
        len(_epoch_items(train_items, config, random.Random(0))) / config.batch_size
    )
    total_steps = per_epoch * config.epochs
    warmup = max(1, int(total_steps * config.warmup))
    base_lrs = [group["lr"] for group in optimiser.param_groups]

    best_score, best_state, best_metrics = -1.0, None, {}
    history: list[dict[str, Any]] = []
    step = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = _epoch_items(train_items, config, rng)
        running, seen = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            scale = (
                step / warmup
                if step < warmup
                else max(0.0, (total_steps - step) / (total_steps - warmup))
            )
            for group, base in zip(optimiser.param_groups, base_lrs, strict=True):
                group["lr"] = base * scale
            logits = runner.logits(batch)
            loss = torch.zeros(())
            for head, criterion in losses.items():
                target = _label_tensor(batch, head)
                if (target >= 0).any():
                    loss = loss + criterion(logits[head], target)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*body, *heads], 1.0)
            optimiser.step()
            step += 1
            running, seen = running + float(loss.detach()), seen + 1
            progress(step, total_steps, f"epoch {epoch}/{config.epochs} loss {running / seen:.3f}")
            if step % 200 == 0:
                log(
                    f"epoch {epoch} step {step}/{total_steps} loss {running / seen:.4f} "
                    f"({time.monotonic() - started:.0f}s)"
                )
        metrics = _evaluate(runner, val_items) if val_items else {}
        score = selection_score(metrics) if metrics else -float(running / max(seen, 1))
        history.append(
            {
                "epoch": epoch,
                "loss": round(running / max(seen, 1), 4),
                "selection": round(score, 4),
                "metrics": metrics,
            }
        )
        log(f"epoch {epoch}: train loss {running / max(seen, 1):.4f}, validation score {score:.4f}")
        for line in _summary(metrics):
            log("  " + line)
        if score > best_score:
            best_score, best_metrics = score, metrics
            best_state = copy.deepcopy(
                {
                    k: v
                    for k, v in model.state_dict().items()
                    if k.startswith(("heads.", "encoder.encoder.layer."))
                }
            )

    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    model.eval()
    version = config.version or datetime.now(UTC).strftime("tocsin-%Y%m%d-%H%M")
    loaded.spec.version = version
    loaded.spec.max_length = config.max_length
    loaded.spec.metrics = {"validation": best_metrics, "selection_score": round(best_score, 4)}
    loaded.spec.training = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "train_examples": dict(Counter(item.group for item in train_items)),
        "val_examples": dict(Counter(item.group for item in val_items)),
        "history": [{k: v for k, v in h.items() if k != "metrics"} for h in history],
        "seconds": round(time.monotonic() - started),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    log("measuring activation ranges for the int8 encoder")
    loaded.spec.activation_ranges = ranges_to_json(
        calibrate(loaded, calibration_texts(train_items, rng))
    )
    save_model(loaded, out_dir, trained_layers=trained_layers)
    log(f"wrote {out_dir} (version {version})")
    return TrainResult(out_dir, version, best_metrics, history)


def calibration_texts(items: Sequence[_Item], rng: random.Random, count: int = 1000) -> list[str]:
    """A sample of the training texts, every source represented (languages, platforms)."""
    by_group: dict[str, list[str]] = {}
    for item in items:
        by_group.setdefault(item.group, []).append(item.key)
    share = max(count // max(len(by_group), 1), 1)
    texts: list[str] = []
    for group in sorted(by_group):
        keys = by_group[group]
        texts.extend(rng.sample(keys, min(share, len(keys))))
    return texts


def _summary(metrics: dict[str, Any]) -> list[str]:
    from classifier.evaluate import format_metrics

    return format_metrics(metrics)
