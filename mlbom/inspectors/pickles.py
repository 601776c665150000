"""Pickle-based weights (PyTorch `.bin/.pt/.pth/.ckpt`, plain `.pkl`): the globals a pickle
imports, read opcode by opcode without ever unpickling.

Loading a pickle runs whatever callables it imports, so every imported global outside a
small allowlist of tensor-rebuilding helpers is reported as `mlbom:unsafe-import`.
Payloads (tensor bytes, long strings) are skipped, not read, and a PyTorch zip is read
member by member with a cap on what is decompressed, so archive bombs stay harmless.
"""

from __future__ import annotations

import _compat_pickle
import pickletools
import struct
import zipfile
from typing import BinaryIO

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection
from mlbom.models import FileFacts
from mlbom.sources import Blob

FORMAT = "pickle"
EXECUTABLE = True  # loading a pickle runs the code it names
SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib")
MAX_MEMBER = 256 << 20  # decompressed bytes read from one zip member
MAX_MEMBERS = 100_000
MAX_OPCODES = 20_000_000
MAX_PICKLES = 8  # legacy torch.save files hold a few pickles back to back
_MAX_STRING = 4096  # longer strings cannot be module or attribute names we care about

SAFE_GLOBALS = frozenset(
    {
        *(f"builtins.{n}" for n in ("set", "frozenset", "slice", "range", "complex", "bytearray",
                                     "bytes", "dict", "list", "tuple", "int", "float", "bool", "str")),
        "collections.OrderedDict", "collections.defaultdict", "collections.Counter",
        "copyreg._reconstructor", "_codecs.encode",
        *(f"torch._utils.{n}" for n in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3",
                                        "_rebuild_parameter", "_rebuild_parameter_with_state",
                                        "_rebuild_qtensor", "_rebuild_sparse_tensor",
                                        "_rebuild_meta_tensor_no_storage", "_rebuild_wrapper_subclass",
                                        "_rebuild_device_tensor_from_numpy")),
        "torch._tensor._rebuild_from_type_v2", "torch.serialization._get_layout",
        "torch.Size", "torch.device", "torch.Tensor", "torch.nn.parameter.Parameter",
        "torch.storage.UntypedStorage", "torch.storage.TypedStorage",
        *(f"torch.{n}Storage" for n in ("Float", "Half", "BFloat16", "Double", "Long", "Int", "Short",
                                        "Char", "Byte", "Bool", "ComplexFloat", "ComplexDouble",
                                        "QInt8", "QUInt8", "QInt32", "Untyped")),
        *(f"torch.{n}" for n in ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16",
                                 "int8", "uint8", "bool", "complex64", "complex128", "float8_e4m3fn",
                                 "float8_e5m2", "strided", "sparse_coo", "per_tensor_affine",
                                 "per_channel_affine", "contiguous_format", "channels_last")),
        *(f"{m}.{n}" for m in ("numpy.core.multiarray", "numpy._core.multiarray")
          for n in ("_reconstruct", "scalar")),
        "numpy.ndarray", "numpy.dtype",
    }
)  # fmt: skip

# opcode byte -> (name, argument size code from pickletools: >= 0 fixed, < 0 variable)
_OPS = {
    op.code.encode("latin-1"): (op.name, op.arg.n if op.arg else 0) for op in pickletools.opcodes
}
_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
     "SHORT_BINSTRING"}
)  # fmt: skip
_LENGTH_PREFIX = {
    pickletools.TAKEN_FROM_ARGUMENT1: "<B",
    pickletools.TAKEN_FROM_ARGUMENT4: "<i",
    pickletools.TAKEN_FROM_ARGUMENT4U: "<I",
    pickletools.TAKEN_FROM_ARGUMENT8U: "<Q",
}
_UNKNOWN = object()  # a stack value the scanner does not track


def matches(path: str) -> bool:
    return path.lower().endswith(SUFFIXES)


