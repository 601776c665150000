"""The model card (`README.md`): its YAML front matter, as the Hugging Face Hub defines
it, and the considerations its prose states."""

from __future__ import annotations

import re
from typing import Any

import yaml

from mlbom import safeyaml
from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection, text
from mlbom.models import BaseModel, Considerations, Dataset, FileFacts, Metric, ModelInfo
from mlbom.sources import Blob

FORMAT = "model-card"
MAX_CARD = 2 << 20
MAX_TEXT = 2000
HUB = "https://huggingface.co"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

# pipeline_tag -> (input formats, output formats)
TASK_IO: dict[str, tuple[list[str], list[str]]] = {
    "text-generation": (["text"], ["text"]),
    "text2text-generation": (["text"], ["text"]),
    "summarization": (["text"], ["text"]),
    "translation": (["text"], ["text"]),
    "fill-mask": (["text"], ["text"]),
    "question-answering": (["text"], ["text"]),
    "text-classification": (["text"], ["label"]),
    "token-classification": (["text"], ["label"]),
    "zero-shot-classification": (["text"], ["label"]),
    "feature-extraction": (["text"], ["embedding"]),
    "sentence-similarity": (["text"], ["embedding"]),
    "image-classification": (["image"], ["label"]),
    "object-detection": (["image"], ["bounding-boxes"]),
    "image-segmentation": (["image"], ["image"]),
    "image-to-text": (["image"], ["text"]),
    "image-text-to-text": (["image", "text"], ["text"]),
    "text-to-image": (["text"], ["image"]),
    "automatic-speech-recognition": (["audio"], ["text"]),
    "text-to-speech": (["text"], ["audio"]),
    "audio-classification": (["audio"], ["label"]),
    "time-series-forecasting": (["time-series"], ["time-series"]),
}
_SECTIONS = {
    "users": ("intended users", "who are the intended users", "primary intended users"),
    "use_cases": ("intended use", "intended uses", "uses", "direct use", "downstream use",
                  "use cases", "primary intended uses", "intended uses & limitations"),
    "technical_limitations": ("limitations", "known limitations", "out-of-scope use",
                              "out-of-scope uses", "bias, risks, and limitations",
                              "risks and limitations", "technical limitations"),
    "ethical_considerations": ("ethical considerations", "bias", "biases", "ethics",
                               "ethical considerations and limitations"),
}  # fmt: skip
_PLACEHOLDER = re.compile(r"\[?more information needed\]?", re.IGNORECASE)


def matches(path: str) -> bool:
    return path.lower() == "readme.md"


def inspect(blob: Blob, context: Context) -> Inspection:
    text = blob.read_at(0, MAX_CARD).decode("utf-8", "replace")
    front, body = split_front_matter(text)
    info = ModelInfo()
    if front is not None:
        try:
            meta = safeyaml.load(front)
        except safeyaml.AliasRefused as e:
            raise InspectionError(f"{blob.path}: model card front matter: {e}") from e
        except yaml.YAMLError as e:
            raise InspectionError(
                f"{blob.path}: the card's YAML front matter is broken ({e})"
            ) from e
        if meta is not None and not isinstance(meta, dict):
            raise InspectionError(f"{blob.path}: the card's front matter is not a mapping")
        info = card_info(meta or {})
    body = re.sub(r"^(```|~~~).*?^\1[ \t]*$", "", body, flags=re.MULTILINE | re.DOTALL)  # code
    info.name = info.name or _title(body)
    info.description = info.description or _first_paragraph(body)
    info.considerations = _considerations(body)
    return Inspection(FileFacts(format=FORMAT, structured=True), info)


def split_front_matter(text: str) -> tuple[str | None, str]:
    if not text.startswith("---"):
        return None, text
    end = re.search(r"^---\s*$", text[3:], re.MULTILINE)
    if end is None:
        raise InspectionError("the card's front matter has no closing '---'")
    return text[3 : 3 + end.start()], text[3 + end.end() :]


