"""Keyless signing and verification end to end, against a local Sigstore instance on
loopback (tests/sigstore/server.js: Fulcio and Rekor from @sigstore/mock) through the real
sigstore client; every bundle mlbom makes checked again by sigstore-js (@sigstore/verify);
and real bundles from the public production instance, verified offline against the trusted
root shipped with sigstore."""

from __future__ import annotations

import base64
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

import attest
import mlbom
from attest.sign import trust
from attest.statement import subjects
from mlbom.errors import BadInputError, NotVerifiedError
from tests import keyless
from tests.builders import DATA, hf_folder
from tests.conftest import Cli

EMAIL = "alice@example.com"
PUBLIC = DATA / "public-bundles"
FOUNDRY = PUBLIC / "foundry-stable.sigstore.json"
FOUNDRY_IDENTITY = (
    "https://github.com/foundry-rs/foundry/.github/workflows/release.yml@refs/tags/stable"
)


@pytest.fixture(scope="session")
def sigstore(tmp_path_factory):
    """One local Sigstore instance for the whole session."""
    folder = tmp_path_factory.mktemp("sigstore")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("NO_PROXY", "no_proxy"):  # loopback never goes through a proxy
            mp.setenv(name, ",".join(filter(None, [os.environ.get(name), "127.0.0.1"])))
        instance = keyless.LocalSigstore.start(folder)
        try:
            yield instance
        finally:
            instance.stop()


@pytest.fixture(scope="session")
def signed(sigstore, tmp_path_factory):
    """A model, its BOM and the BOM's keyless bundle (an email identity), made once:
    (model, bom, bundle). Tests that change the bundle change a copy."""
    folder = tmp_path_factory.mktemp("signed")
    model = hf_folder(folder / "model")
    bom = folder / "bom.cdx.json"
    mlbom.generate(model, version="1.0", cache=False).write(bom)  # before the per-test cache
    Cli()(
        "sign",
        bom,
        "--trust-config",
        sigstore.trust_config,
        "--identity-token",
        keyless.email_token(),
    )
    return model, bom, Path(f"{bom}.sigstore.json")


@pytest.fixture
def copy(signed, tmp_path):
    """The signed BOM and a copy of its bundle to tamper with: (bom, bundle)."""
    _, bom, bundle = signed
    target = tmp_path / "bundle.json"
    shutil.copy(bundle, target)
    return bom, target


def verify(cli, sigstore, bom, bundle, *args, code=0):
    out, err = cli(
        "verify", bom, "--bundle", bundle, "--trust-config", sigstore.trust_config, "--json", *args,
        code=code,
    )  # fmt: skip
    return json.loads(out), err


def failed(cli, sigstore, bom, bundle, *args):
    result, _ = verify(cli, sigstore, bom, bundle, *args, code=1)
    assert result["verified"] is False
    return result["failed"], result["reason"]


BY_EMAIL = ("--cert-identity", EMAIL, "--cert-oidc-issuer", keyless.ISSUER)


def certificate(bundle: Path) -> x509.Certificate:
    raw = json.loads(bundle.read_text())["verificationMaterial"]["certificate"]["rawBytes"]
    return x509.load_der_x509_certificate(base64.b64decode(raw))


