"""Containers, read by content: zip archives (PyTorch and TorchScript checkpoints, Keras v3,
NumPy `.npz`, any other), tar and 7z archives, compressed streams (gzip, bzip2, xz, lzma,
zlib, lz4: joblib's wrappers) and NumPy `.npy` arrays.

Every member is identified by its bytes, at any depth, and every pickle in one is scanned
(`pickles`): a `DATA.PKL`, a pickle in a `.npy` of objects, a joblib file in gzip in a
tar. A zip is read as loaders read it and checked against itself: a local header that
disagrees with the central directory, two members whose names differ only in case, bytes
that belong to no member, an encrypted member or a compression the scanner cannot undo
make the archive unscanned. Decompression is capped; a cap reached is unscanned too.
"""

from __future__ import annotations

import ast
import bz2
import gzip
import io
import lzma
import math
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, BinaryIO

from mlbom.errors import InspectionError, shown
from mlbom.inspectors import Context, Inspection, flag, pickles, unscanned
from mlbom.models import FileFacts
from mlbom.sources import Blob

FORMAT = "archive"
EXECUTABLE = True  # what it holds may be pickles
MAX_DEPTH = 4  # containers inside containers
MAX_MEMBERS = 100_000
MAX_UNPACKED = 1 << 30  # bytes decompressed for one file, all members together
MAX_IN_MEMORY = 256 << 20  # a nested zip or 7z is read whole: zipfile needs to seek
MAX_NPY_HEADER = 1 << 16

