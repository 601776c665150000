"""Keras models: the config scanner shared by every Keras format, and the `.keras` archive.

A Keras model config names what its loader will construct. Most of it is Keras's own
layers; what runs code of the file's choosing on load is

- a `Lambda` layer: its function is marshalled Python bytecode (base64 in the config) or a
  named function the loader looks up,
- a custom object: a class or function from a module outside Keras
  (`{"module": "my_pkg", "class_name": "Evil", "registered_name": "my_pkg>Evil"}`).

The scanner walks parsed JSON without recursion, bounded in depth and node count; a config
past those bounds is reported as unscanned, which counts as unsafe.

The `.keras` v3 format is a zip of `config.json`, `metadata.json` and the weights
(`model.weights.h5` or `.npz`); the project's zip container code calls `inspect_archive`.
"""

from __future__ import annotations

import io
import json
import struct
import tempfile
import zipfile
from typing import BinaryIO, cast

from mlbom.errors import InspectionError
from mlbom.inspectors import Inspection, flag, hdf5, unscanned
from mlbom.models import FileFacts, ModelInfo

FORMAT = "keras"
EXECUTABLE = False  # a Lambda or a custom object is flagged where it is found
MAY_RUN_CODE = True  # a Keras file not read to its end is unscanned
# Keras functions a config may name that only compute (activations, losses, metrics):
# any other function it names is called on load (keras.utils.get_file downloads a file)
_COMPUTING = ("activations", "losses", "metrics", "ops", "initializers", "regularizers",
              "constraints")  # fmt: skip
MAX_DEPTH = 256  # nesting of a config (nested functional models stay far below)
MAX_NODES = 2_000_000  # JSON values walked
MAX_CONFIG = 64 << 20  # bytes of config.json
MAX_METADATA = 1 << 20  # bytes of metadata.json
MAX_COPIED_WEIGHTS = 1 << 30  # a compressed weights member is copied to read it: at most this
MAX_FINDINGS = 200
_NAME = 200  # characters of a module or function name in a finding
_KERAS_PACKAGES = ("keras", "tf_keras")
_WEIGHTS_H5 = "model.weights.h5"
_WEIGHTS_NPZ = "model.weights.npz"
_LAMBDA = "keras.layers.Lambda (marshalled Python bytecode)"


def scan_config(config: object) -> list[str]:
    """What in a parsed Keras config runs code on load, as findings (strings)."""
    findings: dict[str, None] = {}
    stack: list[tuple[object, int]] = [(config, 0)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            findings[unscanned(f"Keras config has more than {MAX_NODES} values")] = None
            break
        if depth > MAX_DEPTH:
            findings[unscanned(f"Keras config nested deeper than {MAX_DEPTH} levels")] = None
            break
        if isinstance(node, dict):
            for finding in _object_findings(node):
                findings[finding] = None
            children = [v for v in node.values() if isinstance(v, dict | list)]
        elif isinstance(node, list):
            children = [v for v in node if isinstance(v, dict | list)]
        else:
            continue
        stack.extend((v, depth + 1) for v in reversed(children))  # findings in file order
    return list(findings)[:MAX_FINDINGS]


def _object_findings(node: dict) -> list[str]:
    found: list[str] = []
    class_name = node.get("class_name")
    if class_name == "Lambda":
        config = node.get("config")
        found += _lambda(config if isinstance(config, dict) else {})
    elif class_name == "__lambda__":  # Keras 3: a serialized lambda wherever it appears
        found.append(_LAMBDA)
    if node.get("function_type") == "lambda" or node.get("output_shape_type") == "lambda":
        found.append(_LAMBDA)  # legacy Lambda config (or one hidden under another class)
    module = node.get("module")
    custom = False
    if (
        class_name == "function"
        and isinstance(module, str)
        and _is_keras(module)
        and not any(f".{part}." in f".{module}." for part in _COMPUTING)
    ):
        found.append(f"function {_short(module)}.{_short(node.get('config'))} (called on load)")
    if isinstance(module, str) and isinstance(class_name, str) and not _is_keras(module):
        custom = True
        if class_name == "function":  # Keras 3: a function, named by its config
            name = node.get("config")
            found.append(f"function {_short(module)}.{_short(name)}")
        elif class_name != "__lambda__":
            found.append(f"custom object {_short(module)}.{_short(class_name)}")
    registered = node.get("registered_name")
    if not custom and isinstance(registered, str) and ">" in registered:
        package = registered.split(">", 1)[0]
        if not _is_keras(package):
            found.append(f"custom object {_short(registered)}")
    return found


def _lambda(config: dict) -> list[str]:
    function = config.get("function")
    if isinstance(function, list) or (
        isinstance(function, dict) and function.get("class_name") == "__lambda__"
    ):
        return [_LAMBDA]
    if isinstance(function, str):  # legacy: a named function, its module beside it
        module = config.get("module")
        where = f"{_short(module)}." if isinstance(module, str) else ""
        return [f"keras.layers.Lambda (calls {where}{_short(function)})"]
    if isinstance(function, dict):  # Keras 3: a serialized function object
        module = function.get("module")
        name = function.get("config")
        if not isinstance(name, str):
            name = function.get("registered_name") or function.get("class_name")
        where = f"{_short(module)}." if isinstance(module, str) else ""
        return [f"keras.layers.Lambda (calls {where}{_short(name)})"]
    return ["keras.layers.Lambda (function config not readable)"]


def _is_keras(module: str) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in _KERAS_PACKAGES)


