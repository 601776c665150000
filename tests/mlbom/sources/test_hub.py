"""`mlbom generate hf://…` against a local Hub stand-in that speaks the Hub's wire protocol,
with the real huggingface-hub client: no weight file may be downloaded."""

from __future__ import annotations

import hashlib
import re
import shutil

import pytest

from tests.builders import CARD, COMMIT, REPO, WEIGHTS, file_component, prop, props, repo_files
from tests.hub_standin import File, HubStandIn, Repo


@pytest.fixture
def hub(tmp_path, monkeypatch):
    standin = HubStandIn()
    standin.repos[REPO] = Repo(repo_files(tmp_path), branches={"v1.0": COMMIT})
    monkeypatch.setenv("HF_ENDPOINT", standin.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no saved token of the developer
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield standin
    standin.close()


def weights_untouched(hub: HubStandIn) -> None:
    for path in WEIGHTS:
        assert hub.fetched(path) <= 256 << 10, (path, hub.fetched(path))
    full = [(m, p) for m, p, rng in hub.requests if rng is None and p.endswith(WEIGHTS)]
    assert not full, full


def test_hub_model_without_downloading_weights(cli, hub):
    bom, err = cli.bom(f"hf://{REPO}")
    model = bom["metadata"]["component"]
    assert model["purl"] == f"pkg:huggingface/{REPO}@{COMMIT}?repository_url={hub.url}"
    assert model["version"] == COMMIT
    assert {"type": "website", "url": f"{hub.url}/{REPO}/tree/{COMMIT}"} in model[
        "externalReferences"
    ]
    assert prop(model, "mlbom:source") == f"hf://{REPO}@{COMMIT}"
    weights_untouched(hub)

    files = hub.repos[REPO].files
    shard = file_component(bom, WEIGHTS[0])
    assert shard["hashes"] == [{"alg": "SHA-256", "content": files[WEIGHTS[0]].sha256}]
    assert prop(shard, "mlbom:sha256-only") == "hub-lfs-metadata"
    assert prop(shard, "mlbom:parameter-count") == str(5 * 1024 * 2048)
    assert prop(shard, "mlbom:hub:security-status") == "safe"
    assert prop(model, "mlbom:parameter-count") == str(10 * 1024 * 2048)
    assert "6 large files carry only the SHA-256 their source recorded" in err

    card = file_component(bom, "README.md")  # small files: downloaded, hashed here
    body = CARD.encode()
    assert {h["alg"]: h["content"] for h in card["hashes"]} == {
        "SHA-256": hashlib.sha256(body).hexdigest(),
        "SHA-512": hashlib.sha512(body).hexdigest(),
    }
    tokenizer = file_component(bom, "tokenizer.json")
    assert len(tokenizer["hashes"]) == 2 and prop(tokenizer, "mlbom:sha256-only") is None

    gguf = file_component(bom, WEIGHTS[2])  # GGUF header through range requests
    assert prop(gguf, "mlbom:gguf:architecture") == "llama"
    assert prop(gguf, "mlbom:quantization") == "MOSTLY_Q8_0"
    pickled = file_component(bom, WEIGHTS[3])
    assert prop(pickled, "mlbom:hub:security-status") == "unsafe"
    assert props(pickled, "mlbom:hub:unsafe-import") == ["os.system"]
    assert props(pickled, "mlbom:unsafe-import") == ["os.system"]  # our own scan, by range
    assert props(file_component(bom, WEIGHTS[5]), "mlbom:unsafe-import") == ["os.system"]
    assert prop(file_component(bom, WEIGHTS[4]), "mlbom:onnx:producer") == "acme-exporter 2.1"

    # the same content as a local folder: card, lineage, datasets
    assert model["name"] == REPO
    assert model["licenses"][0] == {"license": {"id": "Apache-2.0"}}  # the card's, then GGUF's
    ancestors = [a["name"] for a in model["pedigree"]["ancestors"]]
    assert ancestors == ["google-bert/bert-base-uncased", "meta-llama/Llama-3.2-1B"]
    data = [c["name"] for c in bom["components"] if c["type"] == "data"]
    assert sorted(data) == ["imdb", "stanfordnlp/sst2"]
    assert ".gitattributes" in {c["name"] for c in bom["components"]}  # every file is listed


def test_revision_pins_to_commit(cli, hub):
    for ref in (f"hf://{REPO}@v1.0", f"hf://{REPO}@{COMMIT}"):
        bom, _ = cli.bom(ref, "-q")
        assert bom["metadata"]["component"]["version"] == COMMIT
    assert any(p.endswith(f"/revision/{COMMIT}") for _, p, _ in hub.requests)
    # every file read names the commit, never the branch
    assert all(f"/resolve/{COMMIT}/" in p for _, p, _ in hub.requests if "/resolve/" in p)


def test_hash_sha512_streams_large_files(cli, hub):
    bom, _ = cli.bom(f"hf://{REPO}", "--hash", "sha256", "--hash", "sha512", "-q")
    f = hub.repos[REPO].files[WEIGHTS[1]]
    body = f.read(0, f.size)
    shard = file_component(bom, WEIGHTS[1])
    assert {h["alg"]: h["content"] for h in shard["hashes"]} == {
        "SHA-256": hashlib.sha256(body).hexdigest(),
        "SHA-512": hashlib.sha512(body).hexdigest(),
    }
    assert prop(shard, "mlbom:sha256-only") is None
    assert hub.fetched(WEIGHTS[1]) >= f.size


def test_streamed_bytes_must_match_the_lfs_digest(cli, hub):
    hub.repos[REPO].files[WEIGHTS[1]].sha256 = "f" * 64
    _, err = cli("generate", f"hf://{REPO}", "--hash", "sha512", "-q", code=1)
    assert f"{WEIGHTS[1]} do not match its LFS SHA-256" in err


def test_downloaded_small_file_must_match_the_hub(cli, hub):
    hub.repos[REPO].files["tokenizer.json"].sha256 = "e" * 64
    _, err = cli("generate", f"hf://{REPO}", code=1)
    assert "tokenizer.json do not match its LFS SHA-256" in err


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("hf://acme/nope", "no such model repository"),
        (f"hf://{REPO}@does-not-exist", "revision does-not-exist does not exist"),
        ("hf://acme/a/b", "is not a Hub model reference"),
        ("hf://acme/x@", "empty revision"),
        ("hf://../etc", "is not a Hub model reference"),
        (f"hf://{REPO}@{COMMIT}\n", "a space or a control character"),
        (f"hf://{REPO}@main ", "a space or a control character"),
        (f"hf://{REPO}@ma\x1bin", "a space or a control character"),
        (f"hf://{REPO}\n@{COMMIT}", "is not a Hub model reference"),
    ],
)
def test_bad_references(cli, hub, ref, message):
    _, err = cli("generate", ref, code=2)
    assert message in err


