"""Model discovery in pods and workloads (admission/discovery.py).

The manifests under tests/data/manifests/ are real ones (each names its origin at the top):
KServe's documented InferenceServices (Hub storage URI, huggingfaceserver, modelcar), a
KServe LLMInferenceService sample, the llm-d ModelService chart's rendered Deployments, the
vLLM production-stack chart rendered by Helm, Hugging Face's TGI Deployments for GKE and the
Kubernetes image-volume example. Synthetic objects cover the forms those do not show, and
hypothesis throws arbitrary JSON-like objects at the parser.
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admission.discovery import (
    ANNOTATION,
    KSERVE_SOURCE_URI,
    MAX_ITEMS,
    ModelUse,
    PodUnderReview,
    account,
    gpu_requests,
    images,
    models_in,
    pods_in,
)
from mlbom.references import parse
from tests.builders import DATA

MANIFESTS = DATA / "manifests"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "ab" * 32


def load(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def found(name: str) -> list[tuple[str, str, list[ModelUse]]]:
    """(kind, object name, models) for every pod of every object in the manifest."""
    return [
        (pod.kind, doc["metadata"]["name"], models_in(pod))
        for doc in load(name)
        for pod in pods_in(doc)
    ]


def pod(spec: dict, annotations: dict | None = None, kind: str = "Pod") -> PodUnderReview:
    meta = {"name": "p", "annotations": annotations or {}}
    return PodUnderReview(kind, meta, spec, meta)


def refs(uses: list[ModelUse]) -> list[str]:
    return [u.reference for u in uses]


def only(uses: list[ModelUse]) -> ModelUse:
    assert len(uses) == 1, uses
    return uses[0]


def vllm(*args: str, **container) -> dict:
    return {
        "containers": [
            {"name": "vllm", "image": "vllm/vllm-openai:v0.9.1", "args": list(args), **container}
        ]
    }


# -- real manifests -----------------------------------------------------------------------


def test_every_manifest_names_its_origin():
    names = sorted(p.name for p in MANIFESTS.glob("*.yaml"))
    assert len(names) >= 10
    for name in names:
        assert (MANIFESTS / name).read_text().startswith("# Origin: "), name


def test_kserve_storage_uri_from_the_hub():
    sa, isvc = load("kserve-hf-storageuri.yaml")
    assert pods_in(sa) == []
    (predictor,) = pods_in(isvc)
    use = only(models_in(predictor))
    assert use.reference == "hf://meta-llama/meta-llama-3-8b-instruct"
    assert (use.pinned, use.mappable, use.source) == (False, True, "InferenceService storageUri")
    assert "hf://meta-llama/meta-llama-3-8b-instruct:<commit>" in use.hint  # KServe's form
    # --model_dir=/mnt/models is where the storage initializer puts that same model
    assert predictor.spec["containers"][0]["args"][-2:] == [
        "--model_name=llama3",
        "--model_dir=/mnt/models",
    ]
    assert predictor.metadata["annotations"][KSERVE_SOURCE_URI] == use.reference
    assert predictor.spec["serviceAccountName"] == "hfserviceacc"
    assert gpu_requests(predictor.spec) == {"nvidia.com/gpu": 1}


def test_kserve_storage_uri_pinned_to_a_commit():
    (isvc,) = [d for d in load("kserve-hf-storageuri.yaml") if d["kind"] == "InferenceService"]
    isvc["spec"]["predictor"]["model"]["storageUri"] = (
        f"hf://meta-llama/meta-llama-3-8b-instruct:{COMMIT}"
    )
    use = only(models_in(pods_in(isvc)[0]))
    assert use.reference == f"hf://meta-llama/meta-llama-3-8b-instruct@{COMMIT}"
    assert use.pinned and use.hint is None
    assert parse(use.reference).pinned


def test_kserve_huggingfaceserver_model_id():
    ((kind, name, uses),) = found("kserve-huggingfaceserver-model-id.yaml")
    assert (kind, name) == ("InferenceService", "huggingface")
    use = only(uses)
    assert use.reference == "hf://meta-llama/Llama-2-7b-chat-hf"
    assert use.source == "container kserve-container: --model_id"
    assert use.container == "kserve-container"
    assert "--model_revision" in use.hint


def test_kserve_huggingfaceserver_model_revision():
    (isvc,) = load("kserve-huggingfaceserver-model-id.yaml")
    isvc["spec"]["predictor"]["containers"][0]["args"].append(f"--model_revision={COMMIT}")
    (predictor,) = pods_in(isvc)
    assert refs(models_in(predictor)) == [f"hf://meta-llama/Llama-2-7b-chat-hf@{COMMIT}"]
    assert images(predictor.spec) == ["kserve/huggingfaceserver:latest"]


def test_kserve_modelcar_from_docker_hub():
    ((_, _, uses),) = found("kserve-modelcar-oci.yaml")
    use = only(uses)
    # KServe strips oci:// and runs the rest as an image: Docker Hub's implicit registry
    assert use.reference == "oci://docker.io/rhuss/kserving-example-sklearn:1.0"
    assert not use.pinned and use.mappable
    assert "docker.io/rhuss/kserving-example-sklearn@sha256:<digest>" in use.hint


def test_kserve_llm_inference_service_decode_and_prefill():
    pods = found("kserve-llmisvc-pd-qwen2.yaml")
    assert [k for k, _, _ in pods] == ["LLMInferenceService", "LLMInferenceService"]
    for _, _, uses in pods:
        use = only(uses)  # VLLM_ADDITIONAL_ARGS names no model here
        assert use.reference == "hf://Qwen/Qwen2.5-7B-Instruct"
        assert use.source == "LLMInferenceService spec.model.uri"
    (obj,) = load("kserve-llmisvc-pd-qwen2.yaml")
    assert [gpu_requests(p.spec) for p in pods_in(obj)] == [{"nvidia.com/gpu": 1}] * 2


def test_llm_d_model_from_the_hub():
    pods = found("llm-d-modelservice-pd.yaml")  # a ServiceAccount, decode, prefill
    assert [(k, n) for k, n, _ in pods] == [
        ("Deployment", "pd-llm-d-modelservice-decode"),
        ("Deployment", "pd-llm-d-modelservice-prefill"),
    ]
    for _, _, uses in pods:
        use = only(uses)  # not --served-model-name, not the routing sidecar's --vllm-port
        assert use.reference == "hf://facebook/opt-125m"
        assert (use.source, use.container) == ("container vllm: vllm serve argument", "vllm")
        assert "--revision <commit>" in use.hint


def test_llm_d_model_from_the_hub_pinned_by_revision():
    decode = load("llm-d-modelservice-pd.yaml")[1]
    decode["spec"]["template"]["spec"]["containers"][0]["args"] += ["--revision", COMMIT]
    use = only(models_in(pods_in(decode)[0]))
    assert (use.reference, use.pinned) == (f"hf://facebook/opt-125m@{COMMIT}", True)


def test_llm_d_model_on_a_pvc():
    ((_, _, uses),) = found("llm-d-modelservice-pvc.yaml")
    use = only(uses)
    assert use.reference == "pvc://pvc-name/path/to/model"
    assert not use.pinned and not use.mappable
    assert use.source == "container vllm: vllm serve argument /model-cache/path/to/model"
    assert ANNOTATION in use.hint


def test_llm_d_model_on_a_pvc_declared_by_annotation():
    (decode,) = load("llm-d-modelservice-pvc.yaml")
    template = decode["spec"]["template"]
    template["metadata"]["annotations"] = {ANNOTATION: f"hf://facebook/opt-125m@{COMMIT}"}
    found = account(pods_in(decode)[0])
    use = only(found.models)
    assert (use.reference, use.pinned, use.on_word) == (
        f"hf://facebook/opt-125m@{COMMIT}",
        True,
        True,
    )
    assert use.source.startswith(f"annotation {ANNOTATION}, taken on its word for pvc://")
    assert not found.all_problems()


def test_vllm_production_stack():
    (hub, local) = found("vllm-production-stack.yaml")
    use = only(hub[2])
    assert use.reference == "hf://meta-llama/Llama-3.1-8B-Instruct"
    assert use.source == "container vllm: vllm serve argument"
    use = only(local[2])  # /data is the chart's PVC
    assert use.reference == "pvc://vllm-llama3-local-storage-claim/Llama-3.1-8B-Instruct"
    assert not use.mappable


def test_vllm_production_stack_revision_in_extra_args():
    deployment = load("vllm-production-stack.yaml")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["command"] += ["--revision", COMMIT]
    assert refs(models_in(pods_in(deployment)[0])) == [
        f"hf://meta-llama/Llama-3.1-8B-Instruct@{COMMIT}"
    ]
    container["command"][-1] = "main"
    use = only(models_in(pods_in(deployment)[0]))
    assert (use.reference, use.pinned) == ("hf://meta-llama/Llama-3.1-8B-Instruct@main", False)


def test_tgi_model_id_variable():
    ((_, _, uses),) = found("tgi-gke-deployment.yaml")
    use = only(uses)
    assert use.reference == "hf://meta-llama/Meta-Llama-3-8B-Instruct"
    assert use.source == "container tgi-container: env MODEL_ID"
    assert "REVISION" in use.hint


def test_tgi_revision_variable():
    (deployment,) = load("tgi-gke-deployment.yaml")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append({"name": "REVISION", "value": COMMIT})
    use = only(models_in(pods_in(deployment)[0]))
    assert (use.reference, use.pinned) == (
        f"hf://meta-llama/Meta-Llama-3-8B-Instruct@{COMMIT}",
        True,
    )


def test_tgi_model_copied_from_gcs_cannot_be_checked():
    ((_, _, uses),) = found("tgi-gke-from-gcs.yaml")
    use = only(uses)
    # /data is filled by the init container's copy from GCS: that is the model
    assert use.reference == "gs://hf-models-gke-bucket/Qwen2-7B-Instruct" and not use.mappable
    assert use.source.startswith("container init: gcloud storage")
    (deployment,) = load("tgi-gke-from-gcs.yaml")
    assert images(pods_in(deployment)[0].spec)[0] == "google/cloud-sdk:slim"


def test_image_volume():
    ((kind, _, uses),) = found("k8s-image-volume-pod.yaml")
    use = only(uses)
    assert kind == "Pod"
    assert use.reference == "oci://quay.io/crio/artifact:v2"
    assert use.source == "volume volume: image.reference" and use.container is None


def test_image_volume_by_digest():
    (obj,) = load("k8s-image-volume-pod.yaml")
    obj["spec"]["volumes"][0]["image"]["reference"] = f"quay.io/crio/artifact@{DIGEST}"
    use = only(models_in(pods_in(obj)[0]))
    assert (use.reference, use.pinned) == (f"oci://quay.io/crio/artifact@{DIGEST}", True)


@pytest.mark.parametrize("path", sorted(MANIFESTS.glob("*.yaml")), ids=lambda p: p.name)
def test_real_manifests_are_consistent(path):
    """Every reference of every real manifest is what mlbom.references says it is."""
    for doc in load(path.name):
        for p in pods_in(doc):
            for use in models_in(p):
                check_use(use)


# -- the annotation -----------------------------------------------------------------------


def test_annotation_never_overrides_what_is_found():
    value = f"hf://acme/llm@{COMMIT}, oci://ghcr.io/acme/llm@{DIGEST}"
    found = account(pod(vllm("meta-llama/Llama-3.1-8B"), {ANNOTATION: value}))
    assert [m.reference for m in found.all_models()] == ["hf://meta-llama/Llama-3.1-8B"]
    assert [p.code for p in found.problems] == ["annotation-disagrees"] * 2


def test_annotation_on_the_workload_object_names_a_path():
    spec = vllm("/models/llm", volumeMounts=[{"name": "m", "mountPath": "/models"}])
    spec["volumes"] = [{"name": "m", "persistentVolumeClaim": {"claimName": "c"}}]
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "d", "annotations": {ANNOTATION: f"hf://acme/llm@{COMMIT}"}},
        "spec": {"template": {"metadata": {}, "spec": spec}},
    }
    found = account(pods_in(deployment)[0])
    (use,) = found.models
    assert use.reference == f"hf://acme/llm@{COMMIT}" and use.on_word
    assert not found.all_problems()


def test_annotation_entries_that_cannot_be_checked():
    value = f"s3://bucket/model, hf://acme/llm, sha256:{'cd' * 32}, hf://acme/llm, ,not a ref"
    uses = models_in(pod({}, {ANNOTATION: value}))
    assert [(u.reference, u.pinned, u.mappable) for u in uses] == [
        ("s3://bucket/model", False, False),
        ("hf://acme/llm", False, True),
        (f"sha256:{'cd' * 32}", True, True),  # a folder's digest, as stores file it
        ("not a ref", False, False),
    ]


def test_empty_annotation_is_absent():
    uses = models_in(pod(vllm("acme/llm"), {ANNOTATION: " , "}))
    assert refs(uses) == ["hf://acme/llm"]


def test_annotation_is_bounded():
    value = ",".join(f"hf://a/m{i}" for i in range(300))
    found = account(pod({}, {ANNOTATION: value}))
    assert len(found.models) == MAX_ITEMS
    assert [p.code for p in found.problems] == ["scan-limit"]


def test_references_that_are_not_valid():
    value = "hf://acme/bad--name, oci://ghcr.io/Acme/LLM:1, oci://ghcr.io/acme/llm@sha256:short"
    uses = models_in(pod({}, {ANNOTATION: value}))
    assert [(u.reference, u.mappable) for u in uses] == [
        ("hf://acme/bad--name", False),
        ("oci://ghcr.io/Acme/LLM:1", False),
        ("oci://ghcr.io/acme/llm@sha256:short", False),
    ]
    assert "not a Hub repository id" in uses[0].hint
    assert "not an OCI reference" in uses[1].hint


def test_docker_hub_short_names():
    value = f"oci://ubuntu@{DIGEST}, oci://acme/llm:1, oci://localhost:5000/llm:2"
    assert refs(models_in(pod({}, {ANNOTATION: value}))) == [
        f"oci://docker.io/library/ubuntu@{DIGEST}",
        "oci://docker.io/acme/llm:1",
        "oci://localhost:5000/llm:2",
    ]


# -- vLLM ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "container",
    [
        {"command": ["vllm", "serve", "acme/llm", "--revision", COMMIT]},
        {"command": ["/opt/venv/bin/vllm", "serve"], "args": ["acme/llm", f"--revision={COMMIT}"]},
        {"args": ["acme/llm", "--revision", COMMIT]},  # the image's entrypoint is vllm serve
        {"args": ["--model", "acme/llm", "--revision", COMMIT]},
        {"args": ["--model=acme/llm", "--tokenizer", "acme/llm", f"--revision={COMMIT}"]},
        {
            "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
            "args": ["--model", "acme/llm", "--revision", COMMIT, "--port", "8000"],
        },
        {"command": ["sh", "-c", f"exec vllm serve acme/llm --revision {COMMIT} --port 8000"]},
        {
            "command": ["/bin/bash", "-ec"],
            "args": ["pip list && vllm serve $MODEL --revision ${REV}"],
            "env": [{"name": "MODEL", "value": "acme/llm"}, {"name": "REV", "value": COMMIT}],
        },
        {
            "args": ["$(MODEL)", "--revision", "$(REV)"],
            "env": [
                {"name": "ORG", "value": "acme"},
                {"name": "MODEL", "value": "$(ORG)/llm"},
                {"name": "REV", "value": COMMIT},
            ],
        },
        {"args": ["--model", f"hf://acme/llm@{COMMIT}"]},
    ],
)
def test_vllm_forms(container):
    spec = {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.9.1", **container}]}
    use = only(models_in(pod(spec)))
    assert (use.reference, use.pinned, use.container) == (f"hf://acme/llm@{COMMIT}", True, "vllm")


def test_vllm_secondary_models_are_models_too():
    """The tokenizer named apart (at the model's revision unless it has its own), the draft
    model of speculative decoding, and LoRA adapters: vLLM loads them all."""
    other = "f" * 40
    args = [
        "acme/llm", "--revision", COMMIT,
        "--tokenizer", "acme/tok",
        "--speculative-config", json.dumps({"model": "acme/draft", "revision": other, "num_speculative_tokens": 5}),
        "--enable-lora", "--lora-modules", "sql=acme/sql-lora", json.dumps({"name": "x", "path": "/adapters/x"}),
        "--max-lora-rank", "64",
    ]  # fmt: skip
    spec = {
        "containers": [{
            "name": "vllm", "image": "vllm/vllm-openai:v0.9.1", "args": args,
            "volumeMounts": [{"name": "adapters", "mountPath": "/adapters"}],
        }],
        "volumes": [{"name": "adapters", "image": {"reference": f"reg.example/adapters@sha256:{'a' * 64}"}}],
    }  # fmt: skip
    uses = {u.reference: u for u in models_in(pod(spec))}
    assert uses[f"hf://acme/llm@{COMMIT}"].pinned
    assert uses[f"hf://acme/tok@{COMMIT}"].source == "container vllm: --tokenizer"
    assert uses[f"hf://acme/draft@{other}"].source == "container vllm: --speculative-config model"
    lora = uses["hf://acme/sql-lora"]
    assert not lora.pinned and "LoRA" in (lora.hint or "")
    assert f"oci://reg.example/adapters@sha256:{'a' * 64}" in uses  # where /adapters/x lies


@pytest.mark.parametrize(
    "args",
    [
        ["--speculative-config", '{"method": "ngram", "num_speculative_tokens": 4}'],
        ["--speculative-config", "{not json"],
        ["--lora-modules"],
        ["--lora-modules", "no-equals-sign", "--port", "8000"],
        ["--tokenizer-revision", COMMIT],
    ],
)
def test_vllm_secondary_flags_without_a_model_add_nothing(args):
    spec = {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.9.1", "args": ["acme/llm", "--revision", COMMIT, *args]}]}  # fmt: skip
    assert [u.reference for u in models_in(pod(spec))] == [f"hf://acme/llm@{COMMIT}"]


def test_vllm_additional_args():
    env = [
        {
            "name": "VLLM_ADDITIONAL_ARGS",
            "value": f"--tokenizer acme/tok --tokenizer-revision={COMMIT}",
        }
    ]
    use = models_in(pod(vllm("acme/llm", "--revision", COMMIT, env=env)))[-1]
    assert use.reference == f"hf://acme/tok@{COMMIT}"
    assert use.source == "container vllm: --tokenizer"


def test_vllm_positional_before_model_flag():
    # vllm serve's positional model_tag wins over --model
    uses = models_in(pod(vllm("acme/a", "--model", "acme/b")))
    assert refs(uses) == ["hf://acme/a"]


def test_vllm_revision_that_is_a_branch():
    use = only(models_in(pod(vllm("acme/llm", "--revision", "v1.0"))))
    assert (use.reference, use.pinned) == ("hf://acme/llm@v1.0", False)


def test_kubernetes_escaped_variable_is_not_expanded():
    spec = vllm("$$(MODEL)", env=[{"name": "MODEL", "value": "acme/llm"}])
    use = only(models_in(pod(spec)))
    assert use.reference == "$(MODEL)" and not use.mappable


def test_secret_variable_is_unknown():
    env = [{"name": "MODEL", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    found = account(pod(vllm("$(MODEL)", env=env)))
    assert "unknown-value" in [p.code for p in found.all_problems()]


def test_container_without_a_model_server():
    spec = {"containers": [{"name": "app", "image": "nginx:1.27", "args": ["--model", "acme/x"]}]}
    assert models_in(pod(spec)) == []


def test_ephemeral_container_serving_a_model():
    spec = {
        "containers": [{"name": "app", "image": "busybox"}],
        "ephemeralContainers": [{"name": "debug", "command": ["vllm", "serve", "acme/llm"]}],
    }
    use = only(models_in(pod(spec)))
    assert (use.reference, use.container) == ("hf://acme/llm", "debug")


# -- TGI, TEI, SGLang ---------------------------------------------------------------------


def test_tgi_flags_win_over_variables():
    spec = {
        "containers": [
            {
                "name": "tgi",
                "image": "ghcr.io/huggingface/text-generation-inference:3.0.1",
                "command": ["text-generation-launcher"],
                "args": ["--model-id", "acme/llm", "--revision", COMMIT],
                "env": [
                    {"name": "MODEL_ID", "value": "other/x"},
                    {"name": "REVISION", "value": "main"},
                ],
            }
        ]
    }
    assert refs(models_in(pod(spec))) == [f"hf://acme/llm@{COMMIT}"]


def test_tei_sagemaker_variables():
    env = [
        {"name": "HF_MODEL_ID", "value": "BAAI/bge-m3"},
        {"name": "HF_MODEL_REVISION", "value": COMMIT},
    ]
    spec = {
        "containers": [
            {
                "name": "tei",
                "image": "ghcr.io/huggingface/text-embeddings-inference:1.5",
                "env": env,
            }
        ]
    }
    assert refs(models_in(pod(spec))) == [f"hf://BAAI/bge-m3@{COMMIT}"]


def test_model_id_variable_outside_tgi_is_not_a_model():
    env = [{"name": "MODEL_ID", "value": "acme/llm"}]
    assert models_in(pod({"containers": [{"name": "c", "image": "python:3.12", "env": env}]})) == []


def test_sglang():
    command = [
        "python3",
        "-m",
        "sglang.launch_server",
        "--model-path",
        "acme/llm",
        "--revision",
        COMMIT,
    ]
    use = only(
        models_in(
            pod({"containers": [{"name": "s", "image": "lmsysorg/sglang", "command": command}]})
        )
    )
    assert use.reference == f"hf://acme/llm@{COMMIT}"


# -- local paths --------------------------------------------------------------------------


def test_path_on_an_image_volume_is_that_image():
    spec = vllm(
        "/models/llm/snapshot",
        volumeMounts=[
            {"name": "root", "mountPath": "/"},
            {"name": "weights", "mountPath": "/models/llm/"},
        ],
    )
    spec["volumes"] = [
        {"name": "root", "emptyDir": {}},
        {"name": "weights", "image": {"reference": f"ghcr.io/acme/llm@{DIGEST}"}},
    ]
    use = only(models_in(pod(spec)))  # the volume itself, and the path on it: one model
    assert (use.reference, use.pinned) == (f"oci://ghcr.io/acme/llm@{DIGEST}", True)
    assert "(image volume weights)" in use.source


def test_path_on_a_tagged_image_volume():
    spec = vllm("--model", "/models", volumeMounts=[{"name": "w", "mountPath": "/models"}])
    spec["volumes"] = [{"name": "w", "image": {"reference": "redhat/granite-7b-lab-gguf:1.0"}}]
    use = only(models_in(pod(spec)))
    assert use.reference == "oci://docker.io/redhat/granite-7b-lab-gguf:1.0" and not use.pinned


def test_path_with_no_volume():
    use = only(models_in(pod(vllm("/opt/model"))))
    assert use.reference == "/opt/model" and not use.mappable
    assert "no volume is mounted there" in use.hint


def test_file_uri_is_a_path():
    spec = vllm("--model", "file:///w/llm", volumeMounts=[{"name": "w", "mountPath": "/w"}])
    spec["volumes"] = [{"name": "w", "hostPath": {"path": "/srv/llm"}}]
    use = only(models_in(pod(spec)))
    assert use.reference == "/w/llm" and "volume w is hostPath" in use.hint


def test_pvc_sub_path():
    spec = vllm("/m/llm", volumeMounts=[{"name": "v", "mountPath": "/m", "subPath": "models"}])
    spec["volumes"] = [{"name": "v", "persistentVolumeClaim": {"claimName": "weights"}}]
    assert refs(models_in(pod(spec))) == ["pvc://weights/models/llm"]


# -- KServe pods, as its webhook mutates them ---------------------------------------------
# Modelled on kserve/pkg/utils/utils.go: AddStorageInitializerContainer (an init container
# storage-initializer with args [SRC, /mnt/models] and the emptyDir kserve-provision-location)
# and ConfigureModelcarToContainer (a "modelcar" sidecar running the oci:// image).


def kserve_pod(uri: str) -> PodUnderReview:
    spec = {
        "initContainers": [
            {
                "name": "storage-initializer",
                "image": "kserve/storage-initializer:v0.15.0",
                "args": [uri, "/mnt/models"],
                "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models"}],
            }
        ],
        "containers": [
            {
                "name": "kserve-container",
                "image": "kserve/huggingfaceserver:v0.15.0",
                "args": ["--model_name=llm", "--model_dir=/mnt/models"],
                "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models"}],
            }
        ],
        "volumes": [{"name": "kserve-provision-location", "emptyDir": {}}],
    }
    return pod(spec, {KSERVE_SOURCE_URI: uri})


def test_kserve_pod_with_storage_initializer():
    use = only(models_in(kserve_pod(f"hf://acme/llm:{COMMIT}")))
    assert (use.reference, use.pinned) == (f"hf://acme/llm@{COMMIT}", True)
    assert use.source == "container storage-initializer: storage-initializer source"


@pytest.mark.parametrize("uri", ["s3://bucket/llm", "gs://bucket/llm", "pvc://claim/llm"])
def test_kserve_storage_mlbom_cannot_check(uri):
    use = only(models_in(kserve_pod(uri)))
    assert (use.reference, use.pinned, use.mappable) == (uri, False, False)
    assert ANNOTATION in use.hint


def test_kserve_pod_with_modelcar():
    image = f"quay.io/acme/llm-modelcar@{DIGEST}"
    spec = {
        "shareProcessNamespace": True,
        "initContainers": [{"name": "modelcar-init", "image": image}],
        "containers": [
            {
                "name": "kserve-container",
                "args": ["--model_dir=/mnt/models"],
                "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt"}],
            },
            {
                "name": "modelcar",
                "image": image,
                "args": ["sh", "-c", "ln -sf /proc/$$$$/root/models /mnt/models && sleep infinity"],
            },
        ],
        "volumes": [{"name": "kserve-provision-location", "emptyDir": {}}],
    }
    use = only(models_in(pod(spec)))
    assert use.reference == f"oci://quay.io/acme/llm-modelcar@{DIGEST}" and use.pinned


def test_kserve_custom_container_storage_uri_variable():
    isvc = {
        "kind": "InferenceService",
        "metadata": {"name": "vllm"},
        "spec": {
            "predictor": {
                "containers": [
                    {
                        "name": "kserve-container",
                        "image": "kserve/vllmserver:latest",
                        "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
                        "args": ["--port", "8080", "--model", "/mnt/models"],
                        "env": [{"name": "STORAGE_URI", "value": "pvc://demo-claim/model_files/"}],
                    }
                ]
            }
        },
    }
    use = only(models_in(pods_in(isvc)[0]))
    assert use.reference == "pvc://demo-claim/model_files/" and not use.mappable
    assert use.source == "InferenceService storageUri"  # KServe downloads it for the container


def test_kserve_several_storage_uris_and_workers():
    isvc = {
        "kind": "InferenceService",
        "metadata": {"name": "m", "annotations": {"team": "a"}},
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "huggingface": {
                    "storageUris": [
                        {"uri": f"hf://acme/llm:{COMMIT}", "mountPath": "/mnt/models/llm"},
                        {
                            "uri": f"oci://ghcr.io/acme/adapter@{DIGEST}",
                            "mountPath": "/mnt/models/a",
                        },
                    ],
                    "resources": {"limits": {"nvidia.com/gpu": "4"}},
                },
                "workerSpec": {"containers": [{"name": "worker-container"}]},
                "tolerations": [{"key": "gpu"}],
            }
        },
    }
    head, worker = pods_in(isvc)
    expected = [f"hf://acme/llm@{COMMIT}", f"oci://ghcr.io/acme/adapter@{DIGEST}"]
    assert refs(models_in(head)) == refs(models_in(worker)) == expected
    assert head.metadata["annotations"]["team"] == "a"
    assert head.spec["tolerations"] == [{"key": "gpu"}] and "minReplicas" not in head.spec
    assert gpu_requests(head.spec) == {"nvidia.com/gpu": 4}


# -- pods of workloads --------------------------------------------------------------------

TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": vllm("acme/llm")}


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("Deployment", {"template": TEMPLATE}),
        ("StatefulSet", {"template": TEMPLATE}),
        ("DaemonSet", {"template": TEMPLATE}),
        ("ReplicaSet", {"template": TEMPLATE}),
        ("ReplicationController", {"template": TEMPLATE}),
        ("Job", {"template": TEMPLATE}),
        ("CronJob", {"jobTemplate": {"spec": {"template": TEMPLATE}}}),
    ],
)
def test_workload_templates(kind, spec):
    (p,) = pods_in({"kind": kind, "metadata": {"name": "w"}, "spec": spec})
    assert (p.kind, p.metadata, p.object_metadata) == (kind, TEMPLATE["metadata"], {"name": "w"})
    assert refs(models_in(p)) == ["hf://acme/llm"]


def test_leader_worker_set():
    lws = {
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "w"},
        "spec": {"leaderWorkerTemplate": {"leaderTemplate": TEMPLATE, "workerTemplate": TEMPLATE}},
    }
    assert len(pods_in(lws)) == 2


def test_other_objects_have_no_pods():
    assert pods_in({"kind": "ConfigMap", "data": {"a": "b"}}) == []
    assert pods_in({"kind": "Service"}) == []
    assert pods_in("Pod") == []  # type: ignore[arg-type]


def test_wrong_types_are_absent():
    deployment = {"kind": "Deployment", "metadata": [], "spec": {"template": "x"}}
    (p,) = pods_in(deployment)
    assert (p.metadata, p.spec, p.object_metadata) == ({}, {}, {})
    spec = {"containers": [{"name": 3, "args": ["vllm", 8000, None, {"a": 1}], "env": "x"}, "c"]}
    assert models_in(pod(spec)) == []


def test_limits_are_refusals_not_cuts():
    containers = [
        {"name": f"c{i}", "command": ["vllm", "serve", f"acme/m{i}"]} for i in range(1000)
    ]
    assert "scan-limit" in [p.code for p in account(pod({"containers": containers})).problems]
    args = ["--port", "1"] * 100_000 + ["--model", "acme/late"]
    assert "scan-limit" in [p.code for p in account(pod(vllm(*args))).all_problems()]
    script = "vllm serve acme/llm " + "x" * 100_000
    found = account(pod({"containers": [{"command": ["sh", "-c", script]}]}))
    assert "scan-limit" in [p.code for p in found.all_problems()]


def test_large_hostile_values_are_quick():
    big = "a." * 200_000 + "!"
    spec = vllm(big, f"--revision={big}", env=[{"name": "VLLM_ADDITIONAL_ARGS", "value": big}])
    spec["volumes"] = [{"name": "v", "image": {"reference": "r.io/" + "a/" * 100_000 + "!"}}]
    found = account(pod(spec, {KSERVE_SOURCE_URI: "oci://" + big}))
    assert "scan-limit" in [p.code for p in found.all_problems()]


# -- resources and images -----------------------------------------------------------------


def test_gpu_requests():
    spec = {
        "initContainers": [{"resources": {"requests": {"nvidia.com/gpu": "1"}}}],
        "containers": [
            {
                "resources": {
                    "limits": {"nvidia.com/gpu": 2},
                    "requests": {"nvidia.com/gpu": 2, "cpu": "4"},
                }
            },
            {"resources": {"limits": {"amd.com/gpu": "1", "habana.ai/gaudi": "8"}}},
            {"resources": {"limits": {"nvidia.com/gpu": "1.5", "gpu.intel.com/i915": True}}},
            {"resources": "x"},
            "y",
        ],
    }
    assert gpu_requests(spec) == {"nvidia.com/gpu": 3, "amd.com/gpu": 1}
    assert gpu_requests(spec, names=["habana.ai/gaudi"])["habana.ai/gaudi"] == 8
    assert gpu_requests({}) == {} and gpu_requests(None) == {}  # type: ignore[arg-type]


def test_images():
    spec = {
        "initContainers": [{"image": "busybox"}],
        "containers": [{"image": "vllm/vllm-openai:latest"}, {"image": 3}, {}],
        "ephemeralContainers": [{"image": "debug:1"}],
    }
    assert images(spec) == ["busybox", "vllm/vllm-openai:latest", "debug:1"]


# -- hostile input ------------------------------------------------------------------------

KEYS = [
    "kind",
    "metadata",
    "spec",
    "template",
    "jobTemplate",
    "leaderWorkerTemplate",
    "leaderTemplate",
    "workerTemplate",
    "predictor",
    "model",
    "huggingface",
    "workerSpec",
    "storageUri",
    "storageUris",
    "uri",
    "prefill",
    "worker",
    "containers",
    "initContainers",
    "ephemeralContainers",
    "name",
    "image",
    "command",
    "args",
    "env",
    "value",
    "volumes",
    "volumeMounts",
    "mountPath",
    "subPath",
    "persistentVolumeClaim",
    "claimName",
    "reference",
    "annotations",
    "labels",
    "resources",
    "limits",
    "requests",
    "nvidia.com/gpu",
    ANNOTATION,
    KSERVE_SOURCE_URI,
]
WORDS = [
    "Pod",
    "Deployment",
    "CronJob",
    "InferenceService",
    "LLMInferenceService",
    "LeaderWorkerSet",
    "vllm",
    "serve",
    "--model",
    "--revision",
    "--model-id",
    "--model_id",
    "sh",
    "-c",
    "text-generation-launcher",
    "modelcar",
    "storage-initializer",
    "kserve-container",
    "VLLM_ADDITIONAL_ARGS",
    "MODEL_ID",
    "STORAGE_URI",
    "/mnt/models",
    "/",
    "/models/x",
    "hf://acme/llm",
    f"hf://acme/llm@{COMMIT}",
    "hf://a/b:c",
    "oci://ghcr.io/a/b",
    f"oci://q.io/a@{DIGEST}",
    "s3://b/k",
    "acme/llm",
    "$(X)",
    "$$",
    "a'b",
    "1",
    "",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.sampled_from(WORDS)
    | st.text(max_size=30)
)
json_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), children, max_size=8)
    ),
    max_leaves=60,
)


def check_use(use: ModelUse) -> None:
    assert isinstance(use, ModelUse)
    assert isinstance(use.reference, str) and isinstance(use.source, str)
    if use.mappable:
        assert parse(use.reference).pinned is use.pinned
    else:
        assert use.pinned is False
    if not use.pinned:
        assert use.hint


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_like)
def test_arbitrary_objects_never_raise(obj):
    before = copy.deepcopy(obj)
    pods = pods_in(obj)
    assert isinstance(pods, list)
    for p in pods:
        assert isinstance(p, PodUnderReview)
        uses = models_in(p)
        assert isinstance(uses, list)
        assert len({u.reference for u in uses}) == len(uses)
        for use in uses:
            check_use(use)
        counts = gpu_requests(p.spec, names=["habana.ai/gaudi"])
        assert all(isinstance(n, int) and n > 0 for n in counts.values())
        assert all(isinstance(i, str) for i in images(p.spec))
    assert before is obj or before == obj  # the input is not modified


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["Pod", "Deployment", "InferenceService", "LLMInferenceService"]),
    meta=json_like,
    spec=json_like,
)
def test_arbitrary_objects_of_known_kinds_never_raise(kind, meta, spec):
    for p in pods_in({"kind": kind, "metadata": meta, "spec": spec}):
        for use in models_in(p):
            check_use(use)
        gpu_requests(p.spec)
        images(p.spec)


@settings(max_examples=300, deadline=None)
@given(
    command=st.lists(st.sampled_from(WORDS) | st.text(max_size=20), max_size=8),
    args=st.lists(st.sampled_from(WORDS) | st.text(max_size=40), max_size=12),
    env=st.lists(
        st.fixed_dictionaries(
            {"name": st.sampled_from(WORDS), "value": st.sampled_from(WORDS) | st.text(max_size=40)}
        ),
        max_size=4,
    ),
    image=st.sampled_from(
        ["vllm/vllm-openai", "ghcr.io/huggingface/text-generation-inference:3", "x"]
    ),
)
def test_arbitrary_command_lines_never_raise(command, args, env, image):
    container = {"name": "c", "image": image, "command": command, "args": args, "env": env}
    for use in models_in(pod({"containers": [container], "volumes": [{"name": "c"}]})):
        check_use(use)
