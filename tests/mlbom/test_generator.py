"""The BOM of a local model folder: everything the folder says about itself."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import mlbom
from tests.builders import assert_valid, file_component, hf_folder, prop, props, safetensors_file


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return hf_folder(tmp_path / "sentiment-bert")


def test_model_component_from_card_and_config(cli, model):
    bom, _ = cli.bom(model, "--version", "2.0.0")
    m = bom["metadata"]["component"]
    assert m["type"] == "machine-learning-model"
    assert m["name"] == "acme/sentiment-bert"  # model-index name beats the folder name
    assert m["version"] == "2.0.0"
    assert m["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert m["description"] == "A BERT model fine-tuned for sentiment."
    assert m["tags"] == ["sentiment"]
    assert props(m, "mlbom:language") == ["de", "en"]
    assert prop(m, "mlbom:library") == "transformers"
    assert prop(m, "mlbom:parameter-count") == str(4 * 8 + 8)
    assert prop(m, "mlbom:format") == "safetensors"
    assert prop(m, "mlbom:transformers-version") == "4.57.1"
    assert prop(m, "bsi:component:executable") == "non-executable"

    params = m["modelCard"]["modelParameters"]
    assert params["task"] == "text-classification"
    assert params["architectureFamily"] == "bert"
    assert params["modelArchitecture"] == "BertForSequenceClassification"
    assert params["inputs"] == [{"format": "text"}] and params["outputs"] == [{"format": "label"}]
    refs = [d["ref"] for d in params["datasets"]]
    assert refs == ["dataset:stanfordnlp/sst2", "dataset:imdb"]

    metrics = m["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    assert {"type": "accuracy", "value": "0.93", "slice": "SST-2/validation"} in metrics
    considerations = m["modelCard"]["considerations"]
    assert considerations["useCases"] == ["Classifying product reviews."]
    assert considerations["technicalLimitations"] == [
        "Medical or legal text."
    ]  # placeholder dropped
    assert considerations["ethicalConsiderations"] == [
        {"name": "Reviews may encode demographic bias."}
    ]


def test_files_hashes_and_bsi_properties(cli, model):
    bom, _ = cli.bom(model)
    files = [c for c in bom["components"] if c["type"] == "file"]
    assert [f["name"] for f in files] == sorted(p.name for p in model.iterdir())
    for f in files:
        data = (model / f["name"]).read_bytes()
        assert {h["alg"]: h["content"] for h in f["hashes"]} == {
            "SHA-256": hashlib.sha256(data).hexdigest(),
            "SHA-512": hashlib.sha512(data).hexdigest(),
        }
        assert prop(f, "mlbom:size") == str(len(data))
        assert prop(f, "bsi:component:filename") == f["name"]
        for key in ("executable", "archive", "structured"):
            assert prop(f, f"bsi:component:{key}") is not None
        assert f["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    weights = file_component(bom, "model.safetensors")
    assert prop(weights, "mlbom:format") == "safetensors"
    assert prop(weights, "mlbom:dtypes") == "F16:2"
    assert prop(weights, "mlbom:tensor-count") == "2"
    assert prop(weights, "mlbom:safetensors:metadata:format") == "pt"
    assert prop(weights, "bsi:component:structured") == "structured"
    template = prop(file_component(bom, "tokenizer_config.json"), "mlbom:chat-template:sha256")
    assert template == hashlib.sha256(b"{{ messages }}").hexdigest()

    model_deps = next(d for d in bom["dependencies"] if d["ref"] == "model")
    assert sorted(model_deps["dependsOn"]) == sorted(f"file:{f['name']}" for f in files)
    assert bom["compositions"] == [{"aggregate": "complete", "dependencies": ["model"]}]


def test_datasets_and_lineage(cli, model):
    bom, _ = cli.bom(model)
    data = {c["name"]: c for c in bom["components"] if c["type"] == "data"}
    assert set(data) == {"stanfordnlp/sst2", "imdb"}
    sst2 = data["stanfordnlp/sst2"]
    assert sst2["data"] == [
        {"type": "dataset", "name": "stanfordnlp/sst2",
         "contents": {"url": "https://huggingface.co/datasets/stanfordnlp/sst2"}}
    ]  # fmt: skip
    assert prop(sst2, "mlbom:dataset:role") == "training"
    ancestors = bom["metadata"]["component"]["pedigree"]["ancestors"]
    assert len(ancestors) == 1  # the card and config name the same base: one ancestor
    base = ancestors[0]
    assert base["name"] == "google-bert/bert-base-uncased"
    assert base["purl"] == "pkg:huggingface/google-bert/bert-base-uncased"
    assert prop(base, "mlbom:lineage:relation") == "finetune"


def test_inferred_base_model_is_marked(cli, tmp_path):
    folder = tmp_path / "m"
    safetensors_file(folder / "model.safetensors", {"w": (2, 2)})
    (folder / "config.json").write_text(
        json.dumps({"_name_or_path": "org/base", "model_type": "gpt2"})
    )
    bom, _ = cli.bom(folder)
    (base,) = bom["metadata"]["component"]["pedigree"]["ancestors"]
    assert base["name"] == "org/base" and prop(base, "mlbom:lineage:inferred") == "true"


def test_metadata_tools_timestamp_manufacturer(cli, model, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    bom, _ = cli.bom(
        model, "--manufacturer", "ACME AI", "--manufacturer-contact", "psirt@acme.example"
    )
    meta = bom["metadata"]
    assert meta["timestamp"].startswith("2026-01-01T00:00:00")
    assert meta["tools"]["components"][0]["name"] == "mlbom"
    assert meta["tools"]["components"][0]["version"] == mlbom.__version__
    assert meta["manufacturer"] == {"name": "ACME AI", "contact": [{"email": "psirt@acme.example"}]}
    assert meta["component"]["manufacturer"]["name"] == "ACME AI"
    assert bom["serialNumber"].startswith("urn:uuid:")
    bom2, _ = cli.bom(
        model, "--manufacturer", "ACME AI", "--manufacturer-contact", "https://acme.example/psirt"
    )
    assert bom2["metadata"]["manufacturer"]["url"] == ["https://acme.example/psirt"]


def test_overrides_and_hash_choice(cli, model):
    bom, _ = cli.bom(model, "--name", "custom", "--version", "7", "--hash", "sha256")
    assert bom["metadata"]["component"]["name"] == "custom"
    f = file_component(bom, "config.json")
    assert [h["alg"] for h in f["hashes"]] == ["SHA-256"] and f["version"] == "7"


def test_library_call(model):
    result = mlbom.generate(model, algorithms=["sha256", "blake2b-512"])
    doc = result.to_dict()
    assert doc["metadata"]["component"]["name"] == "acme/sentiment-bert"
    assert {h["alg"] for h in file_component(doc, "vocab.txt")["hashes"]} == {
        "SHA-256",
        "BLAKE2b-512",
    }
    assert result.unsafe_imports == {}
    assert any("version" in w for w in result.warnings)  # no version anywhere: said, not invented


@pytest.mark.parametrize("spec", ["1.6", "1.7"])
def test_xml_and_spec_versions(cli, model, tmp_path, spec):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.xml import XmlValidator

    out = tmp_path / "bom.cdx.xml"
    cli("generate", model, "-o", out, "--spec-version", spec, "-q")  # format from the extension
    text = out.read_text()
    version = {"1.6": SchemaVersion.V1_6, "1.7": SchemaVersion.V1_7}[spec]
    assert XmlValidator(version).validate_str(text) is None
    assert f"http://cyclonedx.org/schema/bom/{spec}" in text
    assert "<modelCard" in text and "<ref>dataset:imdb</ref>" in text and "<compositions>" in text
    json_out, _ = cli("generate", model, "--spec-version", spec)
    assert assert_valid(json_out, spec)["specVersion"] == spec


def test_hf_cache_snapshot_identity_and_links(cli, tmp_path):
    repo = tmp_path / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"
    commit = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
    snapshot = repo / "snapshots" / commit
    blobs = repo / "blobs"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    safetensors_file(
        blobs / "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", {"w": (3,)}
    )
    (snapshot / "model.safetensors").symlink_to(
        "../../blobs/53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    )
    bom, _ = cli.bom(snapshot)
    m = bom["metadata"]["component"]
    assert m["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert m["version"] == commit
    assert m["purl"] == f"pkg:huggingface/sentence-transformers/all-MiniLM-L6-v2@{commit}"
    assert file_component(bom, "model.safetensors")


def test_git_clone_of_hub_repo(cli, tmp_path):
    folder = tmp_path / "clone"
    safetensors_file(folder / "model.safetensors", {"w": (3,)})
    commit = "a" * 40
    (folder / ".git" / "refs" / "heads").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".git" / "refs" / "heads" / "main").write_text(commit + "\n")
    (folder / ".git" / "config").write_text(
        '[remote "origin"]\n\turl = https://huggingface.co/acme/clone\n'
    )
    (folder / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    bom, _ = cli.bom(folder)
    m = bom["metadata"]["component"]
    assert (m["name"], m["version"]) == ("acme/clone", commit)
    assert m["purl"] == f"pkg:huggingface/acme/clone@{commit}"
    names = [c["name"] for c in bom["components"]]
    assert "model.safetensors" in names and ".git/HEAD" in names  # nothing skipped silently
    bom, _ = cli.bom(folder, "--exclude", folder / ".git")  # unless the user says so
    assert [c["name"] for c in bom["components"]] == [".gitattributes", "model.safetensors"]


def test_output_file_inside_model_folder_is_not_listed(cli, model):
    out = model / "bom.cdx.json"
    cli("generate", model, "-o", out, "-q")
    cli("generate", model, "-o", out, "-q")
    bom = assert_valid(out.read_text())
    assert "bom.cdx.json" not in [c["name"] for c in bom["components"]]


def test_card_title_description_and_code_blocks(cli, tmp_path):
    folder = tmp_path / "snapshot"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    (folder / "README.md").write_text(
        "---\nlicense: other\nlicense_name: acme-research\nlicense_link: https://acme.example/license\n---\n"
        "# Model Card for acme-embed\nThis maps sentences to vectors.\n\n## Usage\n"
        "```python\n# Limitations\nmodel.encode('x')\n```\n\nThen call it.\n"
    )
    bom, _ = cli.bom(folder)
    m = bom["metadata"]["component"]
    assert m["name"] == "acme-embed"
    assert m["description"] == "This maps sentences to vectors."
    assert "considerations" not in m["modelCard"]  # a comment in code is no section
    assert m["licenses"] == [
        {"license": {"name": "acme-research", "url": "https://acme.example/license"}}
    ]


@pytest.mark.parametrize("origin", ["outputs/checkpoint-500", "runs/exp1", "acme/self"])
def test_name_or_path_that_is_no_ancestor(cli, tmp_path, origin):
    folder = tmp_path / "self"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    (folder / "config.json").write_text(json.dumps({"_name_or_path": origin}))
    bom, _ = cli.bom(folder, "--name", "acme/self")
    assert "pedigree" not in bom["metadata"]["component"]
