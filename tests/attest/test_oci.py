"""OCI-packaged models and the OCI attestation store, against a real CNCF distribution
registry on loopback (tests/registry.py) with models pushed by the oras SDK: the BOM from
the manifest and ranged blob reads (no weight downloaded whole), and attestations as
cosign-style referrers through the referrers tag schema, with each failure told apart."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import pytest
import requests
from packageurl import PackageURL

import mlbom
from attest import keys
from attest.sign import BUNDLE_MEDIA_TYPE, sign
from attest.statement import canonical
from attest.stores import (
    Attestation,
    CorruptEntryError,
    NoAttestationError,
    StoreAuthError,
    StoreUnreachableError,
    open_store,
)
from attest.stores.oci import OciStore
from mlbom._clients.registry import (
    OCI_INDEX,
    OCI_MANIFEST,
    Registry,
    manifest_files,
    resolve_digest,
)
from mlbom.errors import BadInputError
from mlbom.references import ModelRef
from mlbom.sources import pin
from tests.builders import (
    CARD,
    file_component,
    gguf_file,
    hf_folder,
    onnx_file,
    prop,
    safetensors_head,
)
from tests.registry import blob_reads, free_port, push_model, running_registry

WEIGHTS = ("model.safetensors", "tiny.Q8_0.gguf", "onnx/model.onnx")
SMALL = ("README.md", "config.json", "tokenizer.json")
USERS = {"alice": "correct horse"}


def model_folder(root: Path) -> Path:
    """A model whose weights are large enough that reading one whole would show."""
    root.mkdir(parents=True)
    head, size = safetensors_head({f"layer.{i}.weight": (256, 1024) for i in range(4)})  # 2 MiB
    (root / WEIGHTS[0]).write_bytes(head + bytes(size - len(head)))
    gguf = gguf_file(root / "src" / "tiny.gguf").read_bytes()
    (root / "src" / "tiny.gguf").unlink()
    (root / "src").rmdir()
    (root / WEIGHTS[1]).write_bytes(gguf + bytes(1 << 20))  # trailing padding, as tensor data
    onnx_file(root / WEIGHTS[2])
    (root / SMALL[0]).write_text(CARD)
    config = {"architectures": ["BertForSequenceClassification"], "model_type": "bert"}
    (root / SMALL[1]).write_text(json.dumps(config))
    (root / SMALL[2]).write_text('{"version": "1.0"}')
    (root / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with running_registry(tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture(scope="module")
def model(registry, tmp_path_factory):
    """The model pushed as models/x:v1: (folder, manifest digest, repository name)."""
    folder = model_folder(tmp_path_factory.mktemp("model") / "x")
    digest = push_model(registry, "models/x:v1", folder)
    return folder, digest, f"{registry.host}/models/x"


@pytest.fixture
def no_docker_login(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_generate_from_a_tag_without_downloading_weights(cli, registry, model, no_docker_login):
    folder, digest, name = model
    mark = registry.mark()
    bom, err = cli.bom(f"oci://{name}:v1")
    accesses = registry.since(mark)

    component = bom["metadata"]["component"]
    assert component["name"] == name and component["version"] == digest
    purl = PackageURL.from_string(component["purl"])
    assert (purl.type, purl.namespace, purl.name, purl.version) == ("oci", None, "x", digest)
    assert purl.qualifiers == {"repository_url": name}
    assert prop(component, "mlbom:source") == f"oci://{name}@{digest}"
    assert prop(component, "mlbom:source:tag") == "v1"

    # every file's SHA-256 is its layer digest; weights carry only that one
    names = {c["name"] for c in bom["components"] if c["type"] == "file"}
    assert names == set(WEIGHTS) | set(SMALL) | {".gitattributes"}  # every layer is listed
    for path in WEIGHTS:
        shard = file_component(bom, path)
        assert shard["hashes"] == [{"alg": "SHA-256", "content": sha256(folder / path)}]
        assert prop(shard, "mlbom:sha256-only") is not None
    assert "3 large files carry only the SHA-256" in err
    for path in SMALL:  # fetched, checked and hashed here
        body = (folder / path).read_bytes()
        assert {h["alg"]: h["content"] for h in file_component(bom, path)["hashes"]} == {
            "SHA-256": hashlib.sha256(body).hexdigest(),
            "SHA-512": hashlib.sha512(body).hexdigest(),
        }

    # header facts through ranged reads
    assert prop(file_component(bom, WEIGHTS[0]), "mlbom:parameter-count") == str(4 * 256 * 1024)
    gguf = file_component(bom, WEIGHTS[1])
    assert prop(gguf, "mlbom:gguf:architecture") == "llama"
    assert prop(gguf, "mlbom:quantization") == "MOSTLY_Q8_0"
    assert prop(file_component(bom, WEIGHTS[2]), "mlbom:onnx:producer") == "acme-exporter 2.1"
    assert model_is_card_named(bom)

    # the registry's own access log: weights only ever answered by range, a few KiB each
    for path in WEIGHTS[:2]:
        reads = blob_reads(accesses, f"sha256:{sha256(folder / path)}")
        assert reads and all(r.status == 206 for r in reads), reads
        assert sum(r.size for r in reads) <= 256 << 10 < (folder / path).stat().st_size
    assert [a.path for a in accesses if "/manifests/" in a.path] == ["/v2/models/x/manifests/v1"]


def model_is_card_named(bom: dict) -> bool:
    """What the card says is in the BOM as for a local folder."""
    model = bom["metadata"]["component"]
    return model["licenses"][0] == {"license": {"id": "Apache-2.0"}} and any(
        c["type"] == "data" for c in bom["components"]
    )


def test_generate_by_digest(cli, registry, model, no_docker_login):
    _, digest, name = model
    mark = registry.mark()
    bom, _ = cli.bom(f"oci://{name}@{digest}", "-q")
    component = bom["metadata"]["component"]
    assert component["version"] == digest and prop(component, "mlbom:source:tag") is None
    manifests = [a.path for a in registry.since(mark) if "/manifests/" in a.path]
    assert manifests == [f"/v2/models/x/manifests/{digest}"]


def test_hash_sha512_streams_the_weights(cli, registry, model, no_docker_login):
    folder, _, name = model
    mark = registry.mark()
    bom, _ = cli.bom(f"oci://{name}:v1", "--hash", "sha256", "--hash", "sha512", "-q")
    body = (folder / WEIGHTS[0]).read_bytes()
    shard = file_component(bom, WEIGHTS[0])
    assert {h["alg"]: h["content"] for h in shard["hashes"]} == {
        "SHA-256": hashlib.sha256(body).hexdigest(),
        "SHA-512": hashlib.sha512(body).hexdigest(),
    }
    assert prop(shard, "mlbom:sha256-only") is None
    whole = [
        r
        for r in blob_reads(registry.since(mark), f"sha256:{sha256(folder / WEIGHTS[0])}")
        if r.status == 200
    ]
    assert sum(r.size for r in whole) == len(body)


def test_resolve_digest_and_manifest_files(model, no_docker_login):
    folder, digest, name = model
    assert resolve_digest(name, "v1") == digest
    assert pin(f"oci://{name}:v1") == ModelRef("oci", name, digest, "v1")
    expected = {p: sha256(folder / p) for p in (*WEIGHTS, *SMALL, ".gitattributes")}
    assert manifest_files(ModelRef("oci", name, digest)) == expected
    assert manifest_files(ModelRef("oci", name, None, "v1")) == expected


def test_missing_model_and_unreachable_registry(cli, registry, model, no_docker_login):
    _, err = cli("generate", f"oci://{registry.host}/models/nothing:v1", code=2)
    assert "no such model" in err
    _, err = cli("generate", f"oci://{model[2]}:v9", code=2)
    assert "no such model" in err
    started = time.monotonic()
    _, err = cli("generate", f"oci://127.0.0.1:{free_port()}/models/x:v1", code=2)
    assert "cannot reach" in err and time.monotonic() - started < 5  # no retry loop


def put_manifest(client: Registry, repository: str, reference: str, manifest: dict) -> str:
    data = json.dumps(manifest).encode()
    client.push_manifest(repository, reference, data, manifest.get("mediaType", OCI_MANIFEST))
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("title", "message"),
    [
        ("../escape.json", "invalid path"),
        ("/etc/passwd", "invalid path"),
        ("a/./b.json", "invalid path"),
        (None, "has no org.opencontainers.image.title"),
        ("dup.json", "two layers are named dup.json"),
    ],
)
def test_hostile_manifests_are_refused(cli, registry, no_docker_login, title, message):
    client = Registry(registry.host)
    blob = client.push_blob("models/hostile", b'{"a": 1}', "application/json")
    config = client.push_blob("models/hostile", b"{}", "application/vnd.oci.empty.v1+json")
    layer = {**blob, "annotations": {"org.opencontainers.image.title": title} if title else {}}
    layers = [layer, layer] if title == "dup.json" else [layer]
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
    put_manifest(client, "models/hostile", "bad", manifest)
    _, err = cli("generate", f"oci://{registry.host}/models/hostile:bad", code=2)
    assert message in err


def test_an_index_is_refused_with_its_manifests(cli, registry, model, no_docker_login):
    client = Registry(registry.host)
    _, digest, _ = model
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": 1}],
    }
    put_manifest(client, "models/x", "multi", index)
    _, err = cli("generate", f"oci://{registry.host}/models/x:multi", code=2)
    assert "is an image index" in err and digest in err


# The attestation store


def signed(model_dir_bom: dict, key) -> tuple[bytes, bytes]:
    bom_bytes = json.dumps(model_dir_bom).encode()
    return bom_bytes, sign(model_dir_bom, key=key).encode()


@pytest.fixture(scope="module")
def key():
    return keys.generate()


def test_store_round_trip_through_the_referrers_tag_schema(registry, model, key, no_docker_login):
    from attest import ExpectedSigner, verify

    _, digest, name = model
    ref = ModelRef("oci", name, digest)
    bom = mlbom.generate(f"oci://{name}@{digest}", version="1.0").to_dict()
    store = open_store(f"oci://{name}")
    assert isinstance(store, OciStore)
    bom_bytes, bundle = signed(bom, key)
    where = store.push(ref, Attestation(bom_bytes, bundle))
    referrer = where.rpartition("@")[2]
    assert where == f"oci://{name}@{referrer}"

    # the index tagged sha256-<hex> lists the referrer as cosign writes it
    url = f"{registry.url}/v2/models/x/manifests/{digest.replace(':', '-')}"
    index = requests.get(url, headers={"Accept": OCI_INDEX}, timeout=5).json()
    assert index["mediaType"] == OCI_INDEX
    [entry] = index["manifests"]
    assert entry["digest"] == referrer and entry["artifactType"] == BUNDLE_MEDIA_TYPE
    assert entry["annotations"]["dev.sigstore.bundle.predicateType"] == "https://cyclonedx.org/bom"
    assert entry["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"
    manifest = requests.get(
        f"{registry.url}/v2/models/x/manifests/{referrer}",
        headers={"Accept": OCI_MANIFEST},
        timeout=5,
    ).json()
    assert manifest["artifactType"] == BUNDLE_MEDIA_TYPE
    assert manifest["subject"]["digest"] == digest
    assert manifest["subject"]["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == [BUNDLE_MEDIA_TYPE]
    assert manifest["annotations"] == entry["annotations"]

    pulled = store.pull(ref)
    assert pulled.bundle == bundle
    assert canonical(json.loads(pulled.bom)) == canonical(bom)
    verify(json.loads(pulled.bom), pulled.bundle, ExpectedSigner(key=key.public_key()))

    # a newer attestation wins; both stay listed
    newer = mlbom.generate(f"oci://{name}@{digest}", version="2.0").to_dict()
    store.push(ref, Attestation(*signed(newer, key)))
    assert json.loads(store.pull(ref).bom)["metadata"]["component"]["version"] == "2.0"
    index = requests.get(url, headers={"Accept": OCI_INDEX}, timeout=5).json()
    assert len(index["manifests"]) == 2


def test_store_refusals(registry, model, key, no_docker_login):
    _, digest, name = model
    store = OciStore(f"oci://{name}")
    bom = mlbom.generate(f"oci://{name}@{digest}").to_dict()
    attestation = Attestation(*signed(bom, key))
    with pytest.raises(BadInputError, match="not pinned"):
        store.push(ModelRef("oci", name, None, "v1"), attestation)
    with pytest.raises(BadInputError, match="does not sign this BOM"):
        store.push(
            ModelRef("oci", name, digest),
            Attestation(b'{"bomFormat": "CycloneDX"}', attestation.bundle),
        )
    with pytest.raises(BadInputError, match="no such manifest"):
        store.push(ModelRef("oci", name, "sha256:" + "0" * 64), attestation)
    for location in (f"oci://{name}:v1", f"oci://{name}@{digest}"):
        with pytest.raises(BadInputError, match="not an OCI store"):
            OciStore(location)


def test_models_that_are_no_artifact_are_filed_under_a_tag(registry, key, tmp_path, no_docker_login):  # fmt: skip
    """A local folder's and a Hub commit's attestation in one registry repository, each
    under the tag mlbom-<sha256 of the reference>, as the load-time verifier reads them."""
    from admission.policy_loader import parse_policy
    from admission.verification import ModelVerifier
    from attest.stores import bom_reference
    from attest.stores.oci import model_tag

    store = OciStore(f"oci://{registry.host}/attestations")
    bom = mlbom.generate(hf_folder(tmp_path / "model")).to_dict()
    local = bom_reference(bom)
    attestation = Attestation(*signed(bom, key))
    assert (
        store.push(local, attestation) == f"oci://{registry.host}/attestations:{model_tag(local)}"
    )
    assert canonical(json.loads(store.pull(local).bom)) == canonical(bom)
    assert store.pull(local).bundle == attestation.bundle
    hub = ModelRef("hf", "Acme/LLM", "a" * 40)
    with pytest.raises(NoAttestationError, match="no tag mlbom-"):
        store.pull(hub)
    store.push(hub, attestation)  # the caller checks that the BOM describes the model
    assert store.pull(ModelRef("hf", "acme/llm", "a" * 40)).bundle == attestation.bundle  # any case
    # the webhook verifies the local folder's BOM from there
    keys.write_key_pair(key, tmp_path / "k.key", tmp_path / "k.pub", None)
    policy = parse_policy(
        f"apiVersion: mlbom.dev/v1\nkind: AdmissionPolicy\nstores: [oci://{registry.host}/attestations]\n"
        f"trust: {{signers: [{{name: ci, key: {{path: {tmp_path / 'k.pub'}}}}}]}}\n"
    )
    assert ModelVerifier(policy).check_now(str(local)).ok
    # a tag moved to another model's attestation is refused by its annotation
    client = Registry(registry.host)
    other = ModelRef("hf", "acme/other", "b" * 40)
    store.push(other, attestation)
    moved = client.manifest("attestations", model_tag(other))
    client.push_manifest("attestations", model_tag(local), moved.data, OCI_MANIFEST)
    with pytest.raises(CorruptEntryError, match="not sha256:"):
        store.pull(local)


def test_no_attestation(registry, tmp_path, no_docker_login):
    folder = tmp_path / "y"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    digest = push_model(registry, "models/y:v1", folder)
    with pytest.raises(NoAttestationError, match="holds no attestation"):
        OciStore(f"oci://{registry.host}/models/y").pull(
            ModelRef("oci", f"{registry.host}/models/y", digest)
        )


def attach(
    client: Registry,
    repository: str,
    subject: str,
    bundle: bytes,
    annotations=None,
    *,
    in_index: bool = True,
) -> None:
    """A referrer written by hand, as another tool might, listed in the tag schema index
    (with its annotations, or, as cosign's own fallback writes it, without them)."""
    layer = client.push_blob(repository, bundle, BUNDLE_MEDIA_TYPE)
    config = client.push_blob(repository, b"{}", "application/vnd.oci.empty.v1+json")
    subject_manifest = client.manifest(repository, subject)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": config,
        "layers": [layer],
        "subject": subject_manifest.descriptor,
        "annotations": annotations or {},
    }
    digest = "sha256:" + hashlib.sha256(json.dumps(manifest).encode()).hexdigest()
    put_manifest(client, repository, digest, manifest)
    entry = {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": len(json.dumps(manifest)),
        "artifactType": BUNDLE_MEDIA_TYPE,
        "annotations": (annotations or {}) if in_index else {},
    }
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    put_manifest(client, repository, subject.replace(":", "-"), index)


