"""One module per command group; each exposes `app` (a Typer app) and `cli.py` mounts them."""
