"""`tocsin collect` as a user runs it: a real subprocess, a summary table, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CONFIG = """
[[brands]]
name = "Acme Air"
keywords = ["acme air"]

[[sources]]
name = "demo"
kind = "replay"
brand = "Acme Air"
base_url = "{feed}"
"""


def tocsin(*args: str, cwd: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env.update(
        TOCSIN_CONFIG=str(cwd / "tocsin.toml"),
        TOCSIN_DATABASE_URL=database_url,
        TOCSIN_DATA_DIR=str(cwd / "data"),
        COLUMNS="200",
    )
    return subprocess.run(
        [sys.executable, "-m", "tocsin", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_collect_prints_a_summary_and_rejects_unknown_sources(
    sqlite_url: str, tmp_path: Path
) -> None:
    feed = tmp_path / "feed.jsonl"
    posts = [{"id": 1, "text": "Acme Air lost my bag"}, {"id": 2, "text": "unrelated"}]
    feed.write_text("".join(json.dumps(p) + "\n" for p in posts), encoding="utf-8")
    (tmp_path / "tocsin.toml").write_text(CONFIG.format(feed=feed.as_uri()), encoding="utf-8")

    done = tocsin("collect", cwd=tmp_path, database_url=sqlite_url)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "demo" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert cells[:7] == ["demo", "replay", "1", "0", "1", "0", "ok"], done.stdout

    wrong = tocsin("collect", "nope", cwd=tmp_path, database_url=sqlite_url)
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == "Error: unknown source(s): nope"
