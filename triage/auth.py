"""Team sign-in: bcrypt password hashes, the team roster from tocsin.toml, the sign-in check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

import bcrypt
from sqlmodel import Session

from storage import queries
from storage.models import Role, TeamMember
from storage.types import utcnow
from tocsin.config import Settings
from tocsin.errors import UserError

MIN_PASSWORD_LENGTH = 10
# After this many wrong passwords in LOCKOUT_WINDOW, the account refuses sign-in for a while.
MAX_FAILED_SIGN_INS = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
# bcrypt only reads the first 72 bytes; refusing longer ones avoids silently ignoring a suffix.
MAX_PASSWORD_BYTES = 72


@cache
def _dummy_hash() -> str:
    # Checked when the email is unknown, so a wrong email costs as long as a wrong password.
    return bcrypt.hashpw(b"tocsin-no-such-member", bcrypt.gensalt(rounds=12)).decode()


class WeakPassword(UserError):
    pass


class SignInLocked(UserError):
    """Too many wrong passwords in a row for this account."""


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise WeakPassword(f"the password must fit in {MAX_PASSWORD_BYTES} bytes (UTF-8)")


def hash_password(password: str, *, rounds: int = 12) -> str:
    """A bcrypt hash of the password (with its own salt), as text for the database."""
    check_password_rules(password)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=rounds)).decode("ascii")


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when the password matches the stored hash; False for no hash or a malformed one."""
    if not password_hash:
        return False
    encoded = password.encode("utf-8")
    if len(encoded) > MAX_PASSWORD_BYTES:
        return False
    try:
        return bcrypt.checkpw(encoded, password_hash.encode("ascii"))
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who signed in (plain values, safe to keep in a UI session)."""

    member_id: int
    name: str
    email: str
    role: str

    @property
    def is_lead(self) -> bool:
        return self.role in (Role.lead, Role.admin)


def sign_in(session: Session, *, email: str, password: str) -> SignedIn | None:
    """The member when the email and password match an active member, else None.

    Raises `SignInLocked` after MAX_FAILED_SIGN_INS wrong passwords within LOCKOUT_WINDOW.
    """
    member = queries.team_member_by_email(session, email=email) if email.strip() else None
    if member is None or not member.active or not member.password_hash:
        verify_password(password, _dummy_hash())
        return None
    failures = queries.failed_sign_ins_since(
        session, member_id=member.id or 0, since=utcnow() - LOCKOUT_WINDOW
    )
    if failures >= MAX_FAILED_SIGN_INS:
        raise SignInLocked(
            f"too many wrong passwords: try again in {LOCKOUT_WINDOW.seconds // 60} minutes "
            "or ask a lead to reset it"
        )
    if not verify_password(password, member.password_hash):
        queries.add_audit_event(
            session,
            action="auth.failed",
            entity_type="team_member",
            entity_id=member.id,
            actor="board",
        )
        return None
    assert member.id is not None
    queries.add_audit_event(
        session,
        action="auth.signed_in",
        entity_type="team_member",
        entity_id=member.id,
        actor_id=member.id,
    )
    return SignedIn(member.id, member.name, member.email, member.role)


def current_member(session: Session, *, member_id: int) -> SignedIn | None:
    """The signed-in member as stored now (None once deactivated or removed)."""
    member = session.get(TeamMember, member_id)
    if member is None or not member.active or member.id is None:
        return None
    return SignedIn(member.id, member.name, member.email, member.role)


def set_password(session: Session, *, email: str, password: str) -> TeamMember:
    member = queries.team_member_by_email(session, email=email)
    if member is None or member.id is None:
        raise UserError(f"no team member with email {email!r} (add them under [[team]] first)")
    queries.set_member_password_hash(
        session, member_id=member.id, password_hash=hash_password(password)
    )
    queries.add_audit_event(
        session, action="auth.password_set", entity_type="team_member", entity_id=member.id
    )
    return member


@dataclass(slots=True)
class SyncResult:
    created: list[str]
    updated: list[str]
    deactivated: list[str]


def sync_team(session: Session, *, settings: Settings) -> SyncResult:
    """Create or update TeamMember rows from `[[team]]`; members no longer listed are deactivated.

    Passwords are never in the config: existing hashes are kept, new members have none until
    `tocsin board set-password`.
    """
    result = SyncResult([], [], [])
    listed = {entry.email.strip().lower(): entry for entry in settings.team}
    for email, entry in listed.items():
        member = queries.team_member_by_email(session, email=email)
        values: dict[str, Any] = {
            "name": entry.name,
            "role": entry.role,
            "languages": list(entry.languages),
            "skills": list(entry.skills),
            "max_open_cases": entry.max_open_cases,
            "on_shift": entry.on_shift,
            "requires_approval": entry.requires_approval,
            "active": True,
        }
        if member is None:
            session.add(TeamMember(email=email, **values))
            result.created.append(email)
            continue
        changed = {k: v for k, v in values.items() if getattr(member, k) != v}
        if changed:
            for key, value in changed.items():
                setattr(member, key, value)
            result.updated.append(email)
    for member in queries.team_members(session, active_only=True):
        if member.email.strip().lower() not in listed and settings.team:
            member.active = False
            result.deactivated.append(member.email)
    session.flush()
    if result.created or result.updated or result.deactivated:
        queries.add_audit_event(
            session,
            action="team.synced",
            entity_type="team_member",
            entity_id=None,
            details={
                "created": result.created,
                "updated": result.updated,
                "deactivated": result.deactivated,
            },
        )
    return result
