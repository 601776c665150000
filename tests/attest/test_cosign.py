"""Attestations made as `cosign attest --type cyclonedx` makes them, read from a real
registry (tests/registry.py) and verified against a local Sigstore instance
(tests/keyless.py): cosign v2's `sha256-<hex>.att` attestation image (a DSSE envelope per
layer, annotated with the certificate and the Rekor bundle) and cosign v3's Sigstore bundles
as referrers, with Rekor entries of kind `intoto` 0.0.2 (what `cosign attest` has long
uploaded) and `dsse` 0.0.1; keyless and with a key. Each tampered layout is refused naming
the failed check.

The layouts are written here as cosign writes them (sigstore/cosign pkg/oci/static,
pkg/cosign/bundle/rekor.go, cmd/cosign/cli/attest/attest.go); the intoto entry's body is the
one Rekor stores (sigstore/rekor pkg/types/intoto/v0.0.2: the envelope's hash, the payload's
hash, each signature base64-encoded again beside the signer's PEM), logged by the local log,
which signs whatever body it is given, as the real one signs what it stored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import attest
import mlbom
from attest import keys
from attest.dsse import pae
from attest.sign import BUNDLE_MEDIA_TYPE
from attest.statement import PREDICATE_TYPE
from attest.stores import Attestation, CorruptEntryError, NoAttestationError
from attest.stores.oci import OciStore, tag_for
from mlbom._clients.registry import OCI_MANIFEST, Registry
from mlbom.errors import NotVerifiedError
from mlbom.references import ModelRef
from tests import keyless
from tests.registry import push_model, running_registry

EMAIL = "alice@example.com"
DSSE = "application/vnd.dsse.envelope.v1+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


@pytest.fixture(scope="module")
def loopback():
    with pytest.MonkeyPatch.context() as mp:
        for name in ("NO_PROXY", "no_proxy"):  # loopback never goes through a proxy
            mp.setenv(name, ",".join(filter(None, [os.environ.get(name), "127.0.0.1"])))
        yield


@pytest.fixture(scope="module")
def sigstore(loopback, tmp_path_factory):
    instance = keyless.LocalSigstore.start(tmp_path_factory.mktemp("sigstore"))
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def other(loopback, tmp_path_factory):
    """Another Sigstore instance: another CA, another log key."""
    instance = keyless.LocalSigstore.start(tmp_path_factory.mktemp("other"))
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def registry(loopback, tmp_path_factory):
    with running_registry(tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture
def no_docker_login(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@dataclass
class Model:
    name: str  # REGISTRY/REPO
    repository: str
    digest: str
    bom: dict[str, Any]

    @property
    def ref(self) -> ModelRef:
        return ModelRef("oci", self.name, self.digest)


_models = iter(range(1_000_000))


@pytest.fixture
def model(registry, tmp_path, no_docker_login) -> Model:
    """A fresh OCI model (its own repository) and its BOM, as mlbom generate makes it."""
    number = next(_models)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "n": number}))
    (folder / "README.md").write_text(f"# model {number}\n")
    repository = f"models/m{number}"
    digest = push_model(registry, f"{repository}:v1", folder)
    name = f"{registry.host}/{repository}"
    bom = mlbom.generate(f"oci://{name}@{digest}", cache=False).to_dict()
    return Model(name, repository, digest, bom)


# -- cosign's side ---------------------------------------------------------------------------


def statement(model: Model, bom: dict | None = None, predicate_type: str = PREDICATE_TYPE) -> bytes:
    """cosign's statement: in-toto v0.1, the image (REGISTRY/REPO and manifest digest)."""
    return json.dumps({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": predicate_type,
        "subject": [{"name": model.name, "digest": {"sha256": model.digest.removeprefix("sha256:")}}],
        "predicate": model.bom if bom is None else bom,
    }).encode()  # fmt: skip


