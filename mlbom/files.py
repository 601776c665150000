"""Reading a user's file (a BOM, a key, a policy, a manifest) whole, but never more than a
limit: a file that could not be real is refused before it fills memory; and writing an
output whole or not at all, never over something that is not a regular file."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from mlbom.errors import BadInputError


class FileTooLargeError(BadInputError):
    """A file larger than its reader's limit: a reader may word it in its own terms."""


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
        raise FileTooLargeError(f"{name} is larger than {size}: no real one is")
    return data


def check_output(path: Path) -> None:
    """Refuse an output path that is not a regular file (a pipe, a device, a folder): an
    atomic write would replace it with one."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise BadInputError(f"cannot write {path}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        raise BadInputError(
            f"{path} is not a regular file: mlbom writes its output atomically, by replacing it",
            hint="give a file path with -o, or leave -o out to write to stdout",
        )


def recorded_name(path: str | Path) -> str:
    """A path as mlbom records and compares it: bytes that are not UTF-8 escaped (`\\xe9`),
    as the filesystem has them, never refused."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def write_atomically(path: Path, text: str | bytes) -> None:
    """Write all of `text` or nothing: a temporary file beside `path`, fsync, rename. A
    path that is not a regular file (a pipe, a device) is refused, never replaced."""
    check_output(path)
    data = text.encode() if isinstance(text, str) else text
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise BadInputError(f"cannot write {path}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException as e:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise BadInputError(f"cannot write {path}: {e.strerror}") from e
        raise
