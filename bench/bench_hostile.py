"""Time taken by crafted, hostile model files (issue 14: bounded time).

Each class of input is built at several sizes up to 64 MiB in a temporary folder and read
through the public dispatch, `mlbom.inspectors.inspect`, which picks the inspector. The
baseline, measured in the same run on the same file, is hashing it twice with SHA-256 and
SHA-512 (what `mlbom generate` does once). Target, per class: no input of up to 64 MiB
takes longer to inspect than that baseline (ratio <= 1.00).

Run: `python bench/bench_hostile.py` (sizes 1, 8 and 64 MiB; about three minutes) or
`--quick` (1 and 4 MiB).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import lzma
import struct
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from mlbom import inspectors
from mlbom.sources.local import LocalSource

MIB = 1 << 20
Builder = Callable[[Path, int], None]


def _card(unit: bytes, head: bytes = b"# Title\n\n") -> Builder:
    def build(path: Path, size: int) -> None:
        path.write_bytes(head + unit * ((size - len(head)) // len(unit)))

    return build


def _one_line_heading(path: Path, size: int) -> None:
    # against `#+ (.+?)[ \t#]*$`: a long run of blanks the lazy group retries at each step
    path.write_bytes(b"# a" + b" " * (size - 8) + b"b\n")


def _front_matter(path: Path, size: int) -> None:
    """As much YAML as the cap lets through, then prose."""
    yaml = b"".join(b"k%d: [a, b, {c: d}]\n" % i for i in range(12000))[: (256 << 10) - 64]
    yaml = yaml[: yaml.rfind(b"\n") + 1]
    head = b"---\n" + yaml + b"---\n# T\n\n"
    path.write_bytes(head + b"word " * ((size - len(head)) // 5))


def _safetensors(shape: list[int]) -> Builder:
    def build(path: Path, size: int) -> None:
        header = json.dumps({"t": {"dtype": "F16", "shape": shape, "data_offsets": [0, 2]}})
        raw = header.encode()
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            f.truncate(size)

    return build


def _safetensors_long_shape(path: Path, size: int) -> None:
    """A shape list filling the header: millions of dimensions to parse."""
    count = (size - 128) // 2
    raw = b'{"t":{"dtype":"F16","data_offsets":[0,2],"shape":[' + b"1," * (count - 1) + b"1]}}"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0\0")


def _gguf(kv: bytes, keys: int, tensors: bytes = b"", count: int = 0) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, count, keys) + kv + tensors


def _gstr(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


def _padded(data: bytes, path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.truncate(max(size, len(data)))


def _gguf_huge_shape(path: Path, size: int) -> None:
    tensor = _gstr(b"t") + struct.pack("<I", 4) + struct.pack("<4Q", *[2**63] * 4)
    _padded(_gguf(b"", 0, tensor + struct.pack("<IQ", 0, 0), 1), path, size)


def _gguf_empty_arrays(path: Path, size: int) -> None:
    """One array holding millions of empty arrays (12 bytes each)."""
    count = (size - 64) // 12
    value = struct.pack("<IIQ", 9, 9, count) + struct.pack("<IQ", 0, 0) * count
    path.write_bytes(_gguf(_gstr(b"a") + value, 1))


def _gguf_nested_arrays(path: Path, size: int) -> None:
    """As many arrays of arrays of empty arrays as the budget lets through, then padding."""
    inner = struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 0, 0)
    value = struct.pack("<IIQ", 9, 9, 2000) + inner * 2000
    _padded(_gguf(_gstr(b"a") + value, 1), path, size)


def _gguf_strings(path: Path, size: int) -> None:
    """An array of as many empty strings as fit (8 bytes each)."""
    count = (size - 64) // 8
    value = struct.pack("<IIQ", 9, 8, count) + b"\0" * (8 * count)
    path.write_bytes(_gguf(_gstr(b"tokenizer.ggml.tokens") + value, 1))


def _gguf_many_keys(path: Path, size: int) -> None:
    """As many keys as allowed, each an empty array."""
    kv = b"".join(_gstr(b"k%d" % i) + struct.pack("<IIQ", 9, 0, 0) for i in range(1024))
    _padded(_gguf(kv, 1024), path, size)


def _onnx_constants(path: Path, size: int) -> None:
    """Constant nodes, each holding a small tensor: as many as the node cap allows."""
    import numpy as np
    from onnx import helper, numpy_helper

    tensor = numpy_helper.from_array(np.ones(max(1, size // 250_000), dtype=np.float32))
    node = helper.make_node("Constant", [], ["c"], value=tensor).SerializeToString()
    count = min(size // (len(node) + 3), (1 << 18) - 1)
    graph = (b"\x0a" + _varint(len(node)) + node) * count
    model = helper.make_model(helper.make_graph([], "g", [], [])).SerializeToString()
    _padded(model + b"\x3a" + _varint(len(graph)) + graph, path, 0)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _deep_json(path: Path, size: int) -> None:
    path.write_bytes(b'{"a":' + b"[" * (min(size, 16 * MIB) - 8) + b"}")


def _wide_json(path: Path, size: int) -> None:
    count = min(size, 15 * MIB) // 32  # the whole document stays under the 16 MiB cap
    amap = {f"A{i}": f"modeling_{i}.M" for i in range(count)}
    path.write_text(json.dumps({"model_type": "x", "auto_map": amap}))


def _pickle_dense(path: Path, size: int) -> None:
    path.write_bytes(b"\x80\x04" + b"N0" * ((size - 4) // 2) + b"N.")


def _pickle_memo(path: Path, size: int) -> None:
    path.write_bytes(b"\x80\x04" + b"N\x94" * ((size - 4) // 2) + b"N.")


def _zip_members(path: Path, size: int) -> None:
    """Up to 100k empty members (pickles by name), the rest one stored member."""
    count = min(100_000, size // 128)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i in range(count):
            z.writestr(f"archive/data/{i}", b"")
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        z.writestr("archive/pad", b"\0" * max(0, size - 130 * count - 4096))


def _bomb(compress: Callable[[bytes], bytes]) -> Builder:
    member = compress(b"\0" * (64 * MIB))  # each member inflates 64 MiB of zeros

    def build(path: Path, size: int) -> None:
        with open(path, "wb") as f:
            for _ in range(max(1, size // len(member))):
                f.write(member)

    return build


def _nested_zip(path: Path, size: int) -> None:
    inner = b"\0" * size
    name = "data.pkl"
    for depth in range(16):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
            z.writestr(name, inner)
        inner, name = buffer.getvalue(), f"level{depth}.zip"
    path.write_bytes(inner)


CASES: list[tuple[str, str, Builder]] = [
    ("card: unclosed code fences", "README.md", _card(b"```a\n")),
    ("card: unclosed comments", "README.md", _card(b"<!--")),
    ("card: link brackets", "README.md", _card(b"[a](")),
    ("card: open brackets", "README.md", _card(b"[")),
    ("card: one long heading", "README.md", _one_line_heading),
    ("card: headings", "README.md", _card(b"# a   \n")),
    ("card: blank-line runs", "README.md", _card(b"\n \t \t x")),
    ("card: template lines", "README.md", _card(b"x" * 60 + b"{{ more information\n")),
    ("card: 256 KiB front matter", "README.md", _front_matter),
    ("safetensors: huge shape", "model.safetensors", _safetensors([2**48] * 16)),
    ("safetensors: 17 dimensions", "model.safetensors", _safetensors([2**40] * 17)),
    ("safetensors: long shape list", "model.safetensors", _safetensors_long_shape),
    ("gguf: huge shape", "model.gguf", _gguf_huge_shape),
    ("gguf: millions of empty arrays", "model.gguf", _gguf_empty_arrays),
    ("gguf: nested arrays", "model.gguf", _gguf_nested_arrays),
    ("gguf: string array", "model.gguf", _gguf_strings),
    ("gguf: 1024 keys", "model.gguf", _gguf_many_keys),
    ("onnx: Constant nodes", "model.onnx", _onnx_constants),
    ("json: deep nesting", "config.json", _deep_json),
    ("json: huge auto_map", "config.json", _wide_json),
    ("pickle: dense opcodes", "model.pkl", _pickle_dense),
    ("pickle: memo table", "model.pkl", _pickle_memo),
    ("zip: 100k members", "model.pt", _zip_members),
    ("gzip: bomb of zeros", "weights.gz", _bomb(lambda b: gzip.compress(b, 9))),
    ("xz: bomb of zeros", "weights.xz", _bomb(lambda b: lzma.compress(b, preset=9))),
    ("zip: nested 16 deep", "model.zip", _nested_zip),
]


def hash_twice(path: Path) -> float:
    """The baseline: SHA-256 and SHA-512 of the file, computed twice, read from disk."""
    start = time.perf_counter()
    for _ in range(2):
        digests = [hashlib.sha256(), hashlib.sha512()]
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(4 * MIB):
                for d in digests:
                    d.update(chunk)
    return time.perf_counter() - start


def inspect_time(path: Path) -> tuple[float, str]:
    """Seconds to inspect the file (the better of two runs when one is under a second, so
    that first imports are not counted) and what came of it."""
    blob = LocalSource(path).blobs()[0]
    context = inspectors.Context(paths=frozenset())
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        try:
            inspection, _ = inspectors.inspect(blob, context)
        except Exception as e:  # the dispatch failing is a finding, not the end of the run
            return time.perf_counter() - start, f"CRASH {type(e).__name__}: {e}"[:70]
        best = min(best, time.perf_counter() - start)
        if best >= 1.0:
            break
    error = inspection.facts.error
    return best, f"refused: {error}"[:70] if error else "read"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 1 and 4 MiB")
    args = parser.parse_args()
    sizes = [1 * MIB, 4 * MIB] if args.quick else [1 * MIB, 8 * MIB, 64 * MIB]
    print(
        f"baseline: SHA-256 + SHA-512 of the same file, twice; sizes {[s >> 20 for s in sizes]} MiB"
    )
    failures = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlbom-hostile-") as tmp:
        for label, name, build in CASES:
            print(f"\n{label}")
            worst = 0.0
            for size in sizes:
                folder = Path(tmp) / f"case-{size}"
                folder.mkdir(exist_ok=True)
                path = folder / name
                build(path, size)
                actual = path.stat().st_size
                baseline = min(hash_twice(path) for _ in range(2))
                seconds, outcome = inspect_time(path)
                ratio = seconds / baseline
                worst = max(worst, ratio)
                print(
                    f"   {actual / MIB:7.2f} MiB  {seconds:8.4f} s  {seconds / (actual / MIB):8.5f} s/MiB"
                    f"  baseline {baseline:7.4f} s  ratio {ratio:7.2f}  {outcome}"
                )
                path.unlink()
            verdict = "PASS" if worst <= 1.0 else "FAIL"
            print(f"   worst ratio {worst:.2f}  {verdict}")
            if verdict == "FAIL":
                failures.append(f"{label} ({worst:.2f})")
    print(
        f"\n{len(CASES) - len(failures)}/{len(CASES)} classes PASS in {time.perf_counter() - started:.0f} s"
    )
    for failure in failures:
        print(f"   FAIL {failure}")


if __name__ == "__main__":
    main()
