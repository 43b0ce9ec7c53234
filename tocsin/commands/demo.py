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
    no_board: Annotated[bool, typer.Option("--no-board", help="Service only.")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the previous demo's data.")] = False,
) -> None:
    """Two fictional brands, a replay source fed over time, scoring, alerts and the board."""
    from tocsin.demo.runner import DemoOptions, run_demo

    options = DemoOptions(demo_dir=folder, port=port, speed=speed, board=not no_board, keep=keep)
    raise typer.Exit(run_demo(options, echo=typer.echo))
