"""`mlbom verify-load`, the verifier the webhook injects as an init container, for real: BOMs
signed with a key and filed in a folder store, a policy naming them, and the model where a
server reads it — a local folder, a Hugging Face cache written from the Hub stand-in, files
pulled from the test OCI registry — untouched, and then with every way round the check an
attacker has: a changed byte, an added, missing or unreadable file, a symlink out, a name
that rewrites the log, another spelling of the reference, a BOM naming `../x`, a server that
sends other bytes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import attest
import mlbom
from admission.loadtime import LoadResult, verify_load
from attest import keys
from attest.statement import bom_sha256
from attest.stores import Attestation, bom_reference, open_store
from mlbom.errors import BadInputError, NotVerifiedError
from mlbom.references import ModelRef, parse
from tests.builders import CARD, hf_folder, safetensors_head
from tests.hub_standin import File, HubStandIn, Repo

REPO = "acme/tiny-llm"
COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


class World:
    """A signing key the policy trusts, one it does not, a folder store and the policy."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.key = keys.generate("ecdsa-p256")
        keys.write_key_pair(self.key, root / "signer.key", root / "signer.pub", None)
        self.store = root / "store"
        self.policy = root / "policy.yaml"
        self.policy.write_text(yaml.safe_dump({
            "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy",
            "stores": [str(self.store)],
            "trust": {"signers": [{"name": "ci", "key": {"path": str(root / "signer.pub")}}]},
            "modes": {"default": "enforce", "namespaces": {"team-warn": "warn"}},
        }))  # fmt: skip

    def file(self, bom: dict, ref: ModelRef | None = None, key: object = None) -> str:
        """File the signed BOM in the store under `ref` (default: its own reference)."""
        ref = ref or bom_reference(bom)
        bundle = attest.sign(bom, key=key or self.key)
        open_store(str(self.store)).push(
            ref, Attestation(json.dumps(bom).encode(), bundle.encode())
        )
        return str(ref)


@pytest.fixture
def world(tmp_path):
    (tmp_path / "world").mkdir()
    return World(tmp_path / "world")


@pytest.fixture
def local(world, tmp_path):
    """A model folder (a nested file too), its BOM filed under its `sha256:` key."""
    model = hf_folder(tmp_path / "model")
    (model / "tokenizer").mkdir()
    (model / "tokenizer" / "merges.txt").write_text("a b\n")
    reference = world.file(mlbom.generate(model).to_dict())
    return model, reference


def run(cli, world, reference, path, *extra, code=0, namespace="default"):
    log = world.root / "termination-log"
    log.unlink(missing_ok=True)
    out, err = cli("verify-load", reference, "--path", path, "--policy", world.policy,
                   "--namespace", namespace, "--termination-log", log, *extra, code=code)  # fmt: skip
    message = log.read_text() if log.exists() else None
    if code:
        assert message is not None and err.startswith("error: "), err
        assert len(message.encode()) <= 4096
        assert all(c.isprintable() for c in message.rstrip("\n")), message
    else:
        assert message is None
    return out, err, message


# -- a local folder ---------------------------------------------------------------------------


def test_an_untouched_folder_verifies(cli, world, local):
    model, reference = local
    out, _, _ = run(cli, world, reference, model)
    assert out.startswith(f"verified: {reference} at {model}: 6 files, ")
    assert "MB/s" in out and "signed by ci" in out
    out, _, _ = run(cli, world, reference, model, "--json")
    result = json.loads(out)
    assert result["verified"] is True and result["files"] == 6 and result["namespace"] == "default"
    assert result["bytes"] == sum(p.stat().st_size for p in model.rglob("*") if p.is_file())
    assert run(cli, world, reference, model, "-q")[0] == ""


