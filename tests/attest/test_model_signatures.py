"""mlbom verify-model: models signed by the OpenSSF model-signing package itself (keys of
every curve it supports, files and shards, sha256 and BLAKE2, ignored paths, symlinks, a
single file, its 1.0 and certificate key forms), checked by mlbom, with the package's own
verifier run on the same files so both implementations are exercised; then a tamper matrix
where each change is refused by the right check.

Keyless: model_signing signs against the local Sigstore instance of tests/keyless.py (skipped
where that stand-in or Node is absent), and both verifiers check the bundle; key/keyless
confusion and malformed keyless bundles need no instance."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
from pathlib import Path

import model_signing
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from attest import keys
from attest.dsse import pae
from attest.model_signatures import PREDICATE_TYPE, oms_hint, verify_model
from attest.verify import ExpectedSigner
from tests.builders import ROOT, ca_chain, hf_folder

FILES = ("README.md", "config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt")


def key_pair(folder: Path, kind: str = "ecdsa-p256") -> tuple[Path, Path]:
    private, public = folder / f"{kind}.key", folder / f"{kind}.pub"
    keys.write_key_pair(keys.generate(kind), private, public, None)  # type: ignore[arg-type]
    return private, public


def oms_sign(model: Path, signature: Path, private: Path, hashing=None) -> Path:
    config = model_signing.signing.Config().use_elliptic_key_signer(private_key=private)
    if hashing is not None:
        config.set_hashing_config(hashing)
    config.sign(model, signature)
    return signature


@pytest.fixture
def signed(tmp_path):
    """A model folder signed by model_signing with a P-256 key: (model, sig, private, public)."""
    model = hf_folder(tmp_path / "model")
    private, public = key_pair(tmp_path)
    return model, oms_sign(model, tmp_path / "model.sig", private), private, public


def failed(cli, model, sig, *args) -> tuple[str, str]:
    """Run a verification expected to fail; (the failed check, the message)."""
    out, err = cli("verify-model", model, "--signature", sig, *args, "--json", code=1)
    return json.loads(out)["failed"], err


def statement_of(sig: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(sig.read_text())["dsseEnvelope"]["payload"]))


def resign(sig: Path, private: Path, change=None, payload_type="application/vnd.in-toto+json"):
    """Rewrite the signature's statement with `change(statement)` and sign it again with the
    key, so that the signature holds and a later check must catch the change."""
    doc = json.loads(sig.read_text())
    statement = statement_of(sig)
    if change:
        change(statement)
    payload = json.dumps(statement, indent=2).encode()
    key = keys.load_private_key(private)
    doc["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    doc["dsseEnvelope"]["payloadType"] = payload_type
    doc["dsseEnvelope"]["signatures"] = [
        {"sig": base64.b64encode(keys.sign(key, pae(payload_type, payload))).decode(), "keyid": ""}
    ]
    sig.write_text(json.dumps(doc))


def package_verifies(model: Path, sig: Path, public: Path) -> bool:
    try:
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(
            model, sig
        )
    except ValueError:
        return False
    return True


# -- what model_signing writes, verified by both ---------------------------------------------


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ecdsa-p384"])  # its signer has no Ed25519
def test_package_signature_verifies(cli, tmp_path, kind):
    model = hf_folder(tmp_path / "model")
    private, public = key_pair(tmp_path, kind)
    sig = oms_sign(model, tmp_path / "model.sig", private)
    out, _ = cli("verify-model", model, "--signature", sig, "--key", public)
    assert out.startswith(
        f"verified: {model} signed by key {keys.hint(keys.load_public_key(public))}"
    )
    assert "5 files (files, sha256); checks: bundle, payload, subjects, model" in out
    assert package_verifies(model, sig, public)


def test_format_facts(signed, cli):
    """What the verifier relies on, read off the package's own output."""
    model, sig, _, public = signed
    doc = json.loads(sig.read_text())
    assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    key = keys.load_public_key(public)
    assert doc["verificationMaterial"]["publicKey"]["hint"] == oms_hint(key)
    assert oms_hint(key) == hashlib.sha256(public.read_bytes()).hexdigest()  # of the PEM
    assert doc["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    assert [s["keyid"] for s in doc["dsseEnvelope"]["signatures"]] == [""]
    statement = statement_of(sig)
    assert statement["predicateType"] == PREDICATE_TYPE
    resources = statement["predicate"]["resources"]
    assert [r["name"] for r in resources] == sorted(FILES)
    for r in resources:
        assert r["algorithm"] == "sha256"
        assert r["digest"] == hashlib.sha256((model / r["name"]).read_bytes()).hexdigest()
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    assert statement["subject"] == [{"name": "model", "digest": {"sha256": root}}]
    out, _ = cli("verify-model", model, "--signature", sig, "--key", public, "--json")
    result = json.loads(out)
    assert result["verified"] is True and result["model"]["digest"]["sha256"] == root
    assert [c["name"] for c in result["checks"]] == ["bundle", "payload", "subjects", "model"]
    assert result["serialization"]["method"] == "files"
    assert {r["name"] for r in result["resources"]} == set(FILES)


def test_library_call(signed):
    model, sig, _, public = signed
    result = verify_model(
        sig.read_bytes(),
        ExpectedSigner(key=keys.load_public_key(public)),
        model=model,
        exclude=(sig,),
    )
    assert result.passed == ["bundle", "payload", "subjects", "model"]
    assert result.files == sorted(FILES) and result.model_name == "model"
    # without a model, the signature and its manifest alone
    alone = verify_model(sig.read_bytes(), ExpectedSigner(key=keys.load_public_key(public)))
    assert alone.passed == ["bundle", "payload", "subjects"]


def test_shards(cli, tmp_path):
    model = hf_folder(tmp_path / "model")
    (model / "empty.bin").write_bytes(b"")  # the package writes no shard for an empty file
    private, public = key_pair(tmp_path, "ecdsa-p384")
    hashing = model_signing.hashing.Config().use_shard_serialization(shard_size=100)
    sig = oms_sign(model, tmp_path / "model.sig", private, hashing)
    predicate = statement_of(sig)["predicate"]
    assert predicate["serialization"]["shard_size"] == 100.0  # a protobuf Struct number
    assert "model.safetensors:0:100" in {r["name"] for r in predicate["resources"]}
    out, _ = cli("verify-model", model, "--signature", sig, "--key", public)
    assert "(shards, sha256)" in out
    data = bytearray((model / "model.safetensors").read_bytes())
    data[150] ^= 1  # inside the second shard
    (model / "model.safetensors").write_bytes(bytes(data))
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "model" and "model.safetensors has changed" in err
    (model / "model.safetensors").write_bytes(bytes(data) + b"more")  # one more shard
    assert "model.safetensors has changed" in failed(cli, model, sig, "--key", public)[1]


def test_blake2(cli, tmp_path):
    model = hf_folder(tmp_path / "model")
    private, public = key_pair(tmp_path)
    hashing = model_signing.hashing.Config().use_file_serialization(hashing_algorithm="blake2")
    sig = oms_sign(model, tmp_path / "model.sig", private, hashing)
    assert statement_of(sig)["predicate"]["serialization"]["hash_type"] == "blake2b"
    out, _ = cli("verify-model", model, "--signature", sig, "--key", public)
    assert "(files, blake2b)" in out
    (model / "vocab.txt").write_text("changed")
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "model" and "vocab.txt has changed" in err


def test_blake3(cli, tmp_path):
    model = hf_folder(tmp_path / "model")
    private, public = key_pair(tmp_path)
    hashing = model_signing.hashing.Config().use_file_serialization(hashing_algorithm="blake3")
    sig = oms_sign(model, tmp_path / "model.sig", private, hashing)
    out, _ = cli("verify-model", model, "--signature", sig, "--key", public)
    assert "(files, blake3)" in out
    (model / "config.json").write_text("{}")
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "model" and "config.json has changed" in err


def test_ignored_paths_and_git(cli, tmp_path):
    model = hf_folder(tmp_path / "model")
    (model / ".git").mkdir()
    (model / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (model / "sub").mkdir()
    (model / "sub" / ".git").write_text("gitdir: elsewhere\n")  # nested: the package signs it
    private, public = key_pair(tmp_path)
    hashing = model_signing.hashing.Config().set_ignored_paths(paths=["README.md"])
    sig = oms_sign(model, tmp_path / "model.sig", private, hashing)
    names = {r["name"] for r in statement_of(sig)["predicate"]["resources"]}
    assert "sub/.git" in names and "README.md" not in names and ".git/HEAD" not in names
    (model / "README.md").write_text("not signed")
    (model / ".git" / "HEAD").write_text("moved\n")
    (model / ".gitattributes").write_text("*.bin filter=lfs\n")
    cli("verify-model", model, "--signature", sig, "--key", public)
    assert package_verifies(model, sig, public)
    (model / "sub" / ".git").write_text("changed\n")
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "model" and "sub/.git has changed" in err


def test_signature_inside_the_model_folder(cli, tmp_path):
    model = hf_folder(tmp_path / "model")
    private, public = key_pair(tmp_path)
    sig = oms_sign(model, model / "model.sig", private)
    cli("verify-model", model, "--signature", sig, "--key", public)


def test_single_file_model(cli, tmp_path):
    model = hf_folder(tmp_path / "model") / "model.safetensors"
    private, public = key_pair(tmp_path)
    sig = oms_sign(model, tmp_path / "model.sig", private)
    assert [r["name"] for r in statement_of(sig)["predicate"]["resources"]] == ["."]
    cli("verify-model", model, "--signature", sig, "--key", public)
    assert package_verifies(model, sig, public)


def test_symlinks(cli, tmp_path):
    model = hf_folder(tmp_path / "model")
    os.symlink("vocab.txt", model / "vocab-link.txt")
    private, public = key_pair(tmp_path)
    allowed = model_signing.hashing.Config().set_allow_symlinks(True)
    sig = oms_sign(model, tmp_path / "model.sig", private, allowed)
    cli("verify-model", model, "--signature", sig, "--key", public)
    # a link out of the folder is never followed, even with the same content
    outside = tmp_path / "outside.txt"
    outside.write_bytes((model / "vocab.txt").read_bytes())
    (model / "vocab-link.txt").unlink()
    os.symlink(outside, model / "vocab-link.txt")
    _, err = cli("verify-model", model, "--signature", sig, "--key", public, code=2)
    assert "outside the model folder" in err
    # signed without symlinks: a link is a folder in another form than the one signed
    plain = hf_folder(tmp_path / "plain")
    sig = oms_sign(plain, tmp_path / "plain.sig", private)
    os.symlink("vocab.txt", plain / "link.txt")
    check, err = failed(cli, plain, sig, "--key", public)
    assert check == "model" and "link.txt is a symlink" in err
    assert not package_verifies(plain, sig, public)


def test_model_signing_1_0_key_form(signed, cli, tmp_path):
    """model_signing 1.0 carried the PEM public key itself instead of a hint."""
    model, sig, _, public = signed
    doc = json.loads(sig.read_text())
    doc["verificationMaterial"] = {
        "publicKey": {
            "rawBytes": base64.b64encode(public.read_bytes()).decode(),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
        }
    }
    sig.write_text(json.dumps(doc))
    cli("verify-model", model, "--signature", sig, "--key", public)
    (tmp_path / "o").mkdir()
    _, other = key_pair(tmp_path / "o")
    doc["verificationMaterial"]["publicKey"]["rawBytes"] = base64.b64encode(
        other.read_bytes()
    ).decode()
    sig.write_text(json.dumps(doc))
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "bundle" and "another key" in err


def self_signed(private: Path, folder: Path, name: str) -> Path:
    key = keys.load_private_key(private)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_certificate_signed(cli, tmp_path):
    """The package's certificate signer: with --key, the signing certificate must hold it."""
    model = hf_folder(tmp_path / "model")
    private, public = key_pair(tmp_path)
    cert = self_signed(private, tmp_path, "signer")
    model_signing.signing.Config().use_certificate_signer(
        private_key=private, signing_certificate=cert, certificate_chain=[cert]
    ).sign(model, tmp_path / "model.sig")
    sig = tmp_path / "model.sig"
    assert "x509CertificateChain" in json.loads(sig.read_text())["verificationMaterial"]
    cli("verify-model", model, "--signature", sig, "--key", public)
    (tmp_path / "o").mkdir()
    _, other = key_pair(tmp_path / "o")
    check, err = failed(cli, model, sig, "--key", other)
    assert check == "bundle" and "CN=signer" in err and "another key" in err


def test_ed25519_in_the_same_format(signed, cli, tmp_path):
    """model_signing 1.1 cannot sign with Ed25519; mlbom's verifier takes it in its format."""
    model, sig, _, _ = signed
    private, public = key_pair(tmp_path, "ed25519")
    doc = json.loads(sig.read_text())
    doc["verificationMaterial"]["publicKey"]["hint"] = oms_hint(keys.load_public_key(public))
    sig.write_text(json.dumps(doc))
    resign(sig, private)
    cli("verify-model", model, "--signature", sig, "--key", public)


# -- the tamper matrix ---------------------------------------------------------------------


def test_changed_file(signed, cli):
    model, sig, _, public = signed
    data = bytearray((model / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (model / "model.safetensors").write_bytes(bytes(data))
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "model" and "model.safetensors has changed" in err
    assert not package_verifies(model, sig, public)


def test_missing_file(signed, cli):
    model, sig, _, public = signed
    (model / "vocab.txt").unlink()
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "model" and "vocab.txt is missing" in err
    assert not package_verifies(model, sig, public)


def test_extra_file(signed, cli):
    model, sig, _, public = signed
    (model / "sub").mkdir()
    (model / "sub" / "evil.py").write_text("import os\n")
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "model" and "sub/evil.py is not in the signature" in err
    assert not package_verifies(model, sig, public)


def test_wrong_key(signed, cli, tmp_path):
    model, sig, _, _ = signed
    (tmp_path / "o").mkdir()
    _, other = key_pair(tmp_path / "o")
    check, err = failed(cli, model, sig, "--key", other)
    assert check == "bundle" and "another key" in err
    doc = json.loads(sig.read_text())
    doc["verificationMaterial"]["publicKey"]["hint"] = ""  # the hint only names; the key decides
    sig.write_text(json.dumps(doc))
    check, err = failed(cli, model, sig, "--key", other)
    assert check == "bundle" and "no signature in the bundle verifies" in err


def test_predicate_type_swapped(signed, cli):
    model, sig, private, public = signed
    resign(sig, private, lambda s: s.update(predicateType="https://cyclonedx.org/bom"))
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "payload" and "https://cyclonedx.org/bom" in err
    # read as model_signing 0.2's format, its one subject is a file the model does not have
    resign(sig, private, lambda s: s.update(predicateType="https://model_signing/Digests/v0.1"))
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "model" and "is missing" in err


def test_payload_type(signed, cli):
    model, sig, private, public = signed
    doc = json.loads(sig.read_text())
    doc["dsseEnvelope"]["payloadType"] = "application/json"  # no longer what was signed
    sig.write_text(json.dumps(doc))
    assert failed(cli, model, sig, "--key", public)[0] == "bundle"
    resign(sig, private, payload_type="application/json")  # signed, but the wrong type
    assert failed(cli, model, sig, "--key", public)[0] == "payload"


def test_subject_digest(signed, cli):
    model, sig, private, public = signed
    resign(sig, private, lambda s: s["subject"][0]["digest"].update(sha256="0" * 64))
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "subjects" and "not the digest of the listed files" in err


def test_resource_listed_twice(signed, cli):
    model, sig, private, public = signed

    def twice(statement):
        resources = statement["predicate"]["resources"]
        resources.append(dict(resources[0]))
        root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources))
        statement["subject"][0]["digest"]["sha256"] = root.hexdigest()

    resign(sig, private, twice)
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "subjects" and "README.md is listed twice" in err


def test_signed_digest_differs_from_the_file(signed, cli):
    """A consistent manifest (subject recomputed) that is simply not this model."""
    model, sig, private, public = signed

    def other_digest(statement):
        resources = statement["predicate"]["resources"]
        resources[0]["digest"] = "ab" * 32
        root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources))
        statement["subject"][0]["digest"]["sha256"] = root.hexdigest()

    resign(sig, private, other_digest)
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "model" and "README.md has changed" in err


