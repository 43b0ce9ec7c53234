"""Labelled examples from files: TweetEval-style text/label pairs, CSV, JSONL, label references.

A training source is written `[HEAD=]PATH`:
- a TweetEval folder (`train_text.txt` + `train_labels.txt`, and `val_*` for validation) or a
  `*_text.txt` file beside its `*_labels.txt`; the head defaults to sentiment;
- a `.csv` or `.jsonl` file with a `text` (or `tweet`) column and label columns named after the
  heads (`sentiment`, `urgency`/`tier`, `complaint`, `severity`, case-insensitive); a `label`
  column goes to the head named before `=`; an optional `split` column (`train`/`val`) and `lang`;
- a reference CSV `dataset,row,tier,split` (labels for rows of files under the data root).

Labels may be given by index or by name ("negative", "critical", "yes"/"no").
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from classifier.labels import HEADS

XLMT_LANGS = {
    "arabic": "ar",
    "french": "fr",
    "german": "de",
    "hindi": "hi",
    "italian": "it",
    "portuguese": "pt",
    "spanish": "es",
    "english": "en",
}
_ALIASES = {
    "sentiment": "sentiment",
    "urgency": "urgency",
    "tier": "urgency",
    "complaint": "complaint",
    "is_complaint": "complaint",
    "severity": "severity",
}
_TRUE = {"1", "yes", "true", "complaint"}
_FALSE = {"0", "no", "false", "none", "not_complaint"}


class DataError(Exception):
    """A training file that cannot be read, phrased for the user."""


@dataclass
class Example:
    text: str
    labels: dict[str, int]
    group: str  # where it comes from, for per-source metrics ("xlm-t/french")
    lang: str | None = None
    split: str | None = None  # "train", "val" or None (decided by hashing)


@dataclass
class Dataset:
    train: list[Example] = field(default_factory=list)
    val: list[Example] = field(default_factory=list)
    test: list[Example] = field(default_factory=list)  # read for `tocsin eval`, never for training

    def extend(self, other: Dataset) -> None:
        self.train.extend(other.train)
        self.val.extend(other.val)
        self.test.extend(other.test)

    def for_evaluation(self, split: str = "auto") -> list[Example]:
        """The examples to measure on: test if there is one, else validation, else everything."""
        if split == "auto":
            return self.test or self.val or self.train
        if split == "all":
            return [*self.train, *self.val, *self.test]
        return list(getattr(self, split))


def parse_label(head: str, value: object) -> int:
    """A label given as index or name -> its index for `head`."""
    names = HEADS[head]
    text = str(value).strip().lower()
    if head == "complaint":
        if text in _TRUE:
            return 1
        if text in _FALSE:
            return 0
    if text in names:
        return names.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if number.is_integer() and 0 <= int(number) < len(names):
        return int(number)
    raise DataError(f"{head}: unknown label {value!r} (expected one of {', '.join(names)})")


def _read_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def _pair(text_path: Path, head: str, group: str, lang: str | None, split: str) -> list[Example]:
    labels_path = text_path.with_name(text_path.name.replace("_text", "_labels"))
    if not labels_path.is_file():
        raise DataError(f"{labels_path}: not found (needed beside {text_path.name})")
    texts, labels = _read_lines(text_path), _read_lines(labels_path)
    if len(texts) != len(labels):
        raise DataError(f"{text_path}: {len(texts)} texts but {len(labels)} labels")
    return [
        Example(text, {head: parse_label(head, label)}, group, lang, split)
        for text, label in zip(texts, labels, strict=True)
    ]


def _folder_group(path: Path) -> tuple[str, str | None]:
    name = path.name.lower()
    if name in XLMT_LANGS:
        return f"{path.parent.name}/{name}", XLMT_LANGS[name]
    return path.name, "en" if "tweeteval" in name else None


def load_tweeteval(path: Path, head: str) -> Dataset:
    if path.is_dir():
        group, lang = _folder_group(path)
        result = Dataset(train=_pair(path / "train_text.txt", head, group, lang, "train"))
        if (path / "val_text.txt").is_file():
            result.val = _pair(path / "val_text.txt", head, group, lang, "val")
        if (path / "test_text.txt").is_file():
            result.test = _pair(path / "test_text.txt", head, group, lang, "test")
        return result
    group, lang = _folder_group(path.parent)
    if path.name.startswith("test"):
        return Dataset(test=_pair(path, head, group, lang, "test"))
    if path.name.startswith(("val", "dev")):
        return Dataset(val=_pair(path, head, group, lang, "val"))
    return Dataset(train=_pair(path, head, group, lang, "train"))


def _records(path: Path) -> Iterable[tuple[int, dict[str, object]]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            yield from enumerate(csv.DictReader(handle), start=2)
        return
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected a JSON object")
            yield number, record


def load_table(path: Path, head: str | None, data_root: Path | None) -> Dataset:
    result = Dataset()
    cache: dict[str, dict[str, str]] = {}
    for number, raw in _records(path):
        record = {str(key).strip().lower(): value for key, value in raw.items()}
        text: object
        if "dataset" in record and "row" in record and "text" not in record:
            text = _referenced_text(record, data_root, cache, path, number)
        else:
            text = record.get("text", record.get("tweet"))
        if not isinstance(text, str):
            raise DataError(f"{path}:{number}: no text (columns `text` or `tweet`)")
        labels: dict[str, int] = {}
        try:
            for column, value in record.items():
                target = _ALIASES.get(column) or (head if column == "label" and head else None)
                if target and value not in (None, ""):
                    labels[target] = parse_label(target, value)
        except DataError as exc:
            raise DataError(f"{path}:{number}: {exc}") from None
        if not labels:
            continue
        lang = record.get("lang")
        if (
            not lang and "dataset" in record
        ):  # a referenced xlm-t row: its folder names the language
            lang = XLMT_LANGS.get(str(record["dataset"]).rstrip("/").rsplit("/", 1)[-1])
        split = str(record.get("split") or "").strip().lower() or None
        if split not in (None, "train", "val", "test"):
            split = "val" if split in ("dev", "validation") else "train"
        group = path.parent.name if path.stem in ("train", "val", "test", "data") else path.stem
        if isinstance(lang, str) and lang:
            group = f"{group}/{lang}"
        example = Example(text, labels, group, lang if isinstance(lang, str) else None, split)
        {"val": result.val, "test": result.test}.get(split or "", result.train).append(example)
    return result


def _referenced_text(
    record: dict[str, object],
    data_root: Path | None,
    cache: dict[str, dict[str, str]],
    path: Path,
    number: int,
) -> str:
    if data_root is None:
        raise DataError(f"{path}:{number}: refers to dataset rows; give --data-root")
    dataset, row = str(record["dataset"]), str(record["row"]).strip()
    if dataset not in cache:
        cache[dataset] = _dataset_rows(data_root, dataset)
    try:
        return cache[dataset][row]
    except KeyError:
        raise DataError(f"{path}:{number}: {dataset} has no row {row}") from None


def _dataset_rows(data_root: Path, dataset: str) -> dict[str, str]:
    folder = data_root / dataset
    if (folder / "train.csv").is_file():
        with (folder / "train.csv").open(newline="", encoding="utf-8") as handle:
            return {row["id"]: row["tweet"] for row in csv.DictReader(handle)}
    if (folder / "train_text.txt").is_file():
        return {str(i): text for i, text in enumerate(_read_lines(folder / "train_text.txt"))}
    raise DataError(f"{folder}: unknown dataset layout (no train.csv or train_text.txt)")


def load_source(spec: str, data_root: Path | None = None) -> Dataset:
    """Read one `[HEAD=]PATH` training source."""
    head: str | None = None
    if "=" in spec and spec.split("=", 1)[0] in HEADS:
        head, spec = spec.split("=", 1)
    path = Path(spec)
    if not path.exists():
        raise DataError(f"{path}: not found")
    if path.is_dir() or path.name.endswith("_text.txt"):
        return load_tweeteval(path, head or "sentiment")
    if path.suffix.lower() in (".csv", ".jsonl", ".json"):
        return load_table(path, head, data_root)
    raise DataError(f"{path}: unknown format (a TweetEval folder or *_text.txt, .csv or .jsonl)")


def text_key(text: str) -> str:
    return hashlib.sha1(text.strip().lower().encode("utf-8")).hexdigest()


def finalise_splits(data: Dataset, val_share: float = 0.15) -> Dataset:
    """Decide undecided splits by hashing, and keep each text on one side for every head.

    A shared encoder must never train on a text that measures another head: an undecided text
    that is validation for some head becomes validation, and a text labelled `train` by one
    source but `val` by another is left out of training.
    """
    val_keys = {text_key(example.text) for example in data.val}
    train_keys = {text_key(example.text) for example in data.train if example.split == "train"}
    # An undecided text follows a source that decided it; only the rest is split by hash.
    undecided = [
        example
        for example in data.train
        if example.split is None and text_key(example.text) not in val_keys | train_keys
    ]
    # Stratified by group and label set: the first `val_share` by hash in each stratum is val.
    strata: dict[tuple[str, str], list[Example]] = defaultdict(list)
    for example in undecided:
        strata[(example.group, json.dumps(example.labels, sort_keys=True))].append(example)
    for members in strata.values():
        members.sort(key=lambda example: text_key(example.text))
        for example in members[: round(len(members) * val_share)]:
            val_keys.add(text_key(example.text))
    result = Dataset(val=list(data.val))
    for example in data.train:
        if text_key(example.text) not in val_keys:
            result.train.append(example)
        elif example.split is None:
            result.val.append(example)
        # else: explicitly train here but validation elsewhere: left out of both sides
    return result


def subsample(data: Dataset, group: str, keep: int) -> Dataset:
    """Keep `keep` training examples of one source, chosen by text hash (stable between runs)."""
    members = [example for example in data.train if example.group == group]
    if len(members) <= keep:
        return data
    chosen = {id(e) for e in sorted(members, key=lambda e: text_key(e.text))[:keep]}
    train = [e for e in data.train if e.group != group or id(e) in chosen]
    return Dataset(train=train, val=data.val, test=data.test)