def test_the_python_api(world, local):
    model, reference = local
    result = verify_load(reference, model, world.policy, namespace="ns")
    assert isinstance(result, LoadResult) and result.model_path == model
    assert result.signer == "ci" and result.store == str(world.store) and result.files == 6
    (model / "vocab.txt").write_text("[PAD]\n[UNK]\nhellO\n")
    with pytest.raises(NotVerifiedError, match=r"vocab\.txt has changed") as failed:
        verify_load(reference, model, world.policy)
    assert failed.value.check == "model"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda m: m.joinpath("vocab.txt").write_bytes(b"[PAD]\n[UNK]\nhellp\n"),
         "vocab.txt has changed"),
        (lambda m: m.joinpath("tokenizer", "extra.py").write_text("import os\n"),
         "tokenizer/extra.py is not in the BOM"),
        (lambda m: m.joinpath("tokenizer", "merges.txt").unlink(), "tokenizer/merges.txt is missing"),
        (lambda m: (m / "vocab.txt").unlink() or (m / "vocab.txt").symlink_to(m.parent / "other"),
         "outside the model folder"),
        (lambda m: m.joinpath("loop").symlink_to("loop"), "loop cannot be read (a symlink loop)"),
        (lambda m: os.mkfifo(m / "pipe"), "pipe cannot be read (not a regular file but a pipe)"),
        (lambda m: m.joinpath("linked").symlink_to(m / "tokenizer"), "linked cannot be read"),
    ],
    ids=["byte-changed", "file-added", "file-missing", "symlink-out", "symlink-loop", "pipe",
         "folder-link"],
)  # fmt: skip
def test_every_tampering_fails_with_its_reason(cli, world, local, tamper, reason):
    model, reference = local
    (model.parent / "other").write_text("[PAD]\n[UNK]\nhello\n")  # the same bytes, elsewhere
    tamper(model)
    _, err, message = run(cli, world, reference, model, code=1)
    assert reason in message and reason in err, message
    assert message.startswith(f"mlbom verify-load {reference}: not verified (model): ")


def test_a_file_name_cannot_rewrite_the_message(cli, world, local):
    model, reference = local
    (model / "x\x1b[2K\rverified: all good\nok").write_text("planted")
    _, _, message = run(cli, world, reference, model, code=1)
    assert "x\\x1b[2K\\rverified: all good\\nok is not in the BOM" in message


def test_the_message_fits_the_termination_log(cli, world, local):
    model, reference = local
    for i in range(40):
        (model / (f"{i:02d}" + "\x07" * 250)).write_text("x")
    _, _, message = run(cli, world, reference, model, code=1)
    assert "is not in the BOM" in message and len(message.encode()) <= 4096


def test_a_bom_signed_by_an_untrusted_key_fails(cli, world, tmp_path):
    model = hf_folder(tmp_path / "model")
    reference = world.file(mlbom.generate(model).to_dict(), key=keys.generate("ecdsa-p256"))
    _, _, message = run(cli, world, reference, model, code=1)
    assert "not verified (not-verified)" in message and "not signed by a trusted signer" in message


def test_a_model_without_attestation_fails(cli, world, local):
    model, _ = local
    _, _, message = run(cli, world, "sha256:" + "0" * 64, model, code=1)
    assert "has no attestation" in message


def test_another_models_attestation_does_not_cover_this_folder(cli, world, local, tmp_path):
    model, _ = local
    other = hf_folder(tmp_path / "other")
    (other / "vocab.txt").write_text("other\n")
    reference = world.file(mlbom.generate(other).to_dict())
    _, _, message = run(cli, world, reference, model, code=1)
    assert "vocab.txt has changed" in message


@pytest.mark.parametrize(
    "reference",
    [
        "hf://acme/model@main",
        "hf://acme/model",
        "oci://127.0.0.1:5000/models/m:v1",
        "/models/m",
        "pvc://claim/models",
    ],
)
def test_an_unpinned_reference_is_bad_input(cli, world, local, reference):
    model, _ = local
    _, _, message = run(cli, world, reference, model, code=2)
    assert "not pinned" in message or "unsupported model reference" in message


def test_another_spelling_of_the_reference_is_refused(cli, world, local):
    model, reference = local
    for spelling in (reference.upper().replace("SHA256", "sha256"), reference + "\n",
                     reference + " ", f"hf://acme/model@{'A' * 40}"):  # fmt: skip
        _, _, message = run(cli, world, spelling, model, code=2)
        assert "not written canonically" in message or "not pinned" in message, message
    tagged = f"oci://127.0.0.1:5000/models/m:v1@sha256:{'a' * 64}"
    _, _, message = run(cli, world, tagged, model, code=2)
    assert f"oci://127.0.0.1:5000/models/m@sha256:{'a' * 64}" in message  # the one spelling


