"""The CLI as a user runs it: real subprocesses, one-line errors, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.migrate import head_revision


def tocsin(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tocsin", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_init_upgrade_and_stats_on_a_fresh_folder(tmp_path: Path) -> None:
    assert tocsin("init", cwd=tmp_path).returncode == 0
    config = (tmp_path / "tocsin.toml").read_text()
    assert "[[brands]]" in config and "TOCSIN_SMTP_PASSWORD" in config
    upgraded = tocsin("db", "upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / "tocsin-data" / "tocsin.db").is_file()
    stats = tocsin("db", "stats", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    shown = stats.stdout.replace("\n", " ")
    assert "mention" in shown and f"revision {head_revision()}" in shown


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "tocsin.toml").write_text("# mine\n")
    result = tocsin("init", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr.strip() == "Error: tocsin.toml already exists (use --force to overwrite it)"
    )
    assert (tmp_path / "tocsin.toml").read_text() == "# mine\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            '[[brands]]\nname = "A"\nkeywords = "acme"\n',
            "tocsin.toml: brands.0.keywords: Input should be a valid list",
        ),
        (
            "[sla]\ncritical_minutes = 'soon'\n",
            "tocsin.toml: sla.critical_minutes: Input should be a valid integer",
        ),
        ("[board]\ncolour = 'red'\n", "tocsin.toml: board.colour: unknown key"),
        ("brands = [\n", "tocsin.toml: not valid TOML"),
    ],
)
def test_a_wrong_config_gets_one_line_naming_file_and_key(
    tmp_path: Path, content: str, expected: str
) -> None:
    (tmp_path / "tocsin.toml").write_text(content)
    result = tocsin("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"Error: {expected}")


def test_stats_before_upgrade_says_what_to_do(tmp_path: Path) -> None:
    result = tocsin("db", "stats", cwd=tmp_path)
    assert result.returncode == 1
    assert "run `tocsin db upgrade`" in result.stderr and "Traceback" not in result.stderr


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = {"TOCSIN_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = tocsin("db", "upgrade", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("Error: database problem:")