def envelope(payload: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The DSSE envelope as Go's encoding/json writes cosign's (the bytes Rekor hashes)."""
    signature = keys.sign(key, pae(PAYLOAD_TYPE, payload))
    return json.dumps(
        {
            "payloadType": PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
        },
        separators=(",", ":"),
    ).encode()


def pem(value: Any) -> bytes:
    if isinstance(value, x509.Certificate):
        return value.public_bytes(serialization.Encoding.PEM)
    return value.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass
class Signed:
    """A signer's material: its key, and (keyless) its certificate and chain in PEM."""

    key: ec.EllipticCurvePrivateKey
    certificate: bytes | None = None
    chain: bytes = b""

    @property
    def verifier(self) -> bytes:
        return self.certificate or pem(self.key.public_key())


def certificate(instance: keyless.LocalSigstore, token: str | None = None) -> Signed:
    """A signing certificate from the instance's Fulcio for a fresh key, as cosign asks."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    answer = requests.post(
        f"{instance.url}/api/v2/signingCert",
        json={"certificateSigningRequest": base64.b64encode(csr).decode()},
        headers={"Authorization": f"Bearer {token or keyless.email_token(EMAIL)}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    listed = answer.json()["signedCertificateEmbeddedSct"]["chain"]["certificates"]
    # cosign writes them anew in PEM (cryptoutils.MarshalCertificateToPEM), as Go encodes it
    leaf, *chain = [pem(x509.load_pem_x509_certificate(c.encode())) for c in listed]
    return Signed(key, leaf, b"".join(chain))


def intoto_entry(envelope_bytes: bytes, verifier: bytes) -> dict[str, Any]:
    """The body Rekor stores for an intoto 0.0.2 entry of this envelope."""
    env = json.loads(envelope_bytes)
    payload = base64.b64decode(env["payload"])
    signatures = [
        {"keyid": s["keyid"], "sig": base64.b64encode(s["sig"].encode()).decode(),
         "publicKey": base64.b64encode(verifier).decode()} for s in env["signatures"]
    ]  # fmt: skip
    return {
        "apiVersion": "0.0.2",
        "kind": "intoto",
        "spec": {
            "content": {
                "envelope": {"payloadType": env["payloadType"], "signatures": signatures},
                "hash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(envelope_bytes).hexdigest(),
                },
                "payloadHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(payload).hexdigest(),
                },
            }
        },
    }


def dsse_entry(envelope_bytes: bytes, verifier: bytes) -> dict[str, Any]:
    """A dsse 0.0.1 proposal: the local log stores the canonical body, as Rekor does."""
    proposed = {
        "envelope": envelope_bytes.decode(),
        "verifiers": [base64.b64encode(verifier).decode()],
    }
    return {"apiVersion": "0.0.1", "kind": "dsse", "spec": {"proposedContent": proposed}}


def log(instance: keyless.LocalSigstore, proposed: dict, tlog: str = "") -> dict[str, Any]:
    """The instance's log's answer for the entry: body, times, SET, inclusion proof."""
    base = instance.tlogs[tlog] if tlog else instance.url
    answer = requests.post(f"{base}/api/v1/log/entries", json=proposed, timeout=30)
    assert answer.status_code == 201, answer.text
    (entry,) = answer.json().values()
    return entry


def rekor_bundle(entry: dict[str, Any]) -> str:
    """cosign's dev.sigstore.cosign/bundle annotation (pkg/cosign/bundle/rekor.go)."""
    return json.dumps({
        "SignedEntryTimestamp": entry["verification"]["signedEntryTimestamp"],
        "Payload": {key: entry[key] for key in ("body", "integratedTime", "logIndex", "logID")},
    })  # fmt: skip


def layer_annotations(signed: Signed, entry: dict | None, predicate_type: str = PREDICATE_TYPE) -> dict[str, str]:  # fmt: skip
    annotations = {"dev.cosignproject.cosign/signature": "", "predicateType": predicate_type}
    if signed.certificate:
        annotations["dev.sigstore.cosign/certificate"] = signed.certificate.decode()
        annotations["dev.sigstore.cosign/chain"] = signed.chain.decode()
    if entry is not None:
        annotations["dev.sigstore.cosign/bundle"] = rekor_bundle(entry)
    return annotations


def write_att(registry, model: Model, layers: list[tuple[bytes, dict[str, str]]], **extra) -> None:
    """cosign's attestation image: one DSSE layer each, tagged sha256-<hex>.att."""
    client = Registry(registry.host)
    descriptors = []
    for data, annotated in layers:
        blob = client.push_blob(model.repository, data, DSSE)
        descriptors.append({**blob, "annotations": annotated})
    diff_ids = [d["digest"] for d in descriptors]
    config = json.dumps({"architecture": "", "os": "", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()  # fmt: skip
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": client.push_blob(model.repository, config, CONFIG_TYPE),
        "layers": descriptors,
        **extra,
    }
    data = json.dumps(manifest).encode()
    client.push_manifest(model.repository, f"{tag_for(model.digest)}.att", data, OCI_MANIFEST)


def attest_v2(
    instance: keyless.LocalSigstore,
    registry,
    model: Model,
    *,
    kind: str = "intoto",
    signed: Signed | None = None,
    payload: bytes | None = None,
) -> tuple[Signed, bytes, dict]:
    """`cosign attest --type cyclonedx` as cosign v2 does it: (signer, envelope, entry)."""
    signed = signed or certificate(instance)
    data = envelope(payload or statement(model), signed.key)
    proposed = (intoto_entry if kind == "intoto" else dsse_entry)(data, signed.verifier)
    entry = log(instance, proposed)
    write_att(registry, model, [(data, layer_annotations(signed, entry))])
    return signed, data, entry


def v3_bundle(signed: Signed, data: bytes, entry: dict) -> bytes:
    """cosign v3's Sigstore bundle v0.3 for the envelope and its log entry."""
    body = json.loads(base64.b64decode(entry["body"]))
    proof = entry["verification"]["inclusionProof"]
    leaf = x509.load_pem_x509_certificate(signed.certificate)
    tlog = {
        "logIndex": str(entry["logIndex"]),
        "logId": {"keyId": base64.b64encode(bytes.fromhex(entry["logID"])).decode()},
        "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
        "integratedTime": str(entry["integratedTime"]),
        "inclusionPromise": {"signedEntryTimestamp": entry["verification"]["signedEntryTimestamp"]},
        "inclusionProof": {
            "logIndex": str(proof["logIndex"]),
            "rootHash": base64.b64encode(bytes.fromhex(proof["rootHash"])).decode(),
            "treeSize": str(proof["treeSize"]),
            "hashes": [base64.b64encode(bytes.fromhex(h)).decode() for h in proof["hashes"]],
            "checkpoint": {"envelope": proof["checkpoint"]},
        },
        "canonicalizedBody": entry["body"],
    }
    raw = base64.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode()
    return json.dumps({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"certificate": {"rawBytes": raw}, "tlogEntries": [tlog]},
        "dsseEnvelope": json.loads(data),
    }).encode()  # fmt: skip


# -- mlbom's side ----------------------------------------------------------------------------


def verify(cli, instance, model: Model, *args: str, code: int = 0, trust=None) -> dict:
    """`mlbom verify MODEL --store REPO --json`, keyless (the default signer) unless `args`
    name another; the JSON it printed."""
    signer = args or ("--cert-identity", EMAIL, "--cert-oidc-issuer", keyless.ISSUER)
    out, _ = cli(
        "verify",
        f"oci://{model.name}@{model.digest}",
        "--store",
        f"oci://{model.name}",
        "--trust-config",
        trust or instance.trust_config,
        "--json",
        *signer,
        code=code,
    )
    return json.loads(out)


def refused(cli, instance, model: Model, check: str, *args: str, trust=None) -> str:
    result = verify(cli, instance, model, *args, code=1, trust=trust)
    assert result["verified"] is False and result["failed"] == check, result
    return result["reason"]


# -- cosign v2's layout ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["intoto", "dsse"])
def test_v2_keyless_attestation_verifies(cli, sigstore, registry, model, kind):
    attest_v2(sigstore, registry, model, kind=kind)
    result = verify(cli, sigstore, model)
    assert result["verified"] and result["signer"] == EMAIL
    assert [c["name"] for c in result["checks"]] == ["bundle", "identity", "payload", "bom", "subjects"]  # fmt: skip
    digest = model.digest.removeprefix("sha256:")
    assert result["subjects"] == [{"name": model.name, "digest": {"sha256": digest}}]

    # the store's answer: the BOM, and the bundle v0.1 the layer amounts to
    found = OciStore(f"oci://{model.name}").pull(model.ref)
    assert json.loads(found.bom) == model.bom
    bundle = json.loads(found.bundle)
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle+json;version=0.1"
    assert bundle["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["kind"] == kind


def test_v2_attestation_among_others_of_the_image(cli, sigstore, registry, model):
    """The attestation image holds every attestation of the model; others are left alone."""
    signed = certificate(sigstore)
    provenance = envelope(statement(model, {"buildType": "x"}, "https://slsa.dev/provenance/v1"), signed.key)  # fmt: skip
    slsa = log(sigstore, intoto_entry(provenance, signed.verifier))
    bom = envelope(statement(model), signed.key)
    entry = log(sigstore, intoto_entry(bom, signed.verifier))
    write_att(registry, model, [
        (provenance, layer_annotations(signed, slsa, "https://slsa.dev/provenance/v1")),
        (bom, layer_annotations(signed, entry)),
    ])  # fmt: skip
    assert verify(cli, sigstore, model)["verified"]


def test_v2_key_attestation_verifies_with_the_key(cli, sigstore, registry, model, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "cosign.pub").write_bytes(pem(key.public_key()))
    attest_v2(sigstore, registry, model, signed=Signed(key))
    result = verify(cli, sigstore, model, "--key", str(tmp_path / "cosign.pub"))
    assert result["verified"] and result["signer"].startswith("key ")

    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "other.pub").write_bytes(pem(other.public_key()))
    assert "no signature" in refused(cli, sigstore, model, "bundle", "--key", str(tmp_path / "other.pub"))  # fmt: skip
    # a key attestation carries no certificate: it is no keyless one
    assert "no signing certificate" in refused(cli, sigstore, model, "bundle")


def test_v2_without_log_entry_is_refused_keyless(cli, sigstore, registry, model):
    signed = certificate(sigstore)
    write_att(registry, model, [(envelope(statement(model), signed.key), layer_annotations(signed, None))])  # fmt: skip
    assert refused(cli, sigstore, model, "bundle")


def test_changed_bom_is_refused(cli, sigstore, registry, model):
    """The envelope is replaced by another BOM signed with the same key: the logged payload
    hash no longer matches; the BOM itself changed in the layer breaks the signature."""
    signed, data, entry = attest_v2(sigstore, registry, model)
    changed = {**model.bom, "serialNumber": "urn:uuid:00000000-0000-4000-8000-000000000000"}
    other = envelope(statement(model, changed), signed.key)
    write_att(registry, model, [(other, layer_annotations(signed, entry))])
    assert "another payload" in refused(cli, sigstore, model, "bundle")

    env = json.loads(data)
    env["payload"] = base64.b64encode(statement(model, changed)).decode()
    write_att(registry, model, [(json.dumps(env).encode(), layer_annotations(signed, entry))])
    assert "DSSE signature does not verify" in refused(cli, sigstore, model, "bundle")


@pytest.mark.parametrize("kind", ["intoto", "dsse"])
def test_body_not_matching_the_envelope_is_refused(cli, sigstore, registry, model, kind):
    """A logged entry of one envelope presented with another, validly signed one."""
    signed = certificate(sigstore)
    first = envelope(statement(model), signed.key)
    entry = log(
        sigstore, (intoto_entry if kind == "intoto" else dsse_entry)(first, signed.verifier)
    )
    second = envelope(statement(model, {**model.bom, "version": 7}), signed.key)
    write_att(registry, model, [(second, layer_annotations(signed, entry))])
    assert "another payload" in refused(cli, sigstore, model, "bundle")


def test_body_naming_another_certificate_is_refused(cli, sigstore, registry, model):
    signed = certificate(sigstore)
    data = envelope(statement(model), signed.key)
    entry = log(sigstore, intoto_entry(data, certificate(sigstore).certificate))
    write_att(registry, model, [(data, layer_annotations(signed, entry))])
    assert "another signing certificate" in refused(cli, sigstore, model, "bundle")


def test_wrong_identity_and_issuer_are_refused(cli, sigstore, registry, model):
    attest_v2(sigstore, registry, model, signed=certificate(sigstore, keyless.email_token("mallory@example.com")))  # fmt: skip
    assert "mallory@example.com" in refused(cli, sigstore, model, "identity")
    reason = refused(cli, sigstore, model, "identity", "--cert-identity", "mallory@example.com",
                     "--cert-oidc-issuer", "https://issuer.example.org")  # fmt: skip
    assert "not issued by https://issuer.example.org" in reason
    result = verify(cli, sigstore, model, "--cert-identity", "mallory@example.com", "--cert-oidc-issuer", keyless.ISSUER)  # fmt: skip
    assert result["verified"]


def test_set_signed_by_another_log_is_refused(cli, sigstore, other, registry, model):
    signed = certificate(sigstore)
    data = envelope(statement(model), signed.key)
    entry = log(other, intoto_entry(data, signed.verifier))
    write_att(registry, model, [(data, layer_annotations(signed, entry))])
    assert "not signed by a trusted log" in refused(cli, sigstore, model, "bundle")


def test_set_over_another_body_is_refused(cli, sigstore, registry, model):
    signed, data, entry = attest_v2(sigstore, registry, model)
    body = json.loads(base64.b64decode(entry["body"]))
    body["spec"]["content"]["payloadHash"]["value"] = "0" * 64
    forged = {**entry, "body": base64.b64encode(json.dumps(body).encode()).decode()}
    write_att(registry, model, [(data, layer_annotations(signed, forged))])
    assert "not signed by a trusted log" in refused(cli, sigstore, model, "bundle")


def test_certificate_from_another_ca_is_refused(cli, sigstore, other, registry, model):
    attest_v2(sigstore, registry, model, signed=certificate(other))  # logged by the trusted log
    assert "does not chain to the trusted root" in refused(cli, sigstore, model, "bundle")


def test_certificate_expired_at_integrated_time_is_refused(cli, sigstore, registry, model):
    signed = certificate(sigstore)
    data = envelope(statement(model), signed.key)
    entry = log(sigstore, intoto_entry(data, signed.verifier), tlog="late")  # an hour later
    write_att(registry, model, [(data, layer_annotations(signed, entry))])
    assert "not valid when the log recorded" in refused(cli, sigstore, model, "bundle")


def test_statement_about_another_image_is_refused(cli, sigstore, registry, model):
    other = Model(model.name, model.repository, "sha256:" + "e" * 64, model.bom)
    attest_v2(sigstore, registry, model, payload=statement(other))
    assert "sha256:" + "e" * 64 in refused(cli, sigstore, model, "subjects")


def test_layer_of_another_predicate_type(cli, sigstore, registry, model):
    """A layer annotated as another predicate type is another attestation: none is found.
    One annotated as CycloneDX whose signed statement is not is corrupt."""
    signed = certificate(sigstore)
    slsa = "https://slsa.dev/provenance/v1"
    data = envelope(statement(model, {"buildType": "x"}, slsa), signed.key)
    entry = log(sigstore, intoto_entry(data, signed.verifier))
    write_att(registry, model, [(data, layer_annotations(signed, entry, slsa))])
    with pytest.raises(NoAttestationError):
        OciStore(f"oci://{model.name}").pull(model.ref)
    out = verify(cli, sigstore, model, code=1)
    assert out["failed"] == "attestation" and "no CycloneDX attestation" in out["reason"]

    write_att(registry, model, [(data, layer_annotations(signed, entry))])  # mislabelled
    with pytest.raises(CorruptEntryError, match="not a CycloneDX one"):
        OciStore(f"oci://{model.name}").pull(model.ref)
    assert refused(cli, sigstore, model, "attestation")


def test_duplicate_and_conflicting_layers_are_refused(sigstore, registry, model):
    signed, data, entry = attest_v2(sigstore, registry, model)
    layer = (data, layer_annotations(signed, entry))
    store = OciStore(f"oci://{model.name}")
    write_att(registry, model, [layer, layer])
    with pytest.raises(CorruptEntryError, match="2 CycloneDX attestations of the same envelope"):
        store.pull(model.ref)
    second = envelope(statement(model), signed.key)
    write_att(registry, model, [layer, (second, layer_annotations(signed, log(sigstore, intoto_entry(second, signed.verifier))))])  # fmt: skip
    with pytest.raises(CorruptEntryError, match="holds 2 CycloneDX attestations"):
        store.pull(model.ref)


def test_manifests_over_the_limits_are_refused(sigstore, registry, model):
    signed, data, entry = attest_v2(sigstore, registry, model)
    store = OciStore(f"oci://{model.name}")
    annotations = layer_annotations(signed, entry)
    unrelated = (b"{}", {"predicateType": "https://example.com/other"})
    write_att(registry, model, [unrelated] * 1_000 + [(data, annotations)])
    with pytest.raises(CorruptEntryError, match="1001 layers, more than 1000"):
        store.pull(model.ref)
    big = {**annotations, "dev.sigstore.cosign/certificate": "x" * (65 << 10)}
    write_att(registry, model, [(data, big)])
    with pytest.raises(CorruptEntryError, match="at most 64 KiB"):
        store.pull(model.ref)
    # (a manifest over 4 MiB, which the client refuses, this registry refuses to store)
    client = Registry(registry.host)
    blob = client.push_blob(model.repository, data, DSSE)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": client.push_blob(model.repository, b"{}", CONFIG_TYPE),
        "layers": [{**blob, "size": 300 << 20, "annotations": annotations}],
    }
    tag = f"{tag_for(model.digest)}.att"
    client.push_manifest(model.repository, tag, json.dumps(manifest).encode(), OCI_MANIFEST)
    with pytest.raises(CorruptEntryError, match="larger than 256 MiB"):
        store.pull(model.ref)


