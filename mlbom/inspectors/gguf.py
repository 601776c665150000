"""GGUF models (llama.cpp), from the key-value header with the `gguf` package.

The reader memory-maps the file and parses the header and tensor table; tensor data is
never read. A hostile header is checked for sane counts before the reader sees it.
"""

from __future__ import annotations

import hashlib
import struct
import warnings
from collections.abc import Callable
from typing import Any

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection, text
from mlbom.models import BaseModel, Dataset, FileFacts, ModelInfo
from mlbom.sources import Blob

FORMAT = "gguf"
MAX_TENSORS = 1 << 20
MAX_KEYS = 1 << 16


def matches(path: str) -> bool:
    return path.endswith(".gguf")


def inspect(blob: Blob, context: Context) -> Inspection:
    _check_preamble(blob)
    if blob.local_path is None:
        raise InspectionError(f"{blob.path}: GGUF headers are read from local files only")
    from gguf import GGUFReader, LlamaFileType

    with warnings.catch_warnings():  # numpy overflow warnings on hostile offsets: errors follow
        warnings.simplefilter("ignore")
        reader = GGUFReader(blob.local_path)

    def value(key: str) -> Any:
        field = reader.fields.get(key)
        return field.contents() if field is not None and field.types else None

    facts = FileFacts(format=FORMAT, structured=True)
    facts.parameter_count = sum(int(t.n_elements) for t in reader.tensors)
    arch = value("general.architecture")
    props = facts.properties
    props.append(("mlbom:tensor-count", str(len(reader.tensors))))
    if (version := value("GGUF.version")) is not None:
        props.append(("mlbom:gguf:version", str(version)))
    if arch:
        props.append(("mlbom:gguf:architecture", str(arch)))
    if (file_type := value("general.file_type")) is not None:
        try:
            props.append(("mlbom:quantization", LlamaFileType(int(file_type)).name))
        except ValueError:
            props.append(("mlbom:quantization", f"file_type {int(file_type)}"))
    if (qv := value("general.quantization_version")) is not None:
        props.append(("mlbom:gguf:quantization-version", str(qv)))
    if (ctx := value(f"{arch}.context_length")) is not None:
        props.append(("mlbom:context-length", str(ctx)))
    for key in sorted(k for k in reader.fields if k.startswith("tokenizer.chat_template")):
        template = value(key)
        if isinstance(template, str):
            suffix = key.removeprefix("tokenizer.chat_template").lstrip(".")
            name = "mlbom:chat-template:sha256" + (f":{suffix}" if suffix else "")
            props.append((name, hashlib.sha256(template.encode()).hexdigest()))

    info = ModelInfo(
        name=text(value("general.name")),
        version=text(value("general.version")),
        description=text(value("general.description")),
        architecture_family=text(arch),
        licenses=[lic] if (lic := text(value("general.license"))) else [],
        license_url=text(value("general.license.link")),
        tags=[str(t) for t in value("general.tags") or []][:100],
    )
    info.base_models = [
        BaseModel(name, version=v, url=u) for name, v, u in _sources(value, "base_model")
    ]
    info.datasets = [Dataset(name, revision=v, url=u) for name, v, u in _sources(value, "dataset")]
    if langs := value("general.languages"):
        props += [("mlbom:language", str(lang)) for lang in langs[:50]]
    return Inspection(facts, info)


def _sources(value: Callable[[str], Any], kind: str) -> list[tuple[str, str | None, str | None]]:
    """(organization/name, version, repository URL) of each `general.<kind>.<i>` entry."""
    found = []
    for i in range(min(int(value(f"general.{kind}.count") or 0), 64)):
        if name := text(value(f"general.{kind}.{i}.name")):
            org = text(value(f"general.{kind}.{i}.organization"))
            found.append((
                f"{org}/{name}" if org and "/" not in name else name,
                text(value(f"general.{kind}.{i}.version")),
                text(value(f"general.{kind}.{i}.repo_url")),
            ))  # fmt: skip
    return found


def _check_preamble(blob: Blob) -> None:
    head = blob.read_at(0, 24)
    if len(head) < 24 or head[:4] != b"GGUF":
        raise InspectionError(f"{blob.path}: not a GGUF file (bad magic)")
    version, tensors, keys = struct.unpack("<IQQ", head[4:24])
    if version not in (2, 3):
        raise InspectionError(f"{blob.path}: unsupported GGUF version {version}")
    if tensors > MAX_TENSORS or keys > MAX_KEYS:
        raise InspectionError(
            f"{blob.path}: header claims {tensors} tensors and {keys} keys, beyond any real model"
        )
