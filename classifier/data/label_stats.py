"""Check the urgency label files and print their counts.

Usage: python classifier/data/label_stats.py [--data-root ../shared/data]

Checks: header, known datasets, tiers and splits; no duplicate (dataset, row); every row
exists in the source dataset (when --data-root is given or the default path exists); the split
matches the documented hash rule (URGENCY_GUIDE.md, "Split"). Exits 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = HERE / "urgency_labels.csv"
WRITTEN = HERE / "urgency_written.jsonl"
DEFAULT_DATA_ROOT = HERE.parents[2] / "shared" / "data"
TIERS = ("critical", "high", "normal", "low")
SPLITS = ("train", "val")
LANGS = ("en", "fr", "es", "it")
DATASETS = (
    "complaints-severity",
    "tweeteval-sentiment",
    "xlm-t-umsab/french",
    "xlm-t-umsab/spanish",
    "xlm-t-umsab/italian",
)
VAL_SHARE = 0.2


def labelling_round(key: str) -> int:
    """Round 2 (xlm-t tweets, `w5-*` written posts) is split on its own, so adding it left the
    round-1 splits, and what the first models were selected on, unchanged."""
    return 2 if key.startswith(("xlm-t-umsab/", "w5-")) else 1


def split_hash(key: str) -> str:
    return hashlib.sha256(("tocsin-urgency:" + key).encode("utf-8")).hexdigest()


def expected_splits(groups: dict[object, list[str]]) -> dict[str, str]:
    """Within each group, the first 20% of keys by hash are val, the rest train."""
    result: dict[str, str] = {}
    for keys in groups.values():
        ordered = sorted(keys, key=split_hash)
        n_val = round(len(ordered) * VAL_SHARE)
        for index, key in enumerate(ordered):
            result[key] = "val" if index < n_val else "train"
    return result


def source_rows(data_root: Path) -> dict[str, set[int]]:
    with open(data_root / "complaints-severity" / "train.csv", newline="", encoding="utf-8") as f:
        severity_ids = {int(rec["id"]) for rec in csv.DictReader(f)}
    known = {"complaints-severity": severity_ids}
    for dataset in DATASETS[1:]:
        text = (data_root / dataset / "train_text.txt").read_text(encoding="utf-8")
        known[dataset] = set(range(len(text.rstrip("\n").split("\n"))))
    return known


def check_labels(rows: list[dict[str, str]], known: dict[str, set[int]] | None) -> list[str]:
    problems: list[str] = []
    seen: set[tuple[str, int]] = set()
    groups: dict[object, list[str]] = defaultdict(list)
    for line_no, rec in enumerate(rows, start=2):
        dataset, tier, split = rec["dataset"], rec["tier"], rec["split"]
        if dataset not in DATASETS:
            problems.append(f"labels line {line_no}: unknown dataset {dataset!r}")
            continue
        if not rec["row"].isdigit():
            problems.append(f"labels line {line_no}: row is not a number: {rec['row']!r}")
            continue
        row = int(rec["row"])
        if (dataset, row) in seen:
            problems.append(f"labels line {line_no}: duplicate {dataset} row {row}")
        seen.add((dataset, row))
        if known is not None and row not in known[dataset]:
            problems.append(f"labels line {line_no}: {dataset} has no row {row}")
        if tier not in TIERS:
            problems.append(f"labels line {line_no}: unknown tier {tier!r}")
        if split not in SPLITS:
            problems.append(f"labels line {line_no}: unknown split {split!r}")
        key = f"{dataset}:{row}"
        groups[(labelling_round(key), tier)].append(key)
    expected = expected_splits(groups)
    for line_no, rec in enumerate(rows, start=2):
        key = f"{rec['dataset']}:{rec['row']}"
        if key in expected and expected[key] != rec["split"]:
            given = rec["split"]
            problems.append(f"labels line {line_no}: split {given}, rule gives {expected[key]}")
    return problems


def check_written(items: list[dict[str, str]]) -> list[str]:
    problems: list[str] = []
    texts: set[str] = set()
    group_tier: dict[str, str] = {}
    group_split: dict[str, str] = {}
    groups: dict[object, set[str]] = defaultdict(set)
    for line_no, item in enumerate(items, start=1):
        text, group = item.get("text", ""), item.get("group", "")
        if not isinstance(text, str) or not text.strip():
            problems.append(f"written line {line_no}: empty text")
            continue
        if text in texts:
            problems.append(f"written line {line_no}: duplicate text")
        texts.add(text)
        if item.get("lang") not in LANGS:
            problems.append(f"written line {line_no}: unknown lang {item.get('lang')!r}")
        if item.get("tier") not in TIERS:
            problems.append(f"written line {line_no}: unknown tier {item.get('tier')!r}")
        if item.get("split") not in SPLITS:
            problems.append(f"written line {line_no}: unknown split {item.get('split')!r}")
        if not isinstance(group, str) or not group:
            problems.append(f"written line {line_no}: no scenario group")
            continue
        if group_tier.setdefault(group, item["tier"]) != item["tier"]:
            problems.append(f"written line {line_no}: group {group} mixes tiers")
        if group_split.setdefault(group, item["split"]) != item["split"]:
            problems.append(f"written line {line_no}: group {group} is split across train/val")
        groups[(labelling_round(group), item["tier"])].add(group)
    expected = expected_splits({key: list(members) for key, members in groups.items()})
    for group, given in group_split.items():
        if group in expected and expected[group] != given:
            problems.append(f"written group {group}: split {given}, rule gives {expected[group]}")
    return problems


def table(title: str, counts: Counter[tuple[str, str]], cols: Iterable[str]) -> str:
    """A Markdown table of tier rows against the given columns, with totals."""
    rows, cols = list(TIERS), list(cols)
    lines = [f"{title}", "| | " + " | ".join(cols) + " | total |", "|---" * (len(cols) + 2) + "|"]
    for r in rows:
        values = [counts[(r, c)] for c in cols]
        lines.append(f"| {r} | " + " | ".join(str(v) for v in values) + f" | {sum(values)} |")
    totals = [sum(counts[(r, c)] for r in rows) for c in cols]
    lines.append("| total | " + " | ".join(str(v) for v in totals) + f" | {sum(totals)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-root", type=Path, default=None, help="folder holding the source datasets"
    )
    args = parser.parse_args(argv)
    data_root = args.data_root or (DEFAULT_DATA_ROOT if DEFAULT_DATA_ROOT.exists() else None)
    known = source_rows(data_root) if data_root is not None else None

    with open(LABELS, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header_ok = reader.fieldnames == ["dataset", "row", "tier", "split"]
        rows = list(reader)
    written_lines = WRITTEN.read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in written_lines if line.strip()]

    problems = [] if header_ok else ["labels: header must be dataset,row,tier,split"]
    problems += check_labels(rows, known) + check_written(items)
    if known is None:
        print("note: source datasets not found, row ids were not checked against them")

    by_split = Counter((rec["tier"], rec["split"]) for rec in rows)
    by_dataset = Counter((rec["tier"], rec["dataset"]) for rec in rows)
    written_by_split = Counter((item["tier"], item["split"]) for item in items)
    written_by_lang = Counter((item["tier"], item["lang"]) for item in items)
    written_val_by_lang = Counter(
        (item["tier"], item["lang"]) for item in items if item["split"] == "val"
    )
    print(table(f"Labelled tweets ({len(rows)}), by split", by_split, SPLITS))
    print()
    print(table("Labelled tweets, by dataset", by_dataset, DATASETS))
    print()
    print(table(f"Written examples ({len(items)}), by split", written_by_split, SPLITS))
    print()
    print(table("Written examples, by language", written_by_lang, LANGS))
    print()
    print(table("Written examples in val, by language", written_val_by_lang, LANGS))
    for problem in problems:
        print("ERROR", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
