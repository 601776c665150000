"""mlbom audit export / check: a report over real stores, bundles and decision logs, in JSON
(schema-valid), HTML and a ZIP whose manifest is signed; bad input becomes findings."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile

import pytest
import yaml

import attest
import mlbom
from admission.decisions import DecisionLog
from attest import keys
from attest.dsse import pae
from attest.stores import Attestation, open_store
from mlbom.references import ModelRef
from tests.builders import hf_folder


@pytest.fixture
def evidence(tmp_path):
    """A store with a good model, an unsigned one, a corrupt entry; a policy; two logs."""
    model = hf_folder(tmp_path / "model")
    good = mlbom.generate(model, version="1.0", manufacturer="Acme",
                          manufacturer_contact="security@acme.example").to_dict()  # fmt: skip
    key = keys.generate("ecdsa-p256")
    keys.write_key_pair(key, tmp_path / "k.key", tmp_path / "k.pub", None)
    other = keys.generate("ed25519")
    store = open_store(str(tmp_path / "store"))
    good_ref = ModelRef("hf", "acme/good", "a" * 40)
    store.push(
        good_ref, Attestation(json.dumps(good).encode(), attest.sign(good, key=key).encode())
    )
    bad = mlbom.generate(model, version="2.0").to_dict()
    store.push(ModelRef("hf", "acme/other-signer", "b" * 40),
               Attestation(json.dumps(bad).encode(), attest.sign(bad, key=other).encode()))  # fmt: skip
    store.push(ModelRef("hf", "acme/corrupt", "c" * 40), Attestation(b"{not json", b"{}"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy", "stores": [str(tmp_path / "store")],
        "trust": {"signers": [{"name": "release", "key": {"path": str(tmp_path / "k.pub")}}]},
    }))  # fmt: skip
    log = DecisionLog(tmp_path / "logs" / "decisions.jsonl")
    for allowed in (True, True, False):
        log.append({"uid": "u", "allowed": allowed, "namespace": "prod", "name": "vllm",
                         "reason": "verified" if allowed else "no attestation",
                         "models": [{"model": str(good_ref), "outcome": "verified"}]})  # fmt: skip
    log.close()
    broken = DecisionLog(tmp_path / "broken" / "decisions.jsonl")
    for _ in range(3):
        broken.append({"uid": "x", "allowed": True})
    broken.close()
    lines = (tmp_path / "broken" / "decisions.jsonl").read_text().splitlines()
    (tmp_path / "broken" / "decisions.jsonl").write_text("\n".join(lines[1:]) + "\n")
    return tmp_path, policy, good_ref


def export(cli, tmp_path, policy, out, *extra):
    cli("audit", "export", "--store", tmp_path / "store", "--store", tmp_path / "missing-store",
        "--decisions", tmp_path / "logs" / "decisions.jsonl",
        "--decisions", tmp_path / "broken" / "decisions.jsonl",
        "--policy", policy, "--product", "Acme LLM", "--manufacturer", "Acme",
        "--contact", "security@acme.example", "--support-until", "2031-12-31", "-o", out, *extra)  # fmt: skip


def test_json_report(cli, evidence):
    tmp_path, policy, good_ref = evidence
    export(cli, tmp_path, policy, tmp_path / "report.json")
    report = json.loads((tmp_path / "report.json").read_text())
    summary = report["summary"]
    assert (summary["models"], summary["withBom"], summary["signedVerified"]) == (3, 2, 1)
    assert (summary["allowed"], summary["denied"]) == (2, 1)
    models = {m["reference"]: m for m in report["models"]}
    good = models[str(good_ref)]
    assert good["signature"]["verified"] and good["signature"]["signer"] == "release"
    assert good["bom"]["schemaValid"] and good["bsiPasses"] and good["hashesRecheckable"]
    assert good["decisions"]["allowed"] == 2 and good["decisions"]["denied"] == 1
    assert {d["name"] for d in good["datasets"]} == {"imdb", "stanfordnlp/sst2"}
    unsigned = models[f"hf://acme/other-signer@{'b' * 40}"]
    assert not unsigned["signature"]["verified"] and "release" in unsigned["signature"]["reason"]
    corrupt = models[f"hf://acme/corrupt@{'c' * 40}"]
    assert not corrupt["bom"]["present"] and not corrupt["signature"]["verified"]
    messages = " | ".join(f["message"] for f in report["findings"])
    assert "hash chain is broken" in messages and "cannot be read" in messages
    assert "entry in" in messages and "unreadable" in messages and "not verified" in messages
    logs = {log["path"]: log for log in report["decisionLogs"]}
    assert logs[str(tmp_path / "logs" / "decisions.jsonl")]["intact"] is True
    assert logs[str(tmp_path / "broken" / "decisions.jsonl")]["intact"] is False
    assert {p["status"] for p in report["cra"]} <= {"evidence", "partial", "gap"} and report["cra"]
    assert report["product"]["supportUntil"] == "2031-12-31"


def test_html_report(cli, evidence):
    tmp_path, policy, _ = evidence
    export(cli, tmp_path, policy, tmp_path / "report.html")
    text = (tmp_path / "report.html").read_text()
    assert (
        "<script" not in text and "acme/good" in text and "http://" not in text.split("</style>")[0]
    )


def test_signed_zip_evidence_package(cli, evidence):
    tmp_path, policy, _ = evidence
    export(cli, tmp_path, policy, tmp_path / "evidence.zip", "--sign", "--key", tmp_path / "k.key")
    with zipfile.ZipFile(tmp_path / "evidence.zip") as archive:
        names = set(archive.namelist())
        assert {
            "report.json",
            "report.html",
            "MANIFEST.sha256",
            "MANIFEST.sha256.sigstore.json",
        } <= names
        manifest = dict(
            reversed(line.split("  ", 1))
            for line in archive.read("MANIFEST.sha256").decode().splitlines()
        )
        for name, digest in manifest.items():  # every file is listed with its SHA-256
            assert hashlib.sha256(archive.read(name)).hexdigest() == digest
        assert set(manifest) == names - {"MANIFEST.sha256", "MANIFEST.sha256.sigstore.json"}
        assert any(
            n.startswith("attestations/") and n.endswith("mlbom.cdx.json.sigstore.json")
            for n in names
        )
        assert any(n.startswith("decision-logs/") for n in names)
        bundle = json.loads(archive.read("MANIFEST.sha256.sigstore.json"))
    envelope = bundle["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"])
    public = keys.load_public_key(tmp_path / "k.pub")
    assert keys.verify(
        public,
        base64.b64decode(envelope["signatures"][0]["sig"]),
        pae(envelope["payloadType"], payload),
    )
    statement = json.loads(payload)
    assert {s["name"]: s["digest"]["sha256"] for s in statement["subject"]} == manifest


def test_audit_check(cli, tmp_path):
    model = hf_folder(tmp_path / "m")
    good, poor = tmp_path / "good.json", tmp_path / "poor.json"
    mlbom.generate(
        model, version="1", manufacturer="Acme", manufacturer_contact="sec@acme.example"
    ).write(good)
    mlbom.generate(model, version="1", algorithms=["sha256"]).write(poor)
    out, _ = cli("audit", "check", good)
    assert "BSI TR-03183-2" in out and "G7" in out
    out, err = cli("audit", "check", poor, code=1)
    assert "--hash sha256 --hash sha512" in out and "required BSI" in err
    out, _ = cli("audit", "check", poor, "--json", code=1)
    assert json.loads(out)["bsiPasses"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "r.json", "--sign"], "--sign signs the ZIP"),
        (["-o", "r.txt"], "cannot tell the format"),
        (["-o", "r.json", "--support-until", "someday"], "is not a date"),
        (["-o", "r.zip", "--key", "k.key"], "add --sign"),
    ],
)
def test_unusable_arguments_exit_2(cli, tmp_path, args, message):
    _, err = cli("audit", "export", "--store", tmp_path, *args, code=2)
    assert message in err
