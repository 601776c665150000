"""The container image the Helm chart runs (webhook, recorder, load-time verifier): the
Containerfile's promises checked on the file, then on the image itself, built from this tree
on a debootstrapped Debian base (tests/image_build.py) and run with podman: non-root, a
read-only root filesystem, its labels, its own CycloneDX SBOM, no package installer; and
the verifier the chart's webhook injects, run as the kubelet would run it: on prepared volumes
of an image-volume model, and fetching a Hub model (from the Hub stand-in, its BOM from the
test registry) into the cache a server then reads offline.

Building needs root and Debian's buildah, podman, runc and debootstrap (`make test` installs
them as root); without them the image tests skip locally and fail under CI=true.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlbom import __version__
from tests import image_build
from tests.builders import assert_valid
from tests.image_build import CONTAINERFILE, CONTAINERIGNORE, CONTEXT, ROOT, Image

UID = 65532
SBOM = "/usr/share/doc/mlbom/sbom.cdx.json"


def instructions() -> list[tuple[str, str]]:
    """The Containerfile's instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


# --- the file: checked everywhere, no builder needed ---


def test_base_image_is_pinned_by_digest() -> None:
    args = [rest for keyword, rest in instructions() if keyword == "ARG"]
    default = next(a.split("=", 1)[1] for a in args if a.startswith("BASE_IMAGE="))
    assert re.fullmatch(
        r"docker\.io/library/python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", default
    )
    froms = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert froms == ["${BASE_IMAGE} AS builder", "${BASE_IMAGE}"]


