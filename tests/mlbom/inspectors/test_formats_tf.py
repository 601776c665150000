"""HDF5 / Keras, TensorFlow SavedModel, TFLite and Core ML inspectors, on real files made here.

HDF5 files come from h5py (the product reads them with its own reader); protobufs and the
TFLite flatbuffer are encoded by the small writers below; hostile variants are patched
copies of real files.
"""

from __future__ import annotations

import base64
import contextlib
import json
import marshal
import random
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, coreml, hdf5, keras, tensorflow
from mlbom.sources.local import LocalSource

CONTEXT = Context(paths=frozenset())
LIBVERS = ["earliest", "latest", ("v108", "v110")]


def blob(path: Path):
    return LocalSource(path).blobs()[0]


def unsafe(facts) -> list[str]:
    return facts.unsafe_imports


# -- Keras configs ---------------------------------------------------------------------------


def _lambda_code() -> list:
    """A Lambda function as tf.keras's func_dump writes it: (base64 marshal, defaults, closure)."""
    code = marshal.dumps((lambda x: x * 2).__code__)
    return [base64.b64encode(code).decode("ascii"), None, None]


def legacy_config(with_lambda: bool) -> dict:
    layers = [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "name": "in"}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 3, "activation": "relu"}},
        {"class_name": "TFOpLambda", "config": {"name": "tf.math.add", "function": "math.add"}},
    ]
    if with_lambda:
        layers.append({
            "class_name": "Lambda",
            "config": {
                "name": "lambda", "function": _lambda_code(), "function_type": "lambda",
                "module": "__main__", "output_shape": None, "output_shape_type": "raw",
                "output_shape_module": None, "arguments": {},
            },
        })  # fmt: skip
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


def legacy_h5(path: Path, config: object, *, libver="earliest", userblock: int = 0) -> Path:
    """A whole-model Keras 2 .h5 save: model_config as Keras writes it (bytes), weights."""
    with h5py.File(path, "w", libver=libver, userblock_size=userblock) as f:
        text = config if isinstance(config, str) else json.dumps(config)
        f.attrs["model_config"] = text.encode("utf-8")
        f.attrs["keras_version"] = b"2.4.0"
        f.attrs["backend"] = b"tensorflow"
        training = {"loss": {"class_name": "MeanSquaredError", "config": {}}}
        f.attrs["training_config"] = json.dumps(training)  # a variable-length string
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = np.array([b"dense"])
        layer = weights.create_group("dense/dense")
        layer.create_dataset("kernel:0", data=np.zeros((4, 3), "f4"))
        layer.create_dataset("bias:0", data=np.zeros((3,), "f4"))
        f.create_dataset("optimizer_weights/Adam/iter:0", data=np.zeros((12,), "i8"))
    return path


@pytest.mark.parametrize("libver", LIBVERS)
def test_legacy_keras_h5_lambda_is_flagged(tmp_path, libver):
    path = legacy_h5(tmp_path / "model.h5", legacy_config(True), libver=libver)
    inspection = hdf5.inspect(blob(path), CONTEXT)
    facts = inspection.facts
    assert facts.format == "keras-h5"
    assert unsafe(facts) == ["keras.layers.Lambda (marshalled Python bytecode)"]
    assert facts.executable
    assert facts.parameter_count == 15  # the optimizer's weights are not the model's
    assert ("mlbom:keras:version", "2.4.0") in facts.properties
    assert inspection.info.architectures == ["Sequential"]


@pytest.mark.parametrize("libver", LIBVERS)
@pytest.mark.parametrize("userblock", [0, 512, 4096])
def test_legacy_keras_h5_without_lambda(tmp_path, libver, userblock):
    path = legacy_h5(tmp_path / "m.h5", legacy_config(False), libver=libver, userblock=userblock)
    assert hdf5.detect(path.read_bytes()[:4096], "m.h5") == (userblock <= 2048)
    facts = hdf5.inspect(blob(path), CONTEXT).facts
    assert facts.format == "keras-h5"
    assert unsafe(facts) == [] and not facts.executable
    assert facts.parameter_count == 15
    assert ("mlbom:keras:backend", "tensorflow") in facts.properties


