"""TensorFlow SavedModels (`saved_model.pb`, `saved_model.pbtxt`) and TFLite flatbuffers.

A SavedModel's graph names the ops it runs. Most are kernels compiled into TensorFlow; a
few run Python code (`PyFunc`, `EagerPyFunc`) or reach the host's files (`ReadFile`,
`WriteFile`, `MatchingFiles`, `ImmutableConst`, `PrintV2` to a file): those are findings.
The protobuf is walked at the wire-format level, field by field, with every length checked
against its enclosing message and the walk capped; payloads it does not need (constants,
weights) are skipped without being read. Keras layer configs that older TF-Keras
SavedModels keep in their object graph are scanned like any Keras config.

A TFLite file is a flatbuffer: its operator codes (builtin codes, custom op names) and its
tensors are read through checked offsets. A custom op needs a kernel registered by the
application, not code in the file: it is a property, not a finding.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections import OrderedDict
from collections.abc import Iterator
from typing import BinaryIO

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection, flag, keras, unscanned
from mlbom.models import FileFacts
from mlbom.sources import Blob

FORMAT = "tf-savedmodel"
EXECUTABLE = False  # what runs Python (PyFunc) is flagged op by op
MAY_RUN_CODE = True  # a SavedModel not read to its end is unscanned
MAX_READ = 1 << 30  # bytes read from one file, in pages
MAX_FIELDS = 20_000_000  # protobuf fields walked
MAX_NODES = 2_000_000  # graph nodes
MAX_OP_NAME = 256
MAX_OPS_LISTED = 500  # names in the mlbom:tensorflow:ops property
MAX_KERAS_METADATA = 64 << 20  # bytes of Keras JSON metadata read from the object graph
MAX_TEXT = 64 << 20  # bytes of a text SavedModel tokenized (larger: refused, unscanned)
MAX_TENSORS = 2_000_000  # TFLite tensors
MAX_OPERATOR_CODES = 100_000
MAX_SUBGRAPHS = 10_000
MAX_RANK = 32
MAX_DIMENSION = 1 << 48

#: op → what it does that a finding reports
RISKY_OPS = {
    "PyFunc": "runs Python code",
    "PyFuncStateless": "runs Python code",
    "EagerPyFunc": "runs Python code",
    "ReadFile": "reads host files",
    "WriteFile": "writes host files",
    "MatchingFiles": "lists host files",
    "ImmutableConst": "maps a host file into memory",
}
_TFL3 = b"TFL3"
_CUSTOM = 32  # BuiltinOperator.CUSTOM
# protobuf text format, token by token: names, quoted strings (adjacent ones concatenated,
# C escapes), comments; `op` followed by an optional colon and a string is an op name
_TEXT_TOKEN = re.compile(
    rb'[A-Za-z_][A-Za-z0-9_.]*|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|#[^\n]*|\s+|.',
    re.S,
)


_BY_NAME = ("saved_model.pb", "saved_model.pbtxt", "saved_model.cpb", "keras_metadata.pb")


def detect(head: bytes, path: str) -> bool:
    # A protobuf does not announce itself: these names are what TensorFlow and TF-Keras
    # load, whatever their first bytes (unknown leading fields are legal protobuf).
    return path.endswith(_BY_NAME) or is_tflite(head)


def is_tflite(head: bytes) -> bool:
    return head[4:8] == _TFL3


def inspect(blob: Blob, context: Context) -> Inspection:
    head = blob.read_at(0, 8)
    if blob.path.endswith("saved_model.pbtxt"):
        return _inspect_text(blob)
    if blob.path.endswith("keras_metadata.pb"):
        return _inspect_keras_metadata(blob)
    if blob.path.endswith("saved_model.cpb"):
        facts = FileFacts(format=FORMAT, structured=True)
        flag(facts, [unscanned("a chunked SavedModel (saved_model.cpb), which mlbom cannot read")])
        return Inspection(facts)
    if is_tflite(head) and not blob.path.endswith("saved_model.pb"):
        return _inspect_tflite(blob)
    return _inspect_saved_model(blob)


# -- bounded reading -------------------------------------------------------------------------


class Pages:
    """Random access to a file in cached pages; every read checked against its size."""

    PAGE = 1 << 16
    CACHED = 64

    def __init__(self, f: BinaryIO, size: int, budget: int = MAX_READ) -> None:
        self.f, self.size, self.budget = f, size, budget
        self.cache: OrderedDict[int, bytes] = OrderedDict()

    def get(self, pos: int, n: int, what: str = "data") -> bytes:
        if pos < 0 or n < 0 or pos + n > self.size:
            raise InspectionError(
                f"{what} at offset {pos} ({n} bytes) lies beyond the end of the file "
                f"({self.size} bytes)"
            )
        if n > self.PAGE:
            return self.read(pos, n, what)
        first, last = pos // self.PAGE, (pos + n - 1) // self.PAGE if n else pos // self.PAGE
        data = b"".join(self._page(p) for p in range(first, last + 1))
        start = pos - first * self.PAGE
        return data[start : start + n]

    def _page(self, number: int) -> bytes:
        page = self.cache.get(number)
        if page is None:
            start = number * self.PAGE
            page = self.read(start, min(self.PAGE, self.size - start))
            self.cache[number] = page
            if len(self.cache) > self.CACHED:
                self.cache.popitem(last=False)
        else:
            self.cache.move_to_end(number)
        return page

    def read(self, pos: int, n: int, what: str = "data") -> bytes:
        """`n` bytes at `pos`, read now (not cached)."""
        if pos < 0 or n < 0 or pos + n > self.size:
            raise InspectionError(f"{what} at offset {pos} ({n} bytes) lies beyond the file")
        self.budget -= n
        if self.budget < 0:
            raise InspectionError("more bytes to read than the inspection allows")
        self.f.seek(pos)
        data = self.f.read(n)
        if len(data) != n:
            raise InspectionError(f"the file is truncated at offset {pos}")
        return data


class ProtoReader:
    """Protobuf wire-format fields of the messages in a file, without a schema.

    `fields(start, end)` yields `(number, wire_type, value, offset)`: for a varint the value
    and where the next field starts; for a length-delimited field its length and where its
    payload starts. Fixed-width fields are skipped; groups are refused."""

    WINDOW = 1 << 20

    def __init__(self, pages: Pages, max_fields: int = MAX_FIELDS) -> None:
        self.pages = pages
        self.left = max_fields
        # a window of the file read ahead: fields are walked front to back
        self.buf, self.buf_start = b"", 0

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        n = min(10, end - pos)
        if n <= 0:
            raise InspectionError(f"truncated varint at offset {pos}")
        i = pos - self.buf_start
        if i < 0 or i + n > len(self.buf):
            self.buf = self.pages.read(pos, max(n, min(self.WINDOW, self.pages.size - pos)))
            self.buf_start, i = pos, 0
        buf = self.buf
        byte = buf[i]
        if byte < 0x80:  # most keys and lengths
            return byte, pos + 1
        value = shift = 0
        for k in range(n):
            byte = buf[i + k]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value, pos + k + 1
            shift += 7
        raise InspectionError(f"truncated or overlong varint at offset {pos}")

    def fields(self, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
        pos = start
        while pos < end:
            self.left -= 1
            if self.left < 0:
                raise InspectionError("more protobuf fields than the inspection allows")
            key, pos = self.varint(pos, end)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise InspectionError(f"protobuf field number 0 at offset {pos}")
            if wire == 0:
                value, pos = self.varint(pos, end)
                yield number, wire, value, pos
                continue
            if wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = self.varint(pos, end)
                if pos + length > end:
                    raise InspectionError(
                        f"protobuf field {number} at offset {pos} ({length} bytes) runs past "
                        "its message"
                    )
                yield number, wire, length, pos
                pos += length
            elif wire == 3:  # a group (proto2): skipped to its end, as parsers skip it
                pos = self.skip_group(number, pos, end)
            else:
                raise InspectionError(f"unsupported protobuf wire type {wire} at offset {pos}")
            if pos > end:
                raise InspectionError(f"protobuf field {number} runs past its message")

    def skip_group(self, number: int, pos: int, end: int) -> int:
        """The offset after the end-group tag matching `number`, groups nested in it too."""
        open_groups = [number]
        while pos < end:
            self.left -= 1
            if self.left < 0 or len(open_groups) > 64:
                raise InspectionError("protobuf groups nest deeper than the inspection allows")
            key, pos = self.varint(pos, end)
            inner, wire = key >> 3, key & 7
            if wire == 0:
                _, pos = self.varint(pos, end)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = self.varint(pos, end)
                pos += length
            elif wire == 3:
                open_groups.append(inner)
            elif wire == 4:
                if inner != open_groups.pop():
                    raise InspectionError(f"protobuf group {inner} ends out of order at {pos}")
                if not open_groups:
                    return pos
            else:
                raise InspectionError(f"unsupported protobuf wire type {wire} at offset {pos}")
        raise InspectionError(f"protobuf group {number} has no end")

    def string(self, offset: int, length: int, limit: int, what: str) -> str:
        if length > limit:
            raise InspectionError(f"{what} is {length} bytes (limit {limit})")
        i = offset - self.buf_start
        if i >= 0 and i + length <= len(self.buf):
            return self.buf[i : i + length].decode("utf-8", "replace")
        return self.pages.get(offset, length, what).decode("utf-8", "replace")


# -- SavedModel ------------------------------------------------------------------------------

# field numbers (tensorflow/core/protobuf/saved_model.proto, meta_graph.proto, graph.proto,
# function.proto, node_def.proto, attr_value.proto, saved_object_graph.proto)
_SAVED_MODEL_META_GRAPHS = 2
_META_GRAPH_DEF, _META_OBJECT_GRAPH = 2, 7
_GRAPH_NODE, _GRAPH_LIBRARY = 1, 2
_LIBRARY_FUNCTION, _FUNCTION_NODE_DEF = 1, 3
_NODE_OP, _NODE_ATTR = 2, 5
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_ATTR_S = 2
_OBJECT_GRAPH_NODES, _OBJECT_USER, _USER_METADATA = 1, 4, 3


def _inspect_saved_model(blob: Blob) -> Inspection:
    with blob.open() as f:
        proto = ProtoReader(Pages(f, blob.size))
        walk = _SavedModelWalk(proto)
        walk.saved_model(blob.size)
    facts = FileFacts(format=FORMAT, structured=True)
    _report_ops(facts, walk.ops, walk.findings)
    facts.properties.append(("mlbom:tensorflow:node-count", str(walk.nodes)))
    return Inspection(facts)


class _SavedModelWalk:
    def __init__(self, proto: ProtoReader) -> None:
        self.proto = proto
        self.ops: set[str] = set()
        self.findings: list[str] = []
        self.nodes = 0
        self.keras_bytes = 0

    def saved_model(self, size: int) -> None:
        fields = self.proto.fields
        for number, wire, length, at in fields(0, size):
            if number == _SAVED_MODEL_META_GRAPHS and wire == 2:
                for n2, w2, l2, a2 in fields(at, at + length):
                    if n2 == _META_GRAPH_DEF and w2 == 2:
                        self.graph(a2, a2 + l2)
                    elif n2 == _META_OBJECT_GRAPH and w2 == 2:
                        self.object_graph(a2, a2 + l2)

    def graph(self, start: int, end: int) -> None:
        fields = self.proto.fields
        for number, wire, length, at in fields(start, end):
            if wire != 2:
                continue
            if number == _GRAPH_NODE:
                self.node(at, at + length)
            elif number == _GRAPH_LIBRARY:
                for n2, w2, l2, a2 in fields(at, at + length):
                    if n2 != _LIBRARY_FUNCTION or w2 != 2:
                        continue
                    for n3, w3, l3, a3 in fields(a2, a2 + l2):
                        if n3 == _FUNCTION_NODE_DEF and w3 == 2:
                            self.node(a3, a3 + l3)

    def node(self, start: int, end: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InspectionError(f"more than {MAX_NODES} graph nodes")
        op = stream = None
        for number, wire, length, at in self.proto.fields(start, end):
            if wire != 2:
                continue
            if number == _NODE_OP:
                op = self.proto.string(at, length, MAX_OP_NAME, "an op name")
            elif number == _NODE_ATTR:
                stream = self.attr_output_stream(at, at + length) or stream
        if op is None:
            return
        self.ops.add(op)
        if op in RISKY_OPS:
            self.findings.append(f"tensorflow op {op} ({RISKY_OPS[op]})")
        elif op == "PrintV2" and stream is not None and stream.startswith("file://"):
            self.findings.append("tensorflow op PrintV2 (writes host files)")

    def attr_output_stream(self, start: int, end: int) -> str | None:
        key, value = None, None
        for number, wire, length, at in self.proto.fields(start, end):
            if wire != 2:
                continue
            if number == _ENTRY_KEY and length <= 64:
                key = self.proto.string(at, length, 64, "an attribute name")
            elif number == _ENTRY_VALUE:
                value = (at, length)
        if key != "output_stream" or value is None:
            return None
        for number, wire, length, at in self.proto.fields(value[0], value[0] + value[1]):
            if number == _ATTR_S and wire == 2:
                return self.proto.string(at, min(length, 4096), 4096, "output_stream")
        return None

    def object_graph(self, start: int, end: int) -> None:
        """TF-Keras SavedModels keep each layer's Keras config as JSON in its object."""
        fields = self.proto.fields
        for number, wire, length, at in fields(start, end):
            if number != _OBJECT_GRAPH_NODES or wire != 2:
                continue
            for n2, w2, l2, a2 in fields(at, at + length):
                if n2 != _OBJECT_USER or w2 != 2:
                    continue
                for n3, w3, l3, a3 in fields(a2, a2 + l2):
                    if n3 == _USER_METADATA and w3 == 2 and l3:
                        self.keras_metadata(a3, l3)

    def keras_metadata(self, at: int, length: int) -> None:
        self.keras_bytes += length
        if self.keras_bytes > MAX_KERAS_METADATA:
            self.findings.append(
                unscanned(f"more than {MAX_KERAS_METADATA} bytes of Keras metadata")
            )
            return
        text = self.proto.string(at, length, MAX_KERAS_METADATA, "Keras metadata")
        try:
            config = json.loads(text)
        except (ValueError, RecursionError):
            self.findings.append(unscanned("Keras metadata in the object graph is not JSON"))
            return
        self.findings += keras.scan_config(config)


