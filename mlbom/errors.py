"""The errors mlbom raises, each carrying what went wrong, what to do next and an exit code.

Exit codes are a contract (DESIGN.md): 0 success, 1 a check failed, 2 bad input or usage.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


def shown(text: str, limit: int = 300) -> str:
    """Text from a file or name as a message shows it: control characters and bytes that
    are not UTF-8 escaped, so a file name cannot rewrite the terminal or the log line."""
    out = "".join(
        c
        if c.isprintable() or c == " "
        else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in text[:limit]
    )
    return out + ("…" if len(text) > limit else "")


class MlbomError(Exception):
    """Base class: a message for the user, an optional hint, and the exit code."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class BadInputError(MlbomError):
    """The model, a file in it, or an argument cannot be used (exit 2)."""


class InspectionError(BadInputError):
    """One model file is malformed or hostile; in a folder this becomes a warning."""


class InvalidBomError(MlbomError):
    """mlbom built a BOM that the official schema rejects; it is never written."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            hint="this is a bug in mlbom: please report it with the model's file list",
        )


class CheckFailedError(MlbomError):
    """A check asked for by the user failed (exit 1): an unsafe import with --fail-on unsafe."""

    exit_code = EXIT_CHECK_FAILED


class NotVerifiedError(CheckFailedError):
    """A signed BOM did not verify (exit 1); `check` names which check failed."""

    def __init__(self, check: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"not verified ({check}): {message}", hint=hint)
        self.check = check
        self.reason = message