def test_private_repository_needs_the_token(cli, hub, monkeypatch):
    hub.repos[REPO].token = "hf_secret"
    _, err = cli("generate", f"hf://{REPO}", code=2)
    assert "set HF_TOKEN" in err
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    bom, _ = cli.bom(f"hf://{REPO}", "-q")
    assert bom["metadata"]["component"]["version"] == COMMIT
    weights_untouched(hub)  # and the CDN (which refuses credentials) served the ranges


def test_gated_repository(cli, hub, monkeypatch):
    hub.repos[REPO].gated = True
    _, err = cli("generate", f"hf://{REPO}", code=2)
    assert "gated model" in err and "HF_TOKEN" in err
    monkeypatch.setenv("HF_TOKEN", "hf_not_granted")
    _, err = cli("generate", f"hf://{REPO}", code=2)
    assert "gated model" in err
    hub.repos[REPO].granted = ("hf_not_granted",)
    cli.bom(f"hf://{REPO}", "-q")


@pytest.mark.parametrize(
    "where", ["/api/models/", "/paths-info/", "/resolve/.*README", "/lfs-cdn/", "/resolve/.*gguf"]
)
def test_dropped_connection(cli, hub, where):
    hub.drop = re.compile(where)
    _, err = cli("generate", f"hf://{REPO}", code=2)
    assert "network failure" in err or "connection ended" in err


