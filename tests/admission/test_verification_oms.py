"""Admission of models whose only attestation is an OpenSSF model signature (OMS), as NVIDIA
NGC and model_signing sign them: `model.sig` in the model's Hub repository (the Hub stand-in),
made by the real model_signing package, checked against the commit's listing without the
weights, by the policy's OMS signers (a key, a publisher's certificate chain), and admitted
only where `oms.accept` names the namespace or the model, with the signature and signer in
the decision and its log record."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import model_signing
import pytest
import yaml

from admission.manifests import admission_request
from admission.reviewer import Decision, Reviewer
from admission.verification import verdict_record
from attest import keys
from tests.builders import CARD, ca_chain, safetensors_head
from tests.hub_standin import File, HubStandIn, Repo

REPO = "nvidia/tiny-llm"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
MODEL = f"hf://{REPO}@{COMMIT}"


def files() -> dict[str, File]:
    head, size = safetensors_head({"w": (64, 64)})
    return {
        "README.md": File(CARD.encode(), 0, lfs=False),
        "config.json": File(b'{"model_type": "llama"}', 0, lfs=False),
        "model.safetensors": File(head, size),
    }


def signed_by_model_signing(folder: Path, repo: dict[str, File], private: Path) -> bytes:
    """The repository's files on disk, signed by model_signing as a publisher would."""
    for name, file in repo.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(file.read(0, file.size))
    model_signing.signing.Config().use_elliptic_key_signer(private_key=private).sign(folder, folder.parent / "model.sig")  # fmt: skip
    return (folder.parent / "model.sig").read_bytes()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The Hub stand-in with the model and its model.sig; the publisher's key pair."""
    private, public = tmp_path / "publisher.key", tmp_path / "publisher.pub"
    keys.write_key_pair(keys.generate("ecdsa-p256"), private, public, None)
    repo = files()
    signature = signed_by_model_signing(tmp_path / "model", repo, private)
    standin = HubStandIn()
    standin.repos[REPO] = Repo({**repo, "model.sig": File(signature, 0, lfs=False)}, commit=COMMIT)
    monkeypatch.setenv("HF_ENDPOINT", standin.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    yield standin, public
    standin.close()


def reviewer(tmp_path: Path, public: Path, **oms) -> Reviewer:
    (tmp_path / "store").mkdir(parents=True, exist_ok=True)
    ci = tmp_path / "ci.pub"
    keys.write_key_pair(keys.generate(), tmp_path / "ci.key", ci, None)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy",
        "stores": [str(tmp_path / "store")],
        "trust": {"signers": [{"name": "ci", "key": {"path": str(ci)}}],
                  "omsSigners": [{"name": "nvidia", "key": {"path": str(public)}}]},
        "oms": {"accept": {"namespaces": ["research"], **oms}},
    }))  # fmt: skip
    return Reviewer.load(policy)


def pod() -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "llm"}, "spec": {"containers": [{
        "name": "server", "image": "vllm/vllm-openai:v0.10.0", "resources": {"limits": {"nvidia.com/gpu": 1}},
        "command": ["vllm", "serve", REPO, "--revision", COMMIT]}]}}  # fmt: skip


def decide(review: Reviewer, namespace: str) -> Decision:
    return asyncio.run(review.decide(admission_request(pod(), namespace=namespace), float("inf")))


def test_an_oms_signed_model_is_admitted_only_where_the_policy_accepts_it(hub, tmp_path):
    standin, public = hub
    review = reviewer(tmp_path, public)
    allowed = decide(review, "research")
    assert allowed.allowed, allowed.reason
    assert (
        "has no ML-BOM; its OpenSSF model signature model.sig is signed by nvidia" in allowed.reason
    )
    (verdict,) = allowed.verdicts
    assert verdict_record(verdict) == {"model": MODEL, "outcome": "oms", "signer": "nvidia",
                                       "store": f"{MODEL}/model.sig", "evidence": "oms-signature"}  # fmt: skip
    assert not [p for p in standin.requests if "model.safetensors" in p[1] and p[0] == "GET"]
    denied = decide(review, "default")
    assert not denied.allowed and "accepted only where the policy's oms.accept" in denied.reason
    by_model = reviewer(tmp_path / "m", public, models=["hf://nvidia/*"])
    assert decide(by_model, "default").allowed


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda r: r.files.__setitem__(
                "config.json", File(b'{"model_type": "evil"}', 0, lfs=False)
            ),
            "config.json has changed",
        ),
        (
            lambda r: r.files.__setitem__("extra.py", File(b"import os\n", 0, lfs=False)),
            "extra.py is not in the signature",
        ),
        (lambda r: r.files.pop("README.md"), "README.md is missing"),
        (
            lambda r: r.files.__setitem__("model.safetensors", File(b"other", 1 << 16)),
            "model.safetensors has changed",
        ),
    ],
    ids=["changed-git-file", "added-file", "missing-file", "changed-lfs-file"],
)
def test_a_repository_that_differs_from_its_signature_is_denied(hub, tmp_path, change, reason):
    standin, public = hub
    change(standin.repos[REPO])
    denied = decide(reviewer(tmp_path, public), "research")
    assert not denied.allowed and reason in denied.reason
    assert "is not signed by a trusted OMS signer" in denied.reason


