"""A bounded LZ4 decoder in pure Python, for pickles written by joblib with `compress="lz4"`
(an LZ4 frame around the pickle) and for any other LZ4 frame.

Read: the frame format (magic 0x184D2204) with its descriptor, optional content size, linked
or independent blocks, compressed or stored blocks, several concatenated frames and skippable
frames between them, and the legacy frame (magic 0x184C2102, 8 MiB blocks). The descriptor's
header checksum is verified (xxHash32 of a few bytes); block and content checksums are skipped
over, since hashing every byte in Python would cost more than decoding it. Refused with
`InspectionError`: frames that need a dictionary, malformed blocks (an offset of 0 or before
the output's start, literals or a match running past the block), and output over `limit`.
"""

from __future__ import annotations

import re
from typing import BinaryIO

from mlbom.errors import InspectionError

MAGIC = 0x184D2204
LEGACY_MAGIC = 0x184C2102
_SKIPPABLE_FIRST, _SKIPPABLE_LAST = 0x184D2A50, 0x184D2A5F
LEGACY_BLOCK = 8 << 20
_LEGACY_BOUND = LEGACY_BLOCK + LEGACY_BLOCK // 255 + 16  # LZ4_compressBound(8 MiB)
_BLOCK_SIZES = {4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20}
_CHUNK = 1 << 20
_RUN_OF_FF = re.compile(b"\xff*")  # a length's extension bytes, skipped over in C


def is_frame(head: bytes) -> bool:
    """Whether `head` (a file's first bytes) starts an LZ4 frame, legacy frame or skippable
    frame."""
    if len(head) < 4:
        return False
    magic = int.from_bytes(head[:4], "little")
    if magic == MAGIC:
        return len(head) < 5 or head[4] >> 6 == 1  # the descriptor's version is 01
    return magic == LEGACY_MAGIC or _SKIPPABLE_FIRST <= magic <= _SKIPPABLE_LAST


