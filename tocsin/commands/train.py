"""`tocsin train` (fine-tune from labelled files and the team's corrections) and `tocsin eval`.

    tocsin train sentiment=../shared/data/tweeteval-sentiment complaint=train.csv \\
        --out models/2026-11 --epochs 3
    tocsin eval ../shared/data/tweeteval-sentiment --model models/2026-11

A source is `[HEAD=]PATH` (see `classifier.data`): a TweetEval folder or `*_text.txt`, a CSV or a
JSONL file; HEAD (sentiment, urgency, complaint, severity) names the head of a bare `label`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tocsin.config import Settings, get_settings
from tocsin.errors import UserError

app = typer.Typer(help="Fine-tune the classifier.")
eval_app = typer.Typer(help="Measure a model on labelled data.")  # mounted as `tocsin eval`

SourcesArg = Annotated[
    list[str],
    typer.Argument(
        help="Labelled data, each `[HEAD=]PATH`: a TweetEval folder or *_text.txt, .csv or .jsonl."
    ),
]
DataRootOpt = Annotated[
    Path | None,
    typer.Option("--data-root", help="Folder of the datasets that reference files point into."),
]


def _load(sources: list[str], data_root: Path | None) -> Any:
    from classifier.data import DataError, Dataset, load_source

    data = Dataset()
    try:
        for source in sources:
            data.extend(load_source(source, data_root))
    except (DataError, OSError, UnicodeDecodeError) as exc:
        raise UserError(str(exc)) from None
    return data


def _feedback(settings: Settings, console: Console) -> list[Any]:
    """The team's corrections as training examples (none if there is no database yet)."""
    from classifier.data import DataError, Example, parse_label
    from storage import db as storage_db
    from storage import queries

    url = settings.resolved_database_url
    if settings.database_url is None and not (settings.data_dir / "tocsin.db").is_file():
        console.print("No database yet: training without feedback.")
        return []
    storage_db.configure(url)
    with storage_db.session_scope() as session:
        rows = queries.feedback_examples(session)
    examples, skipped = [], 0
    for text, lang, field, value in rows:
        try:
            label = parse_label(field, value)
        except (DataError, KeyError):
            skipped += 1
            continue
        if text.strip():
            examples.append(Example(text, {field: label}, "feedback", lang, None))
    note = f" ({skipped} with values the heads do not know were left out)" if skipped else ""
    console.print(f"Feedback from the database: {len(examples)} correction(s){note}.")
    return examples


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@app.command()
def train(
    sources: SourcesArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    encoder: Annotated[
        str | None,
        typer.Option(help="'default' (packaged MiniLM), a Hugging Face name or a folder."),
    ] = None,
    init_from: Annotated[
        Path | None, typer.Option("--from", help="Continue from a trained model folder.")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 3,
    top_layers: Annotated[
        int, typer.Option(min=1, help="Encoder layers fine-tuned, from the top.")
    ] = 1,
    max_length: Annotated[int, typer.Option(min=8, help="Tokens per post in training.")] = 64,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    lr: Annotated[float, typer.Option(help="Learning rate of the encoder layers.")] = 1e-4,
    head_lr: Annotated[float, typer.Option(help="Learning rate of the heads.")] = 1e-3,
    val_share: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Validation share where a source has none.")
    ] = 0.15,
    feedback: Annotated[
        bool, typer.Option("--feedback/--no-feedback", help="Add the team's score corrections.")
    ] = True,
    sample: Annotated[
        list[str] | None,
        typer.Option(
            "--sample",
            help="SOURCE=N: train on N examples of a large source (chosen by text hash).",
        ),
    ] = None,
    heads: Annotated[
        list[str] | None,
        typer.Option(
            "--head", help="Train only this head (repeatable); the others stay as they are."
        ),
    ] = None,
    freeze_layers: Annotated[
        bool, typer.Option("--freeze-layers", help="Train the heads alone (with --from).")
    ] = False,
    epoch_sample: Annotated[
        list[str] | None,
        typer.Option(
            "--epoch-sample",
            help="SOURCE=N: a fresh random N examples of a source in each epoch.",
        ),
    ] = None,
    data_root: DataRootOpt = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Keep frozen-layer outputs here between runs.")
    ] = None,
    threads: Annotated[int | None, typer.Option(min=1)] = None,
    seed: Annotated[int, typer.Option(help="Random seed (order and samples of each epoch).")] = 13,
    version: Annotated[
        str | None, typer.Option(help="Model version (default: from the time).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing model folder.")
    ] = False,
) -> None:
    """Fine-tune the heads and top encoder layers; keep the best epoch on validation."""
    from classifier.data import finalise_splits, subsample
    from classifier.evaluate import format_metrics
    from classifier.labels import HEADS
    from classifier.model import ModelError
    from classifier.train import TrainConfig
    from classifier.train import train as run_training

    settings = get_settings()
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"{out} already exists and is not empty (use --force to overwrite it)")
    console = Console(stderr=True)
    data = _load(sources, data_root)
    if feedback:
        data.train.extend(_feedback(settings, console))
    data = finalise_splits(data, val_share=val_share)
    for rule in sample or []:
        group, count = _group_count("--sample", rule)
        data = subsample(data, group, count)
    per_epoch = dict(_group_count("--epoch-sample", rule) for rule in epoch_sample or [])
    if not data.train:
        raise UserError("no labelled examples to train on")
    console.print(f"{len(data.train)} training and {len(data.val)} validation examples.")
    config = TrainConfig(
        encoder=encoder or settings.model.encoder,
        init_from=init_from,
        top_layers=top_layers,
        max_length=max_length,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        head_lr=head_lr,
        threads=threads or settings.model.threads,
        cache_dir=cache_dir,
        version=version,
        max_examples=per_epoch,
        seed=seed,
        heads=tuple(heads) if heads else None,
        freeze_layers=freeze_layers,
    )
    unknown = sorted(set(heads or ()) - set(HEADS))
    if unknown:
        raise UserError(f"--head {unknown[0]!r}: unknown head (one of {', '.join(HEADS)})")
    with _progress(console) as bar:
        task = bar.add_task("Preparing", total=None)

        def advance(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        try:
            result = run_training(
                data,
                out,
                config,
                log=lambda line: bar.console.print(escape(line)),
                progress=advance,
            )
        except ModelError as exc:
            raise UserError(str(exc)) from None
    for line in format_metrics(result.metrics):
        console.print(escape(line))
    console.print(
        f'Model {result.version} written to {out}. Use it with \\[model] weights = "{out}".'
    )


def _group_count(option: str, rule: str) -> tuple[str, int]:
    group, _, count = rule.rpartition("=")
    if not group or not count.isdigit():
        raise UserError(f"{option} {rule!r}: expected SOURCE=N, e.g. tweeteval-sentiment=20000")
    return group, int(count)


@eval_app.command(name="eval")
def evaluate(
    sources: SourcesArg,
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="Model folder (default: the settings').")
    ] = None,
    split: Annotated[
        str, typer.Option(help="auto (test, else val, else all rows), train, val, test or all.")
    ] = "auto",
    data_root: DataRootOpt = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the metrics as JSON here.")
    ] = None,
) -> None:
    """Score labelled data with a model and print the metrics per head and source."""
    from classifier.evaluate import PRIMARY, evaluate_scorer, vocabulary_fit
    from classifier.model import ModelError
    from classifier.predict import get_scorer

    if split not in ("auto", "train", "val", "test", "all"):
        raise UserError(f"--split: unknown split {split!r}")
    settings = get_settings()
    model_config = settings.model
    if model is not None:
        model_config = model_config.model_copy(update={"weights": str(model)})
    data = _load(sources, data_root)
    examples = []
    for source in sources:
        examples.extend(_load([source], data_root).for_evaluation(split))
    if not examples:
        raise UserError("no labelled examples in the given data")
    console = Console()
    try:
        scorer = get_scorer(model_config)
    except ModelError as exc:
        raise UserError(str(exc)) from None
    del data
    with _progress(Console(stderr=True)) as bar:
        task = bar.add_task("Scoring", total=len(examples))
        metrics = evaluate_scorer(scorer, examples, progress=lambda n: bar.advance(task, n))
    table = Table(title=f"Model {escape(scorer.version)}")
    for column in ("head", "source", "n", "metric", "value", "macro-F1", "accuracy"):
        table.add_column(column, justify="right" if column in ("n", "value") else "left")
    for head in sorted(metrics):
        for group in sorted(metrics[head], key=lambda name: (name != "all", name)):
            values = metrics[head][group]
            table.add_row(
                head,
                escape(group),
                str(values["n"]),
                PRIMARY[head],
                f"{values[PRIMARY[head]] * 100:.1f}",
                f"{values['macro_f1'] * 100:.1f}",
                f"{values['accuracy'] * 100:.1f}",
            )
    console.print(table)
    fit = Table(title="Vocabulary fit (the encoder's word pieces)")
    for column in ("source", "unknown tokens", "pieces per word"):
        fit.add_column(column, justify="left" if column == "source" else "right")
    by_group: dict[str, list[str]] = {}
    for example in examples:
        by_group.setdefault(example.group, []).append(example.text)
    vocabulary = {g: vocabulary_fit(scorer.loaded.tokenizer, t) for g, t in by_group.items()}
    for group, values in sorted(vocabulary.items()):
        fit.add_row(
            escape(group),
            f"{values['unknown_rate'] * 100:.1f}%",
            f"{values['pieces_per_word']:.2f}",
        )
    console.print(fit)
    if json_out is not None:
        payload = {"model_version": scorer.version, "metrics": metrics, "vocabulary": vocabulary}
        json_out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
