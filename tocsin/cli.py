"""The `tocsin` command line: a Typer app whose command groups live in `tocsin/commands/`."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError, ProgrammingError

from tocsin.config import DEFAULT_CONFIG_FILE, ConfigError
from tocsin.errors import UserError

GROUPS = (
    "db",
    "collect",
    "score",
    "train",
    "eval",
    "board",
    "run",
    "report",
    "alerts",
    "export",
    "demo",
)

app = typer.Typer(
    name="tocsin",
    help="Social-media monitoring and reputation triage.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, soft_wrap=True)

EXAMPLE_CONFIG = Path(__file__).with_name("example.toml")


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the example.")] = Path(
        DEFAULT_CONFIG_FILE
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example tocsin.toml to start from."""
    if path.exists() and not force:
        raise UserError(f"{path} already exists (use --force to overwrite it)")
    path.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    typer.echo(f"Wrote {path}. Edit the brands, sources and team, then run `tocsin db upgrade`.")


def _mount(name: str) -> None:
    module = importlib.import_module(f"tocsin.commands.{name}")
    sub: typer.Typer = module.app
    single = len(sub.registered_commands) == 1 and not sub.registered_groups
    command = sub.registered_commands[0] if single else None
    if command is not None and command.callback is not None and sub.registered_callback is None:
        app.command(name=name, help=command.help)(command.callback)
    else:
        app.add_typer(sub, name=name)


def _available(name: str) -> bool:
    return importlib.util.find_spec(f"tocsin.commands.{name}") is not None


for _group in GROUPS:
    if _available(_group):
        _mount(_group)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 1, never a traceback."""
    try:
        app(standalone_mode=False)
    except (UserError, ConfigError) as exc:
        err.print(f"Error: {exc}", markup=False, highlight=False)
        sys.exit(1)
    except (OperationalError, ProgrammingError) as exc:
        err.print(
            f"Error: database problem: {_one_line(exc.orig or exc)} "
            "(is the database reachable, and did you run `tocsin db upgrade`?)",
            markup=False,
            highlight=False,
        )
        sys.exit(1)
    except typer.Abort:
        err.print("Aborted.")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("Interrupted.")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
