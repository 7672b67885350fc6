"""The one error type users see: a problem and its fix, rendered as one line by the CLI."""

from __future__ import annotations


class LightfoldError(Exception):
    """A failure the user can act on. `fix` says what to do about it."""

    exit_code = 1

    def __init__(self, problem: str, fix: str | None = None, *, details: list[str] | None = None):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        # Extra lines (e.g. the last lines of a failed command's output) shown under the message.
        self.details = details or []

    def __str__(self) -> str:
        return f"{self.problem} — {self.fix}" if self.fix else self.problem


class UsageError(LightfoldError):
    """Bad flags or arguments (exit code 2, like click's usage errors)."""

    exit_code = 2
