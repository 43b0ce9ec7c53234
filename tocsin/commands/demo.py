"""`tocsin demo`: the main job out of the box (what `make run` starts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Run the demo.")


@app.command()
def demo(
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its database, feeds and mailbox.")
    ] = Path("tocsin-data/demo"),
    port: Annotated[int, typer.Option(help="The board's port.")] = 8501,
    speed: Annotated[
        float, typer.Option(min=0.1, help="Play the live posts faster (2 = twice as fast).")
    ] = 1.0,
    collect_seconds: Annotated[
        int, typer.Option(min=1, help="How often the replay sources are collected.")
    ] = 60,
    pipeline_seconds: Annotated[
        int, typer.Option(min=1, help="How often scoring, routing and alerts run.")
    ] = 10,
    model_weights: Annotated[
        Path | None,
        typer.Option("--model-weights", help="A model folder written by `tocsin train`."),
    ] = None,
    no_board: Annotated[bool, typer.Option("--no-board", help="Service only.")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the previous demo's data.")] = False,
) -> None:
    """Two fictional brands, a replay source fed over time, scoring, alerts and the board."""
    from tocsin.demo.runner import DemoOptions, run_demo

    options = DemoOptions(
        demo_dir=folder,
        port=port,
        speed=speed,
        collect_seconds=collect_seconds,
        pipeline_seconds=pipeline_seconds,
        board=not no_board,
        model_weights=model_weights,
        keep=keep,
    )
    raise typer.Exit(run_demo(options, echo=typer.echo))
