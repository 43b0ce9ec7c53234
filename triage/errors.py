"""Errors of the triage rules, each phrased as one line a team member can act on.

They subclass `tocsin.errors.UserError`, so the CLI prints them cleanly and the board can show
`str(error)` as is.
"""

from __future__ import annotations

from tocsin.errors import UserError


class TriageError(UserError):
    """Base class: a triage action that could not be done, with the reason."""


class CaseNotFound(TriageError):
    pass


class MemberNotFound(TriageError):
    pass


class CaseHeld(TriageError):
    """Someone else holds the case; `holder_id`/`holder_name` say who."""

    def __init__(self, message: str, *, holder_id: int | None, holder_name: str | None) -> None:
        super().__init__(message)
        self.holder_id = holder_id
        self.holder_name = holder_name


class CaseChanged(TriageError):
    """The case changed since the caller read it (optimistic locking); reload and retry."""


class InvalidTransition(TriageError):
    """The action does not fit the case's status (e.g. replying to a resolved case)."""


class NotPermitted(TriageError):
    """The member's role does not allow the action."""


class ReplyCollision(TriageError):
    """Someone else answered the post meanwhile; `answered_by` names them."""

    def __init__(self, message: str, *, answered_by: str | None) -> None:
        super().__init__(message)
        self.answered_by = answered_by


class ReplyTooLong(TriageError):
    pass


class TemplateError(TriageError):
    pass


class PublishError(TriageError):
    """The platform refused the reply or could not be reached; nothing was recorded as sent."""
