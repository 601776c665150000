"""safetensors weights (single files and sharded indexes), from the JSON header only.

Tensor shapes are checked before anything multiplies them (`elements`, which the GGUF
and ONNX inspectors use too): a shape is at most `MAX_DIMS` dimensions of 0 to `MAX_DIM`,
and no product or total grows past `MAX_ELEMENTS`.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection
from mlbom.inspectors.config import load_json
from mlbom.models import FileFacts
from mlbom.sources import Blob

FORMAT = "safetensors"
# The safetensors library allows 100 MB; real headers stay far below, and 64 MiB of JSON
# keeps the parsed header within a few hundred MB of memory.
MAX_HEADER = 64 << 20
MAX_INDEX = 64 << 20
MAX_METADATA_ITEMS = 64
MAX_VALUE = 1024
MAX_DIMS = 16
MAX_DIM = 1 << 48
MAX_ELEMENTS = 1 << 62  # of one tensor, and of a file's tensors together
# bits per element; sub-byte float types pack elements
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "F4": 4,
    "F6_E2M3": 6, "F6_E3M2": 6, "F16": 16, "BF16": 16, "I16": 16, "U16": 16,
    "F32": 32, "I32": 32, "U32": 32, "F64": 64, "I64": 64, "U64": 64, "C64": 64,
}  # fmt: skip


def elements(shape: Sequence[int]) -> int:
    """The element count of a tensor shape of non-negative ints. Checked before multiplying:
    over `MAX_DIMS` dimensions, a dimension outside 0..`MAX_DIM` or a product over
    `MAX_ELEMENTS` is an `InspectionError`, so no product ever grows into a huge integer."""
    if len(shape) > MAX_DIMS:
        raise InspectionError(f"a tensor claims {len(shape)} dimensions (at most {MAX_DIMS})")
    if any(d < 0 or d > MAX_DIM for d in shape):
        raise InspectionError(f"a tensor claims a dimension outside 0..2**48: {list(shape)[:8]}")
    if 0 in shape:
        return 0
    count = 1
    for d in shape:
        count *= d  # below 2**62 * 2**48 at worst: a small integer
        if count > MAX_ELEMENTS:
            raise InspectionError("a tensor claims more than 2**62 elements")
    return count


def total(counts: Iterable[int]) -> int:
    """Element counts added up, refused past `MAX_ELEMENTS`."""
    found = 0
    for count in counts:
        found += count
        if found > MAX_ELEMENTS:
            raise InspectionError("the tensors claim more than 2**62 elements together")
    return found


def matches(path: str) -> bool:
    return path.endswith((".safetensors", ".safetensors.index.json"))


def inspect(blob: Blob, context: Context) -> Inspection:
    if blob.path.endswith(".index.json"):
        return _inspect_index(blob, context)
    header = read_header(blob)
    facts = FileFacts(format=FORMAT, structured=True)
    dtypes = Counter(t["dtype"] for name, t in header.items() if name != "__metadata__")
    facts.parameter_count = total(
        elements(t["shape"]) for name, t in header.items() if name != "__metadata__"
    )
    facts.properties += [
        ("mlbom:tensor-count", str(sum(dtypes.values()))),
        ("mlbom:dtypes", ",".join(f"{d}:{n}" for d, n in sorted(dtypes.items()))),
    ]
    metadata = header.get("__metadata__") or {}
    for key, value in list(metadata.items())[:MAX_METADATA_ITEMS]:
        facts.properties.append((f"mlbom:safetensors:metadata:{key[:100]}", str(value)[:MAX_VALUE]))
    return Inspection(facts)


def read_header(blob: Blob) -> dict:
    """The validated header; a header that lies about the file is refused."""
    if blob.size < 8:
        raise InspectionError(f"{blob.path}: too short for a safetensors file ({blob.size} bytes)")
    (length,) = struct.unpack("<Q", blob.read_at(0, 8))
    if length > MAX_HEADER or length > blob.size - 8:
        raise InspectionError(
            f"{blob.path}: header length {length} is beyond the file ({blob.size} bytes)"
            if length > blob.size - 8
            else f"{blob.path}: header length {length} exceeds the {MAX_HEADER}-byte limit"
        )
    header = load_json(blob.read_at(8, length), blob.path, "the header")
    if not isinstance(header, dict):
        raise InspectionError(f"{blob.path}: header is not a JSON object")
    _check_tensors(blob, header, data_size=blob.size - 8 - length)
    return header


def _check_tensors(blob: Blob, header: dict, data_size: int) -> None:
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict):
        raise InspectionError(f"{blob.path}: __metadata__ is not an object")
    spans = []
    for name, t in header.items():
        if name == "__metadata__":
            continue
        shape = t.get("shape") if isinstance(t, dict) else None
        if isinstance(shape, list) and len(shape) > MAX_DIMS:  # before reading each one
            raise InspectionError(
                f"{blob.path}: tensor {name[:100]!r} claims {len(shape)} dimensions "
                f"(at most {MAX_DIMS})"
            )
        ok = (
            isinstance(t, dict)
            and isinstance(t.get("dtype"), str)
            and isinstance(t.get("shape"), list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in t["shape"])
            and isinstance(t.get("data_offsets"), list)
            and len(t["data_offsets"]) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in t["data_offsets"])
        )
        if not ok:
            raise InspectionError(f"{blob.path}: tensor {name[:100]!r} has a malformed entry")
        try:
            count = elements(t["shape"])
        except InspectionError as e:
            raise InspectionError(f"{blob.path}: tensor {name[:100]!r}: {e.message}") from e
        begin, end = t["data_offsets"]
        if not 0 <= begin <= end <= data_size:
            raise InspectionError(
                f"{blob.path}: tensor {name[:100]!r} lies outside the file "
                f"(offsets {begin}-{end}, data is {data_size} bytes)"
            )
        bits = DTYPE_BITS.get(t["dtype"])
        if bits is not None and -(-count * bits // 8) != end - begin:
            raise InspectionError(
                f"{blob.path}: tensor {name[:100]!r} size does not match its shape and dtype"
            )
        spans.append((begin, end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise InspectionError(f"{blob.path}: tensors overlap or leave holes in the data")
        position = end
    if position != data_size:
        raise InspectionError(f"{blob.path}: {data_size - position} bytes after the last tensor")


def _inspect_index(blob: Blob, context: Context) -> Inspection:
    index = load_json(blob.read_all(MAX_INDEX), blob.path)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise InspectionError(f"{blob.path}: no weight_map of tensor names to shard files")
    folder = PurePosixPath(blob.path).parent
    shards = sorted(set(weight_map.values()))
    escaping = [
        s for s in shards if PurePosixPath(s).is_absolute() or ".." in PurePosixPath(s).parts
    ]
    if escaping:
        raise InspectionError(f"{blob.path}: shard paths leave the model folder: {escaping[:5]}")
    facts = FileFacts(format="safetensors-index", structured=True)
    facts.properties.append(("mlbom:shard-count", str(len(shards))))
    metadata = index.get("metadata")
    size = metadata.get("total_size") if isinstance(metadata, dict) else None
    if isinstance(size, int) and not isinstance(size, bool):
        facts.properties.append(("mlbom:total-size", str(size)))
    missing = [s for s in shards if (folder / s).as_posix() not in context.paths]
    if missing:
        facts.error = f"the index names shards missing from the model: {', '.join(missing[:10])}"
    return Inspection(facts)
