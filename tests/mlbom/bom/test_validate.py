"""mlbom's CycloneDX JSON validator (mlbom/bom/validate.py) against the library's: the same
bundled schemas, the same verdicts for every format the schemas use, messages that say where,
no `jsonschema` import on the way; and `generate … | head` ending quietly."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from mlbom.bom.assemble import Extras
from mlbom.bom.document import render
from mlbom.bom.validate import CHECKED_FORMATS, validation_error
from mlbom.errors import InvalidBomError

VERSIONS = {"1.6": SchemaVersion.V1_6, "1.7": SchemaVersion.V1_7}
UUID = "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"


def library_error(doc: dict, spec: str) -> object:
    return JsonStrictValidator(VERSIONS[spec]).validate_str(json.dumps(doc))


def ml_bom(spec: str) -> dict:
    """A BOM made by the library, with the ML parts it does not model added as mlbom adds them."""
    model = Component(name="tiny", version="1", type=ComponentType.MACHINE_LEARNING_MODEL,
                      bom_ref="model")  # fmt: skip
    weights = Component(name="model.safetensors", type=ComponentType.FILE, bom_ref="file-1")
    bom = Bom(components=[weights])
    bom.metadata.component = model
    doc = json.loads(make_outputter(bom, OutputFormat.JSON, VERSIONS[spec]).output_as_string())
    doc["serialNumber"] = UUID
    doc["metadata"]["timestamp"] = "2025-01-31T12:00:00Z"
    doc["metadata"]["component"]["modelCard"] = {
        "modelParameters": {"task": "text-classification", "datasets": [{"ref": "data-1"}]}
    }
    doc["components"][0]["hashes"] = [{"alg": "SHA-256", "content": "ab" * 32}]
    doc["components"].append({"type": "data", "name": "imdb", "bom-ref": "data-1",
                              "data": [{"type": "dataset", "name": "imdb"}]})  # fmt: skip
    return doc


@pytest.mark.parametrize("spec", ["1.6", "1.7"])
def test_valid_bom_passes_both_validators(spec):
    doc = ml_bom(spec)
    assert library_error(doc, spec) is None
    assert validation_error(doc, spec) is None
    assert validation_error(json.dumps(doc), spec) is None


def _set(doc: dict, path: str, value: object) -> dict:
    doc = copy.deepcopy(doc)
    *parents, last = path.split("/")
    target: object = doc
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return doc


VIOLATIONS = {
    "unknown property": ("metadata/component/colour", "blue", "/metadata/component", "colour"),
    "enum": ("components/0/type", "weights", "/components/0/type", "weights"),
    "pattern": ("components/0/hashes/0/content", "xyz", "/components/0/hashes/0/content", "xyz"),
    "type": ("version", "1", "/version", '"1"'),
    "required": ("components/1/type", None, "/components/1", "type"),
    "serial number": ("serialNumber", "urn:uuid:nope", "/serialNumber", "urn:uuid:nope"),
    "ML part": ("metadata/component/modelCard/modelParameters/task", 3,
                "/metadata/component/modelCard/modelParameters/task", "3"),
}  # fmt: skip


@pytest.mark.parametrize("spec", ["1.6", "1.7"])
@pytest.mark.parametrize("kind", VIOLATIONS)
def test_each_kind_of_violation_fails_and_says_where(kind, spec):
    path, value, where, quoted = VIOLATIONS[kind]
    doc = _set(ml_bom(spec), path, value)
    if value is None:
        doc["components"][1].pop("type")
    error = validation_error(doc, spec)
    assert error is not None and error.startswith(f"at {where}: ") and quoted in error, error
    assert library_error(doc, spec) is not None  # the library agrees


def test_render_refuses_an_invalid_bom_and_names_the_field():
    bom = Bom()
    bom.metadata.component = Component(name="m", type=ComponentType.MACHINE_LEARNING_MODEL,
                                       bom_ref="model")  # fmt: skip
    extras = Extras(component_fields={"model": {"modelCard": {"modelParameters": {"task": 3}}}})
    with pytest.raises(InvalidBomError) as caught:
        render(bom, extras, spec="1.7")
    assert "CycloneDX 1.7: at /metadata/component/modelCard/modelParameters/task:" in str(
        caught.value
    )
    extras = Extras(component_fields={"model": {"modelCard": {"modelParameters": {"task": "x"}}}})
    assert json.loads(render(bom, extras))["metadata"]["component"]["modelCard"]


# Each format the bundled schemas use: where it appears, values that must pass, values that
# must fail. `library` says whether cyclonedx-python-lib's validator, in mlbom's own
# environment, must give the same verdict: it checks iri-reference and uri only when an IRI
# library happens to be installed (next to cyclonedx-bom: rfc3987-syntax and
# rfc3986-validator; with jsonschema[format]: rfc3987), and mlbom always checks them.
FORMATS = {
    "date-time": ("1.6", "metadata/timestamp",
                  ["2025-01-31T12:00:00Z", "2025-01-31t12:00:00.5+01:00", "2024-02-29T00:00:00Z"],
                  ["2025-01-31", "2025-01-31 12:00:00Z", "2025-02-30T00:00:00Z",
                   "2025-01-31T12:00:00", "yesterday"], True),
    "date": ("1.7", "definitions/patents/0/filingDate",
             ["2025-01-31", "2024-02-29"], ["2025-02-30", "31/01/2025", "2025-01-31T00:00:00Z"], True),
    "idn-email": ("1.6", "metadata/manufacturer/contact/0/email",
                  ["security@example.org", "sécurité@exemple.fr"], ["security.example.org", ""], True),
    "iri-reference": ("1.6", "externalReferences/0/url",
                      ["https://example.org/model", "https://exemple.fr/modèle", "../card.md#usage",
                       "http://[::1]:8080/x", "pkg:huggingface/org/repo@abc"],
                      ["https://example.org/a b", "https://example.org/<x>", "http://ex.org/%zz",
                       "https://example.org/#a#b", "http://ex.org:port/"], False),
    "uri": ("1.6", "signature/algorithm", ["https://example.org/alg#x", "urn:example:alg"],
            ["not a uri", "https://example.org/é"], False),
}  # fmt: skip
BASE_FOR = {
    "metadata/manufacturer/contact/0/email": {"metadata": {"manufacturer": {"name": "Org", "contact": [{"email": ""}]}}},
    "externalReferences/0/url": {"externalReferences": [{"type": "website", "url": ""}]},
    "signature/algorithm": {"signature": {"algorithm": "", "value": "c2ln"}},
    "definitions/patents/0/filingDate": {"definitions": {"patents": [
        {"bom-ref": "patent-1", "patentNumber": "US1", "jurisdiction": "US", "patentLegalStatus": "pending", "filingDate": ""}]}},
}  # fmt: skip


def _with(spec: str, path: str, value: str) -> dict:
    doc = ml_bom(spec)
    for key, part in BASE_FOR.get(path, {}).items():
        doc[key] = {**doc.get(key, {}), **part} if isinstance(part, dict) else part
    return _set(doc, path, value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_verdicts(fmt):
    spec, path, good, bad, library = FORMATS[fmt]
    for value in good:
        doc = _with(spec, path, value)
        assert validation_error(doc, spec) is None, (value, validation_error(doc, spec))
        if library:
            assert library_error(doc, spec) is None, value
    for value in bad:
        doc = _with(spec, path, value)
        error = validation_error(doc, spec)
        assert error is not None and error.startswith(f"at /{path.rsplit('/', 1)[0]}"), (
            value,
            error,
        )
        if library:
            assert library_error(doc, spec) is not None, value


def test_ecma_anchors_no_trailing_newline():
    """Python's `$` and the library's date-time check accept a trailing newline; JSON Schema's
    ECMA-262 patterns and RFC 3339 do not, and neither does mlbom."""
    for path, value in (
        ("serialNumber", UUID + "\n"),
        ("metadata/timestamp", "2025-01-31T12:00:00Z\n"),
    ):
        assert validation_error(_set(ml_bom("1.6"), path, value), "1.6") is not None


def test_checked_formats_are_the_formats_the_schemas_use():
    """A new bundled schema that uses another format fails here, to be checked on purpose."""
    from importlib import resources

    used: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("format"), str):
                used.add(node["format"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    for entry in (resources.files("cyclonedx.schema") / "_res").iterdir():
        if entry.name.endswith(".schema.json") and not entry.name.startswith(
            ("bom-1.2", "bom-1.3", "bom-1.4", "bom-1.5")
        ):
            walk(json.loads(entry.read_text("utf-8")))
    assert used == CHECKED_FORMATS


def test_rendering_imports_no_jsonschema():
    """`import jsonschema` imports every format library installed (a second and more next to
    cyclonedx-bom): writing a validated BOM must not import it."""
    code = (
        "import sys, json\n"
        "from cyclonedx.model.bom import Bom\n"
        "from cyclonedx.model.component import Component, ComponentType\n"
        "from mlbom.bom.assemble import Extras\n"
        "from mlbom.bom.document import render\n"
        "bom = Bom()\n"
        "bom.metadata.component = Component(name='m', type=ComponentType.MACHINE_LEARNING_MODEL)\n"
        "for spec in ('1.6', '1.7'):\n"
        "    render(bom, Extras(), spec=spec)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('jsonschema', 'rfc3987_syntax', 'rfc3987', 'lark', 'webcolors', 'isoduration'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)  # fmt: skip
    assert json.loads(done.stdout) == []


# --- `mlbom generate … | head` ----------------------------------------------------------


@pytest.fixture
def many_files(tmp_path: Path) -> Path:
    """A model folder whose BOM is far larger than a pipe's buffer (64 KiB)."""
    root = tmp_path / "model"
    root.mkdir()
    (root / "config.json").write_text('{"model_type": "bert"}')
    for i in range(400):
        (root / f"shard-{i:04d}.json").write_text(json.dumps({"i": i}))
    return root