def test_truncated_and_garbage_signatures(signed, cli):
    model, sig, _, public = signed
    text = sig.read_text()
    for broken in (text[: len(text) // 2], "", "[]", '{"mediaType": "x"}', "\x00" * 10):
        sig.write_text(broken)
        assert failed(cli, model, sig, "--key", public)[0] == "bundle"
    doc = json.loads(text)
    doc["dsseEnvelope"]["signatures"][0]["sig"] = doc["dsseEnvelope"]["signatures"][0]["sig"][:20]
    sig.write_text(json.dumps(doc))
    assert failed(cli, model, sig, "--key", public)[0] == "bundle"


def test_unsupported_serialization(signed, cli):
    model, sig, private, public = signed
    resign(sig, private, lambda s: s["predicate"]["serialization"].update(method="tensors"))
    _, err = cli("verify-model", model, "--signature", sig, "--key", public, code=2)
    assert "unsupported serialization 'tensors'" in err
    resign(
        sig,
        private,
        lambda s: s["predicate"]["serialization"].update(method="files", hash_type="md5"),
    )
    _, err = cli("verify-model", model, "--signature", sig, "--key", public, code=2)
    assert "unsupported hash 'md5'" in err


def test_no_signer(signed, cli):
    model, sig, _, _ = signed
    _, err = cli("verify-model", model, "--signature", sig, code=2)
    assert "only verified against a signer" in err
    _, err = cli("verify-model", model, "--signature", sig, "--cert-identity", "a@b.c", code=2)
    assert "--cert-oidc-issuer" in err
    _, err = cli("verify-model", model, "--key", sig, code=2)  # no --signature
    assert "--signature" in err


# -- keyless, as far as it goes without a Sigstore instance ----------------------------------


def test_keyless_bundle_given_a_key(signed, cli):
    model, sig, _, public = signed
    doc = json.loads(sig.read_text())
    doc["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}, "tlogEntries": []}
    sig.write_text(json.dumps(doc))
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "bundle" and "keylessly" in err and "--cert-identity" in err


def test_key_bundle_given_an_identity(signed, cli):
    model, sig, _, _ = signed
    identity = ("--cert-identity", "a@example.com", "--cert-oidc-issuer", "https://issuer")
    check, err = failed(cli, model, sig, *identity, "--offline")
    assert check == "bundle" and "made with a key" in err and "--key" in err


def test_malformed_keyless_bundle(signed, cli):
    model, sig, _, _ = signed
    doc = json.loads(sig.read_text())
    doc["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}, "tlogEntries": []}
    sig.write_text(json.dumps(doc))
    identity = ("--cert-identity", "a@example.com", "--cert-oidc-issuer", "https://issuer")
    check, err = failed(cli, model, sig, *identity, "--offline")
    assert check == "bundle" and "keyless bundle" in err


@pytest.fixture(scope="module")
def local_sigstore(tmp_path_factory):
    """The local Sigstore stand-in (Fulcio and Rekor on loopback): (tests.keyless, instance)."""
    keyless = pytest.importorskip("tests.keyless")
    folder = tmp_path_factory.mktemp("sigstore")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("NO_PROXY", "no_proxy"):  # loopback never goes through a proxy
            mp.setenv(name, ",".join(filter(None, [os.environ.get(name), "127.0.0.1"])))
        instance = keyless.LocalSigstore.start(folder)
        try:
            yield keyless, instance
        finally:
            instance.stop()


def test_keyless_signed_by_the_package(cli, local_sigstore, tmp_path, monkeypatch):
    keyless, instance = local_sigstore
    from model_signing._signing import sign_sigstore

    # model_signing fetches the issuer's OIDC discovery document even when handed a token;
    # there is no identity provider here, and with a token it is never used.
    monkeypatch.setattr(sign_sigstore.sigstore_oidc, "Issuer", lambda url: None)
    model = hf_folder(tmp_path / "model")
    sig = tmp_path / "model.sig"
    model_signing.signing.Config().use_sigstore_signer(
        identity_token=keyless.email_token("alice@example.com"),
        trust_config=instance.trust_config,
    ).sign(model, sig)
    assert "certificate" in json.loads(sig.read_text())["verificationMaterial"]
    issuer = ("--cert-oidc-issuer", keyless.ISSUER)
    trust = ("--trust-config", instance.trust_config)
    out, _ = cli(
        "verify-model",
        model,
        "--signature",
        sig,
        "--cert-identity",
        "alice@example.com",
        *issuer,
        *trust,
    )
    assert "signed by alice@example.com (issuer https://accounts.example.com)" in out
    assert "checks: bundle, identity, payload, subjects, model" in out
    regexp = ("--cert-identity-regexp", r"alice@example\.com")
    cli(
        "verify-model",
        model,
        "--signature",
        sig,
        *regexp,
        *issuer,
        "--trusted-root",
        instance.trusted_root,
    )
    model_signing.verifying.Config().use_sigstore_verifier(
        identity="alice@example.com", oidc_issuer=keyless.ISSUER, trust_config=instance.trust_config
    ).verify(model, sig)

    check, err = failed(cli, model, sig, "--cert-identity", "bob@example.com", *issuer, *trust)
    assert check == "identity" and "not bob@example.com" in err
    other = ("--cert-oidc-issuer", "https://token.actions.githubusercontent.com")
    assert (
        failed(cli, model, sig, "--cert-identity", "alice@example.com", *other, *trust)[0]
        == "identity"
    )
    _, public = key_pair(tmp_path)
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "bundle" and "keylessly" in err
    (model / "vocab.txt").write_text("changed")
    check, err = failed(cli, model, sig, "--cert-identity", "alice@example.com", *issuer, *trust)
    assert check == "model" and "vocab.txt has changed" in err


# -- model_signing's own published signatures, every version and mode -----------------------
# sigstore/model-transparency keeps, in scripts/tests/, a signature each release wrote (0.2.0
# certificate; 0.3.1, 1.0.0, 1.0.1, 1.1.0 by certificate, elliptic key and keyless) with the
# files and keys that verify them. They are read from a copy of that folder: shared/
# model-transparency/scripts/tests beside the work tree, or MLBOM_MODEL_TRANSPARENCY (files
# fetched from a public repository are not committed here).


def published_folder() -> Path | None:
    for candidate in (
        os.environ.get("MLBOM_MODEL_TRANSPARENCY"),
        ROOT.parent / "shared" / "model-transparency" / "scripts" / "tests",
    ):
        if candidate and (Path(candidate) / "keys" / "certificate" / "ca-cert.pem").exists():
            return Path(candidate)
    return None


PUBLISHED = published_folder()
# (case, the model path as its test-verify-CASE.sh passes it)
PUBLISHED_CASES = [
    ("v0.2.0-certificate", "."), ("v0.3.1-certificate", "."), ("v0.3.1-elliptic-key", "signme-1"),
    ("v0.3.1-sigstore", "."), ("v1.0.0-certificate", "."), ("v1.0.0-elliptic-key", "signme-1"),
    ("v1.0.0-sigstore", "."), ("v1.0.1-certificate", "."), ("v1.0.1-elliptic-key", "."),
    ("v1.0.1-sigstore", "."), ("v1.1.0-certificate", "."), ("v1.1.0-elliptic-key", "."),
    ("v1.1.0-sigstore", "."),
]  # fmt: skip


@pytest.mark.skipif(PUBLISHED is None, reason="no copy of model-transparency's scripts/tests (shared/model-transparency or MLBOM_MODEL_TRANSPARENCY)")  # fmt: skip
@pytest.mark.parametrize(("case", "target"), PUBLISHED_CASES, ids=[c for c, _ in PUBLISHED_CASES])
def test_every_published_model_signing_signature_verifies(cli, case, target):
    assert PUBLISHED is not None
    folder, pki = PUBLISHED / case, PUBLISHED / "keys" / "certificate"
    model = folder if target == "." else folder / target
    if case.endswith("elliptic-key"):
        signer = ["--key", pki / "signing-key-pub.pem"]
    elif case.endswith("certificate"):
        signer = ["--certificate-chain", pki / "ca-cert.pem"]
    else:
        signer = ["--cert-identity", "stefanb@us.ibm.com", "--offline",
                  "--cert-oidc-issuer", "https://sigstore.verify.ibm.com/oauth2"]  # fmt: skip
    ignore = ["--ignore-paths", folder / "ignore-me"] if (folder / "ignore-me").exists() and target == "." else []  # fmt: skip
    out, _ = cli("verify-model", model, "--signature", folder / "model.sig", *signer, *ignore, "--json")  # fmt: skip
    assert json.loads(out)["checks"][-1] == {"name": "model", "ok": True}
    if case.endswith("sigstore"):
        check, _ = failed(cli, model, folder / "model.sig", *signer[:1], "someone@example.com", *signer[2:], *ignore)  # fmt: skip
        assert check == "identity"


# -- model_signing 0.2's format ---------------------------------------------------------------


def compat_signature(model: Path, private: Path, *, legacy_pae: bool = True) -> dict:
    """A signature as model_signing 0.2 wrote it: one subject per file, the predicate type
    Digests/v0.1, a DSSE signature over its malformed PAE with SHA-256 (made here: no 0.2
    package runs on this Python)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": p.relative_to(model).as_posix(),
                     "digest": {"sha256": hashlib.sha256(p.read_bytes()).hexdigest()},
                     "annotations": {"actual_hash_algorithm": "file-sha256"}}
                    for p in sorted(model.rglob("*")) if p.is_file()],
        "predicateType": "https://model_signing/Digests/v0.1",
        "predicate": {"unused": "Unused, just passed due to API requirements"},
    }  # fmt: skip
    payload = json.dumps(statement, indent=2).encode()
    kind = "application/vnd.in-toto+json"
    signing = keys.load_private_key(private)
    data = f"DSSEV1 {len(kind)} {kind} {len(payload)} {payload!r}".encode() if legacy_pae else pae(kind, payload)  # fmt: skip
    sig = signing.sign(data, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
    return {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": oms_hint(signing.public_key())}},
        "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": kind,
                         "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": None}]},
    }  # fmt: skip


def test_model_signing_0_2_format(cli, tmp_path):
    model = hf_folder(tmp_path / "model")
    private, public = key_pair(tmp_path, "ecdsa-p384")  # 0.2 hashed with SHA-256 whatever the curve
    sig = tmp_path / "model.sig"
    sig.write_text(json.dumps(compat_signature(model, private)))
    out, _ = cli("verify-model", model, "--signature", sig, "--key", public, "--json")
    result = json.loads(out)
    assert result["serialization"]["method"] == "files" and len(result["resources"]) == len(FILES)
    (model / "vocab.txt").write_text("changed\n")
    check, err = failed(cli, model, sig, "--key", public)
    assert check == "model" and "vocab.txt" in err


def test_the_0_2_pae_is_accepted_only_for_the_0_2_format(cli, tmp_path):
    """model_signing 0.2's malformed PAE verifies only a payload in 0.2's own format: a 1.0
    statement signed that way is refused."""
    from cryptography.hazmat.primitives.asymmetric import ec

    model = hf_folder(tmp_path / "model")
    private, public = key_pair(tmp_path, "ecdsa-p256")
    oms_sign(model, tmp_path / "model.sig", private)
    doc = json.loads((tmp_path / "model.sig").read_text())
    payload = base64.b64decode(doc["dsseEnvelope"]["payload"])
    kind = doc["dsseEnvelope"]["payloadType"]
    legacy = f"DSSEV1 {len(kind)} {kind} {len(payload)} {payload!r}".encode()
    signed = keys.load_private_key(private).sign(legacy, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
    doc["dsseEnvelope"]["signatures"] = [{"sig": base64.b64encode(signed).decode(), "keyid": ""}]
    (tmp_path / "model.sig").write_text(json.dumps(doc))
    check, err = failed(cli, model, tmp_path / "model.sig", "--key", public)
    assert check == "bundle" and "no signature" in err


def test_ignored_paths_as_model_signing_reads_them(cli, tmp_path, monkeypatch):
    """--ignore-paths from the working directory or absolute, inside the model; one outside
    is refused, not dropped; a file not ignored still fails."""
    model = hf_folder(tmp_path / "model")
    private, public = key_pair(tmp_path)
    oms_sign(model, tmp_path / "model.sig", private)
    (model / "notes").mkdir()
    (model / "notes" / "a.txt").write_text("a\n")
    args = ["--signature", tmp_path / "model.sig", "--key", public]
    check, err = failed(cli, model, tmp_path / "model.sig", "--key", public)
    assert check == "model" and "notes/a.txt is not in the signature" in err
    monkeypatch.chdir(model)
    cli("verify-model", ".", *args, "--ignore-paths", "notes")
    cli("verify-model", model, *args, "--ignore-paths", model / "notes" / "a.txt")
    (model / "planted.py").write_text("import os\n")
    check, err = failed(cli, model, tmp_path / "model.sig", "--key", public, "--ignore-paths", "notes")  # fmt: skip
    assert check == "model" and "planted.py is not in the signature" in err
    _, err = cli("verify-model", model, *args, "--ignore-paths", tmp_path, code=2)
    assert "is not inside" in err
    _, err = cli("verify-model", model, *args, "--ignore-paths", model, code=2)
    assert "the whole model" in err
    _, err = cli("verify-model", model / "vocab.txt", *args, "--ignore-paths", "notes", code=2)
    assert "needs MODEL to be a folder" in err


# -- certificate chains, as a publisher's CA signs (model_signing's certificate mode) ---------


def certificate_signed(folder: Path, **chain_options) -> tuple[Path, Path, dict]:
    """A model signed by model_signing's certificate signer, with a CA chain."""
    (folder / "pki").mkdir(parents=True)
    pki = ca_chain(folder / "pki", **chain_options)
    model = hf_folder(folder / "model")
    sig = folder / "model.sig"
    model_signing.signing.Config().use_certificate_signer(
        private_key=pki["key"], signing_certificate=pki["leaf"], certificate_chain=[pki["mid"]]
    ).sign(model, sig)
    return model, sig, pki


def test_certificate_chain_mode(cli, tmp_path):
    model, sig, pki = certificate_signed(tmp_path)
    out, _ = cli("verify-model", model, "--signature", sig, "--certificate-chain", pki["root"], "--json")  # fmt: skip
    assert json.loads(out)["signer"] == "certificate CN=model-publisher"
    cli(
        "verify-model", model, "--signature", sig, "--certificate-chain", pki["mid"]
    )  # an anchor too
    model_signing.verifying.Config().use_certificate_verifier(certificate_chain=[pki["root"]]).verify(model, sig)  # fmt: skip
    (model / "vocab.txt").write_text("changed\n")
    check, err = failed(cli, model, sig, "--certificate-chain", pki["root"])
    assert check == "model" and "vocab.txt" in err


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP521R1()], ids=lambda c: c.name)
def test_certificate_chain_with_every_curve_model_signing_signs_with(cli, tmp_path, curve):
    model, sig, pki = certificate_signed(tmp_path, leaf_curve=curve)
    cli("verify-model", model, "--signature", sig, "--certificate-chain", pki["root"])
    (model / "vocab.txt").write_text("changed\n")
    check, err = failed(cli, model, sig, "--certificate-chain", pki["root"])
    assert check == "model" and "vocab.txt" in err


def test_a_certificate_on_a_curve_model_signing_does_not_use_is_refused(cli, tmp_path):
    model, sig, _ = certificate_signed(tmp_path / "a")
    (tmp_path / "k1").mkdir()
    k1 = ca_chain(tmp_path / "k1", leaf_curve=ec.SECP256K1())
    document = json.loads(sig.read_text())
    chain = [pem_der_b64(k1["leaf"]), pem_der_b64(k1["mid"])]
    document["verificationMaterial"]["x509CertificateChain"]["certificates"] = [{"rawBytes": c} for c in chain]  # fmt: skip
    sig.write_text(json.dumps(document))
    check, err = failed(cli, model, sig, "--certificate-chain", k1["root"])
    assert check == "bundle" and "secp256k1" in err


def pem_der_b64(pem: Path) -> str:
    certificate = x509.load_pem_x509_certificate(pem.read_bytes())
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


def test_certificate_chain_refusals(cli, tmp_path):
    model, sig, pki = certificate_signed(tmp_path / "a")
    (tmp_path / "other").mkdir()
    other = ca_chain(tmp_path / "other")
    check, err = failed(cli, model, sig, "--certificate-chain", other["root"])
    assert check == "bundle" and "does not chain to the given certificates" in err
    expired_model, expired_sig, expired = certificate_signed(tmp_path / "b", intermediate_expired=True)  # fmt: skip
    check, err = failed(cli, expired_model, expired_sig, "--certificate-chain", expired["root"])
    assert check == "bundle" and "does not chain" in err
    server_model, server_sig, server = certificate_signed(tmp_path / "c", leaf_usage="server")
    check, err = failed(cli, server_model, server_sig, "--certificate-chain", server["root"])
    assert check == "bundle" and "may not sign" in err
    key_model = hf_folder(tmp_path / "k")
    key_sig = oms_sign(key_model, tmp_path / "k.sig", key_pair(tmp_path)[0])
    check, err = failed(cli, key_model, key_sig, "--certificate-chain", pki["root"])
    assert check == "bundle" and "made with a key" in err
    _, err = cli("verify-model", model, "--signature", sig, "--certificate-chain", pki["root"], "--key", pki["leaf"], code=2)  # fmt: skip
    assert "one of them" in err
    (tmp_path / "empty.pem").write_text("nothing\n")
    _, err = cli("verify-model", model, "--signature", sig, "--certificate-chain", tmp_path / "empty.pem", code=2)  # fmt: skip
    assert "holds no PEM certificate" in err
