"""The pure-Python 7z reader: real archives written by py7zr in every coder it decodes and the
ones it refuses, archives assembled here byte by byte (cross-checked with py7zr) for what
py7zr does not write, and hostile archives: truncated, corrupted, lying about their sizes
and counts, and a decompression bomb."""

from __future__ import annotations

import contextlib
import io
import lzma
import random
import struct
import time
import zlib
from pathlib import Path

import py7zr
import pytest

from mlbom.errors import InspectionError
from mlbom.inspectors.sevenzip import members

LIMIT = 256 << 20
RNG = random.Random(7)
PICKLE = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93."
FILES = {
    "model.pkl": PICKLE + RNG.randbytes(20_000) + bytes(100_000),
    "weights/data.bin": RNG.randbytes(3000) * 40,
    "weights/nested/deep/config.json": b'{"a": 1}' * 500,
    "données/模型.pkl": PICKLE,
    "tiny": b"x",
}


def read(data: bytes, **kw) -> list[tuple[str, bytes]]:
    return list(members(io.BytesIO(data), len(data), limit=kw.pop("limit", LIMIT), **kw))


def py7zr_archive(files: dict[str, bytes] = FILES, **kw) -> bytes:
    bio = io.BytesIO()
    with py7zr.SevenZipFile(bio, "w", **kw) as archive:
        for name, content in files.items():
            archive.writestr(content, name)
    return bio.getvalue()


# -- an archive assembled byte by byte --------------------------------------------------


def num(n: int) -> bytes:
    """7z's variable-length number."""
    for extra in range(8):
        if n < 1 << (7 * (extra + 1)):
            high = n >> (8 * extra)
            first = (0xFF00 >> extra) & 0xFF | high
            return bytes([first]) + (n & ((1 << (8 * extra)) - 1)).to_bytes(extra, "little")
    return b"\xff" + n.to_bytes(8, "little")


def bits(flags: list[bool]) -> bytes:
    out = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            out[i // 8] |= 0x80 >> (i % 8)
    return bytes(out)


def assemble(
    folders: list[tuple[list[tuple[bytes, bytes]], bytes, list[bytes | int]]],
    names: list[str],
    *,
    empty: dict[int, bool] | None = None,
    file_count: int | None = None,
    num_streams: int | None = None,
    crcs: bool = True,
    wrong_crc: bool = False,
) -> bytes:
    """A 7z archive with a plain header: each folder is (coders from output to packed
    stream as (id, properties), packed bytes, member contents or only their declared sizes);
    `empty` maps the index of an empty-stream item in `names` to whether it is an empty file
    (else a directory)."""
    empty = empty or {}

    def size(content: bytes | int) -> int:
        return content if isinstance(content, int) else len(content)

    packed = b"".join(p for _, p, _ in folders)
    h = bytearray(b"\x01\x04")  # Header, MainStreamsInfo
    h += b"\x06" + num(0) + num(len(folders)) + b"\x09"
    h += b"".join(num(len(p)) for _, p, _ in folders) + b"\x00"
    h += b"\x07\x0b" + num(len(folders)) + b"\x00"
    for coders, _, _ in folders:
        h += num(len(coders))
        for method, props in coders:
            h += bytes([len(method) | (0x20 if props else 0)]) + method
            if props:
                h += num(len(props)) + props
        for i in range(len(coders) - 1):  # coder i reads what coder i + 1 writes
            h += num(i) + num(i + 1)
    h += b"\x0c"
    for coders, _, contents in folders:
        h += num(sum(map(size, contents))) * len(coders)
    h += b"\x00\x08\x0d"
    h += b"".join(num(num_streams if num_streams is not None else len(c)) for _, _, c in folders)
    h += b"\x09" + b"".join(num(size(c)) for _, _, contents in folders for c in contents[:-1])
    if crcs:
        digests = [zlib.crc32(c) for _, _, contents in folders for c in contents]  # type: ignore[arg-type]
        if wrong_crc:
            digests[0] ^= 1
        h += b"\x0a\x01" + b"".join(struct.pack("<I", d) for d in digests)
    h += b"\x00\x00"  # end of SubStreamsInfo, of MainStreamsInfo
    n = len(names) if file_count is None else file_count
    h += b"\x05" + num(n)
    if empty:
        flags = bits([i in empty for i in range(len(names))])
        h += b"\x0e" + num(len(flags)) + flags
        files = bits([empty[i] for i in sorted(empty)])
        h += b"\x0f" + num(len(files)) + files
    encoded = b"\x00" + b"".join(name.encode("utf-16-le") + b"\0\0" for name in names)
    h += b"\x11" + num(len(encoded)) + encoded
    h += b"\x00\x00"  # end of FilesInfo, of Header
    return signature(len(packed), bytes(h)) + packed + bytes(h)


def signature(offset: int, header: bytes, *, size: int | None = None) -> bytes:
    tail = struct.pack("<QQI", offset, len(header) if size is None else size, zlib.crc32(header))
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(tail)) + tail


