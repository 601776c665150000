"""ONNX models, with the `onnx` package, without loading weights.

An ONNX file is one protobuf message whose bulk is the graph's initializers (the
weights). The file is walked at the wire-format level, initializer payloads are skipped
by seeking (their names, shapes and external-data locations are kept), and the rest,
a few kilobytes to megabytes, is parsed by `onnx` itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import BinaryIO

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection
from mlbom.models import FileFacts, ModelInfo
from mlbom.sources import Blob

FORMAT = "onnx"
MAX_KEPT = 64 << 20  # the graph without its weights
STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"}
)
# protobuf field numbers (onnx.proto3)
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 5, 15
_TENSOR_DIMS, _TENSOR_EXTERNAL_DATA = 1, 13
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def matches(path: str) -> bool:
    return path.endswith(".onnx")


def inspect(blob: Blob, context: Context) -> Inspection:
    import onnx
    from google.protobuf.message import DecodeError

    with blob.open() as f:
        stripped, weights = _strip_weights(f, blob.size)
    try:
        model = onnx.ModelProto.FromString(stripped)
    except DecodeError as e:
        raise InspectionError(f"{blob.path}: not a valid ONNX model ({e})") from e

    facts = FileFacts(format=FORMAT, structured=True, parameter_count=weights.parameters)
    props = facts.properties
    props.append(("mlbom:onnx:ir-version", str(model.ir_version)))
    if model.producer_name:
        producer = f"{model.producer_name} {model.producer_version}".strip()
        props.append(("mlbom:onnx:producer", producer[:200]))
    for opset in model.opset_import:
        props.append(("mlbom:onnx:opset", f"{opset.domain or 'ai.onnx'}:{opset.version}"))
    for entry in model.metadata_props[:64]:
        props.append((f"mlbom:onnx:metadata:{entry.key[:100]}", entry.value[:1024]))
    props.append(("mlbom:tensor-count", str(weights.count)))
    custom = sorted(_node_domains(model) - STANDARD_DOMAINS)
    props += [("mlbom:onnx:custom-domain", d[:200]) for d in custom[:50]]
    folder = PurePosixPath(blob.path).parent
    for location in sorted(weights.external)[:100]:
        path = PurePosixPath(location)
        if path.is_absolute() or ".." in path.parts:
            raise InspectionError(
                f"{blob.path}: external data {location!r} leaves the model folder"
            )
        props.append(("mlbom:onnx:external-data", location))
        if (folder / path).as_posix() not in context.paths:
            facts.error = f"external data file {location} is missing from the model"
    info = ModelInfo(version=str(model.model_version) if model.model_version else None)
    if model.doc_string:
        info.description = model.doc_string[:1000]
    return Inspection(facts, info)


class _Weights:
    def __init__(self) -> None:
        self.count = 0
        self.parameters = 0
        self.external: set[str] = set()


def _strip_weights(f: BinaryIO, size: int) -> tuple[bytes, _Weights]:
    """The model message with its graph's initializer payloads left out."""
    weights = _Weights()
    kept = bytearray()
    for field, wire, start, length in _fields(f, 0, size):
        if field == _MODEL_GRAPH and wire == _LEN:
            graph = bytearray()
            for g_field, g_wire, g_start, g_length in _fields(f, start, start + length):
                if g_field in (_GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER) and g_wire == _LEN:
                    _read_initializer(f, g_start, g_start + g_length, weights)
                else:
                    graph += _copy(f, g_field, g_wire, g_start, g_length)
                _check_kept(len(kept) + len(graph))
            kept += _key(field, _LEN) + _varint_bytes(len(graph)) + graph
        else:
            kept += _copy(f, field, wire, start, length)
        _check_kept(len(kept))
    return bytes(kept), weights


def _read_initializer(f: BinaryIO, start: int, end: int, weights: _Weights) -> None:
    weights.count += 1
    dims: list[int] = []
    for field, wire, at, length in _fields(f, start, end):
        if field == _TENSOR_DIMS and wire == _VARINT:
            dims.append(at)
        elif field == _TENSOR_DIMS and wire == _LEN:  # packed
            f.seek(at)
            while f.tell() < at + length:
                dims.append(_varint(f))
        elif field == _TENSOR_EXTERNAL_DATA and wire == _LEN and length < 4096:
            f.seek(at)
            entry = dict(_strings(f, at, at + length))
            if entry.get(_ENTRY_KEY) == "location" and _ENTRY_VALUE in entry:
                weights.external.add(entry[_ENTRY_VALUE])
    weights.parameters += math.prod(dims)


def _strings(f: BinaryIO, start: int, end: int) -> Iterator[tuple[int, str]]:
    for field, wire, at, length in _fields(f, start, end):
        if wire == _LEN:
            f.seek(at)
            yield field, f.read(length).decode("utf-8", "replace")


def _fields(f: BinaryIO, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field, wire type, payload offset or varint value, payload length) for each field in
    [start, end); the reader is moved past each payload whatever the caller did with it."""
    position = start
    while position < end:
        f.seek(position)
        key = _varint(f)
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            value = _varint(f)
            position = f.tell()
            yield field, wire, value, 0
            continue
        if wire == _LEN:
            length = _varint(f)
        elif wire in (_I64, _I32):
            length = 8 if wire == _I64 else 4
        else:
            raise InspectionError(f"unsupported protobuf wire type {wire}: not an ONNX model")
        at = f.tell()
        if at + length > end:
            raise InspectionError("truncated or corrupt ONNX file: a field runs past its end")
        position = at + length
        yield field, wire, at, length


def _copy(f: BinaryIO, field: int, wire: int, start: int, length: int) -> bytes:
    if wire == _VARINT:
        return _key(field, wire) + _varint_bytes(start)
    f.seek(start)
    payload = f.read(length)
    return _key(field, wire) + (_varint_bytes(length) if wire == _LEN else b"") + payload


def _check_kept(n: int) -> None:
    if n > MAX_KEPT:
        raise InspectionError(f"the ONNX graph without weights is over {MAX_KEPT >> 20} MiB")


def _varint(f: BinaryIO) -> int:
    result = 0
    for shift in range(0, 70, 7):
        byte = f.read(1)
        if not byte:
            raise InspectionError("truncated ONNX file")
        result |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return result
    raise InspectionError("corrupt ONNX file: a varint is longer than 10 bytes")


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint_bytes(field << 3 | wire)


def _node_domains(model: object) -> set[str]:
    """Operator domains used anywhere, subgraphs and functions included."""
    domains: set[str] = set()

    def visit(graph: object) -> None:
        for node in graph.node:  # type: ignore[attr-defined]
            domains.add(node.domain)
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    visit(attribute.g)
                for subgraph in attribute.graphs:
                    visit(subgraph)

    visit(model.graph)  # type: ignore[attr-defined]
    for function in model.functions:  # type: ignore[attr-defined]
        domains.add(function.domain)
        visit(function)
    return domains