def statement_bundle(statement: dict) -> bytes:
    payload = base64.b64encode(json.dumps(statement).encode()).decode()
    envelope = {"payload": payload, "payloadType": "application/vnd.in-toto+json", "signatures": []}
    return json.dumps({"mediaType": BUNDLE_MEDIA_TYPE, "dsseEnvelope": envelope}).encode()


@pytest.mark.parametrize(
    ("bundle", "message"),
    [
        (b"\x00garbage, not a bundle", "not JSON"),
        (
            statement_bundle({"predicateType": "https://slsa.dev/provenance/v1", "predicate": {}}),
            "not a CycloneDX one",
        ),
        (
            json.dumps(
                {
                    "mediaType": BUNDLE_MEDIA_TYPE,
                    "dsseEnvelope": {
                        "payload": "!!!",
                        "payloadType": "application/vnd.in-toto+json",
                    },
                }
            ).encode(),
            "not a JSON statement",
        ),
    ],
)
def test_corrupt_referrer(registry, tmp_path, bundle, message, no_docker_login):
    folder = tmp_path / "z"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"n": message}))
    digest = push_model(registry, "models/z:v1", folder)
    attach(Registry(registry.host), "models/z", digest, bundle)
    store = OciStore(f"oci://{registry.host}/models/z")
    with pytest.raises(CorruptEntryError, match=message):
        store.pull(ModelRef("oci", f"{registry.host}/models/z", digest))