def _text_ops(data: bytes) -> set[str]:
    """Every `op` field's value in protobuf text format, as protobuf's text parser reads it:
    `op: "X"`, `op : 'X'`, `op: "Ea" "gerPyFunc"`, escapes, comments between."""
    ops: set[str] = set()
    tokens = (
        t for t in (m.group() for m in _TEXT_TOKEN.finditer(data))
        if not t.isspace() and not t.startswith(b"#")
    )  # fmt: skip
    pending = False  # after an `op` name (and its optional colon)
    value: list[bytes] | None = None
    for token in tokens:
        if value is not None:
            if token[:1] in (b'"', b"'"):
                value.append(_unquote(token))
                continue
            ops.add(b"".join(value).decode("utf-8", "replace")[:MAX_OP_NAME])
            value = None
        if pending and token == b":":
            continue
        if pending and token[:1] in (b'"', b"'"):
            value, pending = [_unquote(token)], False
            continue
        pending = token == b"op"
    if value is not None:
        ops.add(b"".join(value).decode("utf-8", "replace")[:MAX_OP_NAME])
    return ops


def _unquote(token: bytes) -> bytes:
    try:
        return codecs.escape_decode(token[1:-1])[0]
    except ValueError:
        return token[1:-1]


def _inspect_keras_metadata(blob: Blob) -> Inspection:
    """TF-Keras's `keras_metadata.pb` (SavedMetadata): each saved object's Keras config as
    JSON (field 5 of each node, field 1), what its loader rebuilds layers from."""
    facts = FileFacts(format="keras-metadata", structured=True)
    with blob.open() as f:
        proto = ProtoReader(Pages(f, blob.size))
        walker = _SavedModelWalk(proto)
        for number, wire, length, at in proto.fields(0, blob.size):
            if number != 1 or wire != 2:
                continue
            for n2, w2, l2, a2 in proto.fields(at, at + length):
                if n2 == 5 and w2 == 2 and l2:
                    walker.keras_metadata(a2, l2)
    flag(facts, walker.findings)
    return Inspection(facts)


