"""Pickles, wherever they are: the globals a pickle imports, read opcode by opcode as
CPython's unpickler reads them, without ever unpickling.

Loading a pickle runs whatever callables it imports, so every imported global outside a
small allowlist of tensor-rebuilding helpers is reported as `mlbom:unsafe-import`. The
scanner is a model of the C unpickler (`Modules/_pickle.c`): the same argument parsing for
every opcode (escape decoding of `STRING`, `int()` of memo keys, Python 2 names mapped
below protocol 3), the same stack with marks and the same memo, so that a name built on
the stack or fetched from the memo is the name CPython would import. A pickle it cannot
read to the end is *unscanned*, which counts as unsafe.

File layouts around pickles: plain pickle files (one or several pickles back to back,
any protocol), the legacy `torch.save` stream (five pickles, then raw storages) and its
tar form, and joblib files, whose arrays sit between the opcodes of the pickle.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import io
import math
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from mlbom.inspectors import Context, Inspection, flag, plain_facts, unscanned
from mlbom.models import FileFacts
from mlbom.sources import Blob

FORMAT = "pickle"
EXECUTABLE = True  # loading a pickle runs the code it names
# Names that say "pickle" even when the content's first bytes are not conclusive.
SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt", ".sav", ".pdparams",
            ".pdopt", ".dill", ".npy_pickle")  # fmt: skip
MAX_OPCODES = 2_000_000  # real checkpoints' pickles hold tens of thousands
MAX_STACK = 1_000_000
MAX_MEMO = 1_000_000
MAX_PICKLES = 64  # back to back in one file
_MAX_STRING = 4096  # longer strings cannot be module or attribute names we care about
_MAX_NUMBER = 1 << 16  # digits of a text number argument (memo keys, INT, LONG, FLOAT)
MAX_IMPORTS = 10_000  # distinct globals one file may import
_MAX_TUPLE = 64  # tuples kept with their items (shapes, dtype arguments)
_MAX_DICT = 64
_MAX_DIMS = 64
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_PICKLES = 5  # magic, protocol version, sys_info, the object, storage keys

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
        # joblib's array wrapper: the array it announces is read as data (see _joblib_array);
        # not joblib < 0.10's NDArrayWrapper, which loads another file by its path
        "joblib.numpy_pickle.NumpyArrayWrapper",
    }
)  # fmt: skip

# bytes per element of the legacy torch storage types
_STORAGE_BYTES = {"Float": 4, "Half": 2, "BFloat16": 2, "Double": 8, "Long": 8, "Int": 4,
                  "Short": 2, "Char": 1, "Byte": 1, "Bool": 1, "ComplexFloat": 8,
                  "ComplexDouble": 16, "QInt8": 1, "QUInt8": 1, "QInt32": 4}  # fmt: skip
JOBLIB_WRAPPERS = frozenset(
    {
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
    }
)


class PickleError(Exception):
    """The unpickler would stop here: `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- values on the modelled stack ----------------------------------------------------------


@dataclass(eq=False)
class Global:
    """An imported object."""

    name: str


@dataclass(eq=False)
class Call:
    """What calling an imported object returns; `state` is what BUILD gave it."""

    func: object
    args: object
    state: object = None


@dataclass(eq=False)
class Dict:
    """A dict with its first string keys kept (joblib's wrapper state is one); `overflow`
    when it got more keys than kept, so that what it holds is not known."""

    items: dict[str, object] = field(default_factory=dict)
    overflow: bool = False


_UNKNOWN = object()  # a value the scanner does not keep (a long string, a list, ...)


# -- reading --------------------------------------------------------------------------------


class Stream:
    """A binary reader with the file's end known when it is seekable: payloads are skipped
    with a seek there, read and dropped in pieces elsewhere (a zip member, a decompressor)."""

    def __init__(self, f: BinaryIO, size: int | None = None) -> None:
        self.f, self.size = f, size
        self.read = f.read
        self.readline = f.readline

    def tell(self) -> int:
        return self.f.tell()

    def peek(self) -> bytes:
        """The next byte, left unread."""
        if self.size is not None:
            byte = self.f.read(1)
            if byte:
                self.f.seek(-1, 1)
            return byte
        return self.f.peek(1)[:1]  # type: ignore[attr-defined]  # buffered streams

    def exactly(self, n: int) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise PickleError("truncated (the data ends inside an opcode)")
        return data

    def line(self) -> bytes:
        """A newline-terminated argument without its newline; long ones are cut to
        _MAX_STRING (no name we compare is longer) but read to their end."""
        first = line = self.readline(_MAX_STRING)
        while not line.endswith(b"\n"):
            line = self.readline(1 << 20)
            if not line:
                raise PickleError("truncated (a text argument has no newline)")
        return first.removesuffix(b"\n")

    def whole_line(self) -> bytes:
        """A newline-terminated number argument, all of it: CPython reads every digit."""
        line = self.readline(_MAX_NUMBER + 1)
        if not line.endswith(b"\n"):
            raise PickleError(
                "truncated (a text argument has no newline)"
                if len(line) <= _MAX_NUMBER
                else f"a number argument is longer than {_MAX_NUMBER} bytes"
            )
        return line[:-1]

    def skip(self, n: int) -> None:
        if self.size is not None:
            here = self.f.tell()
            if here + n > self.size:
                raise PickleError("truncated (a payload runs past the end)")
            self.f.seek(here + n)
            return
        while n > 0:
            piece = self.read(min(n, 1 << 20))
            if not piece:
                raise PickleError("truncated (a payload runs past the end)")
            n -= len(piece)


# -- the unpickler model ---------------------------------------------------------------------


@dataclass
class PickleScan:
    """What a file's pickles import, and what could not be read."""

    imports: set[str] = field(default_factory=set)
    unscanned: list[str] = field(default_factory=list)
    storages: set[str] = field(default_factory=set)  # torch's persistent ids: raw tensor data

    def findings(self) -> list[str]:
        unsafe = sorted(g for g in self.imports if g not in SAFE_GLOBALS)[:200]
        return unsafe + [unscanned(r) for r in dict.fromkeys(self.unscanned)][:20]

    def add(self, other: PickleScan) -> None:
        self.imports |= other.imports
        self.unscanned += other.unscanned
        self.storages |= other.storages


class Machine:
    """One `pickle.load` call: a fresh stack and memo, as each load of CPython has."""

    def __init__(
        self, stream: Stream, scan: PickleScan, *, sure: bool = True, joblib: bool = False
    ) -> None:
        self.s, self.scan, self.sure, self.joblib = stream, scan, sure, joblib
        self.stack: list[object] = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.proto = 0
        self.imported_any = False  # an import or call was seen: this is a pickle, not noise

    # stack primitives, with CPython's fence: what lies below the last MARK is out of reach
    def push(self, value: object) -> None:
        self.stack.append(value)

    def pop(self) -> object:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise PickleError("stack underflow")
        return self.stack.pop()

    def top(self) -> object:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise PickleError("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[object]:
        if not self.marks:
            raise PickleError("could not find MARK")
        at = self.marks.pop()
        items = self.stack[at:]
        del self.stack[at:]
        return items

    def run(self) -> object:
        """Read one pickle to its STOP and return its value (as far as it is kept)."""
        read, ops, stack = self.s.read, _HANDLERS, self.stack
        for _ in range(MAX_OPCODES):
            code = read(1)
            if not code:
                raise PickleError("truncated (no STOP opcode)")
            handler = ops.get(code[0])
            if handler is None:
                raise PickleError(f"unknown opcode {code!r}")
            if handler is _stop:
                return self.pop()
            handler(self)
            if len(stack) > MAX_STACK:
                raise PickleError(f"its stack grows beyond {MAX_STACK} items")
        raise PickleError(f"it has more than {MAX_OPCODES} opcodes")

    def imported(self, module: str, name: str) -> Global:
        """`Unpickler.find_class`: Python 2 names mapped below protocol 3."""
        if self.proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{module}.{name}"
        if not self.sure and not all(p.isidentifier() for p in full.split(".")):
            # text that happens to start like a pickle: no importable name, no pickle
            raise PickleError(f"{full[:80]!r} is not an importable name")
        full = full if len(full) <= 300 else full[:300] + "…"  # never an allowlisted name
        self.scan.imports.add(full)
        if len(self.scan.imports) > MAX_IMPORTS:
            raise PickleError(f"it imports more than {MAX_IMPORTS} distinct globals")
        self.imported_any = True
        return Global(full)

    def memo_key(self, text: bytes) -> int:
        try:
            key = int(text)  # PyLong_FromString: signs, spaces and underscores as int() reads
        except ValueError:
            raise PickleError(f"memo key {text[:20]!r} is not a number") from None
        if key < 0:
            raise PickleError("negative memo key")
        return key

    def put(self, key: int) -> None:
        self.memo[key] = self.top()
        if len(self.memo) > MAX_MEMO:
            raise PickleError(f"its memo grows beyond {MAX_MEMO} entries")

    def get(self, key: int) -> None:
        if key not in self.memo:
            raise PickleError(f"memo value not found at index {key}")
        self.push(self.memo[key])

    def string(self, data: bytes, how: str) -> object:
        if len(data) > _MAX_STRING:
            return _UNKNOWN
        try:
            return data.decode(how, "surrogatepass" if how == "utf-8" else "strict")
        except UnicodeDecodeError:
            raise PickleError("a string is not valid text") from None

    def length(self, fmt: str) -> int:
        (n,) = struct.unpack(fmt, self.s.exactly(struct.calcsize(fmt)))
        if n < 0:
            raise PickleError("negative length")
        return n

    def counted(self, fmt: str, how: str | None) -> object:
        """A length-prefixed payload: kept when short, skipped when long."""
        n = self.length(fmt)
        if n > _MAX_STRING:
            self.s.skip(n)
            return _UNKNOWN
        data = self.s.exactly(n)
        return data if how is None else self.string(data, how)


def _call(m: Machine, func: object, args: object) -> None:
    if func is _UNKNOWN:
        m.scan.imports.add("<dynamic>.<call>")  # a callable the scanner did not keep
    elif not isinstance(func, Global | Call):
        raise PickleError(f"calling a {type(func).__name__}, which is not callable")
    m.imported_any = True
    m.push(Call(func, args))


def _items(values: list[object]) -> object:
    return tuple(values) if len(values) <= _MAX_TUPLE else _UNKNOWN


# Handlers, one per opcode, named as pickletools names them.
def _int(m: Machine) -> None:
    text = m.s.whole_line()
    try:
        m.push(bool(int(text)) if text in (b"00", b"01") else int(text, 0))
    except ValueError:
        try:
            m.push(int(text))
        except ValueError:
            raise PickleError("INT argument is not a number") from None


def _binint(m: Machine) -> None:
    m.push(struct.unpack("<i", m.s.exactly(4))[0])


def _binint1(m: Machine) -> None:
    m.push(m.s.exactly(1)[0])


def _binint2(m: Machine) -> None:
    m.push(struct.unpack("<H", m.s.exactly(2))[0])


def _long(m: Machine) -> None:
    text = m.s.whole_line().removesuffix(b"L")
    try:
        m.push(int(text, 0) if len(text) < 5000 else _UNKNOWN)
    except ValueError:
        raise PickleError("LONG argument is not a number") from None


def _long1(m: Machine) -> None:
    m.push(int.from_bytes(m.s.exactly(m.s.exactly(1)[0]), "little", signed=True))


def _long4(m: Machine) -> None:
    n = m.length("<i")
    if n > 5000:
        m.s.skip(n)
        m.push(_UNKNOWN)
    else:
        m.push(int.from_bytes(m.s.exactly(n), "little", signed=True))


def _string(m: Machine) -> None:
    text = m.s.line()
    if len(text) < 2 or text[0] != text[-1] or text[:1] not in (b"'", b'"'):
        raise PickleError("the STRING opcode argument must be quoted")
    try:
        data = codecs.escape_decode(text[1:-1])[0]
    except ValueError:
        raise PickleError("STRING argument has a bad escape") from None
    m.push(m.string(data, "latin-1"))


def _binstring(m: Machine) -> None:
    m.push(m.counted("<i", "latin-1"))


def _short_binstring(m: Machine) -> None:
    m.push(m.counted("<B", "latin-1"))


def _binbytes(m: Machine) -> None:
    m.push(m.counted("<I", None))


def _short_binbytes(m: Machine) -> None:
    m.push(m.counted("<B", None))


def _binbytes8(m: Machine) -> None:
    m.push(m.counted("<Q", None))


def _unicode(m: Machine) -> None:
    text = m.s.line()
    if len(text) > _MAX_STRING:
        m.push(_UNKNOWN)
        return
    try:
        m.push(text.decode("raw-unicode-escape"))
    except UnicodeDecodeError:
        raise PickleError("UNICODE argument has a bad escape") from None


def _short_binunicode(m: Machine) -> None:
    m.push(m.counted("<B", "utf-8"))


def _binunicode(m: Machine) -> None:
    m.push(m.counted("<I", "utf-8"))


def _binunicode8(m: Machine) -> None:
    m.push(m.counted("<Q", "utf-8"))


def _float(m: Machine) -> None:
    text = m.s.whole_line()
    try:
        m.push(float(text))
    except ValueError:
        raise PickleError("FLOAT argument is not a number") from None


def _binfloat(m: Machine) -> None:
    m.push(struct.unpack(">d", m.s.exactly(8))[0])


def _none(m: Machine) -> None:
    m.push(None)


def _newtrue(m: Machine) -> None:
    m.push(True)


def _newfalse(m: Machine) -> None:
    m.push(False)


def _empty(m: Machine) -> None:
    m.push(_UNKNOWN)  # a list or set: their items never name a global


def _empty_dict(m: Machine) -> None:
    m.push(Dict())


def _empty_tuple(m: Machine) -> None:
    m.push(())


def _append(m: Machine) -> None:
    m.pop()
    m.top()


def _appends(m: Machine) -> None:
    m.pop_mark()
    m.top()


def _list(m: Machine) -> None:
    m.pop_mark()
    m.push(_UNKNOWN)


def _tuple(m: Machine) -> None:
    m.push(_items(m.pop_mark()))


def _tuple1(m: Machine) -> None:
    m.push((m.pop(),))


def _tuple2(m: Machine) -> None:
    b, a = m.pop(), m.pop()
    m.push((a, b))


def _tuple3(m: Machine) -> None:
    c, b, a = m.pop(), m.pop(), m.pop()
    m.push((a, b, c))


def _set_pairs(target: object, values: list[object]) -> None:
    if isinstance(target, Dict):
        for key, value in zip(values[::2], values[1::2], strict=False):
            if isinstance(key, str) and (key in target.items or len(target.items) < _MAX_DICT):
                target.items[key] = value  # the last write wins, as in a dict
            else:
                target.overflow = True


def _dict(m: Machine) -> None:
    values = m.pop_mark()
    if len(values) % 2:
        raise PickleError("odd number of items for DICT")
    d = Dict()
    _set_pairs(d, values)
    m.push(d)


def _setitem(m: Machine) -> None:
    value, key = m.pop(), m.pop()
    _set_pairs(m.top(), [key, value])


def _setitems(m: Machine) -> None:
    values = m.pop_mark()
    if len(values) % 2:
        raise PickleError("odd number of items for SETITEMS")
    _set_pairs(m.top(), values)


def _additems(m: Machine) -> None:
    m.pop_mark()
    m.top()


def _frozenset(m: Machine) -> None:
    m.pop_mark()
    m.push(_UNKNOWN)


def _pop(m: Machine) -> None:
    if m.marks and m.marks[-1] == len(m.stack):
        m.marks.pop()  # CPython pops the mark when the stack is at it
    else:
        m.pop()


def _dup(m: Machine) -> None:
    m.push(m.top())


def _mark(m: Machine) -> None:
    m.marks.append(len(m.stack))


def _pop_mark(m: Machine) -> None:
    m.pop_mark()


def _get(m: Machine) -> None:
    text = m.s.whole_line()
    m.get(m.memo_key(text))


def _binget(m: Machine) -> None:
    m.get(m.s.exactly(1)[0])


def _long_binget(m: Machine) -> None:
    m.get(struct.unpack("<I", m.s.exactly(4))[0])


def _put(m: Machine) -> None:
    m.put(m.memo_key(m.s.whole_line()))


def _binput(m: Machine) -> None:
    m.put(m.s.exactly(1)[0])


def _long_binput(m: Machine) -> None:
    m.put(struct.unpack("<I", m.s.exactly(4))[0])


def _memoize(m: Machine) -> None:
    m.put(len(m.memo))


def _ext(size: int):  # noqa: ANN202
    def extension(m: Machine) -> None:
        code = int.from_bytes(m.s.exactly(size), "little")
        m.scan.imports.add(f"<copyreg-extension>.{code}")  # what the registry maps it to
        m.imported_any = True
        m.push(Global(f"<copyreg-extension>.{code}"))

    return extension


def _text_name(m: Machine) -> str:
    try:
        return m.s.line().decode("utf-8")
    except UnicodeDecodeError:
        raise PickleError("a module or class name is not UTF-8") from None


def _global(m: Machine) -> None:
    module = _text_name(m)
    name = _text_name(m)
    m.push(m.imported(module, name))


def _stack_global(m: Machine) -> None:
    name, module = m.pop(), m.pop()
    if type(name) is not str or type(module) is not str:
        if (
            name is _UNKNOWN
            or module is _UNKNOWN
            or isinstance(name, Call | Global)
            or isinstance(module, Call | Global)
        ):
            m.scan.imports.add("<dynamic>.<dynamic>")  # names built at load time: never safe
            m.imported_any = True
            m.push(Global("<dynamic>.<dynamic>"))
            return
        raise PickleError("STACK_GLOBAL requires str")
    m.push(m.imported(module, name))


def _reduce(m: Machine) -> None:
    args, func = m.pop(), m.pop()
    _call(m, func, args)


def _build(m: Machine) -> None:
    state = m.pop()
    target = m.top()
    if isinstance(target, Global):
        # BUILD on an imported object itself (not an instance) rewrites its attributes
        m.scan.imports.add(f"<attribute write>.{target.name}")
    elif isinstance(target, Call):
        target.state = state
        if m.joblib and _joblib_class(target) in JOBLIB_WRAPPERS:
            _joblib_array(m, target)


def _inst(m: Machine) -> None:
    args = _items(m.pop_mark())  # CPython finds the mark before it reads the names
    module = _text_name(m)
    name = _text_name(m)
    _call(m, m.imported(module, name), args)


def _obj(m: Machine) -> None:
    items = m.pop_mark()
    if not items:
        raise PickleError("OBJ without a class")
    _call(m, items[0], _items(items[1:]))


def _newobj(m: Machine) -> None:
    args, cls = m.pop(), m.pop()
    _call(m, cls, args)


def _newobj_ex(m: Machine) -> None:
    _kwargs, args, cls = m.pop(), m.pop(), m.pop()
    _call(m, cls, args)


def _persid(m: Machine) -> None:
    _persistent(m)
    m.s.line()
    m.push(Call(Global("<persistent_load>"), _UNKNOWN))


def _persistent(m: Machine) -> None:
    """Only a loader with a persistent_load (torch's) reads on; plain pickle.load stops
    here, so in bytes not known to be a pickle (a zip starts "PK") this is the end."""
    if not m.sure:
        raise PickleError("a persistent id, which only a loader's persistent_load reads")


def _binpersid(m: Machine) -> None:
    _persistent(m)
    pid = m.pop()
    # torch: ("storage", storage type, key, location, size); the key names a zip member
    if isinstance(pid, tuple) and len(pid) > 2 and isinstance(pid[2], str):
        m.scan.storages.add(pid[2])
    m.push(Call(Global("<persistent_load>"), _UNKNOWN))


def _proto(m: Machine) -> None:
    proto = m.s.exactly(1)[0]
    if proto > 5:
        raise PickleError(f"unsupported pickle protocol {proto}")
    m.proto = proto


def _frame(m: Machine) -> None:
    m.s.exactly(8)  # frames only group opcodes for buffering


def _buffer(m: Machine) -> None:
    raise PickleError("out-of-band buffers (NEXT_BUFFER) are not in the file")


def _readonly_buffer(m: Machine) -> None:
    m.top()


def _bytearray8(m: Machine) -> None:
    m.push(m.counted("<Q", None))


def _stop(m: Machine) -> None:  # handled in Machine.run
    raise AssertionError


_HANDLERS = {
    ord(code): handler
    for code, handler in {
        "I": _int, "J": _binint, "K": _binint1, "M": _binint2, "L": _long, "\x8a": _long1,
        "\x8b": _long4, "S": _string, "T": _binstring, "U": _short_binstring, "B": _binbytes,
        "C": _short_binbytes, "\x8e": _binbytes8, "\x96": _bytearray8, "\x97": _buffer,
        "\x98": _readonly_buffer, "N": _none, "\x88": _newtrue, "\x89": _newfalse,
        "V": _unicode, "\x8c": _short_binunicode, "X": _binunicode, "\x8d": _binunicode8,
        "F": _float, "G": _binfloat, "]": _empty, "a": _append, "e": _appends, "l": _list,
        ")": _empty_tuple, "t": _tuple, "\x85": _tuple1, "\x86": _tuple2, "\x87": _tuple3,
        "}": _empty_dict, "d": _dict, "s": _setitem, "u": _setitems, "\x8f": _empty,
        "\x90": _additems, "\x91": _frozenset, "0": _pop, "2": _dup, "(": _mark,
        "1": _pop_mark, "g": _get, "h": _binget, "j": _long_binget, "p": _put, "q": _binput,
        "r": _long_binput, "\x94": _memoize, "\x82": _ext(1), "\x83": _ext(2), "\x84": _ext(4),
        "c": _global, "\x93": _stack_global, "R": _reduce, "b": _build, "i": _inst,
        "o": _obj, "\x81": _newobj, "\x92": _newobj_ex, "P": _persid, "Q": _binpersid,
        "\x80": _proto, ".": _stop, "\x95": _frame,
    }.items()
}  # fmt: skip


OPCODES = frozenset(_HANDLERS)


# -- joblib: arrays between the opcodes --------------------------------------------------------


def _joblib_class(call: Call) -> str | None:
    func = call.func
    if isinstance(func, Global) and func.name == "copyreg._reconstructor":
        args = call.args
        func = args[0] if isinstance(args, tuple) and args else None
    return func.name if isinstance(func, Global) else None


def _joblib_array(m: Machine, wrapper: Call) -> None:
    """joblib's unpickler reads the array right after the wrapper's BUILD: an object array
    as a nested pickle, any other as raw bytes (after an alignment pad since joblib 1.2)."""
    if not isinstance(wrapper.state, Dict) or wrapper.state.overflow:
        raise PickleError("a joblib array's state is not one the scanner can read")
    state = wrapper.state.items
    shape, dtype = state.get("shape"), state.get("dtype")
    if (
        not isinstance(shape, tuple)
        or len(shape) > _MAX_DIMS
        or not all(type(d) is int and 0 <= d < 1 << 48 for d in shape)
    ):
        raise PickleError("a joblib array has a shape the scanner cannot read")
    itemsize, has_object = _dtype_layout(dtype)
    if has_object:
        # joblib reads it with a plain unpickler of its own: a fresh memo, no array rule
        nested = Machine(m.s, m.scan, joblib=False)
        nested.run()
        return
    if "numpy_array_alignment_bytes" in state:
        pad = m.s.exactly(1)[0]
        m.s.exactly(pad)
    count = math.prod(shape)
    if count * itemsize > (1 << 46):
        raise PickleError("a joblib array is larger than any file")
    m.s.skip(count * itemsize)


def _dtype_layout(dtype: object) -> tuple[int, bool]:
    """(itemsize, holds Python objects) of a pickled `numpy.dtype(...)` with its state."""
    if not (isinstance(dtype, Call) and isinstance(dtype.func, Global)):
        raise PickleError("a joblib array's dtype is not a numpy dtype")
    if dtype.func.name not in ("numpy.dtype", "numpy.core.multiarray.dtype"):
        raise PickleError("a joblib array's dtype is not a numpy dtype")
    args, state = dtype.args, dtype.state
    code = args[0] if isinstance(args, tuple) and args and isinstance(args[0], str) else None
    if code is None:
        raise PickleError("a joblib array's dtype is not a numpy dtype")
    flags = state[7] if isinstance(state, tuple) and len(state) > 7 else 0
    elsize = state[5] if isinstance(state, tuple) and len(state) > 5 else -1
    if code.startswith("O") or (isinstance(flags, int) and flags & 1):
        return 8, True
    body = code.lstrip("<>|=")
    kind, digits = body[:1], body[1:]
    if kind == "?" and not digits:
        return 1, False
    if kind in ("S", "U", "V", "a") and not digits:
        # a flexible type: numpy takes its size from the pickled state (bytes)
        if isinstance(elsize, int) and 0 < elsize < 1 << 32:
            return elsize, False
        raise PickleError(f"a joblib array's dtype {code!r} has no size")
    if kind not in "biufcmMSUVa" or not digits.isdigit() or len(digits) > 6:
        raise PickleError(f"a joblib array's dtype {code!r} is not one the scanner knows")
    return int(digits) * (4 if kind == "U" else 1), False


# -- files of pickles --------------------------------------------------------------------------


def is_pickle_start(head: bytes) -> bool:
    """A protocol 2+ pickle announces itself; older ones are recognised by scanning."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def scan_stream(stream: Stream, *, sure: bool, joblib: bool = True) -> PickleScan | None:
    """Every pickle back to back in `stream`, as repeated `pickle.load` calls read them.

    `sure`: the content is known to be pickles (its bytes, name or position say so), so a
    pickle that does not read to its end is unscanned. Otherwise a start that is not a
    pickle means "not a pickle" (None), unless an import was already read: then it is one.
    A legacy `torch.save` stream ends after its five pickles; what follows is raw storage.
    """
    scan = PickleScan()
    start = stream.tell() if stream.size is not None else None
    first_value: object = None
    for index in range(MAX_PICKLES):
        head = stream.peek()
        if not head:
            break
        if index > 0 and head[0] not in _HANDLERS:
            # data no unpickler reads: the next pickle.load fails on its first byte (and a
            # legacy torch.save stream keeps its raw storages there)
            break
        machine = Machine(stream, scan, sure=sure or index > 0, joblib=joblib)
        try:
            value = machine.run()
        except PickleError as e:
            if index == 0 and not sure and not machine.imported_any:
                return None
            scan.unscanned.append(e.reason)
            break
        if index == 0:
            first_value = value
        if first_value == _TORCH_MAGIC and index + 1 == _TORCH_PICKLES:
            break
    else:
        if stream.peek():
            scan.unscanned.append(f"more than {MAX_PICKLES} pickles in one file")
    if start is not None and any(g in JOBLIB_WRAPPERS for g in scan.imports):
        # the same bytes as plain `pickle.load` reads them: array data as opcodes
        stream.f.seek(start)
        _plain_reading(stream, scan)
    return scan


def _plain_reading(stream: Stream, scan: PickleScan) -> None:
    """A second reading without joblib's array rule: an unpickler that is not joblib's
    would run what the array bytes say; it stops at the first byte that is no opcode."""
    shadow = PickleScan()
    for _ in range(MAX_PICKLES):
        try:
            Machine(stream, shadow, joblib=False).run()
        except PickleError:
            break
    scan.imports |= shadow.imports


# -- the inspector ---------------------------------------------------------------------------


def detect(head: bytes, path: str) -> bool:
    # protocols 0 and 1 start with any opcode: a scan then decides (see scan_stream)
    return is_pickle_start(head) or path.lower().endswith(SUFFIXES) or might_be_pickle(head)


def might_be_pickle(head: bytes) -> bool:
    return bool(head) and head[0] in OPCODES


def inspect(blob: Blob, context: Context) -> Inspection:
    head = blob.read_at(0, 512)
    scan = scan_blob(blob, sure=is_pickle_start(head) or blob.path.lower().endswith(SUFFIXES))
    if scan is None:  # bytes that only started like a pickle
        facts = plain_facts(blob.path)
        facts.format = facts.format or "binary"
        return Inspection(facts)
    fmt = "joblib" if scan.imports & JOBLIB_WRAPPERS else FORMAT
    return Inspection(facts_of(scan, "pytorch-legacy" if is_torch_legacy(head) else fmt))


def scan_blob(blob: Blob, *, sure: bool) -> PickleScan | None:
    """The pickles of a whole file (None: `sure` is False and it is not a pickle)."""
    with blob.open() as raw:
        f = raw if isinstance(raw, io.BufferedIOBase) else io.BufferedReader(raw)  # type: ignore[type-var]
        return scan_stream(Stream(f, blob.size), sure=sure)


def facts_of(scan: PickleScan, fmt: str) -> FileFacts:
    facts = FileFacts(format=fmt, executable=True)
    flag(facts, scan.findings())
    return facts


def is_torch_legacy(head: bytes) -> bool:
    return head.startswith(b"\x80\x02\x8a\x0a" + _TORCH_MAGIC.to_bytes(10, "little"))


# -- torch's tar checkpoints -------------------------------------------------------------------


def scan_torch_records(stream: Stream, scan: PickleScan, *, storages: bool) -> None:
    """A count, then per record a pickle and raw data whose size that pickle gives."""
    try:
        count = Machine(stream, scan).run()
        if type(count) is not int or not 0 <= count <= 1 << 20:
            raise PickleError("the record count is not a number")
        for _ in range(count):
            record = Machine(stream, scan).run()
            if storages:
                kind = record[2] if isinstance(record, tuple) and len(record) == 3 else None
                name = kind.name if isinstance(kind, Global) else ""
                size = _STORAGE_BYTES.get(name.removeprefix("torch.").removesuffix("Storage"))
                if size is None:
                    raise PickleError(f"unknown storage type {name!r}")
                (numel,) = struct.unpack("<q", stream.exactly(8))
                if not 0 <= numel < 1 << 44:
                    raise PickleError("a storage size is out of range")
                stream.skip(numel * size)
            else:
                (ndim,) = struct.unpack("<i", stream.exactly(4))
                if not 0 <= ndim <= _MAX_DIMS:
                    raise PickleError("a tensor has too many dimensions")
                stream.exactly(4 + 16 * ndim + 8)
    except PickleError as e:
        scan.unscanned.append(e.reason)
