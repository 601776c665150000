"""Model references and attestation stores: the local folder and the Hub repository (the OCI
registry store has its own tests), the push / pull / verify --store commands, and many
concurrent writers into one folder."""

from __future__ import annotations

import json
import multiprocessing

import pytest

import attest
import mlbom
from attest import keys
from attest.stores import (
    Attestation,
    CorruptEntryError,
    NoAttestationError,
    StoreAuthError,
    StoreUnreachableError,
    bom_reference,
    open_store,
)
from mlbom.references import ModelRef, parse
from mlbom.sources import pin
from tests.builders import COMMIT, REPO, hf_folder, repo_files
from tests.hub_standin import HubStandIn, Repo

HF = f"hf://acme/model@{'a' * 40}"


@pytest.mark.parametrize(
    ("text", "kind", "name", "digest", "tag"),
    [
        (HF, "hf", "acme/model", "a" * 40, None),
        ("hf://acme/model", "hf", "acme/model", None, "main"),
        ("hf://acme/model@v1.0", "hf", "acme/model", None, "v1.0"),
        ("oci://ghcr.io/acme/llm:q4", "oci", "ghcr.io/acme/llm", None, "q4"),
        ("oci://localhost:5000/models/x", "oci", "localhost:5000/models/x", None, "latest"),
        (f"oci://r.io/m@sha256:{'b' * 64}", "oci", "r.io/m", f"sha256:{'b' * 64}", None),
        (f"sha256:{'c' * 64}", "local", f"sha256:{'c' * 64}", f"sha256:{'c' * 64}", None),
    ],
)
def test_parse(text, kind, name, digest, tag):
    ref = parse(text)
    assert (ref.kind, ref.name, ref.digest, ref.tag) == (kind, name, digest, tag)
    assert ref.pinned == (digest is not None)
    if digest:
        assert str(parse(str(ref))) == str(ref)


@pytest.mark.parametrize(
    "text", ["oci://r.io/m@sha1:abc", "oci://R.io/UPPER", "s3://bucket/model", "hf://a/b/c"]
)
def test_parse_refuses(text):
    with pytest.raises(mlbom.errors.BadInputError):
        parse(text)


def test_unpinned_is_never_treated_as_pinned():
    with pytest.raises(mlbom.errors.BadInputError, match="not pinned"):
        parse("hf://acme/model@main").require_pinned()


@pytest.mark.parametrize("text", ["sha256:" + "a" * 64, "hf://acme/model@" + "c" * 40])
def test_a_trailing_newline_is_another_spelling(text):
    assert parse(text).pinned
    assert not parse(text + "\n").pinned


def test_folder_digest_equals_model_signings(tmp_path):
    import model_signing
    from cryptography.hazmat.primitives import serialization

    model = hf_folder(tmp_path / "model")
    key = keys.generate("ecdsa-p256")
    pem = tmp_path / "k.pem"
    pem.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))  # fmt: skip
    signature = tmp_path / "model.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=pem).sign(model, signature)
    envelope = json.loads(signature.read_text())["dsseEnvelope"]
    import base64

    subject = json.loads(base64.b64decode(envelope["payload"]))["subject"][0]
    ref = pin(str(model))
    assert ref.digest == "sha256:" + subject["digest"]["sha256"]
    bom = mlbom.generate(model).to_dict()
    assert bom_reference(bom).digest == ref.digest  # the same key from the BOM alone


def test_folder_key_counts_every_file_generate_lists(tmp_path):
    """A folder is filed under the files its BOM lists: git files, caches and bytecode too,
    so the key from the folder and the key from its BOM agree."""
    model = hf_folder(tmp_path / "model")
    for name in (".git/HEAD", ".gitattributes", "__pycache__/m.cpython-311.pyc"):
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_bytes(b"x")
    bom = mlbom.generate(model).to_dict()
    assert bom_reference(bom).digest == pin(str(model)).digest
    (model / "__pycache__" / "planted.pyc").write_bytes(b"y")
    assert bom_reference(bom).digest != pin(str(model)).digest
    (model / "loop").symlink_to("loop")
    with pytest.raises(mlbom.errors.BadInputError, match="loop cannot be read"):
        pin(str(model))


def test_hub_reference_resolves_to_its_commit(hub):
    assert pin(f"hf://{REPO}@v1.0") == ModelRef("hf", REPO, COMMIT, "v1.0")


# -- the folder store ----------------------------------------------------------------------


@pytest.fixture
def signed(tmp_path):
    model = hf_folder(tmp_path / "model")
    document = mlbom.generate(model, version="1.0").to_dict()
    key = keys.generate("ed25519")
    bom = json.dumps(document).encode()
    return model, document, Attestation(bom, attest.sign(document, key=key).encode()), key