@pytest.mark.parametrize(
    ("annotation", "value", "message"),
    [
        ("dev.sigstore.cosign/bundle", "{not json", "not a Rekor entry"),
        (
            "dev.sigstore.cosign/bundle",
            json.dumps({"Payload": {"body": "!!"}}),
            "not a Rekor entry",
        ),
        ("dev.sigstore.cosign/certificate", "no certificate here", "no PEM certificate"),
    ],
)
def test_malformed_annotations_are_corrupt(sigstore, registry, model, annotation, value, message):
    signed, data, entry = attest_v2(sigstore, registry, model)
    write_att(registry, model, [(data, {**layer_annotations(signed, entry), annotation: value})])
    with pytest.raises(CorruptEntryError, match=message):
        OciStore(f"oci://{model.name}").pull(model.ref)


# -- cosign v3's bundles ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["intoto", "dsse"])
def test_v3_bundle_as_referrer_verifies(cli, sigstore, registry, model, kind):
    signed = certificate(sigstore)
    data = envelope(statement(model), signed.key)
    entry = log(sigstore, (intoto_entry if kind == "intoto" else dsse_entry)(data, signed.verifier))
    bundle = v3_bundle(signed, data, entry)
    store = OciStore(f"oci://{model.name}")
    store.push(model.ref, Attestation(json.dumps(model.bom).encode(), bundle))
    result = verify(cli, sigstore, model)
    assert result["verified"] and result["signer"] == EMAIL

    # an inclusion proof that does not prove the entry is refused (intoto: mlbom's own check)
    document = json.loads(bundle)
    proof = document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["rootHash"] = base64.b64encode(b"\x01" * 32).decode()
    with pytest.raises(NotVerifiedError) as refusal:
        attest.verify(model.bom, json.dumps(document), attest.ExpectedSigner(identity=EMAIL, issuer=keyless.ISSUER),
                      trust_config=sigstore.trust_config)  # fmt: skip
    assert refusal.value.check == "bundle"


