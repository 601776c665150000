"""GGUF models (llama.cpp), from the key-value header and the tensor table.

The header is parsed here, sequentially and with every count and length checked against
the file's size, over any seekable reader: a local file or byte ranges of a remote one.
Tensor data is never read; large arrays (the vocabulary) are skipped, not kept.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection, text
from mlbom.models import BaseModel, Dataset, FileFacts, ModelInfo
from mlbom.sources import Blob

FORMAT = "gguf"
MAX_TENSORS = 1 << 20
MAX_KEYS = 1 << 16
MAX_DIMS = 8
MAX_KEPT_STRING = 1 << 20  # longer values (none we report) are skipped
MAX_KEPT_ITEMS = 100  # of a string array we report (tags, languages)
_KEPT_ARRAYS = ("general.tags", "general.languages")

# GGUF value types: id -> struct format of a scalar
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9


def matches(path: str) -> bool:
    return path.endswith(".gguf")


def inspect(blob: Blob, context: Context) -> Inspection:
    with blob.open() as f:
        version, fields, shapes = _Header(f, blob.path, blob.size).read()

    def value(key: str) -> Any:
        return fields.get(key)

    facts = FileFacts(format=FORMAT, structured=True)
    facts.parameter_count = sum(math.prod(shape) for shape in shapes)
    arch = value("general.architecture")
    props = facts.properties
    props.append(("mlbom:tensor-count", str(len(shapes))))
    props.append(("mlbom:gguf:version", str(version)))
    if arch:
        props.append(("mlbom:gguf:architecture", str(arch)))
    if isinstance(file_type := value("general.file_type"), int):
        from gguf import LlamaFileType  # the names llama.cpp gives its quantizations

        try:
            props.append(("mlbom:quantization", LlamaFileType(int(file_type)).name))
        except ValueError:
            props.append(("mlbom:quantization", f"file_type {int(file_type)}"))
    if (qv := value("general.quantization_version")) is not None:
        props.append(("mlbom:gguf:quantization-version", str(qv)))
    if (ctx := value(f"{arch}.context_length")) is not None:
        props.append(("mlbom:context-length", str(ctx)))
    for key in sorted(k for k in fields if k.startswith("tokenizer.chat_template")):
        template = value(key)
        if isinstance(template, str):
            suffix = key.removeprefix("tokenizer.chat_template").lstrip(".")
            name = "mlbom:chat-template:sha256" + (f":{suffix}" if suffix else "")
            props.append((name, hashlib.sha256(template.encode()).hexdigest()))

    info = ModelInfo(
        name=text(value("general.name")),
        version=text(value("general.version")),
        description=text(value("general.description")),
        architecture_family=text(arch),
        licenses=[lic] if (lic := text(value("general.license"))) else [],
        license_url=text(value("general.license.link")),
        tags=[str(t) for t in value("general.tags") or []][:100],
    )
    info.base_models = [
        BaseModel(name, version=v, url=u) for name, v, u in _sources(value, "base_model")
    ]
    info.datasets = [Dataset(name, revision=v, url=u) for name, v, u in _sources(value, "dataset")]
    if langs := value("general.languages"):
        props += [("mlbom:language", str(lang)) for lang in langs[:50]]
    return Inspection(facts, info)


def _sources(value: Callable[[str], Any], kind: str) -> list[tuple[str, str | None, str | None]]:
    """(organization/name, version, repository URL) of each `general.<kind>.<i>` entry."""
    found = []
    for i in range(min(int(value(f"general.{kind}.count") or 0), 64)):
        if name := text(value(f"general.{kind}.{i}.name")):
            org = text(value(f"general.{kind}.{i}.organization"))
            found.append((
                f"{org}/{name}" if org and "/" not in name else name,
                text(value(f"general.{kind}.{i}.version")),
                text(value(f"general.{kind}.{i}.repo_url")),
            ))  # fmt: skip
    return found


class _Header:
    """A GGUF header read front to back; every length is checked before it is trusted."""

    def __init__(self, f: BinaryIO, path: str, size: int) -> None:
        self.f, self.path, self.size = f, path, size

    def read(self) -> tuple[int, dict[str, Any], list[tuple[int, ...]]]:
        if self._take(4) != b"GGUF":
            raise InspectionError(f"{self.path}: not a GGUF file (bad magic)")
        version = self._scalar("<I")
        if version not in (2, 3):
            raise InspectionError(f"{self.path}: unsupported GGUF version {version}")
        tensors, keys = self._scalar("<Q"), self._scalar("<Q")
        if tensors > MAX_TENSORS or keys > MAX_KEYS:
            raise InspectionError(
                f"{self.path}: header claims {tensors} tensors and {keys} keys, "
                "beyond any real model"
            )
        fields: dict[str, Any] = {}
        for _ in range(keys):
            key = self._string(MAX_KEPT_STRING) or ""
            fields[key] = self._value(self._scalar("<I"), key)
        shapes = []
        for _ in range(tensors):
            self._string(0)
            dims = self._scalar("<I")
            if dims > MAX_DIMS:
                raise InspectionError(f"{self.path}: a tensor claims {dims} dimensions")
            shapes.append(struct.unpack(f"<{dims}Q", self._take(8 * dims)))
            self._take(12)  # ggml type, data offset
        return version, fields, shapes

    def _value(self, kind: int, key: str, depth: int = 0) -> Any:
        if kind in _SCALARS:
            return self._scalar(_SCALARS[kind])
        if kind == _STRING:
            return self._string(MAX_KEPT_STRING)
        if kind != _ARRAY or depth > 2:
            raise InspectionError(f"{self.path}: unknown GGUF value type {kind} for {key!r}")
        item, count = self._scalar("<I"), self._scalar("<Q")
        if count > self.size:  # every item takes at least one byte
            raise InspectionError(f"{self.path}: array {key!r} claims {count} items")
        if item in _SCALARS:  # numbers are never reported: skip them in one seek
            self._skip(count * struct.calcsize(_SCALARS[item]))
            return None
        keep = MAX_KEPT_ITEMS if key in _KEPT_ARRAYS and item == _STRING else 0
        values = [self._value(item, key, depth + 1) for _ in range(min(count, keep))]
        for _ in range(count - len(values)):
            if item == _STRING:
                self._string(0)
            else:
                self._value(item, key, depth + 1)
        return values if keep else None

    def _string(self, keep: int) -> str | None:
        length = self._scalar("<Q")
        if length > keep:
            self._skip(length)
            return None
        return self._take(length).decode("utf-8", "replace")

    def _scalar(self, fmt: str) -> Any:
        (value,) = struct.unpack(fmt, self._take(struct.calcsize(fmt)))
        return value

    def _take(self, n: int) -> bytes:
        data = self.f.read(n) if n else b""
        if len(data) != n:
            raise InspectionError(f"{self.path}: the GGUF header is truncated")
        return data

    def _skip(self, n: int) -> None:
        if self.f.tell() + n > self.size:
            raise InspectionError(f"{self.path}: the GGUF header is truncated")
        self.f.seek(n, 1)
