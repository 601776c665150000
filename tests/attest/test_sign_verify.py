"""mlbom sign / verify / keygen with private keys: the bundle's shape, round trips for every
key type, and a tamper matrix where each change is refused by the right check."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import mlbom
from attest import keys
from attest.sign import sign_with_key
from attest.statement import PREDICATE_TYPE, canonical, subjects
from tests.builders import hf_folder


@pytest.fixture
def signed(tmp_path, cli):
    """A model, its BOM, a key pair and the bundle: (model, bom, private, public, bundle)."""
    model = hf_folder(tmp_path / "model")
    bom = tmp_path / "bom.cdx.json"
    mlbom.generate(model, version="1.0").write(bom)
    cli("keygen", "-o", tmp_path / "signer", "--key-password", "s3cret")
    cli("sign", bom, "--key", tmp_path / "signer.key", "--key-password", "s3cret")
    return (
        model,
        bom,
        tmp_path / "signer.key",
        tmp_path / "signer.pub",
        Path(f"{bom}.sigstore.json"),
    )


def check_failed(cli, *args) -> str:
    out, _err = cli("verify", *args, "--json", code=1)
    return json.loads(out)["failed"]


@pytest.mark.parametrize("kind", keys.KEY_TYPES)
def test_round_trip_for_each_key_type(cli, tmp_path, kind):
    model = hf_folder(tmp_path / "model")
    bom = tmp_path / "bom.json"
    mlbom.generate(model).write(bom)
    cli("keygen", "-o", tmp_path / "k", "--type", kind)
    cli("sign", bom, "--key", tmp_path / "k.key", "-o", tmp_path / "b.json")
    out, _ = cli(
        "verify",
        bom,
        "--bundle",
        tmp_path / "b.json",
        "--key",
        tmp_path / "k.pub",
        "--model",
        model,
    )
    assert out.startswith("verified:") and "model" in out


def test_bundle_shape(signed):
    model, bom, _, public, bundle = signed
    doc = json.loads(bundle.read_text())
    assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    der = keys.load_public_key(public).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hint = base64.b64encode(hashlib.sha256(der).digest()).decode()
    assert doc["verificationMaterial"]["publicKey"]["hint"] == hint
    envelope = doc["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert [s["keyid"] for s in envelope["signatures"]] == [hint]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://cyclonedx.org/bom"
    assert statement["predicate"] == json.loads(bom.read_text())
    names = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    for path in ("config.json", "model.safetensors", "README.md"):
        assert names[path] == hashlib.sha256((model / path).read_bytes()).hexdigest()


def test_keygen_files(tmp_path, cli):
    cli("keygen", "-o", tmp_path / "k", "--key-password", "pw")
    assert stat.S_IMODE(os.stat(tmp_path / "k.key").st_mode) == 0o600
    assert b"ENCRYPTED" in (tmp_path / "k.key").read_bytes()
    before = (tmp_path / "k.key").read_bytes()
    _, err = cli("keygen", "-o", tmp_path / "k", code=2)
    assert "not overwriting" in err and (tmp_path / "k.key").read_bytes() == before


def test_sign_refuses_to_overwrite(signed, cli):
    _, bom, private, _, bundle = signed
    before = bundle.read_bytes()
    _, err = cli("sign", bom, "--key", private, "--key-password", "s3cret", code=2)
    assert "--overwrite" in err and bundle.read_bytes() == before
    cli("sign", bom, "--key", private, "--key-password", "s3cret", "--overwrite")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key-password", "wrong"], "password is wrong"),
        ([], "--key-password"),
    ],
)
def test_sign_bad_password(signed, cli, args, message):
    _, bom, private, _, _ = signed
    _, err = cli("sign", bom, "--key", private, "-o", bom.with_suffix(".b"), *args, code=2)
    assert message in err and not bom.with_suffix(".b").exists()


def test_sign_bad_boms(tmp_path, cli, signed):
    *_, private, _, _ = signed
    for name, content, message in [
        ("x.xml", "<bom/>", "sign the JSON form"),
        ("y.json", '{"a": 1}', "not a CycloneDX BOM"),
        ("z.json", '{"bomFormat": "CycloneDX", "components": []}', "lists no files"),
    ]:
        (tmp_path / name).write_text(content)
        _, err = cli("sign", tmp_path / name, "--key", private, "--key-password", "s3cret", code=2)
        assert message in err


def test_verify_needs_a_signer(signed, cli):
    _, bom, *_ = signed
    _, err = cli("verify", bom, code=2)
    assert "only verified against a signer" in err
    _, err = cli("verify", bom, "--cert-identity", "me@example.com", code=2)
    assert "--cert-oidc-issuer" in err


# -- the tamper matrix ---------------------------------------------------------------------


def resign(bundle: Path, private: Path, change) -> None:
    """Rewrite the bundle with a statement changed by `change(statement)`, validly signed."""
    doc = json.loads(bundle.read_text())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    payload_type = change(statement) or "application/vnd.in-toto+json"
    key = keys.load_private_key(private, "s3cret")
    new = json.loads(sign_with_key(canonical(statement), key))
    if payload_type != "application/vnd.in-toto+json":
        from attest.dsse import pae

        new["dsseEnvelope"]["payloadType"] = payload_type
        sig = keys.sign(key, pae(payload_type, canonical(statement)))
        new["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(sig).decode()
    bundle.write_text(json.dumps(new))


def test_untouched_verifies(signed, cli):
    model, bom, _, public, _ = signed
    cli("verify", bom, "--key", public, "--model", model)


def test_flipped_byte_in_a_model_file(signed, cli):
    model, bom, _, public, _ = signed
    data = bytearray((model / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (model / "model.safetensors").write_bytes(bytes(data))
    out, err = cli("verify", bom, "--key", public, "--model", model, "--json", code=1)
    assert json.loads(out)["failed"] == "model" and "model.safetensors has changed" in err


def test_missing_and_extra_model_files(signed, cli):
    model, bom, _, public, _ = signed
    (model / "vocab.txt").unlink()
    (model / "extra.bin").write_bytes(b"x")
    _, err = cli("verify", bom, "--key", public, "--model", model, code=1)
    assert "vocab.txt is missing" in err and "extra.bin is not in the BOM" in err


def test_edited_bom(signed, cli):
    _, bom, _, public, _ = signed
    doc = json.loads(bom.read_text())
    doc["metadata"]["component"]["version"] = "2.0"
    bom.write_text(json.dumps(doc))
    assert check_failed(cli, bom, "--key", public, "--bundle", f"{bom}.sigstore.json") == "bom"


def test_reformatted_bom_still_verifies(signed, cli):
    _, bom, _, public, bundle = signed
    bom.write_text(json.dumps(json.loads(bom.read_text()), indent=None, sort_keys=True))
    cli("verify", bom, "--key", public, "--bundle", bundle)


def test_bundle_for_another_bom(signed, cli, tmp_path):
    model, _bom, _private, public, bundle = signed
    other = tmp_path / "other.json"
    mlbom.generate(model, version="9.9").write(other)
    assert check_failed(cli, other, "--key", public, "--bundle", bundle) == "bom"


def test_wrong_key(signed, cli, tmp_path):
    _, bom, _, _, _bundle = signed
    cli("keygen", "-o", tmp_path / "other")
    assert check_failed(cli, bom, "--key", tmp_path / "other.pub") == "bundle"


def test_hint_stripped_still_needs_the_signature(signed, cli, tmp_path):
    _, bom, _, _, bundle = signed
    doc = json.loads(bundle.read_text())
    doc["verificationMaterial"]["publicKey"]["hint"] = ""
    doc["dsseEnvelope"]["signatures"][0]["keyid"] = ""
    bundle.write_text(json.dumps(doc))
    cli("keygen", "-o", tmp_path / "other")
    assert check_failed(cli, bom, "--key", tmp_path / "other.pub") == "bundle"


def test_payload_type_swapped(signed, cli):
    _, bom, private, public, bundle = signed
    doc = json.loads(bundle.read_text())
    doc["dsseEnvelope"]["payloadType"] = "application/json"  # the signature no longer holds
    bundle.write_text(json.dumps(doc))
    assert check_failed(cli, bom, "--key", public) == "bundle"
    resign(bundle, private, lambda s: "application/json")  # validly signed, wrong type
    assert check_failed(cli, bom, "--key", public) == "payload"


def test_other_predicate_type(signed, cli):
    _, bom, private, public, bundle = signed
    resign(bundle, private, lambda s: s.update(predicateType="https://spdx.dev/Document"))
    assert check_failed(cli, bom, "--key", public) == "payload"


def test_extra_subject(signed, cli):
    _, bom, private, public, bundle = signed
    resign(
        bundle,
        private,
        lambda s: s["subject"].append({"name": "evil.py", "digest": {"sha256": "0" * 64}}),
    )
    _, err = cli("verify", bom, "--key", public, code=1)
    assert "(subjects)" in err and "extra subjects: evil.py" in err


def test_truncated_and_garbage_bundles(signed, cli):
    _, bom, _, public, bundle = signed
    text = bundle.read_text()
    for broken in (text[: len(text) // 2], "", "[]", '{"mediaType": "x"}', "\x00" * 10):
        bundle.write_text(broken)
        assert check_failed(cli, bom, "--key", public) == "bundle"


def test_keyless_bundle_given_a_key(signed, cli):
    _, bom, _, public, bundle = signed
    doc = json.loads(bundle.read_text())
    doc["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}, "tlogEntries": []}
    bundle.write_text(json.dumps(doc))
    _, err = cli("verify", bom, "--key", public, code=1)
    assert "signed keylessly" in err


def test_library_calls(signed):
    import attest

    model, bom, private, public, _ = signed
    document = json.loads(bom.read_text())
    bundle = attest.sign(document, key=keys.load_private_key(private, "s3cret"))
    result = attest.verify(
        document, bundle, attest.ExpectedSigner(key=keys.load_public_key(public)), model=model
    )
    assert result.passed == ["bundle", "payload", "bom", "subjects", "model"]
    assert result.subjects == subjects(document)
    assert PREDICATE_TYPE in bundle or "payload" in bundle


@pytest.mark.parametrize(
    "spelling", [lambda h: h + "\n", lambda h: h + " ", str.upper, lambda h: "sha256:" + h]
)
def test_sign_refuses_a_file_digest_in_another_spelling(tmp_path, cli, spelling):
    model = hf_folder(tmp_path / "model")
    bom = tmp_path / "bom.cdx.json"
    document = mlbom.generate(model).to_dict()
    files = [c for c in document["components"] if c["type"] == "file"]
    sha = next(h for h in files[0]["hashes"] if h["alg"] == "SHA-256")
    sha["content"] = spelling(sha["content"])
    bom.write_text(json.dumps(document))
    cli("keygen", "-o", tmp_path / "k")
    _, err = cli("sign", bom, "--key", tmp_path / "k.key", code=2)
    assert "has no SHA-256" in err and not Path(f"{bom}.sigstore.json").exists()


@pytest.mark.parametrize("content", ["not json", "{}", '{"mediaType": 5}', ""])
def test_a_trusted_root_that_is_not_one_is_refused(signed, cli, tmp_path, content):
    _, bom, _, _, _ = signed
    (tmp_path / "root.json").write_text(content)
    _, err = cli(
        "verify", bom, "--cert-identity", "a@example.com", "--cert-oidc-issuer",
        "https://issuer.example", "--trusted-root", tmp_path / "root.json", code=2,
    )  # fmt: skip
    assert "is not a Sigstore trusted root" in err
    _, err = cli(
        "verify", bom, "--cert-identity", "a@example.com", "--cert-oidc-issuer",
        "https://issuer.example", "--trusted-root", tmp_path / "missing.json", code=2,
    )  # fmt: skip
    assert "cannot read" in err