@pytest.mark.parametrize("in_index", [True, False])
def test_other_attestations_are_not_taken_for_a_bom(registry, tmp_path, in_index, no_docker_login):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"w": in_index}))
    digest = push_model(registry, "models/w:v1", folder)
    provenance = statement_bundle({"predicateType": "https://slsa.dev/provenance/v1"})
    slsa = {"dev.sigstore.bundle.predicateType": "https://slsa.dev/provenance/v1"}
    attach(Registry(registry.host), "models/w", digest, provenance, slsa, in_index=in_index)
    with pytest.raises(NoAttestationError):
        OciStore(f"oci://{registry.host}/models/w").pull(
            ModelRef("oci", f"{registry.host}/models/w", digest)
        )


def test_registry_down_is_unreachable(no_docker_login):
    host = f"127.0.0.1:{free_port()}"
    store = OciStore(f"oci://{host}/models/x")
    ref = ModelRef("oci", f"{host}/models/x", "sha256:" + "a" * 64)
    started = time.monotonic()
    with pytest.raises(StoreUnreachableError, match="cannot reach"):
        store.pull(ref)
    bom = {"bomFormat": "CycloneDX"}
    bundle = statement_bundle({"predicateType": "https://cyclonedx.org/bom", "predicate": bom})
    with pytest.raises(StoreUnreachableError, match="cannot reach"):
        store.push(ref, Attestation(json.dumps(bom).encode(), bundle))
    assert time.monotonic() - started < 5


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    with running_registry(tmp_path_factory.mktemp("auth-registry"), users=USERS) as server:
        yield server


