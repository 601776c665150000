"""safetensors weights (single files and sharded indexes), from the JSON header only."""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from pathlib import PurePosixPath

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection
from mlbom.models import FileFacts
from mlbom.sources import Blob

FORMAT = "safetensors"
# The safetensors library allows 100 MB; real headers stay far below, and 64 MiB of JSON
# keeps the parsed header within a few hundred MB of memory.
MAX_HEADER = 64 << 20
MAX_INDEX = 64 << 20
MAX_METADATA_ITEMS = 64
MAX_VALUE = 1024
# bits per element; sub-byte float types pack elements
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "F4": 4,
    "F6_E2M3": 6, "F6_E3M2": 6, "F16": 16, "BF16": 16, "I16": 16, "U16": 16,
    "F32": 32, "I32": 32, "U32": 32, "F64": 64, "I64": 64, "U64": 64, "C64": 64,
}  # fmt: skip


def matches(path: str) -> bool:
    return path.endswith((".safetensors", ".safetensors.index.json"))


def inspect(blob: Blob, context: Context) -> Inspection:
    if blob.path.endswith(".index.json"):
        return _inspect_index(blob, context)
    header = read_header(blob)
    facts = FileFacts(format=FORMAT, structured=True)
    dtypes: Counter[str] = Counter()
    params = 0
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        dtypes[tensor["dtype"]] += 1
        params += math.prod(tensor["shape"])
    facts.parameter_count = params
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
    try:
        header = json.loads(blob.read_at(8, length))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise InspectionError(f"{blob.path}: header is not valid JSON ({e})") from e
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
        begin, end = t["data_offsets"]
        if not 0 <= begin <= end <= data_size:
            raise InspectionError(
                f"{blob.path}: tensor {name[:100]!r} lies outside the file "
                f"(offsets {begin}-{end}, data is {data_size} bytes)"
            )
        bits = DTYPE_BITS.get(t["dtype"])
        if bits is not None and math.ceil(math.prod(t["shape"]) * bits / 8) != end - begin:
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
    try:
        index = json.loads(blob.read_all(MAX_INDEX))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise InspectionError(f"{blob.path}: not valid JSON ({e})") from e
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
    total = (index.get("metadata") or {}).get("total_size")
    if isinstance(total, int):
        facts.properties.append(("mlbom:total-size", str(total)))
    missing = [s for s in shards if (folder / s).as_posix() not in context.paths]
    if missing:
        facts.error = f"the index names shards missing from the model: {', '.join(missing[:10])}"
    return Inspection(facts)
