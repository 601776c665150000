"""Load-time verification: the bytes a pod's server reads are the bytes admission checked.

Admission decides on names (the model a pod says it serves); `verify_load` runs where the
model is loaded (an init container before the server; the webhook will inject it) and binds
those names to bytes:

1. the attestation of the admitted, pinned reference is fetched from the policy's stores and
   verified against the policy's signers and BOM requirements, exactly as the webhook does
   (`ModelVerifier.check_now`); or, as the webhook will inject it, the BOM the
   webhook verified is fetched and must have the SHA-256 the webhook wrote into the pod
   (`PinnedBom`): the admission decision is the trust, so the pod holds no trust material;
2. with `fetch`, a Hub or OCI model is downloaded into the volume first: exactly the signed
   BOM's files, at the pinned commit or manifest, each bounded by its stated size, hashed as
   it arrives and refused unless it equals the BOM; nothing is put in place until every
   file is in (see `fetch_model` for the layouts);
3. every file of the folder the server reads is re-hashed (SHA-256, in parallel, as
   `generate` hashes) and compared with the BOM's file subjects: an extra, missing, changed
   or unreadable file, or a symlink out of the folder, fails with its reason.

The reference must be written in its one canonical spelling (`hf://ORG/REPO@<commit>`,
`oci://REGISTRY/REPO@sha256:<hex>`, `sha256:<hex>`), so no second spelling can name a model.
Raises `mlbom.errors` errors: `BadInputError` (exit 2) for an unusable reference or policy
or an unreachable store, `NotVerifiedError` (exit 1) for everything that did not verify.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from attest.statement import Subject, excluded_paths, file_subjects
from mlbom.errors import BadInputError, MlbomError, NotVerifiedError, shown
from mlbom.references import ModelRef, parse

if TYPE_CHECKING:
    from admission.policy import Policy
    from attest.stores import Store

#: the prefix of the staging folders `fetch` downloads into (same filesystem as the model)
STAGING_PREFIX = ".mlbom-incoming-"
#: a staging folder this old was left by an interrupted run (a younger one may be another
#: verifier's at work on a shared volume)
STALE_SECONDS = 3600
FETCH_WORKERS = 4
WRITE_CHUNK = 1 << 20


@dataclass(frozen=True)
class PinnedBom:
    """The BOM admission verified for a model: its SHA-256, and the stores to fetch it from."""

    sha256: str
    stores: tuple[str, ...]


@dataclass(frozen=True)
class LoadResult:
    """A verified model where a server reads it."""

    reference: str
    namespace: str | None
    #: the folder given (`--path`)
    path: Path
    #: the folder re-hashed: `path`, or the Hub cache snapshot `fetch` wrote under it
    model_path: Path
    signer: str | None
    store: str | None
    files: int
    bytes: int
    #: time spent re-hashing the model
    seconds: float
    #: bytes downloaded (0 without `fetch`, or when the copy in place already verified)
    fetched_bytes: int = 0
    #: paths the signed BOM records as left out by `generate --exclude`: not verified
    excluded: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "verified": True,
            "reference": self.reference,
            "namespace": self.namespace,
            "path": str(self.path),
            "modelPath": str(self.model_path),
            "signer": self.signer,
            "store": self.store,
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 6),
            "megabytesPerSecond": round(self.megabytes_per_second, 1),
            "fetchedBytes": self.fetched_bytes,
            "excluded": list(self.excluded),
            "warnings": list(self.warnings),
        }


def canonical_reference(text: str) -> ModelRef:
    """The pinned reference `text` names, refused unless written in its canonical spelling:
    one model, one spelling (no tag beside a digest, no upper-case hex, no trailing space)."""
    ref = parse(text).require_pinned()
    # `isprintable`: parse's patterns end in `$`, which also matches before a final newline
    if str(ref) != text or not text.isprintable() or text != text.strip():
        raise BadInputError(
            f"the model reference {shown(text)!r} is not written canonically",
            hint=f"pass the reference as the webhook admitted it: {shown(str(ref))}",
        )
    return ref


def verify_load(
    reference: str,
    path: Path,
    policy: Policy | Path | PinnedBom,
    *,
    namespace: str | None = None,
    fetch: bool = False,
    stores: list[Store] | None = None,
    insecure_registries: tuple[str, ...] = (),
) -> LoadResult:
    """Verify the model `reference` names where a server reads it, at `path`; with `fetch`
    (Hub and OCI models) download it there first. `policy` is a `Policy` or its file, or
    the `PinnedBom` the webhook injected; `stores` replaces the policy's stores (tests, a
    caller with its own clients)."""
    ref = canonical_reference(reference)
    if fetch and ref.kind == "local":
        raise BadInputError(
            f"{ref} is a local folder's key: there is nowhere to fetch it from",
            hint="drop --fetch and give --path the folder the server reads",
        )
    warnings: list[str] = []
    signer: str | None
    store: str | None
    if isinstance(policy, PinnedBom):
        bom, signer, store = pinned_bom(ref, policy, stores, insecure_registries)
    else:
        bom, signer, store = _verified_bom(ref, policy, namespace, stores, warnings)
    expected = file_subjects(bom)
    excluded = tuple(excluded_paths(bom))
    _check_names(expected, excluded)

    folder, fetched, undo = path, 0, None
    if fetch:
        folder, fetched, undo = fetch_model(ref, path, bom, insecure_registries=insecure_registries)
    start = time.perf_counter()
    try:
        rehash(folder, expected, excluded)
    except NotVerifiedError:
        if undo is not None:
            undo()
        raise
    seconds = time.perf_counter() - start
    return LoadResult(
        reference=str(ref),
        namespace=namespace,
        path=path,
        model_path=folder,
        signer=signer,
        store=store,
        files=len(expected),
        bytes=_total_size(folder, bom, expected),
        seconds=seconds,
        fetched_bytes=fetched,
        excluded=excluded,
        warnings=tuple(warnings),
    )


def _verified_bom(
    ref: ModelRef,
    policy: Policy | Path,
    namespace: str | None,
    stores: list[Store] | None,
    warnings: list[str],
) -> tuple[dict[str, Any], str | None, str | None]:
    """The BOM of `ref`, its attestation verified with the policy as the webhook does."""
    from admission.policy_loader import load_policy
    from admission.verification import ModelVerifier

    policy = load_policy(policy) if isinstance(policy, Path) else policy
    verdict = ModelVerifier(policy, stores).check_now(str(ref))
    if verdict.outcome == "unreachable":
        from attest.stores import StoreUnreachableError

        raise StoreUnreachableError(verdict.reason, hint="run the pod again when it is reachable")
    mode = policy.mode_for(namespace) if namespace else None
    if verdict.outcome == "policy" and mode in ("warn", "audit") and verdict.bom is not None:
        warnings.append(f"{verdict.reason} ({mode} mode in namespace {shown(namespace or '')})")
    elif not verdict.ok or verdict.bom is None:
        where = f" (namespace {shown(namespace)})" if namespace else ""
        raise NotVerifiedError(verdict.outcome, verdict.reason + where)
    return verdict.bom, verdict.signer, verdict.store


def pinned_bom(
    ref: ModelRef,
    pin: PinnedBom,
    stores: list[Store] | None = None,
    insecure_registries: tuple[str, ...] = (),
) -> tuple[dict[str, Any], str, str]:
    """The BOM admission verified for `ref`: the first store's whose bytes have the pinned
    SHA-256. Another BOM under the same name (replaced since admission) is refused."""
    from attest.statement import bom_sha256, parse_bom
    from attest.stores import CorruptEntryError, StoreUnreachableError, entries, open_store

    if len(pin.sha256) != 64 or pin.sha256.strip("0123456789abcdef"):
        raise BadInputError(f"--bom-sha256 {shown(pin.sha256)}: expected 64 lower-case hex")
    opened = (
        stores
        if stores is not None
        else [open_store(s, insecure_registries=insecure_registries) for s in pin.stores]
    )
    if not opened:
        raise BadInputError("give the store that holds the admitted BOM (--store)")
    unreachable: list[str] = []
    other: list[str] = []
    for store, entry in entries(opened, ref):
        if isinstance(entry, CorruptEntryError):
            other.append(f"{store.location}: {entry.message}")
            continue
        if isinstance(entry, MlbomError):
            unreachable.append(f"{store.location}: {entry.message}")
            continue
        try:
            bom = parse_bom(entry.bom, f"the BOM of {ref}")
        except MlbomError as e:
            other.append(f"{store.location}: {e.message}")
            continue
        if bom_sha256(bom) != pin.sha256:
            other.append(f"{store.location} holds another BOM for it than the one admitted")
            continue
        return bom, f"admission (BOM sha256:{pin.sha256[:12]}…)", store.location
    if unreachable and not other:
        raise StoreUnreachableError(
            "; ".join(unreachable), hint="run the pod again when it is reachable"
        )
    raise NotVerifiedError(
        "bom",
        f"no store holds the BOM admission verified for {ref} (sha256:{pin.sha256})"
        + (f": {'; '.join(other + unreachable)}" if other or unreachable else ""),
    )


def rehash(folder: Path, expected: list[Subject], excluded: Iterable[str] = ()) -> None:
    """Every file at `folder` re-hashed against `expected` (`attest.verify.check_model`),
    the BOM's recorded exclusions left out. Whatever stops the check (a symlink out of the
    folder, no folder at all) is a failed check here: the server would read those bytes."""
    from attest.verify import check_model

    if not folder.exists() and not folder.is_symlink():
        raise NotVerifiedError("model", f"there is no model at {shown(str(folder))}")
    skipped = tuple(folder / p for p in excluded) if folder.is_dir() else ()
    try:
        check_model(folder, expected, skipped)
    except BadInputError as e:
        raise NotVerifiedError("model", shown(e.message, 2000), hint=e.hint) from None


def _check_names(expected: list[Subject], excluded: Iterable[str]) -> None:
    """A signed BOM is still hostile input: a file or exclusion that would leave the model
    folder (`../x`, `/etc/x`, `a//b`) is refused before any byte is read or written."""
    for name in [s["name"] for s in expected] + list(excluded):
        if not _confined(name):
            raise NotVerifiedError(
                "bom", f"the signed BOM names the path {shown(name)!r}, outside the model folder"
            )


def _confined(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return (
        bool(parts)
        and not name.startswith("/")
        and ".." not in parts
        and "\0" not in name
        and str(PurePosixPath(name)) == name  # no ".", "//" or trailing "/"
    )


def _sizes(bom: dict[str, Any]) -> dict[str, int]:
    """The size the BOM records for each file (`mlbom:size`), where it records one."""
    from mlbom.bom import read

    found: dict[str, int] = {}
    for component in read.files(bom):
        for value in read.property_values(component, "mlbom:size"):
            with suppress(ValueError):
                found[str(component.get("name"))] = int(value)
    return found


def _total_size(folder: Path, bom: dict[str, Any], expected: list[Subject]) -> int:
    sizes = _sizes(bom)
    total = 0
    for subject in expected:
        name = subject["name"]
        if name in sizes:
            total += sizes[name]
            continue
        with suppress(OSError):
            total += (folder / name if folder.is_dir() else folder).stat().st_size
    return total


# -- fetching -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Wanted:
    """One file to download: its name in the model, SHA-256, size and byte stream."""

    name: str
    sha256: str
    size: int
    chunks: Callable[[], AbstractContextManager[Iterable[bytes]]]


def fetch_model(
    ref: ModelRef,
    path: Path,
    bom: dict[str, Any],
    *,
    insecure_registries: tuple[str, ...] = (),
) -> tuple[Path, int, Callable[[], None]]:
    """Download the BOM's files of the pinned Hub commit or OCI manifest under `path`; the
    folder the server reads, the bytes downloaded, and a function that takes the placed
    model out again (when its final re-hash fails).

    Layouts:
    - Hub: a Hugging Face cache, `path/models--ORG--REPO/` with `blobs/<sha256>`,
      `snapshots/<commit>/<file>` relative symlinks into `blobs/`, and `refs/main` naming
      the commit; a server with `HF_HUB_CACHE=path` (or `HF_HOME` one level up) and
      `HF_HUB_OFFLINE=1` reads it. The folder re-hashed is `snapshots/<commit>`.
    - OCI: the files themselves under `path`, as `mlbom generate` lists the layers' titles.

    A copy already in place that verifies is kept (a restarted init container downloads
    nothing). Every file is downloaded into a staging folder under `path`, bounded by its
    size, hashed as it arrives and compared with the BOM; only when all are in and equal
    is anything moved into place, each file by an atomic rename."""
    root = path
    if not root.is_dir():
        raise NotVerifiedError("fetch", f"{shown(str(path))} is not a folder to fetch into")
    expected = file_subjects(bom)
    for subject in expected:
        name = subject["name"]
        if "\\" in name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            raise NotVerifiedError(
                "fetch", f"the BOM's file name {shown(name)!r} cannot be written as it is listed"
            )
    for stale in root.glob(STAGING_PREFIX + "*"):  # what an interrupted run left
        with suppress(OSError):
            if time.time() - stale.lstat().st_mtime > STALE_SECONDS:
                _remove(stale)
    if ref.kind == "hf":
        return _fetch_hub(ref, root, bom, expected)
    return _fetch_oci(ref, root, bom, expected, insecure_registries)


def _fetch_hub(
    ref: ModelRef, root: Path, bom: dict[str, Any], expected: list[Subject]
) -> tuple[Path, int, Callable[[], None]]:
    from mlbom._clients.hub import Hub
    from mlbom.references import HubRef

    assert ref.digest is not None
    commit = ref.digest
    repo_dir = root / ("models--" + ref.name.replace("/", "--"))
    for folder in (repo_dir, repo_dir / "blobs", repo_dir / "snapshots", repo_dir / "refs"):
        _real_folder(folder)
    snapshot = repo_dir / "snapshots" / commit
    main = repo_dir / "refs" / "main"

    def undo() -> None:
        _remove(snapshot)
        with suppress(OSError):
            if main.read_text()[:100].strip() == commit:
                main.unlink()

    if _already_verified(snapshot, bom, expected):
        _write_atomically(main, commit.encode())
        return snapshot, 0, undo

    hub = Hub(HubRef(ref.name, commit))
    listed = {f.path: f for f in hub.resolve()}  # refuses another commit than the pinned one
    sizes = _sizes(bom)
    wanted: dict[str, _Wanted] = {}  # one download per distinct content
    for subject in expected:
        name, digest = subject["name"], subject["digest"]["sha256"]
        if name not in listed:
            raise NotVerifiedError("fetch", f"{shown(name)} is in the BOM but not in {ref}")
        size = _size(name, listed[name].size, sizes, "the Hub")
        wanted.setdefault(digest, _Wanted(name, digest, size, _hub_chunks(hub, name)))
    staging, staged, fetched = _download(root, list(wanted.values()), str(ref))
    try:
        for digest, one in wanted.items():
            os.replace(staged[one.name], repo_dir / "blobs" / digest)
        building = Path(tempfile.mkdtemp(prefix=f".{commit}-", dir=repo_dir / "snapshots"))
        for subject in expected:
            link = building / subject["name"]
            link.parent.mkdir(parents=True, exist_ok=True)
            blob = repo_dir / "blobs" / subject["digest"]["sha256"]
            link.symlink_to(os.path.relpath(blob, link.parent))
        _swap(building, snapshot)
        _write_atomically(main, commit.encode())
    finally:
        _remove(staging)
    return snapshot, fetched, undo


def _hub_chunks(hub: Any, name: str) -> Callable[[], AbstractContextManager[Iterable[bytes]]]:
    return lambda: hub.chunks(name)


def _fetch_oci(
    ref: ModelRef,
    root: Path,
    bom: dict[str, Any],
    expected: list[Subject],
    insecure_registries: tuple[str, ...],
) -> tuple[Path, int, Callable[[], None]]:
    from mlbom._clients.registry import Registry, layers, model_errors, model_manifest
    from mlbom.references import split_name

    placed: list[Path] = []

    def undo() -> None:
        for file in placed:
            with suppress(OSError):
                file.unlink()

    if _already_verified(root, bom, expected):
        return root, 0, undo
    registry, repository = split_name(ref.name)
    client = Registry(registry, insecure_registries=insecure_registries)
    assert ref.digest is not None
    with model_errors(ref):
        found = {layer.path: layer for layer in layers(model_manifest(client, repository, ref.digest))}  # fmt: skip
    sizes = _sizes(bom)
    wanted = []
    for subject in expected:
        name, digest = subject["name"], subject["digest"]["sha256"]
        layer = found.get(name)
        if layer is None:
            raise NotVerifiedError("fetch", f"{shown(name)} is in the BOM but no layer of {ref}")
        if layer.sha256 != digest:
            raise NotVerifiedError(
                "fetch", f"the layer of {shown(name)} in {ref} is not the file the BOM lists"
            )
        size = _size(name, layer.size, sizes, "the manifest")

        def chunks(layer: Any = layer) -> AbstractContextManager[Iterable[bytes]]:
            return _registry_chunks(client, repository, layer, ref)

        wanted.append(_Wanted(name, digest, size, chunks))
    staging, staged, fetched = _download(root, wanted, str(ref))
    try:
        for subject in expected:
            target = root / subject["name"]
            _real_parents(root, target)
            if target.is_dir() and not target.is_symlink():
                raise NotVerifiedError("fetch", f"{shown(str(target))} is a folder, not a file")
            os.replace(staged[subject["name"]], target)
            placed.append(target)
    finally:
        _remove(staging)
    return root, fetched, undo


def _registry_chunks(
    client: Any, repository: str, layer: Any, ref: ModelRef
) -> AbstractContextManager[Iterable[bytes]]:
    from contextlib import contextmanager

    from mlbom._clients.registry import model_errors

    @contextmanager
    def opened() -> Iterator[Iterable[bytes]]:
        with model_errors(ref):
            yield client.blob_chunks(repository, layer.digest, layer.size)

    return opened()


def _size(name: str, listed: int, recorded: dict[str, int], where: str) -> int:
    """The size to bound a download by: what the server lists, which must be what the BOM
    records."""
    if name in recorded and recorded[name] != listed:
        raise NotVerifiedError(
            "fetch",
            f"{where} lists {shown(name)} at {listed} bytes, the BOM at {recorded[name]}",
        )
    return listed


def _download(root: Path, wanted: list[_Wanted], origin: str) -> tuple[Path, dict[str, Path], int]:
    """Every file into one staging folder under `root`, in parallel, each refused unless it
    is exactly its size and SHA-256; the staging folder, the staged files by name, and the
    bytes received. On any failure the staging folder is removed and nothing is placed."""
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
    staged: dict[str, Path] = {}
    try:
        with ThreadPoolExecutor(max(1, min(FETCH_WORKERS, len(wanted)))) as pool:
            futures = {
                pool.submit(_download_one, staging / str(i), w, origin): w
                for i, w in enumerate(wanted)
            }
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            for future in done:
                future.result()  # the first failure, raised
            for future, w in futures.items():
                staged[w.name] = future.result()
    except BaseException:
        _remove(staging)
        raise
    return staging, staged, sum(w.size for w in wanted)


def _download_one(target: Path, wanted: _Wanted, origin: str) -> Path:
    hasher = hashlib.sha256()
    received = 0
    with open(target, "xb") as out, wanted.chunks() as chunks:
        for chunk in chunks:
            received += len(chunk)
            if received > wanted.size:
                raise NotVerifiedError(
                    "fetch",
                    f"{origin} sent more than the {wanted.size} bytes of {shown(wanted.name)}",
                )
            hasher.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if received != wanted.size:
        raise NotVerifiedError(
            "fetch",
            f"{origin} sent {received} of the {wanted.size} bytes of {shown(wanted.name)}",
            hint="the connection may have dropped; the pod's next start tries again",
        )
    if hasher.hexdigest() != wanted.sha256:
        raise NotVerifiedError(
            "fetch",
            f"the bytes {origin} sent for {shown(wanted.name)} are not the file the signed BOM "
            f"lists (SHA-256 {hasher.hexdigest()}, BOM {wanted.sha256}); nothing was kept",
            hint="the file changed on the server or in transit: do not use this model",
        )
    return target


def _already_verified(folder: Path, bom: dict[str, Any], expected: list[Subject]) -> bool:
    """A copy in place that verifies is kept; anything else is fetched again."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return False
    try:
        rehash(folder, expected, excluded_paths(bom))
    except MlbomError:
        return False
    return True


def _real_folder(folder: Path) -> None:
    """`folder` made if missing, refused when it is anything but a real folder (a symlink
    would take the download elsewhere)."""
    with suppress(FileExistsError):
        folder.mkdir()
    if not stat.S_ISDIR(os.lstat(folder).st_mode):
        raise NotVerifiedError(
            "fetch", f"{shown(str(folder))} is not a folder (a symlink or a file?)"
        )


def _real_parents(root: Path, target: Path) -> None:
    """The folders between `root` and `target`, made as real folders (never through a
    symlink, which could lead out of `root`)."""
    current = root
    for part in target.relative_to(root).parts[:-1]:
        current = current / part
        _real_folder(current)


def _swap(new: Path, target: Path) -> None:
    """`new` renamed to `target`, an old `target` moved aside first and removed after."""
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}-old-{os.getpid()}-{time.monotonic_ns()}")
        os.rename(target, old)
    os.rename(new, target)
    if old is not None:
        _remove(old)


def _write_atomically(target: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        raise


def _remove(path: Path) -> None:
    """A file, symlink or folder gone, never following a symlink."""
    with suppress(FileNotFoundError):
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
