"""Progress bars for long work: on stderr, and only when stderr is a terminal."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Advance = Callable[[int], None]


def _noop(_: int) -> None:
    return None


@contextmanager
def bar(total: int, label: str, *, enabled: bool = True) -> Iterator[Advance]:
    """Yield a thread-safe `advance(n)`; draws nothing when disabled or not on a terminal."""
    if not enabled or total <= 0 or not sys.stderr.isatty():
        yield _noop
        return
    import click

    lock = threading.Lock()
    with click.progressbar(
        length=total, label=label, file=sys.stderr, show_pos=False, show_percent=True
    ) as progress:

        def advance(n: int) -> None:
            with lock:
                progress.update(n)

        yield advance
