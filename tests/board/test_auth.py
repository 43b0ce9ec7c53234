"""Sign-in rules (triage/auth.py) and the `tocsin board` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from storage.db import session_scope
from storage.models import AuditEvent, TeamMember
from tocsin.config import Settings, TeamMemberConfig
from triage import auth


def test_hash_and_verify() -> None:
    hashed = auth.hash_password("correct horse battery", rounds=4)
    assert hashed.startswith("$2b$04$") and "correct" not in hashed
    assert auth.verify_password("correct horse battery", hashed)
    assert not auth.verify_password("correct horse batterY", hashed)
    assert not auth.verify_password("anything", None)
    assert not auth.verify_password("anything", "not-a-bcrypt-hash")
    # Two hashes of one password differ (each has its own salt).
    assert auth.hash_password("correct horse battery", rounds=4) != hashed


@pytest.mark.parametrize("password", ["short", "é" * 40])
def test_weak_or_overlong_passwords_are_refused(password: str) -> None:
    with pytest.raises(auth.WeakPassword):
        auth.hash_password(password)


def _team(*members: TeamMemberConfig) -> Settings:
    return Settings(team=list(members))


def test_sync_team_creates_updates_and_deactivates(sqlite_url: str) -> None:
    lea = TeamMemberConfig(name="Lea Martin", email="Lea@Example.org", role="lead")
    sam = TeamMemberConfig(name="Sam Okafor", email="sam@example.org", languages=["en", "fr"])
    with session_scope() as session:
        first = auth.sync_team(session, settings=_team(lea, sam))
    assert sorted(first.created) == ["lea@example.org", "sam@example.org"]
    with session_scope() as session:
        auth.set_password(session, email="sam@example.org", password="agent-secret-456")
    sam_lead = sam.model_copy(update={"role": "lead", "max_open_cases": 4})
    with session_scope() as session:
        second = auth.sync_team(session, settings=_team(sam_lead))
    assert (second.created, second.updated, second.deactivated) == (
        [],
        ["sam@example.org"],
        ["lea@example.org"],
    )
    with session_scope() as session:
        rows = {m.email: m for m in session.execute(select(TeamMember)).scalars()}
        assert rows["sam@example.org"].role == "lead"
        assert rows["sam@example.org"].max_open_cases == 4
        assert rows["sam@example.org"].password_hash  # the sync keeps passwords
        assert rows["lea@example.org"].active is False
        signed = auth.sign_in(session, email="sam@example.org", password="agent-secret-456")
        assert signed is not None and signed.is_lead
        # A deactivated member cannot sign in, and an unknown email is refused the same way.
        assert auth.sign_in(session, email="lea@example.org", password="anything-at-all") is None
        assert auth.sign_in(session, email="nobody@example.org", password="x" * 12) is None
        actions = list(session.execute(select(AuditEvent.action)).scalars())
        assert "team.synced" in actions and "auth.signed_in" in actions


def _tocsin(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "tocsin", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_set_password_command(sqlite_url: str, tmp_path: Path) -> None:
    config = tmp_path / "tocsin.toml"
    config.write_text(
        '[[team]]\nname = "Lea Martin"\nemail = "lea@example.org"\nrole = "lead"\n',
        encoding="utf-8",
    )
    env = {"TOCSIN_DATABASE_URL": sqlite_url, "TOCSIN_CONFIG": str(config)}
    no_password = _tocsin("board", "set-password", "lea@example.org", cwd=tmp_path, env=env)
    assert no_password.returncode == 1
    assert "TOCSIN_BOARD_PASSWORD" in no_password.stderr and "Traceback" not in no_password.stderr
    env["TOCSIN_BOARD_PASSWORD"] = "a-long-lead-password"
    unknown = _tocsin("board", "set-password", "who@example.org", cwd=tmp_path, env=env)
    assert unknown.returncode == 1 and "no team member" in unknown.stderr
    done = _tocsin("board", "set-password", "lea@example.org", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "a-long-lead-password" not in done.stdout + done.stderr
    with session_scope() as session:
        assert auth.sign_in(session, email="lea@example.org", password="a-long-lead-password")
    env["TOCSIN_BOARD_PASSWORD"] = "short"
    weak = _tocsin("board", "set-password", "lea@example.org", cwd=tmp_path, env=env)
    assert weak.returncode == 1 and "at least" in weak.stderr


def test_repeated_wrong_passwords_lock_the_account_for_a_while(sqlite_url: str) -> None:
    with session_scope() as session:
        auth.sync_team(
            session, settings=_team(TeamMemberConfig(name="Sam", email="sam@example.org"))
        )
        auth.set_password(session, email="sam@example.org", password="agent-secret-456")
    with session_scope() as session:
        assert auth.sign_in(session, email="sam@example.org", password="agent-secret-456")
    for _ in range(auth.MAX_FAILED_SIGN_INS):
        with session_scope() as session:
            assert auth.sign_in(session, email="sam@example.org", password="guess-guess") is None
    with session_scope() as session, pytest.raises(auth.SignInLocked, match="try again in 15"):
        auth.sign_in(session, email="sam@example.org", password="agent-secret-456")
    # The window passes: the failures are older than LOCKOUT_WINDOW.
    with session_scope() as session:
        for event in session.execute(
            select(AuditEvent).where(AuditEvent.action == "auth.failed")
        ).scalars():
            event.created_at = event.created_at - auth.LOCKOUT_WINDOW
    with session_scope() as session:
        assert auth.sign_in(session, email="sam@example.org", password="agent-secret-456")
