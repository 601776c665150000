"""The model card (`README.md`): its YAML front matter, as the Hugging Face Hub defines
it, and the considerations its prose states.

Every pattern here runs in time linear in the card: no pattern can backtrack over text
it already read (possessive quantifiers, character classes that exclude what follows,
or an alternative that always succeeds), the front matter has its own size cap, and
only the first `MAX_SECTIONS` headings are read. Text left from a card template
("[More Information Needed]", `{{ … }}`, the Hub's default card) is not a fact: no name,
description, use case or limitation comes from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import islice
from typing import Any

import yaml

from mlbom import safeyaml
from mlbom.errors import InspectionError
from mlbom.inspectors import Context, Inspection, text
from mlbom.models import BaseModel, Considerations, Dataset, FileFacts, Metric, ModelInfo
from mlbom.sources import Blob

FORMAT = "model-card"
MAX_CARD = 2 << 20
# Real front matter (tags, a model-index of a hundred results) holds a few thousand
# YAML nodes; building each costs Python time, so a card cannot ask for millions.
MAX_FRONT_MATTER_NODES = 50_000
#: YAML is parsed in pure Python (~2 ms per KiB): real front matter, MTEB result tables
#: included, stays below this; a larger one is refused, not parsed for seconds.
MAX_FRONT_MATTER = 256 << 10
MAX_SECTIONS = 1000  # headings read; the rest of a card is no section
MAX_PARAGRAPHS = 100  # blocks looked at for the description
MAX_RESULTS = 1000  # model-index results read
MAX_TEXT = 2000
MAX_SCAN = 64 << 10  # of one section's text read to find its (at most MAX_TEXT) prose
HUB = "https://huggingface.co"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*+(?:/[\w.-]++)?$")

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
#: sections whose first paragraph describes the model (besides the text under the title)
_DESCRIPTIONS = frozenset(
    {"model description", "description", "model summary", "summary", "overview",
     "model overview", "introduction", "about", "model information", "model details"}
)  # fmt: skip
#: titles the card templates leave when nobody named the model
_TEMPLATE_TITLES = frozenset({"model id", "model_id", "model name", "model card"})
#: sentences of the Hub's and PEFT's default cards (after links keep only their text)
_TEMPLATE_SENTENCES = (
    "This is the model card of a 🤗 transformers model that has been pushed on the Hub. "
    "This model card has been automatically generated.",
    "Provide a quick summary of what the model is/does.",
    "Provide a longer summary of what this model is.",
    "Provide the basic links for the model.",
    "Use the code below to get started with the model.",
    "Carbon emissions can be estimated using the Machine Learning Impact calculator "
    "presented in Lacoste et al. (2019).",
    "Users (both direct and downstream) should be made aware of the risks, biases and "
    "limitations of the model.",
)

# A fenced code block: the opening line, every line that does not close it, then the
# closing line or the end of the card (an unclosed fence runs to the end, as in
# CommonMark). Always matches once opened, so no start is tried twice.
_FENCE = re.compile(
    r"^(```|~~~)[^\n]*+(?:\n(?!\1[ \t]*+$)[^\n]*+)*+(?:\n\1[ \t]*+$|\Z)", re.MULTILINE
)
_HEADING = re.compile(r"^(#{1,6})[ \t]++([^\n]*+)", re.MULTILINE)
_FRONT_END = re.compile(r"^---[ \t]*+$", re.MULTILINE)
# An HTML comment, or an unclosed one to the end: `.*?` stops at the first `-->` or \Z.
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# A line holding a template placeholder or an unrendered Jinja expression.
_TEMPLATE_LINE = re.compile(
    r"^[^\n]*?(?:more information needed|\{\{|\{%)[^\n]*+\n?", re.IGNORECASE | re.MULTILINE
)
# A link keeps its text. Neither part may contain its own opening bracket, so a failed
# attempt ends at the next `[` or `(` and no text is scanned twice.
_LINK = re.compile(r"\[([^\[\]]*+)\]\([^()]*+\)")
_PARAGRAPH_BREAK = re.compile(r"\n(?:[^\S\n]*+\n)++")
_EMPHASIS = re.compile(r"[*_`]")
_CARD_FOR = re.compile(r"model card for\s++", re.IGNORECASE)


def matches(path: str) -> bool:
    return path.lower() == "readme.md"


def inspect(blob: Blob, context: Context) -> Inspection:
    text = blob.read_at(0, MAX_CARD).decode("utf-8", "replace").replace("\r\n", "\n")
    front, body = split_front_matter(text)
    info = ModelInfo()
    if front is not None:
        try:
            meta = safeyaml.load(front, max_nodes=MAX_FRONT_MATTER_NODES)
        except (safeyaml.AliasRefused, safeyaml.TooLarge) as e:
            raise InspectionError(f"{blob.path}: model card front matter: {e}") from e
        except (yaml.YAMLError, ValueError, RecursionError) as e:
            reason = "nested too deeply" if isinstance(e, RecursionError) else e
            raise InspectionError(
                f"{blob.path}: the card's YAML front matter is broken ({reason})"
            ) from e
        if meta is not None and not isinstance(meta, dict):
            raise InspectionError(f"{blob.path}: the card's front matter is not a mapping")
        info = card_info(meta or {})
    body = _FENCE.sub("", body)  # code is no prose, and a `# comment` in it no heading
    sections = _sections(body)
    info.name = _fact(info.name) or _title(sections)
    info.description = info.description or _description(body, sections)
    info.considerations = _considerations(sections)
    return Inspection(FileFacts(format=FORMAT, structured=True), info)


def split_front_matter(text: str) -> tuple[str | None, str]:
    """(YAML front matter or None, the rest); front matter over the cap is refused."""
    first, _, rest = text.partition("\n")
    if first.rstrip() != "---":
        return None, text
    end = _FRONT_END.search(rest)
    if end is None:
        raise InspectionError("the card's front matter has no closing '---'")
    if end.start() > MAX_FRONT_MATTER:
        raise InspectionError(
            f"the card's front matter is over {MAX_FRONT_MATTER >> 10} KiB, beyond any real card"
        )
    return rest[: end.start()], rest[end.end() :]


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
    known = {d.name for d in info.datasets}
    for entry in index[:20]:
        if not isinstance(entry, dict):
            continue
        info.name = info.name or text(entry.get("name"))
        results = entry.get("results")
        for result in results[:MAX_RESULTS] if isinstance(results, list) else []:
            if not isinstance(result, dict):
                continue
            found = result.get("dataset")
            dataset = found if isinstance(found, dict) else {}
            ds_id = text(dataset.get("type")) or text(dataset.get("name"))
            if ds_id and ds_id not in known:
                known.add(ds_id)
                info.datasets.append(Dataset(
                    name=ds_id, role="evaluation", revision=text(dataset.get("revision")),
                    url=hub_url(ds_id, "datasets"),
                ))  # fmt: skip
            where = "/".join(
                x for x in (text(dataset.get("name")) or ds_id, text(dataset.get("config")),
                            text(dataset.get("split"))) if x
            )  # fmt: skip
            metrics = result.get("metrics")
            for metric in metrics[:100] if isinstance(metrics, list) else []:
                if isinstance(metric, dict) and (value := text(metric.get("value"), 100)):
                    kind = text(metric.get("type")) or text(metric.get("name")) or "metric"
                    info.metrics.append(Metric(type=kind, value=value, slice=where or None))


class _Section:
    """One heading and its own text (up to the next heading of any level)."""

    __slots__ = ("level", "name", "raw", "text")

    def __init__(self, level: int, raw_heading: str, text: str) -> None:
        self.level = level
        self.raw = raw_heading.rstrip(" \t#")
        self.name = _heading_name(self.raw)
        self.text = text


def _sections(body: str) -> list[_Section]:
    """The text before the first heading (level 0), then the first `MAX_SECTIONS` headings
    with their own text, sub-sections excluded."""
    headings = list(islice(_HEADING.finditer(body), MAX_SECTIONS + 1))
    ends = [m.start() for m in headings[1:]] + [len(body)]
    found = [_Section(0, "", body[: headings[0].start()] if headings else body)]
    for m, end in zip(headings[:MAX_SECTIONS], ends, strict=False):
        found.append(_Section(len(m.group(1)), m.group(2), body[m.end() : end]))
    return found


def _heading_name(raw: str) -> str:
    name = _EMPHASIS.sub("", _clean(raw)).lower()
    return " ".join(name.replace("[optional]", "").split())


def _considerations(sections: list[_Section]) -> Considerations:
    found = Considerations()
    for section in sections[1:]:
        key = next((k for k, names in _SECTIONS.items() if section.name in names), None)
        if key is None or not (stated := _clean(section.text)):
            continue
        if key == "ethical_considerations":
            found.ethical_considerations.append((stated, None))
        else:
            getattr(found, key).append(stated)
    return found


def _title(sections: list[_Section]) -> str | None:
    """The card's `# Title`, without the card template's "Model Card for" prefix; the
    template's own title ("Model ID") names nothing."""
    first = next((s for s in sections if s.level == 1), None)
    if first is None:
        return None
    title = _clean(first.raw)
    if prefix := _CARD_FOR.match(title):
        title = title[prefix.end() :]
    return _fact(title) if 0 < len(title) <= 100 else None


