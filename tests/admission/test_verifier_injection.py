"""Load-time verification in the pod: the mutating webhook injects `mlbom verify-load` as an
init container and the validating webhook requires it, byte for byte. Real reviews: BOMs of
a Hub stand-in model and a local folder, signed with a key and filed in a folder store; the
patch applied with the `jsonpatch` package, as the API server applies it; and every way an
author could walk around the verifier: removing, editing, moving or renaming it, taking back
the server's rewiring, pre-filling the cache volume, a sidecar server before it."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import jsonpatch
import pytest
import yaml

import attest
import mlbom
from admission import patches
from admission.manifests import admission_request
from admission.reviewer import Decision, Reviewer
from admission.verifier_injection import HUB_CACHE_PATH, HUB_CACHE_VOLUME, PREFIX
from attest import keys
from attest.statement import bom_sha256
from attest.stores import Attestation, bom_reference, open_store
from tests.builders import CARD, hf_folder, safetensors_head
from tests.hub_standin import File, HubStandIn, Repo

REPO = "acme/tiny-llm"
COMMIT = "89abcdef0123456789abcdef0123456789abcdef"
HUB_MODEL = f"hf://{REPO}@{COMMIT}"
IMAGE = "registry.example/mlbom/mlbom@sha256:" + "ab" * 32
VERIFIER_STORE = f"hf://{REPO}"  # the attestations beside the model on the Hub
GPU = {"limits": {"nvidia.com/gpu": 1}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The Hub model's and a local folder's BOMs, signed and filed; a policy that injects."""
    root = tmp_path_factory.mktemp("injection")
    standin = HubStandIn()
    head, size = safetensors_head({"w": (64, 64)})
    standin.repos[REPO] = Repo({
        "README.md": File(CARD.encode(), 0, lfs=False),
        "config.json": File(b'{"model_type": "llama"}', 0, lfs=False),
        "model.safetensors": File(head, size),
    }, commit=COMMIT)  # fmt: skip
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_ENDPOINT", standin.url)
    mp.setenv("HF_HOME", str(root / "hf-home"))
    key = keys.generate("ecdsa-p256")
    keys.write_key_pair(key, root / "signer.key", root / "signer.pub", None)
    store = root / "store"
    shas = {}
    try:
        for bom in (mlbom.generate(HUB_MODEL).to_dict(), mlbom.generate(hf_folder(root / "local")).to_dict()):  # fmt: skip
            data = json.dumps(bom).encode()
            ref = bom_reference(bom)
            open_store(str(store)).push(ref, Attestation(data, attest.sign(bom, key=key).encode()))
            shas[str(ref)] = bom_sha256(bom)
    finally:
        standin.close()
        mp.undo()
    local = next(r for r in shas if r.startswith("sha256:"))
    policy = root / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy",
        "stores": [str(store)],
        "trust": {"signers": [{"name": "ci", "key": {"path": str(root / "signer.pub")}}]},
        "modes": {"namespaces": {"team-warn": "warn"}},
        "confidential": {"required": {"namespaces": ["secure"]}},
        "loadTimeVerification": {
            "image": IMAGE,
            "namespaces": {"strict": "required", "loose": "off", "team-warn": "required"},
            "stores": ["oci://registry.example/attestations", VERIFIER_STORE],
        },
    }))  # fmt: skip
    return {"reviewer": Reviewer.load(policy), "shas": shas, "local": local, "root": root}


def mutate(world, obj: dict, namespace: str = "default") -> tuple[dict, Decision]:
    decision = asyncio.run(world["reviewer"].mutate(admission_request(obj, namespace=namespace)))
    assert decision.allowed, decision.reason
    patched = jsonpatch.apply_patch(obj, decision.patch)
    assert patches.apply(obj, decision.patch) == patched  # the offline review's own applier
    return patched, decision


def validate(world, obj: dict, namespace: str = "strict") -> Decision:
    return asyncio.run(world["reviewer"].decide(admission_request(obj, namespace=namespace), float("inf")))  # fmt: skip