def test_other_digests_for_small_files(cli, hub):
    bom, _ = cli.bom(f"hf://{REPO}", "--hash", "blake2b-256", "--hash", "sha3-512", "-q")
    card = file_component(bom, "README.md")
    assert {h["alg"] for h in card["hashes"]} == {"BLAKE2b-256", "SHA3-512"}
    shard = file_component(bom, WEIGHTS[0])  # streamed: the Hub's SHA-256 checked and kept
    assert {h["alg"] for h in shard["hashes"]} == {"BLAKE2b-256", "SHA3-512", "SHA-256"}


def test_unreachable_hub(cli, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused
    _, err = cli("generate", f"hf://{REPO}", code=2)
    assert "network failure" in err and "HF_ENDPOINT" in err


def test_hub_without_security_scans(cli, hub):
    hub.paths_info = False
    bom, err = cli.bom(f"hf://{REPO}", "-q")
    assert "offers no security scan status" in err
    assert prop(file_component(bom, WEIGHTS[0]), "mlbom:hub:security-status") is None


@pytest.mark.parametrize("path", ["../escape.json", "/abs.json", "a/../../b.json"])
def test_hostile_file_listing(cli, hub, path):
    hub.repos[REPO].files[path] = File(b"{}", 0, lfs=False)
    _, err = cli("generate", f"hf://{REPO}", code=2)
    assert "invalid file path" in err


# -- a local snapshot checked against the Hub ----------------------------------------------


@pytest.fixture
def snapshot(tmp_path, hub):
    folder = tmp_path / "snapshot"
    for path, f in hub.repos[REPO].files.items():
        if path.endswith(".safetensors"):
            continue  # 2 x 20 MiB of zeros would only slow the tests: a partial download
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(f.read(0, f.size))
    return folder


def test_source_verifies_a_local_snapshot(cli, hub, snapshot):
    bom, err = cli.bom(snapshot, "--source", f"hf://{REPO}@{COMMIT}")
    model = bom["metadata"]["component"]
    assert model["purl"].startswith(f"pkg:huggingface/{REPO}@{COMMIT}")
    assert prop(model, "mlbom:source:verified")
    assert "2 files of" in err and "not in the local copy" in err  # the skipped shards
    gguf = file_component(bom, WEIGHTS[2])
    assert len(gguf["hashes"]) == 2  # hashed locally: SHA-512 too


def test_source_mismatch_fails(cli, hub, snapshot):
    data = bytearray((snapshot / WEIGHTS[2]).read_bytes())
    data[-1] ^= 1
    (snapshot / WEIGHTS[2]).write_bytes(bytes(data))
    (snapshot / "config.json").write_text('{"model_type": "evil"}')
    _, err = cli("generate", snapshot, "--source", f"hf://{REPO}@{COMMIT}", code=1)
    assert f"{WEIGHTS[2]} differs from its LFS SHA-256" in err
    assert "config.json" in err


def test_source_extra_local_file_fails(cli, hub, snapshot):
    shutil.copy(snapshot / "config.json", snapshot / "extra.json")
    _, err = cli("generate", snapshot, "--source", f"hf://{REPO}", code=1)
    assert "extra.json is not in the repository" in err


def test_source_needs_a_local_model(cli, hub):
    _, err = cli("generate", f"hf://{REPO}", "--source", f"hf://{REPO}", code=2)
    assert "local" in err


def test_source_unknown_repository(cli, hub, snapshot):
    _, err = cli("generate", snapshot, "--source", "hf://acme/nope@main", code=2)
    assert "no such model repository" in err
