"""HDF5 files (`.h5`, `.hdf5`, legacy Keras `.h5`/`.keras`), read by a small bounded reader.

The reader is written by hand so that a hostile file is only ever parsed, never handed to
the HDF5 C library: it reads the superblock (versions 0 to 3, after a userblock too), object
headers (versions 1 and 2, with continuation blocks), groups in both layouts (symbol tables
with their v1 B-tree, local heap and symbol nodes; compact link messages) and the root
group's string attributes (fixed-length, and variable-length ones from the global heap).
Dataset payloads are never read: a dataset's shape comes from its dataspace message.

What it does not read is reported, not guessed: groups whose links live in a fractal heap
("dense" storage, newer files with many links), dense attributes, shared messages.

Every address and length is checked against the file size, the walk keeps visited sets
against cycles, and the counts of objects, messages, B-tree nodes, links and metadata bytes
read are capped (the constants below); malformed input raises `InspectionError`.

As an inspector, a file whose root holds a Keras `model_config` is a legacy Keras model:
its config is scanned for what runs code on load (`mlbom.inspectors.keras`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import BinaryIO

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection, flag, unscanned
from mlbom.models import FileFacts, ModelInfo
from mlbom.sources import Blob

FORMAT = "hdf5"
EXECUTABLE = False  # HDF5 holds data; a Keras config inside is scanned and flagged
MAY_RUN_CODE = True  # one not read to its end may hide a Keras config: unscanned
SIGNATURE = b"\x89HDF\r\n\x1a\n"
SIGNATURE_OFFSETS = (0, 512, 1024, 2048)  # where `detect` looks in the head

MAX_OBJECTS = 200_000  # object headers visited
MAX_MESSAGES = 2_000_000  # header messages in the whole file
MAX_CHUNKS_PER_OBJECT = 1024  # continuation blocks of one object header
MAX_CHUNK = 16 << 20  # bytes of one object header chunk
MAX_LINKS = 1_000_000  # links and symbol table entries followed
MAX_BTREE_NODES = 200_000
MAX_DEPTH = 64  # group nesting
MAX_HEAP = 64 << 20  # bytes of one local heap or global heap collection
MAX_METADATA = 512 << 20  # bytes of metadata read in all
MAX_ATTRIBUTE_ELEMENTS = 65_536  # strings in one array attribute
MAX_STRING = 64 << 20  # bytes of one string attribute
MAX_RANK = 32  # HDF5's own limit (H5S_MAX_RANK)
MAX_DIMENSION = 1 << 48
MAX_NAME = 1024  # characters of a name kept in paths and messages
MAX_UNREADABLE = 100

# object header message types
_DATASPACE, _LINK_INFO, _DATATYPE, _LINK = 0x1, 0x2, 0x3, 0x6
_ATTRIBUTE, _CONTINUATION, _SYMBOL_TABLE, _ATTRIBUTE_INFO = 0xC, 0x10, 0x11, 0x15
_SHARED = 0x02  # message flag: the message lives elsewhere (a committed type, the SOHM table)
# datatype classes
_STRING, _VLEN = 3, 9


@dataclass(frozen=True)
class Dataset:
    """One dataset: its path from the root, its shape and its number of elements."""

    path: str
    shape: tuple[int, ...]  # () for a scalar
    elements: int  # 0 for a null dataspace


@dataclass
class Hdf5File:
    """What the reader found in an HDF5 file."""

    superblock_version: int
    #: the root group's string attributes: a scalar as `str`, an array as a tuple of `str`
    attributes: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    #: every root attribute name seen, string or not
    attribute_names: list[str] = field(default_factory=list)
    #: False when some root attributes could not be read (dense or shared storage)
    attributes_complete: bool = True
    datasets: list[Dataset] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    #: what could not be read, and why
    unreadable: list[str] = field(default_factory=list)
    #: with `read(..., partial=True)`: why the walk stopped after the root group was read
    error: str | None = None

    @property
    def complete(self) -> bool:
        return not self.unreadable and self.error is None


def detect(head: bytes, path: str) -> bool:
    return any(head[o : o + 8] == SIGNATURE for o in SIGNATURE_OFFSETS)


def signature_offset(blob: Blob) -> int | None:
    """Where HDF5 finds this file's superblock: at 0, 512, 1024, 2048, … up to its end,
    after a user block of any size (a file that is also something else). A remote file is
    probed within its first MiB unless named like HDF5: every probe is a request."""
    limit = blob.size
    if blob.local_path is None and not blob.path.lower().endswith((".h5", ".hdf5", ".keras")):
        limit = min(limit, 1 << 20)
    offset = 0
    while offset + 8 <= limit:
        if blob.peek_at(offset, 8) == SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def read(f: BinaryIO, size: int, *, partial: bool = False) -> Hdf5File:
    """Read an HDF5 file's structure from a seekable binary file of `size` bytes.

    Malformed input raises `InspectionError`. With `partial`, a malformed object below the
    root group ends the walk instead, and its message is kept in `Hdf5File.error`, so that
    what the root says (a Keras config) is still reported."""
    return _Reader(f, size, partial=partial).run()


# -- the inspector ---------------------------------------------------------------------------


def inspect(blob: Blob, context: Context) -> Inspection:
    with blob.open() as f:
        h5 = read(f, blob.size, partial=True)
    facts, info = describe(h5)
    return Inspection(facts, info)


def describe(h5: Hdf5File, *, keras_weights: bool = False) -> tuple[FileFacts, ModelInfo]:
    """The facts of a read HDF5 file, a legacy Keras model's config scanned.

    `keras_weights`: the file is the weights of a Keras v3 archive (its config is the
    archive's `config.json`), so no `model_config` is expected in it."""
    from mlbom.inspectors import keras

    facts = FileFacts(format=FORMAT, structured=True)
    info = ModelInfo()
    attrs = h5.attributes
    props = facts.properties
    props.append(("mlbom:hdf5:superblock-version", str(h5.superblock_version)))
    findings: list[str] = []
    has_model_weights = "/model_weights" in h5.groups
    kerasish = has_model_weights or any(
        n in h5.attribute_names for n in ("keras_version", "backend", "model_config")
    )
    if "model_config" in h5.attribute_names:
        facts.format = "keras-h5"
        config = attrs.get("model_config")
        if not isinstance(config, str):
            findings.append(unscanned("the Keras model_config attribute is not a readable string"))
        else:
            try:
                parsed = json.loads(config)
            except (ValueError, RecursionError) as e:
                reason = "too deeply nested" if isinstance(e, RecursionError) else str(e)[:200]
                findings.append(
                    unscanned(f"the Keras model_config is not readable JSON ({reason})")
                )
            else:
                findings += keras.scan_config(parsed)
                if isinstance(parsed, dict) and isinstance(parsed.get("class_name"), str):
                    info.architectures.append(parsed["class_name"][:200])
        training = attrs.get("training_config")  # losses and metrics: custom objects too
        if isinstance(training, str):
            try:
                findings += keras.scan_config(json.loads(training))
            except (ValueError, RecursionError):
                findings.append(unscanned("the Keras training_config is not readable JSON"))
    elif kerasish and has_model_weights and not keras_weights:
        facts.format = "keras-h5"  # weights of a whole-model save without its config
    if not h5.attributes_complete and not keras_weights:
        # what was not read may be a (another) model_config: a Keras loader would run it
        why = "root attributes mlbom does not read (dense or shared storage, duplicates)"
        findings.append(unscanned(f"{why}; a Keras model_config there would not be checked"))
    if h5.error is not None:
        findings.append(unscanned(f"the HDF5 file could not be read to its end ({h5.error[:200]})"))
    for key, name in (("keras_version", "version"), ("backend", "backend")):
        value = attrs.get(key)
        if isinstance(value, str):
            props.append((f"mlbom:keras:{name}", value[:200]))

    counted = h5.datasets
    if facts.format == "keras-h5" and has_model_weights:
        counted = [d for d in counted if d.path.startswith("/model_weights/")]  # no optimizer
    elif keras_weights:
        counted = [d for d in counted if not d.path.startswith("/optimizer/")]
    props.append(("mlbom:tensor-count", str(len(counted))))
    if h5.complete:
        facts.parameter_count = sum(d.elements for d in counted)
    props += [("mlbom:hdf5:unreadable", u) for u in h5.unreadable[:20]]
    if h5.error is not None:
        facts.error = h5.error[:500]
    flag(facts, findings)
    return facts, info


# -- reading ---------------------------------------------------------------------------------


class _Cursor:
    """Little-endian fields of one in-memory structure, every read bounds-checked."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str, pos: int = 0) -> None:
        self.data, self.what, self.pos = data, what, pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise InspectionError(f"{self.what} is truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def skip(self, n: int) -> None:
        self.take(n)

    def remaining(self) -> int:
        return len(self.data) - self.pos


def _pad8(n: int) -> int:
    return (n + 7) & ~7


@dataclass
class _Message:
    type: int
    flags: int
    data: bytes


class _Reader:
    def __init__(self, f: BinaryIO, size: int, *, partial: bool = False) -> None:
        self.f, self.size, self.partial = f, size, partial
        self.read_total = 0
        self.messages = 0
        self.links = 0
        self.btree_nodes = 0
        self.global_heaps: dict[int, dict[int, bytes]] = {}

    # -- raw reads ---------------------------------------------------------------------------

    def raw(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise InspectionError(
                f"{what} at offset {offset} ({length} bytes) lies beyond the end of the file "
                f"({self.size} bytes)"
            )
        self.read_total += length
        if self.read_total > MAX_METADATA:
            raise InspectionError(f"more than {MAX_METADATA} bytes of HDF5 metadata to read")
        self.f.seek(offset)
        data = self.f.read(length)
        if len(data) != length:
            raise InspectionError(f"{what} at offset {offset} is truncated")
        return data

    def at(self, address: int, length: int, what: str) -> _Cursor:
        """A structure at a file address (relative to the superblock's base)."""
        return _Cursor(self.raw(self.base + address, length, what), what)

    def address(self, cur: _Cursor) -> int | None:
        value = cur.uint(self.o)
        return None if value == self.undefined else value

    def required(self, cur: _Cursor, what: str) -> int:
        value = self.address(cur)
        if value is None:
            raise InspectionError(f"{what} has an undefined address")
        return value

    # -- superblock --------------------------------------------------------------------------

    def run(self) -> Hdf5File:
        start = self.find_superblock()
        self.base = start
        head = _Cursor(self.raw(start, min(self.size - start, 256), "superblock"), "superblock")
        head.skip(8)
        version = head.uint(1)
        if version in (0, 1):
            head.skip(4)  # free-space, root group symbol table, reserved, shared header versions
            self.o, self.l = head.uint(1), head.uint(1)
            self.check_sizes()
            head.skip(1 + 2 + 2 + 4)  # reserved, leaf K, internal K, consistency flags
            if version == 1:
                head.skip(4)  # indexed storage K, reserved
            head.skip(2 * self.o)  # base, free space addresses
            end = head.uint(self.o)
            head.skip(self.o)  # driver info block address
            head.skip(self.o)  # root symbol table entry: link name offset
            root = self.required(head, "root group symbol table entry")
        elif version in (2, 3):
            self.o, self.l = head.uint(1), head.uint(1)
            self.check_sizes()
            head.skip(1 + 2 * self.o)  # flags, base, superblock extension addresses
            end = head.uint(self.o)
            root = self.required(head, "root group object header address")
        else:
            raise InspectionError(f"unsupported HDF5 superblock version {version}")
        if end > self.size:  # HDF5 writes the end-of-file address counting the userblock
            raise InspectionError(
                f"the file is truncated: {self.size} bytes, its superblock says {end}"
            )
        self.h5 = Hdf5File(superblock_version=version)
        self.walk(root)
        self.h5.datasets.sort(key=lambda d: d.path)
        self.h5.groups.sort()
        return self.h5

    def find_superblock(self) -> int:
        offset = 0
        while offset + 8 <= self.size:
            if self.raw(offset, 8, "signature") == SIGNATURE:
                return offset
            offset = 512 if offset == 0 else offset * 2
        raise InspectionError("no HDF5 signature at offset 0, 512, 1024, 2048, …")

    def check_sizes(self) -> None:
        if self.o not in (2, 4, 8) or self.l not in (2, 4, 8):
            raise InspectionError(f"unsupported sizes of offsets/lengths ({self.o}/{self.l})")
        self.undefined = (1 << (8 * self.o)) - 1

    def unreadable(self, reason: str) -> None:
        if len(self.h5.unreadable) < MAX_UNREADABLE and reason not in self.h5.unreadable:
            self.h5.unreadable.append(reason)

    # -- the walk ----------------------------------------------------------------------------

    def walk(self, root: int) -> None:
        visited: set[int] = set()
        stack: list[tuple[int, str, int]] = [(root, "/", 0)]
        while stack:
            address, path, depth = stack.pop()
            if address in visited:
                continue  # a second hard link to one object: counted once
            visited.add(address)
            if len(visited) > MAX_OBJECTS:
                raise InspectionError(f"more than {MAX_OBJECTS} objects")
            try:
                messages = self.object_header(address, path)
                children = self.interpret(messages, path, is_root=depth == 0)
                if children and depth + 1 > MAX_DEPTH:
                    raise InspectionError(f"groups nested deeper than {MAX_DEPTH} levels at {path}")
            except InspectionError as e:
                if depth == 0 or not self.partial:
                    raise
                self.h5.error = e.message
                return
            prefix = path.rstrip("/")
            for name, child in children:
                stack.append((child, f"{prefix}/{name}", depth + 1))

    def interpret(
        self, messages: list[_Message], path: str, *, is_root: bool
    ) -> list[tuple[str, int]]:
        children: list[tuple[str, int]] = []
        group = False
        for m in messages:
            shared = bool(m.flags & _SHARED)
            if m.type == _DATASPACE:
                if shared:
                    self.unreadable(f"{path}: shared dataspace message not read")
                    continue
                shape, elements = self.dataspace(_Cursor(m.data, f"dataspace of {path}"), path)
                self.h5.datasets.append(Dataset(path, shape, elements))
            elif m.type == _SYMBOL_TABLE:
                group = True
                children += self.symbol_table(_Cursor(m.data, f"symbol table of {path}"), path)
            elif m.type == _LINK_INFO:
                group = True
                self.link_info(_Cursor(m.data, f"link info of {path}"), path)
            elif m.type == _LINK:
                group = True
                link = self.link(_Cursor(m.data, f"link in {path}"))
                if link is not None:
                    children.append(link)
            elif is_root and m.type == _ATTRIBUTE:
                if shared:
                    self.h5.attributes_complete = False
                    self.unreadable(f"{path}: shared attribute message not read")
                    continue
                self.attribute(_Cursor(m.data, f"attribute of {path}"), path)
            elif is_root and m.type == _ATTRIBUTE_INFO:
                self.attribute_info(_Cursor(m.data, f"attribute info of {path}"), path)
        if group or is_root:
            self.h5.groups.append(path)
        return children

    # -- object headers ----------------------------------------------------------------------

    def object_header(self, address: int, path: str) -> list[_Message]:
        what = f"object header of {path}"
        first = self.at(address, 16, what)
        if first.data[:4] == b"OHDR":
            return self.header_v2(address, what)
        version = first.uint(1)
        if version != 1:
            raise InspectionError(f"{what} at {address}: unknown object header version {version}")
        first.skip(1 + 2 + 4)  # reserved, message count, reference count  # reference count
        size = first.uint(4)
        messages: list[_Message] = []
        pending = [(address + 16, size)]
        seen = {address}
        while pending:
            chunk_address, length = pending.pop()
            if length > MAX_CHUNK:
                raise InspectionError(f"{what}: a chunk of {length} bytes (limit {MAX_CHUNK})")
            cur = self.at(chunk_address, length, what)
            while cur.remaining() >= 8:
                kind, msize, mflags = cur.uint(2), cur.uint(2), cur.uint(1)
                cur.skip(3)
                data = cur.take(msize)
                self.message(messages, kind, mflags, data, what, pending, seen)
        return messages

    def header_v2(self, address: int, what: str) -> list[_Message]:
        cur = self.at(address, min(4 + 2 + 16 + 4 + 8, self.size - self.base - address), what)
        cur.skip(4)
        version, flags = cur.uint(1), cur.uint(1)
        if version != 2:
            raise InspectionError(f"{what} at {address}: unknown object header version {version}")
        if flags & 0x20:
            cur.skip(16)  # access, modification, change, birth times
        if flags & 0x10:
            cur.skip(4)  # attribute storage phase change values
        size = cur.uint(1 << (flags & 0x3))
        order = 2 if flags & 0x04 else 0
        messages: list[_Message] = []
        pending = [(address + cur.pos, size)]
        seen = {address}
        first = True
        while pending:
            chunk_address, length = pending.pop()
            if length > MAX_CHUNK:
                raise InspectionError(f"{what}: a chunk of {length} bytes (limit {MAX_CHUNK})")
            if first:
                chunk = self.at(chunk_address, length, what)
                first = False
            else:
                if length < 8:
                    raise InspectionError(f"{what}: continuation block of {length} bytes")
                block = self.at(chunk_address, length, what)
                if block.take(4) != b"OCHK":
                    raise InspectionError(f"{what}: continuation block without OCHK signature")
                chunk = _Cursor(block.data[4:-4], what)
            while chunk.remaining() >= 4 + order:
                kind, msize, mflags = chunk.uint(1), chunk.uint(2), chunk.uint(1)
                chunk.skip(order)
                data = chunk.take(msize)
                self.message(messages, kind, mflags, data, what, pending, seen)
        return messages

    def message(
        self,
        messages: list[_Message],
        kind: int,
        flags: int,
        data: bytes,
        what: str,
        pending: list[tuple[int, int]],
        seen: set[int],
    ) -> None:
        self.messages += 1
        if self.messages > MAX_MESSAGES:
            raise InspectionError(f"more than {MAX_MESSAGES} object header messages")
        if kind != _CONTINUATION:
            messages.append(_Message(kind, flags, data))
            return
        cur = _Cursor(data, f"continuation message of {what}")
        target = self.required(cur, f"continuation message of {what}")
        length = cur.uint(self.l)
        if target in seen:
            raise InspectionError(f"{what}: continuation to {target} loops back (a cycle)")
        seen.add(target)
        if len(seen) > MAX_CHUNKS_PER_OBJECT:
            raise InspectionError(f"{what}: more than {MAX_CHUNKS_PER_OBJECT} continuation blocks")
        pending.append((target, length))

    # -- messages ----------------------------------------------------------------------------

    def dataspace(self, cur: _Cursor, path: str) -> tuple[tuple[int, ...], int]:
        version, rank, flags = cur.uint(1), cur.uint(1), cur.uint(1)
        kind = 1
        if version == 1:
            cur.skip(5)
            kind = 1 if rank else 0
        elif version == 2:
            kind = cur.uint(1)
        else:
            raise InspectionError(f"{path}: unknown dataspace version {version}")
        if rank > MAX_RANK:
            raise InspectionError(f"{path}: {rank} dimensions, more than HDF5's {MAX_RANK}")
        dims = tuple(cur.uint(self.l) for _ in range(rank))
        for d in dims:
            if d > MAX_DIMENSION:
                raise InspectionError(f"{path}: dimension {d} is over the 2**48 limit")
        del flags  # maximum dimensions and permutations follow; not needed
        if kind == 2:  # null dataspace: no elements
            return (), 0
        if kind == 0:
            return (), 1
        return dims, math.prod(dims)

    def datatype(self, cur: _Cursor, what: str) -> tuple[int, int, bool]:
        """(class, size in the file of one element, is it a string)."""
        first = cur.uint(1)
        klass = first & 0x0F
        bits = cur.take(3)
        size = cur.uint(4)
        if klass == _STRING:
            return klass, size, True
        if klass == _VLEN:
            return klass, 4 + self.o + 4, (bits[0] & 0x0F) == 1
        return klass, size, False

    def attribute(self, cur: _Cursor, path: str) -> None:
        version = cur.uint(1)
        if version not in (1, 2, 3):
            raise InspectionError(f"{path}: unknown attribute message version {version}")
        flags = cur.uint(1)
        name_size, type_size, space_size = cur.uint(2), cur.uint(2), cur.uint(2)
        if version == 3:
            cur.skip(1)  # name character set
        pad = _pad8 if version == 1 else (lambda n: n)
        raw_name = cur.take(pad(name_size))[:name_size]
        name = raw_name.split(b"\0", 1)[0].decode("utf-8", "replace")[:MAX_NAME]
        if name in self.h5.attribute_names:
            # HDF5 answers with the first; another reader may take another
            self.h5.attributes_complete = False
            self.unreadable(f"{path}: two attributes named {name!r}")
            return
        self.h5.attribute_names.append(name)
        if version > 1 and flags & 0x03:
            self.h5.attributes_complete = False
            self.unreadable(f"{path}: attribute {name!r} has a shared datatype or dataspace")
            return
        type_cur = _Cursor(cur.take(pad(type_size)), f"datatype of attribute {name!r}")
        space_cur = _Cursor(cur.take(pad(space_size)), f"dataspace of attribute {name!r}")
        klass, element, is_string = self.datatype(type_cur, f"attribute {name!r}")
        shape, count = self.dataspace(space_cur, f"attribute {name!r} of {path}")
        if not is_string:
            return
        if count > MAX_ATTRIBUTE_ELEMENTS:
            self.h5.attributes_complete = False
            self.unreadable(
                f"{path}: attribute {name!r} holds more than {MAX_ATTRIBUTE_ELEMENTS} strings"
            )
            return
        if element <= 0 and count:
            raise InspectionError(f"attribute {name!r}: string elements of size 0")
        if count * element > cur.remaining():
            raise InspectionError(f"attribute {name!r} of {path}: its data is truncated")
        values = []
        for _ in range(count):
            one = _Cursor(cur.take(element), f"attribute {name!r}")
            values.append(self.vlen_string(one, name) if klass == _VLEN else _fixed(one.data))
        self.h5.attributes[name] = values[0] if shape == () and count == 1 else tuple(values)

    def vlen_string(self, cur: _Cursor, name: str) -> str:
        length = cur.uint(4)
        collection = self.address(cur)
        index = cur.uint(4)
        if collection is None or length == 0:
            return ""
        if length > MAX_STRING:
            raise InspectionError(f"attribute {name!r}: a string of {length} bytes")
        data = self.global_heap(collection, name).get(index)
        if data is None:
            raise InspectionError(f"attribute {name!r}: global heap object {index} is missing")
        if length > len(data):
            raise InspectionError(f"attribute {name!r}: string longer than its heap object")
        return data[:length].decode("utf-8", "replace")

    def global_heap(self, address: int, name: str) -> dict[int, bytes]:
        objects = self.global_heaps.get(address)
        if objects is not None:
            return objects
        what = f"global heap collection of attribute {name!r}"
        head = self.at(address, 8 + self.l, what)
        if head.take(4) != b"GCOL":
            raise InspectionError(f"{what} at {address} has no GCOL signature")
        head.skip(4)
        size = head.uint(self.l)
        if size > MAX_HEAP:
            raise InspectionError(f"{what} is {size} bytes (limit {MAX_HEAP})")
        cur = self.at(address, size, what)
        cur.pos = 8 + self.l
        objects = {}
        while cur.remaining() >= 8 + self.l:
            index = cur.uint(2)
            cur.skip(6)  # reference count, reserved
            length = cur.uint(self.l)
            if index == 0:
                break  # free space: the rest of the collection
            if length > cur.remaining():
                raise InspectionError(f"{what}: object {index} runs past the collection")
            objects[index] = cur.data[cur.pos : cur.pos + length]
            cur.pos = min(len(cur.data), cur.pos + _pad8(length))
        self.global_heaps[address] = objects
        return objects

    def attribute_info(self, cur: _Cursor, path: str) -> None:
        cur.skip(1)  # version
        flags = cur.uint(1)
        if flags & 0x01:
            cur.skip(2)
        heap = self.address(cur)
        if heap is not None:
            self.h5.attributes_complete = False
            self.unreadable(f"{path}: attributes stored densely (fractal heap), not read")

    def link_info(self, cur: _Cursor, path: str) -> None:
        cur.skip(1)  # version
        flags = cur.uint(1)
        if flags & 0x01:
            cur.skip(8)
        heap = self.address(cur)
        if heap is not None:
            self.unreadable(f"{path}: links stored densely (fractal heap), not read")

    def link(self, cur: _Cursor) -> tuple[str, int] | None:
        version = cur.uint(1)
        if version != 1:
            raise InspectionError(f"{cur.what}: unknown link message version {version}")
        flags = cur.uint(1)
        kind = cur.uint(1) if flags & 0x08 else 0
        if flags & 0x04:
            cur.skip(8)  # creation order
        if flags & 0x10:
            cur.skip(1)  # character set
        length = cur.uint(1 << (flags & 0x03))
        name = cur.take(length).decode("utf-8", "replace")[:MAX_NAME]
        self.count_link()
        if kind != 0:
            return None  # soft and external links point at paths, not objects here
        return _name(name), self.required(cur, f"link {name!r}")

    def count_link(self) -> None:
        self.links += 1
        if self.links > MAX_LINKS:
            raise InspectionError(f"more than {MAX_LINKS} links")

    def symbol_table(self, cur: _Cursor, path: str) -> list[tuple[str, int]]:
        btree = self.required(cur, f"symbol table of {path}")
        heap_address = self.required(cur, f"symbol table of {path}")
        heap = self.local_heap(heap_address, path)
        children: list[tuple[str, int]] = []
        entry_size = 2 * self.o + 24
        seen: set[int] = set()
        stack: list[tuple[int, int | None]] = [(btree, None)]
        while stack:
            node, expected_level = stack.pop()
            if node in seen:
                raise InspectionError(
                    f"symbol table of {path}: B-tree node {node} reached twice (a cycle)"
                )
            seen.add(node)
            self.btree_nodes += 1
            if self.btree_nodes > MAX_BTREE_NODES:
                raise InspectionError(f"more than {MAX_BTREE_NODES} B-tree nodes")
            what = f"B-tree node of {path}"
            head = self.at(node, 8 + 2 * self.o, what)
            if head.take(4) != b"TREE":
                raise InspectionError(f"{what} at {node} has no TREE signature")
            node_type, level, used = head.uint(1), head.uint(1), head.uint(2)
            if node_type != 0:
                raise InspectionError(f"{what} at {node} is not a group node (type {node_type})")
            if expected_level is not None and level != expected_level:
                raise InspectionError(f"{what} at {node}: level {level}, expected {expected_level}")
            body = self.at(node + 8 + 2 * self.o, used * (self.l + self.o) + self.l, what)
            for _ in range(used):
                body.skip(self.l)  # key: heap offset of a name
                child = self.required(body, what)
                if level > 0:
                    stack.append((child, level - 1))
                else:
                    children += self.symbol_node(child, heap, entry_size, path, seen)
        return children

    def symbol_node(
        self, address: int, heap: bytes, entry_size: int, path: str, seen: set[int]
    ) -> list[tuple[str, int]]:
        what = f"symbol node of {path}"
        if address in seen:
            raise InspectionError(f"{what} at {address} reached twice (a cycle)")
        seen.add(address)
        head = self.at(address, 8, what)
        if head.take(4) != b"SNOD":
            raise InspectionError(f"{what} at {address} has no SNOD signature")
        head.skip(2)
        count = head.uint(2)
        cur = self.at(address + 8, count * entry_size, what)
        entries = []
        for _ in range(count):
            name_offset = cur.uint(self.o)
            target = self.required(cur, what)
            cur.skip(24)  # cache type, reserved, scratch pad
            self.count_link()
            entries.append((_heap_name(heap, name_offset, path), target))
        return entries

    def local_heap(self, address: int, path: str) -> bytes:
        what = f"local heap of {path}"
        cur = self.at(address, 8 + 2 * self.l + self.o, what)
        if cur.take(4) != b"HEAP":
            raise InspectionError(f"{what} at {address} has no HEAP signature")
        cur.skip(4)
        size = cur.uint(self.l)
        cur.skip(self.l)  # free list
        data = self.required(cur, what)
        if size > MAX_HEAP:
            raise InspectionError(f"{what} is {size} bytes (limit {MAX_HEAP})")
        return self.at(data, size, what).data


def _heap_name(heap: bytes, offset: int, path: str) -> str:
    if offset >= len(heap):
        raise InspectionError(f"a name in {path} lies outside its local heap")
    end = heap.find(b"\0", offset, offset + 65_536)
    if end < 0:
        raise InspectionError(f"a name in {path} is not terminated in its local heap")
    return _name(heap[offset:end].decode("utf-8", "replace")[:MAX_NAME])


def _name(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise InspectionError(f"invalid HDF5 link name {name[:100]!r}")
    return name


def _fixed(data: bytes) -> str:
    return data.split(b"\0", 1)[0].rstrip(b" ").decode("utf-8", "replace")