def test_missing_arguments_and_policy_reach_the_termination_log(cli, world, local):
    model, reference = local
    log = world.root / "log"
    _, err = cli("verify-load", reference, "--path", model, "--termination-log", log, code=2)
    assert "give --policy, --namespace" in err and "give --policy" in log.read_text()
    _, _, message = run(cli, world, reference, model, "--policy", world.root / "none.yaml", code=2)
    assert "cannot read the policy" in message
    _, _, message = run(cli, world, reference, world.root / "nothing-here", code=1)
    assert "there is no model at" in message


def test_a_bom_naming_a_path_outside_the_folder_fails(cli, world, local):
    model, _ = local
    bom = mlbom.generate(model).to_dict()
    vocab = next(c for c in bom["components"] if c.get("name") == "vocab.txt")
    vocab["name"] = "../vocab.txt"  # the bytes beside the folder would pass as the model's
    shutil.copy(model / "vocab.txt", model.parent / "vocab.txt")
    (model / "vocab.txt").unlink()
    reference = world.file(bom)
    _, _, message = run(cli, world, reference, model, code=1)
    assert "not verified (bom)" in message and "'../vocab.txt', outside the model folder" in message


def test_a_bom_excluding_a_path_outside_the_folder_fails(cli, world, local):
    model, _ = local
    bom = mlbom.generate(model).to_dict()
    bom["metadata"]["component"].setdefault("properties", []).append(
        {"name": "mlbom:excluded", "value": "../../etc"}
    )
    _, _, message = run(cli, world, world.file(bom), model, code=1)
    assert "'../../etc', outside the model folder" in message


def test_the_boms_own_exclusions_are_honoured_and_reported(cli, world, tmp_path):
    model = hf_folder(tmp_path / "model")
    (model / "scratch").mkdir()
    (model / "scratch" / "notes.txt").write_text("x")
    reference = world.file(mlbom.generate(model, exclude=[model / "scratch"]).to_dict())
    (model / "scratch" / "notes.txt").write_text("changed")
    out, _, _ = run(cli, world, reference, model, "--json")
    assert json.loads(out)["excluded"] == ["scratch"]


def test_an_excluded_namespace_is_still_verified(cli, world, local):
    model, reference = local
    (model / "vocab.txt").write_text("x")
    _, _, message = run(cli, world, reference, model, namespace="kube-system", code=1)
    assert "(namespace kube-system)" not in message and "vocab.txt has changed" in message


def test_a_policy_problem_fails_in_enforce_and_warns_in_warn_mode(cli, world, local):
    model, reference = local
    policy = yaml.safe_load(world.policy.read_text())
    policy["requirements"] = {"licenses": {"deny": ["Apache-2.0", "MIT"]}}
    world.policy.write_text(yaml.safe_dump(policy))
    card = (model / "README.md").read_text()
    assert "license:" in card
    _, _, message = run(cli, world, reference, model, code=1)
    assert "not verified (policy)" in message
    _, err, _ = run(cli, world, reference, model, namespace="team-warn")
    assert err.startswith("warning: ") and "warn mode" in err


def test_a_default_termination_log_is_only_written_when_writable(cli, world, local, monkeypatch):
    from mlbom import cli as cli_module

    model, reference = local
    target = world.root / "default-log"
    monkeypatch.setattr(cli_module, "_TERMINATION_LOG", target)
    (model / "vocab.txt").write_text("x")
    cli("verify-load", reference, "--path", model, "--policy", world.policy,
        "--namespace", "n", code=1)  # fmt: skip
    assert not target.exists()  # no such file: nothing written
    target.write_text("")
    cli("verify-load", reference, "--path", model, "--policy", world.policy,
        "--namespace", "n", code=1)  # fmt: skip
    assert "vocab.txt has changed" in target.read_text()


# -- the Hub stand-in, with --fetch ----------------------------------------------------------


