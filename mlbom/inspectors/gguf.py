"""GGUF models (llama.cpp), from the key-value header and the tensor table.

The header is parsed here, sequentially and with every count and length checked against
the file's size, over any seekable reader: a local file or byte ranges of a remote one.
Tensor data is never read; large arrays (the vocabulary) are skipped, not kept: arrays
of numbers in one seek, arrays of strings one length at a time within a budget, arrays
of arrays no deeper than `MAX_DEPTH` and within a budget. Time is linear in the header.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection, text
from mlbom.inspectors.safetensors import elements, total
from mlbom.models import BaseModel, Dataset, FileFacts, ModelInfo
from mlbom.sources import Blob

FORMAT = "gguf"
# Real models have about a thousand tensors and fewer than a hundred keys.
MAX_TENSORS = 1 << 16
MAX_KEYS = 1 << 10
MAX_DIMS = 8  # ggml itself has 4
MAX_KEY = 1 << 10  # a longer key is skipped
MAX_KEPT_STRING = 1 << 20  # longer values (none we report) are skipped
MAX_KEPT = 16 << 20  # string bytes kept from one header; the rest are skipped
MAX_KEPT_ITEMS = 100  # of a string array we report (tags, languages)
# Strings are walked one length at a time: a vocabulary and its merges are under a
# million; arrays of arrays, which no model uses, are refused beyond a few thousand.
MAX_WALKED_STRINGS = 1 << 21
MAX_NESTED_ITEMS = 1 << 12
MAX_DEPTH = 2  # arrays in arrays in arrays, no deeper
CHUNK = 64 << 10
_KEPT_ARRAYS = ("general.tags", "general.languages")

# GGUF value types: id -> struct of a scalar
_SCALARS = {k: struct.Struct(f) for k, f in {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d"}.items()}  # fmt: skip
_U32, _U64 = _SCALARS[4], _SCALARS[10]
_STRING, _ARRAY = 8, 9


def matches(path: str) -> bool:
    return path.endswith(".gguf")


def inspect(blob: Blob, context: Context) -> Inspection:
    with blob.open() as f:
        version, fields, shapes = _Header(f, blob.path, blob.size).read()

    def value(key: str) -> Any:
        return fields.get(key)

    facts = FileFacts(format=FORMAT, structured=True)
    facts.parameter_count = total(elements(shape) for shape in shapes)
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
        # who made the model, and for whom: the BOM's manufacturer and supplier
        author=text(value("general.author")),
        organization=text(value("general.organization")),
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
    count = value(f"general.{kind}.count")
    for i in range(min(count, 64) if isinstance(count, int) else 0):
        if name := text(value(f"general.{kind}.{i}.name")):
            org = text(value(f"general.{kind}.{i}.organization"))
            found.append((
                f"{org}/{name}" if org and "/" not in name else name,
                text(value(f"general.{kind}.{i}.version")),
                text(value(f"general.{kind}.{i}.repo_url")),
            ))  # fmt: skip
    return found


class _Header:
    """A GGUF header read front to back through a buffer; every count and length is checked
    against what is left of the file before it is trusted, and nothing is walked item by
    item without a budget (`MAX_WALKED_STRINGS`, `MAX_NESTED_ITEMS`)."""

    def __init__(self, f: BinaryIO, path: str, size: int) -> None:
        self.f, self.path, self.size = f, path, size
        self.buf, self.base, self.pos = b"", 0, 0  # buf holds bytes [base, base + len(buf))
        self.strings, self.nested, self.kept = MAX_WALKED_STRINGS, MAX_NESTED_ITEMS, MAX_KEPT

    def read(self) -> tuple[int, dict[str, Any], list[tuple[int, ...]]]:
        if self._take(4) != b"GGUF":
            raise InspectionError(f"{self.path}: not a GGUF file (bad magic)")
        version = self._scalar(_U32)
        if version not in (2, 3):
            raise InspectionError(f"{self.path}: unsupported GGUF version {version}")
        tensors, keys = self._scalar(_U64), self._scalar(_U64)
        if tensors > MAX_TENSORS or keys > MAX_KEYS:
            raise InspectionError(
                f"{self.path}: header claims {tensors} tensors and {keys} keys, "
                "beyond any real model"
            )
        fields: dict[str, Any] = {}
        for _ in range(keys):
            key = self._string(MAX_KEY) or ""
            fields[key] = self._value(self._scalar(_U32), key)
        shapes = []
        for _ in range(tensors):
            self._string(0)
            dims = self._scalar(_U32)
            if dims > MAX_DIMS:
                raise InspectionError(f"{self.path}: a tensor claims {dims} dimensions")
            shape = struct.unpack(f"<{dims}Q", self._take(8 * dims))
            try:
                elements(shape)  # the dimensions are checked before anything multiplies them
            except InspectionError as e:
                raise InspectionError(f"{self.path}: {e.message}") from e
            shapes.append(shape)
            self._take(12)  # ggml type, data offset
        return version, fields, shapes

    def _value(self, kind: int, key: str, depth: int = 0) -> Any:
        if kind in _SCALARS:
            return self._scalar(_SCALARS[kind])
        if kind == _STRING:
            return self._string(MAX_KEPT_STRING)
        if kind != _ARRAY or depth >= MAX_DEPTH:
            raise InspectionError(
                f"{self.path}: unknown GGUF value type {kind} for {key[:100]!r}"
                if kind != _ARRAY
                else f"{self.path}: array {key[:100]!r} nests arrays deeper than {MAX_DEPTH}"
            )
        item, count = self._scalar(_U32), self._scalar(_U64)
        left = self.size - self.pos
        if item in _SCALARS:  # numbers are never reported: skip them in one seek
            width = _SCALARS[item].size
            if count > left // width:
                raise InspectionError(f"{self.path}: array {key[:100]!r} claims {count} items")
            self._skip(count * width)
            return None
        if item == _STRING:
            if count > left // 8 or count > self.strings:  # each string has an 8-byte length
                raise InspectionError(
                    f"{self.path}: array {key[:100]!r} claims {count} strings, beyond "
                    + ("the file" if count > left // 8 else f"{MAX_WALKED_STRINGS} in a header")
                )
            self.strings -= count
            keep = min(count, MAX_KEPT_ITEMS) if key in _KEPT_ARRAYS and depth == 0 else 0
            values = [self._string(MAX_KEPT_STRING) for _ in range(keep)]
            self._skip_strings(count - keep)
            return values if keep else None
        if item != _ARRAY:
            raise InspectionError(f"{self.path}: unknown GGUF array type {item} for {key[:100]!r}")
        if count > left // 12 or count > self.nested:  # an array takes 12 bytes at least
            raise InspectionError(
                f"{self.path}: array {key[:100]!r} claims {count} arrays, beyond "
                + ("the file" if count > left // 12 else f"{MAX_NESTED_ITEMS} in a header")
            )
        self.nested -= count
        for _ in range(count):
            self._value(_ARRAY, key, depth + 1)
        return None

    def _string(self, keep: int) -> str | None:
        length = self._scalar(_U64)
        if length > keep or length > self.kept:
            self._skip(length)
            return None
        self.kept -= length
        return self._take(length).decode("utf-8", "replace")

    def _skip_strings(self, count: int) -> None:
        """Past `count` strings: one length read each, from the buffer."""
        unpack, buf, base, pos = _U64.unpack_from, self.buf, self.base, self.pos
        for _ in range(count):
            if pos - base + 8 > len(buf):
                self.pos = pos
                self._refill(8)
                buf, base = self.buf, self.base
            pos += 8 + unpack(buf, pos - base)[0]
            if pos > self.size:
                raise InspectionError(f"{self.path}: the GGUF header is truncated")
        self.pos = pos

    def _scalar(self, fmt: struct.Struct) -> Any:
        (value,) = fmt.unpack(self._take(fmt.size))
        return value

    def _take(self, n: int) -> bytes:
        at = self.pos - self.base
        if at < 0 or at + n > len(self.buf):
            self._refill(n)
            at = 0
        self.pos += n
        return self.buf[at : at + n]

    def _refill(self, n: int) -> None:
        """Read from `pos`: at least `n` bytes, `CHUNK` when the file has them."""
        if self.pos + n > self.size:
            raise InspectionError(f"{self.path}: the GGUF header is truncated")
        self.f.seek(self.pos)
        self.buf, self.base = self.f.read(max(n, min(CHUNK, self.size - self.pos))), self.pos
        if len(self.buf) < n:
            raise InspectionError(f"{self.path}: the GGUF header is truncated")

    def _skip(self, n: int) -> None:
        if self.pos + n > self.size:
            raise InspectionError(f"{self.path}: the GGUF header is truncated")
        self.pos += n