def test_sigstore_js_agrees(sigstore, registry, model, tmp_path):
    """An independent verifier (sigstore-js) accepts the bundle the store makes of cosign's
    v2 layer, and cosign v3's bundles with either entry kind."""
    signed, data, _ = attest_v2(sigstore, registry, model)
    pulled = tmp_path / "v01.sigstore.json"
    pulled.write_bytes(OciStore(f"oci://{model.name}").pull(model.ref).bundle)
    trust = {"trusted_root": sigstore.trusted_root, "identity": EMAIL, "issuer": keyless.ISSUER}
    assert keyless.sigstore_js(pulled, **trust)["verified"]
    for kind in ("intoto", "dsse"):
        proposed = (intoto_entry if kind == "intoto" else dsse_entry)(data, signed.verifier)
        bundle = tmp_path / f"{kind}.sigstore.json"
        bundle.write_bytes(v3_bundle(signed, data, log(sigstore, proposed)))
        assert keyless.sigstore_js(bundle, **trust)["verified"], kind


def test_admission_verifies_cosign_attestations(sigstore, registry, model, tmp_path):
    """The webhook's verifier, unchanged, over the OCI store: a keyless signer in the policy."""
    from admission.policy_loader import parse_policy
    from admission.verification import ModelVerifier

    attest_v2(sigstore, registry, model)

    def policy(subject: str):
        return parse_policy(
            "apiVersion: mlbom.dev/v1\nkind: AdmissionPolicy\n"
            f"stores: [oci://{model.name}]\n"
            f"trust:\n  trustConfig: {sigstore.trust_config}\n"
            f"  signers: [{{name: ci, keyless: {{issuer: '{keyless.ISSUER}', subject: '{subject}'}}}}]\n"
        )

    reference = f"oci://{model.name}@{model.digest}"
    verdict = ModelVerifier(policy(EMAIL)).check_now(reference)
    assert verdict.ok and verdict.signer == "ci", verdict
    verdict = ModelVerifier(policy("mallory@example.com")).check_now(reference)
    assert verdict.outcome == "not-verified" and "ci: identity" in verdict.reason, verdict