def copy_archive(files: dict[str, bytes] = FILES, **kw) -> bytes:
    contents = list(files.values())
    return assemble([([(b"\x00", b"")], b"".join(contents), contents)], list(files), **kw)


def lzma2(data: bytes, preset: int = 0) -> tuple[bytes, bytes]:
    """Raw LZMA2 and its 7z property byte (a 64 MiB dictionary)."""
    filters = [{"id": lzma.FILTER_LZMA2, "preset": preset, "dict_size": 64 << 20}]
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=filters), bytes([36])


def test_the_assembled_archives_are_real_7z():
    for data in (copy_archive(), copy_archive(empty={})):
        with py7zr.SevenZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None
            assert archive.getnames() == list(FILES)
        assert read(data) == list(FILES.items())


# -- real archives ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters",
    [
        None,  # py7zr's default: LZMA2, the header compressed too
        [{"id": py7zr.FILTER_LZMA2, "preset": 9}],
        [{"id": py7zr.FILTER_LZMA}],
        [{"id": py7zr.FILTER_COPY}],
        [{"id": py7zr.FILTER_DEFLATE}],
        [{"id": py7zr.FILTER_BZIP2}],
        [{"id": py7zr.FILTER_X86}, {"id": py7zr.FILTER_LZMA2}],
        [{"id": py7zr.FILTER_ARM}, {"id": py7zr.FILTER_LZMA2}],
        [{"id": py7zr.FILTER_SPARC}, {"id": py7zr.FILTER_LZMA}],
        [{"id": py7zr.FILTER_DELTA, "dist": 4}, {"id": py7zr.FILTER_LZMA2}],
    ],
    ids=lambda f: "+".join(str(x["id"]) for x in f) if f else "default",
)
def test_py7zr_archives_in_every_coder_read_back(filters):
    data = py7zr_archive(filters=filters) if filters else py7zr_archive()
    assert read(data) == list(FILES.items())


def test_archive_order_unicode_names_empty_files_and_directories(tmp_path: Path):
    root = tmp_path / "model"
    (root / "a/b/c").mkdir(parents=True)
    (root / "empty dir").mkdir()
    (root / "a/b/c/weights.pkl").write_bytes(PICKLE * 100)
    (root / "a/empty.pkl").write_bytes(b"")
    (root / "a/b/ünïcødé 名前.bin").write_bytes(b"\x00\x01" * 999)
    (root / "top.txt").write_bytes(b"top")
    path = tmp_path / "model.7z"
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writeall(root, "model")
    with py7zr.SevenZipFile(path) as archive:
        listed = [(i.filename, i.is_directory) for i in archive.list()]
    got = read(path.read_bytes())
    assert [name for name, _ in got] == [name for name, is_dir in listed if not is_dir]
    assert dict(got) == {
        "model/a/b/c/weights.pkl": PICKLE * 100,
        "model/a/empty.pkl": b"",
        "model/a/b/ünïcødé 名前.bin": b"\x00\x01" * 999,
        "model/top.txt": b"top",
    }
    with path.open("rb") as f:  # the reader works from a real file too
        assert dict(members(f, path.stat().st_size, limit=LIMIT)) == dict(got)


