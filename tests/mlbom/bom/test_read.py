"""mlbom.bom.read, the one reader of parsed CycloneDX JSON: what it gives for a BOM mlbom writes,
and that hostile shapes read as absent instead of raising."""

from __future__ import annotations

import pytest

import mlbom
from mlbom.bom import read
from mlbom.bom.validate import validation_error
from tests.builders import ROOT

EXAMPLE = ROOT / "examples" / "tiny-sentiment"


@pytest.fixture(scope="module")
def bom() -> dict:
    return mlbom.generate(EXAMPLE, cache=False, datasets=["imdb@main"]).to_dict()


def test_a_generated_bom(bom):
    model = read.model(bom)
    assert model["type"] == "machine-learning-model"
    assert [f["name"] for f in read.files(bom)] == sorted(f["name"] for f in read.files(bom))
    for file in read.files(bom):
        assert any(h.alg == "SHA-256" and h.content for h in read.hashes(file))
    assert read.property_values(model, "mlbom:format")
    datasets = {d.ref: d.component for d in read.datasets(bom)}
    assert datasets["dataset:imdb"] and datasets["dataset:imdb"]["type"] == "data"
    assert read.dataset_url(datasets["dataset:imdb"]) == "https://huggingface.co/datasets/imdb"


def test_licences_keep_what_each_caller_needs():
    component = {"licenses": [
        {"expression": "Apache-2.0 OR (MIT WITH Classpath-exception-2.0)", "acknowledgement": "concluded"},
        {"expression": ""},
        {"license": {"id": "MIT", "name": "ignored", "acknowledgement": "declared"}},
        {"license": {"id": "", "name": "Acme Licence"}},
        {"license": {"id": 42}},
        "MIT",
    ]}  # fmt: skip
    found = read.licences(component)
    assert [(x.value, x.field, x.acknowledgement) for x in found] == [
        ("Apache-2.0 OR (MIT WITH Classpath-exception-2.0)", "expression", "concluded"),
        ("", "expression", None),
        ("MIT", "license.id", "declared"),
        ("Acme Licence", "license.name", None),
    ]
    assert [x.ids for x in found] == [["Apache-2.0", "MIT"], [], ["MIT"], ["Acme Licence"]]


def test_properties_say_when_no_value_is_stated():
    component = {"properties": [
        {"name": "a", "value": "1"}, {"name": "a"}, {"name": "a", "value": 2},
        {"name": 3, "value": "x"}, "b",
    ]}  # fmt: skip
    assert read.properties(component) == {"a": ["1", None, None]}
    assert read.property_values(component, "a") == ["1"]


def test_datasets_resolve_by_ref_or_inline():
    bom = {
        "metadata": {"component": {"modelCard": {"modelParameters": {"datasets": [
            {"ref": "d1"}, {"ref": "gone"}, {"type": "dataset", "name": "inline"}, 5,
        ]}}}},
        "components": [{"type": "data", "bom-ref": "d1", "name": "first"},
                       {"type": "data", "bom-ref": "d1", "name": "second"}],
    }  # fmt: skip
    found = read.datasets(bom)
    assert [d.ref for d in found] == ["d1", "gone", None, None]
    # a non-object entry is an inline dataset with nothing stated, as the policy reads it
    assert [d.component for d in found] == [bom["components"][1], None, bom["metadata"]["component"]["modelCard"]["modelParameters"]["datasets"][2], {}]  # fmt: skip


@pytest.mark.parametrize(
    "hostile",
    [{}, {"metadata": 5}, {"metadata": {"component": []}}, {"components": 5},
     {"components": [5, "x", {"type": "file", "hashes": 5, "properties": {}, "licenses": "MIT"}]},
     {"metadata": {"component": {"modelCard": [], "pedigree": {"ancestors": {}}}}}],
)  # fmt: skip
def test_hostile_shapes_read_as_absent(hostile):
    model = read.model(hostile)
    assert read.licences(model) == [] and read.properties(model) == {}
    assert read.datasets(hostile) == [] and read.ancestors(model) == []
    assert all(read.hashes(f) == [] for f in read.files(hostile))
    assert list(read.walk_components(hostile.get("components"))) == read.components(hostile)


def test_the_validator_takes_the_documents_version():
    bom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}
    assert validation_error(bom) is None
    assert validation_error({**bom, "specVersion": "1.4"}) == "unsupported CycloneDX specVersion '1.4'"  # fmt: skip
    assert validation_error({**bom, "specVersion": 1.6}) == 'at /specVersion: 1.6 is not of type "string"'  # fmt: skip
