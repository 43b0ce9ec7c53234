"""`tocsin train`, `tocsin eval` and `tocsin score --input/--output` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def tocsin(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    config = cwd / "tocsin.toml"
    if not config.exists():
        config.write_text("")
    env["TOCSIN_CONFIG"] = str(config)
    env["TOCSIN_DATA_DIR"] = str(cwd / "data")
    return subprocess.run(
        [sys.executable, "-m", "tocsin", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _write_sources(folder: Path) -> list[str]:
    tweeteval = folder / "tweets"
    tweeteval.mkdir()
    texts = ["love it", "hate it", "it is a phone", "best day ever", "worst service", "meh ok"]
    (tweeteval / "train_text.txt").write_text("\n".join(texts * 3) + "\n")
    (tweeteval / "train_labels.txt").write_text(
        "\n".join(["2", "0", "1", "2", "0", "1"] * 3) + "\n"
    )
    (tweeteval / "val_text.txt").write_text("\n".join(texts) + "\n")
    (tweeteval / "val_labels.txt").write_text("\n".join(["2", "0", "1", "2", "0", "1"]) + "\n")
    complaints = folder / "complaints.csv"
    complaints.write_text(
        "id,tweet,label,Severity\n"
        + "".join(
            f'{i},"{t}",{c},{s}\n'
            for i, (t, c, s) in enumerate(
                [
                    ("my bag is lost, disgraceful", 1, 4),
                    ("thanks for the help", 0, 0),
                    ("refund still not here", 1, 2),
                    ("nice new logo", 0, 0),
                ]
                * 3
            )
        )
    )
    urgency = folder / "urgency.jsonl"
    urgency.write_text(
        "".join(
            json.dumps({"text": t, "lang": "en", "tier": tier, "split": split}) + "\n"
            for t, tier, split in [
                ("someone is using my card right now", "critical", "train"),
                ("my flight leaves in 2 hours and it is cancelled", "critical", "val"),
                ("cannot log in to pay my bill due today", "high", "train"),
                ("how do I change my address", "normal", "train"),
                ("love the new ad", "low", "train"),
                ("great coffee", "low", "val"),
            ]
        )
    )
    return [f"sentiment={tweeteval}", f"complaint={complaints}", str(urgency)]


def test_train_eval_and_score_a_file_with_a_folder_encoder(
    tiny_encoder: str, tmp_path: Path
) -> None:
    sources = _write_sources(tmp_path)
    model = tmp_path / "model"
    trained = tocsin(
        "train",
        *sources,
        "--out",
        str(model),
        "--encoder",
        tiny_encoder,
        "--epochs",
        "1",
        "--no-feedback",
        "--version",
        "cli-test-1",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    spec = json.loads((model / "model.json").read_text())
    assert spec["version"] == "cli-test-1" and spec["encoder"] == tiny_encoder
    assert set(spec["metrics"]["validation"]) == {"sentiment", "complaint", "severity", "urgency"}

    again = tocsin(
        "train",
        *sources,
        "--out",
        str(model),
        "--encoder",
        tiny_encoder,
        "--no-feedback",
        cwd=tmp_path,
    )
    assert again.returncode == 1 and "already exists" in again.stderr

    evaluated = tocsin(
        "eval",
        sources[0],
        "--model",
        str(model),
        "--json",
        str(tmp_path / "metrics.json"),
        cwd=tmp_path,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert "macro_recall" in evaluated.stdout and "Vocabulary fit" in evaluated.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["metrics"]["sentiment"]["all"]["n"] == 6  # the validation file

    (tmp_path / "tocsin.toml").write_text(
        f'[model]\nencoder = "{tiny_encoder}"\nweights = "{model}"\n'
    )
    posts = tmp_path / "posts.jsonl"
    posts.write_text(json.dumps({"id": "a", "text": "lost my bag"}) + "\nnot json\n")
    out = tmp_path / "scores.jsonl"
    scored = tocsin("score", "--input", str(posts), "--output", str(out), cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    # The default precision runs the encoder on int8 weights, and the version says so.
    assert lines[0]["id"] == "a" and lines[0]["model_version"] == "cli-test-1+int8"
    assert lines[1]["error"].startswith("not valid JSON")
    assert "1 line(s) with an error" in scored.stderr


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    missing = tocsin(
        "score",
        "--input",
        str(tmp_path / "nope.jsonl"),
        "--output",
        str(tmp_path / "out.jsonl"),
        cwd=tmp_path,
    )
    assert missing.returncode == 1 and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_source = tocsin(
        "train",
        str(tmp_path / "nothing.csv"),
        "--out",
        str(tmp_path / "m"),
        "--no-feedback",
        cwd=tmp_path,
    )
    assert bad_source.returncode == 1 and "not found" in bad_source.stderr
    assert "Traceback" not in bad_source.stderr