def test_entry_declared_as_another_kind_is_refused(cli, sigstore, registry, model):
    """The bundle's kindVersion is not signed: the body's own kind must agree with it."""
    signed, data, entry = attest_v2(sigstore, registry, model)
    bundle = json.loads(OciStore(f"oci://{model.name}").pull(model.ref).bundle)
    bundle["verificationMaterial"]["tlogEntries"][0]["kindVersion"] = {"kind": "dsse", "version": "0.0.1"}  # fmt: skip
    signer = attest.ExpectedSigner(identity=EMAIL, issuer=keyless.ISSUER)
    with pytest.raises(NotVerifiedError, match="another kind than declared") as refusal:
        attest.verify(model.bom, json.dumps(bundle), signer, trust_config=sigstore.trust_config)
    assert refusal.value.check == "bundle"

    # a second signature on the envelope is unaccounted for by the entry
    env = json.loads(data)
    env["signatures"].append(env["signatures"][0])
    write_att(registry, model, [(json.dumps(env).encode(), layer_annotations(signed, entry))])
    assert "exactly one signature" in refused(cli, sigstore, model, "bundle")


@pytest.mark.parametrize("kind", ["intoto", "dsse"])
def test_a_bundle_of_version_0_2_or_later_without_its_inclusion_proof_is_refused(sigstore, registry, model, kind):  # fmt: skip
    """Only cosign's v2 layout (a bundle of version 0.1) may rest on the SET alone: as
    sigstore-conformance's intoto-missing-inclusion-proof_fail, a later bundle without the
    proof is refused, whichever entry kind (intoto is checked by mlbom itself)."""
    signed = certificate(sigstore)
    data = envelope(statement(model), signed.key)
    entry = log(sigstore, (intoto_entry if kind == "intoto" else dsse_entry)(data, signed.verifier))
    document = json.loads(v3_bundle(signed, data, entry))
    del document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    with pytest.raises(NotVerifiedError) as refusal:
        attest.verify(model.bom, json.dumps(document), attest.ExpectedSigner(identity=EMAIL, issuer=keyless.ISSUER),
                      trust_config=sigstore.trust_config)  # fmt: skip
    assert refusal.value.check == "bundle"
    # RFC 3161 timestamps no trusted authority issued are refused too (not ignored)
    document = json.loads(v3_bundle(signed, data, entry))
    document["verificationMaterial"]["timestampVerificationData"] = {
        "rfc3161Timestamps": [{"signedTimestamp": base64.b64encode(b"0\x03\x02\x01\x00").decode()}]
    }
    with pytest.raises(NotVerifiedError) as refusal:
        attest.verify(model.bom, json.dumps(document), attest.ExpectedSigner(identity=EMAIL, issuer=keyless.ISSUER),
                      trust_config=sigstore.trust_config)  # fmt: skip
    assert refusal.value.check == "bundle"
