"""Errors the user can act on: the CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """A problem phrased for the user (bad input, missing file, missing credentials)."""
