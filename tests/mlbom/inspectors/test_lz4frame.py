"""The pure-Python LZ4 decoder: frames written by the lz4 library in every option it has,
legacy frames (from lz4.block and the lz4 command), and hostile input: malformed blocks,
forged descriptors, output over the limit and a decompression bomb."""

from __future__ import annotations

import contextlib
import io
import random
import shutil
import struct
import subprocess
import time
from pathlib import Path

import lz4.block
import lz4.frame
import numpy as np
import pytest

from mlbom.errors import InspectionError
from mlbom.inspectors.lz4frame import LEGACY_MAGIC, decompress, is_frame, xxh32

LIMIT = 256 << 20
RNG = random.Random(4)


def unpack(data: bytes, limit: int = LIMIT) -> bytes:
    return decompress(io.BytesIO(data), limit=limit)


def weights() -> bytes:
    """float32 noise with runs of zeros and values zeroed here and there, like weights."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal(1 << 19).astype(np.float32)
    a.reshape(-1, 512)[rng.random(1024) < 0.3] = 0
    a[rng.random(1 << 19) < 0.2] = 0
    return a.tobytes()


SAMPLES = {
    "empty": b"",
    "one byte": b"a",
    "random": RNG.randbytes(300_000),
    "zeros": bytes(5 << 20),
    "period 3": b"abc" * 200_000,  # overlapping matches, offset 3
    "period 7 with noise": (b"pickle!" * 30 + RNG.randbytes(3)) * 5000,
    "repeats across blocks": RNG.randbytes(40_000) * 12,  # matches into the previous block
    "weights": weights(),
}


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"block_linked": False},
        {"block_size": lz4.frame.BLOCKSIZE_MAX64KB},
        {"block_size": lz4.frame.BLOCKSIZE_MAX64KB, "block_linked": False},
        {"block_size": lz4.frame.BLOCKSIZE_MAX256KB, "content_checksum": True},
        {"block_size": lz4.frame.BLOCKSIZE_MAX1MB, "block_checksum": True},
        {"block_size": lz4.frame.BLOCKSIZE_MAX4MB, "store_size": False},
        {"compression_level": lz4.frame.COMPRESSIONLEVEL_MAX},
        {"compression_level": -10},  # acceleration: short matches, many literals
    ],
    ids=repr,
)
def test_frames_from_the_lz4_library_read_back(name, options):
    data = SAMPLES[name]
    frame = lz4.frame.compress(data, **options)
    assert is_frame(frame[:5])
    assert unpack(frame) == data


def test_stored_blocks_read_back():
    data = RNG.randbytes(200_000)  # incompressible: the library stores the blocks as is
    frame = lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX64KB, store_size=False)
    assert struct.unpack_from("<I", frame, 7)[0] & 0x80000000
    assert unpack(frame) == data


def test_concatenated_and_skippable_frames():
    a, b = SAMPLES["period 3"], SAMPLES["random"]
    skippable = struct.pack("<II", 0x184D2A5A, 5) + b"hello"
    data = skippable + lz4.frame.compress(a) + skippable + lz4.frame.compress(b) + skippable
    assert is_frame(data)
    assert unpack(data) == a + b


def legacy(data: bytes) -> bytes:
    blocks = [data[i : i + (8 << 20)] for i in range(0, len(data), 8 << 20)]
    out = struct.pack("<I", LEGACY_MAGIC)
    for block in blocks:
        packed = lz4.block.compress(block, store_size=False)
        out += struct.pack("<I", len(packed)) + packed
    return out


def test_legacy_frames():
    data = SAMPLES["weights"] * 9 + b"end"  # over two 8 MiB blocks
    frame = legacy(data)
    assert is_frame(frame)
    assert unpack(frame) == data
    # a legacy frame ends where another frame starts
    assert unpack(frame + lz4.frame.compress(b"next")) == data + b"next"


@pytest.mark.skipif(shutil.which("lz4") is None, reason="no lz4 command")
def test_legacy_frames_from_the_lz4_command(tmp_path: Path):
    source = tmp_path / "data"
    source.write_bytes(SAMPLES["period 7 with noise"] + SAMPLES["random"])
    subprocess.run(["lz4", "-q", "-l", "-f", str(source), str(tmp_path / "l.lz4")], check=True)
    subprocess.run(["lz4", "-q", "-f", "--content-size", str(source), str(tmp_path / "f.lz4")], check=True)  # fmt: skip
    for name in ("l.lz4", "f.lz4"):
        assert unpack((tmp_path / name).read_bytes()) == source.read_bytes()


def test_is_frame():
    assert is_frame(b"\x04\x22\x4d\x18\x64")
    assert not is_frame(b"\x04\x22\x4d\x18\x24")  # descriptor version 00
    assert is_frame(b"\x02\x21\x4c\x18")
    assert is_frame(b"\x50\x2a\x4d\x18")
    assert not is_frame(b"\x80\x04\x95")
    assert not is_frame(b"")


def test_xxh32_matches_known_values():
    assert xxh32(b"") == 0x02CC5D05
    assert xxh32(b"a") == 0x550D7456
    assert xxh32(b"abc") == 0x32D153FF
    assert xxh32(b"Nobody inspects the spammish repetition") == 0xE2293B2F


# -- hostile ----------------------------------------------------------------------------


def frame(blocks: list[bytes], *, flg: int = 0x60, bd: int = 0x40, extra: bytes = b"") -> bytes:
    """A frame around raw LZ4 blocks: version 01, independent blocks, 64 KiB by default."""
    descriptor = bytes([flg, bd]) + extra
    head = struct.pack("<I", 0x184D2204) + descriptor + bytes([(xxh32(descriptor) >> 8) & 0xFF])
    return head + b"".join(struct.pack("<I", len(b)) + b for b in blocks) + bytes(4)


def test_a_hand_made_frame_reads():
    # "abcd" as literals, then a match of 10 at offset 4 (overlapping), then "!" as literals
    block = b"\x46abcd\x04\x00" + b"\x10!"
    assert unpack(frame([block])) == b"abcd" + b"abcd" * 2 + b"ab" + b"!"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (b"\x14a\x05\x00", "starts before the output"),  # offset 5 after one byte
        (b"\x14a\x00\x00", "offset 0"),
        (b"\x14a\xff\xff", "starts before the output"),
        (b"\x50abc", "literals run past its end"),
        (b"\xf0\xff\xff\x10abc", "literals run past its end"),
        (b"\xf0\xff\xff", "ends inside a sequence"),
        (b"\x14a\x01", "ends inside a sequence"),
        (b"\x1fa\x01\x00\xff\xff", "ends inside a sequence"),
    ],
)
def test_malformed_blocks_are_refused(block, message):
    with pytest.raises(InspectionError, match=message):
        unpack(frame([block]))


def test_independent_blocks_cannot_reach_into_the_previous_one():
    data = RNG.randbytes(30_000) * 6
    linked = lz4.frame.compress(
        data, block_size=lz4.frame.BLOCKSIZE_MAX64KB, block_linked=True, store_size=False
    )
    assert unpack(linked) == data
    flg = linked[4] | 0x20  # now claims its blocks are independent
    descriptor = bytes([flg, linked[5]])
    forged = linked[:4] + descriptor + bytes([(xxh32(descriptor) >> 8) & 0xFF]) + linked[7:]
    with pytest.raises(InspectionError, match="starts before the output"):
        unpack(forged)


def test_forged_descriptors_are_refused():
    good = lz4.frame.compress(b"data" * 100)
    bad_check = bytearray(good)
    bad_check[6] ^= 0xFF
    with pytest.raises(InspectionError, match="fails its checksum"):
        unpack(bytes(bad_check))
    with pytest.raises(InspectionError, match="needs dictionary 7"):
        unpack(frame([b"\x10a"], flg=0x61, extra=struct.pack("<I", 7)))
    with pytest.raises(InspectionError, match="reserved bits"):
        unpack(frame([b"\x10a"], flg=0x62))
    with pytest.raises(InspectionError, match="unknown block size"):
        unpack(frame([b"\x10a"], bd=0x30))
    with pytest.raises(InspectionError, match="version"):
        unpack(frame([b"\x10a"], flg=0xA0))
    lying = frame([b"\x10a"], flg=0x68, extra=struct.pack("<Q", 2))
    with pytest.raises(InspectionError, match="decodes to 1 bytes but declares 2"):
        unpack(lying)


def test_a_block_over_the_frame_block_size_is_refused():
    big = lz4.block.compress(RNG.randbytes(100_000), store_size=False)
    with pytest.raises(InspectionError, match="larger than the frame's 65536"):
        unpack(frame([big]))  # 64 KiB blocks declared
    zeros = lz4.block.compress(bytes(100_000), store_size=False)  # small, but decodes to more
    with pytest.raises(InspectionError, match="more than the frame's 65536 bytes"):
        unpack(frame([zeros]))


def test_output_over_the_limit_is_refused():
    data = bytes(3 << 20)
    for options in ({}, {"store_size": False}, {"block_linked": False}):
        with pytest.raises(InspectionError, match="expands beyond 1 MiB"):
            unpack(lz4.frame.compress(data, **options), limit=1 << 20)
    assert unpack(lz4.frame.compress(data), limit=3 << 20) == data
    stored = lz4.frame.compress(RNG.randbytes(3 << 20))
    with pytest.raises(InspectionError, match="expands beyond 1 MiB"):
        unpack(stored, limit=1 << 20)
    with pytest.raises(InspectionError, match="expands beyond 1 MiB"):
        unpack(legacy(data), limit=1 << 20)


def test_a_decompression_bomb_is_refused_quickly():
    compressor = lz4.frame.LZ4FrameCompressor(block_size=lz4.frame.BLOCKSIZE_MAX4MB)
    zeros = bytes(16 << 20)
    bomb = compressor.begin() + b"".join(compressor.compress(zeros) for _ in range(64))
    bomb += compressor.flush()  # 1 GiB of zeros in 4 MB
    start = time.monotonic()
    with pytest.raises(InspectionError, match="expands beyond 64 MiB"):
        unpack(bomb, limit=64 << 20)
    assert time.monotonic() - start < 5


def test_truncated_and_trailing_data_are_refused():
    data = lz4.frame.compress(SAMPLES["period 7 with noise"], content_checksum=True)
    for cut in [*range(0, 40), *range(40, len(data), 101), len(data) - 1]:
        with pytest.raises(InspectionError):
            unpack(data[:cut])
    with pytest.raises(InspectionError, match="followed by bytes that are not"):
        unpack(data + b"junk")
    with pytest.raises(InspectionError, match="not LZ4 data"):
        unpack(b"\x80\x04\x95junk")


def test_random_corruption_raises_only_inspection_errors():
    rng = random.Random(2)
    originals = [
        lz4.frame.compress(SAMPLES["period 7 with noise"][:200_000]),
        lz4.frame.compress(SAMPLES["weights"][:300_000], block_linked=False),
        legacy(SAMPLES["period 3"][:100_000]),
    ]
    for _ in range(300):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(InspectionError):
            unpack(bytes(data), limit=8 << 20)