def _report_ops(facts: FileFacts, ops: set[str], findings: list[str]) -> None:
    listed = sorted(ops)
    value = ",".join(listed[:MAX_OPS_LISTED])
    if len(listed) > MAX_OPS_LISTED:
        value += f",…(+{len(listed) - MAX_OPS_LISTED})"
    facts.properties.append(("mlbom:tensorflow:ops", value))
    flag(facts, findings)


def _inspect_text(blob: Blob) -> Inspection:
    """A text-format SavedModel: its `op: "Name"` tokens, read in overlapping pieces."""
    if blob.size > MAX_TEXT:
        raise InspectionError(f"{blob.path}: {blob.size} bytes of text (limit {MAX_TEXT})")
    with blob.open() as f:
        ops = _text_ops(f.read(MAX_TEXT))
    findings = [f"tensorflow op {op} ({RISKY_OPS[op]})" for op in sorted(ops) if op in RISKY_OPS]
    facts = FileFacts(format=FORMAT, structured=True)
    _report_ops(facts, ops, findings)
    return Inspection(facts)


# -- TFLite ----------------------------------------------------------------------------------


class _Flat:
    """Checked access to a flatbuffer's tables, vectors and strings."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def uint(self, pos: int, n: int) -> int:
        return int.from_bytes(self.pages.get(pos, n, "flatbuffer field"), "little")

    def sint(self, pos: int, n: int) -> int:
        return int.from_bytes(self.pages.get(pos, n, "flatbuffer field"), "little", signed=True)

    def deref(self, pos: int) -> int:
        return pos + self.uint(pos, 4)

    def table(self, pos: int) -> tuple[int, int, int]:
        """(table position, vtable position, vtable length)."""
        vtable = pos - self.sint(pos, 4)
        length = self.uint(vtable, 2)
        if length < 4 or length % 2:
            raise InspectionError(f"flatbuffer vtable at offset {vtable} is malformed")
        self.pages.get(vtable, length, "flatbuffer vtable")
        return pos, vtable, length

    def field(self, table: tuple[int, int, int], index: int) -> int | None:
        pos, vtable, length = table
        slot = 4 + 2 * index
        if slot + 2 > length:
            return None
        offset = self.uint(vtable + slot, 2)
        return pos + offset if offset else None

    def scalar(
        self,
        table: tuple[int, int, int],
        index: int,
        n: int,
        default: int = 0,
        *,
        signed: bool = False,
    ) -> int:
        at = self.field(table, index)
        if at is None:
            return default
        return self.sint(at, n) if signed else self.uint(at, n)

    def vector(
        self, table: tuple[int, int, int], index: int, element: int, cap: int
    ) -> tuple[int, int]:
        """(start, count) of a vector field; (0, 0) when absent."""
        at = self.field(table, index)
        if at is None:
            return 0, 0
        start = self.deref(at)
        count = self.uint(start, 4)
        if count > cap:
            raise InspectionError(f"flatbuffer vector of {count} elements (limit {cap})")
        if start + 4 + count * element > self.pages.size:
            raise InspectionError(f"flatbuffer vector at offset {start} runs past the file")
        return start + 4, count

    def string(self, table: tuple[int, int, int], index: int, limit: int = 256) -> str | None:
        at = self.field(table, index)
        if at is None:
            return None
        start = self.deref(at)
        length = self.uint(start, 4)
        return self.pages.get(start + 4, min(length, limit), "flatbuffer string").decode(
            "utf-8", "replace"
        )


def _inspect_tflite(blob: Blob) -> Inspection:
    with blob.open() as f:
        flat = _Flat(Pages(f, blob.size))
        model = flat.table(flat.deref(0))
        version = flat.scalar(model, 0, 4)
        builtin: set[int] = set()
        custom: list[str] = []
        start, count = flat.vector(model, 1, 4, MAX_OPERATOR_CODES)
        for i in range(count):
            code = flat.table(flat.deref(start + 4 * i))
            deprecated = flat.scalar(code, 0, 1, signed=True)
            number = max(deprecated, flat.scalar(code, 3, 4, signed=True))
            if number == _CUSTOM:
                custom.append(flat.string(code, 1) or "?")
            else:
                builtin.add(number)
        parameters = _tflite_parameters(flat, model)
    facts = FileFacts(format="tflite", structured=True, parameter_count=parameters)
    facts.properties.append(("mlbom:tflite:version", str(version)))
    facts.properties.append(("mlbom:tflite:builtin-ops", ",".join(map(str, sorted(builtin)))))
    facts.properties += [("mlbom:tflite:custom-op", c) for c in sorted(set(custom))[:100]]
    return Inspection(facts)


def _tflite_parameters(flat: _Flat, model: tuple[int, int, int]) -> int:
    """Elements of the tensors backed by a buffer with data, each buffer counted once."""
    start, count = flat.vector(model, 4, 4, MAX_TENSORS)
    with_data: set[int] = set()
    for i in range(count):
        entry = flat.table(flat.deref(start + 4 * i))
        _, length = flat.vector(entry, 0, 1, 1 << 62)
        if length or flat.scalar(entry, 2, 8):  # inline data, or data after the flatbuffer
            with_data.add(i)
    counted: dict[int, int] = {}
    tensors = 0
    start, subgraphs = flat.vector(model, 2, 4, MAX_SUBGRAPHS)
    for s in range(subgraphs):
        subgraph = flat.table(flat.deref(start + 4 * s))
        tstart, tcount = flat.vector(subgraph, 0, 4, MAX_TENSORS)
        tensors += tcount
        if tensors > MAX_TENSORS:
            raise InspectionError(f"more than {MAX_TENSORS} tensors")
        for t in range(tcount):
            tensor = flat.table(flat.deref(tstart + 4 * t))
            buffer = flat.scalar(tensor, 2, 4)
            if buffer not in with_data or buffer in counted:
                continue
            sstart, rank = flat.vector(tensor, 0, 4, MAX_RANK)
            dims = [flat.sint(sstart + 4 * d, 4) for d in range(rank)]
            if any(d < 0 or d > MAX_DIMENSION for d in dims):
                raise InspectionError(f"tensor {t} has a dimension out of range: {dims}")
            counted[buffer] = math.prod(dims)
    return sum(counted.values())
