"""Format inspectors: each reads one kind of file from its header or text, never by
loading weights, and reports what the file is (`FileFacts`) and what it says about the
model (`ModelInfo`). Adding a format means adding one module to `INSPECTORS`.

Every inspector treats its file as hostile: reads are bounded and malformed content
raises `InspectionError`, which becomes a warning and a mark on that file in the BOM.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from types import ModuleType

from mlbom.errors import InspectionError, MlbomError
from mlbom.models import FileFacts, ModelInfo
from mlbom.sources import Blob

log = logging.getLogger(__name__)


def text(value: object, limit: int = 1000) -> str | None:
    """A scalar from untrusted parsed data as bounded text; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value).strip()[:limit] or None


#: bytes of a file's start every inspector's `detect` sees
HEAD = 4096


def unscanned(reason: str) -> str:
    """The finding for content that can run code on load but could not be read to its end:
    it counts as unsafe (`--fail-on unsafe`), because what was not read was not checked."""
    return f"<unscanned: {reason}>"


def flag(facts: FileFacts, findings: list[str]) -> None:
    """Record what would run code when the file is loaded (imports, Lambda layers, ops)."""
    new = [f for f in dict.fromkeys(findings) if f not in facts.unsafe_imports]
    facts.unsafe_imports += new
    facts.properties += [("mlbom:unsafe-import", f) for f in new]
    if new:
        facts.executable = True


@dataclass
class Inspection:
    facts: FileFacts
    info: ModelInfo = field(default_factory=ModelInfo)


@dataclass(frozen=True)
class Context:
    """What an inspector may know beyond its own file."""

    paths: frozenset[str]  # every file of the model, relative


def _modules() -> list[ModuleType]:
    # Precedence order: what the card says beats what a config says beats file headers.
    from mlbom.inspectors import (
        archives,
        card,
        config,
        coreml,
        gguf,
        hdf5,
        onnx,
        pickles,
        safetensors,
        tensorflow,
    )  # fmt: skip

    return [card, config, safetensors, gguf, onnx, hdf5, tensorflow, coreml, archives, pickles]


def _choose(blob: Blob, head: bytes) -> ModuleType | None:
    """The inspector for a file: its bytes decide; its name only where the bytes of a
    format do not announce it (a card, a config, ONNX's protobuf)."""
    card, config, safetensors, gguf, onnx, hdf5, tensorflow, coreml, archives, pickles = _modules()
    path, size = blob.path, blob.size
    if head.startswith(b"GGUF"):
        return gguf
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8:
        return safetensors  # a little-endian header length, then the JSON header
    for module in (hdf5, tensorflow, archives):
        if module.detect(head, path):
            return module
    if pickles.is_pickle_start(head):
        return pickles
    if archives.ends_like_zip(blob):
        return archives
    for module in (card, config, safetensors, onnx, gguf):
        if module.matches(path):
            return module
    for module in (coreml, pickles):
        if module.detect(head, path):
            return module
    return None


def inspect(blob: Blob, context: Context) -> tuple[Inspection, int]:
    """Inspect one file; returns the inspection and the precedence rank of the inspector."""
    from mlbom.inspectors import hdf5, pickles

    if blob.problem:
        return Inspection(FileFacts(error=blob.problem)), len(_modules())
    head = blob.read_at(0, HEAD)
    module = _choose(blob, head)
    modules = _modules()
    if module is None:
        inspection, rank = Inspection(plain_facts(blob.path)), len(modules)
        if head.startswith(b"\x7fELF"):  # a native library or program, whatever its name
            inspection.facts.format, inspection.facts.executable = "elf", True
    else:
        inspection, rank = _run(module, blob, context), modules.index(module)
    if module is not pickles and pickles.might_be_pickle(head):
        # Bytes that read as a pickle are one, whatever else they are: a polyglot runs
        # its code under pickle.load. Content that is not a pickle stops at its first bytes.
        try:
            scan = pickles.scan_blob(blob, sure=False)
        except (OSError, ValueError) as e:
            scan = pickles.PickleScan(unscanned=[f"its bytes could not be read as a pickle ({e})"])
        if scan is not None:
            if inspection.facts.error or module is None:
                return Inspection(pickles.facts_of(scan, pickles.FORMAT)), modules.index(pickles)
            flag(inspection.facts, scan.findings() or [unscanned("it is also a pickle")])
    if module is not hdf5 and hdf5.signature_offset(blob) is not None:
        # HDF5 finds its superblock after a user block of any size: a file that starts as
        # something else is an HDF5 file (a Keras model) to h5py all the same
        also = _run(hdf5, blob, context)
        if inspection.facts.error or module is None:
            return also, modules.index(hdf5)
        flag(inspection.facts, also.facts.unsafe_imports or [unscanned("it is also HDF5")])
    return inspection, rank


def _run(module: ModuleType, blob: Blob, context: Context) -> Inspection:
    run: Callable[[Blob, Context], Inspection] = module.inspect
    try:
        return run(blob, context)
    except InspectionError as e:
        return _failed(module, e.message.removeprefix(f"{blob.path}: "))
    except MlbomError:
        raise  # not the file's fault (a remote file's network failed): ends the run
    except Exception as e:
        # Third-party parsers (gguf, onnx, zipfile) signal malformed input in many ways;
        # one hostile file must never end the run. --debug shows the traceback.
        log.debug("inspecting %s failed", blob.path, exc_info=True)
        return _failed(module, f"malformed {module.FORMAT} file ({type(e).__name__}: {e})")


def _failed(module: ModuleType, message: str) -> Inspection:
    # A file that could not be read is still what its format makes it; one whose format
    # can run code (a pickle; a Keras, HDF5 or SavedModel file) and that was not read to
    # its end counts as unsafe.
    executable = getattr(module, "EXECUTABLE", False)
    facts = FileFacts(format=module.FORMAT, executable=executable, error=message[:500])
    if getattr(module, "MAY_RUN_CODE", executable):
        flag(facts, [unscanned(message[:300])])
    return Inspection(facts)


_PLAIN: dict[str, dict[str, object]] = {
    ".py": dict(format="python", executable=True),  # remote code run by trust_remote_code
    ".pyc": dict(format="python-bytecode", executable=True),
    ".so": dict(format="shared-library", executable=True),
    ".json": dict(format="json", structured=True),
    ".md": dict(format="text"),
    ".txt": dict(format="text"),
    ".model": dict(format="sentencepiece", structured=True),
    ".bin": dict(format="binary"),
    ".zip": dict(format="zip", archive=True),
    ".tar": dict(format="tar", archive=True),
    ".gz": dict(format="gzip", archive=True),
}


def plain_facts(path: str) -> FileFacts:
    """What a file's name alone says, for files no inspector reads."""
    suffix = PurePosixPath(path).suffix.lower()
    return FileFacts(**_PLAIN.get(suffix, {}))  # type: ignore[arg-type]
