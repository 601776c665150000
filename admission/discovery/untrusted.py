"""Reading a hostile object: a value of the wrong type is absent, and a list or a text
longer than a scan reads is a problem, never a silent cut."""

from __future__ import annotations

from typing import Any

from admission.discovery.findings import Problem
from mlbom.untrusted import as_dict, as_str

__all__ = ["MAX_ITEMS", "MAX_TEXT", "Scan", "as_dict", "as_str", "as_word"]

MAX_ITEMS = 256  # containers, arguments, variables, volumes, mounts, references
MAX_TEXT = 65_536  # a script, a variable's value, an embedded document


class Scan:
    """Collects the limits a scan reaches, so that each becomes a denial naming the limit."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def limit(self, what: str, limit: str, fix: str, container: str | None = None) -> None:
        message = f"{what} has more than {limit}, more than mlbom reads: {fix}"
        if all(p.message != message for p in self.problems):
            self.problems.append(Problem("scan-limit", message, container))

    def items(self, value: Any, what: str, container: str | None = None) -> list[Any]:
        if not isinstance(value, list):
            return []
        if len(value) > MAX_ITEMS:
            self.limit(what, f"{MAX_ITEMS} entries", "split the pod or shorten the list", container)
            return value[:MAX_ITEMS]
        return value

    def dicts(self, value: Any, what: str, container: str | None = None) -> list[dict[str, Any]]:
        return [v for v in self.items(value, what, container) if isinstance(v, dict)]

    def text(self, value: Any, what: str, container: str | None = None) -> str | None:
        if not isinstance(value, str):
            return None
        if len(value) > MAX_TEXT:
            fix = "move it to a file the image holds, or shorten it"
            self.limit(what, f"{MAX_TEXT} characters", fix, container)
            return None
        return value


def as_word(value: Any) -> str:
    """An argument as the process sees it: a number in args is still one word."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else ""
