"""Configuration files written next to the weights: transformers' `config.json`, PEFT's
`adapter_config.json`, diffusers' `model_index.json` and the tokenizer config (whose chat
template, like GGUF's, is a known tampering surface and so is recorded by its hash).

JSON from a model is bounded in size (`MAX_CONFIG`), nesting (a document nested deeper
than the parser's recursion limit is an `InspectionError`, not a crash) and in what is
taken from it (`text` caps each value, lists are cut).
"""

from __future__ import annotations

import hashlib
import json
import re
from itertools import islice
from pathlib import PurePosixPath
from typing import Any

from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection, flag, keras, text
from mlbom.inspectors.card import hub_url
from mlbom.models import BaseModel, FileFacts, ModelInfo
from mlbom.sources import Blob

FORMAT = "json"
MAX_CONFIG = 16 << 20
MAX_DEPTH = 16  # levels of `auto_map` read
MAX_ITEMS = 1000  # leaves of `auto_map` read, chat templates hashed
# PEFT's `task_type` -> the Hub's pipeline tag
PEFT_TASKS = {
    "CAUSAL_LM": "text-generation",
    "SEQ_CLS": "text-classification",
    "SEQ_2_SEQ_LM": "text2text-generation",
    "TOKEN_CLS": "token-classification",
    "QUESTION_ANS": "question-answering",
    "FEATURE_EXTRACTION": "feature-extraction",
}
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


def load_json(data: bytes, path: str, what: str = "") -> Any:
    """Untrusted JSON (already read with a size cap): malformed, nested beyond the parser's
    recursion limit, or holding a number too long to convert, it is an `InspectionError`."""
    try:
        return json.loads(data)
    except RecursionError as e:
        raise InspectionError(f"{path}: {what or 'the JSON'} is nested too deeply") from e
    except (UnicodeDecodeError, ValueError) as e:
        raise InspectionError(f"{path}: {what or 'the file'} is not valid JSON ({e})") from e


def inspect(blob: Blob, context: Context) -> Inspection:
    data = load_json(blob.read_all(MAX_CONFIG), blob.path)
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
        # The adapter's task, when nothing better (the card's pipeline_tag) states it:
        # inspectors merge in precedence order, the card first.
        info.task = PEFT_TASKS.get(text(data.get("task_type")) or "")
    elif name == "model_index.json" and top_level:
        if cls := text(data.get("_class_name")):
            info.architectures = [cls]
            info.architecture_family = "diffusers"
    elif name == "tokenizer_config.json":
        facts.properties += _chat_templates(data.get("chat_template"))
    if keras.is_config(data):
        # a Keras model saved as a folder (config.json, metadata.json, model.weights.h5):
        # Keras builds it from this file, Lambda layers and custom objects included
        facts.format = keras.FORMAT
        flag(facts, keras.scan_config(data))
    if isinstance(data.get("auto_map"), dict):
        # Loading needs trust_remote_code: the repository's Python files run.
        names = (text(v, 200) for v in _flatten(data["auto_map"]))
        modules = sorted({n.split(".")[0] for n in names if n})[:50]
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
    for entry in template[:MAX_ITEMS] if isinstance(template, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("template"), str):
            name = "" if entry.get("name") == "default" else f":{text(entry.get('name'))}"
            digest = hashlib.sha256(entry["template"].encode()).hexdigest()
            found.append((f"mlbom:chat-template:sha256{name}", digest))
    return found


def _flatten(value: Any) -> list[Any]:
    """The scalars of nested lists and objects: at most `MAX_ITEMS`, `MAX_DEPTH` levels."""
    found: list[Any] = []
    stack = [(value, 0)]
    while stack and len(found) < MAX_ITEMS:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth < MAX_DEPTH:
                children = item.values() if isinstance(item, dict) else item
                stack.extend((c, depth + 1) for c in reversed(list(islice(children, MAX_ITEMS))))
        else:
            found.append(item)
    return found
