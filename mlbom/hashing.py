"""Hashing model files: each file read once, every digest fed from the same buffer,
files hashed in parallel threads (hashlib releases the GIL on large updates), and a
cache keyed by (path, device, inode, size, mtime_ns) so that reruns are nearly free."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbom.errors import BadInputError
from mlbom.files import recorded_name
from mlbom.progress import Advance

log = logging.getLogger(__name__)

# mlbom name -> (CycloneDX algorithm name, hashlib constructor)
ALGORITHMS: dict[str, tuple[str, Callable[[], Any]]] = {
    "sha256": ("SHA-256", hashlib.sha256),
    "sha384": ("SHA-384", hashlib.sha384),
    "sha512": ("SHA-512", hashlib.sha512),
    "sha3-256": ("SHA3-256", hashlib.sha3_256),
    "sha3-384": ("SHA3-384", hashlib.sha3_384),
    "sha3-512": ("SHA3-512", hashlib.sha3_512),
    "blake2b-256": ("BLAKE2b-256", lambda: hashlib.blake2b(digest_size=32)),
    "blake2b-384": ("BLAKE2b-384", lambda: hashlib.blake2b(digest_size=48)),
    "blake2b-512": ("BLAKE2b-512", hashlib.blake2b),
}
DEFAULT_ALGORITHMS = ("sha256", "sha512")  # SHA-512 is what BSI TR-03183-2 asks for
CHUNK_SIZE = 1 << 20
# A file modified less than this long ago may change again within the same mtime tick,
# so its digest is not cached (the "racy git" problem).
_RACY_SECONDS = 2.0


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(a.lower() for a in algorithms))
    unknown = [a for a in chosen if a not in ALGORITHMS]
    if unknown or not chosen:
        raise BadInputError(
            f"unknown hash algorithm: {', '.join(unknown) or '(none given)'}",
            hint=f"choose from {', '.join(ALGORITHMS)}",
        )
    return chosen


def folder_digest(sha256s: Mapping[str, str]) -> str:
    """A model folder's digest from its files' SHA-256 hex by relative path: SHA-256 over
    the file digests in path order, the value model_signing puts in a folder's subject and
    the key stores file a local model under."""
    hasher = hashlib.sha256()
    for name in sorted(sha256s):
        hasher.update(bytes.fromhex(sha256s[name]))
    return hasher.hexdigest()


def hash_bytes(data: bytes, algorithms: tuple[str, ...]) -> dict[str, str]:
    """Digest bytes in memory with every algorithm."""
    digests = {}
    for a in algorithms:
        hasher = ALGORITHMS[a][1]()
        hasher.update(data)
        digests[a] = hasher.hexdigest()
    return digests


def hash_file(
    path: Path, algorithms: tuple[str, ...], advance: Advance | None = None
) -> dict[str, str]:
    """Digest one file with every algorithm in a single pass."""
    hashers = [ALGORITHMS[a][1]() for a in algorithms]

    def feed(chunk: memoryview) -> None:
        for h in hashers:
            h.update(chunk)
        if advance:
            advance(len(chunk))

    # One reused buffer, filled by readinto: as fast as mapping the file here (measured),
    # and a file truncated by another process while it is hashed ends short instead of
    # faulting (SIGBUS) as a mapping would; hash_files then sees the change.
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            feed(view[:n])
    return {a: h.hexdigest() for a, h in zip(algorithms, hashers, strict=True)}


@dataclass(frozen=True)
class Stamp:
    """What must be unchanged for a cached digest to still be the file's digest."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> Stamp:
        return cls.of_stat(path.stat())

    @classmethod
    def of_stat(cls, st: os.stat_result) -> Stamp:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class HashCache:
    """A small SQLite cache of digests in the user's cache folder.

    Any failure to open or use it turns it off: a cache must never fail a run.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self._db: sqlite3.Connection | None = None
        folder = folder or default_cache_dir()
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._db = sqlite3.connect(folder / "hashes.sqlite3", timeout=5)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS digests (path TEXT, algorithm TEXT, device INTEGER,"
                " inode INTEGER, size INTEGER, mtime_ns INTEGER, digest TEXT,"
                " PRIMARY KEY (path, algorithm))"
            )
        except (OSError, sqlite3.Error) as e:
            log.debug("hash cache off: %s", e)
            self._db = None

    def get(self, path: Path, algorithms: tuple[str, ...], stamp: Stamp) -> dict[str, str] | None:
        if self._db is None:
            return None
        try:
            rows = self._db.execute(
                "SELECT algorithm, digest FROM digests WHERE path = ? AND device = ? AND inode = ?"
                " AND size = ? AND mtime_ns = ?",
                (recorded_name(path), stamp.device, stamp.inode, stamp.size, stamp.mtime_ns),
            ).fetchall()
        except sqlite3.Error as e:
            log.debug("hash cache read failed: %s", e)
            return None
        found = dict(rows)
        return {a: found[a] for a in algorithms} if all(a in found for a in algorithms) else None

    def put(self, entries: list[tuple[Path, Stamp, dict[str, str]]]) -> None:
        if self._db is None:
            return
        now_ns = time.time_ns()
        rows = [
            (recorded_name(path), a, s.device, s.inode, s.size, s.mtime_ns, d)
            for path, s, digests in entries
            if now_ns - s.mtime_ns > _RACY_SECONDS * 1e9
            for a, d in digests.items()
        ]
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO digests VALUES (?,?,?,?,?,?,?)", rows)
        except sqlite3.Error as e:
            log.debug("hash cache write failed: %s", e)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def default_cache_dir() -> Path:
    if folder := os.environ.get("MLBOM_CACHE_DIR"):
        return Path(folder)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlbom"


def hash_files(
    paths: list[Path],
    algorithms: tuple[str, ...],
    *,
    cache: HashCache | None = None,
    advance: Advance | None = None,
    workers: int | None = None,
) -> dict[Path, dict[str, str]]:
    """Digest many files, largest first across `workers` threads (default: one per core)."""
    results: dict[Path, dict[str, str]] = {}
    todo: list[tuple[Path, Stamp]] = []
    for path in paths:
        stamp = Stamp.of(path)
        cached = cache.get(path, algorithms, stamp) if cache else None
        if cached is not None:
            results[path] = cached
            if advance:
                advance(stamp.size)
        else:
            todo.append((path, stamp))
    todo.sort(key=lambda item: item[1].size, reverse=True)

    def work(item: tuple[Path, Stamp]) -> dict[str, str]:
        path, before = item
        digests = hash_file(path, algorithms, advance)
        if Stamp.of(path) != before:
            raise BadInputError(
                f"{path} changed while it was being hashed",
                hint="run mlbom when the model files are no longer being written",
            )
        return digests

    threads = max(1, min(len(todo), workers or os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlbom-hash") as pool:
        fresh = list(zip(todo, pool.map(work, todo), strict=True))
    results.update((path, digests) for (path, _), digests in fresh)
    if cache:
        cache.put([(path, stamp, digests) for (path, stamp), digests in fresh])
    return results