def test_empty_archive_and_only_empty_files():
    assert read(py7zr_archive({})) == []
    assert read(py7zr_archive({"a": b"", "b": b""})) == [("a", b""), ("b", b"")]


def test_several_folders_and_assembled_coders(tmp_path: Path):
    a, b, c = RNG.randbytes(5000), bytes(70_000), b"tail"
    packed_lzma2, props2 = lzma2(a + b)
    lzma1 = lzma.compress(
        c * 1000, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA1, "dict_size": 1 << 16}]
    )
    # LZMA properties: lc=3, lp=0, pb=2 is the byte 93; the dictionary size follows
    props1 = bytes([93]) + (1 << 16).to_bytes(4, "little")
    deflated = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflate = deflated.compress(b + a) + deflated.flush()
    data = assemble(
        [
            ([(b"\x21", props2)], packed_lzma2, [a, b]),
            ([(b"\x03\x01\x01", props1)], lzma1, [c * 1000]),
            ([(b"\x00", b""), (b"\x04\x01\x08", b"")], deflate, [b, a]),  # Copy in a chain
        ],
        ["a", "b", "c", "d", "e"],
    )
    path = tmp_path / "folders.7z"  # py7zr reads several folders from named files only
    path.write_bytes(data)
    with py7zr.SevenZipFile(path) as archive:
        assert archive.testzip() is None
    assert read(data) == [("a", a), ("b", b), ("c", c * 1000), ("d", b), ("e", a)]


def test_members_are_decoded_lazily():
    data = py7zr_archive({"first.pkl": PICKLE, "second": bytes(10 << 20)})
    it = members(io.BytesIO(data), len(data), limit=1 << 20)
    assert next(it) == ("first.pkl", PICKLE)  # the second is over the limit, but not read yet
    with pytest.raises(InspectionError, match="expand beyond 1 MiB"):
        next(it)


# -- refused ----------------------------------------------------------------------------


@pytest.mark.parametrize("header_encryption", [False, True])
def test_encrypted_archives_are_refused(header_encryption):
    data = py7zr_archive(password="secret", header_encryption=header_encryption)
    with pytest.raises(InspectionError, match="encrypted"):
        read(data)


@pytest.mark.parametrize(
    ("filters", "name"),
    [
        ([{"id": py7zr.FILTER_PPMD}], "PPMd"),
        ([{"id": py7zr.FILTER_ZSTD}], "Zstandard"),
        ([{"id": py7zr.FILTER_BROTLI}], "Brotli"),
        ([{"id": py7zr.FILTER_X86}, {"id": py7zr.FILTER_BZIP2}], "BCJ x86 \\+ BZip2"),
    ],
)
def test_coders_the_standard_library_lacks_are_refused(filters, name):
    with pytest.raises(InspectionError, match=f"{name}.*cannot be scanned"):
        read(py7zr_archive(filters=filters))


def test_an_unknown_coder_is_refused():
    data = assemble([([(b"\x7f\x01", b"")], b"abc", [b"abc"])], ["x"])
    with pytest.raises(InspectionError, match="unknown coder 7f01"):
        read(data)


# -- hostile ----------------------------------------------------------------------------


def test_truncated_archives_are_refused():
    data = py7zr_archive()
    for cut in [*range(0, 64), *range(64, len(data), 97), len(data) - 1]:
        with pytest.raises(InspectionError):
            read(data[:cut])
    with pytest.raises(InspectionError):  # the file is shorter than it claims
        list(members(io.BytesIO(data[:-10]), len(data), limit=LIMIT))