def flip_signature(bundle: Path) -> None:
    doc = json.loads(bundle.read_text())
    sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[len(sig) // 2] ^= 1
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(sig).decode()
    bundle.write_text(json.dumps(doc))


# -- signing and verifying through the command ------------------------------------------------


def test_sign_and_verify_an_email_identity(cli, sigstore, signed):
    model, bom, bundle = signed
    doc = json.loads(bundle.read_text())
    assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    assert entry["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}
    assert doc["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    cert = certificate(bundle)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [EMAIL]  # as Fulcio writes emails

    result, _ = verify(cli, sigstore, bom, bundle, *BY_EMAIL, "--model", model)
    assert result["verified"] is True
    assert result["signer"] == EMAIL and result["issuer"] == keyless.ISSUER
    assert [c["name"] for c in result["checks"]] == [
        "bundle", "identity", "payload", "bom", "subjects", "model",
    ]  # fmt: skip
    assert result["subjects"] == subjects(json.loads(bom.read_text()))


def test_verify_with_the_extracted_trusted_root(cli, sigstore, signed):
    _, bom, bundle = signed
    out, _ = cli(
        "verify", bom, "--bundle", bundle, "--trusted-root", sigstore.trusted_root, *BY_EMAIL
    )  # fmt: skip
    assert out.startswith("verified:") and f"signed by {EMAIL}" in out
    assert "checks: bundle, identity, payload, bom, subjects" in out


def test_identity_token_from_the_environment(cli, sigstore, tmp_path, monkeypatch):
    model = hf_folder(tmp_path / "model")
    bom = tmp_path / "bom.json"
    mlbom.generate(model).write(bom)
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", keyless.email_token("bob@example.com"))
    cli("sign", bom, "--trust-config", sigstore.trust_config)
    result, _ = verify(
        cli, sigstore, bom, f"{bom}.sigstore.json",
        "--cert-identity", "bob@example.com", "--cert-oidc-issuer", keyless.ISSUER,
    )  # fmt: skip
    assert result["signer"] == "bob@example.com"


def test_a_github_workflow_identity_and_anchored_regexps(cli, sigstore, tmp_path):
    model = hf_folder(tmp_path / "model")
    bom = tmp_path / "bom.json"
    mlbom.generate(model).write(bom)
    cli(
        "sign",
        bom,
        "--trust-config",
        sigstore.trust_config,
        "--identity-token",
        keyless.github_token(),
    )
    bundle = Path(f"{bom}.sigstore.json")
    identity = keyless.github_identity()
    assert identity == "https://github.com/acme/repo/.github/workflows/release.yml@refs/heads/main"
    issuer = ("--cert-oidc-issuer", keyless.GITHUB_ISSUER)

    result, _ = verify(cli, sigstore, bom, bundle, "--cert-identity", identity, *issuer)
    assert result["signer"] == identity
    regexp = r"https://github\.com/acme/repo/.*"
    result, _ = verify(cli, sigstore, bom, bundle, "--cert-identity-regexp", regexp, *issuer)
    assert result["verified"] is True
    # would match unanchored (re.search), so it must not match here
    check, reason = failed(
        cli, sigstore, bom, bundle, "--cert-identity-regexp", "acme/repo", *issuer
    )
    assert check == "identity" and identity in reason
    check, _ = failed(
        cli, sigstore, bom, bundle, "--cert-identity-regexp", r"https://github\.com/acme/rep", *issuer
    )  # fmt: skip
    assert check == "identity"
    # the certificate carries the issuer Fulcio was given
    check, _ = failed(
        cli,
        sigstore,
        bom,
        bundle,
        "--cert-identity",
        identity,
        "--cert-oidc-issuer",
        keyless.ISSUER,
    )
    assert check == "identity"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cert-identity", "mallory@example.com", "--cert-oidc-issuer", keyless.ISSUER), EMAIL),
        (("--cert-identity", EMAIL.upper(), "--cert-oidc-issuer", keyless.ISSUER), EMAIL),
        (
            ("--cert-identity", EMAIL, "--cert-oidc-issuer", "https://accounts.example.org"),
            "not issued by",
        ),
        (("--cert-identity", EMAIL, "--cert-oidc-issuer", keyless.GITHUB_ISSUER), "not issued by"),
        (("--cert-identity-regexp", "alice@", "--cert-oidc-issuer", keyless.ISSUER), EMAIL),
    ],
    ids=["other-identity", "case", "other-issuer", "github-issuer", "unanchored-regexp"],
)
def test_the_wrong_signer_fails_identity(cli, sigstore, signed, args, message):
    _, bom, bundle = signed
    check, reason = failed(cli, sigstore, bom, bundle, *args)
    assert check == "identity"
    assert message in reason


@pytest.mark.parametrize("clock", ["late", "early"])
def test_integrated_time_outside_the_certificate(cli, sigstore, tmp_path, clock):
    """The log's clock runs an hour ahead (behind): the entry's integrated time, signed by
    the log, falls after (before) the ten minutes the certificate is valid for."""
    model = hf_folder(tmp_path / "model")
    bom = tmp_path / "bom.json"
    mlbom.generate(model).write(bom)
    config = sigstore.with_tlog(clock)
    cli("sign", bom, "--trust-config", config, "--identity-token", keyless.email_token())
    bundle = Path(f"{bom}.sigstore.json")
    cert = certificate(bundle)
    entry = json.loads(bundle.read_text())["verificationMaterial"]["tlogEntries"][0]
    signed_at = datetime.fromtimestamp(int(entry["integratedTime"]), UTC)
    assert not cert.not_valid_before_utc <= signed_at <= cert.not_valid_after_utc

    check, reason = failed(cli, sigstore, bom, bundle, *BY_EMAIL)
    assert check == "bundle" and "not valid at validation time" in reason, reason
    js = keyless.sigstore_js(
        bundle, trusted_root=sigstore.trusted_root, identity=EMAIL, issuer=keyless.ISSUER
    )
    assert js["verified"] is False


def test_truncated_and_broken_keyless_bundles(cli, sigstore, copy):
    bom, bundle = copy
    text = bundle.read_text()
    doc = json.loads(text)
    no_entry = {**doc, "verificationMaterial": {**doc["verificationMaterial"], "tlogEntries": []}}
    no_cert = json.loads(text)
    del no_cert["verificationMaterial"]["certificate"]
    for broken in (text[: len(text) // 2], text[:-2], json.dumps(no_entry), json.dumps(no_cert)):
        bundle.write_text(broken)
        assert failed(cli, sigstore, bom, bundle, *BY_EMAIL)[0] == "bundle"


def test_changed_signature_or_payload_fails_bundle(cli, sigstore, copy):
    bom, bundle = copy
    original = bundle.read_text()
    flip_signature(bundle)
    assert failed(cli, sigstore, bom, bundle, *BY_EMAIL)[0] == "bundle"

    doc = json.loads(original)  # another statement under the same signature
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    bundle.write_text(json.dumps(doc))
    assert failed(cli, sigstore, bom, bundle, *BY_EMAIL)[0] == "bundle"


def test_another_bom_under_a_good_signature_fails_bom(cli, sigstore, signed, tmp_path):
    model, _, bundle = signed
    other = tmp_path / "other.json"
    mlbom.generate(model, version="9.9").write(other)
    assert failed(cli, sigstore, other, bundle, *BY_EMAIL)[0] == "bom"


def test_not_trusted_by_another_root(cli, signed, monkeypatch, tmp_path):
    """A bundle from the local instance is nothing to the public production instance."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _, bom, bundle = signed
    out, _ = cli("verify", bom, "--bundle", bundle, "--offline", *BY_EMAIL, "--json", code=1)
    assert json.loads(out)["failed"] == "bundle"


def test_a_message_signature_bundle_is_not_an_attestation(sigstore, signed, tmp_path):
    """Validly signed by the trusted instance, with the right identity, but over bytes
    rather than a DSSE statement: refused at `bundle`."""
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    _, bom, _ = signed
    config = trust(sigstore.trust_config, False)
    context = SigningContext.from_trust_config(config)
    with context.signer(IdentityToken(keyless.email_token())) as signer:
        bundle = signer.sign_artifact(bom.read_bytes()).to_json()
    document = json.loads(bom.read_text())
    with pytest.raises(NotVerifiedError) as caught:
        attest.verify(
            document,
            bundle,
            attest.ExpectedSigner(identity=EMAIL, issuer=keyless.ISSUER),
            trust_config=sigstore.trust_config,
        )
    assert caught.value.check == "bundle" and "DSSE" in caught.value.reason


def test_refusals_are_named(cli, sigstore, signed, tmp_path):
    _, bom, _ = signed
    out = ("-o", tmp_path / "b.json", "--trust-config", sigstore.trust_config)
    _, err = cli(
        "sign", bom, *out, "--identity-token", keyless.email_token(email_verified=False), code=2
    )
    assert "certificate authority refused" in err and "not verified" in err
    _, err = cli("sign", bom, *out, "--identity-token", keyless.token(lifetime=-60), code=2)
    assert "identity token was refused" in err
    _, err = cli("sign", bom, *out, "--identity-token", keyless.token(audience="other"), code=2)
    assert "identity token was refused" in err
    assert not (tmp_path / "b.json").exists()


def test_library_calls(sigstore, signed):
    model, bom, _ = signed
    document = json.loads(bom.read_text())
    bundle = attest.sign(
        document, identity_token=keyless.github_token(), trust_config=sigstore.trust_config
    )
    signer = attest.ExpectedSigner(
        identity_regexp=r"https://github\.com/acme/repo/\.github/workflows/[^@]+@refs/heads/main",
        issuer=keyless.GITHUB_ISSUER,
    )
    result = attest.verify(
        document, bundle, signer, trust_config=sigstore.trust_config, model=model
    )
    assert result.passed == ["bundle", "identity", "payload", "bom", "subjects", "model"]
    assert result.signer == keyless.github_identity()
    with pytest.raises(BadInputError):
        attest.verify(document, bundle, attest.ExpectedSigner(identity=EMAIL))  # no issuer


# -- an independent verifier: sigstore-js ----------------------------------------------------


def test_sigstore_js_verifies_a_keyless_bundle(sigstore, signed, tmp_path):
    _, _, bundle = signed
    root = sigstore.trusted_root
    ok = keyless.sigstore_js(bundle, trusted_root=root, identity=EMAIL, issuer=keyless.ISSUER)
    assert ok == {"verified": True, "identity": EMAIL, "issuer": keyless.ISSUER}
    for identity, issuer in (
        (EMAIL, "https://accounts.example.org"),
        ("alice@example", keyless.ISSUER),
    ):
        wrong = keyless.sigstore_js(bundle, trusted_root=root, identity=identity, issuer=issuer)
        assert wrong["verified"] is False
    tampered = tmp_path / "tampered.json"
    shutil.copy(bundle, tampered)
    flip_signature(tampered)
    bad = keyless.sigstore_js(tampered, trusted_root=root, identity=EMAIL, issuer=keyless.ISSUER)
    assert bad["verified"] is False


# sigstore-js looks a key up without its algorithm and verifies ECDSA with SHA-256, so a
# P-384 key's SHA-384 signature (PKIX_ECDSA_P384_SHA_384, as mlbom signs) is not checked here.
@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519"])
def test_sigstore_js_verifies_a_key_bundle(cli, tmp_path, kind):
    keyless.node()
    model = hf_folder(tmp_path / "model")
    bom = tmp_path / "bom.json"
    mlbom.generate(model).write(bom)
    cli("keygen", "-o", tmp_path / "k", "--type", kind)
    cli("sign", bom, "--key", tmp_path / "k.key")
    bundle = Path(f"{bom}.sigstore.json")
    assert keyless.sigstore_js(bundle, key=tmp_path / "k.pub")["verified"] is True

    cli("keygen", "-o", tmp_path / "other", "--type", kind)
    assert keyless.sigstore_js(bundle, key=tmp_path / "other.pub")["verified"] is False
    flip_signature(bundle)
    assert keyless.sigstore_js(bundle, key=tmp_path / "k.pub")["verified"] is False


# -- real bundles from the public instance ---------------------------------------------------


@pytest.fixture
def production(monkeypatch, tmp_path):
    """sigstore's offline production trust: a fresh TUF cache holds the shipped root."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _public(bundle: bytes | str, **signer) -> NotVerifiedError:
    bom = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}
    with pytest.raises(NotVerifiedError) as caught:
        attest.verify(bom, bundle, attest.ExpectedSigner(**signer), offline=True)
    return caught.value


def test_a_public_bundle_passes_bundle_and_identity(production):
    """GitHub's build provenance for Foundry's `stable` release: the signature, certificate,
    SCT and log entry are real, so `bundle` and `identity` pass; the statement is SLSA
    provenance, not a CycloneDX BOM, so `payload` fails."""
    bundle = FOUNDRY.read_bytes()
    for signer in (
        {"identity": FOUNDRY_IDENTITY},
        {
            "identity_regexp": r"https://github\.com/foundry-rs/foundry/\.github/workflows/.+@refs/tags/.+"
        },
    ):
        error = _public(bundle, issuer=keyless.GITHUB_ISSUER, **signer)
        assert error.check == "payload" and "slsa.dev/provenance" in error.reason


def test_a_public_bundle_through_the_command(cli, production, tmp_path):
    bom = tmp_path / "bom.json"
    mlbom.generate(hf_folder(tmp_path / "model")).write(bom)
    out, _ = cli(
        "verify", bom, "--bundle", FOUNDRY, "--offline", "--json",
        "--cert-identity", FOUNDRY_IDENTITY, "--cert-oidc-issuer", keyless.GITHUB_ISSUER,
        code=1,
    )  # fmt: skip
    assert json.loads(out)["failed"] == "payload"


@pytest.mark.parametrize(
    "signer",
    [
        {"identity": FOUNDRY_IDENTITY.replace("refs/tags/stable", "refs/heads/main")},
        {"identity": FOUNDRY_IDENTITY, "issuer": "https://accounts.google.com"},
        {"identity_regexp": "foundry-rs/foundry"},
    ],
    ids=["other-ref", "other-issuer", "unanchored-regexp"],
)
def test_a_public_bundle_for_another_signer_fails_identity(production, signer):
    signer.setdefault("issuer", keyless.GITHUB_ISSUER)
    assert _public(FOUNDRY.read_bytes(), **signer).check == "identity"


def test_a_public_bundle_with_one_byte_changed_fails_bundle(production, tmp_path):
    bundle = tmp_path / "b.json"
    shutil.copy(FOUNDRY, bundle)
    flip_signature(bundle)
    error = _public(bundle.read_bytes(), identity=FOUNDRY_IDENTITY, issuer=keyless.GITHUB_ISSUER)
    assert error.check == "bundle"


def test_sigstore_js_verifies_the_public_bundle():
    import sigstore as sigstore_python

    shipped = (
        Path(sigstore_python.__file__).parent
        / "_store"
        / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
        / "trusted_root.json"
    )
    result = keyless.sigstore_js(
        FOUNDRY, trusted_root=shipped, identity=FOUNDRY_IDENTITY, issuer=keyless.GITHUB_ISSUER
    )
    assert result["verified"] is True