def _short(value: object) -> str:
    return str(value)[:_NAME] if isinstance(value, str) else "?"


# -- the .keras v3 archive -------------------------------------------------------------------


def is_archive(names: list[str]) -> bool:
    """A zip of the Keras v3 format: Keras builds a model from its `config.json` alone."""
    return "config.json" in names


def is_config(value: object) -> bool:
    """Parsed JSON shaped like a serialized Keras object (a model's `config.json`)."""
    return (
        isinstance(value, dict) and isinstance(value.get("class_name"), str) and "config" in value
    )


def inspect_archive(archive: zipfile.ZipFile, path: str) -> Inspection:
    """Inspect a `.keras` archive: its config scanned, its weights counted. A zip with a
    `config.json` that is no Keras config (and no metadata.json) keeps no Keras format."""
    facts = FileFacts(format=FORMAT, structured=True)
    info = ModelInfo()
    findings: list[str] = []
    names = set(archive.namelist())
    if "config.json" not in names:
        raise InspectionError(f"{path}: no config.json in the Keras archive")
    try:
        config = json.loads(_member(archive, "config.json", MAX_CONFIG, path))
    except (ValueError, RecursionError) as e:
        reason = "too deeply nested" if isinstance(e, RecursionError) else str(e)[:200]
        findings.append(unscanned(f"config.json is not readable JSON ({reason})"))
    else:
        findings += scan_config(config)
        if is_config(config):
            info.architectures.append(config["class_name"][:200])
        elif "metadata.json" not in names:
            facts.format = None
    if "metadata.json" in names:
        try:
            metadata = json.loads(_member(archive, "metadata.json", MAX_METADATA, path))
        except (ValueError, RecursionError) as e:
            raise InspectionError(f"{path}: metadata.json is not valid JSON") from e
        version = metadata.get("keras_version") if isinstance(metadata, dict) else None
        if isinstance(version, str):
            facts.properties.append(("mlbom:keras:version", version[:100]))
    if _WEIGHTS_H5 in names:
        _count_weights(archive, facts, path)
    elif _WEIGHTS_NPZ in names:
        facts.properties.append(("mlbom:keras:weights", _WEIGHTS_NPZ))
    flag(facts, findings)
    return Inspection(facts, info)


def _count_weights(archive: zipfile.ZipFile, facts: FileFacts, path: str) -> None:
    try:
        h5 = _read_weights(archive, archive.getinfo(_WEIGHTS_H5), path)
    except InspectionError as e:  # the config's findings still stand
        facts.error = f"{_WEIGHTS_H5}: {e.message}"[:500]
        return
    if h5 is None:
        facts.properties.append(("mlbom:keras:weights", f"{_WEIGHTS_H5} not read (too large)"))
        return
    weights, _ = hdf5.describe(h5, keras_weights=True)
    facts.parameter_count = weights.parameter_count
    facts.properties += [p for p in weights.properties if p[0] != "mlbom:hdf5:superblock-version"]
    if weights.error:
        facts.error = f"{_WEIGHTS_H5}: {weights.error}"[:500]


def _member(archive: zipfile.ZipFile, name: str, limit: int, path: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise InspectionError(f"{path}: {name} is {info.file_size} bytes (limit {limit})")
    with archive.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise InspectionError(f"{path}: {name} is larger than {limit} bytes")
    return data


def _read_weights(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str
) -> hdf5.Hdf5File | None:
    """The weights file's structure; read in place when stored, from a bounded copy when
    compressed (a compressed member cannot be seeked backwards without decompressing again)."""
    raw = archive.fp
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1 and raw is not None:
        raw.seek(info.header_offset)
        local = raw.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise InspectionError(f"{path}: {info.filename} has no local file header")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_length + extra_length
        window = _Window(cast(BinaryIO, raw), start, info.file_size)
        return hdf5.read(cast(BinaryIO, window), info.file_size, partial=True)
    if info.file_size > MAX_COPIED_WEIGHTS:
        return None
    with tempfile.TemporaryFile() as copy, archive.open(info) as member:
        copied = 0
        while chunk := member.read(1 << 20):
            copied += len(chunk)
            if copied > MAX_COPIED_WEIGHTS:
                return None
            copy.write(chunk)
        return hdf5.read(cast(BinaryIO, copy), copied, partial=True)


class _Window(io.RawIOBase):
    """A read-only view of `length` bytes at `start` of a seekable file."""

    def __init__(self, f: BinaryIO, start: int, length: int) -> None:
        self.f, self.start, self.length, self.pos = f, start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.length}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = max(0, min(len(buffer), self.length - self.pos))
        self.f.seek(self.start + self.pos)
        data = self.f.read(n)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)
