"""ONNX models, with the `onnx` package, without loading weights.

An ONNX file is one protobuf message whose bulk is the graph's initializers (the
weights). The file is walked at the wire-format level, initializer payloads are skipped
by seeking (their names, shapes and external-data locations are kept), and the rest,
a few kilobytes to megabytes, is parsed by `onnx` itself.

Parameters are the elements of the initializers and of the tensors `Constant` nodes hold
(`value`, `sparse_value`, `value_float(s)`, `value_int(s)`). Shapes are checked before
they are multiplied; the fields of the graph (`MAX_GRAPH_FIELDS`) and the nodes walked
(`MAX_NODES`) are capped, so time stays linear in the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import BinaryIO

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection
from mlbom.inspectors.safetensors import MAX_DIMS, elements, total
from mlbom.models import FileFacts, ModelInfo
from mlbom.sources import Blob

FORMAT = "onnx"
MAX_KEPT = 64 << 20  # the graph without its weights
# Real graphs have tens of thousands of nodes (and value_info entries); each costs
# Python time to walk, so a graph claiming more is refused rather than read for minutes.
MAX_GRAPH_FIELDS = 1 << 18
MAX_NODES = 1 << 18  # graph, subgraphs and functions together
STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"}
)
# protobuf field numbers (onnx.proto3)
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 5, 15
_TENSOR_DIMS, _TENSOR_EXTERNAL_DATA = 1, 13
_SPARSE_VALUES = 1
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

    walk = _walk(model)
    facts = FileFacts(
        format=FORMAT, structured=True, parameter_count=total((weights.parameters, walk.constants))
    )
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
    custom = sorted(walk.domains - STANDARD_DOMAINS)
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
    """The model message with its graph's initializer payloads left out; the fields kept
    are copied as they are, each run of them in one read."""
    weights = _Weights()
    kept = bytearray()
    for field, wire, start, _, (key_at, end) in _fields(f, 0, size):
        if field == _MODEL_GRAPH and wire == _LEN:
            graph = bytearray()
            run_start = run_end = start  # the bytes kept since the last initializer
            for count, (g_field, g_wire, g_start, _, (g_key_at, g_end)) in enumerate(
                _fields(f, start, end)
            ):
                if count >= MAX_GRAPH_FIELDS:
                    raise InspectionError(
                        f"the ONNX graph has over {MAX_GRAPH_FIELDS} entries, beyond any real model"
                    )
                if g_field in (_GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER) and g_wire == _LEN:
                    graph += _read_range(f, run_start, g_key_at)
                    _read_initializer(
                        f, g_start, g_end, weights, sparse=g_field == _GRAPH_SPARSE_INITIALIZER
                    )
                    run_start = g_end
                run_end = g_end
                _check_kept(len(kept) + len(graph) + run_end - run_start)
            graph += _read_range(f, run_start, run_end)
            kept += _key(field, _LEN) + _varint_bytes(len(graph)) + graph
        else:
            kept += _read_range(f, key_at, end)
        _check_kept(len(kept))
    return bytes(kept), weights


def _read_range(f: BinaryIO, start: int, end: int) -> bytes:
    if end <= start:
        return b""
    f.seek(start)
    return f.read(end - start)


def _read_initializer(
    f: BinaryIO, start: int, end: int, weights: _Weights, *, sparse: bool = False
) -> None:
    """Count one initializer (a sparse one by its stored values) and note its external data."""
    if sparse:
        for field, wire, at, length, _ in _fields(f, start, end):
            if field == _SPARSE_VALUES and wire == _LEN:
                _read_initializer(f, at, at + length, weights)
                return
        weights.count += 1
        return
    weights.count += 1
    dims: list[int] = []
    for field, wire, at, length, _ in _fields(f, start, end):
        if field == _TENSOR_DIMS and wire == _VARINT:
            dims.append(at)
        elif field == _TENSOR_DIMS and wire == _LEN:  # packed
            f.seek(at)
            while f.tell() < at + length and len(dims) <= MAX_DIMS:
                dims.append(_varint(f))
        elif field == _TENSOR_EXTERNAL_DATA and wire == _LEN and length < 4096:
            f.seek(at)
            entry = dict(_strings(f, at, at + length))
            if entry.get(_ENTRY_KEY) == "location" and _ENTRY_VALUE in entry:
                weights.external.add(entry[_ENTRY_VALUE])
        if len(dims) > MAX_DIMS:
            break  # refused by `elements`, before the rest is read
    weights.parameters = total((weights.parameters, elements(dims)))


def _strings(f: BinaryIO, start: int, end: int) -> Iterator[tuple[int, str]]:
    for field, wire, at, length, _ in _fields(f, start, end):
        if wire == _LEN:
            f.seek(at)
            yield field, f.read(length).decode("utf-8", "replace")


def _fields(
    f: BinaryIO, start: int, end: int
) -> Iterator[tuple[int, int, int, int, tuple[int, int]]]:
    """(field, wire type, payload offset or varint value, payload length, (offset of the
    field's key, offset past the field)) for each field in [start, end); each payload is
    skipped whatever the caller did with it."""
    position = start
    while position < end:
        f.seek(position)
        key_at = position
        key = _varint(f)
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            value = _varint(f)
            position = f.tell()
            if position > end:
                raise InspectionError("truncated or corrupt ONNX file: a field runs past its end")
            yield field, wire, value, 0, (key_at, position)
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
        yield field, wire, at, length, (key_at, position)


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


class _Walk:
    def __init__(self) -> None:
        self.domains: set[str] = set()
        self.constants = 0  # elements held by Constant nodes


def _walk(model: object) -> _Walk:
    """Operator domains used anywhere (subgraphs and functions included) and the elements
    `Constant` nodes hold; at most `MAX_NODES` nodes, without recursion."""
    found = _Walk()
    graphs: list[object] = [model.graph]  # type: ignore[attr-defined]
    for function in model.functions:  # type: ignore[attr-defined]
        found.domains.add(function.domain)
        graphs.append(function)
    budget = MAX_NODES
    while graphs:
        graph = graphs.pop()
        nodes = graph.node  # type: ignore[attr-defined]
        budget -= len(nodes)
        if budget < 0:
            raise InspectionError(f"the ONNX model has over {MAX_NODES} nodes, beyond any real one")
        for node in nodes:
            found.domains.add(node.domain)
            constant = node.op_type == "Constant" and node.domain in ("", "ai.onnx")
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    graphs.append(attribute.g)
                graphs.extend(attribute.graphs)
                if constant:
                    found.constants = total((found.constants, _constant(attribute)))
    return found


def _constant(attribute: object) -> int:
    """Elements held by one attribute of a `Constant` node."""
    name = attribute.name  # type: ignore[attr-defined]
    if name == "value":
        return elements(list(attribute.t.dims))  # type: ignore[attr-defined]
    if name == "sparse_value":
        return elements(list(attribute.sparse_tensor.values.dims))  # type: ignore[attr-defined]
    if name in ("value_float", "value_int"):
        return 1
    if name in ("value_floats", "value_ints"):
        return len(getattr(attribute, name[6:]))  # floats, ints
    return 0
