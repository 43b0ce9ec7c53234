"""`tocsin eval`: measure a model on labelled data (implemented beside `tocsin train`)."""

from tocsin.commands.train import eval_app as app

__all__ = ["app"]
