"""Hostile OpenSSF model signatures (found by attacking the verifier): certificates whose
subject does not decode, leaves with extensions cryptography cannot parse, non-finite shard
sizes. Each must end in a clean `NotVerifiedError` or `BadInputError` with its check, in
`verify-model` and in admission (a verdict, cached), never a traceback."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

from attest import keys
from attest.dsse import pae
from attest.model_signatures import PREDICATE_TYPE, CertificateChain, verify_listing, verify_model
from attest.verify import ExpectedSigner
from mlbom.errors import BadInputError, NotVerifiedError
from tests.hub_standin import File, HubStandIn, Repo

PT = "application/vnd.in-toto+json"
NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


FILES = {"config.json": b'{"model_type": "llama"}', "README.md": b"# a model\n"}


def statement(serialization_extra: dict | None = None, resources: list | None = None) -> dict:
    res = resources or [
        {"name": n, "algorithm": "sha256", "digest": sha(d)} for n, d in sorted(FILES.items())
    ]
    root = sha(b"".join(bytes.fromhex(r["digest"]) for r in res))
    ser = {"method": "files", "hash_type": "sha256", "allow_symlinks": False, "ignore_paths": []}
    ser.update(serialization_extra or {})
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model", "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"serialization": ser, "resources": res},
    }


def bundle(payload: bytes, private, material: dict | None = None) -> bytes:
    sig = keys.sign(private, pae(PT, payload))
    return json.dumps({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": material or {"publicKey": {"hint": ""}},
        "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": PT,
                         "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": ""}]},
    }).encode()  # fmt: skip


def ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "publisher-root")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(NOW - 10 * DAY).not_valid_after(NOW + 10 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert, key


def leaf(issuer: x509.Certificate, issuer_key, key, *, extensions=(), cn: str = "leaf") -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer.subject).public_key(key.public_key()).serial_number(2)
        .not_valid_before(NOW - DAY).not_valid_after(NOW + DAY)
    )  # fmt: skip
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def integer_subject(der: bytes, cn: str = "ZZZ") -> bytes:
    """The certificate with its subject CN's UTF8String retagged as an INTEGER: no CA needed,
    anyone can write it (the signature over it no longer verifies, which does not matter)."""
    marker = b"\x0c" + bytes([len(cn)]) + cn.encode()
    at = der.rindex(marker)  # the subject comes after the issuer
    return der[:at] + b"\x02" + der[at + 1 :]


def chain_material(*ders: bytes) -> dict:
    return {"x509CertificateChain": {"certificates": [{"rawBytes": base64.b64encode(d).decode()} for d in ders]}}  # fmt: skip


def refused_cleanly(call) -> NotVerifiedError | BadInputError:
    try:
        call()
    except (NotVerifiedError, BadInputError) as e:
        return e
    except Exception as e:
        pytest.fail(f"crashed with {type(e).__name__}: {e}")
    pytest.fail("accepted")


# -- 1. a certificate whose subject cannot be decoded crashes key and chain mode ------------


def malformed_subject_bundle():
    signing = ec.generate_private_key(ec.SECP256R1())
    der = integer_subject(leaf(*_self_issuer(signing), signing, cn="ZZZ"))
    payload = json.dumps(statement()).encode()
    return bundle(payload, signing, chain_material(der)), signing


def _self_issuer(key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(3).not_valid_before(NOW - DAY).not_valid_after(NOW + DAY).sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert, key


def test_key_mode_bundle_with_undecodable_certificate_subject_is_refused_cleanly():
    """attest/oms.py `_check_certificate_key`: the error message calls
    `leaf.subject.rfc4514_string()` outside the try, so a bundle from anyone (no key, no CA)
    crashes verification with the trusted key instead of being refused."""
    signature, _ = malformed_subject_bundle()
    trusted = keys.generate("ecdsa-p256").public_key()
    error = refused_cleanly(lambda: verify_model(signature, ExpectedSigner(key=trusted)))
    assert isinstance(error, NotVerifiedError) and error.check == "bundle"


def test_chain_mode_bundle_with_undecodable_certificate_subject_is_refused_cleanly():
    """attest/oms.py `_verify_with_chain` line 402: `leaf.subject.rfc4514_string()` runs
    before (and outside) the chain check."""
    signature, _ = malformed_subject_bundle()
    root, _ = ca()
    error = refused_cleanly(lambda: verify_model(signature, CertificateChain((root,))))
    assert isinstance(error, NotVerifiedError) and error.check == "bundle"


def test_listing_check_with_undecodable_certificate_subject_is_refused_cleanly():
    signature, _ = malformed_subject_bundle()
    trusted = keys.generate("ecdsa-p256").public_key()
    listing = {n: sha(d) for n, d in FILES.items()}
    refused_cleanly(lambda: verify_listing(signature, ExpectedSigner(key=trusted), listing))


# -- 2. a CA-issued certificate with a SAN or key usage cryptography cannot parse ------------


@pytest.mark.parametrize(
    "extension",
    [
        # subjectAltName holding an ediPartyName (cryptography: UnsupportedGeneralNameType)
        (
            x509.UnrecognizedExtension(
                ExtensionOID.SUBJECT_ALTERNATIVE_NAME, bytes.fromhex("3007A505A1030C0178")
            ),
            False,
        ),
        # subjectAltName holding an x400Address
        (
            x509.UnrecognizedExtension(
                ExtensionOID.SUBJECT_ALTERNATIVE_NAME, bytes.fromhex("3004A3023000")
            ),
            False,
        ),
        # a keyUsage that is not a BIT STRING (ValueError in `_may_sign`)
        (x509.UnrecognizedExtension(ExtensionOID.KEY_USAGE, bytes.fromhex("0500")), True),
    ],
    ids=["edi-party-san", "x400-san", "malformed-key-usage"],
)
def test_chain_mode_unparseable_extensions_end_in_a_verdict(extension):
    """attest/oms.py `_verify_with_chain` catches only VerificationError around
    `verify(leaf, intermediates)` (attest/verify.py `_check_certificate` catches Exception
    for this very reason), and `_may_sign` reads the extensions unguarded."""
    root, root_key = ca()
    signing = ec.generate_private_key(ec.SECP256R1())
    extensions = [extension]
    if extension[0].oid != ExtensionOID.KEY_USAGE:
        extensions.append((x509.KeyUsage(True, False, False, False, False, False, False, False, False), True))  # fmt: skip
    der = leaf(root, root_key, signing, extensions=extensions)
    signature = bundle(json.dumps(statement()).encode(), signing, chain_material(der))
    try:
        verify_model(signature, CertificateChain((root,)))
    except NotVerifiedError:
        pass  # refusing it is fine; so would be verifying it
    except Exception as e:
        pytest.fail(f"crashed with {type(e).__name__}: {e}")


# -- 3. a signed shard_size of NaN / Infinity --------------------------------------------------


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_shard_size_is_a_malformed_predicate(value):
    """attest/oms.py `_serialization`: `raw != int(raw)` raises OverflowError/ValueError for
    the non-finite floats Python's json accepts."""
    private = keys.generate("ecdsa-p256")
    st = statement(
        {"method": "shards", "shard_size": 12345},
        resources=[{"name": "config.json:0:10", "algorithm": "sha256-sharded-12345", "digest": sha(b"x")}],
    )  # fmt: skip
    payload = json.dumps(st).encode().replace(b"12345.0", value.encode()).replace(b": 12345}", f": {value}}}".encode())  # fmt: skip
    assert value.encode() in payload
    error = refused_cleanly(lambda: verify_model(bundle(payload, private), ExpectedSigner(key=private.public_key())))  # fmt: skip
    assert isinstance(error, NotVerifiedError) and error.check == "payload"