_COMPRESSIONS = ("gzip", "bzip2", "xz", "lzma", "zlib", "lz4", "zstd", "joblib-zfile")
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def sniff(head: bytes) -> str | None:
    """The container a file's first bytes announce, if any."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06") or head[:8] == b"PK\x07\x08PK\x03\x04":
        return "zip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[3:4] != b"0":
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head[:4] in (b"\x04\x22\x4d\x18", b"\x02\x21\x4c\x18"):
        return "lz4"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if head.startswith(b"ZF0x"):
        return "joblib-zfile"  # joblib < 0.10: zlib data after a hex length
    if len(head) >= 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0:
        return "zlib"
    if head[:2] == b"\x5d\x00":
        return "lzma"  # the "alone" format joblib's lzma compressor writes, as joblib tests it
    if _is_tar(head):
        return "tar"
    return None


def _is_tar(head: bytes) -> bool:
    """A tar header block: `ustar` magic, or (old v7 archives) a header checksum that holds."""
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    stored = head[148:156].rstrip(b" \x00")
    if not stored or not all(48 <= c <= 55 for c in stored):
        return False
    block = head[:148] + b" " * 8 + head[156:512]
    return int(stored, 8) == sum(block) and head[0] != 0


def detect(head: bytes, path: str) -> bool:
    return sniff(head) is not None


def ends_like_zip(blob: Blob) -> bool:
    """A zip's directory at the end of a file that does not start like one: Python's
    zipfile (and every reader that looks from the end) opens it all the same."""
    if blob.size < 22:
        return False
    start = max(0, blob.size - (1 << 16) - 22)
    tail = blob.read_at(start, blob.size - start)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return False
    size, offset = struct.unpack("<II", tail[at + 12 : at + 20])
    return offset == 0xFFFFFFFF or start + at >= size


@dataclass
class Found:
    """What a container (or a member) turned out to be and what it holds that runs."""

    format: str | None = None
    findings: list[str] = field(default_factory=list)
    parameter_count: int | None = None
    properties: list[tuple[str, str]] = field(default_factory=list)
    archive: bool = False
    runs_code: bool = False
    storages: set[str] = field(default_factory=set)  # a torch pickle's raw tensor members


class _Budget:
    """Bytes that may still be decompressed for the file being inspected."""

    def __init__(self) -> None:
        self.left = MAX_UNPACKED

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise _OverBudget


class _OverBudget(Exception):
    pass


def inspect(blob: Blob, context: Context) -> Inspection:
    with blob.open() as raw:
        f = raw if isinstance(raw, io.BufferedIOBase) else io.BufferedReader(raw)  # type: ignore[type-var]
        kind = sniff(_peek(f, 512)) or "zip"  # chosen for its bytes, or a zip's directory
        found = _container(blob.path, f, blob.size, depth=0, budget=_Budget(), kind=kind)
    facts = FileFacts(
        format=found.format,
        parameter_count=found.parameter_count,
        archive=found.archive,
        structured=True,
        executable=found.runs_code,
        properties=found.properties,
    )
    flag(facts, found.findings)
    return Inspection(facts)


def _container(
    name: str,
    f: BinaryIO,
    size: int | None,
    *,
    depth: int,
    budget: _Budget,
    kind: str | None = None,
) -> Found:
    """`f` (seekable when `size` is known) read as the content its first bytes announce."""
    head = _peek(f, 512)
    kind = kind or sniff(head)
    try:
        if kind in ("zip", "7z"):
            if size is None:  # a member of another container: read it whole to seek in it
                data = _read_capped(f, budget)
                f, size = io.BytesIO(data), len(data)
            return _zip(name, f, depth, budget) if kind == "zip" else _7z(f, size, depth, budget)
        if kind == "tar":
            return _tar(name, f, depth, budget)
        if kind == "npy":
            return _npy(name, f, size)
        if kind in _COMPRESSIONS:
            return _compressed(name, kind, f, depth, budget)
    except _OverBudget:
        limit = f"{MAX_UNPACKED >> 20} MiB"
        return Found(kind, [unscanned(f"{name} expands beyond {limit}")], archive=True)
    return _content(name, f, size, head)


def _content(name: str, f: BinaryIO, size: int | None, head: bytes) -> Found:
    """Content that is no container: a pickle if it reads as one, else nothing that runs."""
    sure = pickles.is_pickle_start(head) or name.lower().endswith(pickles.SUFFIXES)
    if not sure and not (head and head[0] in pickles.OPCODES):
        return Found()
    scan = pickles.scan_stream(pickles.Stream(f, size), sure=sure)
    if scan is None:
        return Found()
    fmt = "joblib" if scan.imports & pickles.JOBLIB_WRAPPERS else pickles.FORMAT
    if pickles.is_torch_legacy(head):
        fmt = "pytorch-legacy"
    return Found(fmt, scan.findings(), runs_code=True, storages=scan.storages)


def _member(name: str, f: BinaryIO, size: int | None, depth: int, budget: _Budget) -> Found:
    if depth >= MAX_DEPTH and sniff(_peek(f, 512)) is not None:
        return Found(
            findings=[unscanned(f"{name} is nested more than {MAX_DEPTH} containers deep")]
        )
    return _container(name, f, size, depth=depth + 1, budget=budget)


def _merge(into: Found, member: Found, name: str) -> None:
    into.findings += member.findings
    into.runs_code |= member.runs_code
    if member.parameter_count is not None:
        into.parameter_count = (into.parameter_count or 0) + member.parameter_count


# -- zip ---------------------------------------------------------------------------------------


def _zip(name: str, f: BinaryIO, depth: int, budget: _Budget) -> Found:
    try:
        archive = zipfile.ZipFile(f)
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as e:
        # a loader with another zip reader may still open it: nothing inside was checked
        return Found("zip", [unscanned(f"{name} is a zip archive that cannot be read ({e})")])
    if len(infos) > MAX_MEMBERS:
        return Found("zip", [unscanned(f"{name} holds {len(infos)} members, over {MAX_MEMBERS}")])
    names = [i.filename for i in infos]
    found = Found("zip", _zip_disagreements(name, f, infos), archive=True)
    from mlbom.inspectors import keras

    if keras.is_archive(names):
        inspection = keras.inspect_archive(archive, name)
        found.format = inspection.facts.format or found.format
        found.findings += inspection.facts.unsafe_imports
        found.parameter_count = inspection.facts.parameter_count
        found.properties += [
            p for p in inspection.facts.properties if p[0] != "mlbom:unsafe-import"
        ]
        found.runs_code = bool(inspection.facts.unsafe_imports)
        # and every member is still read for what it is (an .npz of weights holds pickles)
    torch = _torch_prefix(names)
    if torch is not None:
        found.format = "pytorch"
        if any(n.startswith(f"{torch}code/") for n in names) or f"{torch}constants.pkl" in names:
            found.format = "torchscript"  # its code runs when the archive is loaded
            found.properties.append(("mlbom:torchscript", "true"))
            found.findings.append("<torchscript code>")
    elif found.format == "zip" and names and all(n.lower().endswith(".npy") for n in names):
        found.format = "npz"
    storages: set[str] = set()
    # the object pickle first: it names the storages, which are raw data, not content
    ordered = sorted(infos, key=lambda i: not i.filename.lower().endswith(".pkl"))
    for info in ordered:
        member_name = info.filename  # a name ending in "/" may still hold bytes: read them
        if info.file_size == 0 == info.compress_size:
            continue  # nothing to read (a local header saying otherwise is a disagreement)
        if info.flag_bits & 0x1:
            found.findings.append(unscanned(f"{name}: member {shown(member_name)} is encrypted"))
            continue
        if info.compress_type not in _ZIP_METHODS:
            found.findings.append(
                unscanned(
                    f"{name}: member {shown(member_name)} uses compression {info.compress_type}"
                )
            )
            continue
        if torch is not None and member_name.removeprefix(f"{torch}data/") in storages:
            continue  # a tensor's bytes, read raw by torch
        try:
            with archive.open(info) as stream:
                member = _member(
                    f"{name}/{member_name}", _capped(stream, budget), None, depth, budget
                )
        except _OverBudget:
            found.findings.append(unscanned(f"{name} expands beyond {MAX_UNPACKED >> 20} MiB"))
            break
        except (
            zipfile.BadZipFile,
            OSError,
            EOFError,
            RuntimeError,
            zlib.error,
            lzma.LZMAError,
            ValueError,
        ) as e:
            found.findings.append(
                unscanned(f"{name}: member {shown(member_name)} cannot be read ({e})")
            )
            continue
        if torch is not None and member_name.lower().endswith(".pkl"):
            storages |= member.storages
        _merge(found, member, member_name)
    return found


def _torch_prefix(names: list[str]) -> str | None:
    """`archive/` when this is a `torch.save` zip: torch reads `<one folder>/data.pkl`."""
    for n in names:
        folder, _, rest = n.partition("/")
        if rest == "data.pkl" or (rest == "constants.pkl" and folder):
            return f"{folder}/"
    return None


def _zip_disagreements(name: str, f: BinaryIO, infos: list[zipfile.ZipInfo]) -> list[str]:
    """Where two readers of this zip would see different members."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    covered: list[tuple[int, int]] = []
    f.seek(0, io.SEEK_END)
    size = f.tell()
    for info in infos:
        folded = info.filename.casefold()
        if folded in seen:
            problems.append(
                f"{name}: two members named {shown(seen[folded])} and {shown(info.filename)}"
            )
        seen[folded] = info.filename
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            problems.append(f"{name}: member {shown(info.filename)} has no local header")
            continue
        (_, _, flags, method, _, _, crc, csize, usize, nlen, xlen) = struct.unpack(
            "<4sHHHHHIIIHH", local
        )
        local_name = f.read(nlen)
        raw_name = info.orig_filename.encode(
            "utf-8" if info.flag_bits & 0x800 else "cp437", "replace"
        )
        if local_name != raw_name:
            problems.append(
                f"{name}: member {shown(info.filename)} is named {shown(local_name.decode('cp437'))} in its local header"
            )
        if method != info.compress_type or (flags ^ info.flag_bits) & 0x1:
            problems.append(
                f"{name}: member {shown(info.filename)}'s local header disagrees on how it is stored"
            )
        if (
            not flags & 0x8
            and (crc, csize, usize) != (info.CRC, info.compress_size, info.file_size)
            and 0xFFFFFFFF not in (csize, usize)
        ):
            problems.append(
                f"{name}: member {shown(info.filename)}'s local header disagrees on its size"
            )
        end = info.header_offset + 30 + nlen + xlen + info.compress_size
        if flags & 0x8:
            end += 16 if _has_descriptor_signature(f, end) else 12
        covered.append((info.header_offset, end))
    covered.sort()
    position = 0
    for start, end in covered:
        if start > position:
            problems.append(f"{name}: {start - position} bytes before {start} belong to no member")
        if start < position:
            problems.append(f"{name}: two members share bytes at {start}")
        position = max(position, end)
    directory = _central_directory_start(f, size)
    if directory is not None and directory > position:
        problems.append(
            f"{name}: {directory - position} bytes before the central directory belong to no member"
        )
    return [unscanned(p) for p in problems[:20]]