def inspect(blob: Blob, context: Context) -> Inspection:
    with blob.open() as f:
        head = f.read(4)
        f.seek(0)
        if head == b"PK\x03\x04":
            facts = _scan_zip(f, blob)
        else:
            facts = FileFacts(format=FORMAT, executable=True)
            # `.bin` is also raw weights (OpenVINO, old ggml): not being a pickle is fine there
            imports = _scan_stream(f, blob.path, lenient=blob.path.endswith(".bin"))
            if imports is None:
                return Inspection(FileFacts(format="binary"))
            facts.unsafe_imports = _unsafe(imports)
    facts.properties += [("mlbom:unsafe-import", g) for g in facts.unsafe_imports]
    return Inspection(facts)


def _unsafe(imports: set[str]) -> list[str]:
    return sorted(g for g in imports if g not in SAFE_GLOBALS)[:200]


def _scan_zip(f: BinaryIO, blob: Blob) -> FileFacts:
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, ValueError) as e:
        raise InspectionError(f"{blob.path}: corrupt or unsupported zip archive ({e})") from e
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise InspectionError(
            f"{blob.path}: archive holds {len(members)} members, too many to scan"
        )
    names = [m.filename for m in members]
    torchscript = any("/code/" in f"/{n}" for n in names)
    facts = FileFacts(
        format="torchscript" if torchscript else "pytorch",
        executable=True,
        archive=True,
        structured=True,
    )
    if torchscript:
        facts.properties.append(("mlbom:torchscript", "true"))
    imports: set[str] = set()
    for member in members:
        if not member.filename.endswith(".pkl"):
            continue
        try:
            with archive.open(member) as stream:
                found = _scan_stream(_Capped(stream, blob.path), blob.path)
        except (zipfile.BadZipFile, RuntimeError, OSError) as e:
            raise InspectionError(f"{blob.path}: cannot read {member.filename} ({e})") from e
        if found is None:
            raise InspectionError(f"{blob.path}: {member.filename} is not a pickle")
        imports |= found
    facts.unsafe_imports = _unsafe(imports)
    return facts


class _Capped:
    """A forward-only reader that refuses to decompress more than MAX_MEMBER bytes."""

    def __init__(self, stream: BinaryIO, path: str) -> None:
        self._stream, self._path, self._read = stream, path, 0

    def read(self, n: int) -> bytes:
        if self._read + n > MAX_MEMBER:
            raise InspectionError(
                f"{self._path}: a pickle in the archive is over {MAX_MEMBER >> 20} MiB"
            )
        data = self._stream.read(n)
        self._read += len(data)
        return data

    def readline(self, limit: int) -> bytes:
        data = self._stream.readline(limit)
        self._read += len(data)
        return data


def _scan_stream(f: BinaryIO | _Capped, path: str, *, lenient: bool = False) -> set[str] | None:
    """The globals imported by the pickles at the start of `f`; None when it is not a
    pickle at all (with `lenient`, also when the first one does not parse)."""
    imports: set[str] = set()
    for index in range(MAX_PICKLES):
        first = f.read(1)
        if not first:
            break
        if index > 0 and first != b"\x80":
            break  # raw storage data after the pickles of a legacy torch.save file
        if first not in _OPS:
            return None if index == 0 else imports
        try:
            imports |= _scan_one(f, first, path)
        except InspectionError:
            if index == 0 and lenient:
                return None
            raise
    return imports


