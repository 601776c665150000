"""A bounded reader of 7z archives, written with the standard library only, so that pickles
packed into a `.7z` are scanned like any other file.

The archive is hostile: every count, size and offset is checked against the file's size and
the header's length before it is used, the members' declared sizes are charged against a
budget before a byte of them is decompressed, decompressors never produce more than the
member being read, and CRCs are verified wherever the archive records them.

Decoded: Copy, LZMA, LZMA2, Deflate, BZip2, and the branch converters (BCJ x86, PowerPC,
IA-64, ARM, ARM Thumb, SPARC) and Delta in front of LZMA or LZMA2, which are the filter chains
`lzma` decodes in one raw decompressor. Refused with `InspectionError`: encryption (AES),
PPMd, BCJ2, Deflate64, Zstandard and any other coder, and folders of several packed streams.
The layout follows 7-Zip's `7zFormat.txt`.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from mlbom.errors import InspectionError, shown

MAGIC = b"7z\xbc\xaf\x27\x1c"
SIGNATURE_HEADER = 32
#: the file list, decoded: names, sizes and CRCs of every member (7-Zip's own limit is larger,
#: but 64 MiB is over 300 bytes for each of `max_members` files)
MAX_HEADER = 64 << 20
#: an encoded header may encode its header again; 7-Zip writes one level
MAX_HEADER_LEVELS = 4
MAX_CODERS = 32  # in one folder; 7-Zip's own limit is 64
MAX_CODER_STREAMS = 32
_CHUNK = 1 << 20  # packed bytes read at once

# property ids (7zFormat.txt)
_END = 0x00
_HEADER = 0x01
_ARCHIVE_PROPERTIES = 0x02
_ADDITIONAL_STREAMS = 0x03
_MAIN_STREAMS = 0x04
_FILES = 0x05
_PACK_INFO = 0x06
_UNPACK_INFO = 0x07
_SUBSTREAMS = 0x08
_SIZE = 0x09
_CRC = 0x0A
_FOLDER = 0x0B
_CODERS_UNPACK_SIZE = 0x0C
_NUM_UNPACK_STREAMS = 0x0D
_EMPTY_STREAM = 0x0E
_EMPTY_FILE = 0x0F
_ANTI = 0x10
_NAMES = 0x11
_ATTRIBUTES = 0x15
_ENCODED_HEADER = 0x17

# coder (method) ids
_COPY = b"\x00"
_DELTA = b"\x03"
_LZMA = b"\x03\x01\x01"
_LZMA2 = b"\x21"
_DEFLATE = b"\x04\x01\x08"
_BZIP2 = b"\x04\x02\x02"
_AES = b"\x06\xf1\x07\x01"
_BRANCH = {
    b"\x03\x03\x01\x03": lzma.FILTER_X86,
    b"\x03\x03\x02\x05": lzma.FILTER_POWERPC,
    b"\x03\x03\x04\x01": lzma.FILTER_IA64,
    b"\x03\x03\x05\x01": lzma.FILTER_ARM,
    b"\x03\x03\x07\x01": lzma.FILTER_ARMTHUMB,
    b"\x03\x03\x08\x05": lzma.FILTER_SPARC,
}
_NAMES_OF = {
    _COPY: "Copy",
    _DELTA: "Delta",
    _LZMA: "LZMA",
    _LZMA2: "LZMA2",
    _DEFLATE: "Deflate",
    _BZIP2: "BZip2",
    _AES: "AES-256",
    b"\x03\x03\x01\x03": "BCJ x86",
    b"\x03\x03\x02\x05": "BCJ PowerPC",
    b"\x03\x03\x04\x01": "BCJ IA-64",
    b"\x03\x03\x05\x01": "BCJ ARM",
    b"\x03\x03\x07\x01": "BCJ ARM Thumb",
    b"\x03\x03\x08\x05": "BCJ SPARC",
    b"\x03\x03\x01\x1b": "BCJ2",
    b"\x0a": "ARM64",
    b"\x0b": "RISC-V",
    b"\x03\x04\x01": "PPMd",
    b"\x04\x01\x09": "Deflate64",
    b"\x04\xf7\x11\x01": "Zstandard",
    b"\x04\xf7\x11\x02": "Brotli",
    b"\x04\xf7\x11\x04": "LZ4",
    b"\x04\xf7\x11\x05": "LZS",
    b"\x04\xf7\x11\x06": "Lizard",
}

_ENCRYPTED = "7z archive is encrypted: its members cannot be scanned"


def _fail(message: str) -> InspectionError:
    return InspectionError(f"7z archive: {message}")


def _mib(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"


def _show(name: str) -> str:
    """A member's name for a message: bounded, control characters escaped, quoted."""
    return f"'{shown(name, 200)}'"