# -- 4. the admission verifier: a crafted model.sig makes check_now raise ---------------------

REPO = "research/tiny-llm"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
MODEL = f"hf://{REPO}@{COMMIT}"


def test_admission_verdict_for_a_model_sig_with_undecodable_certificate(tmp_path, monkeypatch):
    """admission/verification.py `_oms_verdict` catches NotVerifiedError and MlbomError
    only: the ValueError from attest/oms.py escapes `check_now` (no verdict, nothing cached,
    the remaining OMS signers never tried, a traceback in the webhook's log)."""
    from admission.reviewer import Reviewer

    signature, _ = malformed_subject_bundle()
    standin = HubStandIn()
    repo = {n: File(d, 0, lfs=False) for n, d in FILES.items()}
    standin.repos[REPO] = Repo({**repo, "model.sig": File(signature, 0, lfs=False)}, commit=COMMIT)
    monkeypatch.setenv("HF_ENDPOINT", standin.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    try:
        publisher = tmp_path / "publisher.pub"
        keys.write_key_pair(
            keys.generate("ecdsa-p256"), tmp_path / "publisher.key", publisher, None
        )
        (tmp_path / "store").mkdir()
        policy = tmp_path / "policy.yaml"
        policy.write_text(yaml.safe_dump({
            "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy",
            "stores": [str(tmp_path / "store")],
            "trust": {"signers": [{"name": "ci", "key": {"path": str(publisher)}}],
                      "omsSigners": [{"name": "publisher", "key": {"path": str(publisher)}}]},
            "oms": {"accept": {"namespaces": ["research"]}},
        }))  # fmt: skip
        verifier = Reviewer.load(policy).verifier
        try:
            verdict = verifier.check_now(MODEL)
        except Exception as e:
            pytest.fail(f"check_now raised {type(e).__name__}: {e}")
        assert verdict.outcome == "not-verified" and "publisher: bundle" in verdict.reason
    finally:
        standin.close()


def test_a_link_to_the_signature_inside_the_model_is_no_signature(cli, tmp_path):
    """Only the signature file itself is left out of the model: a symlink to it is a file of
    the model like any other (refused where the model was signed without symlinks)."""
    import model_signing

    from tests.builders import hf_folder

    model = hf_folder(tmp_path / "model")
    keys.write_key_pair(keys.generate(), tmp_path / "k.key", tmp_path / "k.pub", None)
    signature = model / "model.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=tmp_path / "k.key").sign(model, signature)  # fmt: skip
    cli("verify-model", model, "--signature", signature, "--key", tmp_path / "k.pub")
    (model / "weights.bin").symlink_to("model.sig")
    out, _ = cli("verify-model", model, "--signature", signature, "--key", tmp_path / "k.pub", "--json", code=1)  # fmt: skip
    assert json.loads(out)["failed"] == "model"