def hub_files() -> dict[str, File]:
    head, size = safetensors_head({"w": (512, 512)})  # 512 KiB of zeros after the header
    return {
        ".gitattributes": File(b"*.safetensors filter=lfs\n", 0, lfs=False),
        "README.md": File(CARD.encode(), 0, lfs=False),
        "config.json": File(b'{"model_type": "llama"}', 0, lfs=False),
        "model.safetensors": File(head, size),
        "tokenizer/tokenizer.json": File(b'{"version": "1.0"}' + b" " * 4000, 0),
    }


@pytest.fixture
def hub(world, tmp_path, monkeypatch):
    standin = HubStandIn()
    standin.repos[REPO] = Repo(hub_files(), commit=COMMIT)
    monkeypatch.setenv("HF_ENDPOINT", standin.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    reference = world.file(mlbom.generate(f"hf://{REPO}@{COMMIT}").to_dict())
    assert reference == f"hf://{REPO}@{COMMIT}"
    yield standin, reference
    standin.close()


def test_hub_fetch_writes_a_cache_the_server_reads_offline(cli, world, hub, tmp_path):
    standin, reference = hub
    cache = tmp_path / "cache"
    cache.mkdir()
    out, _, _ = run(cli, world, reference, cache, "--fetch", "--json")
    result = json.loads(out)
    snapshot = cache / "models--acme--tiny-llm" / "snapshots" / COMMIT
    assert result["modelPath"] == str(snapshot) and result["files"] == 5
    assert result["fetchedBytes"] == sum(f.size for f in hub_files().values())
    assert (cache / "models--acme--tiny-llm" / "refs" / "main").read_text() == COMMIT
    link = snapshot / "tokenizer" / "tokenizer.json"
    assert link.is_symlink() and os.readlink(link).startswith("../../../blobs/")
    assert not list(cache.glob(".mlbom-*"))

    from huggingface_hub import snapshot_download

    found = snapshot_download(REPO, cache_dir=cache, local_files_only=True)
    assert Path(found) == snapshot
    standin.close()  # the server reads with the Hub gone and downloads off
    code = ("from huggingface_hub import hf_hub_download; import sys; "
            f"print(open(hf_hub_download({REPO!r}, 'config.json'), 'rb').read().decode())")  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == '{"model_type": "llama"}', done.stderr

    # a restarted init container: the copy in place verifies, nothing is downloaded
    out, _, _ = run(cli, world, reference, cache, "--fetch", "--json")
    assert json.loads(out)["fetchedBytes"] == 0
    # without --fetch, the snapshot the server reads is verified where it is
    run(cli, world, reference, snapshot)


def test_hub_fetch_clears_what_an_interrupted_run_left(cli, world, hub, tmp_path):
    _, reference = hub
    cache = tmp_path / "cache"
    (cache / ".mlbom-incoming-old").mkdir(parents=True)
    (cache / ".mlbom-incoming-old" / "0").write_bytes(b"partial")
    os.utime(cache / ".mlbom-incoming-old", (1, 1))
    (cache / ".mlbom-incoming-busy").mkdir()  # another verifier's, at work right now
    run(cli, world, reference, cache, "--fetch")
    assert [p.name for p in cache.glob(".mlbom-*")] == [".mlbom-incoming-busy"]


def test_hub_fetch_repairs_a_tampered_cache(cli, world, hub, tmp_path):
    _, reference = hub
    cache = tmp_path / "cache"
    cache.mkdir()
    run(cli, world, reference, cache, "--fetch")
    blob = (cache / "models--acme--tiny-llm" / "snapshots" / COMMIT / "config.json").resolve()
    blob.write_text('{"model_type": "evil"}')
    _, _, message = run(cli, world, reference, blob.parent.parent / "snapshots" / COMMIT, code=1)
    assert "config.json has changed" in message
    out, _, _ = run(cli, world, reference, cache, "--fetch", "--json")
    assert json.loads(out)["fetchedBytes"] > 0
    assert blob.read_text() == '{"model_type": "llama"}'


def test_hub_serving_other_bytes_leaves_nothing_to_read(cli, world, hub, tmp_path):
    standin, reference = hub
    honest = standin.repos[REPO].files["model.safetensors"]
    standin.repos[REPO].files["model.safetensors"] = File(
        honest.head.replace(b"512", b"511"), honest.size, sha256=honest.sha256
    )  # other bytes under the same claimed digest
    cache = tmp_path / "cache"
    cache.mkdir()
    _, _, message = run(cli, world, reference, cache, "--fetch", code=1)
    assert "not verified (fetch)" in message and "model.safetensors are not the file" in message
    repo = cache / "models--acme--tiny-llm"
    assert not (repo / "snapshots" / COMMIT).exists() and not (repo / "refs" / "main").exists()
    assert not list((repo / "blobs").iterdir()) and not list(cache.glob(".mlbom-*"))


def test_hub_listing_another_size_is_refused_before_any_download(cli, world, hub, tmp_path):
    standin, reference = hub
    honest = standin.repos[REPO].files["model.safetensors"]
    standin.repos[REPO].files["model.safetensors"] = File(
        honest.head, honest.size + (64 << 20), sha256=honest.sha256
    )  # 64 MiB more of zeros: the download would be bounded by the listed size
    cache = tmp_path / "cache"
    cache.mkdir()
    served = standin.fetched("model.safetensors")  # the header generate read
    _, _, message = run(cli, world, reference, cache, "--fetch", code=1)
    assert f"the Hub lists model.safetensors at {honest.size + (64 << 20)} bytes" in message
    assert standin.fetched("model.safetensors") == served


def test_hub_fetch_refuses_a_symlinked_cache_folder(cli, world, hub, tmp_path):
    _, reference = hub
    cache, elsewhere = tmp_path / "cache", tmp_path / "elsewhere"
    cache.mkdir()
    elsewhere.mkdir()
    (cache / "models--acme--tiny-llm").symlink_to(elsewhere)
    _, _, message = run(cli, world, reference, cache, "--fetch", code=1)
    assert "is not a folder (a symlink or a file?)" in message
    assert not list(elsewhere.iterdir())


def test_hub_fetch_of_a_bom_naming_a_path_outside(cli, world, hub, tmp_path):
    _, reference = hub
    bom = json.loads(open_store(str(world.store)).pull(parse(reference)).bom)
    for component in bom["components"]:
        if component.get("name") == "config.json":
            component["name"] = "../../../../config.json"
    world.file(bom, parse(reference))
    cache = tmp_path / "cache"
    cache.mkdir()
    _, _, message = run(cli, world, reference, cache, "--fetch", code=1)
    assert "outside the model folder" in message and not list(cache.iterdir())


def test_fetch_needs_a_remote_model(cli, world, local, tmp_path):
    model, reference = local
    _, _, message = run(cli, world, reference, model, "--fetch", code=2)
    assert "nowhere to fetch it from" in message


# -- the test OCI registry, with --fetch -----------------------------------------------------


@pytest.fixture
def oci(world, tmp_path):
    from tests.registry import push_model, running_registry

    with running_registry(tmp_path / "registry") as registry:
        folder = hf_folder(tmp_path / "pushed")
        (folder / "tokenizer").mkdir()
        (folder / "tokenizer" / "merges.txt").write_text("a b\n")
        digest = push_model(registry, "models/m:v1", folder)
        reference = f"oci://{registry.host}/models/m@{digest}"
        world.file(mlbom.generate(reference).to_dict(), parse(reference))
        yield registry, reference, folder


def test_oci_fetch_writes_the_files_and_verifies(cli, world, oci, tmp_path):
    _, reference, pushed = oci
    target = tmp_path / "volume"
    target.mkdir()
    out, _, _ = run(cli, world, reference, target, "--fetch", "--json")
    assert json.loads(out)["files"] == 6
    names = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert names == sorted(
        p.relative_to(pushed).as_posix() for p in pushed.rglob("*") if p.is_file()
    )
    assert (target / "config.json").read_bytes() == (pushed / "config.json").read_bytes()
    out, _, _ = run(cli, world, reference, target, "--fetch", "--json")
    assert json.loads(out)["fetchedBytes"] == 0
    (target / "planted.bin").write_bytes(b"x")
    _, _, message = run(cli, world, reference, target, code=1)
    assert "planted.bin is not in the BOM" in message
    # fetched again beside the planted file: the copy fails as a whole and is taken out
    _, _, message = run(cli, world, reference, target, "--fetch", code=1)
    assert "planted.bin is not in the BOM" in message
    assert [p.name for p in target.rglob("*") if p.is_file()] == ["planted.bin"]


def test_oci_registry_serving_other_bytes_leaves_nothing(cli, world, oci, tmp_path):
    registry, reference, pushed = oci
    digest = __import__("hashlib").sha256((pushed / "vocab.txt").read_bytes()).hexdigest()
    stored = registry.root / "data/docker/registry/v2/blobs/sha256" / digest[:2] / digest / "data"
    stored.write_bytes(stored.read_bytes().replace(b"hello", b"hellp"))
    target = tmp_path / "volume"
    target.mkdir()
    _, _, message = run(cli, world, reference, target, "--fetch", code=1)
    assert "vocab.txt are not the file the signed BOM lists" in message
    assert not list(target.iterdir())


def test_oci_fetch_does_not_write_through_a_symlink(cli, world, oci, tmp_path):
    _, reference, _ = oci
    target, elsewhere = tmp_path / "volume", tmp_path / "elsewhere"
    target.mkdir()
    elsewhere.mkdir()
    (target / "tokenizer").symlink_to(elsewhere)
    _, _, message = run(cli, world, reference, target, "--fetch", code=1)
    assert "is not a folder" in message and not list(elsewhere.iterdir())


def test_the_library_raises_bad_input_for_a_tag(world):
    with pytest.raises(BadInputError, match="not pinned"):
        verify_load("oci://127.0.0.1:1/m:v1", Path("."), world.policy)


# -- the BOM admission pinned (what the webhook injects) -----------------------------------------


def _pinned(world, reference):
    attestation = open_store(str(world.store)).pull(parse(reference))
    return bom_sha256(json.loads(attestation.bom))


def test_the_pinned_bom_needs_no_trust_in_the_pod(cli, world, local):
    model, reference = local
    pin = _pinned(world, reference)
    log = world.root / "log"
    cli("verify-load", reference, "--path", model, "--bom-sha256", pin, "--store", world.store,
        "--termination-log", log)  # fmt: skip
    # a store that cannot hold this model (a Hub store holds its own repository) is passed over
    cli("verify-load", reference, "--path", model, "--bom-sha256", pin, "--store", "hf://acme/other",
        "--store", world.store, "--termination-log", log)  # fmt: skip
    (model / "config.json").write_text("{}")  # another byte
    _, err = cli("verify-load", reference, "--path", model, "--bom-sha256", pin,
                 "--store", world.store, "--termination-log", log, code=1)  # fmt: skip
    assert "config.json has changed" in err and "config.json has changed" in log.read_text()


def test_a_bom_replaced_since_admission_is_refused(cli, world, local):
    model, reference = local
    pin = _pinned(world, reference)
    bom = mlbom.generate(model, version="2").to_dict()  # a new BOM filed under the same key
    world.file(bom, parse(reference))
    _, err = cli("verify-load", reference, "--path", model, "--bom-sha256", pin,
                 "--store", world.store, code=1)  # fmt: skip
    assert "another BOM for it than the one admitted" in err


@pytest.mark.parametrize(
    "args",
    [
        ["--bom-sha256", "A" * 64, "--store", "STORE"],  # upper-case
        ["--bom-sha256", "a" * 63, "--store", "STORE"],
        ["--bom-sha256", "a" * 64],  # no store
        ["--store", "STORE"],  # no digest
        ["--bom-sha256", "a" * 64, "--store", "STORE", "--policy", "POLICY"],  # both ways
    ],
)
def test_the_pin_is_given_whole(cli, world, local, args):
    model, reference = local
    args = [
        str(world.store) if a == "STORE" else str(world.policy) if a == "POLICY" else a
        for a in args
    ]
    cli("verify-load", reference, "--path", model, *args, code=2)