def test_folder_round_trip(tmp_path, signed):
    model, _document, attestation, _key = signed
    store = open_store(str(tmp_path / "store"))
    ref = pin(str(model))
    store.push(ref, attestation)
    assert store.pull(ref) == attestation
    assert [str(m) for m in store.models()] == [str(ref)]
    found_ref, found = attest.attestation_for(str(model), str(tmp_path / "store"))
    assert found_ref == ref and found == attestation
    again = Attestation(attestation.bom, attestation.bundle + b"\n")
    store.push(ref, again)  # a newer attestation replaces the entry
    assert store.pull(ref) == again
    objects = list((tmp_path / "store" / "objects").iterdir())
    assert len(objects) == 1  # the replaced object is gone


def test_folder_errors(tmp_path, signed):
    _, _, attestation, _ = signed
    ref = ModelRef("hf", "acme/model", "a" * 40)
    with pytest.raises(StoreUnreachableError):
        open_store(str(tmp_path / "nowhere")).pull(ref)
    store = open_store(str(tmp_path / "store"))
    store.push(ModelRef("hf", "acme/other", "b" * 40), attestation)
    with pytest.raises(NoAttestationError):
        store.pull(ref)
    store.push(ref, attestation)
    entry = tmp_path / "store" / "entries" / "hf" / "acme" / "model" / ("a" * 40)
    (entry / "mlbom.cdx.json.sigstore.json").write_bytes(b"\x00garbage")
    with pytest.raises(CorruptEntryError):
        store.pull(ref)
    with pytest.raises(mlbom.errors.BadInputError, match="not pinned"):
        store.push(ModelRef("hf", "acme/model", None, "main"), attestation)


def test_folder_finds_hub_models_whatever_their_case(tmp_path, signed):
    _, _, attestation, _ = signed
    store = open_store(str(tmp_path / "store"))
    store.push(ModelRef("hf", "Acme/Model", "a" * 40), attestation)
    assert (tmp_path / "store" / "entries" / "hf" / "acme" / "model" / ("a" * 40)).is_symlink()
    for name in ("acme/model", "ACME/MODEL", "Acme/Model"):
        assert store.pull(ModelRef("hf", name, "a" * 40)) == attestation
    # an entry filed in its own case before names were folded is still found
    legacy = tmp_path / "store" / "entries" / "hf" / "Old" / "Model"
    legacy.mkdir(parents=True)
    (legacy / ("b" * 40)).symlink_to((tmp_path / "store" / "entries" / "hf" / "acme" / "model" / ("a" * 40)).resolve())  # fmt: skip
    assert store.pull(ModelRef("hf", "Old/Model", "b" * 40)) == attestation
    with pytest.raises(NoAttestationError):
        store.pull(ModelRef("hf", "Other/Model", "a" * 40))


def test_folder_never_deletes_outside_its_objects(tmp_path, signed):
    _, _, attestation, _ = signed
    ref = ModelRef("hf", "acme/model", "a" * 40)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    entry = tmp_path / "store" / "entries" / "hf" / "acme" / "model" / ("a" * 40)
    entry.parent.mkdir(parents=True)
    entry.symlink_to(victim)  # planted by someone with write access to the store
    open_store(str(tmp_path / "store")).push(ref, attestation)
    assert (victim / "keep.txt").read_text() == "mine"


def _writer(store: str, index: int, attestation: Attestation) -> None:
    target = open_store(store)
    for round_ in range(5):
        target.push(ModelRef("hf", f"acme/m{index % 4}", f"{index % 4:040x}"), attestation)
        target.push(ModelRef("hf", f"acme/w{index}", f"{round_:040x}"), attestation)


def test_many_concurrent_writers(tmp_path, signed):
    _, _document, attestation, key = signed
    store = str(tmp_path / "store")
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_writer, args=(store, i, attestation)) for i in range(8)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    opened = open_store(store)
    models = opened.models()
    assert len(models) == 4 + 8 * 5
    signer = attest.ExpectedSigner(key=key.public_key())
    for ref in models:
        found = opened.pull(ref)
        attest.verify(json.loads(found.bom), found.bundle, signer)
    assert not [p for p in (tmp_path / "store" / "objects").iterdir() if p.name.endswith(".tmp")]


# -- the Hub store -------------------------------------------------------------------------