def test_credentials(cli, auth_registry, tmp_path, monkeypatch):
    folder = model_folder(tmp_path / "secret")
    digest = push_model(
        auth_registry, "models/secret:v1", folder, credentials=("alice", USERS["alice"])
    )
    name = f"{auth_registry.host}/models/secret"
    ref = ModelRef("oci", name, digest)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    for label, password in (("none", None), ("wrong", "battery staple")):
        if password:
            monkeypatch.setenv(
                "DOCKER_CONFIG",
                str(auth_registry.docker_config(tmp_path / label, "alice", password)),
            )
        else:
            monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / label))
        with pytest.raises(StoreAuthError, match="refused access") as caught:
            OciStore(f"oci://{name}").pull(ref)
        assert "docker login" in str(caught.value)
        _, err = cli("generate", f"oci://{name}:v1", code=2)
        assert "refused access" in err and "docker login" in err

    monkeypatch.setenv(
        "DOCKER_CONFIG",
        str(auth_registry.docker_config(tmp_path / "right", "alice", USERS["alice"])),
    )
    with pytest.raises(NoAttestationError):
        OciStore(f"oci://{name}").pull(ref)
    bom, _ = cli.bom(f"oci://{name}:v1", "-q")
    assert bom["metadata"]["component"]["version"] == digest
    bundle = sign(bom, key=keys.generate()).encode()
    OciStore(f"oci://{name}").push(ref, Attestation(json.dumps(bom).encode(), bundle))
    assert OciStore(f"oci://{name}").pull(ref).bundle == bundle


