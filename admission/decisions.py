"""The decision log: one JSON line per admission decision, fsynced, each record chained to
the one before by hash, so that a deleted, reordered or edited record is detectable.

    {"time": …, "uid": …, …, "prev": "<hash of the previous record>", "hash": "<this one>"}

`hash` is SHA-256 over `prev` and the record as sorted, compact JSON (without `hash`).
The log rotates by size into numbered files (`decisions.jsonl.1`, `.2`, …, the highest the
newest) and the chain runs on across them, so rotation loses nothing and a missing file
breaks the chain visibly. The webhook writes it from its recorder process
(`admission/recorder.py`), which makes a batch of records durable with one fsync.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from mlbom.errors import BadInputError

GENESIS = "0" * 64
ROTATE_BYTES = 64 << 20
MAX_RECORD = 1 << 20
_ROTATED = re.compile(r"\.(\d+)$")


def record_hash(prev: str, record: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the record (without `hash`) as sorted compact JSON,
    the same bytes whoever serializes it, so a verifier recomputes it from the parsed line."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(prev.encode() + msgspec.json.encode(body, order="sorted")).hexdigest()


class DecisionLog:
    """Appends chained records to `path`: `write` buffers one, `sync` makes everything
    written durable (and rotates a full file). One writer per log."""

    def __init__(self, path: Path, *, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.path = path
        self.rotate_bytes = rotate_bytes
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "ab")  # noqa: SIM115 - held open, closed by close()
        except OSError as e:
            raise BadInputError(f"cannot open the decision log {path}: {e.strerror}") from e
        self._last = _last_hash([*rotated_files(path), path])

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        """Chain `record` and buffer it; the chained record."""
        line, chained = self._chain(record)
        self._file.write(line)
        return chained

    def sync(self) -> None:
        """Make everything written so far durable, and rotate a full file."""
        self._file.flush()
        os.fsync(self._file.fileno())
        if self._file.tell() >= self.rotate_bytes:
            self._rotate()

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        chained = self.write(record)
        self.sync()
        return chained

    def close(self) -> None:
        self._file.close()

    def _chain(self, record: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        chained = {"time": datetime.now(tz=UTC).isoformat(timespec="milliseconds"), **record}
        chained["prev"] = self._last
        chained["hash"] = record_hash(self._last, chained)
        self._last = chained["hash"]
        return msgspec.json.encode(chained) + b"\n", chained

    def _rotate(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        numbers = [int(m[1]) for p in rotated_files(self.path) if (m := _ROTATED.search(p.name))]
        rotated = self.path.with_name(f"{self.path.name}.{max(numbers, default=0) + 1}")
        os.rename(self.path, rotated)
        self._file = open(self.path, "ab")  # noqa: SIM115
        # The new file opens with a chained record naming the old one: should the old file
        # go missing, this record no longer follows anything and the break shows.
        line, _ = self._chain({"event": "rotated", "previous": rotated.name})
        self._file.write(line)
        self._file.flush()
        os.fsync(self._file.fileno())


def rotated_files(path: Path) -> list[Path]:
    """The rotated files of a log, oldest first."""
    found = [
        p for p in path.parent.glob(path.name + ".*") if _ROTATED.search(p.name[len(path.name) :])
    ]
    return sorted(found, key=lambda p: int(p.name.rsplit(".", 1)[1]))


@dataclass(frozen=True)
class ChainReport:
    records: int
    files: list[str]
    findings: list[str]  # empty: the chain is whole

    @property
    def intact(self) -> bool:
        return not self.findings


def verify_chain(paths: Iterable[Path]) -> ChainReport:
    """Check the hash chain across `paths` (oldest first): every record's hash, and each
    record's `prev` against the record before it. Each break is a finding, not an error."""
    prev = GENESIS
    findings: list[str] = []
    count = 0
    files = []
    for path in paths:
        files.append(str(path))
        try:
            lines = path.read_bytes().splitlines()
        except OSError as e:
            findings.append(f"{path}: cannot read it ({e.strerror})")
            continue
        for number, line in enumerate(lines, 1):
            count += 1
            where = f"{path}:{number}"
            try:
                record = msgspec.json.decode(line) if len(line) <= MAX_RECORD else None
            except (msgspec.DecodeError, RecursionError):
                record = None
            if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
                findings.append(f"{where}: not a decision record")
                continue
            if record.get("prev") != prev:
                findings.append(
                    f"{where}: does not follow the record before it (one was removed, reordered or the log was truncated)"
                )
            if record_hash(str(record.get("prev")), record) != record["hash"]:
                findings.append(f"{where}: its content does not match its hash (edited)")
            prev = record["hash"]
    return ChainReport(count, files, findings)


def _last_hash(paths: list[Path]) -> str:
    """The hash the next record chains to: the last record of the newest non-empty file."""
    for path in reversed(paths):
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - MAX_RECORD))
                tail = f.read().splitlines()
        except OSError:
            continue
        for line in reversed(tail):
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(record, dict) and isinstance(record.get("hash"), str):
                return record["hash"]
    return GENESIS