def hub_pod(**container: Any) -> dict:
    """A vLLM Pod that downloads the Hub model as it starts."""
    server = {"name": "server", "image": "vllm/vllm-openai:v0.10.0", "resources": GPU,
              "command": ["vllm", "serve", REPO, "--revision", COMMIT], **container}  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "llm"}, "spec": {"containers": [server]}}  # fmt: skip


def loader_pod() -> dict:
    """An init container downloads the model into an emptyDir; the server reads the folder."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "llm"},
        "spec": {
            "initContainers": [
                {"name": "prepare", "image": "busybox", "command": ["true"]},
                {"name": "download", "image": "python:3.12",
                 "command": ["hf", "download", REPO, "--revision", COMMIT, "--local-dir", "/models/llm"],
                 "volumeMounts": [{"name": "models", "mountPath": "/models"}]},
                {"name": "after", "image": "busybox", "command": ["true"]},
            ],
            "containers": [{
                "name": "server", "image": "vllm/vllm-openai:v0.10.0", "resources": GPU,
                "command": ["vllm", "serve", "/models/llm"],
                "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}],
            }],
            "volumes": [{"name": "models", "emptyDir": {}}],
        },
    }  # fmt: skip


def claim_pod(reference: str) -> dict:
    """A model on a claim, named only by the annotation (taken on its word)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "llm", "annotations": {"mlbom.dev/model": reference}},
        "spec": {
            "containers": [{
                "name": "server", "image": "vllm/vllm-openai:v0.10.0", "resources": GPU,
                "command": ["vllm", "serve", "/mnt/model"],
                "volumeMounts": [{"name": "weights", "mountPath": "/mnt", "subPath": "team/llm"}],
            }],
            "volumes": [{"name": "weights", "persistentVolumeClaim": {"claimName": "llm-weights"}}],
        },
    }  # fmt: skip


def spec_of(obj: dict) -> dict:
    return obj["spec"]


def verifiers(spec: dict) -> list[dict]:
    return [c for c in spec.get("initContainers", []) if c["name"].startswith(PREFIX)]


def messages(decision: Decision) -> str:
    return " | ".join(p.message for p in decision.problems)


# -- the Hub model: the verifier downloads it, the server reads that copy offline -----------