def _buffered_env() -> dict[str, str]:
    """The environment with Python's default buffered stdout. Under PYTHONUNBUFFERED, stdout
    is a raw file whose write cut short by the reader leaving returns a count, not an error,
    and the text layer drops the rest silently: the command then ends 0, not 141."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


@pytest.mark.parametrize("quiet", [True, False])
def test_generate_into_head_ends_quietly(many_files, tmp_path, quiet):
    command = (f"'{sys.executable}' -m mlbom generate '{many_files}' --version 1 --no-cache "
               f"{'-q' if quiet else ''} 2>'{tmp_path / 'err'}' | head -c 10; "
               "echo \" ${PIPESTATUS[0]}\" >&2")  # fmt: skip
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300,
                          env=_buffered_env())  # fmt: skip
    assert done.stdout == '{\n  "$sche'
    assert (tmp_path / "err").read_text() == ""
    assert done.stderr.strip() == "141"


@pytest.mark.parametrize("quiet", [True, False])
def test_generate_into_a_closed_pipe_exits_141_silently(many_files, quiet):
    process = subprocess.Popen(
        [sys.executable, "-m", "mlbom", "generate", str(many_files), "--version", "1",
         "--no-cache", *(["-q"] if quiet else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_buffered_env(),
    )  # fmt: skip
    process.stdout.close()  # the reader is gone before the BOM is written
    stderr = process.stderr.read()
    assert process.wait(timeout=300) == 141
    assert stderr == b""
