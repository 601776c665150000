"""A folder of attestations: the embedded default, and in a cluster a mounted volume.

    STORE/index.json                      the models held, for people and `models()`
    STORE/entries/<kind>/<name>/<digest>  a symlink to the entry's current object
    STORE/objects/<random>/               mlbom.cdx.json, mlbom.cdx.json.sigstore.json, ref.json

An entry is written whole into a fresh object folder (each file fsynced), which is then
made current by renaming a new symlink over the old one: a reader sees the old entry or the
new one, never half of either, and concurrent writers cannot mix their files. The index is
rewritten under a lock, atomically.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from attest.stores import (
    BOM_NAME,
    BUNDLE_NAME,
    MAX_ENTRY,
    Attestation,
    CorruptEntryError,
    NoAttestationError,
    Store,
    StoreUnreachableError,
)
from mlbom.errors import BadInputError
from mlbom.files import write_atomically
from mlbom.references import ModelRef

_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")
REF_NAME = "ref.json"


class FolderStore(Store):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    # -- writing -----------------------------------------------------------------------------

    def push(self, ref: ModelRef, attestation: Attestation) -> str:
        ref.require_pinned()
        link = self._entry(ref)
        objects = self.root / "objects"
        try:
            objects.mkdir(parents=True, exist_ok=True)
            link.parent.mkdir(parents=True, exist_ok=True)
            obj = objects / secrets.token_hex(16)
            staging = obj.with_name(obj.name + ".tmp")
            staging.mkdir()
            record = {"ref": str(ref), "kind": ref.kind, "name": ref.name, "digest": ref.digest}
            for name, data in (
                (BOM_NAME, attestation.bom),
                (BUNDLE_NAME, attestation.bundle),
                (REF_NAME, json.dumps(record, indent=2).encode()),
            ):
                _write_synced(staging / name, data)
            _fsync_dir(staging)
            os.rename(staging, obj)
            _fsync_dir(objects)
            previous = os.readlink(link) if link.is_symlink() else None
            temporary = link.with_name(f".{link.name}.{secrets.token_hex(8)}")
            os.symlink(os.path.relpath(obj, link.parent), temporary)
            os.replace(temporary, link)  # the atomic switch to the new entry
            _fsync_dir(link.parent)
            self._index(ref, str(link.relative_to(self.root)))
        except OSError as e:
            raise BadInputError(f"cannot write to the store {self.root}: {e.strerror}") from e
        old = (link.parent / previous).resolve() if previous is not None else None
        if old is not None and old.parent == (self.root / "objects").resolve():
            shutil.rmtree(old, ignore_errors=True)  # readers holding its files keep them open
        return str(link)

    def _index(self, ref: ModelRef, entry: str) -> None:
        with self._locked():
            index = self._read_index()
            models = [m for m in index.get("models", []) if m.get("ref") != str(ref)]
            models.append({
                "ref": str(ref), "kind": ref.kind, "name": ref.name, "digest": ref.digest,
                "entry": entry, "updated": datetime.now(tz=UTC).isoformat(timespec="seconds"),
            })  # fmt: skip
            models.sort(key=lambda m: str(m["ref"]))
            write_atomically(self.root / "index.json", json.dumps({"models": models}, indent=2))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- reading -----------------------------------------------------------------------------

    def pull(self, ref: ModelRef) -> Attestation:
        ref.require_pinned()
        if not self.root.is_dir():
            raise StoreUnreachableError(f"the store folder {self.root} does not exist")
        link = self._entry(ref)
        if not link.is_symlink() and not link.exists():
            link = self._entry(ref, as_written=True)  # an entry filed before names were folded
        for _ in range(3):  # a writer may switch the entry between resolving and reading
            if not link.is_symlink() and not link.exists():
                raise NoAttestationError(f"{self.root} holds no attestation for {ref}")
            try:
                bom, bundle = (_read(link / name) for name in (BOM_NAME, BUNDLE_NAME))
                break
            except FileNotFoundError:
                continue
        else:
            raise CorruptEntryError(f"the entry for {ref} in {self.root} is incomplete")
        for name, data in ((BOM_NAME, bom), (BUNDLE_NAME, bundle)):
            try:
                json.loads(data)
            except (ValueError, RecursionError):
                raise CorruptEntryError(f"{link / name} is not JSON") from None
        return Attestation(bom, bundle)

    def models(self) -> list[ModelRef]:
        if not self.root.is_dir():
            raise StoreUnreachableError(f"the store folder {self.root} does not exist")
        found = []
        for m in self._read_index().get("models", []):
            if isinstance(m, dict) and m.get("kind") in ("hf", "oci", "local"):
                found.append(ModelRef(m["kind"], str(m.get("name")), m.get("digest")))
        return found

    def _read_index(self) -> dict:
        path = self.root / "index.json"
        try:
            index = json.loads(_read(path))
        except FileNotFoundError:
            return {"models": []}
        except (OSError, ValueError, RecursionError) as e:
            raise CorruptEntryError(f"{path} is not a readable index ({e})") from None
        return index if isinstance(index, dict) else {"models": []}

    def _entry(self, ref: ModelRef, *, as_written: bool = False) -> Path:
        """entries/<kind>/<name parts>/<digest>, every part checked: no path escapes. Hub
        repository ids are filed in lower case, as the Hub resolves them whatever their case."""
        digest = (ref.digest or "").replace("sha256:", "sha256-")
        name = ref.name.lower() if ref.kind == "hf" and not as_written else ref.name
        parts: list[str] = [ref.kind] if ref.kind == "local" else [ref.kind, *name.split("/")]
        parts.append(digest)
        if not all(_PART.match(p) and p not in (".", "..") for p in parts):
            raise BadInputError(f"{ref} cannot name a store entry")
        return self.root.joinpath("entries", *parts)


def _read(path: Path) -> bytes:
    with open(path, "rb") as f:
        data = f.read(MAX_ENTRY + 1)
    if len(data) > MAX_ENTRY:
        raise CorruptEntryError(f"{path} is larger than {MAX_ENTRY >> 20} MiB")
    return data


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno != errno.EINVAL:  # some file systems cannot sync a folder
            raise
    finally:
        os.close(fd)
