"""The BSI TR-03183-2, G7 and CRA checks of `mlbom audit`, on BOMs `mlbom.generate` writes for
the example model and on hand-edited copies that break one field each."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest

import mlbom
from mlbom.audit.checks import (
    Check,
    CraFacts,
    bsi_checks,
    bsi_passes,
    cra_points,
    g7_checks,
    summarize,
)
from mlbom.models import Environment, Gpu
from tests.builders import ROOT

EXAMPLE = ROOT / "examples" / "tiny-sentiment"
FILES = ["README.md", "config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
COMMIT = "ad7e4c0b6c3c3c6e4b8b0f6f1ba0e0c3a4c9d1e2"


def _generate(**kwargs) -> dict:
    return mlbom.generate(EXAMPLE, cache=False, **kwargs).to_dict()


@pytest.fixture(scope="module")
def good() -> dict:
    return _generate(
        version="1.0", manufacturer="Acme", manufacturer_contact="security@acme.example"
    )


@pytest.fixture
def bom(good) -> dict:
    return copy.deepcopy(good)


def _by_id(checks: list[Check]) -> dict[str, Check]:
    ids = [c.id for c in checks]
    assert len(ids) == len(set(ids)), "check ids are unique"
    return {c.id: c for c in checks}


def _file(bom: dict, path: str) -> dict:
    return next(c for c in bom["components"] if c["bom-ref"] == f"file:{path}")


def _set_property(component: dict, name: str, *values: str) -> None:
    component["properties"] = [p for p in component["properties"] if p["name"] != name]
    component["properties"] += [{"name": name, "value": v} for v in values]


# -- BSI TR-03183-2 on generated BOMs ---------------------------------------------------------


def test_a_generated_bom_with_manufacturer_and_contact_passes_the_required_fields(good):
    checks = bsi_checks(good)
    assert bsi_passes(checks)
    by_id = _by_id(checks)
    required = [c for c in checks if c.level == "required"]
    assert {c.status for c in required} <= {"pass", "n/a"}
    assert (
        by_id["bsi.5.2.1.creator"].detail == "metadata.manufacturer.contact: security@acme.example"
    )
    assert by_id["bsi.5.2.1.timestamp"].status == "pass"
    assert by_id["bsi.4.format"].status == "pass"
    for path in FILES:
        ref = f"file:{path}"
        for field in ("creator", "name", "version", "filename", "dependencies",
                      "distribution-licences", "hash-sha512", "executable", "archive",
                      "structured"):  # fmt: skip
            check = by_id[f"bsi.5.2.2.{field}:{ref}"]
            assert (check.status, check.subject, check.fix) == ("pass", ref, None), check
    assert by_id["bsi.5.2.2.filename:file:model.safetensors"].detail.endswith(": model.safetensors")
    # the model is its files: file-only fields are n/a for it, with the reason
    assert by_id["bsi.5.2.2.hash-sha512:model"].status == "n/a"
    assert "its files" in by_id["bsi.5.2.2.filename:model"].detail
    deps = by_id["bsi.5.2.2.dependencies:model"]
    assert (deps.status, deps.detail) == ("pass", "depends on 5 components; compositions: complete")
    assert by_id["bsi.5.2.2.distribution-licences:model"].detail == "license.id: Apache-2.0"
    assert by_id["bsi.5.2.3.sbom-uri"].status == "pass"
    assert by_id["bsi.5.2.3.sbom-uri"].level == "additional"


def test_additional_and_optional_fields_are_reported_without_failing_the_verdict(good):
    by_id = _by_id(bsi_checks(good))
    # a local model has no purl: a gap in the additional fields, named, but not required
    identifiers = by_id["bsi.5.2.4.unique-identifiers:model"]
    assert (identifiers.status, identifiers.level) == ("fail", "additional")
    assert "--source hf://" in identifiers.fix
    assert by_id["bsi.5.2.4.unique-identifiers:file:config.json"].status == "n/a"
    assert by_id["bsi.5.2.4.original-licences:model"].status == "pass"
    assert by_id["bsi.5.2.5.security-txt:model"].level == "optional"
    assert by_id["bsi.5.2.4.source-code-uri:file:vocab.txt"].status == "n/a"


def test_datasets_are_not_held_to_the_fields_of_delivered_components(good):
    by_id = _by_id(bsi_checks(good))
    ref = "dataset:stanfordnlp/sst2"
    assert by_id[f"bsi.5.2.2.name:{ref}"].status == "pass"
    for field in ("creator", "version", "filename", "hash-sha512", "distribution-licences"):
        check = by_id[f"bsi.5.2.2.{field}:{ref}"]
        assert check.status == "n/a" and "scope of delivery" in check.detail, check


def test_without_a_manufacturer_the_creator_checks_fail_with_the_flag():
    checks = bsi_checks(_generate(version="1.0"))
    assert not bsi_passes(checks)
    by_id = _by_id(checks)
    sbom = by_id["bsi.5.2.1.creator"]
    assert sbom.status == "fail"
    assert sbom.fix == "generate with --manufacturer NAME --manufacturer-contact EMAIL_OR_URL"
    for ref in ["model", *(f"file:{p}" for p in FILES)]:
        check = by_id[f"bsi.5.2.2.creator:{ref}"]
        assert (check.status, check.fix) == ("fail", sbom.fix)
    failing = {c.id.split(":")[0] for c in checks if c.status == "fail" and c.level == "required"}
    assert failing == {"bsi.5.2.1.creator", "bsi.5.2.2.creator"}


def test_a_manufacturer_without_contact_is_no_creator(bom):
    for holder in (bom["metadata"], *bom["components"]):
        holder.get("manufacturer", {}).pop("contact", None)
    bom["metadata"]["component"]["manufacturer"].pop("contact")
    by_id = _by_id(bsi_checks(bom))
    check = by_id["bsi.5.2.1.creator"]
    assert check.status == "fail" and "'Acme' has no e-mail or URL" in check.detail
    assert check.fix == "generate with --manufacturer-contact EMAIL_OR_URL"
    assert by_id["bsi.5.2.2.creator:file:vocab.txt"].fix == check.fix


def test_a_manufacturer_url_is_a_creator(bom):
    bom["metadata"]["manufacturer"] = {"name": "Acme", "url": ["https://acme.example/security"]}
    check = _by_id(bsi_checks(bom))["bsi.5.2.1.creator"]
    assert (check.status, check.detail) == (
        "pass",
        "metadata.manufacturer.url: https://acme.example/security",
    )


def test_sha256_only_fails_sha512_for_every_file():
    checks = bsi_checks(
        _generate(
            version="1.0",
            manufacturer="Acme",
            manufacturer_contact="security@acme.example",
            algorithms=["sha256"],
        )
    )
    assert not bsi_passes(checks)
    failed = [c for c in checks if c.status == "fail" and c.level == "required"]
    assert sorted(c.subject for c in failed) == sorted(f"file:{p}" for p in FILES)
    for check in failed:
        assert check.id == f"bsi.5.2.2.hash-sha512:{check.subject}"
        assert check.detail == "hashes: SHA-256 only"
        assert check.fix == "generate with --hash sha256 --hash sha512"


def test_a_file_the_hub_hashed_names_where_its_sha256_came_from(bom):
    weights = _file(bom, "model.safetensors")
    weights["hashes"] = [h for h in weights["hashes"] if h["alg"] == "SHA-256"]
    _set_property(weights, "mlbom:sha256-only", "hub-lfs-metadata")
    check = _by_id(bsi_checks(bom))["bsi.5.2.2.hash-sha512:file:model.safetensors"]
    assert check.status == "fail"
    assert check.detail == "hashes: SHA-256 only (mlbom:sha256-only = hub-lfs-metadata)"
    assert check.fix == "generate with --hash sha256 --hash sha512"


def test_a_sha512_on_the_distribution_reference_counts(bom):
    weights = _file(bom, "model.safetensors")
    sha512 = next(h for h in weights["hashes"] if h["alg"] == "SHA-512")
    weights["hashes"] = [h for h in weights["hashes"] if h["alg"] != "SHA-512"]
    weights["externalReferences"] = [
        {"type": "distribution", "url": "https://example.com/model.safetensors", "hashes": [sha512]}
    ]
    by_id = _by_id(bsi_checks(bom))
    assert by_id["bsi.5.2.2.hash-sha512:file:model.safetensors"].status == "pass"
    assert by_id["bsi.5.2.4.deployable-uri:file:model.safetensors"].status == "pass"


def _no_version(bom):
    _file(bom, "config.json").pop("version")


def _no_filename(bom):
    _set_property(_file(bom, "config.json"), "bsi:component:filename")


def _path_as_filename(bom):
    _set_property(_file(bom, "config.json"), "bsi:component:filename", "sub/config.json")


def _bad_executable(bom):
    _set_property(_file(bom, "config.json"), "bsi:component:executable", "false")


def _archive_twice(bom):
    _set_property(_file(bom, "config.json"), "bsi:component:archive", "no archive", "archive")


def _no_structured(bom):
    _set_property(_file(bom, "config.json"), "bsi:component:structured")


def _non_spdx_licence(bom):
    _file(bom, "config.json")["licenses"] = [{"license": {"name": "llama3"}}]


def _declared_only(bom):
    _file(bom, "config.json")["licenses"] = [
        {"license": {"id": "Apache-2.0", "acknowledgement": "declared"}}
    ]


def _no_licence(bom):
    _file(bom, "config.json").pop("licenses")


def _bad_sha512(bom):
    for h in _file(bom, "config.json")["hashes"]:
        if h["alg"] == "SHA-512":
            h["content"] = "ab" * 32


def _not_in_the_graph(bom):
    bom["dependencies"] = [d for d in bom["dependencies"] if d["ref"] != "file:config.json"]
    for d in bom["dependencies"]:
        if "dependsOn" in d:
            d["dependsOn"].remove("file:config.json")


@pytest.mark.parametrize(
    ("edit", "check_id", "detail", "fix"),
    [
        (_no_version, "version:file:config.json", "no version", "--version VERSION"),
        (_no_filename, "filename:file:config.json", "no bsi:component:filename", "mlbom generate"),
        (_path_as_filename, "filename:file:config.json", "not a bare filename", "mlbom generate"),
        (_bad_executable, "executable:file:config.json", "'false' is not one of", "mlbom generate"),
        (_archive_twice, "archive:file:config.json", "occurs 2 times", "mlbom generate"),
        (_no_structured, "structured:file:config.json", "no bsi:component:structured", "mlbom generate"),
        (_non_spdx_licence, "distribution-licences:file:config.json", "llama3 is not an SPDX", "LicenseRef-"),
        (_declared_only, "distribution-licences:file:config.json", "only declared", "license:"),
        (_no_licence, "distribution-licences:file:config.json", "no licences", "SPDX"),
        (_bad_sha512, "hash-sha512:file:config.json", "not 128 hex digits", "--hash sha512"),
        (_not_in_the_graph, "dependencies:file:config.json", "unknown", "mlbom generate"),
    ],
)  # fmt: skip
def test_each_broken_component_field_fails_with_its_fix(bom, edit, check_id, detail, fix):
    edit(bom)
    checks = bsi_checks(bom)
    check = _by_id(checks)[f"bsi.5.2.2.{check_id}"]
    assert check.status == "fail" and check.level == "required"
    assert detail in check.detail and fix in check.fix, check
    assert not bsi_passes(checks)
    others = [c for c in checks if c.status == "fail" and c.level == "required" and c is not check]
    if edit is not _not_in_the_graph:  # the model's graph then misses a file too
        assert others == []


@pytest.mark.parametrize(
    "licenses",
    [
        [{"license": {"name": "LicenseRef-llama3"}}],
        [{"expression": "MIT OR Apache-2.0"}],
        [{"expression": "Apache-2.0 WITH LLVM-exception", "acknowledgement": "concluded"}],
        [{"license": {"id": "MIT", "acknowledgement": "declared"}},
         {"license": {"id": "Apache-2.0", "acknowledgement": "concluded"}}],
    ],
)  # fmt: skip
def test_spdx_identifiers_expressions_and_licenserefs_pass(bom, licenses):
    _file(bom, "config.json")["licenses"] = licenses
    check = _by_id(bsi_checks(bom))["bsi.5.2.2.distribution-licences:file:config.json"]
    assert check.status == "pass", check


def test_the_original_licence_is_the_declared_one(bom):
    _file(bom, "config.json")["licenses"] = [
        {"license": {"id": "Apache-2.0", "acknowledgement": "concluded"}}
    ]
    check = _by_id(bsi_checks(bom))["bsi.5.2.4.original-licences:file:config.json"]
    assert (check.status, check.level) == ("fail", "additional")
    assert "only the concluded" in check.detail


def test_dependencies_need_their_completeness_stated(bom):
    bom.pop("compositions")
    check = _by_id(bsi_checks(bom))["bsi.5.2.2.dependencies:model"]
    assert check.status == "fail"
    assert check.detail == (
        "depends on 5 components, but their completeness is not stated (no compositions entry)"
    )
    assert "compositions" in check.fix
    bom["compositions"] = [{"aggregate": "incomplete", "dependencies": ["model"]}]
    check = _by_id(bsi_checks(bom))["bsi.5.2.2.dependencies:model"]
    assert check.status == "pass" and "incomplete (stated)" in check.detail
    bom["compositions"] = [{"aggregate": "unknown", "dependencies": ["model"]}]
    assert _by_id(bsi_checks(bom))["bsi.5.2.2.dependencies:model"].status == "fail"


def test_complete_is_checked_against_the_files_listed(bom):
    model = next(d for d in bom["dependencies"] if d["ref"] == "model")
    model["dependsOn"].remove("file:vocab.txt")
    check = _by_id(bsi_checks(bom))["bsi.5.2.2.dependencies:model"]
    assert check.status == "fail" and "file:vocab.txt" in check.detail


@pytest.mark.parametrize(
    ("edit", "check_id", "fix"),
    [
        (lambda b: b["metadata"].pop("timestamp"), "bsi.5.2.1.timestamp", "mlbom generate"),
        (lambda b: b["metadata"].update(timestamp="yesterday"), "bsi.5.2.1.timestamp", "mlbom generate"),
        (lambda b: b.update(specVersion="1.5"), "bsi.4.format", "--spec-version 1.6"),
        (lambda b: b.update(vulnerabilities=[{"id": "CVE-2025-0001"}]), "bsi.3.1.no-vulnerabilities", "VEX"),
        (lambda b: b["metadata"].pop("manufacturer"), "bsi.5.2.1.creator", "--manufacturer NAME"),
    ],
)  # fmt: skip
def test_each_broken_sbom_field_fails_with_its_fix(bom, edit, check_id, fix):
    edit(bom)
    checks = bsi_checks(bom)
    check = _by_id(checks)[check_id]
    assert check.status == "fail" and fix in check.fix and check.subject is None
    assert not bsi_passes(checks)


def test_a_missing_serial_number_is_an_additional_field(bom):
    bom.pop("serialNumber")
    checks = bsi_checks(bom)
    check = _by_id(checks)["bsi.5.2.3.sbom-uri"]
    assert (check.status, check.level) == ("fail", "additional")
    assert bsi_passes(checks)


def test_a_model_that_is_one_file_must_carry_the_file_fields(bom):
    # no files listed: the model component is the deliverable, not a logical component
    bom["components"] = [c for c in bom["components"] if c["type"] == "data"]
    bom["dependencies"] = [{"ref": "model"}, {"ref": "dataset:stanfordnlp/sst2"}]
    by_id = _by_id(bsi_checks(bom))
    assert by_id["bsi.5.2.2.filename:model"].status == "fail"
    assert by_id["bsi.5.2.2.hash-sha512:model"].status == "fail"


def test_summarize_gives_one_line_per_field():
    checks = bsi_checks(_generate(version="1.0", algorithms=["sha256"]))
    summary = {c.id: c for c in summarize(checks)}
    sha = summary["bsi.5.2.2.hash-sha512"]
    assert (sha.status, sha.subject) == ("fail", None)
    assert sha.detail.startswith("0 of 5 components pass, 2 n/a; failing: file:README.md")
    assert sha.fix == "generate with --hash sha256 --hash sha512"
    assert summary["bsi.5.2.2.name"].status == "pass"
    assert summary["bsi.5.2.1.creator"].status == "fail"


@pytest.mark.parametrize(
    "junk",
    [
        {},
        {"components": "x", "metadata": []},
        {"components": [1, None]},
        {"dependencies": [{"ref": ["a"]}, {"ref": {"b": 1}}, {"ref": None}]},
        {"metadata": {"component": {"bom-ref": ["model"]}}, "dependencies": [{"ref": "m"}]},
    ],
)
def test_odd_documents_give_failures_not_exceptions(junk):
    checks = bsi_checks(junk)
    assert not bsi_passes(checks)
    assert g7_checks(junk)


# -- G7 SBOM for AI ---------------------------------------------------------------------------


def test_g7_clusters_on_a_bom_with_datasets_metrics_and_formulation():
    environment = Environment(
        python_implementation="CPython", python_version="3.12.3", os_name="Ubuntu",
        os_version="24.04", gpus=[Gpu("NVIDIA H100 80GB HBM3", "81559 MiB", 8)],
    )  # fmt: skip
    bom = _generate(
        version="1.0",
        manufacturer="Acme",
        manufacturer_contact="security@acme.example",
        datasets=[f"stanfordnlp/sst2@{COMMIT}"],
        environment=environment,
    )
    by_id = _by_id(g7_checks(bom, signed=True))
    clusters = {c.split(".")[1] for c in by_id}
    assert clusters == {
        "metadata",
        "system",
        "models",
        "datasets",
        "kpi",
        "infrastructure",
        "security",
    }
    for passing in (
        "g7.metadata.author", "g7.metadata.signature", "g7.metadata.timestamp", "g7.metadata.tool",
        "g7.system.identity", "g7.system.intended-use", "g7.models.identity", "g7.models.hash",
        "g7.models.training", "g7.models.license", "g7.datasets.identity",
        "g7.datasets.provenance", "g7.datasets.relationship", "g7.datasets.integrity",
        "g7.kpi.performance", "g7.infrastructure.software", "g7.infrastructure.hardware",
        "g7.security.controls", "g7.security.code-execution", "g7.security.policy",
    ):  # fmt: skip
        assert by_id[passing].status == "pass", by_id[passing]
    assert by_id["g7.kpi.performance"].detail == "accuracy 0.512 (SST-2/validation)"
    assert by_id["g7.datasets.identity"].detail == f"stanfordnlp/sst2@{COMMIT}"
    assert by_id["g7.datasets.integrity"].detail == f"stanfordnlp/sst2: pinned to commit {COMMIT}"
    assert "NVIDIA H100 80GB HBM3" in by_id["g7.infrastructure.hardware"].detail
    assert "Ubuntu 24.04" in by_id["g7.infrastructure.software"].detail
    assert by_id["g7.security.vulnerabilities"].status == "n/a"


def test_g7_clusters_on_a_bom_without_datasets_metrics_or_formulation(bom):
    bom["components"] = [c for c in bom["components"] if c["type"] != "data"]
    bom["dependencies"] = [d for d in bom["dependencies"] if not d["ref"].startswith("dataset:")]
    card = bom["metadata"]["component"]["modelCard"]
    card.pop("quantitativeAnalysis")
    card["modelParameters"].pop("datasets")
    bom.pop("formulation", None)
    by_id = _by_id(g7_checks(bom, signed=False))
    for key in ("identity", "provenance", "relationship", "license", "integrity", "sensitivity"):
        check = by_id[f"g7.datasets.{key}"]
        assert check.status == "fail" and "--dataset NAME@REVISION" in check.fix
    assert by_id["g7.kpi.performance"].status == "fail"
    assert "model-index" in by_id["g7.kpi.performance"].fix
    for key in ("software", "hardware"):
        check = by_id[f"g7.infrastructure.{key}"]
        assert check.status == "fail" and "--env" in check.fix
    signature = by_id["g7.metadata.signature"]
    assert signature.status == "fail" and "mlbom sign" in signature.fix


def test_g7_signature_not_looked_at_is_not_applicable(good):
    by_id = _by_id(g7_checks(good))
    assert by_id["g7.metadata.signature"].status == "n/a"
    # the card names the dataset without a revision
    identity = by_id["g7.datasets.identity"]
    assert identity.status == "fail" and identity.fix == "generate with --dataset NAME@REVISION"


def test_g7_security_reports_code_that_runs_on_loading(bom):
    model = bom["metadata"]["component"]
    model["properties"].append({"name": "mlbom:unsafe-import", "value": "os.system"})
    check = _by_id(g7_checks(bom))["g7.security.code-execution"]
    assert check.status == "fail" and "os.system" in check.detail and "safetensors" in check.fix


def test_g7_without_a_manufacturer_names_no_producer():
    by_id = _by_id(g7_checks(_generate()))
    assert by_id["g7.models.producer"].fix.startswith("generate with --manufacturer")
    assert by_id["g7.system.identity"].status == "fail"
    assert "--version VERSION" in by_id["g7.system.identity"].fix
    assert by_id["g7.security.policy"].fix == "generate with --manufacturer-contact EMAIL_OR_URL"


def test_checks_serialize_for_the_report(good):
    check = bsi_checks(good)[0]
    assert json.loads(json.dumps(check.__dict__)) == {
        "id": "bsi.4.format", "title": "SBOM format: CycloneDX 1.6 or later", "status": "pass",
        "detail": "bomFormat CycloneDX, specVersion 1.6", "fix": None, "subject": None,
        "level": "required",
    }  # fmt: skip


# -- CRA ----------------------------------------------------------------------------------------

COMPLETE = CraFacts(
    models=12, with_bom=12, schema_valid=12, signed_verified=12, bsi_passing=12,
    with_vulnerability_contact=12, decision_logs=2, decision_logs_intact=2,
    product="Acme Assistant", manufacturer="Acme", contact="security@acme.example",
    support_until="2031-12-31",
)  # fmt: skip


def _points(facts: CraFacts) -> dict:
    points = cra_points(facts)
    assert len({p.id for p in points}) == len(points)
    return {p.id: p for p in points}


def test_cra_points_cover_annex_i_part_ii_and_annex_vii():
    ids = list(_points(COMPLETE))
    assert ids[:8] == [f"cra.annex-i.part-ii.{n}" for n in range(1, 9)]
    assert ids[8:] == [
        "cra.annex-vii.1a", "cra.annex-vii.1b", "cra.annex-vii.1d", "cra.annex-vii.2a",
        "cra.annex-vii.2b", "cra.annex-vii.2c", "cra.annex-vii.3", "cra.annex-vii.4",
        "cra.annex-vii.5", "cra.annex-vii.6", "cra.annex-vii.7", "cra.annex-vii.8",
    ]  # fmt: skip


def test_complete_facts_are_evidence_where_the_export_can_give_it():
    points = _points(COMPLETE)
    for id_ in ("cra.annex-i.part-ii.1", "cra.annex-i.part-ii.6", "cra.annex-i.part-ii.7",
                "cra.annex-vii.1b", "cra.annex-vii.8"):  # fmt: skip
        assert (points[id_].status, points[id_].todo) == ("evidence", None), points[id_]
    assert points["cra.annex-i.part-ii.1"].evidence.startswith(
        "ML-BOMs for 12 of 12 models (12 schema-valid, 12 passing BSI TR-03183-2"
    )
    assert "12 of 12 models' BOMs signed and verified" in points["cra.annex-i.part-ii.7"].evidence
    # what only the manufacturer can write stays a gap or partial, with what to do
    for id_ in ("cra.annex-i.part-ii.2", "cra.annex-i.part-ii.4", "cra.annex-i.part-ii.5",
                "cra.annex-vii.3", "cra.annex-vii.7"):  # fmt: skip
        assert points[id_].status == "gap" and points[id_].todo, points[id_]
    assert "disclosure policy" in points["cra.annex-i.part-ii.5"].todo
    assert points["cra.annex-vii.4"].status == "partial"
    assert points["cra.annex-vii.4"].evidence == "supported until 2031-12-31"


def test_short_counts_are_partial_with_the_counts_to_fix():
    facts = replace(COMPLETE, with_bom=10, schema_valid=9, bsi_passing=7, signed_verified=8,
                    with_vulnerability_contact=5, decision_logs_intact=1)  # fmt: skip
    points = _points(facts)
    sbom = points["cra.annex-i.part-ii.1"]
    assert sbom.status == "partial"
    assert "the 2 models without one" in sbom.todo
    assert "the 1 BOMs that fail the CycloneDX schema" in sbom.todo
    assert "the 3 BOMs failing required BSI" in sbom.todo
    updates = points["cra.annex-i.part-ii.7"]
    assert updates.status == "partial" and "sign the 4 unsigned" in updates.todo
    assert "1 decision logs whose hash chain is broken" in updates.todo
    contact = points["cra.annex-i.part-ii.6"]
    assert contact.status == "partial" and "--manufacturer-contact" in contact.todo
    assert points["cra.annex-vii.8"].status == "partial"


def test_no_models_are_gaps():
    points = _points(CraFacts(0, 0, 0, 0, 0, 0, 0, 0))
    assert {p.status for p in points.values()} == {"gap"}
    assert "none found" in points["cra.annex-i.part-ii.1"].todo


@pytest.mark.parametrize(
    ("missing", "flag", "point_ids"),
    [
        ("product", "mlbom audit export --product NAME", ["cra.annex-vii.1a"]),
        ("contact", "mlbom audit export --contact EMAIL_OR_URL", ["cra.annex-i.part-ii.6"]),
        ("support_until", "mlbom audit export --support-until YYYY-MM-DD", ["cra.annex-vii.4"]),
    ],
)
def test_missing_product_facts_are_gaps_naming_the_flag(missing, flag, point_ids):
    points = _points(replace(COMPLETE, **{missing: None}))
    for id_ in point_ids:
        assert points[id_].status == "gap" and flag in points[id_].todo, points[id_]
    assert flag in points["cra.annex-vii.1d"].todo
    assert points["cra.annex-vii.1d"].status == "partial"


def test_nothing_from_the_manufacturer_names_every_flag():
    facts = replace(COMPLETE, product=None, manufacturer=None, contact=None, support_until=None)
    user_info = _points(facts)["cra.annex-vii.1d"]
    assert user_info.status == "gap"
    for flag in ("--product", "--manufacturer", "--contact", "--support-until"):
        assert f"mlbom audit export {flag}" in user_info.todo
    declaration = _points(facts)["cra.annex-vii.7"]
    assert "mlbom audit export --manufacturer NAME" in declaration.todo