def card_info(meta: dict[str, Any]) -> ModelInfo:
    """Model facts from card metadata (the same fields `huggingface_hub.ModelCardData` has)."""
    info = ModelInfo()
    licenses = _strings(meta.get("license"))
    if (name := text(meta.get("license_name"))) and licenses in ([], ["other"]):
        licenses = [name]
    info.licenses = licenses
    info.license_url = text(meta.get("license_link"))
    info.task = text(meta.get("pipeline_tag"))
    if info.task in TASK_IO:
        info.inputs, info.outputs = (list(x) for x in TASK_IO[info.task])
    info.datasets = [
        Dataset(name=d, url=hub_url(d, "datasets")) for d in _strings(meta.get("datasets"))
    ]
    relation = text(meta.get("base_model_relation"))
    info.base_models = [
        BaseModel(name=b, relation=relation, url=hub_url(b))
        for b in _strings(meta.get("base_model"))
    ]
    info.tags = _strings(meta.get("tags"))[:100]
    info.properties += [("mlbom:language", lang) for lang in _strings(meta.get("language"))[:50]]
    if library := text(meta.get("library_name")):
        info.properties.append(("mlbom:library", library))
    _model_index(meta.get("model-index"), info)
    return info


def _model_index(index: Any, info: ModelInfo) -> None:
    if not isinstance(index, list):
        return
    for entry in index[:20]:
        if not isinstance(entry, dict):
            continue
        info.name = info.name or text(entry.get("name"))
        for result in entry.get("results") or []:
            if not isinstance(result, dict):
                continue
            dataset = result.get("dataset") if isinstance(result.get("dataset"), dict) else {}
            ds_id = text(dataset.get("type")) or text(dataset.get("name"))
            if ds_id and ds_id not in {d.name for d in info.datasets}:
                info.datasets.append(Dataset(
                    name=ds_id, role="evaluation", revision=text(dataset.get("revision")),
                    url=hub_url(ds_id, "datasets"),
                ))  # fmt: skip
            where = "/".join(
                x for x in (text(dataset.get("name")) or ds_id, text(dataset.get("config")),
                            text(dataset.get("split"))) if x
            )  # fmt: skip
            for metric in (result.get("metrics") or [])[:100]:
                if isinstance(metric, dict) and metric.get("value") is not None:
                    kind = text(metric.get("type")) or text(metric.get("name")) or "metric"
                    info.metrics.append(
                        Metric(type=kind, value=str(metric["value"])[:100], slice=where or None)
                    )


def _considerations(body: str) -> Considerations:
    found = Considerations()
    for heading, section in _sections(body):
        key = next((k for k, names in _SECTIONS.items() if heading in names), None)
        if key is None or not section or _PLACEHOLDER.fullmatch(section):
            continue
        if key == "ethical_considerations":
            found.ethical_considerations.append((section, None))
        else:
            getattr(found, key).append(section)
    return found


def _sections(body: str) -> list[tuple[str, str]]:
    """(lower-case heading, its own text without sub-sections) for each markdown heading."""
    parts = re.split(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", body, flags=re.MULTILINE)
    return [
        (re.sub(r"[*_`]", "", parts[i]).strip().lower(), _clean(parts[i + 1]))
        for i in range(1, len(parts) - 1, 2)
    ]


def _title(body: str) -> str | None:
    """The card's `# Title`, without the card template's "Model Card for" prefix."""
    match = re.search(r"^#[ \t]+(.+?)[ \t#]*$", body, flags=re.MULTILINE)
    if match is None:
        return None
    title = re.sub(r"^model card for\s+", "", _clean(match.group(1)), flags=re.IGNORECASE)
    return title if 0 < len(title) <= 100 else None


def _first_paragraph(body: str) -> str | None:
    prose = re.sub(r"^#{1,6}[ \t].*$", "", body, flags=re.MULTILINE)  # headings end paragraphs
    for block in re.split(r"\n\s*\n", prose):
        block = block.strip()
        if block and not block.startswith(("<", "!", "|", "[!", "---")):
            return _clean(block) or None
    return None


def _clean(text: str) -> str:
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    return re.sub(r"\s+", " ", text).strip()[:MAX_TEXT]


def hub_url(name: str, kind: str = "") -> str | None:
    """The Hub page for a repository id (`org/name`, or a legacy `name`), else None."""
    if not HUB_ID.match(name):
        return None
    return f"{HUB}/{kind + '/' if kind else ''}{name}"


def _strings(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [s for v in values[:200] if (s := text(v))]