def _has_descriptor_signature(f: BinaryIO, at: int) -> bool:
    f.seek(at)
    return f.read(4) == b"PK\x07\x08"


def _central_directory_start(f: BinaryIO, size: int) -> int | None:
    f.seek(max(0, size - (1 << 16) - 22))
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    (offset,) = struct.unpack("<I", tail[at + 16 : at + 20])
    if offset == 0xFFFFFFFF:
        return None  # zip64: zipfile has checked its own locator
    return offset


# -- tar, 7z, compressed streams ---------------------------------------------------------------


def _tar(name: str, f: BinaryIO, depth: int, budget: _Budget) -> Found:
    found = Found("tar", archive=True)
    members: list[str] = []
    try:
        # a stream: any reader will do; a header holding a long name or pax record is capped
        with tarfile.open(fileobj=f, mode="r|", tarinfo=_BoundedTarInfo) as archive:
            for count, info in enumerate(archive):
                if count >= MAX_MEMBERS:
                    found.findings.append(unscanned(f"{name} holds over {MAX_MEMBERS} members"))
                    break
                members.append(info.name)
                if not info.isreg():
                    continue
                extracted = archive.extractfile(info)
                if extracted is None:
                    continue
                member_name = f"{name}/{info.name}"
                if info.name in ("storages", "tensors") and set(members) >= {
                    "sys_info",
                    "pickle",
                } | {info.name}:
                    scan = pickles.PickleScan()
                    pickles.scan_torch_records(
                        _stream(extracted, budget), scan, storages=info.name == "storages"
                    )
                    _merge(found, Found(findings=scan.findings(), runs_code=True), member_name)
                    continue
                _merge(
                    found,
                    _member(member_name, _capped(extracted, budget), None, depth, budget),
                    member_name,
                )
    except _OverBudget:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        found.findings.append(
            unscanned(f"{name} is a tar archive that cannot be read to its end ({e})")
        )
    if {"sys_info", "pickle", "storages", "tensors"} <= set(members):
        found.format = "pytorch-legacy"  # the oldest torch.save layout
    return found


