"""Configuration files written next to the weights: transformers' `config.json`, PEFT's
`adapter_config.json`, diffusers' `model_index.json` and the tokenizer config (whose chat
template, like GGUF's, is a known tampering surface and so is recorded by its hash)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import PurePosixPath
from typing import Any

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection, text
from mlbom.inspectors.card import hub_url
from mlbom.models import BaseModel, FileFacts, ModelInfo
from mlbom.sources import Blob

FORMAT = "json"
MAX_CONFIG = 16 << 20
NAMES = frozenset(
    {"config.json", "generation_config.json", "tokenizer_config.json", "adapter_config.json",
     "model_index.json"}
)  # fmt: skip
_HUB_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# `_name_or_path` is also where training saved to: `outputs/checkpoint-500` is no Hub repo.
_LOCAL_CHECKPOINT = re.compile(
    r"^(outputs?|checkpoints?|runs?|results?|tmp|models?|saved?)/|checkpoint-\d"
)


def matches(path: str) -> bool:
    return PurePosixPath(path).name in NAMES


def inspect(blob: Blob, context: Context) -> Inspection:
    try:
        data = json.loads(blob.read_all(MAX_CONFIG))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise InspectionError(f"{blob.path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise InspectionError(f"{blob.path}: not a JSON object")
    facts = FileFacts(format=FORMAT, structured=True)
    info = ModelInfo()
    top_level = "/" not in blob.path
    name = PurePosixPath(blob.path).name
    if name == "config.json" and top_level:
        _model_config(data, info)
    elif name == "adapter_config.json" and top_level:
        if base := text(data.get("base_model_name_or_path")):
            info.base_models.append(BaseModel(name=base, relation="adapter", url=hub_url(base)))
        if peft := text(data.get("peft_type")):
            info.properties.append(("mlbom:peft-type", peft))
    elif name == "model_index.json" and top_level:
        if cls := text(data.get("_class_name")):
            info.architectures = [cls]
            info.architecture_family = "diffusers"
    elif name == "tokenizer_config.json":
        facts.properties += _chat_templates(data.get("chat_template"))
    if isinstance(data.get("auto_map"), dict):
        # Loading needs trust_remote_code: the repository's Python files run.
        modules = sorted({str(v).split(".")[0] for v in _flatten(data["auto_map"])})[:50]
        info.properties += [("mlbom:custom-code", m) for m in modules]
    return Inspection(facts, info)


def _model_config(data: dict[str, Any], info: ModelInfo) -> None:
    info.architecture_family = text(data.get("model_type"))
    architectures = data.get("architectures")
    if isinstance(architectures, list):
        info.architectures = [a for a in map(text, architectures[:20]) if a]
    origin = text(data.get("_name_or_path"))
    if origin and _HUB_REPO.match(origin) and not _LOCAL_CHECKPOINT.search(origin):
        info.base_models.append(BaseModel(name=origin, url=hub_url(origin), inferred=True))
    for key, prop in (
        ("torch_dtype", "mlbom:dtype"),
        ("dtype", "mlbom:dtype"),
        ("transformers_version", "mlbom:transformers-version"),
        ("max_position_embeddings", "mlbom:context-length"),
    ):
        if (value := text(data.get(key))) and prop not in {p for p, _ in info.properties}:
            info.properties.append((prop, value))
    quantization = data.get("quantization_config")
    if isinstance(quantization, dict) and (method := text(quantization.get("quant_method"))):
        info.properties.append(("mlbom:quantization", method))


def _chat_templates(template: Any) -> list[tuple[str, str]]:
    """A template is one string, or a list of named ones (`[{name, template}]`)."""
    if isinstance(template, str):
        return [("mlbom:chat-template:sha256", hashlib.sha256(template.encode()).hexdigest())]
    found = []
    for entry in template if isinstance(template, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("template"), str):
            name = "" if entry.get("name") == "default" else f":{text(entry.get('name'))}"
            digest = hashlib.sha256(entry["template"].encode()).hexdigest()
            found.append((f"mlbom:chat-template:sha256{name}", digest))
    return found


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _flatten(v)]
    if isinstance(value, list):
        return [x for v in value for x in _flatten(v)]
    return [value]
