"""Reading a user's file (a BOM, a key, a policy, a manifest) whole, but never more than a
limit: a file that could not be real is refused before it fills memory."""

from __future__ import annotations

import sys
from pathlib import Path

from mlbom.errors import BadInputError


def read_bounded(path: Path, limit: int, what: str = "") -> bytes:
    """All of `path` (`-`: stdin), or `BadInputError` when it cannot be read or is larger
    than `limit` bytes. `what` names the file in messages ("the policy")."""
    name = f"{what} {path}" if what else str(path)
    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
    except OSError as e:
        raise BadInputError(f"cannot read {name}: {e.strerror}") from None
    if len(data) > limit:
        size = f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"
        raise BadInputError(f"{name} is larger than {size}: no real one is")
    return data