class _BoundedTarInfo(tarfile.TarInfo):
    """A tar header whose long-name or pax record may not make tarfile read megabytes."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED_HEADERS and self.size > _MAX_TAR_HEADER:
            raise tarfile.HeaderError(f"an extended header of {self.size} bytes")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


_EXTENDED_HEADERS = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
                     tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)  # fmt: skip
_MAX_TAR_HEADER = 1 << 20


def _7z(f: BinaryIO, size: int, depth: int, budget: _Budget) -> Found:
    from mlbom.inspectors import sevenzip

    found = Found("7z", archive=True)
    try:
        for member_name, content in sevenzip.members(
            f, size, limit=budget.left, max_members=MAX_MEMBERS
        ):
            budget.take(len(content))
            member = _member(
                member_name, io.BufferedReader(io.BytesIO(content)), len(content), depth, budget
            )
            _merge(found, member, member_name)
    except InspectionError as e:
        found.findings.append(unscanned(e.message))
    return found


def _compressed(name: str, kind: str, f: BinaryIO, depth: int, budget: _Budget) -> Found:
    if kind == "zstd":
        return Found("zstd", [unscanned(f"{name} is zstd-compressed, which mlbom cannot read")])
    try:
        with _decompressing(kind, f, budget) as inner:
            member = _member(name, inner, None, depth, budget)
    except _OverBudget:
        raise
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError, InspectionError) as e:
        reason = e.message if isinstance(e, InspectionError) else str(e)
        return Found(
            kind, [unscanned(f"{name}: the {kind} data cannot be read to its end ({reason})")]
        )
    member.properties.append(("mlbom:compression", kind.removeprefix("joblib-")))
    if member.format is None:
        member.format = kind
    return member


@contextmanager
def _decompressing(kind: str, f: BinaryIO, budget: _Budget) -> Iterator[BinaryIO]:
    # closed in the finally below, whichever of them it is
    stream: BinaryIO
    if kind == "gzip":
        stream = gzip.GzipFile(fileobj=f)  # type: ignore[assignment]
    elif kind == "bzip2":
        stream = bz2.BZ2File(f)  # type: ignore[assignment]
    elif kind in ("xz", "lzma"):
        stream = lzma.LZMAFile(f)  # type: ignore[assignment]  # noqa: SIM115
    elif kind == "lz4":
        from mlbom.inspectors import lz4frame

        stream = io.BytesIO(lz4frame.decompress(f, limit=max(0, budget.left)))
    else:
        if kind == "joblib-zfile":
            f.read(2 + 19)  # "ZF", then the length in hex padded to 19 characters
        stream = _ZlibReader(f)  # type: ignore[assignment]
    try:
        yield _capped(stream, budget)
    finally:
        stream.close()


class _ZlibReader(io.RawIOBase):
    """A zlib stream decompressed as it is read, never more than asked for."""

    def __init__(self, f: BinaryIO) -> None:
        super().__init__()
        self._f, self._z, self._pending = f, zlib.decompressobj(), b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        while True:
            if self._z.unconsumed_tail:
                data = self._z.decompress(self._z.unconsumed_tail, len(buffer))
            elif self._z.eof:
                return 0
            else:
                chunk = self._f.read(1 << 16)
                if not chunk:
                    raise EOFError("the compressed data ends early")
                data = self._z.decompress(chunk, len(buffer))
            if data:
                buffer[: len(data)] = data
                return len(data)


class _Capped(io.RawIOBase):
    """A stream that counts what it yields against the file's decompression budget."""

    def __init__(self, inner: IO[bytes], budget: _Budget) -> None:
        super().__init__()
        self._inner, self._budget = inner, budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        self._budget.take(len(data))
        buffer[: len(data)] = data
        return len(data)