def test_reader_superblocks_and_string_attributes(tmp_path):
    versions = set()
    for libver in LIBVERS:
        path = tmp_path / f"{libver}.h5"
        with h5py.File(path, "w", libver=libver) as f:
            f.attrs["variable"] = "a variable-length string ✓"
            f.attrs["fixed"] = np.bytes_(b"fixed length")
            f.attrs["names"] = np.array([b"a", b"bc"])
            f.attrs["number"] = 3
            f.create_dataset("a/b/c", data=np.zeros((2, 3, 4)))
            f.create_dataset("scalar", data=1.5)
            f.create_dataset("lazy", shape=(10**6, 10**3), dtype="f4", chunks=True)
            f.create_dataset("empty", data=h5py.Empty("f4"))
        with path.open("rb") as fh:
            h5 = hdf5.read(fh, path.stat().st_size)
        versions.add(h5.superblock_version)
        assert h5.attributes == {
            "variable": "a variable-length string ✓",
            "fixed": "fixed length",
            "names": ("a", "bc"),
        }
        assert "number" in h5.attribute_names and h5.attributes_complete and h5.complete
        shapes = {d.path: (d.shape, d.elements) for d in h5.datasets}
        assert shapes == {
            "/a/b/c": ((2, 3, 4), 24),
            "/scalar": ((), 1),
            "/lazy": ((10**6, 10**3), 10**9),
            "/empty": ((), 0),
        }
        assert {"/", "/a", "/a/b"} <= set(h5.groups)
    assert versions == {0, 2, 3}


def test_continuation_blocks_are_followed(tmp_path):
    for libver in ("earliest", "latest"):
        path = tmp_path / f"grown-{libver}.h5"
        with h5py.File(path, "w", libver=libver) as f:
            f.create_dataset("w", data=np.zeros((5,)))
        with h5py.File(path, "a") as f:  # the root header grows: continuation blocks
            for i in range(6):
                f.attrs[f"attr{i}"] = "x" * 50
            f.attrs["keras_version"] = "3.0.0"
        with path.open("rb") as fh:
            h5 = hdf5.read(fh, path.stat().st_size)
        assert h5.attributes["keras_version"] == "3.0.0" and len(h5.attributes) == 7
        assert [d.path for d in h5.datasets] == ["/w"]


def test_dense_links_and_attributes_are_reported(tmp_path):
    path = tmp_path / "dense.h5"
    with h5py.File(path, "w", libver="latest") as f:
        for i in range(20):
            f.attrs[f"a{i}"] = i
            f.create_dataset(f"g/d{i}", data=np.zeros((2,)))
    with path.open("rb") as fh:
        h5 = hdf5.read(fh, path.stat().st_size)
    assert not h5.attributes_complete
    assert any("links stored densely" in u for u in h5.unreadable)
    facts = hdf5.inspect(blob(path), CONTEXT).facts
    assert facts.parameter_count is None  # not all datasets were seen
    [finding] = unsafe(facts)
    assert finding.startswith("<unscanned:") and "model_config" in finding


def test_weights_only_keras_h5_is_plain(tmp_path):
    path = tmp_path / "weights.h5"
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.4.0"
        f.attrs["backend"] = b"tensorflow"
        f.create_dataset("dense/dense/kernel:0", data=np.zeros((4, 3)))
    facts = hdf5.inspect(blob(path), CONTEXT).facts
    assert facts.format == "hdf5" and unsafe(facts) == [] and facts.parameter_count == 12


def test_unreadable_model_config_is_unscanned(tmp_path):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = np.arange(3)
        f.attrs["keras_version"] = b"2.4.0"
    [finding] = unsafe(hdf5.inspect(blob(path), CONTEXT).facts)
    assert finding.startswith("<unscanned:") and "not a readable string" in finding


def test_deep_model_config_is_unscanned(tmp_path):
    deep = "[" * 10_000 + "]" * 10_000
    path = legacy_h5(tmp_path / "deep.h5", deep)
    facts = hdf5.inspect(blob(path), CONTEXT).facts
    [finding] = unsafe(facts)
    assert finding.startswith("<unscanned:") and "model_config" in finding

    nested: list = []
    for _ in range(10_000):
        nested = [nested]
    [finding] = keras.scan_config({"class_name": "Functional", "config": nested})
    assert finding.startswith("<unscanned:") and "deeper" in finding


def test_scan_config_findings():
    config = {
        "module": "keras", "class_name": "Functional", "registered_name": "Functional",
        "config": {"layers": [
            {"module": "keras.layers", "class_name": "Dense", "registered_name": None},
            {"module": "my_pkg", "class_name": "Evil", "registered_name": "my_pkg>Evil"},
            {"module": None, "class_name": "Other", "registered_name": "acme>Other"},
            {"module": "keras.layers", "class_name": "Lambda", "config": {
                "function": {"class_name": "__lambda__", "config": {"code": "4wEAAA=="}}}},
            {"module": "keras.layers", "class_name": "Lambda", "config": {
                "function": {"module": "os", "class_name": "function", "config": "system",
                             "registered_name": "system"}}},
            {"class_name": "Lambda", "config": {"function": "scale", "function_type": "function",
                                                "module": "helpers"}},
            {"module": "tf_keras.src.layers", "class_name": "TFOpLambda",
             "config": {"function": "math.add"}},
        ]},
    }  # fmt: skip
    assert keras.scan_config(config) == [
        "custom object my_pkg.Evil",
        "custom object acme>Other",
        "keras.layers.Lambda (marshalled Python bytecode)",
        "keras.layers.Lambda (calls os.system)",
        "function os.system",
        "keras.layers.Lambda (calls helpers.scale)",
    ]
    assert keras.scan_config(legacy_config(False)) == []