@pytest.fixture
def hub(tmp_path, monkeypatch):
    standin = HubStandIn()
    standin.repos[REPO] = Repo(repo_files(tmp_path), branches={"v1.0": COMMIT})
    monkeypatch.setenv("HF_ENDPOINT", standin.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_TOKEN", "hf_writer")
    yield standin
    standin.close()


def test_hub_store_round_trip(hub, signed):
    _, _, attestation, _ = signed
    store = open_store(f"hf://{REPO}")
    ref = ModelRef("hf", REPO, COMMIT)
    with pytest.raises(NoAttestationError):
        store.pull(ref)  # nothing committed at the model's commit
    where = store.push(ref, attestation)
    new_commit = where.rsplit("@", 1)[1]
    assert hub.repos[REPO].commit == new_commit != COMMIT
    assert store.pull(ModelRef("hf", REPO, new_commit)) == attestation
    with pytest.raises(mlbom.errors.BadInputError, match="its own model"):
        store.pull(ModelRef("hf", "acme/other", new_commit))
    # a Hub model generated after the push lists every file of that commit, the attestation
    # of the earlier commit too: a server that downloads the snapshot gets those bytes
    bom = mlbom.generate(f"hf://{REPO}@{new_commit}").to_dict()
    assert "mlbom.cdx.json" in {c["name"] for c in bom["components"]}


def test_hub_store_errors(hub, signed, monkeypatch):
    _, _, attestation, _ = signed
    store = open_store(f"hf://{REPO}")
    ref = ModelRef("hf", REPO, store.push(ModelRef("hf", REPO, COMMIT), attestation).rsplit("@")[1])
    hub.repos[REPO].gated = True  # and this token was not granted access
    with pytest.raises(StoreAuthError):
        store.pull(ref)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(StoreUnreachableError):
        open_store(f"hf://{REPO}").pull(ref)


# -- the commands --------------------------------------------------------------------------


def test_push_pull_verify_through_a_folder(cli, tmp_path):
    model = hf_folder(tmp_path / "model")
    bom = tmp_path / "bom.json"
    mlbom.generate(model, version="1.0").write(bom)
    cli("keygen", "-o", tmp_path / "k")
    cli("sign", bom, "--key", tmp_path / "k.key")
    store = tmp_path / "store"
    cli("push", bom, "--to", store)
    out, _ = cli("verify", model, "--store", store, "--key", tmp_path / "k.pub", "--model", model)
    assert out.startswith("verified:")
    cli("pull", model, "--from", store, "-o", tmp_path / "pulled")
    assert json.loads((tmp_path / "pulled" / "mlbom.cdx.json").read_text()) == json.loads(
        bom.read_text()
    )
    cli("verify", tmp_path / "pulled" / "mlbom.cdx.json", "--key", tmp_path / "k.pub")

    other = hf_folder(tmp_path / "other")
    (other / "vocab.txt").write_text("changed\n")
    out, err = cli("verify", other, "--store", store, "--key", tmp_path / "k.pub", "--json", code=1)
    assert "no attestation" in err and json.loads(out)["failed"] == "attestation"
    _, err = cli("verify", model, "--store", tmp_path / "none", "--key", tmp_path / "k.pub", code=2)
    assert "does not exist" in err


def test_push_refuses_a_bundle_for_another_bom(cli, tmp_path):
    model = hf_folder(tmp_path / "model")
    bom, other = tmp_path / "bom.json", tmp_path / "other.json"
    mlbom.generate(model, version="1.0").write(bom)
    mlbom.generate(model, version="2.0").write(other)
    cli("keygen", "-o", tmp_path / "k")
    cli("sign", other, "--key", tmp_path / "k.key")
    _, err = cli("push", bom, "--bundle", f"{other}.sigstore.json", "--to", tmp_path / "s", code=2)
    assert "attests another BOM" in err and not (tmp_path / "s").exists()


@pytest.mark.parametrize("payload", ["bm90IGpzb24=", "é", 5, None])
def test_push_refuses_a_bundle_without_a_readable_statement(cli, tmp_path, payload):
    model = hf_folder(tmp_path / "model")
    bom = tmp_path / "bom.json"
    mlbom.generate(model).write(bom)
    cli("keygen", "-o", tmp_path / "k")
    cli("sign", bom, "--key", tmp_path / "k.key")
    bundle = bom.with_name(bom.name + ".sigstore.json")
    document = json.loads(bundle.read_text())
    document["dsseEnvelope"]["payload"] = payload
    bundle.write_text(json.dumps(document))
    _, err = cli("push", bom, "--to", tmp_path / "s", code=2)
    assert "holds no in-toto statement" in err and not (tmp_path / "s").exists()


def test_push_to_hub(cli, hub, tmp_path):
    bom = tmp_path / "bom.json"
    mlbom.generate(f"hf://{REPO}@{COMMIT}").write(bom)
    cli("keygen", "-o", tmp_path / "k")
    cli("sign", bom, "--key", tmp_path / "k.key")
    _, err = cli("push", bom, "--to", f"hf://{REPO}")
    new = hub.repos[REPO].commit
    assert f"hf://{REPO}@{new}" in err
    out, _ = cli(
        "verify", f"hf://{REPO}@{new}", "--store", f"hf://{REPO}", "--key", tmp_path / "k.pub"
    )
    assert out.startswith("verified:")


@pytest.mark.parametrize(
    ("location", "reference", "holds"),
    [
        ("oci://r.example/models/m", "oci://r.example/models/m@sha256:" + "a" * 64, True),
        ("oci://r.example/models/m", "oci://r.example/models/other@sha256:" + "a" * 64, True),
        ("oci://r.example/models/m", "hf://acme/m@" + "a" * 40, True),  # under a tag
        ("oci://r.example/models/m", "sha256:" + "a" * 64, True),
        ("hf://acme/m", "hf://ACME/M@" + "a" * 40, True),  # the Hub's names ignore case
        ("hf://acme/m", "hf://acme/m2@" + "a" * 40, False),
        ("hf://acme/m", "sha256:" + "a" * 64, False),
        ("/srv/attestations", "sha256:" + "a" * 64, True),
        ("/srv/attestations", "hf://acme/m@" + "a" * 40, True),
    ],
)
def test_which_store_can_hold_which_model(location, reference, holds):
    from attest.stores import can_hold
    from mlbom.references import parse

    assert can_hold(location, parse(reference)) is holds


def test_verify_from_a_store_refuses_another_models_attestation_filed_under_the_name(cli, tmp_path):  # fmt: skip
    """A store is not trusted to file correctly: a validly signed BOM of another model, filed
    under this model's name, is refused (the webhook's binding, in `mlbom verify` too)."""
    model, other = hf_folder(tmp_path / "model"), hf_folder(tmp_path / "other")
    (other / "vocab.txt").write_text("other\n")
    bom = tmp_path / "other.json"
    mlbom.generate(other, version="1.0").write(bom)
    cli("keygen", "-o", tmp_path / "k")
    cli("sign", bom, "--key", tmp_path / "k.key")
    from mlbom.sources import pin

    cli("push", bom, "--to", tmp_path / "store", "--model", str(pin(str(model))))
    out, err = cli("verify", model, "--store", tmp_path / "store", "--key", tmp_path / "k.pub", "--json", code=1)  # fmt: skip
    assert json.loads(out)["failed"] == "subjects" and "describes" in err


def test_the_webhook_admits_the_commit_a_hub_store_push_made(cli, hub, tmp_path):
    """`push --to hf://` commits the BOM of C on top of C; the webhook verifies the new commit
    (it holds exactly the BOM's files besides the attestation), and refuses it once another
    file is committed beside them."""
    from admission.policy_loader import parse_policy
    from admission.verification import ModelVerifier
    from tests.hub_standin import File

    bom = tmp_path / "bom.json"
    mlbom.generate(f"hf://{REPO}@{COMMIT}").write(bom)
    cli("keygen", "-o", tmp_path / "k")
    cli("sign", bom, "--key", tmp_path / "k.key")
    cli("push", bom, "--to", f"hf://{REPO}")
    new = hub.repos[REPO].commit
    policy = parse_policy(
        f"apiVersion: mlbom.dev/v1\nkind: AdmissionPolicy\nstores: [hf://{REPO}]\n"
        f"trust: {{signers: [{{name: ci, key: {{path: {tmp_path / 'k.pub'}}}}}]}}\n"
        "requirements: {unsafePickleImports: allow}\n"  # the test repository has such pickles
    )
    verdict = ModelVerifier(policy).check_now(f"hf://{REPO}@{new}")
    assert verdict.ok, verdict.reason
    hub.repos[REPO].files["planted.py"] = File(b"import os\n", 0, lfs=False)
    verdict = ModelVerifier(policy).check_now(f"hf://{REPO}@{new}")
    assert not verdict.ok and "describes" in verdict.reason


def test_a_store_mlbom_cannot_open_is_refused_before_the_model_is_pinned(cli, tmp_path):
    key = tmp_path / "k"
    cli("keygen", "-o", key)
    for command in (
        ["verify", tmp_path / "no-such-model", "--store", "ftp://x", "--key", f"{key}.pub"],
        ["pull", tmp_path / "no-such-model", "--from", "ftp://x", "-o", tmp_path / "out"],
    ):
        _, err = cli(*command, code=2)
        assert "unsupported store ftp://x" in err, err