def test_wrong_crcs_are_refused():
    with pytest.raises(InspectionError, match=r"'model\.pkl' fails its CRC check"):
        read(copy_archive(wrong_crc=True))
    data = bytearray(copy_archive())
    data[40] ^= 0xFF  # in the first member's content
    with pytest.raises(InspectionError, match="fails its CRC check"):
        read(bytes(data))
    data = bytearray(copy_archive())
    data[-3] ^= 0xFF  # in the header
    with pytest.raises(InspectionError, match="header fails its CRC check"):
        read(bytes(data))
    data = bytearray(copy_archive())
    data[20] ^= 0xFF  # in the start header
    with pytest.raises(InspectionError, match="start header fails its CRC check"):
        read(bytes(data))
    data = bytearray(py7zr_archive())
    data[-5] ^= 0x01  # in the compressed header
    with pytest.raises(InspectionError):
        read(bytes(data))


def test_a_next_header_past_the_end_is_refused():
    data = copy_archive()
    header = data[32 + sum(map(len, FILES.values())) :]
    for offset, size in [(1 << 40, len(header)), (len(data), len(header)), (0, 1 << 62)]:
        forged = signature(offset, header, size=size) + data[32:]
        with pytest.raises(InspectionError, match="beyond the end of the file"):
            read(forged)


def test_not_a_7z_archive():
    with pytest.raises(InspectionError, match="not a 7z archive"):
        read(b"PK\x03\x04" + bytes(100))


def test_huge_member_counts_are_refused_at_once():
    start = time.monotonic()
    with pytest.raises(InspectionError, match="lists 1099511627776 members"):
        read(copy_archive(file_count=2**40))
    with pytest.raises(InspectionError, match="more than 100000 members"):
        read(copy_archive(num_streams=2**40))
    with pytest.raises(InspectionError, match=r"more than (the )?4 members"):
        read(copy_archive(), max_members=4)
    assert time.monotonic() - start < 1


def test_a_lying_member_count_is_refused():
    with pytest.raises(InspectionError):
        read(copy_archive(num_streams=3))


def test_a_member_shorter_than_declared_is_refused():
    packed, props = lzma2(b"abc" * 1000)
    data = assemble([([(b"\x21", props)], packed, [6000])], ["short"], crcs=False)
    with pytest.raises(InspectionError, match="ends before its declared size"):
        read(data)
    data = assemble([([(b"\x00", b"")], b"abc", [6000])], ["short"], crcs=False)
    with pytest.raises(InspectionError, match="ends before its declared size"):
        read(data)


def test_a_huge_dictionary_is_not_reserved():
    packed, _ = lzma2(b"abc" * 1000)
    data = assemble([([(b"\x21", bytes([40]))], packed, [b"abc" * 1000])], ["x"])  # 4 GiB
    assert read(data) == [("x", b"abc" * 1000)]


def test_random_corruption_raises_only_inspection_errors():
    rng = random.Random(1)
    originals = [
        py7zr_archive(),
        copy_archive(),
        py7zr_archive(filters=[{"id": py7zr.FILTER_BZIP2}]),
    ]
    for _ in range(300):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(InspectionError):
            read(bytes(data))


def test_a_decompression_bomb_is_refused_at_the_limit_quickly():
    chunk, props = lzma2(bytes(64 << 20))
    assert chunk[-1] == 0  # LZMA2's end mark; each stream starts with a dictionary reset
    packed = chunk[:-1] * 16 + b"\x00"  # 1 GiB of zeros in 16 members, 157 KB packed
    members_ = [bytes(64 << 20)] * 16
    bomb = assemble([([(b"\x21", props)], packed, members_)], [f"m{i}" for i in range(16)])
    one = assemble([([(b"\x21", props)], packed, [1 << 30])], ["m"], crcs=False)
    start = time.monotonic()
    got = members(io.BytesIO(bomb), len(bomb), limit=100 << 20)
    assert next(got) == ("m0", members_[0])
    with pytest.raises(InspectionError, match="expand beyond 100 MiB \\(at 'm1'\\)"):
        next(got)
    with pytest.raises(InspectionError, match="expand beyond 100 MiB \\(at 'm'\\)"):
        read(one, limit=100 << 20)  # refused before a byte is decompressed
    assert time.monotonic() - start < 5
