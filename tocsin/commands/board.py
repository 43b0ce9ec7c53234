"""`tocsin board`: serve the triage board, set team passwords, sync the team from tocsin.toml."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from storage import db as storage_db
from tocsin.config import get_settings
from tocsin.errors import UserError

PASSWORD_ENV = "TOCSIN_BOARD_PASSWORD"

app = typer.Typer(
    help="The triage board (Streamlit): serve it, manage team sign-in.",
    invoke_without_command=True,
)


def app_script() -> Path:
    """triage_app.py, next to the board package (a source checkout or an editable install)."""
    import board

    script = Path(board.__file__).resolve().parent.parent / "triage_app.py"
    if not script.is_file():
        raise UserError(f"cannot find the board's entry script at {script}")
    return script


def streamlit_command(*, address: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_script()),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]


def _sync() -> None:
    from storage.db import session_scope
    from triage.auth import sync_team

    storage_db.configure()
    with session_scope() as session:
        result = sync_team(session, settings=get_settings())
    for label, emails in (
        ("added", result.created),
        ("updated", result.updated),
        ("deactivated", result.deactivated),
    ):
        if emails:
            typer.echo(f"Team {label}: {', '.join(emails)}")


@app.callback()
def serve(
    ctx: typer.Context,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: [board] port in tocsin.toml).")
    ] = None,
    address: Annotated[
        str, typer.Option("--address", help="Address to listen on (keep 127.0.0.1 behind a proxy).")
    ] = "127.0.0.1",
) -> None:
    """Serve the board with Streamlit (the team roster is synced from tocsin.toml first)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    _sync()
    chosen = port or settings.board.port
    typer.echo(f"Board on http://{address}:{chosen} (Ctrl+C to stop)")
    sys.stdout.flush()
    storage_db.dispose()
    # Become Streamlit rather than run it as a child: a SIGTERM to `tocsin board` (the demo, a
    # process manager, a test) then stops the server itself instead of leaving it orphaned.
    command = streamlit_command(address=address, port=chosen)
    os.execv(command[0], command)


@app.command("set-password")
def set_password(
    email: Annotated[str, typer.Argument(help="The team member's email (from [[team]]).")],
) -> None:
    """Set a team member's board password (prompted, or read from TOCSIN_BOARD_PASSWORD)."""
    from storage.db import session_scope
    from triage import auth

    password = os.environ.get(PASSWORD_ENV)
    if not password:
        if not sys.stdin.isatty():
            raise UserError(f"no terminal to ask the password: set {PASSWORD_ENV}")
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    auth.check_password_rules(password)
    _sync()
    with session_scope() as session:
        member = auth.set_password(session, email=email, password=password)
    typer.echo(f"Password set for {member.name} <{member.email}>.")


@app.command("sync-team")
def sync_team() -> None:
    """Create or update team members from [[team]] in tocsin.toml."""
    _sync()