def test_runs_as_the_charts_user() -> None:
    users = [rest for keyword, rest in instructions() if keyword == "USER"]
    assert users == [f"{UID}:{UID}"]
    values = yaml.safe_load((ROOT / "deploy/mlbom-admission/values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == UID
    assert values["podSecurityContext"]["runAsGroup"] == UID
    assert ("ENTRYPOINT", '["mlbom"]') in instructions()


def test_build_context_is_the_allowlist() -> None:
    """.containerignore lets in exactly CONTEXT, and CONTEXT holds every package of the wheel."""
    lines = [line.strip() for line in CONTAINERIGNORE.read_text().splitlines()]
    allowed = [line[1:].rstrip("/") for line in lines if line.startswith("!")]
    assert "*" in lines
    assert sorted(allowed) == sorted(CONTEXT)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert sorted(p.rstrip("*") for p in packages) == sorted(
        name for name in CONTEXT if (ROOT / name).is_dir()
    )


# --- the image: built from this tree ---


@pytest.fixture(scope="module")
def image() -> Image:
    try:
        return image_build.built_image()
    except image_build.Unavailable as e:
        image_build.unavailable(str(e))
        raise  # not reached


def test_version_on_a_read_only_root(image: Image) -> None:
    """The smoke test: nothing writable at all, not even /tmp (run when the image was
    built or found, to learn how podman runs containers here)."""
    done = image.smoke
    assert done is not None
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"mlbom, version {__version__}"
    assert "Traceback" not in done.stderr


def test_generate_on_a_read_only_root(image: Image) -> None:
    """A real command: the model mounted read-only, its caches going to /tmp (HOME, XDG)."""
    model = ROOT / "examples" / "tiny-sentiment"
    script = (
        "mlbom generate /model --version 1.0.0 --manufacturer test"
        " --manufacturer-contact security@example.org -o /tmp/bom.cdx.json >&2"
        " && ls /tmp/.cache/mlbom >&2 && cat /tmp/bom.cdx.json"
    )
    done = image.run("-c", script, entrypoint="/bin/sh", volumes=[(model, "/model")])
    assert done.returncode == 0, done.stderr
    assert "hashes.sqlite3" in done.stderr  # mlbom's hash cache under $XDG_CACHE_HOME
    bom = assert_valid(done.stdout)
    assert bom["metadata"]["component"]["type"] == "machine-learning-model"
    names = {c["name"] for c in bom["components"] if c["type"] == "file"}
    assert names == {str(p.relative_to(model)) for p in model.rglob("*") if p.is_file()}


def test_labels(image: Image) -> None:
    labels = image.inspect()["Config"]["Labels"]
    prefix = "org.opencontainers.image."
    assert labels[prefix + "title"] == "mlbom"
    assert labels[prefix + "version"] == __version__
    assert labels[prefix + "revision"].startswith("tree-")
    assert labels[prefix + "licenses"] == "Apache-2.0"
    assert labels[prefix + "source"].startswith("https://")
    assert labels[prefix + "description"]
    assert labels[prefix + "base.name"].startswith(image_build.BASE_REPOSITORY + ":")
    assert image.inspect()["Config"]["Entrypoint"] == ["mlbom"]


# What the image holds, read in one run (each run of a large image costs seconds on vfs)
FACTS = """
import errno, importlib.metadata, importlib.util, json, os, pathlib, shutil, subprocess, sys

def write(path):
    try:
        open(path, "w").close()
        return "written"
    except OSError as e:
        return errno.errorcode[e.errno]

def pip_of(python):
    if not os.path.exists(python):
        return None
    return subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode

print(json.dumps({
    "ids": [os.getuid(), os.getgid()],
    "home": os.path.expanduser("~"),
    "writes": {p: write(p) for p in ("/x", "/opt/mlbom/x", "/usr/share/doc/mlbom/x", "/tmp/x")},
    "prefix": sys.prefix,
    "modules": [n for n in ("pip", "setuptools", "wheel", "ensurepip", "tests") if importlib.util.find_spec(n)],
    "programs": [n for n in ("pip", "pip3", "gcc", "cc", "make") if shutil.which(n)],
    "base_pip": {p: pip_of(p) for p in ("/usr/bin/python3", "/usr/local/bin/python3")},
    "pip_folders": [str(p) for p in pathlib.Path("/usr").glob("**/site-packages/pip")],
    "distributions": sorted({(d.metadata["Name"].lower(), d.version) for d in importlib.metadata.distributions()}),
    "sbom": pathlib.Path("/usr/share/doc/mlbom/sbom.cdx.json").read_text(),
}))
"""


@pytest.fixture(scope="module")
def facts(image: Image) -> dict:
    done = image.run("-c", FACTS, entrypoint="python3")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_runs_as_non_root_on_a_read_only_root(image: Image, facts: dict) -> None:
    assert image.inspect()["Config"]["User"] == f"{UID}:{UID}"
    assert facts["ids"] == [UID, UID]
    assert facts["home"] == "/tmp"
    assert facts["writes"] == {
        "/x": "EROFS",
        "/opt/mlbom/x": "EROFS",
        "/usr/share/doc/mlbom/x": "EROFS",
        "/tmp/x": "written",
    }


def test_sbom_describes_the_installed_environment(facts: dict) -> None:
    """The image's own CycloneDX SBOM is valid and names exactly the distributions installed
    in /opt/mlbom: mlbom at its version as the root component, the rest as its components."""
    sbom = assert_valid(facts["sbom"])
    root = sbom["metadata"]["component"]
    assert (root["name"], root.get("version"), root["type"]) == (
        "mlbom",
        __version__,
        "application",
    )
    listed = {(c["name"].lower(), c["version"]) for c in [root, *sbom["components"]]}
    assert listed == {tuple(d) for d in facts["distributions"]}
    assert {"pip", "setuptools", "wheel", "cyclonedx-bom"}.isdisjoint(n for n, _ in listed)


def test_no_package_installer_or_tests(facts: dict) -> None:
    assert facts["prefix"] == "/opt/mlbom"
    assert facts["modules"] == []
    assert facts["programs"] == []
    assert facts["pip_folders"] == []
    # nor the base interpreter's own pip
    assert all(code != 0 for code in facts["base_pip"].values() if code is not None)


def test_verify_load_runs_in_the_image(image: Image) -> None:
    """The load-time verifier ships in the same image."""
    done = image.run("verify-load", "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: mlbom verify-load")


# --- the load-time verifier as the chart's webhook injects it, run for real ---


def run_like_the_kubelet(
    image: Image, container: dict, volumes: dict[str, Path], log: Path
) -> subprocess.CompletedProcess[str]:
    """A pod spec's container run in the image as the kubelet runs it: its command and env,
    each volume mount (from `volumes` by name, subPath joined, read-only where it says), its
    user, read-only root, dropped capabilities and no privilege escalation, the termination
    log where it says. The network is the host's, where the test registry listens."""
    assert image.ref == container["image"], container["image"]
    security = container["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]} and security["allowPrivilegeEscalation"] is False  # fmt: skip
    options = ["--user", f"{security['runAsUser']}:{security['runAsGroup']}", "--cap-drop=ALL",
               "--security-opt=no-new-privileges"]  # fmt: skip
    for variable in container.get("env", []):
        options += ["--env", f"{variable['name']}={variable['value']}"]
    read_only, writable = [], [(log, container["terminationMessagePath"])]
    for mount in container["volumeMounts"]:
        source = volumes[mount["name"]] / mount.get("subPath", "")
        (read_only if mount["readOnly"] else writable).append((source, mount["mountPath"]))
    program, *args = container["command"]
    return image.run(
        *args, entrypoint=program, read_only=security["readOnlyRootFilesystem"], tmp=False,
        volumes=read_only, writable=writable, network="host", options=options,
    )  # fmt: skip


def signed_in(store: str, reference: str, tmp_path: Path) -> str:
    """The model's BOM, signed with a new key and pushed to `store`; the public key's PEM."""
    import attest
    import mlbom
    from attest import keys
    from attest.stores import Attestation, open_store
    from mlbom.references import parse

    bom = mlbom.generate(reference).to_dict()
    key = keys.generate("ecdsa-p256")
    keys.write_key_pair(key, tmp_path / "signer.key", tmp_path / "signer.pub", None)
    bundle = attest.sign(bom, key=key).encode()
    open_store(store).push(parse(reference), Attestation(json.dumps(bom).encode(), bundle))
    return (tmp_path / "signer.pub").read_text()


def injected(image: Image, tmp_path: Path, store: str, pem: str, pod: dict) -> tuple[dict, dict]:
    """The chart rendered with this image and a policy that requires load-time verification
    and trusts `pem`; its policy mutating `pod` as the webhook does. The verifier and the
    patched pod."""
    import asyncio

    import helm_python as helm

    from admission import patches
    from admission.manifests import admission_request
    from admission.reviewer import Reviewer

    policy = {
        "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy", "stores": [store],
        "trust": {"signers": [{"name": "ci", "key": {"pem": pem}}]},
        "loadTimeVerification": {"default": "required"},
    }  # fmt: skip
    repository, _, tag = image.ref.rpartition(":")
    values = {"image": {"repository": repository, "tag": tag}, "policy": {"content": policy}}
    with helm.Chart.load(ROOT / "deploy" / "mlbom-admission") as chart:
        manifests = chart.render(values, name="mlbom", namespace="mlbom-system")
    configmap = next(
        doc for name, text in manifests.items() if name.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc and doc["kind"] == "ConfigMap" and "policy.yaml" in doc["data"]
    )  # fmt: skip
    shipped = tmp_path / "policy.yaml"
    shipped.write_text(configmap["data"]["policy.yaml"])
    decision = asyncio.run(Reviewer.load(shipped).mutate(admission_request(pod, namespace="team")))
    patched = patches.apply(pod, decision.patch)
    (verifier,) = [c for c in patched["spec"]["initContainers"] if c["name"].startswith("mlbom-verify-load-")]  # fmt: skip
    return verifier, patched


def server_pod(command: list[str], **spec: Any) -> dict:
    server = {"name": "server", "image": "vllm/vllm-openai:v0.10.0", "command": command,
              "resources": {"limits": {"nvidia.com/gpu": 1}}, **spec.pop("server", {})}  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "llm"}, "spec": {"containers": [server], **spec}}  # fmt: skip


def charts_verifier(image: Image, tmp_path: Path) -> Iterator[tuple[dict, Path]]:
    """The verifier the chart's webhook injects for a pod serving a model from an image
    volume of the test registry, where its BOM is filed too."""
    from tests.builders import hf_folder
    from tests.registry import push_model, running_registry

    with running_registry(tmp_path / "registry") as registry:
        model = hf_folder(tmp_path / "model")
        digest = push_model(registry, "models/llm:v1", model)
        reference = f"oci://{registry.host}/models/llm@{digest}"
        store = f"oci://{registry.host}/models/llm"
        pem = signed_in(store, reference, tmp_path)
        pod = server_pod(
            ["vllm", "serve", "/models"],
            server={
                "volumeMounts": [{"name": "weights", "mountPath": "/models", "readOnly": True}]
            },
            volumes=[{"name": "weights", "image": {"reference": reference[6:]}}],
        )
        yield injected(image, tmp_path, store, pem, pod)[0], model


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (None, None),
        (lambda m: m.joinpath("vocab.txt").write_bytes(b"[PAD]\n[UNK]\nhellp\n"), "vocab.txt has changed"),
        (lambda m: m.joinpath("extra.py").write_text("import os\n"), "extra.py is not in the BOM"),
        (lambda m: m.joinpath("vocab.txt").unlink(), "vocab.txt is missing"),
        (lambda m: (m / "vocab.txt").unlink() or (m / "vocab.txt").symlink_to("/etc/passwd"),
         "outside the model folder"),
    ],
    ids=["untouched", "byte-changed", "file-added", "file-missing", "symlink-out"],
)  # fmt: skip
def test_the_charts_verifier_command_checks_the_volume(image: Image, tmp_path: Path, tamper, reason) -> None:  # fmt: skip
    for verifier, model in charts_verifier(image, tmp_path):
        assert verifier["name"] == "mlbom-verify-load-0"
        assert verifier["command"][:2] == ["mlbom", "verify-load"] and "--bom-sha256" in verifier["command"]  # fmt: skip
        volume = tmp_path / "volume"
        shutil.copytree(model, volume / "content")
        for path in [volume, *volume.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if tamper:
            tamper(volume / "content")
        log = tmp_path / "termination-log"
        log.touch(mode=0o666)
        log.chmod(0o666)
        mount = verifier["volumeMounts"][0]
        assert mount == {"name": "weights", "mountPath": "/models", "readOnly": True}
        done = run_like_the_kubelet(image, verifier, {"weights": volume / "content"}, log)
        message = log.read_text()
        if reason is None:
            assert done.returncode == 0, done.stderr + message
            assert message == ""
        else:
            assert done.returncode == 1, done.stderr
            assert reason in message and message.startswith("mlbom verify-load oci://"), message
            assert "Traceback" not in done.stderr


def test_build_is_cached(image: Image) -> None:
    """A second request for the image of an unchanged tree reuses it."""
    if image.ref != f"{image_build.IMAGE_REPOSITORY}:{image_build.image_key()}":
        pytest.skip("the tree changed during this run (another edit): a rebuild is right")
    again = image_build.built_image()
    assert again.ref == image.ref
    assert again.seconds < 30, again.seconds


def test_context_hash_sees_every_file() -> None:
    """The cache key covers every file the build context holds (a change rebuilds)."""
    files = {str(p.relative_to(ROOT)) for p in image_build.context_files()}
    assert "pyproject.toml" in files and "mlbom/cli.py" in files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)