def _description(body: str, sections: list[_Section]) -> str | None:
    """The first paragraph of prose under the title (or before any heading), else of a
    section that describes the model; other sections (citation, usage) describe nothing."""
    candidates = [sections[0]]
    if len(sections) > 1 and sections[1].level == 1:
        candidates.append(sections[1])
    candidates += [s for s in sections[1:] if s.name in _DESCRIPTIONS]
    for section in candidates:
        for block in islice(_paragraphs(section.text), MAX_PARAGRAPHS):
            prose = _clean(block)
            if prose and not prose.startswith(("<", "!", "|", "[!", "---")):
                return prose
    return None


def _paragraphs(text: str) -> Iterator[str]:
    start = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        yield text[start : match.start()]
        start = match.end()
    yield text[start:]


def _clean(text: str) -> str:
    """Prose as one line: no comments, no template lines or sentences, links as their text.
    Only the first `MAX_SCAN` characters are read: the result is at most `MAX_TEXT`."""
    text = _COMMENT.sub("", text[:MAX_SCAN])
    if "{{" in text or "{%" in text or "information needed" in text.lower():
        text = _TEMPLATE_LINE.sub("", text)
    text = " ".join(_LINK.sub(r"\1", text).split())
    if any(sentence in text for sentence in _TEMPLATE_SENTENCES):
        for sentence in _TEMPLATE_SENTENCES:
            text = text.replace(sentence, "")
        text = " ".join(text.split())
    return text[:MAX_TEXT]


def _fact(value: str | None) -> str | None:
    """A name that a template left is no name."""
    if value is None or value.strip().lower() in _TEMPLATE_TITLES:
        return None
    cleaned = _clean(value)
    return cleaned if cleaned and cleaned.lower() not in _TEMPLATE_TITLES else None


def hub_url(name: str, kind: str = "") -> str | None:
    """The Hub page for a repository id (`org/name`, or a legacy `name`), else None."""
    if not HUB_ID.match(name):
        return None
    return f"{HUB}/{kind + '/' if kind else ''}{name}"


def _strings(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [s for v in values[:200] if (s := text(v))]