def _capped(stream: IO[bytes], budget: _Budget) -> BinaryIO:
    return io.BufferedReader(_Capped(stream, budget), 1 << 16)  # type: ignore[type-var]


def _stream(f: IO[bytes], budget: _Budget) -> pickles.Stream:
    return pickles.Stream(_capped(f, budget), None)


def _read_capped(f: BinaryIO, budget: _Budget) -> bytes:
    data = f.read(MAX_IN_MEMORY + 1)
    if len(data) > MAX_IN_MEMORY:
        raise _OverBudget
    return data


def _peek(f: BinaryIO, n: int) -> bytes:
    if hasattr(f, "peek"):
        return f.peek(n)[:n]
    here = f.tell()
    data = f.read(n)
    f.seek(here)
    return data


# -- NumPy ---------------------------------------------------------------------------------------


def _npy(name: str, f: BinaryIO, size: int | None) -> Found:
    """`.npy`: a header dict, then raw data, or a pickle when the dtype holds objects."""
    preamble = f.read(10)
    major = preamble[6] if len(preamble) > 6 else 0
    if major == 1:
        (length,) = struct.unpack("<H", preamble[8:10])
    elif major in (2, 3) and len(preamble) == 10:
        (length,) = struct.unpack("<I", preamble[8:10] + f.read(2))
    else:
        return Found("numpy", [unscanned(f"{name}: NumPy format version {major} is unknown")])
    if length > MAX_NPY_HEADER:
        return Found(
            "numpy", [unscanned(f"{name}: its NumPy header is over {MAX_NPY_HEADER} bytes")]
        )
    text = f.read(length).decode("latin-1" if major < 3 else "utf-8", "replace")
    try:
        header = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        header = None
    if not isinstance(header, dict) or "descr" not in header or "shape" not in header:
        return Found("numpy", [unscanned(f"{name}: its NumPy header cannot be read")])
    shape = header["shape"]
    params = None
    if (
        isinstance(shape, tuple)
        and len(shape) <= 64
        and all(type(d) is int and 0 <= d < 1 << 48 for d in shape)
    ):
        params = math.prod(shape)
    if not _holds_objects(header["descr"]):
        return Found("numpy", parameter_count=params)
    # numpy.load(allow_pickle=True) unpickles the rest of the file
    scan = pickles.scan_stream(pickles.Stream(f, size), sure=True)
    findings = scan.findings() if scan else [unscanned(f"{name}: its object array is not a pickle")]
    return Found("numpy", findings, runs_code=True)


def _holds_objects(descr: object) -> bool:
    """What numpy.load decides: the dtype numpy builds from the header (`"object"`,
    `"(2,)O"`, `"u1,O"`, nested fields all hold objects); one it cannot build, assumed to."""
    from numpy.lib.format import descr_to_dtype

    try:
        return bool(descr_to_dtype(descr).hasobject)  # type: ignore[arg-type]
    except (TypeError, ValueError, KeyError, RecursionError, SyntaxError):
        return True