def test_the_charts_verifier_fetches_a_hub_model_the_server_then_reads_offline(
    image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that would download a Hub model: the verifier downloads the pinned commit
    (from the Hub stand-in, the server's HF_ENDPOINT) into the cache volume and verifies it,
    the BOM coming from the registry; the server's rewired environment then finds it there
    offline. A hub serving other bytes leaves the cache empty and the pod not started."""
    from huggingface_hub import snapshot_download

    from tests.builders import CARD, safetensors_head
    from tests.hub_standin import File, HubStandIn, Repo
    from tests.registry import running_registry

    repo, commit = "acme/tiny-llm", "89abcdef0123456789abcdef0123456789abcdef"
    head, size = safetensors_head({"w": (128, 128)})
    standin = HubStandIn()
    standin.repos[repo] = Repo({"README.md": File(CARD.encode(), 0, lfs=False),
                                "model.safetensors": File(head, size)}, commit=commit)  # fmt: skip
    monkeypatch.setenv("HF_ENDPOINT", standin.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    try:
        with running_registry(tmp_path / "registry") as registry:
            store = f"oci://{registry.host}/attestations"
            pem = signed_in(store, f"hf://{repo}@{commit}", tmp_path)
            pod = server_pod(["vllm", "serve", repo, "--revision", commit],
                             server={"env": [{"name": "HF_ENDPOINT", "value": standin.url}]})  # fmt: skip
            verifier, patched = injected(image, tmp_path, store, pem, pod)
            assert "--fetch" in verifier["command"] and verifier["env"] == pod["spec"]["containers"][0]["env"]  # fmt: skip
            log = tmp_path / "termination-log"
            log.touch(mode=0o666)
            log.chmod(0o666)
            cache = tmp_path / "emptydir"
            cache.mkdir(mode=0o777)
            cache.chmod(0o777)  # as the kubelet makes an emptyDir
            done = run_like_the_kubelet(image, verifier, {"mlbom-hub-cache": cache}, log)
            assert done.returncode == 0, done.stderr + log.read_text()
            env = {e["name"]: e["value"] for e in patched["spec"]["containers"][0]["env"]}
            assert env["HF_HUB_OFFLINE"] == "1"
            monkeypatch.setenv("HF_HUB_OFFLINE", "1")
            found = snapshot_download(repo, revision=commit, cache_dir=cache, local_files_only=True)  # fmt: skip
            assert Path(found).name == commit
            assert (Path(found) / "model.safetensors").read_bytes()[:8] == head[:8]

            # the Hub serves other bytes for the same commit: nothing is placed
            standin.repos[repo].files["README.md"] = File(CARD.encode() + b"\nplanted\n", 0, lfs=False)  # fmt: skip
            again = tmp_path / "emptydir-2"
            again.mkdir(mode=0o777)
            again.chmod(0o777)
            done = run_like_the_kubelet(image, verifier, {"mlbom-hub-cache": again}, log)
            assert done.returncode == 1, done.stderr
            assert "README.md" in log.read_text()
            assert not [p for p in again.rglob("*") if p.is_file()]
    finally:
        standin.close()