def test_plain_http_only_for_loopback_or_named_registries():
    from mlbom._clients.registry import plain_http

    assert plain_http("127.0.0.1:5000") and plain_http("localhost") and plain_http("127.1.2.3:80")
    assert not plain_http("registry.example:5000") and not plain_http("10.0.0.1:5000")
    assert plain_http("registry.example:5000", ["registry.example"])
    assert plain_http("registry.example:5000", ["registry.example:5000"])
    assert Registry("ghcr.io").prefix == "https"


def test_cli_generate_sign_push_pull_verify(cli, registry, tmp_path, no_docker_login):
    folder = model_folder(tmp_path / "v")
    digest = push_model(registry, "models/v:v1", folder)
    name = f"{registry.host}/models/v"
    bom = tmp_path / "v.cdx.json"
    cli("generate", f"oci://{name}:v1", "-o", bom, "-q")
    cli("keygen", "-o", tmp_path / "signer")
    cli("sign", bom, "--key", tmp_path / "signer.key")
    statement = json.loads(
        base64.b64decode(
            json.loads(Path(f"{bom}.sigstore.json").read_bytes())["dsseEnvelope"]["payload"]
        )
    )
    assert {"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}} in statement[
        "subject"
    ]

    cli("push", bom, "--to", f"oci://{name}", "-q")  # filed under the BOM's own manifest
    out = tmp_path / "pulled"
    cli("pull", f"oci://{name}:v1", "--from", f"oci://{name}", "-o", out, "-q")
    assert canonical(json.loads((out / "mlbom.cdx.json").read_bytes())) == canonical(
        json.loads(bom.read_bytes())
    )
    cli(
        "verify",
        f"oci://{name}@{digest}",
        "--store",
        f"oci://{name}",
        "--key",
        tmp_path / "signer.pub",
    )

    # a folder's BOM filed under the OCI model: its files must be the manifest's layers
    local = tmp_path / "local.cdx.json"
    cli("generate", folder, "-o", local, "-q")
    cli("sign", local, "--key", tmp_path / "signer.key")
    cli("push", local, "--to", f"oci://{name}", "--model", f"oci://{name}:v1", "-q")
    (folder / "config.json").write_text('{"changed": true}')
    cli("generate", folder, "-o", local, "-q")
    cli("sign", local, "--key", tmp_path / "signer.key", "--overwrite")
    _, err = cli("push", local, "--to", f"oci://{name}", "--model", f"oci://{name}:v1", code=2)
    assert "are not the BOM's files: config.json" in err