def test_another_publishers_signature_is_denied(hub, tmp_path):
    _, _ = hub
    other = tmp_path / "other.pub"
    keys.write_key_pair(keys.generate(), tmp_path / "other.key", other, None)
    denied = decide(reviewer(tmp_path, other), "research")
    assert not denied.allowed and "nvidia: bundle" in denied.reason


def test_without_a_signature_the_model_has_no_attestation(hub, tmp_path):
    standin, public = hub
    del standin.repos[REPO].files["model.sig"]
    denied = decide(reviewer(tmp_path, public), "research")
    assert not denied.allowed and "has no attestation" in denied.reason


def test_a_publishers_certificate_chain_as_oms_signer(tmp_path, monkeypatch):
    (tmp_path / "pki").mkdir()
    pki = ca_chain(tmp_path / "pki")
    repo = files()
    folder = tmp_path / "model"
    for name, file in repo.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(file.read(0, file.size))
    model_signing.signing.Config().use_certificate_signer(
        private_key=pki["key"], signing_certificate=pki["leaf"], certificate_chain=[pki["mid"]]
    ).sign(folder, tmp_path / "model.sig")
    standin = HubStandIn()
    standin.repos[REPO] = Repo({**repo, "model.sig": File((tmp_path / "model.sig").read_bytes(), 0, lfs=False)}, commit=COMMIT)  # fmt: skip
    monkeypatch.setenv("HF_ENDPOINT", standin.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    try:
        policy = tmp_path / "policy.yaml"
        shutil.copy(pki["root"], tmp_path / "publisher-ca.pem")
        policy.write_text(yaml.safe_dump({
            "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy", "stores": [str(tmp_path)],
            "trust": {"signers": [{"name": "ci", "keyless": {"issuer": "https://i.example", "subject": "s"}}],
                      "omsSigners": [{"name": "publisher", "certificateChain": {"path": "publisher-ca.pem"}}]},
            "oms": {"accept": {"models": ["hf://nvidia/*"]}},
        }))  # fmt: skip
        decision = decide(Reviewer.load(policy), "default")
        assert (
            decision.allowed
            and "signed by publisher (certificate CN=model-publisher)" in decision.reason
        )
    finally:
        standin.close()


def test_the_audit_export_lists_models_admitted_on_a_signature_and_what_they_lack(hub, tmp_path, cli):  # fmt: skip
    import json

    from admission.decisions import DecisionLog

    _, public = hub
    review = reviewer(tmp_path, public)
    request = admission_request(pod(), namespace="research")
    decision = decide(review, "research")
    log = DecisionLog(tmp_path / "decisions.jsonl")
    log.append(decision.record(request))
    log.close()
    out = tmp_path / "report.json"
    cli("audit", "export", "--store", tmp_path / "store", "--decisions", tmp_path / "decisions.jsonl",
        "--format", "json", "-o", out)  # fmt: skip
    report = json.loads(out.read_text())
    (model,) = [m for m in report["models"] if m["reference"] == MODEL]
    assert model["bom"]["present"] is False
    assert model["oms"]["signer"] == "nvidia" and model["oms"]["signature"] == f"{MODEL}/model.sig"
    assert "SBOM creator (e-mail or URL)" in model["oms"]["lacking"]
    assert any("without an ML-BOM" in f["message"] for f in model["findings"])
    assert model["decisions"]["allowed"] == 1
    html = tmp_path / "report.html"
    cli("audit", "export", "--store", tmp_path / "store", "--decisions", tmp_path / "decisions.jsonl",
        "--format", "html", "-o", html)  # fmt: skip
    assert "Admitted on an OpenSSF model signature" in html.read_text()
