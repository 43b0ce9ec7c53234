"""`tocsin score`: score unscored mentions in the database, or a JSONL file of posts.

tocsin score                                          # the database, in batches
tocsin score --input posts.jsonl --output scores.jsonl  # the batch contract (DESIGN.md)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tocsin.config import get_settings
from tocsin.errors import UserError

app = typer.Typer(help="Score mentions: sentiment, urgency, complaint, buzz risk.")


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.command()
def score(
    input: Annotated[
        Path | None,
        typer.Option("--input", "-i", help="JSONL posts to score ('-' for standard input)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write the scores ('-' for standard output)."),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(
            "--batch", min=1, help="Mentions per database batch [default: service.score_batch]."
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Stop after this many mentions.")
    ] = None,
) -> None:
    """Score a JSONL file (--input/--output), or every unscored mention in the database."""
    from classifier.model import ModelError

    settings = get_settings()
    try:
        if input is not None or output is not None:
            _score_file(input, output, settings)
        else:
            _score_database(settings, batch=batch or settings.service.score_batch, limit=limit)
    except ModelError as exc:
        raise UserError(str(exc)) from None


def _score_file(input: Path | None, output: Path | None, settings: object) -> None:
    from classifier.predict import get_scorer, score_jsonl
    from tocsin.config import Settings

    assert isinstance(settings, Settings)
    if input is None or output is None:
        raise UserError("give both --input and --output (or neither, to score the database)")
    if str(input) != "-" and not input.is_file():
        raise UserError(f"{input}: no such file")
    if str(output) != "-" and not output.parent.exists():
        raise UserError(f"{output.parent}: no such folder")
    to_stdout = str(output) == "-"
    console = Console(stderr=True)
    scorer = get_scorer(settings.model)
    source = sys.stdin if str(input) == "-" else input.open(encoding="utf-8", errors="replace")
    partial = output.with_name(output.name + ".partial") if not to_stdout else None
    sink = sys.stdout if partial is None else partial.open("w", encoding="utf-8")
    try:
        with _progress(console) as bar:
            task = bar.add_task("Scoring posts", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            summary = score_jsonl(source, sink, scorer, settings.model.buzz, progress=advance)
    finally:
        if source is not sys.stdin:
            source.close()
        if sink is not sys.stdout:
            sink.close()
    if partial is not None:
        partial.replace(output)  # a finished file only: no half-written scores under the name
    errors = f", {summary.errors} line(s) with an error" if summary.errors else ""
    where = "standard output" if to_stdout else str(output)
    console.print(
        f"Scored {summary.scored} post(s){errors} with model {scorer.version}; wrote {where}.",
        markup=False,
        highlight=False,
    )


def _score_database(settings: object, *, batch: int, limit: int | None) -> None:
    from classifier.pending import score_backlog
    from classifier.predict import get_scorer
    from storage import db as storage_db
    from storage import queries
    from tocsin.config import Settings

    assert isinstance(settings, Settings)
    storage_db.configure(settings.resolved_database_url)
    with storage_db.session_scope() as session:
        pending = queries.count_unscored(session)
    total = min(pending, limit) if limit else pending
    console = Console(stderr=True)
    if total == 0:
        console.print("Nothing to score: every mention has a score.")
        return
    scorer = get_scorer(settings.model)
    with _progress(console) as bar:
        task = bar.add_task("Scoring mentions", total=total)
        done = score_backlog(
            settings=settings,
            batch=batch,
            limit=total,
            scorer=scorer,
            between=lambda finished: bar.update(task, completed=finished),
        )
    console.print(f"Scored {done} mention(s) with model {scorer.version}.")