def _method(method: bytes) -> str:
    return _NAMES_OF.get(method) or f"unknown coder {method.hex() or '(empty id)'}"


# -- the header ---------------------------------------------------------------------------


class _Reader:
    """A cursor over header bytes; every read is checked against their end."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise _fail("its header is truncated")
        start = self.pos
        self.pos += n
        return self.data[start : self.pos]

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise _fail("its header is truncated")
        self.pos += 1
        return self.data[self.pos - 1]

    def number(self) -> int:
        """7z's variable-length UINT64: the first byte's high bits count the bytes after it."""
        first = self.byte()
        mask = 0x80
        for extra in range(8):
            if not first & mask:
                low = int.from_bytes(self.take(extra), "little")
                return low | ((first & (mask - 1)) << (8 * extra))
            mask >>= 1
        return int.from_bytes(self.take(8), "little")

    def count(self, what: str, *, each: int = 1) -> int:
        """A number of items that take at least `each` bytes of the header each."""
        n = self.number()
        if n * each > self.left():
            raise _fail(f"its header declares {n} {what}, more than it has room for")
        return n

    def uint32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def expect(self, nid: int, what: str) -> None:
        if self.number() != nid:
            raise _fail(f"its header is malformed (expected {what})")

    def bits(self, n: int) -> list[bool]:
        data = self.take((n + 7) >> 3)
        return [bool(data[i >> 3] & (0x80 >> (i & 7))) for i in range(n)]

    def defined(self, n: int) -> list[bool]:
        """The "all defined" byte, then a bit vector when not all are."""
        return [True] * n if self.byte() else self.bits(n)

    def digests(self, n: int) -> list[int | None]:
        defined = self.defined(n)
        return [self.uint32() if d else None for d in defined]


@dataclass
class _Coder:
    method: bytes
    props: bytes


@dataclass
class _Folder:
    coders: list[_Coder]  # from the folder's output to its packed stream
    sizes: list[int]  # the output size of each coder, in the order of `coders`
    packed: int  # the index of its packed stream
    crc: int | None = None
    streams: int = 1  # members stored in it

    @property
    def size(self) -> int:
        return self.sizes[0]


@dataclass
class _Streams:
    pack_offsets: list[tuple[int, int]] = field(default_factory=list)  # (offset, size)
    folders: list[_Folder] = field(default_factory=list)
    # each stored member: (folder index, size, CRC)
    members: list[tuple[int, int, int | None]] = field(default_factory=list)


@dataclass
class _Entry:
    name: str
    stream: bool  # its content is the next stored member
    empty_file: bool  # an empty regular file (else an empty-stream item is a directory)
    anti: bool


def _folder(
    r: _Reader,
) -> tuple[list[_Coder], list[tuple[int, int]], list[tuple[int, int]], list[int]]:
    """One folder's coders as 7z stores them: the coders with their stream counts, the bind
    pairs (in-stream, out-stream) and the in-streams read from packed streams."""
    n = r.number()
    if not 0 < n <= MAX_CODERS:
        raise _fail(f"a folder has {n} coders")
    coders: list[_Coder] = []
    ins: list[int] = []
    outs: list[int] = []
    for _ in range(n):
        flags = r.byte()
        if flags & 0xC0:
            raise _fail("a coder uses alternative methods, which no 7z writer does")
        method = r.take(flags & 0x0F)
        num_in = num_out = 1
        if flags & 0x10:
            num_in, num_out = r.number(), r.number()
            if not (0 < num_in <= MAX_CODER_STREAMS and 0 < num_out <= MAX_CODER_STREAMS):
                raise _fail(f"the {_method(method)} coder has {num_in} inputs, {num_out} outputs")
        props = r.take(r.number()) if flags & 0x20 else b""
        coders.append(_Coder(method, props))
        ins.append(num_in)
        outs.append(num_out)
    total_in, total_out = sum(ins), sum(outs)
    pairs = []
    for _ in range(total_out - 1):
        in_index, out_index = r.number(), r.number()
        if in_index >= total_in or out_index >= total_out:
            raise _fail("a folder binds streams it does not have")
        pairs.append((in_index, out_index))
    num_packed = total_in - len(pairs)
    if num_packed < 1:
        raise _fail("a folder has no packed stream")
    if num_packed == 1:
        bound = {i for i, _ in pairs}
        packed = [i for i in range(total_in) if i not in bound][:1]
        if not packed:
            raise _fail("a folder binds every input stream")
    else:
        packed = [r.number() for _ in range(num_packed)]
    return coders, list(zip(ins, outs, strict=True)), pairs, packed


def _chain(
    coders: list[_Coder],
    shape: list[tuple[int, int]],
    pairs: list[tuple[int, int]],
    packed: list[int],
) -> list[int]:
    """The coders of a folder as one chain, from its output to its packed stream; refused
    when the folder is not a chain of one-input, one-output coders."""
    if any(c.method == _AES for c in coders):
        raise InspectionError(_ENCRYPTED)
    for coder, streams in zip(coders, shape, strict=True):
        if streams != (1, 1):
            raise _fail(
                f"it uses the {_method(coder.method)} coder, which mlbom cannot decode: "
                "its members cannot be scanned"
            )
    if len(packed) != 1:
        raise _fail("a folder has several packed streams, which mlbom cannot decode")
    # With one-in, one-out coders, coder i reads in-stream i and writes out-stream i.
    feeds = {}
    for in_index, out_index in pairs:
        if in_index in feeds or out_index == in_index:
            raise _fail("a folder binds its streams inconsistently")
        feeds[in_index] = out_index
    bound_outs = set(feeds.values())
    if len(bound_outs) != len(pairs):
        raise _fail("a folder binds its streams inconsistently")
    heads = [i for i in range(len(coders)) if i not in bound_outs]
    if len(heads) != 1:
        raise _fail("a folder binds its streams inconsistently")
    chain = [heads[0]]
    while chain[-1] in feeds:
        chain.append(feeds[chain[-1]])
        if len(chain) > len(coders):
            raise _fail("a folder binds its streams in a loop")
    if len(chain) != len(coders) or chain[-1] != packed[0]:
        raise _fail("a folder binds its streams inconsistently")
    return chain


def _unpack_info(r: _Reader, packs: int) -> list[_Folder]:
    r.expect(_FOLDER, "the folders")
    n = r.count("folders", each=2)
    if r.byte():
        raise _fail("its folders are stored outside the header, which mlbom does not read")
    raw = [_folder(r) for _ in range(n)]
    r.expect(_CODERS_UNPACK_SIZE, "the folders' sizes")
    folders: list[_Folder] = []
    for index, (coders, shape, pairs, packed) in enumerate(raw):
        sizes = [r.number() for _ in range(sum(outs for _, outs in shape))]
        chain = _chain(coders, shape, pairs, packed)  # one-in, one-out: out-stream i is coder i
        if index >= packs:
            raise _fail("a folder has no packed stream")
        folders.append(_Folder([coders[i] for i in chain], [sizes[i] for i in chain], index))
    nid = r.number()
    if nid == _CRC:
        for folder, crc in zip(folders, r.digests(n), strict=True):
            folder.crc = crc
        nid = r.number()
    if nid != _END:
        raise _fail("its header is malformed (the folders do not end)")
    return folders


def _streams_info(r: _Reader, size: int, max_members: int) -> _Streams:
    streams = _Streams()
    pack_sizes: list[int] = []
    pack_pos = 0
    nid = r.number()
    if nid == _PACK_INFO:
        pack_pos = r.number()
        n = r.count("packed streams")
        nid = r.number()
        if nid == _SIZE:
            pack_sizes = [r.number() for _ in range(n)]
            nid = r.number()
        elif n:
            raise _fail("its packed streams have no sizes")
        if nid == _CRC:
            r.digests(n)  # a member's own CRC is checked instead
            nid = r.number()
        if nid != _END:
            raise _fail("its header is malformed (the packed streams do not end)")
        offset = SIGNATURE_HEADER + pack_pos
        for pack in pack_sizes:
            if offset > size or pack > size - offset:
                raise _fail("a packed stream lies beyond the end of the file")
            streams.pack_offsets.append((offset, pack))
            offset += pack
        nid = r.number()
    if nid == _UNPACK_INFO:
        streams.folders = _unpack_info(r, len(pack_sizes))
        nid = r.number()
    folders = streams.folders
    if nid == _SUBSTREAMS:
        nid = r.number()
        if nid == _NUM_UNPACK_STREAMS:
            total = 0
            for folder in folders:
                folder.streams = r.number()
                total += folder.streams
                if total > max_members:
                    raise _fail(f"it stores more than {max_members} members")
            nid = r.number()
        has_sizes = nid == _SIZE
        for index, folder in enumerate(folders):
            if folder.streams == 0:
                continue
            if folder.streams > 1 and not has_sizes:
                raise _fail("a folder of several members has no member sizes")
            used = 0
            for _ in range(folder.streams - 1):
                member = r.number()
                used += member
                streams.members.append((index, member, None))
            if used > folder.size:
                raise _fail("its members are larger than the folder that holds them")
            streams.members.append((index, folder.size - used, None))
        if has_sizes:
            nid = r.number()
        if nid == _CRC:
            unknown = sum(f.streams for f in folders if not (f.streams == 1 and f.crc is not None))
            digests = iter(r.digests(unknown))
            nid = r.number()
        else:
            digests = iter(())
        members, streams.members = streams.members, []
        for index, member, _ in members:
            folder = folders[index]
            if folder.streams == 1 and folder.crc is not None:
                streams.members.append((index, member, folder.crc))
            else:
                streams.members.append((index, member, next(digests, None)))
        if nid != _END:
            raise _fail("its header is malformed (the member sizes do not end)")
        nid = r.number()
    else:
        if len(folders) > max_members:
            raise _fail(f"it stores more than {max_members} members")
        streams.members = [(i, f.size, f.crc) for i, f in enumerate(folders)]
    if nid != _END:
        raise _fail("its header is malformed (the streams do not end)")
    return streams


def _files_info(r: _Reader, max_members: int) -> list[_Entry]:
    n = r.number()
    if n > max_members:
        raise _fail(f"it lists {n} members, more than the {max_members} mlbom reads")
    empty_stream = [False] * n
    empty_file: list[bool] = []
    anti: list[bool] = []
    names: list[str] | None = None
    while True:
        kind = r.number()
        if kind == _END:
            break
        length = r.number()
        if length > r.left():
            raise _fail("a property of its file list runs past the header")
        body = _Reader(r.take(length))
        if kind == _EMPTY_STREAM:
            empty_stream = body.bits(n)
        elif kind == _EMPTY_FILE:
            empty_file = body.bits(sum(empty_stream))
        elif kind == _ANTI:
            anti = body.bits(sum(empty_stream))
        elif kind == _NAMES:
            if body.byte():
                raise _fail("its names are stored outside the header, which mlbom does not read")
            raw = body.take(body.left())
            if len(raw) % 2:
                raise _fail("its names are not UTF-16")
            names = raw.decode("utf-16-le", errors="replace").split("\x00")
            if names.pop() != "" or len(names) != n:
                raise _fail(f"it has {len(names)} names for {n} members")
        # times, attributes, start positions, padding: not needed, skipped by their size
    entries = []
    empty_index = 0
    for i in range(n):
        name = names[i] if names is not None else ""
        if empty_stream[i]:
            is_file = empty_index < len(empty_file) and empty_file[empty_index]
            is_anti = empty_index < len(anti) and anti[empty_index]
            empty_index += 1
            entries.append(_Entry(name, False, is_file, is_anti))
        else:
            entries.append(_Entry(name, True, False, False))
    return entries


def _header(r: _Reader, size: int, max_members: int) -> tuple[_Streams, list[_Entry]]:
    nid = r.number()
    if nid == _ARCHIVE_PROPERTIES:
        while r.number() != _END:
            r.take(r.number())
        nid = r.number()
    if nid == _ADDITIONAL_STREAMS:
        _streams_info(r, size, max_members)  # nothing mlbom reads refers to them
        nid = r.number()
    streams = _Streams()
    if nid == _MAIN_STREAMS:
        streams = _streams_info(r, size, max_members)
        nid = r.number()
    entries: list[_Entry] = []
    if nid == _FILES:
        entries = _files_info(r, max_members)
        nid = r.number()
    if nid != _END:
        raise _fail("its header is malformed (it does not end)")
    if sum(e.stream for e in entries) != len(streams.members):
        raise _fail(
            f"its file list has {sum(e.stream for e in entries)} members with content "
            f"but it stores {len(streams.members)}"
        )
    return streams, entries


def _read_at(f: BinaryIO, offset: int, n: int) -> bytes:
    f.seek(offset)
    data = f.read(n)
    if len(data) != n:
        raise _fail("it is truncated")
    return data


def _read_header(f: BinaryIO, size: int, max_members: int) -> tuple[_Streams, list[_Entry]]:
    if size < SIGNATURE_HEADER:
        raise _fail("it is truncated")
    signature = _read_at(f, 0, SIGNATURE_HEADER)
    if signature[:6] != MAGIC:
        raise InspectionError("not a 7z archive")
    if signature[6] != 0:
        raise _fail(f"format version {signature[6]}.{signature[7]} is not supported")
    (start_crc,) = struct.unpack_from("<I", signature, 8)
    if zlib.crc32(signature[12:]) != start_crc:
        raise _fail("its start header fails its CRC check")
    offset, length, crc = struct.unpack_from("<QQI", signature, 12)
    if length == 0:
        return _Streams(), []  # an empty archive
    room = size - SIGNATURE_HEADER
    if offset > room or length > room - offset:
        raise _fail("its header lies beyond the end of the file")
    if length > MAX_HEADER:
        raise _fail(f"its header is over {_mib(MAX_HEADER)}")
    data = _read_at(f, SIGNATURE_HEADER + offset, length)
    if zlib.crc32(data) != crc:
        raise _fail("its header fails its CRC check")
    for _ in range(MAX_HEADER_LEVELS):
        r = _Reader(data)
        nid = r.number()
        if nid == _HEADER:
            return _header(r, size, max_members)
        if nid != _ENCODED_HEADER:
            raise _fail("its header is malformed")
        try:
            encoded = _streams_info(r, size, max_members)
        except InspectionError as e:
            if e.message == _ENCRYPTED:
                raise InspectionError(
                    "7z archive is encrypted (its file list too): its members cannot be scanned"
                ) from None
            raise
        if sum(folder.size for folder in encoded.folders) > MAX_HEADER:
            raise _fail(f"its header is over {_mib(MAX_HEADER)}")
        parts = []
        for folder in encoded.folders:
            part = _Unpacker(f, encoded, folder).read(folder.size)
            if folder.crc is not None and zlib.crc32(part) != folder.crc:
                raise _fail("its header fails its CRC check")
            parts.append(part)
        data = b"".join(parts)
    raise _fail("its header is encoded too many times")


# -- decoding -----------------------------------------------------------------------------


def _dictionary(size: int, needed: int) -> int:
    """A dictionary no larger than the output that will be decoded: matches cannot reach
    further back, and a hostile header cannot make liblzma reserve gigabytes."""
    return max(4096, min(size, needed, 0xFFFFFFFF))


def _lzma_filter(coder: _Coder, needed: int) -> dict[str, int]:
    method, props = coder.method, coder.props
    if method == _LZMA:
        if len(props) != 5 or props[0] >= 9 * 5 * 5:
            raise _fail("an LZMA coder has invalid properties")
        d = props[0]
        lc, lp, pb = d % 9, (d // 9) % 5, d // 45
        dict_size = int.from_bytes(props[1:5], "little")
        return {
            "id": lzma.FILTER_LZMA1,
            "lc": lc,
            "lp": lp,
            "pb": pb,
            "dict_size": _dictionary(dict_size, needed),
        }
    if method == _LZMA2:
        if len(props) != 1 or props[0] > 40:
            raise _fail("an LZMA2 coder has invalid properties")
        p = props[0]
        dict_size = 0xFFFFFFFF if p == 40 else (2 | (p & 1)) << (p // 2 + 11)
        return {"id": lzma.FILTER_LZMA2, "dict_size": _dictionary(dict_size, needed)}
    if method == _DELTA:
        if len(props) != 1:
            raise _fail("a Delta coder has invalid properties")
        return {"id": lzma.FILTER_DELTA, "dist": props[0] + 1}
    options = {"id": _BRANCH[method]}
    if props:
        if len(props) != 4:
            raise _fail(f"a {_method(method)} coder has invalid properties")
        start = int.from_bytes(props, "little")
        if start:
            options["start_offset"] = start
    return options


def _decompressor(folder: _Folder, needed: int) -> Any:
    """The one decompressor for a folder's chain (None: stored as is); refused when the
    chain is not one the standard library decodes."""
    coders = [c for c in folder.coders if c.method != _COPY]
    if not coders:
        return None
    for coder in coders:
        known = coder.method in (_LZMA, _LZMA2, _DELTA, _DEFLATE, _BZIP2, *_BRANCH)
        if not known:
            raise _fail(
                f"it uses the {_method(coder.method)} coder, which mlbom cannot decode: "
                "its members cannot be scanned"
            )
    if len(coders) == 1 and coders[0].method == _DEFLATE:
        return zlib.decompressobj(-15)
    if len(coders) == 1 and coders[0].method == _BZIP2:
        return bz2.BZ2Decompressor()
    last, filters = coders[-1], coders[:-1]
    if (
        last.method in (_LZMA, _LZMA2)
        and len(filters) < 4
        and all(c.method == _DELTA or c.method in _BRANCH for c in filters)
    ):
        chain = [_lzma_filter(c, needed) for c in coders]
        try:
            return lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=chain)
        except (lzma.LZMAError, ValueError, MemoryError) as e:
            raise _fail(f"its LZMA coder cannot be set up ({e})") from None
    names = " + ".join(_method(c.method) for c in coders)
    raise _fail(
        f"it chains coders mlbom cannot decode together ({names}): its members cannot be scanned"
    )


class _Unpacker:
    """One folder's output, decoded incrementally from its packed stream and never further
    than asked: `read(n)` decompresses n bytes more."""

    def __init__(self, f: BinaryIO, streams: _Streams, folder: _Folder, needed: int = -1) -> None:
        self.f = f
        self.pos, self.packed = streams.pack_offsets[folder.packed]
        self.dec = _decompressor(folder, folder.size if needed < 0 else needed)
        self.inflate = any(c.method == _DEFLATE for c in folder.coders)

    def _input(self, n: int) -> bytes:
        n = min(n, self.packed)
        if not n:
            return b""
        self.f.seek(self.pos)
        data = self.f.read(n)
        if len(data) != n:
            raise _fail("it is truncated")
        self.pos += n
        self.packed -= n
        return data

    def read(self, n: int) -> bytes:
        parts = []
        dec = self.dec
        while n > 0:
            if dec is None:
                chunk = self._input(min(n, _CHUNK))
            else:
                if dec.eof:
                    raise _fail("a member's data ends before its declared size")
                if self.inflate:  # zlib hands back the input it did not use
                    data = dec.unconsumed_tail or self._input(_CHUNK)
                else:
                    data = self._input(_CHUNK) if dec.needs_input else b""
                try:
                    chunk = dec.decompress(data, n)
                except (lzma.LZMAError, OSError, zlib.error, EOFError, ValueError) as e:
                    raise _fail(f"a member's data is corrupt ({e})") from None
                if not chunk and not data:
                    raise _fail("a member's data ends before its declared size")
            if dec is None and not chunk:
                raise _fail("a member's data ends before its declared size")
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)


# -- the members --------------------------------------------------------------------------


def members(
    f: BinaryIO, size: int, *, limit: int, max_members: int = 100_000
) -> Iterator[tuple[str, bytes]]:
    """(name, content) of every regular file of the 7z archive `f` of `size` bytes, in the
    archive's order: empty files give b"", directories and anti-items nothing. Names are
    returned as stored (UTF-16 that does not decode is replaced by U+FFFD).

    Raises InspectionError when the archive is malformed, encrypted, uses a coder the
    standard library cannot decode, lists more than `max_members` items, or when its
    members together expand beyond `limit` bytes (checked before each is decompressed)."""
    streams, entries = _read_header(f, size, max_members)
    for folder in streams.folders:  # refuse what cannot be decoded before yielding anything
        _decompressor(folder, 4096)
    stored = iter(streams.members)
    used = 0
    current = -1
    unpacker: _Unpacker | None = None
    folder_crc = 0
    left_in_folder = 0
    for entry in entries:
        if not entry.stream:
            if entry.empty_file and not entry.anti:
                yield entry.name, b""
            continue
        index, length, crc = next(stored)
        folder = streams.folders[index]
        if index != current:
            current, left_in_folder, folder_crc = index, folder.streams, 0
            unpacker = _Unpacker(f, streams, folder, min(folder.size, limit))
        if length > limit - used:
            raise _fail(
                f"its members expand beyond {_mib(limit)} (at {_show(entry.name)}): "
                "not decompressed further"
            )
        used += length
        assert unpacker is not None  # set when the folder changed
        data = unpacker.read(length)
        if crc is not None and zlib.crc32(data) != crc:
            raise _fail(f"member {_show(entry.name)} fails its CRC check")
        left_in_folder -= 1
        if folder.streams > 1 and folder.crc is not None:
            folder_crc = zlib.crc32(data, folder_crc)
            if not left_in_folder and folder_crc != folder.crc:
                raise _fail(f"the folder holding {_show(entry.name)} fails its CRC check")
        yield entry.name, data