def _mib(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"


def _exactly(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise InspectionError("LZ4 data is truncated")
    return data


def _u32(data: bytes) -> int:
    return int.from_bytes(data, "little")


# -- xxHash32, for the frame descriptor's checksum ------------------------------------------

_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_M = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M


def xxh32(data: bytes, seed: int = 0) -> int:
    """xxHash32 of `data` (pure Python: for short inputs)."""
    n, i = len(data), 0
    if n >= 16:
        v = [(seed + _P1 + _P2) & _M, (seed + _P2) & _M, seed & _M, (seed - _P1) & _M]
        while i + 16 <= n:
            for k in range(4):
                lane = _u32(data[i : i + 4])
                v[k] = (_rotl((v[k] + lane * _P2) & _M, 13) * _P1) & _M
                i += 4
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M
    else:
        h = (seed + _P5) & _M
    h = (h + n) & _M
    while i + 4 <= n:
        h = (_rotl((h + _u32(data[i : i + 4]) * _P3) & _M, 17) * _P4) & _M
        i += 4
    while i < n:
        h = (_rotl((h + data[i] * _P5) & _M, 11) * _P1) & _M
        i += 1
    h = ((h ^ (h >> 15)) * _P2) & _M
    h = ((h ^ (h >> 13)) * _P3) & _M
    return h ^ (h >> 16)


# -- blocks --------------------------------------------------------------------------------


def decode_block(src: bytes, out: bytearray, floor: int, cap: int, over: str) -> None:
    """Decode the LZ4 block `src`, appending to `out`. Matches may reach back to `out[floor]`
    (the block's start, or the frame's when blocks are linked); the output may not pass
    `cap` bytes (`over` is the message then)."""
    n = len(src)
    view = memoryview(src)
    run = _RUN_OF_FF.match
    o = len(out)
    i = 0
    # The hot loop: about 0.4 µs a sequence in CPython 3.11, so every operation counts.
    try:
        while True:
            token = src[i]
            i += 1
            lit = token >> 4
            if lit == 15:  # a long run of literals: copied from a view, not a slice
                b = src[i]
                if b == 255:
                    j = run(src, i).end()  # type: ignore[union-attr]  # \xff* always matches
                    lit += 255 * (j - i)
                    i = j
                    b = src[i]
                i += 1
                j = i + lit + b
                if j > n:
                    raise InspectionError("LZ4 block is malformed: literals run past its end")
                out += view[i:j]
                o += j - i
                i = j
            elif lit:
                j = i + lit
                if j > n:
                    raise InspectionError("LZ4 block is malformed: literals run past its end")
                out += src[i:j]
                o += lit
                i = j
            if i == n:
                break  # the last sequence has literals only
            off = src[i] | (src[i + 1] << 8)
            i += 2
            m = (token & 15) + 4
            if m == 19:
                b = src[i]
                if b == 255:
                    j = run(src, i).end()  # type: ignore[union-attr]  # \xff* always matches
                    m += 255 * (j - i)
                    i = j
                    b = src[i]
                m += b
                i += 1
            s = o - off
            if s < floor or not off:
                raise InspectionError(
                    "LZ4 block is malformed: a match starts before the output"
                    if off
                    else "LZ4 block is malformed: a match has offset 0"
                )
            o += m
            if o > cap:
                raise InspectionError(over)
            if off >= m:
                out += out[s : s + m]
            else:  # the match overlaps its own output: a pattern of `off` bytes repeated
                pattern = out[s : s + off]
                out += pattern * (m // off)
                rest = m % off
                if rest:
                    out += pattern[:rest]
    except IndexError:
        raise InspectionError("LZ4 block is malformed: it ends inside a sequence") from None
    if o > cap:
        raise InspectionError(over)


# -- frames --------------------------------------------------------------------------------


def _frame(f: BinaryIO, out: bytearray, limit: int) -> None:
    descriptor = _exactly(f, 2)
    flg, bd = descriptor
    if flg >> 6 != 1:
        raise InspectionError(f"LZ4 frame version {flg >> 6} is not supported")
    if flg & 0x02 or bd & 0x8F:
        raise InspectionError("LZ4 frame descriptor is malformed (reserved bits are set)")
    block_max = _BLOCK_SIZES.get(bd >> 4)
    if block_max is None:
        raise InspectionError("LZ4 frame descriptor is malformed (unknown block size)")
    linked = not flg & 0x20
    block_checksums = bool(flg & 0x10)
    has_size = bool(flg & 0x08)
    content_checksum = bool(flg & 0x04)
    needs_dictionary = bool(flg & 0x01)
    extra = _exactly(f, 8 * has_size + 4 * needs_dictionary)
    (check,) = _exactly(f, 1)
    if (xxh32(descriptor + extra) >> 8) & 0xFF != check:
        raise InspectionError("LZ4 frame descriptor fails its checksum")
    if needs_dictionary:
        raise InspectionError(
            f"LZ4 frame needs dictionary {_u32(extra[-4:])}, which the file does not carry"
        )
    over = f"LZ4 data expands beyond {_mib(limit)}: not decompressed further"
    start = len(out)
    size = int.from_bytes(extra[:8], "little") if has_size else None
    if size is not None and size > limit - start:
        raise InspectionError(over)
    while True:
        word = _u32(_exactly(f, 4))
        if not word:
            break  # the end mark
        length = word & 0x7FFFFFFF
        if length > block_max:
            raise InspectionError(
                f"LZ4 block of {length} bytes is larger than the frame's {block_max}"
            )
        data = _exactly(f, length)
        if block_checksums:
            _exactly(f, 4)
        if word & 0x80000000:  # stored as is
            if len(out) + length > limit:
                raise InspectionError(over)
            out += data
            continue
        here = len(out)
        if here + block_max > limit:
            decode_block(data, out, start if linked else here, limit, over)
        else:
            decode_block(
                data,
                out,
                start if linked else here,
                here + block_max,
                f"LZ4 block decodes to more than the frame's {block_max} bytes",
            )
    if content_checksum:
        _exactly(f, 4)
    if size is not None and len(out) - start != size:
        raise InspectionError(f"LZ4 frame decodes to {len(out) - start} bytes but declares {size}")


def _legacy(f: BinaryIO, out: bytearray, limit: int) -> int | None:
    """Legacy blocks up to the end of the file or the next frame's magic (returned)."""
    over = f"LZ4 data expands beyond {_mib(limit)}: not decompressed further"
    while True:
        head = f.read(4)
        if not head:
            return None
        if len(head) != 4:
            raise InspectionError("LZ4 data is truncated")
        length = _u32(head)
        if length > _LEGACY_BOUND:
            return length  # no block is this large: a frame follows
        here = len(out)
        cap = min(here + LEGACY_BLOCK, limit)
        message = over if cap == limit else "LZ4 legacy block decodes to more than 8 MiB"
        decode_block(_exactly(f, length), out, here, cap, message)


def _skip(f: BinaryIO, n: int) -> None:
    while n:
        data = f.read(min(n, _CHUNK))
        if not data:
            raise InspectionError("LZ4 data is truncated (in a skippable frame)")
        n -= len(data)


def decompress(f: BinaryIO, *, limit: int) -> bytes:
    """The content of the LZ4 frames read from `f` to its end; InspectionError when they are
    malformed, need a dictionary, are followed by other data, or expand beyond `limit`
    bytes (refused before a block that would pass it is decoded to its end)."""
    out = bytearray()
    frames = 0
    head = f.read(4)
    while head:
        if len(head) != 4:
            raise InspectionError("LZ4 data is truncated")
        magic = _u32(head)
        if magic == MAGIC:
            _frame(f, out, limit)
        elif magic == LEGACY_MAGIC:
            follows = _legacy(f, out, limit)
            frames += 1
            if follows is None:
                break
            head = follows.to_bytes(4, "little")
            continue
        elif _SKIPPABLE_FIRST <= magic <= _SKIPPABLE_LAST:
            _skip(f, _u32(_exactly(f, 4)))
        elif frames:
            raise InspectionError("LZ4 data is followed by bytes that are not an LZ4 frame")
        else:
            raise InspectionError("not LZ4 data (no frame magic)")
        frames += 1
        head = f.read(4)
    if not frames:
        raise InspectionError("not LZ4 data (the file is empty)")
    return bytes(out)
