"""Crafted files finish quickly: every parser is linear in its input with explicit caps.

The wall-clock bounds are generous guards; the figures are in `bench/bench_hostile.py`.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection, card, config, gguf, onnx, safetensors
from mlbom.sources.local import LocalBlob

MIB = 1 << 20
GUARD = 5.0  # seconds


@contextmanager
def quickly() -> Iterator[None]:
    start = time.perf_counter()
    yield
    assert time.perf_counter() - start < GUARD


def run(module: ModuleType, path: Path) -> Inspection:
    blob = LocalBlob(path.name, path, path.stat().st_size)
    with quickly():
        return module.inspect(blob, Context(frozenset()))


def refused(module: ModuleType, path: Path, match: str) -> None:
    with quickly(), pytest.raises(InspectionError, match=match):
        run(module, path)


# -- model card: one input against each pattern the card was read with ---------------------


@pytest.mark.parametrize(
    "body",
    [
        b"```a\n" * (MIB // 5),  # unclosed fences: `^(```).*?^\1$` retried from each
        b"<!--" * (MIB // 4),  # unclosed comments: `<!--.*?-->` retried from each
        b"[a](" * (MIB // 4),  # links without their `)`
        b"[" * MIB,  # links without their `]`
        b"# a" + b" " * MIB + b"b\n",  # `(.+?)[ \t#]*$`: the lazy group and the blanks
        b"# a   \n" * (MIB // 7),  # headings with trailing blanks
        b"\n \t \t x" * (MIB // 7),  # blank-line runs that are not paragraph breaks
        b"x" * 60 + b"{{ More Information Needed\n" * (MIB // 30),
        b"---\n" + b"a: b\n" * 10 + b"---\n" + b"## Limitations\n" + b"- [x](y)\n" * (MIB // 9),
    ],
    ids=["fences", "comments", "links", "brackets", "long-heading", "headings", "blanks",
         "template-lines", "section"],
)  # fmt: skip
def test_card_patterns_are_linear(tmp_path, body):
    path = tmp_path / "README.md"
    path.write_bytes(b"# T\n\n" + body)
    run(card, path)


def test_card_front_matter_is_capped(tmp_path):
    path = tmp_path / "README.md"
    path.write_bytes(b"---\n" + b"k: v\n" * (card.MAX_FRONT_MATTER // 5 + 10) + b"---\n# T\n")
    refused(card, path, "front matter is over")


def test_card_front_matter_nested_too_deeply(tmp_path):
    path = tmp_path / "README.md"
    path.write_bytes(b"---\nk: " + b"[" * 50_000 + b"\n---\n")
    refused(card, path, "front matter")


def test_card_thousands_of_model_index_results(tmp_path):
    results = "".join(
        f"  - dataset: {{type: d{i}}}\n    metrics: [{{type: acc, value: {i}}}]\n"
        for i in range(3000)
    )
    path = tmp_path / "README.md"
    path.write_text(f"---\nmodel-index:\n- name: m\n  results:\n{results}---\n# T\n")
    info = run(card, path).info
    assert len(info.datasets) == card.MAX_RESULTS


# -- shapes: checked before anything multiplies them --------------------------------------


def safetensors_header(path: Path, shape: list[int], data: int = 2) -> Path:
    header = json.dumps({"t": {"dtype": "F16", "shape": shape, "data_offsets": [0, data]}})
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + b"\0" * data)
    return path


@pytest.mark.parametrize(
    "shape, match",
    [
        ([2] * 17, "17 dimensions"),
        ([-1, 4], "malformed"),
        ([2**49], "outside 0..2\\*\\*48"),
        ([2**48] * 16, "more than 2\\*\\*62"),
        ([1] * 2_000_000, "2000000 dimensions"),
    ],
)
def test_safetensors_shapes(tmp_path, shape, match):
    refused(safetensors, safetensors_header(tmp_path / "m.safetensors", shape), match)


def test_safetensors_deep_header(tmp_path):
    header = b'{"t":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    refused(safetensors, path, "nested too deeply")


def test_shape_product_never_grows(tmp_path):
    assert safetensors.elements([0, 2**48, 2**48]) == 0
    assert safetensors.elements([2**20, 2**20, 2**20]) == 2**60
    with pytest.raises(InspectionError):
        safetensors.elements([2**31] * 3)
    with pytest.raises(InspectionError):
        safetensors.total([2**61, 2**61, 2**61])


# -- GGUF ---------------------------------------------------------------------------------


def gguf_bytes(kv: bytes, keys: int, tensors: bytes = b"", count: int = 0) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, count, keys) + kv + tensors


def gstr(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "dims, match",
    [([2**63, 2, 2, 2], "outside 0..2"), ([2**40] * 4, "more than 2"), ([2] * 9, "9 dimensions")],
)
def test_gguf_shapes(tmp_path, dims, match):
    tensor = gstr(b"t") + struct.pack(f"<I{len(dims)}Q", len(dims), *dims) + b"\0" * 12
    refused(gguf, write(tmp_path / "m.gguf", gguf_bytes(b"", 0, tensor, 1)), match)


def test_gguf_millions_of_empty_arrays(tmp_path):
    count = 3_000_000
    value = struct.pack("<IIQ", 9, 9, count) + struct.pack("<IQ", 0, 0) * count
    refused(gguf, write(tmp_path / "m.gguf", gguf_bytes(gstr(b"a") + value, 1)), "arrays")


def test_gguf_arrays_nested_too_deeply(tmp_path):
    value = struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 3 + struct.pack("<IQ", 0, 0)
    refused(gguf, write(tmp_path / "m.gguf", gguf_bytes(gstr(b"a") + value, 1)), "deeper")


def test_gguf_string_count_against_the_bytes_left(tmp_path):
    value = struct.pack("<IIQ", 9, 8, 2**40) + b"\0" * 64
    refused(gguf, write(tmp_path / "m.gguf", gguf_bytes(gstr(b"a") + value, 1)), "strings")


def test_gguf_a_million_strings_are_walked(tmp_path):
    count = 1 << 20
    value = struct.pack("<IIQ", 9, 8, count) + b"\0" * (8 * count)  # empty strings
    path = write(tmp_path / "m.gguf", gguf_bytes(gstr(b"tokenizer.ggml.tokens") + value, 1))
    assert run(gguf, path).facts.parameter_count == 0


def test_gguf_too_many_keys(tmp_path):
    refused(gguf, write(tmp_path / "m.gguf", gguf_bytes(b"", 1 << 30)), "keys")


# -- ONNX ---------------------------------------------------------------------------------


def test_onnx_negative_dimension(tmp_path):
    import numpy as np
    from onnx import helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((2,), dtype=np.float32), name="W")
    weight.dims[:] = [-3, 2]
    graph = helper.make_graph([], "g", [], [], initializer=[weight])
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    refused(onnx, path, "outside 0..2")


def test_onnx_many_constant_nodes(tmp_path):
    import numpy as np
    from onnx import helper, numpy_helper

    tensor = numpy_helper.from_array(np.ones((2,), dtype=np.float32))
    nodes = [helper.make_node("Constant", [], [f"c{i}"], value=tensor) for i in range(20_000)]
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(helper.make_graph(nodes, "g", [], [])).SerializeToString())
    assert run(onnx, path).facts.parameter_count == 40_000


def test_onnx_graph_entries_are_capped(tmp_path, monkeypatch):
    from onnx import helper

    monkeypatch.setattr(onnx, "MAX_GRAPH_FIELDS", 1000)
    nodes = [helper.make_node("Relu", ["x"], ["y"]) for _ in range(1001)]
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(helper.make_graph(nodes, "g", [], [])).SerializeToString())
    refused(onnx, path, "over 1000 entries")


# -- JSON ---------------------------------------------------------------------------------


def test_deep_config_json(tmp_path):
    path = write(tmp_path / "config.json", b'{"a":' + b"[" * 1_000_000 + b"}")
    refused(config, path, "nested too deeply")


def test_deep_and_wide_auto_map(tmp_path):
    deep: object = "modeling_deep.M"
    for _ in range(500):
        deep = [deep]
    wide = {f"A{i}": f"modeling_{i}.M" for i in range(200_000)}
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auto_map": {"deep": deep, **wide}}))
    info = run(config, path).info
    assert len([p for p in info.properties if p[0] == "mlbom:custom-code"]) == 50


def test_huge_number_in_config(tmp_path):
    path = write(tmp_path / "config.json", b'{"a": ' + b"9" * 100_000 + b"}")
    refused(config, path, "not valid JSON")