def test_a_hub_model_is_downloaded_and_verified_by_the_verifier(world):
    pod, decision = mutate(world, hub_pod())
    assert decision.category == "verifier" and HUB_MODEL in decision.reason
    (verifier,) = verifiers(spec_of(pod))
    assert verifier == {
        "name": f"{PREFIX}0",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["mlbom", "verify-load", HUB_MODEL, "--path", HUB_CACHE_PATH,
                    "--bom-sha256", world["shas"][HUB_MODEL],
                    "--store", "oci://registry.example/attestations", "--store", VERIFIER_STORE,
                    "--fetch", "--quiet"],
        "resources": {"requests": {"cpu": "1", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "volumeMounts": [{"name": HUB_CACHE_VOLUME, "mountPath": HUB_CACHE_PATH, "readOnly": False}],
        "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
            "privileged": False, "readOnlyRootFilesystem": True, "runAsGroup": 65532,
            "runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }  # fmt: skip
    server = spec_of(pod)["containers"][0]
    env = {e["name"]: e["value"] for e in server["env"]}
    assert env == {"HF_HUB_CACHE": HUB_CACHE_PATH, "HUGGINGFACE_HUB_CACHE": HUB_CACHE_PATH,
                   "TRANSFORMERS_CACHE": HUB_CACHE_PATH, "HF_HUB_OFFLINE": "1",
                   "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
    assert server["volumeMounts"] == [{"name": HUB_CACHE_VOLUME, "mountPath": HUB_CACHE_PATH, "readOnly": True}]  # fmt: skip
    assert spec_of(pod)["volumes"] == [{"name": HUB_CACHE_VOLUME, "emptyDir": {}}]
    # the patched pod is admitted where the verifier is required: its HF_HUB_OFFLINE is ours
    assert validate(world, pod).allowed, messages(validate(world, pod))
    # and the patch is idempotent: the webhook's own output needs nothing more
    again, decision = mutate(world, pod)
    assert again == pod and decision.patch == []


def test_the_server_keeps_its_hub_token_and_endpoint_for_the_verifier(world):
    token = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}
    pod, _ = mutate(world, hub_pod(env=[token, {"name": "HF_HUB_CACHE", "value": "/elsewhere"}, {"name": "LOG", "value": "1"}]))  # fmt: skip
    (verifier,) = verifiers(spec_of(pod))
    assert verifier["env"] == [token]  # what the download needs, nothing else
    names = [e["name"] for e in spec_of(pod)["containers"][0]["env"]]
    assert names.count("HF_HUB_CACHE") == 1 and names[:2] == ["HF_TOKEN", "LOG"]
    assert validate(world, pod).allowed


def test_without_the_mutating_webhook_a_required_namespace_denies(world):
    decision = validate(world, hub_pod())
    assert not decision.allowed and decision.category == "load-time"
    assert f"{PREFIX}0 ({HUB_MODEL}) is missing" in decision.reason
    assert "load-time verification is required in namespace strict" in decision.reason
    # inject (the default with an image) and off do not deny a pod that needs nothing else
    assert validate(world, hub_pod(), "default").allowed
    assert validate(world, hub_pod(), "loose").allowed


def test_warn_mode_admits_with_the_reason(world):
    decision = validate(world, hub_pod(), "team-warn")
    assert decision.allowed and any("is missing" in w for w in decision.warnings)


def tampered(pod: dict, change) -> dict:
    pod = copy.deepcopy(pod)
    change(spec_of(pod))
    return pod


def _move_before_loader(spec):
    spec["initContainers"].insert(0, spec["initContainers"].pop(2))


# fmt: off
TAMPERING = {
    "removed": (lambda s: s["initContainers"].pop(), "is missing"),
    "image": (lambda s: verifiers(s)[0].update(image="registry.example/mlbom/mlbom:latest"), "(image differ)"),
    "bom-pin": (lambda s: verifiers(s)[0]["command"].__setitem__(6, "0" * 64), "(command differ)"),
    "store": (lambda s: verifiers(s)[0]["command"].__setitem__(10, "hf://evil/llm"), "(command differ)"),
    "no-fetch": (lambda s: verifiers(s)[0]["command"].remove("--fetch"), "(command differ)"),
    "args-added": (lambda s: verifiers(s)[0].update(args=["--help"]), "(args differ)"),
    "root": (lambda s: verifiers(s)[0]["securityContext"].update(runAsUser=0), "(securityContext differ)"),
    "renamed": (lambda s: verifiers(s)[0].update(name="verify"), "is missing"),
    "extra": (lambda s: s["initContainers"].append({**verifiers(s)[0], "name": f"{PREFIX}7"}), f"{PREFIX}7 is named as a verifier"),
    "online-again": (lambda s: s["containers"][0]["env"].pop(3), "is not pointed at the verified Hub cache"),
    "own-cache-var": (lambda s: s["containers"][0]["env"].append({"name": "HF_HUB_CACHE", "value": "/data"}), "is not pointed at the verified Hub cache"),
    "cache-writable": (lambda s: s["containers"][0]["volumeMounts"][0].update(readOnly=False), "does not mount the verified Hub cache read-only"),
    "cache-on-a-claim": (lambda s: s["volumes"][0].update(emptyDir=None, persistentVolumeClaim={"claimName": "old-cache"}), f"lacks the verified Hub cache, the emptyDir {HUB_CACHE_VOLUME}"),
}
# fmt: on


@pytest.mark.parametrize("how", list(TAMPERING))
def test_an_altered_verifier_or_wiring_is_denied_and_repaired(world, how):
    pod, _ = mutate(world, hub_pod())
    change, reason = TAMPERING[how]
    bad = tampered(pod, change)
    decision = validate(world, bad)
    assert not decision.allowed and reason in decision.reason, decision.reason
    # reinvoked on the altered pod, the mutating webhook writes the verifier back exactly
    repaired, _ = mutate(world, bad)
    assert verifiers(spec_of(repaired)) == verifiers(spec_of(pod))
    assert validate(world, repaired).allowed, messages(validate(world, repaired))


def test_a_pod_that_sets_hf_hub_offline_itself_is_refused_without_the_verifier(world):
    offline = hub_pod(env=[{"name": "HF_HUB_OFFLINE", "value": "1"}])
    for namespace in ("loose", "default"):
        decision = validate(world, offline, namespace)
        assert not decision.allowed and "HF_HUB_OFFLINE" in decision.reason
    assert validate(world, mutate(world, offline)[0], "default").allowed


def test_a_download_dir_of_its_own_cannot_be_pointed_at_the_verified_copy(world):
    pod = hub_pod(command=["vllm", "serve", REPO, "--revision", COMMIT, "--download-dir", "/tmp/c"])  # fmt: skip
    patched, decision = mutate(world, pod)
    assert decision.patch == []
    denied = validate(world, patched)
    assert not denied.allowed and "--download-dir /tmp/c" in denied.reason


# -- a folder a loader fills, a claim the annotation names ---------------------------------


def test_a_loaded_folder_is_rehashed_right_after_the_last_loader(world):
    pod, _ = mutate(world, loader_pod())
    names = [c["name"] for c in spec_of(pod)["initContainers"]]
    assert names == ["prepare", "download", f"{PREFIX}0", "after"]
    (verifier,) = verifiers(spec_of(pod))
    assert verifier["command"] == ["mlbom", "verify-load", HUB_MODEL, "--path", "/models/llm",
                                   "--bom-sha256", world["shas"][HUB_MODEL],
                                   "--store", "oci://registry.example/attestations",
                                   "--store", VERIFIER_STORE, "--quiet"]  # fmt: skip
    assert verifier["volumeMounts"] == [{"name": "models", "mountPath": "/models", "readOnly": True}]  # fmt: skip
    assert "env" not in spec_of(pod)["containers"][0]  # the server is not rewired
    assert validate(world, pod).allowed
    moved = tampered(pod, _move_before_loader)
    denied = validate(world, moved)
    assert not denied.allowed and "right after the pod's last loader" in denied.reason


def test_a_model_on_a_claim_named_by_the_annotation_needs_the_verifier(world):
    pod, _ = mutate(world, claim_pod(HUB_MODEL))
    (verifier,) = verifiers(spec_of(pod))
    assert verifier["command"][2:5] == [HUB_MODEL, "--path", "/mnt/model"]
    assert verifier["volumeMounts"] == [{"name": "weights", "subPath": "team/llm", "mountPath": "/mnt", "readOnly": True}]  # fmt: skip
    # inject (not required): the annotation's word still needs the verifier, unmodified
    assert validate(world, pod, "default").allowed
    stripped = tampered(pod, lambda s: s.pop("initContainers"))
    denied = validate(world, stripped, "default")
    assert not denied.allowed and "taken on the word of the annotation" in denied.reason
    off = validate(world, claim_pod(HUB_MODEL), "loose")
    assert not off.allowed and "it is off in namespace loose" in off.reason


def with_load_time(world, tmp_path, **settings) -> dict:
    """The world with other loadTimeVerification settings."""
    data = yaml.safe_load((world["root"] / "policy.yaml").read_text())
    data["loadTimeVerification"] |= settings
    for key in [k for k, v in data["loadTimeVerification"].items() if v is None]:
        del data["loadTimeVerification"][key]
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(data))
    return {**world, "reviewer": Reviewer.load(policy)}


def test_a_folder_key_no_store_of_the_pod_can_hold_is_refused(world, tmp_path):
    # a local folder's BOM in a Hub store: that holds only its own repository's commits
    local = world["local"]
    other = with_load_time(world, tmp_path, stores=[VERIFIER_STORE])
    patched, decision = mutate(other, claim_pod(local))
    assert decision.patch == []
    denied = validate(other, patched, "default")
    assert not denied.allowed and f"can hold the attestation of {local}" in denied.reason
    # an OCI store holds it (under a tag): the verifier is injected
    assert verifiers(spec_of(mutate(world, claim_pod(local))[0]))


# -- what no init container can check ------------------------------------------------------


def test_a_model_inside_the_server_image_is_refused_where_required(world):
    pod = claim_pod(HUB_MODEL)
    pod["spec"]["containers"][0]["volumeMounts"] = []
    pod["spec"]["volumes"] = []
    patched, decision = mutate(world, pod)
    assert decision.patch == []
    denied = validate(world, patched)
    assert not denied.allowed and "inside its own image" in denied.reason


def test_a_container_that_downloads_its_own_model_is_refused_where_required(world):
    script = f"hf download {REPO} --revision {COMMIT} --local-dir /m && vllm serve /m"
    pod = hub_pod(command=["/bin/sh", "-c", script])
    denied = validate(world, mutate(world, pod)[0])
    assert not denied.allowed and "container server downloads it itself" in denied.reason


def test_a_sidecar_server_before_the_loaders_is_refused(world):
    pod = loader_pod()
    server = pod["spec"]["containers"][0]
    pod["spec"]["initContainers"].insert(0, {**server, "name": "early", "restartPolicy": "Always"})
    denied = validate(world, mutate(world, pod)[0])
    assert not denied.allowed and "the sidecar early serves a model" in denied.reason


def kserve_pod(init: list[dict], sidecars: list[dict] = ()) -> dict:
    """A Pod as KServe's webhook makes it (kserve/pkg/utils/utils.go)."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "llm-predictor"},
        "spec": {
            "shareProcessNamespace": bool(sidecars),
            "initContainers": init,
            "containers": [{
                "name": "kserve-container", "image": "kserve/huggingfaceserver:v0.15.0",
                "args": ["--model_name=llm", "--model_dir=/mnt/models"], "resources": GPU,
                "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models", "readOnly": True}],
            }, *sidecars],
            "volumes": [{"name": "kserve-provision-location", "emptyDir": {}}],
        },
    }  # fmt: skip


def test_kserves_storage_initializer_is_followed_by_the_verifier(world):
    initializer = {
        "name": "storage-initializer", "image": "kserve/storage-initializer:v0.15.0",
        "args": [f"hf://{REPO}:{COMMIT}", "/mnt/models"],
        "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models"}],
    }  # fmt: skip
    pod, _ = mutate(world, kserve_pod([initializer]))
    assert [c["name"] for c in spec_of(pod)["initContainers"]] == ["storage-initializer", f"{PREFIX}0"]  # fmt: skip
    assert verifiers(spec_of(pod))[0]["command"][2:5] == [HUB_MODEL, "--path", "/mnt/models"]
    assert validate(world, pod).allowed, messages(validate(world, pod))


def test_a_modelcar_is_refused_where_required(world):
    image = "quay.io/acme/llm-modelcar@sha256:" + "cd" * 32
    modelcar = {
        "name": "modelcar", "image": image,
        "args": ["sh", "-c", "ln -sf /proc/$$$$/root/models /mnt/models && sleep infinity"],
        "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt"}],
    }  # fmt: skip
    pod = kserve_pod([{"name": "modelcar-init", "image": image}], [modelcar])
    pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] = "/mnt"
    decision = validate(world, mutate(world, pod)[0])
    assert not decision.allowed and "linked in only while the pod runs" in decision.reason


# -- every kind of workload -------------------------------------------------------------------

# fmt: off
TEMPLATES = {
    "Deployment": ("apps/v1", ("spec", "template")),
    "StatefulSet": ("apps/v1", ("spec", "template")),
    "DaemonSet": ("apps/v1", ("spec", "template")),
    "ReplicaSet": ("apps/v1", ("spec", "template")),
    "ReplicationController": ("v1", ("spec", "template")),
    "Job": ("batch/v1", ("spec", "template")),
    "CronJob": ("batch/v1", ("spec", "jobTemplate", "spec", "template")),
    "LeaderWorkerSet": ("leaderworkerset.x-k8s.io/v1", ("spec", "leaderWorkerTemplate", "workerTemplate")),
}
# fmt: on


def workload(kind: str, pod: dict) -> dict:
    api, path = TEMPLATES[kind]
    obj: dict = {"apiVersion": api, "kind": kind, "metadata": {"name": "llm"}}
    into = obj
    for key in path[:-1]:
        into = into.setdefault(key, {})
    into[path[-1]] = {"metadata": {"labels": {"app": "llm"}, **{k: v for k, v in pod["metadata"].items() if k != "name"}}, "spec": pod["spec"]}  # fmt: skip
    return obj


def template_spec(obj: dict) -> dict:
    into = obj
    for key in TEMPLATES[obj["kind"]][1]:
        into = into[key]
    return into["spec"]


@pytest.mark.parametrize("kind", list(TEMPLATES))
@pytest.mark.parametrize("make", [hub_pod, loader_pod], ids=["hub", "loader"])
def test_pod_templates_of_every_kind_get_the_verifier(world, kind, make):
    obj = workload(kind, make())
    patched, decision = mutate(world, obj)
    assert decision.patch and all(op["path"].startswith("/spec/") for op in decision.patch)
    (verifier,) = verifiers(template_spec(patched))
    assert verifier["command"][2] == HUB_MODEL
    assert validate(world, patched).allowed, messages(validate(world, patched))
    again, decision = mutate(world, patched)
    assert decision.patch == [] and again == patched
    assert not validate(world, obj).allowed  # the unpatched template is denied where required


def test_the_patch_is_deterministic(world):
    first = mutate(world, loader_pod())[1].patch
    assert all(mutate(world, loader_pod())[1].patch == first for _ in range(3))


def test_a_confidential_pod_is_placed_and_verified_in_one_patch(world):
    pod, decision = mutate(world, hub_pod(), "secure")
    assert "confidential computing" in decision.reason and "load-time verification" in decision.reason  # fmt: skip
    assert pod["spec"]["runtimeClassName"] and verifiers(spec_of(pod))
    assert validate(world, pod, "secure").allowed, messages(validate(world, pod, "secure"))
    # secure requires confidential computing, so load-time verification is required there
    unverified = tampered(pod, lambda s: s.pop("initContainers"))
    assert "is missing" in validate(world, unverified, "secure").reason


def test_a_policy_without_remote_stores_says_where_the_pod_would_fetch_from(world, tmp_path):
    other = with_load_time(world, tmp_path, stores=None)  # the policy's own: a folder
    patched, decision = mutate(other, hub_pod())
    assert decision.patch == []
    denied = validate(other, patched)
    assert not denied.allowed and "loadTimeVerification.stores" in denied.reason


def test_another_container_writing_the_verified_cache_is_refused(world):
    pod, _ = mutate(world, hub_pod())
    writer = {"name": "helper", "image": "busybox", "command": ["sleep", "infinity"],
              "volumeMounts": [{"name": HUB_CACHE_VOLUME, "mountPath": "/cache"}]}  # fmt: skip
    bad = tampered(pod, lambda s: s["containers"].append(writer))
    denied = validate(world, bad, "default")
    assert not denied.allowed and "container helper writes to it" in denied.reason


def test_a_look_alike_verifier_of_the_author_does_not_stand_in_for_the_real_one(world):
    # an author's own `mlbom verify-load --fetch` (any image) filling the cache first: it is a
    # loader like any other; the webhook's verifier still runs after it and checks the bytes
    pod = hub_pod()
    fake = {"name": "warm-cache", "image": "evil.example/mlbom", "command": [
        "mlbom", "verify-load", HUB_MODEL, "--path", HUB_CACHE_PATH, "--bom-sha256", "0" * 64,
        "--store", "oci://evil.example/a", "--fetch"],
        "volumeMounts": [{"name": HUB_CACHE_VOLUME, "mountPath": HUB_CACHE_PATH}]}  # fmt: skip
    pod["spec"]["initContainers"] = [fake]
    patched, _ = mutate(world, pod)
    assert [c["name"] for c in spec_of(patched)["initContainers"]] == ["warm-cache", f"{PREFIX}0"]
    assert validate(world, patched).allowed
    assert spec_of(patched)["volumes"] == [{"name": HUB_CACHE_VOLUME, "emptyDir": {}}]


def test_an_init_container_named_like_a_verifier_is_the_webhooks(world):
    pod = loader_pod()
    pod["spec"]["containers"][0]["command"] = ["vllm", "serve", f"{REPO}", "--revision", "main"]
    squatter = {"name": f"{PREFIX}0", "image": "evil.example/x", "command": ["true"]}
    pod["spec"]["initContainers"].append(squatter)
    patched, _ = mutate(world, pod)  # nothing to verify (the model is unpinned): it goes
    assert not verifiers(spec_of(patched))
    denied = validate(world, pod)
    assert f"{PREFIX}0 is named as a verifier but verifies nothing" in denied.reason


# -- found by attacking the change (each was admitted before its fix) -------------------------


def test_a_second_mount_at_the_model_folder_spelled_otherwise_is_refused(world):
    # the API server compares mountPaths as strings; the runtime mounts both, the later on top
    for spelling in ("/models/", "/models/x/.."):
        pod = loader_pod()
        pod["spec"]["containers"][0]["volumeMounts"].append({"name": "evil", "mountPath": spelling, "readOnly": True})  # fmt: skip
        pod["spec"]["volumes"].append({"name": "evil", "persistentVolumeClaim": {"claimName": "evil"}})  # fmt: skip
        denied = validate(world, mutate(world, pod)[0])
        assert not denied.allowed and "mounts two volumes at /models" in denied.reason


@pytest.mark.parametrize("env", [[], [{"name": "HF_HUB_OFFLINE", "value": "1"}]], ids=["online", "offline"])  # fmt: skip
def test_a_server_named_like_a_verifier_is_refused(world, env):
    patched, _ = mutate(world, hub_pod(name=f"{PREFIX}5", env=env))
    denied = validate(world, patched)
    assert (
        not denied.allowed and f"the container {PREFIX}5 takes a name mlbom keeps" in denied.reason
    )


def ephemeral_update(world, running: dict, debug: dict) -> Decision:
    """The UPDATE of pods/ephemeralcontainers that adds `debug` to the running pod."""
    from admission.manifests import admission_review
    from admission.reviewer import parse_review

    new = copy.deepcopy(running)
    new["spec"]["ephemeralContainers"] = [debug]
    review = admission_review(new, namespace="strict")
    review["request"] |= {"operation": "UPDATE", "subResource": "ephemeralcontainers", "oldObject": running}  # fmt: skip
    return asyncio.run(world["reviewer"].decide(parse_review(review), float("inf")))


@pytest.mark.parametrize("env", [[], [{"name": "HF_HUB_OFFLINE", "value": "1"}, {"name": "HF_HUB_CACHE", "value": "/root/baked"}]], ids=["online", "offline"])  # fmt: skip
def test_an_ephemeral_server_is_refused_where_required(world, env):
    running, _ = mutate(world, hub_pod())
    debug = {"name": "debug", "image": "vllm/vllm-openai:v0.10.0", "env": env,
             "command": ["vllm", "serve", REPO, "--revision", COMMIT]}  # fmt: skip
    denied = ephemeral_update(world, running, debug)
    assert not denied.allowed and "the ephemeral container debug loads" in denied.reason


@pytest.mark.parametrize("where", ["initContainers", "containers"])
def test_a_gpu_container_writing_the_verified_folder_is_refused(world, where):
    pod = loader_pod()
    pod["metadata"]["annotations"] = {"mlbom.dev/model": HUB_MODEL}  # names the found model
    pod["spec"][where].append({
        "name": "tune", "image": "busybox", "resources": GPU,
        "command": ["cp", "/evil/model.safetensors", "/models/llm/model.safetensors"],
        "volumeMounts": [{"name": "models", "mountPath": "/models"}, {"name": "evil", "mountPath": "/evil"}],
    })  # fmt: skip
    pod["spec"]["volumes"].append({"name": "evil", "persistentVolumeClaim": {"claimName": "evil"}})
    denied = validate(world, mutate(world, pod)[0])
    assert not denied.allowed and "container tune" in denied.reason


def test_a_container_given_gpus_by_variable_writing_the_verified_folder_is_refused(world):
    pod = loader_pod()
    pod["spec"]["containers"].append({
        "name": "tune", "image": "busybox", "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}],
        "command": ["sleep", "infinity"], "volumeMounts": [{"name": "models", "mountPath": "/models"}],
    })  # fmt: skip
    denied = validate(world, mutate(world, pod)[0])
    assert not denied.allowed and "container tune" in denied.reason


def test_an_annotation_naming_the_found_model_covers_no_other_path(world):
    # a loader fetches the verified model into a folder nobody serves; the server reads a claim
    pod = loader_pod()
    pod["metadata"]["annotations"] = {"mlbom.dev/model": HUB_MODEL}
    server = pod["spec"]["containers"][0]
    server["command"] = ["vllm", "serve", "/data/llm"]
    server["volumeMounts"] = [{"name": "evil", "mountPath": "/data", "readOnly": True}]
    pod["spec"]["volumes"].append({"name": "evil", "persistentVolumeClaim": {"claimName": "evil"}})
    denied = validate(world, mutate(world, pod)[0])
    assert not denied.allowed and "pvc://evil/llm" in denied.reason
    # nor an adapter on a claim beside the served Hub model
    adapters = hub_pod(
        command=["vllm", "serve", REPO, "--revision", COMMIT, "--enable-lora", "--lora-modules", "a=/adapters/a"],
        volumeMounts=[{"name": "evil", "mountPath": "/adapters", "readOnly": True}],
    )  # fmt: skip
    adapters["metadata"]["annotations"] = {"mlbom.dev/model": HUB_MODEL}
    adapters["spec"]["volumes"] = [{"name": "evil", "persistentVolumeClaim": {"claimName": "evil"}}]
    denied = validate(world, mutate(world, adapters)[0])
    assert not denied.allowed and "pvc://evil/a" in denied.reason


# -- the offline review: mutation first, as in the cluster ---------------------------------


def test_the_offline_review_decides_after_mlboms_own_mutation(world, tmp_path, cli):
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump(hub_pod()))
    policy = world["root"] / "policy.yaml"
    out, _ = cli("admission", "review", manifest, "--policy", policy, "-n", "strict")
    assert out.startswith(f"allow Pod/llm (strict): verified: {HUB_MODEL} is signed by ci")
    out, _ = cli("admission", "review", manifest, "--policy", policy, "-n", "strict", "--no-mutate", code=1)  # fmt: skip
    assert out.startswith("DENY  Pod/llm (strict): load-time verification is required")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ([{"op": "remove", "path": "/spec/missing"}], "which is not there"),
        ([{"op": "add", "path": "/spec/containers/2", "value": {}}], "out of range"),
        ([{"op": "replace", "path": "/spec/containers/01", "value": {}}], "not an array index"),
        ([{"op": "add", "path": "/metadata/name/x", "value": 1}], "reaches into a value"),
        ([{"op": "add", "path": "spec", "value": 1}], "not a JSON Pointer"),
    ],
)
def test_a_patch_that_does_not_fit_is_an_error(patch, message):
    from mlbom.errors import BadInputError

    with pytest.raises(BadInputError, match=message):
        patches.apply(hub_pod(), patch)


def test_the_verifier_asks_only_the_stores_that_can_hold_its_model(world, tmp_path):
    other = with_load_time(world, tmp_path, stores=["hf://acme/another-model", VERIFIER_STORE])
    (verifier,) = verifiers(spec_of(mutate(other, hub_pod())[0]))
    stores = [verifier["command"][i + 1] for i, w in enumerate(verifier["command"]) if w == "--store"]  # fmt: skip
    assert stores == [VERIFIER_STORE]