def _scan_one(f: BinaryIO | _Capped, first: bytes, path: str) -> set[str]:
    imports: set[str] = set()
    memo: dict[int, object] = {}
    recent: list[object] = []  # the values most recently pushed, enough for STACK_GLOBAL
    protocol = 0
    code = first
    for _ in range(MAX_OPCODES):
        if code not in _OPS:
            raise InspectionError(f"{path}: corrupt pickle (unknown opcode {code!r})")
        name, n = _OPS[code]
        if name in ("GLOBAL", "INST"):
            module = _line(f, path).decode("utf-8", "replace")
            attr = _line(f, path).decode("utf-8", "replace")
            imports.add(_resolve(module, attr, protocol))
            recent.append(_UNKNOWN)
        elif name == "STACK_GLOBAL":
            module, attr = (recent[-2], recent[-1]) if len(recent) >= 2 else (_UNKNOWN, _UNKNOWN)
            if isinstance(module, str) and isinstance(attr, str):
                imports.add(_resolve(module, attr, protocol))
            else:
                imports.add("<dynamic>.<dynamic>")  # names built at load time: never safe
            recent.append(_UNKNOWN)
        elif name in ("EXT1", "EXT2", "EXT4"):
            _fixed(f, n, path)
            imports.add("<copyreg-extension>.<registered>")
            recent.append(_UNKNOWN)
        elif name in _STRING_OPS:
            recent.append(_string(f, n, path))
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            key = _memo_key(f, n, path)
            memo[key] = recent[-1] if recent else _UNKNOWN
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else _UNKNOWN
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            recent.append(memo.get(_memo_key(f, n, path), _UNKNOWN))
        elif name == "PROTO":
            protocol = _fixed(f, 1, path)[0]
        elif name == "STOP":
            return imports
        else:
            _skip_argument(f, n, path)
            recent.append(_UNKNOWN)
        del recent[:-16]
        code = f.read(1)
        if not code:
            raise InspectionError(f"{path}: truncated pickle (no STOP opcode)")
    raise InspectionError(f"{path}: pickle has more than {MAX_OPCODES} opcodes")


def _resolve(module: str, name: str, protocol: int) -> str:
    """The global as Python 3 will import it: protocols 0-2 name Python 2 modules, which
    the unpickler maps (`__builtin__.eval` is `builtins.eval`)."""
    if protocol < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def _line(f: BinaryIO | _Capped, path: str) -> bytes:
    """A text argument; only its first _MAX_STRING bytes are kept."""
    first = line = f.readline(_MAX_STRING)
    while not line.endswith(b"\n"):
        line = f.readline(1 << 20)
        if not line:
            raise InspectionError(f"{path}: corrupt pickle (unterminated text argument)")
    return first.removesuffix(b"\n")


def _fixed(f: BinaryIO | _Capped, n: int, path: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise InspectionError(f"{path}: truncated pickle")
    return data


def _length(f: BinaryIO | _Capped, n: int, path: str) -> int:
    fmt = _LENGTH_PREFIX[n]
    (length,) = struct.unpack(fmt, _fixed(f, struct.calcsize(fmt), path))
    if length < 0:
        raise InspectionError(f"{path}: corrupt pickle (negative length)")
    return length


def _string(f: BinaryIO | _Capped, n: int, path: str) -> object:
    if n == pickletools.UP_TO_NEWLINE:
        return _line(f, path).decode("utf-8", "replace").strip("'\"")
    length = _length(f, n, path)
    if length > _MAX_STRING:
        _skip(f, length, path)
        return _UNKNOWN
    return _fixed(f, length, path).decode("utf-8", "replace")


def _memo_key(f: BinaryIO | _Capped, n: int, path: str) -> int:
    if n == pickletools.UP_TO_NEWLINE:
        text = _line(f, path)
        return int(text) if text.isdigit() else -1
    return int.from_bytes(_fixed(f, n, path), "little")


def _skip_argument(f: BinaryIO | _Capped, n: int, path: str) -> None:
    if n > 0:
        _fixed(f, n, path)
    elif n == pickletools.UP_TO_NEWLINE:
        _line(f, path)
    elif n < 0:
        _skip(f, _length(f, n, path), path)


def _skip(f: BinaryIO | _Capped, length: int, path: str) -> None:
    """Move past a payload without holding it: seek on files, read in pieces on streams."""
    if isinstance(f, _Capped):
        while length > 0:
            piece = f.read(min(length, 1 << 20))
            if not piece:
                raise InspectionError(f"{path}: truncated pickle")
            length -= len(piece)
        return
    here = f.tell()
    end = f.seek(0, 2)
    if here + length > end:
        raise InspectionError(f"{path}: truncated pickle (a payload runs past the end)")
    f.seek(here + length)
