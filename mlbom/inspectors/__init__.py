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
    from mlbom.inspectors import card, config, gguf, onnx, pickles, safetensors

    return [card, config, safetensors, gguf, onnx, pickles]


def inspect(blob: Blob, context: Context) -> tuple[Inspection, int]:
    """Inspect one file; returns the inspection and the precedence rank of the inspector."""
    for rank, module in enumerate(_modules()):
        if module.matches(blob.path):
            run: Callable[[Blob, Context], Inspection] = module.inspect
            try:
                return run(blob, context), rank
            except InspectionError as e:
                return _failed(module, e.message.removeprefix(f"{blob.path}: ")), rank
            except MlbomError:
                raise  # not the file's fault (a remote file's network failed): ends the run
            except Exception as e:
                # Third-party parsers (gguf, onnx, zipfile) signal malformed input in many
                # ways; one hostile file must never end the run. --debug shows the traceback.
                log.debug("inspecting %s failed", blob.path, exc_info=True)
                return _failed(
                    module, f"malformed {module.FORMAT} file ({type(e).__name__}: {e})"
                ), rank
    return Inspection(plain_facts(blob.path)), len(_modules())


def _failed(module: ModuleType, message: str) -> Inspection:
    # A file that could not be read is still what its format makes it (pickles execute).
    executable = getattr(module, "EXECUTABLE", False)
    return Inspection(FileFacts(format=module.FORMAT, executable=executable, error=message[:500]))


_PLAIN: dict[str, dict[str, object]] = {
    ".py": dict(format="python", executable=True),  # remote code run by trust_remote_code
    ".json": dict(format="json", structured=True),
    ".md": dict(format="text"),
    ".txt": dict(format="text"),
    ".model": dict(format="sentencepiece", structured=True),
    ".zip": dict(format="zip", archive=True),
    ".tar": dict(format="tar", archive=True),
    ".gz": dict(format="gzip", archive=True),
}


def plain_facts(path: str) -> FileFacts:
    """What a file's name alone says, for files no inspector reads."""
    suffix = PurePosixPath(path).suffix.lower()
    return FileFacts(**_PLAIN.get(suffix, {}))  # type: ignore[arg-type]
