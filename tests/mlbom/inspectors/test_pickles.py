"""The pickle scanner against every bypass class we know of (picklescan, modelscan and
fickling advisories, JFrog's and others' research), and every place a pickle hides.

Every file here is written by the test itself, opcode by opcode or by the library that
makes such files (numpy, joblib, py7zr); none is ever unpickled.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import joblib
import numpy as np
import py7zr
import pytest

from mlbom.inspectors import Context, inspect, pickles
from mlbom.sources.local import LocalSource
from tests.builders import (
    SAFE_TORCH,
    file_component,
    pickle_bytes,
    prop,
    props,
    safetensors_file,
    torch_zip,
)

SYSTEM = b"cos\nsystem\n(S'id'\ntR."  # protocol 0: os.system("id")


def findings(path: Path) -> list[str]:
    blob = LocalSource(path).blobs()[0]
    inspection, _ = inspect(blob, Context(paths=frozenset()))
    return inspection.facts.unsafe_imports


def scan(data: bytes, *, sure: bool = True) -> list[str] | None:
    found = pickles.scan_stream(pickles.Stream(io.BytesIO(data), len(data)), sure=sure)
    return None if found is None else found.findings()


def frame(body: bytes) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body)) + body


# -- opcodes read as CPython reads them -------------------------------------------------------

OPCODE_BYPASSES = {
    "GLOBAL": SYSTEM,
    "INST needs its mark, then imports": b"(S'id'\nios\nsystem\n.",
    "OBJ with a GLOBAL class": b"(cos\nsystem\nS'id'\no.",
    "STACK_GLOBAL": b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.",
    "STACK_GLOBAL names from the memo": b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93.",
    "LONG_BINGET": b"\x80\x04\x8c\x02osr\x05\x00\x00\x00\x8c\x06systemr\x06\x00\x00\x00j\x05\x00\x00\x00j\x06\x00\x00\x00\x93.",
    "PUT key '+1' is key 1": b"S'os'\np+1\n0S'system'\np2\n0g1\ng2\n\x93.",
    "PUT key ' 01' is key 1": b"S'os'\np 01\n0S'system'\np2\n0g1\ng2\n\x93.",
    "PUT key '1_0' is key 10": b"S'os'\np1_0\n0S'system'\np2\n0g10\ng2\n\x93.",
    # MEMOIZE stores at len(memo): after a PUT at key 1 that is key 1 again
    "MEMOIZE after a PUT at len(memo)": b"\x80\x04\x8c\x02osp1\n0\x8c\x0asubprocess\x94h\x01\x8c\x05Popen\x93.",
    "STRING hex escape": b"S'o\\x73'\nS'sy\\x73tem'\n\x93.",
    "STRING octal escape": b"S'\\157s'\nS'system'\n\x93.",
    "UNICODE raw-unicode-escape": b"V\\u006fs\nVsystem\n\x93.",
    "SHORT_BINSTRING is str": b"\x80\x02U\x02osU\x06system\x93.",
    "BINSTRING is str": b"\x80\x02T\x02\x00\x00\x00osT\x06\x00\x00\x00system\x93.",
    "Python 2 module name": b"c__builtin__\neval\n(S'1'\ntR.",
    "Python 2 name mapped under protocol 2": b"\x80\x02c__builtin__\nexecfile\n.",
    "NEWOBJ of an unsafe class": b"\x80\x02csubprocess\nPopen\n)\x81.",
    "NEWOBJ_EX": b"\x80\x04\x8c\x0asubprocess\x8c\x05Popen\x93)}\x92.",
    "REDUCE behind a FRAME": b"\x80\x04" + frame(b"\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R."),
    "EXT1 code": b"\x80\x02\x82\x01)R.",
    "EXT2 code": b"\x80\x02\x83\x01\x01)R.",
    "EXT4 code": b"\x80\x02\x84\x01\x01\x00\x00)R.",
    "dotted name at protocol 4": b"\x80\x04"
    + b"\x8c\x0bcollections"
    + b"\x8c\x20OrderedDict.__init__.__globals__\x93.",
    "a second pickle after a clean one": b"\x80\x04N." + SYSTEM,
    "protocol-less pickles back to back": b"N." + b"N." + SYSTEM,
    "BUILD on an imported object rewrites it": b"\x80\x02ccollections\nOrderedDict\n}S'x'\nNsb.",
    "POP drops the mark at the top": b"(0" + SYSTEM,
}


@pytest.mark.parametrize("data", OPCODE_BYPASSES.values(), ids=OPCODE_BYPASSES.keys())
def test_every_spelling_of_an_import_is_found(data):
    found = scan(data)
    assert found, "nothing found"
    assert all(f not in pickles.SAFE_GLOBALS for f in found)
    assert not any(f.startswith("<unscanned") for f in found) or "EXT" in repr(data), found


def test_names_resolved_exactly():
    assert scan(OPCODE_BYPASSES["STACK_GLOBAL names from the memo"]) == ["os.system"]
    assert scan(OPCODE_BYPASSES["PUT key '1_0' is key 10"]) == ["os.system"]
    assert scan(OPCODE_BYPASSES["Python 2 module name"]) == ["builtins.eval"]
    assert scan(OPCODE_BYPASSES["STRING octal escape"]) == ["os.system"]
    assert scan(OPCODE_BYPASSES["MEMOIZE after a PUT at len(memo)"]) == ["subprocess.Popen"]


def test_names_built_at_load_time_are_never_safe():
    # STACK_GLOBAL over the result of a call (str(b"os")): the scanner cannot know it
    data = b"\x80\x04\x8c\x08builtins\x8c\x03str\x93C\x02os\x85R\x8c\x06system\x93."
    assert "<dynamic>.<dynamic>" in scan(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\x04\x95garbage", "truncated"),
        (b"\x80\x04\x8c\x02os\xff", "unknown opcode"),
        (b"\x80\x04h\x07.", "memo value not found"),
        (b"\x80\x04\x8c\x02os", "no STOP"),
        (b"\x80\x06N.", "unsupported pickle protocol"),
        (b"\x80\x04N.garbage", "truncated"),  # "g" is GET: its argument has no newline
        (b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62), "truncated"),
        (b"\x80\x04\x97.", "out-of-band"),
        (b"S'unquoted\n.", "quoted"),
    ],
)
def test_what_cannot_be_read_to_its_end_is_unscanned(data, reason):
    found = scan(data)
    assert any(f.startswith("<unscanned: ") and reason in f for f in found), found


def test_opcode_cap(monkeypatch):
    monkeypatch.setattr(pickles, "MAX_OPCODES", 1000)
    assert scan(b"\x80\x04" + b"N0" * 1000 + b"N.") == [
        "<unscanned: it has more than 1000 opcodes>"
    ]


def test_safe_pickles_stay_clean():
    for protocol in range(6):
        assert scan(pickle_bytes(SAFE_TORCH, protocol=protocol)) == []
    assert scan(b"\x80\x04]\x94(K\x01K\x02e}\x94(\x8c\x01a\x94h\x01u.") == []


def test_text_that_only_starts_like_a_pickle_is_not_one():
    assert scan(b"I like my models safe\n", sure=False) is None
    assert scan(b"import os\nimport sys\n", sure=False) is None
    assert scan(b"class Model:\n    pass\n", sure=False) is None
    assert scan(SYSTEM, sure=False) == ["os.system"]  # but a real pickle is one


# -- where pickles hide --------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_pickles_found_by_content_whatever_their_name(tmp_path):
    evil = pickle_bytes([("os", "system")])
    cases = {
        "model.pth.tar": lambda p: _zip(p, {"archive/data.pkl": evil}),
        "upper.pt": lambda p: _zip(
            p, {"archive/DATA.PKL": evil, "archive/data.pkl": pickle_bytes(SAFE_TORCH)}
        ),
        "renamed.bin": lambda p: _zip(p, {"archive/weights.txt": evil}),
        "model.sav": lambda p: p.write_bytes(evil),
        "model.pdparams": lambda p: p.write_bytes(evil),
        "noextension": lambda p: p.write_bytes(evil),
        "README.md": lambda p: p.write_bytes(SYSTEM),  # a protocol-0 pickle is text
        "config.json": lambda p: p.write_bytes(evil),
        "weights.safetensors": lambda p: p.write_bytes(evil),
        "notes.txt.gz": lambda p: p.write_bytes(gzip.compress(evil)),
        "model.bz2": lambda p: p.write_bytes(bz2.compress(evil)),
        "model.xz": lambda p: p.write_bytes(lzma.compress(evil)),
        "model.lzma": lambda p: p.write_bytes(lzma.compress(evil, format=lzma.FORMAT_ALONE)),
        "model.z": lambda p: p.write_bytes(zlib.compress(evil)),
        "nested.zip": lambda p: _zip(
            p, {"inner.zip": _zip_bytes({"deep/x.bin": gzip.compress(evil)})}
        ),
        "deflated.pt": lambda p: _zip(p, {"archive/data.pkl": evil}, zipfile.ZIP_DEFLATED),
        "bzip2.pt": lambda p: _zip(p, {"archive/data.pkl": evil}, zipfile.ZIP_BZIP2),
        "lzma.pt": lambda p: _zip(p, {"archive/data.pkl": evil}, zipfile.ZIP_LZMA),
    }
    for name, make in cases.items():
        path = tmp_path / name
        make(path)
        assert "os.system" in findings(path), name


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def test_raw_storages_of_a_torch_zip_are_data(tmp_path):
    """torch reads `data/<key>` raw: bytes there that look like a pickle are not one."""
    path = torch_zip(tmp_path / "m.pt", SAFE_TORCH)
    assert findings(path) == []


def test_torchscript_code_runs(tmp_path):
    path = torch_zip(
        tmp_path / "m.pt", SAFE_TORCH, extra_members={"archive/code/__torch__/m.py": b"x"}
    )
    assert findings(path) == ["<torchscript code>"]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("name", "in its local header"),
        ("method", "disagrees on how it is stored"),
        ("size", "disagrees on its size"),
        ("encrypted", "encrypted"),
        ("prefix", "belong to no member"),
        ("hidden", "belong to no member"),
        ("duplicate", "two members named"),
    ],
)
def test_zip_readers_that_would_disagree(tmp_path, tamper, reason):
    """What another zip reader would see differently is a finding, not a detail."""
    clean = pickle_bytes(SAFE_TORCH)
    data = bytearray(_zip_bytes({"archive/data.pkl": clean}))
    if tamper == "name":
        data[30 : 30 + 16] = b"archive/DATA.pkl"  # the local header names another member
    elif tamper == "method":
        data[8:10] = struct.pack("<H", 8)
    elif tamper == "size":
        data[22:26] = struct.pack("<I", len(clean) + 1)
    elif tamper == "encrypted":
        at = data.rfind(b"PK\x01\x02")
        data[at + 8] |= 1
        data[6] |= 1
    elif tamper == "prefix":
        data = bytearray(b"\x00" * 100) + _zip_with_offset(clean, 100)
    elif tamper == "hidden":
        hidden = _zip_bytes({"evil.pkl": SYSTEM})
        hidden_local = hidden[: hidden.find(b"PK\x01\x02")]
        data = bytearray(hidden_local) + _zip_with_offset(clean, len(hidden_local))
    elif tamper == "duplicate":
        with zipfile.ZipFile(io.BytesIO(data), "a") as z, pytest.warns(UserWarning):
            z.writestr("ARCHIVE/data.pkl", clean)
            z.writestr("archive/data.pkl", clean)
        data = bytearray(_zip_bytes({"archive/data.pkl": clean, "Archive/Data.pkl": clean}))
    path = tmp_path / "m.pt"
    path.write_bytes(bytes(data))
    found = findings(path)
    assert any(f.startswith("<unscanned: ") and reason in f for f in found), found


def _zip_with_offset(pickle_data: bytes, offset: int) -> bytes:
    """A one-member zip whose offsets assume `offset` bytes come before it."""
    data = bytearray(_zip_bytes({"archive/data.pkl": pickle_data}))
    central = data.rfind(b"PK\x01\x02")
    (header,) = struct.unpack("<I", data[central + 42 : central + 46])
    data[central + 42 : central + 46] = struct.pack("<I", header + offset)
    end = data.rfind(b"PK\x05\x06")
    (start,) = struct.unpack("<I", data[end + 16 : end + 20])
    data[end + 16 : end + 20] = struct.pack("<I", start + offset)
    return bytes(data)


def test_nesting_has_a_floor(tmp_path):
    inner = pickle_bytes([("os", "system")])
    for _ in range(6):
        inner = gzip.compress(inner)
    path = tmp_path / "deep.gz"
    path.write_bytes(inner)
    assert any("nested more than" in f for f in findings(path))


def test_legacy_torch_stream_with_protocol_less_pickles(tmp_path):
    """torch.save(_use_new_zipfile_serialization=False) with pickle protocol 1: the object
    pickle has no PROTO opcode, and still comes after the magic number."""
    magic = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + b"."
    data = magic + b"M\xe9\x03." + b"}." + SYSTEM + b"]." + b"\x00\x01" * 500
    path = tmp_path / "model.pt"
    path.write_bytes(data)
    assert findings(path) == ["os.system"]
    blob = LocalSource(path).blobs()[0]
    assert inspect(blob, Context(paths=frozenset()))[0].facts.format == "pytorch-legacy"


def test_torch_tar_checkpoint(tmp_path):
    """The oldest torch.save: a tar of sys_info, pickle, tensors and storages, where a
    storage record is a pickle followed by raw bytes."""
    storage_record = b"\x80\x02(X\x01\x00\x00\x000X\x03\x00\x00\x00cpuctorch\nFloatStorage\nt."
    storages = b"\x80\x02K\x01." + storage_record + struct.pack("<q", 2) + b"\x00" * 8
    tensors = b"\x80\x02K\x00."
    members = {"sys_info": b"\x80\x02}.", "pickle": pickle_bytes([("os", "system")], 2),
               "tensors": tensors, "storages": storages}  # fmt: skip
    path = tmp_path / "model.pth.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert findings(path) == ["os.system"]
    bad = storages.replace(b"torch\nFloatStorage", b"os\nsystem\n(S'x'\ntR0ctorch\nFloatStorage")
    members["storages"], members["pickle"] = bad, pickle_bytes(SAFE_TORCH, 2)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert "os.system" in findings(path)


class _Evil:
    """Pickled by numpy and joblib as a reference to a stand-in `os.system` (never run)."""

    def __reduce__(self):
        return (_stand_in_system(), ("id",))


def _stand_in_system():
    import sys
    import types

    module = types.ModuleType("evilmod")
    module.run = lambda *a: None  # type: ignore[attr-defined]
    module.run.__module__, module.run.__qualname__ = "evilmod", "run"
    sys.modules["evilmod"] = module
    return module.run


@pytest.mark.parametrize(
    "compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3), ("zlib", 3), ("lz4", 3)]
)
def test_joblib_in_every_wrapper(tmp_path, compress):
    path = tmp_path / "model.joblib"
    arrays = {
        "w": np.random.default_rng(0).random((64, 64)),
        "s": np.array(["a", "bc"]),
        "n": np.float32(2),
    }
    joblib.dump(arrays, path, compress=compress)
    assert findings(path) == []
    joblib.dump({**arrays, "o": np.array([_Evil()], dtype=object)}, path, compress=compress)
    assert findings(path) == ["evilmod.run"]
    renamed = tmp_path / "innocent.txt"
    path.rename(renamed)
    assert findings(renamed) == ["evilmod.run"]


def test_joblib_array_bytes_that_plain_pickle_would_run(tmp_path):
    """joblib reads an array's bytes as data; pickle.load reads them as opcodes. A file
    whose array is an opcode stream is unsafe under the second reading."""
    payload = SYSTEM[:-1]  # os.system("id"), then joblib's own STOP follows
    dtype = b"\x8c\x05numpy\x8c\x05dtype\x93\x8c\x02u1\x89\x88\x87R(K\x03\x8c\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    state = (
        b"}(\x8c\x05shape"
        + b"K"
        + bytes([len(payload)])
        + b"\x85\x8c\x05dtype"
        + dtype
        + b"\x8c\x05order\x8c\x01Cu"
    )
    wrapper = b"\x8c\x13joblib.numpy_pickle\x8c\x11NumpyArrayWrapper\x93)\x81" + state + b"b"
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x04" + wrapper + payload + b".")
    assert findings(path) == ["os.system"]


def test_numpy_object_arrays(tmp_path):
    np.save(tmp_path / "a.npy", np.array([_Evil()], dtype=object), allow_pickle=True)
    assert findings(tmp_path / "a.npy") == ["evilmod.run"]
    np.save(tmp_path / "b.npy", np.zeros((3, 4), dtype=np.float32))
    assert findings(tmp_path / "b.npy") == []
    structured = np.zeros(2, dtype=[("x", "f4"), ("o", "O")])
    np.save(tmp_path / "c.npy", structured, allow_pickle=True)
    assert findings(tmp_path / "c.npy") == []  # None objects: a pickle of safe globals
    np.savez(tmp_path / "d.npz", a=np.array([_Evil()], dtype=object), b=np.ones(4))
    assert findings(tmp_path / "d.npz") == ["evilmod.run"]
    (tmp_path / "e.dat").write_bytes((tmp_path / "a.npy").read_bytes())
    assert findings(tmp_path / "e.dat") == ["evilmod.run"]


def test_seven_zip_members_are_scanned(tmp_path):
    path = tmp_path / "model.7z"
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writestr(pickle_bytes([("os", "system")]), "weights/model.bin")
        archive.writestr(b"hello", "README")
    assert findings(path) == ["os.system"]


def test_polyglot_that_also_reads_as_a_pickle(tmp_path):
    # a file that a format inspector reads, but that pickle.load runs
    path = tmp_path / "model.onnx"
    path.write_bytes(SYSTEM)
    assert findings(path) == ["os.system"]


# -- the command -----------------------------------------------------------------------------


def test_fail_on_unsafe_counts_unscanned_files(cli, tmp_path):
    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    (folder / "opt.pt").write_bytes(b"\x80\x04\x8c\x02os")  # truncated: cannot be scanned
    out = tmp_path / "bom.json"
    _, err = cli("generate", folder, "-o", out, "--fail-on", "unsafe", code=1)
    assert "opt.pt" in err and "could not be fully scanned" in err
    import json

    bom = json.loads(out.read_text())
    assert props(file_component(bom, "opt.pt"), "mlbom:unsafe-import")[0].startswith("<unscanned: ")
    assert prop(file_component(bom, "opt.pt"), "mlbom:format") == "pickle"


def test_nothing_is_skipped_by_a_built_in_list(cli, tmp_path):
    """__pycache__, .git, .cache and .ipynb_checkpoints are listed; a .pyc planted in a
    signed folder fails verification; only what the user excludes is left out, and the
    BOM says so."""
    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    for name in (
        "__pycache__/x.cpython-311.pyc",
        ".git/HEAD",
        ".cache/huggingface/x",
        ".ipynb_checkpoints/a",
    ):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    (folder / "scratch").mkdir()
    (folder / "scratch" / "tmp.bin").write_bytes(b"y")
    bom, _ = cli.bom(folder, "--exclude", folder / "scratch")
    names = {c["name"] for c in bom["components"] if c["type"] == "file"}
    assert {
        "__pycache__/x.cpython-311.pyc",
        ".git/HEAD",
        ".cache/huggingface/x",
        ".ipynb_checkpoints/a",
    } <= names
    assert "scratch/tmp.bin" not in names
    assert props(bom["metadata"]["component"], "mlbom:excluded") == ["scratch"]


def test_verify_fails_on_a_planted_pyc_and_honours_recorded_exclusions(cli, tmp_path):
    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    (folder / "scratch").mkdir()
    (folder / "scratch" / "a").write_bytes(b"1")
    bom_path = tmp_path / "bom.json"
    cli("generate", folder, "-o", bom_path, "--exclude", folder / "scratch")
    cli("keygen", "-o", tmp_path / "k")
    public = tmp_path / "k.pub"
    cli("sign", bom_path, "--key", tmp_path / "k.key")
    (folder / "scratch" / "b").write_bytes(b"2")  # excluded, recorded: still verifies
    cli("verify", bom_path, "--key", public, "--model", folder)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "evil.cpython-311.pyc").write_bytes(b"\x00")
    _, err = cli("verify", bom_path, "--key", public, "--model", folder, code=1)
    assert "__pycache__/evil.cpython-311.pyc is not in the BOM" in err
    os.remove(folder / "__pycache__" / "evil.cpython-311.pyc")
    (folder / "loop").symlink_to("loop")
    _, err = cli("verify", bom_path, "--key", public, "--model", folder, code=1)
    assert "loop cannot be read (a symlink loop)" in err


def test_native_code_and_bytecode_are_executable(cli, tmp_path):
    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    (folder / "ops.dat").write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 57)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\xa7\r\r\n" + b"\x00" * 12)
    bom, _ = cli.bom(folder)
    for name, fmt in (("ops.dat", "elf"), ("__pycache__/m.cpython-311.pyc", "python-bytecode")):
        component = file_component(bom, name)
        assert prop(component, "mlbom:format") == fmt
        assert prop(component, "bsi:component:executable") == "executable"


# -- a red team's bypasses, kept closed ------------------------------------------------------


def test_memo_keys_are_read_to_their_last_digit():
    pad = b"0" * 4095
    data = (b"S'collections'\np1\n0S'os'\np10\n0S'OrderedDict'\np2\n0S'system'\np23\n0"
            b"g" + pad + b"10\ng" + pad + b"23\n\x93.")  # fmt: skip
    assert scan(data) == ["os.system"]


def test_a_tar_whose_header_is_a_pickle(tmp_path):
    path = tmp_path / "model.pkl"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo(SYSTEM.decode())  # pickle.load reads the name field
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    assert "os.system" in findings(path)


def test_keras_names_do_not_stop_the_other_members_being_read(tmp_path):
    npz = io.BytesIO()
    np.savez(npz, w=np.array([_Evil()], dtype=object))
    path = _zip(tmp_path / "weights.keras", {"config.json": b"{}", "metadata.json": b"{}",
                                             "model.weights.npz": npz.getvalue()})  # fmt: skip
    assert "evilmod.run" in findings(path)


@pytest.mark.parametrize("descr", ["'object'", "'(2,)O'", "'u1,O'", "[('a', '<i4'), ('b', 'O')]"])
def test_every_spelling_of_an_object_dtype(tmp_path, descr):
    body = pickle_bytes([("os", "system")], protocol=3)
    header = ("{'descr': " + descr + ", 'fortran_order': False, 'shape': (1,), }").encode()
    header += b" " * (63 - len(header) % 64) + b"\n"
    path = tmp_path / "a.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body)
    assert findings(path) == ["os.system"]


def test_a_zip_member_named_like_a_folder_is_read(tmp_path):
    path = _zip(tmp_path / "w.npz", {"w/": pickle_bytes([("os", "system")])})
    assert "os.system" in findings(path)


def test_lzma_alone_with_any_dictionary_size(tmp_path):
    data = lzma.compress(pickle_bytes([("os", "system")]), format=lzma.FORMAT_ALONE)
    data = data[:1] + (0x00C00000).to_bytes(4, "little") + data[5:]  # 2**23 + 2**22
    (tmp_path / "model.bin").write_bytes(data)
    assert findings(tmp_path / "model.bin") == ["os.system"]


def test_joblib_wrapper_state_cannot_lie_about_the_array():
    payload = SYSTEM[:-1]
    dtype_u1_elsize64 = (b"\x8c\x05numpy\x8c\x05dtype\x93\x8c\x02u1\x89\x88\x87R(K\x03\x8c\x01|NNN"
                         b"K@J\xff\xff\xff\xffK\x00tb")  # fmt: skip  # elsize 64 for a 1-byte type
    state = (b"}(\x8c\x05shape" + b"K" + bytes([len(payload)]) + b"\x85\x8c\x05dtype"
             + dtype_u1_elsize64 + b"\x8c\x05order\x8c\x01Cu")  # fmt: skip
    wrapper = b"\x8c\x13joblib.numpy_pickle\x8c\x11NumpyArrayWrapper\x93)\x81" + state + b"b"
    assert "os.system" in scan(b"\x80\x04" + wrapper + payload + b".")
    filler = b"".join(b"\x8c\x03k%02d" % i + b"N" for i in range(70))
    overflowing = state.replace(b"}(", b"}(" + filler, 1)
    found = scan(b"\x80\x04" + wrapper.replace(state, overflowing) + payload + b".")
    assert "os.system" in found or any("state" in f for f in found)


def test_old_joblib_wrappers_that_load_other_files_are_flagged():
    data = b"\x80\x02cjoblib.numpy_pickle_compat\nNDArrayWrapper\n)\x81."
    assert scan(data) == ["joblib.numpy_pickle_compat.NDArrayWrapper"]


def test_imports_and_tar_headers_are_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(pickles, "MAX_IMPORTS", 100)
    data = b"\x80\x04" + b"".join(b"\x8c\x01m\x8c\x04f%03d\x93" % i for i in range(200)) + b"."
    assert any("more than 100 distinct globals" in f for f in scan(data))
    path = tmp_path / "long.tar.gz"
    long_name = tarfile.TarInfo("././@LongLink")
    long_name.type, long_name.size = tarfile.GNUTYPE_LONGNAME, 2 << 20
    raw = io.BytesIO()
    raw.write(long_name.tobuf(format=tarfile.GNU_FORMAT))
    raw.write(b"a" * (2 << 20) + b"\x00" * 512)
    path.write_bytes(gzip.compress(raw.getvalue()))
    assert any("extended header" in f for f in findings(path))