# -- .keras v3 archives ----------------------------------------------------------------------


def keras_v3(path: Path, compression: int = zipfile.ZIP_STORED) -> Path:
    config = {
        "module": "keras", "class_name": "Sequential", "registered_name": None,
        "config": {"name": "sequential", "layers": [
            {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
             "config": {"name": "dense", "units": 3}},
            {"module": "my_pkg.layers", "class_name": "Evil", "registered_name": "my_pkg>Evil",
             "config": {}},
            {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
             "config": {"function": {"class_name": "__lambda__",
                                     "config": {"code": "abc", "defaults": None, "closure": None}}}},
        ]},
    }  # fmt: skip
    weights = path.with_suffix(".weights.h5")
    with h5py.File(weights, "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.zeros((4, 3), "f4"))
        f.create_dataset("layers/dense/vars/1", data=np.zeros((3,), "f4"))
        f.create_dataset("optimizer/vars/0", data=np.zeros((100,), "f4"))
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.3.3", "date_saved": "x"}))
        z.writestr("config.json", json.dumps(config))
        z.write(weights, "model.weights.h5")
    return path


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_keras_v3_archive(tmp_path, compression):
    path = keras_v3(tmp_path / "model.keras", compression)
    with zipfile.ZipFile(path) as archive:
        assert keras.is_archive(archive.namelist())
        inspection = keras.inspect_archive(archive, "model.keras")
    facts = inspection.facts
    assert facts.format == "keras"
    assert unsafe(facts) == [
        "custom object my_pkg.layers.Evil",
        "keras.layers.Lambda (marshalled Python bytecode)",
    ]
    assert facts.parameter_count == 15
    assert ("mlbom:keras:version", "3.3.3") in facts.properties
    # Keras builds a model from a zip's config.json alone; one that is no Keras config
    # keeps no Keras format (a zipped transformers folder, say)
    assert keras.is_archive(["config.json", "tokenizer.json"])
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("config.json", '{"model_type": "bert"}')
    with zipfile.ZipFile(other) as archive:
        assert keras.inspect_archive(archive, "other.zip").facts.format is None


def test_keras_v3_archive_with_hostile_members(tmp_path):
    path = tmp_path / "bad.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "[" * 50_000)
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    with zipfile.ZipFile(path) as archive:
        facts = keras.inspect_archive(archive, "bad.keras").facts
    [finding] = unsafe(facts)  # the broken weights do not hide the config's finding
    assert finding.startswith("<unscanned:") and "config.json" in finding
    assert facts.error.startswith("model.weights.h5: ") and facts.parameter_count is None
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(legacy_config(True)))
        z.writestr("metadata.json", "[]")
        z.writestr("model.weights.h5", legacy_h5(tmp_path / "w.h5", {}).read_bytes()[:3000])
    with zipfile.ZipFile(path) as archive:
        facts = keras.inspect_archive(archive, "bad.keras").facts
    assert unsafe(facts) == ["keras.layers.Lambda (marshalled Python bytecode)"]
    assert "truncated" in facts.error


# -- hostile HDF5 ----------------------------------------------------------------------------


def _u64(data: bytes | bytearray, at: int) -> int:
    return struct.unpack_from("<Q", data, at)[0]


def _v1_messages(data: bytes | bytearray, header: int) -> dict[int, int]:
    """message type → offset of its data (the first of each), in a version 1 object header
    and its continuation blocks."""
    assert data[header] == 1
    size = struct.unpack_from("<I", data, header + 8)[0]
    chunks, found = [(header + 16, size)], {}
    while chunks:
        pos, length = chunks.pop(0)
        end = pos + length
        while pos + 8 <= end:
            kind, size = struct.unpack_from("<HH", data, pos)
            found.setdefault(kind, pos + 8)
            if kind == 0x10:
                chunks.append((_u64(data, pos + 8), _u64(data, pos + 16)))
            pos += 8 + size
    return found


def _root_v0(data: bytes | bytearray) -> int:
    return _u64(data, 64)  # superblock v0, 8-byte offsets: the root entry's object header


def _read_bytes(path: Path, data: bytes | bytearray):
    """The inspection of a patched file; the strict reader's InspectionError when it has one
    (the inspector then gives the same error, or keeps it in `facts.error`)."""
    path.write_bytes(bytes(data))
    try:
        inspection = hdf5.inspect(blob(path), CONTEXT)
    except InspectionError:
        inspection = None
    with path.open("rb") as f:
        hdf5.read(f, len(data))
    assert inspection is not None and inspection.facts.error is None
    return inspection


def test_a_broken_object_below_the_root_keeps_the_config_finding(tmp_path):
    path = legacy_h5(tmp_path / "m.h5", legacy_config(True))
    data = bytearray(path.read_bytes())
    btree = _u64(data, _v1_messages(data, _root_v0(data))[0x11])
    snod = _u64(data, btree + 8 + 16 + 8)
    struct.pack_into("<Q", data, snod + 8 + 8, len(data) - 8)  # a child's header: past the end
    broken = tmp_path / "broken.h5"
    broken.write_bytes(bytes(data))
    inspection = hdf5.inspect(blob(broken), CONTEXT)
    found = unsafe(inspection.facts)
    assert found[0] == "keras.layers.Lambda (marshalled Python bytecode)"
    assert found[1].startswith("<unscanned: the HDF5 file could not be read to its end")
    assert "beyond the end" in inspection.facts.error
    assert inspection.facts.parameter_count is None
    with broken.open("rb") as f, pytest.raises(InspectionError, match="beyond the end"):
        hdf5.read(f, len(data))  # strict by default


def test_truncated_and_out_of_range_hdf5(tmp_path):
    good = legacy_h5(tmp_path / "good.h5", legacy_config(True)).read_bytes()
    for cut in (8, 60, 100, 800, len(good) // 2, len(good) - 1):
        with pytest.raises(InspectionError):
            _read_bytes(tmp_path / "cut.h5", good[:cut])
    bad = bytearray(good)
    struct.pack_into("<Q", bad, 64, 1 << 40)  # the root object header far past the end
    with pytest.raises(InspectionError, match="beyond the end"):
        _read_bytes(tmp_path / "far.h5", bad)
    with pytest.raises(InspectionError, match="no HDF5 signature"):
        _read_bytes(tmp_path / "none.h5", b"\0" * 5000)


def test_cycle_of_continuations(tmp_path):
    path = tmp_path / "grown.h5"
    with h5py.File(path, "w", libver="earliest") as f:
        f.create_dataset("w", data=np.zeros((5,)))
    with h5py.File(path, "a") as f:
        for i in range(8):
            f.attrs[f"attr{i}"] = "x" * 60
    data = bytearray(path.read_bytes())
    root = _root_v0(data)
    continuation = _v1_messages(data, root)[0x10]
    struct.pack_into("<Q", data, continuation, root + 16)  # back to the first chunk
    with pytest.raises(InspectionError, match="loops back"):
        _read_bytes(tmp_path / "cycle.h5", data)


def test_symbol_table_pointing_at_itself(tmp_path):
    path = tmp_path / "groups.h5"
    with h5py.File(path, "w", libver="earliest") as f:
        f.create_dataset("w", data=np.zeros((5,)))
    data = bytearray(path.read_bytes())
    root = _root_v0(data)
    table = _v1_messages(data, root)[0x11]
    btree, snod = _u64(data, table), None
    assert data[btree : btree + 4] == b"TREE"
    snod = _u64(data, btree + 8 + 16 + 8)  # after the header and the first key

    # the symbol node's entry names the root itself: a second link, read once, no hang
    entry_target = snod + 8 + 8
    loop = bytearray(data)
    struct.pack_into("<Q", loop, entry_target, root)
    h5 = _read_bytes(tmp_path / "self-link.h5", loop)
    assert h5.facts.parameter_count == 0

    # the B-tree's child is the B-tree node itself
    loop = bytearray(data)
    loop[btree + 5] = 1  # level 1: children are B-tree nodes
    struct.pack_into("<Q", loop, btree + 8 + 16 + 8, btree)
    with pytest.raises(InspectionError, match="B-tree"):
        _read_bytes(tmp_path / "self-tree.h5", loop)


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_dimensions_over_the_caps(tmp_path, libver):
    path = tmp_path / "dims.h5"
    with h5py.File(path, "w", libver=libver) as f:
        f.create_dataset("d", shape=(7, 11, 13), dtype="f4")
    data = path.read_bytes()
    dims = struct.pack("<QQQ", 7, 11, 13)
    at = data.index(dims)
    huge = bytearray(data)
    struct.pack_into("<Q", huge, at, 1 << 49)
    with pytest.raises(InspectionError, match="2\\*\\*48"):
        _read_bytes(tmp_path / "huge.h5", huge)
    rank = bytearray(data)
    rank[at - (7 if libver == "earliest" else 3)] = 40
    with pytest.raises(InspectionError, match="dimensions"):
        _read_bytes(tmp_path / "rank.h5", rank)


def test_random_corruption_never_crashes(tmp_path):
    sources = [
        legacy_h5(tmp_path / "a.h5", legacy_config(True), libver=v).read_bytes()
        for v in ("earliest", "latest")
    ]
    rng = random.Random(1234)
    target = tmp_path / "fuzz.h5"
    for i in range(300):
        data = bytearray(sources[i % 2])
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(data) // 2)  # the metadata, near the start
            data[at] = rng.randrange(256)
        with contextlib.suppress(InspectionError):
            _read_bytes(target, data)


# -- TensorFlow SavedModel -------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb(*fields: tuple[int, int | bytes | str]) -> bytes:
    """A protobuf message from (field number, value) pairs: ints are varints, the rest
    length-delimited."""
    out = bytearray()
    for number, value in fields:
        if isinstance(value, int):
            out += varint(number << 3) + varint(value)
        else:
            raw = value.encode() if isinstance(value, str) else value
            out += varint(number << 3 | 2) + varint(len(raw)) + raw
    return bytes(out)


def node(name: str, op: str, *attrs: tuple[str, bytes]) -> bytes:
    return pb((1, name), (2, op), (3, "input:0"), *((5, pb((1, k), (2, v))) for k, v in attrs))


def saved_model(
    nodes: list[bytes], functions: list[list[bytes]], objects: tuple[bytes, ...] = ()
) -> bytes:
    library = pb(
        *((1, pb((1, pb((1, f"fn{i}"))), *((3, n) for n in fn))) for i, fn in enumerate(functions))
    )
    graph = pb(*((1, n) for n in nodes), (2, library), (4, pb((1, 1808))))
    object_graph = pb(*((1, o) for o in objects))
    meta = pb((1, pb((1, "serve"))), (2, graph), (7, object_graph))
    return pb((1, 1), (2, meta))


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_saved_model_pyfunc_in_a_function_library(tmp_path):
    const = node("c", "Const", ("value", pb((8, b"\0" * 5000))))  # a tensor attr, skipped
    data = saved_model(
        [const, node("m", "MatMul")],
        [[node("a", "Identity"), node("p", "EagerPyFunc", ("token", pb((2, "pyfunc_0"))))]],
    )
    path = write(tmp_path / "sm" / "saved_model.pb", data)
    assert tensorflow.detect(data[:4096], "sm/saved_model.pb")
    facts = tensorflow.inspect(blob(path), CONTEXT).facts
    assert facts.format == "tf-savedmodel"
    assert unsafe(facts) == ["tensorflow op EagerPyFunc (runs Python code)"]
    assert ("mlbom:tensorflow:ops", "Const,EagerPyFunc,Identity,MatMul") in facts.properties


def test_saved_model_clean_and_host_file_ops(tmp_path):
    clean = saved_model([node("c", "Const"), node("s", "SaveV2"), node("r", "RestoreV2")], [[]])
    facts = tensorflow.inspect(blob(write(tmp_path / "a" / "saved_model.pb", clean)), CONTEXT).facts
    assert unsafe(facts) == [] and not facts.executable

    risky = saved_model(
        [node("w", "WriteFile"), node("p", "PrintV2", ("output_stream", pb((2, "file:///tmp/x"))))],
        [],
    )
    facts = tensorflow.inspect(blob(write(tmp_path / "b" / "saved_model.pb", risky)), CONTEXT).facts
    assert unsafe(facts) == [
        "tensorflow op WriteFile (writes host files)",
        "tensorflow op PrintV2 (writes host files)",
    ]


def test_saved_model_keras_metadata_in_object_graph(tmp_path):
    layer = json.dumps(legacy_config(True)["config"]["layers"][-1])
    user_object = pb((4, pb((1, "_tf_keras_layer"), (3, layer))))
    data = saved_model([node("c", "Const")], [], (user_object,))
    facts = tensorflow.inspect(blob(write(tmp_path / "saved_model.pb", data)), CONTEXT).facts
    assert unsafe(facts) == ["keras.layers.Lambda (marshalled Python bytecode)"]


def test_saved_model_text(tmp_path):
    text = (
        'meta_graphs {\n graph_def {\n  node {\n   name: "x"\n   op: "PyFunc"\n  }\n'
        + ('  node { name: "y" op: "Const" }\n' * 10_000)
        + " }\n}\n"
    )
    path = write(tmp_path / "saved_model.pbtxt", text.encode())
    facts = tensorflow.inspect(blob(path), CONTEXT).facts
    assert unsafe(facts) == ["tensorflow op PyFunc (runs Python code)"]
    assert ("mlbom:tensorflow:ops", "Const,PyFunc") in facts.properties


def test_hostile_saved_models(tmp_path):
    good = saved_model([node("c", "Const")], [[node("p", "PyFunc")]])
    cases = [
        good[:-3],  # truncated
        pb((1, 1)) + varint(2 << 3 | 2) + varint(1 << 40),  # a length past the end
        pb((1, 1), (2, b"\xff" * 20)),  # an overlong varint inside
        pb((1, 1)) + bytes([2 << 3 | 3]),  # a group
        pb((1, 1), (2, pb((2, pb((1, pb((2, "x" * 10_000)))))))),  # an op name too long
    ]
    for i, data in enumerate(cases):
        with pytest.raises(InspectionError):
            tensorflow.inspect(blob(write(tmp_path / str(i) / "saved_model.pb", data)), CONTEXT)


# -- TFLite ----------------------------------------------------------------------------------


class Table:
    def __init__(self, *fields):  # (slot, kind, value)
        self.fields = fields


def flatbuffer(root: Table, identifier: bytes = b"TFL3") -> bytes:
    """A flatbuffer laid out front to back: every offset points forward, as checked readers
    require of uoffsets."""
    buf = bytearray(8)
    buf[4:8] = identifier
    fixups = [(0, root)]  # (position of a uoffset, object to place)
    while fixups:
        at, obj = fixups.pop(0)
        while len(buf) % 4:
            buf.append(0)
        target = len(buf)
        if isinstance(obj, Table):
            slots = max((s for s, _, _ in obj.fields), default=-1) + 1
            sizes = {"u8": 1, "i8": 1, "u32": 4, "i32": 4, "u64": 8, "ref": 4}
            layout, offset = {}, 4
            for slot, kind, _ in obj.fields:
                layout[slot] = offset
                offset += sizes[kind]
            vtable = struct.pack(f"<HH{slots}H", 4 + 2 * slots, offset,
                                 *(layout.get(s, 0) for s in range(slots)))  # fmt: skip
            vtable += b"\0" * (-len(vtable) % 4)
            buf += vtable
            table = len(buf)
            buf += struct.pack("<i", table - target)
            for _slot, kind, value in obj.fields:
                if kind == "ref":
                    fixups.append((len(buf), value))
                    buf += b"\0\0\0\0"
                else:
                    buf += struct.pack({"u8": "<B", "i8": "<b", "u32": "<I", "i32": "<i", "u64": "<Q"}[kind], value)  # fmt: skip
            target = table
        elif isinstance(obj, str):
            raw = obj.encode()
            buf += struct.pack("<I", len(raw)) + raw + b"\0"
        elif isinstance(obj, bytes):
            buf += struct.pack("<I", len(obj)) + obj
        elif obj and isinstance(obj[0], Table):
            buf += struct.pack("<I", len(obj))
            base = len(buf)
            buf += b"\0" * (4 * len(obj))
            fixups += [(base + 4 * i, t) for i, t in enumerate(obj)]
        else:
            buf += struct.pack(f"<I{len(obj)}i", len(obj), *obj)
        struct.pack_into("<I", buf, at, target - at)
    return bytes(buf)


def tflite_model() -> bytes:
    tensors = [
        Table((0, "ref", [4, 3]), (2, "u32", 1), (3, "ref", "kernel")),
        Table((0, "ref", [3]), (2, "u32", 2), (3, "ref", "bias")),
        Table((0, "ref", [1, 4]), (2, "u32", 0), (3, "ref", "input")),
        Table((0, "ref", [4, 3]), (2, "u32", 1), (3, "ref", "kernel-again")),
    ]
    return flatbuffer(Table(
        (0, "u32", 3),
        (1, "ref", [
            Table((0, "i8", 9), (3, "i32", 9)),  # FULLY_CONNECTED
            Table((0, "i8", 32), (1, "ref", "MyCustomOp"), (3, "i32", 32)),
        ]),
        (2, "ref", [Table((0, "ref", tensors), (4, "ref", "main"))]),
        (3, "ref", "made by hand"),
        (4, "ref", [Table(), Table((0, "ref", b"\0" * 48)), Table((0, "ref", b"\0" * 12))]),
    ))  # fmt: skip


def test_tflite(tmp_path):
    data = tflite_model()
    path = write(tmp_path / "model.tflite", data)
    assert tensorflow.detect(data[:4096], "model.tflite")
    facts = tensorflow.inspect(blob(path), CONTEXT).facts
    assert facts.format == "tflite"
    assert ("mlbom:tflite:version", "3") in facts.properties
    assert ("mlbom:tflite:custom-op", "MyCustomOp") in facts.properties
    assert ("mlbom:tflite:builtin-ops", "9") in facts.properties
    assert unsafe(facts) == [] and facts.parameter_count == 15


def test_hostile_tflite(tmp_path):
    data = tflite_model()
    far = bytearray(data)
    struct.pack_into("<I", far, 0, 1 << 30)  # the root table past the end
    cases = [data[:40], data[: len(data) // 2], bytes(far)]
    rng = random.Random(7)
    for _ in range(300):
        fuzzed = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            fuzzed[rng.randrange(len(fuzzed))] = rng.randrange(256)
        cases.append(bytes(fuzzed))
    for i, case in enumerate(cases):
        path = write(tmp_path / f"{i}.tflite", case)
        try:
            tensorflow.inspect(blob(path), CONTEXT)
        except InspectionError:
            pass
        else:
            assert i >= 3, "a broken file was read"


# -- Core ML ---------------------------------------------------------------------------------


def test_coreml_neural_network_with_custom_layer(tmp_path):
    metadata = pb((1, "A small net"), (2, "1.2"), (3, "Acme"), (4, "MIT"))
    layers = [pb((1, "conv"), (100, pb((1, 3)))), pb((1, "mine"), (500, pb((10, "MyLayer"))))]
    model = pb((1, 4), (2, pb((1, pb((1, "image"))), (100, metadata))),
               (500, pb(*((1, layer) for layer in layers))))  # fmt: skip
    path = write(tmp_path / "model.mlmodel", model)
    assert coreml.detect(model[:4096], "model.mlmodel")
    inspection = coreml.inspect(blob(path), CONTEXT)
    facts = inspection.facts
    assert facts.format == "coreml" and unsafe(facts) == []
    assert ("mlbom:coreml:spec-version", "4") in facts.properties
    assert ("mlbom:coreml:model-type", "neuralNetwork") in facts.properties
    assert ("mlbom:coreml:custom-layer", "MyLayer") in facts.properties
    assert ("mlbom:coreml:author", "Acme") in facts.properties
    assert inspection.info.description == "A small net" and inspection.info.licenses == ["MIT"]


def test_coreml_pipeline(tmp_path):
    inner = [pb((1, 4), (555, pb((10, "MyModel")))), pb((1, 4), (502, pb((1, 1))))]
    model = pb((1, 5), (200, pb((1, pb(*((1, m) for m in inner))))))
    facts = coreml.inspect(blob(write(tmp_path / "p.mlmodel", model)), CONTEXT).facts
    assert ("mlbom:coreml:model-type", "pipelineClassifier") in facts.properties
    assert ("mlbom:coreml:pipeline-model", "customModel") in facts.properties
    assert ("mlbom:coreml:pipeline-model", "mlProgram") in facts.properties
    assert ("mlbom:coreml:custom-model", "MyModel") in facts.properties


def test_hostile_coreml(tmp_path):
    deep = pb((1, 4), (500, b""))
    for _ in range(40):  # pipelines of pipelines
        deep = pb((1, 4), (202, pb((1, deep))))
    cases = [
        pb((1, 4), (500, pb((1, b"x" * 100))))[:-20],  # truncated
        pb((1, 4)),  # no model type
        pb((1, 4)) + varint(500 << 3 | 2) + varint(1 << 50),  # past the end
        deep,
    ]
    for i, data in enumerate(cases):
        with pytest.raises(InspectionError):
            coreml.inspect(blob(write(tmp_path / f"{i}.mlmodel", data)), CONTEXT)


def test_the_command_reads_each_format_by_its_bytes(cli, tmp_path):
    """Through `generate`: the dispatch finds each format whatever the file is called, and
    `--fail-on unsafe` counts a Lambda layer and a PyFunc op as code that runs."""
    folder = tmp_path / "m"
    folder.mkdir()
    legacy_h5(folder / "weights.bin", legacy_config(with_lambda=True))  # named like anything
    keras_v3(folder / "classifier.zip", zipfile.ZIP_DEFLATED)
    sm = saved_model([node("p", "PyFunc")], [])
    write(folder / "export" / "saved_model.pb", sm)
    bom, _ = cli.bom(folder)
    by_name = {c["name"]: c for c in bom["components"] if c["type"] == "file"}

    def values(name: str, key: str) -> list[str]:
        return [p["value"] for p in by_name[name].get("properties", []) if p["name"] == key]

    assert values("weights.bin", "mlbom:format") == ["keras-h5"]
    assert values("weights.bin", "mlbom:unsafe-import") == [
        "keras.layers.Lambda (marshalled Python bytecode)"
    ]
    assert values("classifier.zip", "mlbom:format") == ["keras"]
    assert "custom object my_pkg.layers.Evil" in values("classifier.zip", "mlbom:unsafe-import")
    assert values("export/saved_model.pb", "mlbom:unsafe-import") == [
        "tensorflow op PyFunc (runs Python code)"
    ]
    cli("generate", folder, "--fail-on", "unsafe", "-o", tmp_path / "bom.json", code=1)


# -- a red team's second round, kept closed ----------------------------------------------------

LAMBDA = "keras.layers.Lambda (marshalled Python bytecode)"


def _in_folder(tmp_path: Path) -> Path:
    (tmp_path / "m").mkdir()
    return tmp_path / "m"


def _generate(cli, folder: Path) -> dict[str, list[str]]:
    """Each file's findings through the command, which must exit 1 with --fail-on unsafe."""
    out = folder.parent / "bom.json"
    cli("generate", folder, "--fail-on", "unsafe", "-o", out, code=1)
    bom = json.loads(out.read_text())
    return {
        c["name"]: [p["value"] for p in c.get("properties", []) if p["name"] == "mlbom:unsafe-import"]
        for c in bom["components"] if c["type"] == "file"
    }  # fmt: skip


@pytest.mark.parametrize("userblock", [4096, 65536])
def test_hdf5_after_a_large_user_block(cli, tmp_path, userblock):
    legacy_h5(_in_folder(tmp_path) / "model.h5", legacy_config(True), userblock=userblock)
    assert LAMBDA in _generate(cli, tmp_path / "m")["model.h5"]


@pytest.mark.parametrize(
    "prefix", [b"GGUF\x03\x00\x00\x00" + b"\x00" * 16, b"\x10" + b"\x00" * 7 + b'{"a":1}']
)
def test_hdf5_whose_user_block_starts_like_another_format(cli, tmp_path, prefix):
    path = legacy_h5(_in_folder(tmp_path) / "model.h5", legacy_config(True), userblock=512)
    data = bytearray(path.read_bytes())
    data[: len(prefix)] = prefix
    path.write_bytes(bytes(data))
    assert LAMBDA in _generate(cli, tmp_path / "m")["model.h5"]


def test_two_root_attributes_of_one_name(cli, tmp_path):
    """HDF5 answers with the first; mlbom cannot say which a reader takes: unscanned."""
    path = tmp_path / "m" / "model.h5"
    path.parent.mkdir()
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(legacy_config(True))
        f.attrs["model_confiX"] = json.dumps(legacy_config(False))
    path.write_bytes(path.read_bytes().replace(b"model_confiX", b"model_config"))
    found = _generate(cli, tmp_path / "m")["model.h5"]
    assert any("duplicates" in f for f in found)


def test_hdf5_root_that_cannot_be_walked_is_unscanned(cli, tmp_path):
    path = legacy_h5(_in_folder(tmp_path) / "model.h5", legacy_config(False))
    data = bytearray(path.read_bytes())
    btree = _v1_messages(data, _root_v0(data))[0x11]
    struct.pack_into("<Q", data, btree, len(data) + 4096)  # the root's B-tree: past the end
    path.write_bytes(bytes(data))
    assert _generate(cli, tmp_path / "m")["model.h5"][0].startswith("<unscanned: ")


def test_keras_config_wherever_keras_reads_one(cli, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    config = {"module": "keras", "class_name": "Sequential", "config": {"layers": [
        {"class_name": "Lambda", "config": {"function": {"class_name": "__lambda__", "config": {}}}}]}}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))  # a Keras model saved as a folder
    with zipfile.ZipFile(folder / "only-config.keras", "w") as z:  # a .keras of its config alone
        z.writestr("config.json", json.dumps(config))
    gadget = {"module": "keras.utils", "class_name": "function", "config": "get_file"}
    with zipfile.ZipFile(folder / "gadget.keras", "w") as z:  # CVE-2025-8747
        z.writestr(
            "config.json", json.dumps({"class_name": "Functional", "config": {"layers": [gadget]}})
        )
    found = _generate(cli, folder)
    assert LAMBDA in found["config.json"] and LAMBDA in found["only-config.keras"]
    assert "function keras.utils.get_file (called on load)" in found["gadget.keras"]


def test_tf_keras_metadata_and_savedmodel_spellings(cli, tmp_path):
    folder = tmp_path / "m"
    layer = json.dumps(
        {"class_name": "Lambda", "config": {"function": _lambda_code(), "function_type": "lambda"}}
    )
    write(folder / "a" / "keras_metadata.pb", pb((1, pb((2, 1), (5, layer)))))
    pyfunc = saved_model([node("p", "EagerPyFunc")], [])
    write(folder / "b" / "saved_model.pb", b"\x7a\x00" + pyfunc)  # an empty unknown field first
    write(folder / "c" / "saved_model.pb", pyfunc + b"\x7b\x08\x01\x7c")  # then a group field
    write(folder / "d" / "saved_model.cpb", b"\x00" * 16)
    text = b'node { op : \'Eager\' "\\x50yFunc" } node { op: # a comment\n "\\120yFunc" }'
    write(folder / "e" / "saved_model.pbtxt", text)
    found = _generate(cli, folder)
    assert LAMBDA in found["a/keras_metadata.pb"]
    assert found["b/saved_model.pb"] == ["tensorflow op EagerPyFunc (runs Python code)"]
    assert found["c/saved_model.pb"] == ["tensorflow op EagerPyFunc (runs Python code)"]
    assert found["d/saved_model.cpb"][0].startswith("<unscanned: a chunked SavedModel")
    assert found["e/saved_model.pbtxt"] == [
        "tensorflow op EagerPyFunc (runs Python code)",
        "tensorflow op PyFunc (runs Python code)",
    ]
