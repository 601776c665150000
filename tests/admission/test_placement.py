"""Confidential-computing placement (admission/placement.py).

Golden cases come from the real manifests under tests/data/manifests/: the vLLM
production-stack Deployment, the Pod KServe makes for its documented Hugging Face
InferenceService, and the llm-d ModelService's decode Deployment. Each patch is applied with
the `jsonpatch` package, the result is checked field by field and against the Kubernetes
OpenAPI schema (`kubernetes-validate`, strict), and placing the result again gives no patch.

`Cluster` emulates what the API server does around the webhooks: the built-in RuntimeClass
admission step (its Admit before the mutating webhooks, its Validate after them, as
plugin/pkg/admission/runtimeclass/admission.go does), mutating webhooks in the order of their
configurations' names (a stand-in for KServe's pod mutator sorts before mlbom's
z-…-placement), then, since a webhook changed the object, the mutating chain once more (the
RuntimeClass step again, now with the TEE's class, and mlbom's webhook reinvoked), then
validation. Its RuntimeClasses are kata-deploy's, as its Helm chart renders them (cpu "1.0").
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import jsonpatch
import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admission.discovery import KSERVE_SOURCE_URI
from admission.manifests import objects_in
from admission.placement import (
    CcNeed,
    Placement,
    cc_need_of_bom,
    combine,
    confidential_problems,
    escape,
    place,
    pod_spec_paths,
    quantity,
)
from admission.policy import Confidential, RuntimeClassDetails
from admission.policy_loader import parse_policy
from tests.builders import DATA

MANIFESTS = DATA / "manifests"
KUBE_VERSIONS = ["1.30", kubernetes_validate.latest_version()]
SNP, TDX = "kata-qemu-nvidia-gpu-snp", "kata-qemu-nvidia-gpu-tdx"
SNP_LABEL = "feature.node.kubernetes.io/cpu-security.sev.snp.enabled"
TDX_LABEL = "feature.node.kubernetes.io/cpu-security.tdx.enabled"
GPU_CC = "nvidia.com/cc.ready.state"
KATA = "katacontainers.io/kata-runtime"
NEED = CcNeed(reason="namespace secure requires it")

# The cluster's RuntimeClasses: kata-deploy's chart (templates/runtimeclasses.yaml,
# kata-containers commit 0041891c3a1bd0380c562e31c10cf25dc4493f9c) and the GPU Operator's.
RUNTIME_CLASSES = {
    **{
        name: {
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": {"name": name},
            "handler": name,
            "overhead": {"podFixed": {"memory": "10240Mi", "cpu": "1.0"}},
            "scheduling": {"nodeSelector": {KATA: "true"}},
        }
        for name in (SNP, TDX)
    },
    "nvidia": {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": "nvidia"},
        "handler": "nvidia",
    },
}

POLICY_HEAD = """\
apiVersion: mlbom.dev/v1
kind: AdmissionPolicy
stores: [/srv/attestations]
trust:
  signers:
    - name: ci
      keyless: {issuer: https://token.actions.githubusercontent.com, subject: https://github.com/acme/m/.github/workflows/r.yml@refs/heads/main}
"""


def confidential(body: str = "") -> Confidential:
    """The `confidential` section of a policy parsed from YAML, as the webhook loads it."""
    return parse_policy(POLICY_HEAD + body).confidential


DEFAULT = confidential()
# A site that prefers TDX, marks its TEE nodes with a taint and the vendor's own label.
TDX_FIRST = confidential("""\
confidential:
  tees: [tdx, sev-snp]
  nodeSelectors: {sev-snp: {amd.feature.node.kubernetes.io/snp: "true"}}
  tolerations:
    - {key: confidential, operator: Exists, effect: NoSchedule}
""")


# --- the real manifests ------------------------------------------------------------------


def vllm_deployment() -> dict:
    return objects_in(MANIFESTS / "vllm-production-stack.yaml")[0]


def llm_d_decode() -> dict:
    found = objects_in(MANIFESTS / "llm-d-modelservice-pd.yaml")
    return next(o for o in found if o["metadata"]["name"].endswith("-decode"))


def kserve_predictor_pod(runtime_class: str | None = "nvidia") -> dict:
    """The Pod KServe's controller makes (raw deployment) for the predictor of
    kserve-hf-storageuri.yaml, before KServe's pod mutator injects the storage initializer:
    the predictor's PodSpec fields, the model server as kserve-container, the storage URI
    in the annotation the mutator reads. On a GPU Operator cluster it names `nvidia`."""
    found = objects_in(MANIFESTS / "kserve-hf-storageuri.yaml")
    isvc = next(o for o in found if o["kind"] == "InferenceService")
    name, predictor = isvc["metadata"]["name"], isvc["spec"]["predictor"]
    model = predictor["model"]
    spec: dict = {
        "serviceAccountName": predictor["serviceAccountName"],
        "containers": [
            {
                "name": "kserve-container",
                "image": "kserve/huggingfaceserver:v0.15.2",
                "args": ["--model_name=llama3", *model["args"]],
                "ports": [{"containerPort": 8080, "name": "http1", "protocol": "TCP"}],
                "resources": copy.deepcopy(model["resources"]),
            }
        ],
    }
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-predictor-6d8f7b9c4-q7x2m",
            "namespace": "secure",
            "labels": {"serving.kserve.io/inferenceservice": name, "component": "predictor"},
            "annotations": {KSERVE_SOURCE_URI: model["storageUri"]},
        },
        "spec": spec,
    }


def pod_from_template(workload: dict) -> dict:
    """The Pod the workload's controller creates from its template."""
    template = copy.deepcopy(workload["spec"]["template"])
    metadata = {**template.get("metadata", {}), "name": f"{workload['metadata']['name']}-0"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def apply(obj: dict, placement: Placement) -> dict:
    assert placement.refusal is None, placement.refusal
    return jsonpatch.apply_patch(obj, placement.patch)


def place_all(obj: dict, need: CcNeed, cc: Confidential) -> list[Placement]:
    return [place(obj, need, cc, path) for path in pod_spec_paths(obj)]


def assert_valid_kubernetes(obj: dict) -> None:
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


# --- emulating the API server ------------------------------------------------------------


class Rejected(Exception):
    pass


Webhook = Callable[[dict], list[dict]]


def same_resources(a: dict | None, b: dict | None) -> bool:
    """apiequality.Semantic.DeepEqual on resource lists: nil and empty alike, quantities
    compared by value."""
    a, b = a or {}, b or {}
    return a.keys() == b.keys() and all(quantity(a[k]) == quantity(b[k]) for k in a)


class Cluster:
    """The admission chain for CREATE, around mlbom's mutating webhook. As the API server's
    reinvoker does (k8s.io/apiserver/pkg/admission/reinvocation.go): when a webhook changed
    the object, the whole mutating chain runs once more, the in-tree plugins (RuntimeClass,
    now with the class the webhook set) and the IfNeeded webhooks (mlbom's)."""

    def __init__(
        self,
        cc: Confidential,
        need: CcNeed | None,
        *,
        kserve: bool = False,
        classes: dict = RUNTIME_CLASSES,
    ) -> None:
        self.cc, self.need, self.classes = cc, need, classes
        self.webhooks: dict[str, Webhook] = {"z-mlbom-mlbom-admission-placement": self.mlbom}
        if kserve:
            self.webhooks["inferenceservice.serving.kserve.io"] = kserve_pod_mutator
        self.calls: list[str] = []

    def mlbom(self, obj: dict) -> list[dict]:
        """What /mutate answers: a placement for every pod spec of an object that needs CC."""
        if self.need is None:  # the webhook places only what needs CC
            return []
        patch = []
        for placement in place_all(obj, self.need, self.cc):
            if placement.refusal:
                raise Rejected(placement.refusal)
            patch += placement.patch
        return patch

    def create(self, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        pod = obj["kind"] == "Pod"
        self.runtime_class_admit(obj, pod)
        changed = False
        for name in sorted(self.webhooks):  # configurations in the order of their names
            self.calls.append(name)
            before, obj = obj, jsonpatch.apply_patch(obj, self.webhooks[name](obj))
            changed |= obj != before
        if changed:
            self.runtime_class_admit(obj, pod)
            self.calls.append("reinvoke mlbom")  # IfNeeded: it must have nothing to add
            assert self.mlbom(obj) == []
        if pod:
            self.calls.append("RuntimeClass validate")
            runtime_class_validate(obj, self.classes)
        if self.need is not None:  # mlbom's validating webhook
            for path in pod_spec_paths(obj):
                spec = jsonpatch.JsonPointer(path).resolve(obj)
                assert confidential_problems(spec, self.need, self.cc) == []
        return obj

    def runtime_class_admit(self, obj: dict, pod: bool) -> None:
        if pod:  # the plugin admits Pods only
            self.calls.append("RuntimeClass admit")
            runtime_class_admit(obj, self.classes)


def runtime_class_of(pod: dict, classes: dict) -> dict | None:
    name = pod["spec"].get("runtimeClassName")
    if name is None:
        return None
    if name not in classes:
        raise Rejected(f'pod rejected: RuntimeClass "{name}" not found')
    return classes[name]


def runtime_class_admit(pod: dict, classes: dict = RUNTIME_CLASSES) -> None:
    """The RuntimeClass plugin's Admit: its overhead and scheduling into the pod."""
    runtime_class = runtime_class_of(pod, classes)
    if runtime_class is None:
        return
    spec = pod["spec"]
    if "overhead" in runtime_class:
        fixed = runtime_class["overhead"]["podFixed"]
        if spec.get("overhead") is not None and not same_resources(fixed, spec["overhead"]):
            raise Rejected(
                "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
            )
        spec["overhead"] = dict(fixed)
    scheduling = runtime_class.get("scheduling")
    if scheduling:
        selector = spec.setdefault("nodeSelector", {})
        for key, value in scheduling.get("nodeSelector", {}).items():
            if key in selector and selector[key] != value:
                raise Rejected(f"conflict: runtimeClass.scheduling.nodeSelector[{key}]")
            selector[key] = value
        for toleration in scheduling.get("tolerations", []):
            if toleration not in spec.setdefault("tolerations", []):
                spec["tolerations"].append(toleration)


def runtime_class_validate(pod: dict, classes: dict = RUNTIME_CLASSES) -> None:
    """The RuntimeClass plugin's Validate, after every mutating webhook."""
    runtime_class = runtime_class_of(pod, classes)
    overhead = pod["spec"].get("overhead")
    if runtime_class is not None and "overhead" in runtime_class:
        if not same_resources(runtime_class["overhead"]["podFixed"], overhead):
            raise Rejected(
                "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
            )
    elif overhead is not None:
        raise Rejected(
            "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"
        )


def kserve_pod_mutator(obj: dict) -> list[dict]:
    """A stand-in for KServe's pod mutator: the storage initializer, as an init container
    that downloads the model into an emptyDir the server mounts read-only."""
    annotations = obj.get("metadata", {}).get("annotations", {})
    if obj.get("kind") != "Pod" or KSERVE_SOURCE_URI not in annotations:
        return []
    mount = {"name": "kserve-provision-location", "mountPath": "/mnt/models"}
    initializer = {
        "name": "storage-initializer",
        "image": "kserve/storage-initializer:v0.15.2",
        "args": [annotations[KSERVE_SOURCE_URI], "/mnt/models"],
        "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"},
            "requests": {"cpu": "100m", "memory": "100Mi"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [mount],
    }
    spec = obj["spec"]

    def append(key: str, item: dict) -> dict:  # a whole list where there is none
        if key in spec:
            return {"op": "add", "path": f"/spec/{key}/-", "value": item}
        return {"op": "add", "path": f"/spec/{key}", "value": [item]}

    server = next(i for i, c in enumerate(spec["containers"]) if c["name"] == "kserve-container")
    return [
        append("initContainers", initializer),
        append("volumes", {"name": mount["name"], "emptyDir": {}}),
        {
            "op": "add",
            "path": f"/spec/containers/{server}/volumeMounts",
            "value": [{**mount, "readOnly": True}],
        },
    ]


# --- golden cases ------------------------------------------------------------------------


def test_vllm_deployment_golden():
    deployment = vllm_deployment()
    [placement] = place_all(deployment, NEED, DEFAULT)
    assert placement.tee == "sev-snp"
    # the exact patch: deterministic, keys sorted, JSON Pointer escaped, a whole map added
    assert placement.patch == [
        {"op": "add", "path": "/spec/template/spec/runtimeClassName", "value": SNP},
        {
            "op": "add",
            "path": "/spec/template/spec/nodeSelector",
            "value": {SNP_LABEL: "true", GPU_CC: "true"},
        },
        {
            "op": "remove",
            "path": "/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu",
        },
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/resources/limits/nvidia.com~1pgpu",
            "value": "1",
        },
        {
            "op": "remove",
            "path": "/spec/template/spec/containers/0/resources/requests/nvidia.com~1gpu",
        },
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/resources/requests/nvidia.com~1pgpu",
            "value": "1",
        },
    ]
    placed = apply(deployment, placement)
    spec = placed["spec"]["template"]["spec"]
    assert spec["runtimeClassName"] == SNP
    assert spec["nodeSelector"] == {SNP_LABEL: "true", GPU_CC: "true"}
    # a template gets no overhead: the RuntimeClass step fills it in each Pod it makes
    assert "overhead" not in spec and "tolerations" not in spec
    resources = spec["containers"][0]["resources"]
    assert resources == {
        "requests": {"memory": "16Gi", "cpu": "10", "nvidia.com/pgpu": "1"},
        "limits": {"nvidia.com/pgpu": "1"},
    }
    # nothing else changed
    original = vllm_deployment()
    for obj in (placed, original):
        template = obj["spec"]["template"]["spec"]
        for key in ("runtimeClassName", "nodeSelector"):
            template.pop(key, None)
        template["containers"][0].pop("resources")
    assert placed == original
    assert_valid_kubernetes(apply(deployment, placement))
    assert place_all(apply(deployment, placement), NEED, DEFAULT) == [
        Placement([], "sev-snp", None)
    ]


def test_kserve_predictor_pod_golden():
    pod = kserve_predictor_pod()  # runtimeClassName: nvidia
    need = CcNeed(tees=("tdx",), gpu=True, reason="the BOM of hf://meta-llama/… requires it")
    [placement] = place_all(pod, need, DEFAULT)
    assert placement.tee == "tdx"
    placed = apply(pod, placement)
    spec = placed["spec"]
    assert spec["runtimeClassName"] == TDX  # nvidia replaced
    assert spec["overhead"] == {"cpu": "1", "memory": "10240Mi"}  # the RuntimeClass's
    assert spec["nodeSelector"] == {TDX_LABEL: "true", KATA: "true", GPU_CC: "true"}
    assert "tolerations" not in spec
    assert spec["containers"][0]["resources"] == {
        "limits": {"cpu": "6", "memory": "24Gi", "nvidia.com/pgpu": "1"},
        "requests": {"cpu": "6", "memory": "24Gi", "nvidia.com/pgpu": "1"},
    }
    assert [op["op"] for op in placement.patch][:3] == ["replace", "add", "add"]
    assert_valid_kubernetes(placed)
    assert place(placed, need, DEFAULT, "/spec") == Placement([], "tdx", None)


def test_llm_d_decode_deployment_golden():
    deployment = llm_d_decode()
    need = CcNeed(tees=("sev-snp", "tdx"), reason="the BOM of hf://facebook/opt-125m requires it")
    [placement] = place_all(deployment, need, TDX_FIRST)
    assert placement.tee == "tdx"  # the policy's preference among those the model allows
    placed = apply(deployment, placement)
    spec = placed["spec"]["template"]["spec"]
    assert spec["runtimeClassName"] == TDX
    assert spec["nodeSelector"] == {TDX_LABEL: "true", GPU_CC: "true"}
    assert spec["tolerations"] == [
        {"key": "confidential", "operator": "Exists", "effect": "NoSchedule"}
    ]
    vllm = spec["containers"][0]
    assert vllm["resources"]["limits"] == {"cpu": "16", "memory": "16Gi", "nvidia.com/pgpu": "1"}
    assert vllm["resources"]["requests"] == {"cpu": "16", "memory": "16Gi", "nvidia.com/pgpu": "1"}
    assert spec["initContainers"] == llm_d_decode()["spec"]["template"]["spec"]["initContainers"]
    assert_valid_kubernetes(placed)
    assert place_all(placed, need, TDX_FIRST) == [Placement([], "tdx", None)]


# --- the API server's order --------------------------------------------------------------


def test_kserve_pod_through_the_admission_chain():
    cluster = Cluster(DEFAULT, NEED, kserve=True)
    pod = cluster.create(kserve_predictor_pod())
    assert cluster.calls == [
        "RuntimeClass admit",  # with nvidia
        "inferenceservice.serving.kserve.io",
        "z-mlbom-mlbom-admission-placement",
        "RuntimeClass admit",  # again, with the TEE's class: what mlbom copied agrees
        "reinvoke mlbom",
        "RuntimeClass validate",
    ]
    spec = pod["spec"]
    assert spec["runtimeClassName"] == SNP
    assert spec["initContainers"][0]["name"] == "storage-initializer"  # KServe's, kept
    # the second RuntimeClass step wrote the class's own values over mlbom's equal ones
    assert spec["overhead"] == {"cpu": "1.0", "memory": "10240Mi"}
    assert spec["nodeSelector"] == {SNP_LABEL: "true", KATA: "true", GPU_CC: "true"}
    assert_valid_kubernetes(pod)


def test_a_replaced_class_with_an_overhead_through_the_admission_chain():
    """This cluster's nvidia class has an overhead: the first RuntimeClass step copies it,
    placement replaces it with the TEE class's, and the second step agrees."""
    nvidia = {**RUNTIME_CLASSES["nvidia"], "overhead": {"podFixed": {"cpu": "100m"}}}
    cluster = Cluster(DEFAULT, NEED, classes=RUNTIME_CLASSES | {"nvidia": nvidia})
    pod = cluster.create(kserve_predictor_pod())
    assert same_resources(pod["spec"]["overhead"], {"cpu": "1", "memory": "10240Mi"})


def test_kserve_pod_without_a_runtime_class_through_the_admission_chain():
    pod = Cluster(DEFAULT, NEED, kserve=True).create(kserve_predictor_pod(runtime_class=None))
    assert pod["spec"]["runtimeClassName"] == SNP
    assert_valid_kubernetes(pod)


@pytest.mark.parametrize(
    ("workload", "cc", "tee_label"),
    [(vllm_deployment, DEFAULT, SNP_LABEL), (llm_d_decode, TDX_FIRST, TDX_LABEL)],
    ids=["vllm", "llm-d"],
)
def test_a_workload_then_its_pods_through_the_admission_chain(workload, cc, tee_label):
    cluster = Cluster(cc, NEED, kserve=True)
    deployment = cluster.create(workload())
    assert_valid_kubernetes(deployment)
    # the controller's Pod: the RuntimeClass step copies overhead and scheduling from the
    # class the template names, and mlbom has nothing left to do
    pod = cluster.create(pod_from_template(deployment))
    assert cluster.mlbom(pod) == []
    runtime_class = RUNTIME_CLASSES[pod["spec"]["runtimeClassName"]]
    assert pod["spec"]["overhead"] == runtime_class["overhead"]["podFixed"]
    assert pod["spec"]["nodeSelector"] == {tee_label: "true", GPU_CC: "true", KATA: "true"}
    assert_valid_kubernetes(pod)


def test_a_pod_naming_the_tee_class_keeps_the_clusters_overhead():
    """An older kata-deploy (16384Mi) in the cluster: the RuntimeClass step copied the real
    overhead into the pod, and placement leaves it, so the pod is admitted."""
    pod = kserve_predictor_pod(runtime_class=SNP)
    pod["spec"]["overhead"] = {"cpu": "1", "memory": "16384Mi"}
    placement = place(pod, NEED, DEFAULT, "/spec")
    assert not [op for op in placement.patch if op["path"].startswith("/spec/overhead")]
    assert placement.patch[0] == {
        "op": "add",
        "path": "/spec/nodeSelector",
        "value": {SNP_LABEL: "true", GPU_CC: "true"},  # the class's own: the step added it
    }
    stale = RUNTIME_CLASSES | {
        SNP: {**RUNTIME_CLASSES[SNP], "overhead": {"podFixed": {"cpu": "1", "memory": "16384Mi"}}}
    }
    placed = apply(pod, placement)
    runtime_class_validate(placed, stale)


def test_the_chain_rejects_an_overhead_that_differs_from_the_runtime_class():
    """Why runtimeClassDetails must be the cluster's: the emulation rejects what the API
    server rejects."""
    stale = Confidential(
        runtime_class_details={
            SNP: RuntimeClassDetails.from_runtime_class(
                {"overhead": {"podFixed": {"memory": "2Gi"}}}
            )
        }
    )
    with pytest.raises(Rejected, match="Overhead doesn't match"):
        Cluster(stale, NEED).create(kserve_predictor_pod())


def test_a_pod_that_does_not_need_cc_is_never_touched():
    pod = kserve_predictor_pod()
    cluster = Cluster(DEFAULT, None, kserve=True)
    created = cluster.create(pod)
    assert created["spec"]["runtimeClassName"] == "nvidia"
    assert "nodeSelector" not in created["spec"]
    assert (
        created["spec"]["containers"][0]["resources"] == pod["spec"]["containers"][0]["resources"]
    )
    assert combine([]) is None and combine([None]) is None
    assert cc_need_of_bom({"metadata": {"component": {"name": "m"}}}) is None


# --- refusals ----------------------------------------------------------------------------


def refusal(spec: dict, need: CcNeed = NEED, cc: Confidential = DEFAULT) -> str:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    placement = place(pod, need, cc, "/spec")
    assert placement.patch == [] and placement.tee is None
    assert placement.refusal is not None
    assert placement.refusal.startswith(
        f"the pod needs confidential computing ({need.reason}) and cannot be placed: "
    )
    # the validating webhook says the same of the pod as it is
    assert confidential_problems(spec, need, cc)
    return placement.refusal


def container(**fields: object) -> dict:
    return {"name": "server", "image": "vllm/vllm-openai:v0.9.0", **fields}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"runtimeClassName": "gvisor", "containers": [container()]},
            "the pod names the runtime class gvisor, which is not confidential and which the policy does not allow replacing (confidential.replaceableRuntimeClasses: nvidia, runc): remove runtimeClassName or name kata-qemu-nvidia-gpu-snp",
        ),
        (
            {
                "containers": [container(volumeMounts=[{"name": "model", "mountPath": "/models"}])],
                "volumes": [
                    {
                        "name": "model",
                        "image": {"reference": "quay.io/acme/llama@sha256:" + "a" * 64},
                    }
                ],
            },
            "volume model mounts quay.io/acme/llama@sha256:"
            + "a" * 64
            + " as an image volume: Kata Containers cannot mount image volumes, and weights the host pulls would sit outside the TEE; ship the model in a container image (KServe's modelcar) or download it in the pod",
        ),
        (
            {"containers": [container(securityContext={"privileged": True})]},
            "container server is privileged, which confidential containers do not allow: remove securityContext.privileged",
        ),
        (
            {
                "containers": [container()],
                "initContainers": [container(name="init", securityContext={"privileged": True})],
            },
            "container init is privileged",
        ),
        (
            {
                "containers": [container()],
                "ephemeralContainers": [
                    container(name="debug", securityContext={"privileged": True})
                ],
            },
            "container debug is privileged",
        ),
        (
            {
                "containers": [container()],
                "volumes": [{"name": "cache", "hostPath": {"path": "/models"}}],
            },
            "volume cache is the host's /models (hostPath): the host's files are outside the TEE; use an emptyDir or a persistent volume claim",
        ),
        (
            {"containers": [container()], "hostNetwork": True},
            "it sets hostNetwork: a confidential pod cannot share the host's namespaces; remove it",
        ),
        ({"containers": [container()], "hostPID": True}, "it sets hostPID"),
        ({"containers": [container()], "hostIPC": True}, "it sets hostIPC"),
        (
            {"containers": [container()], "nodeSelector": {SNP_LABEL: "false"}},
            f"nodeSelector {SNP_LABEL}=false conflicts with the TEE sev-snp's {SNP_LABEL}=true: remove it from the pod",
        ),
        (
            {
                "containers": [container(resources={"limits": {"nvidia.com/gpu": "1"}})],
                "nodeSelector": {GPU_CC: "false"},
            },
            f"nodeSelector {GPU_CC}=false conflicts with the confidential GPUs' {GPU_CC}=true",
        ),
        (
            {"containers": [container()], "nodeSelector": {KATA: "false"}},
            f"nodeSelector {KATA}=false conflicts with the runtime class {SNP}'s {KATA}=true",
        ),
        (
            {
                "containers": [
                    container(resources={"limits": {"nvidia.com/gpu": "2", "nvidia.com/pgpu": "1"}})
                ]
            },
            "container server has limits nvidia.com/gpu=2 and nvidia.com/pgpu=1: confidential GPUs are passed through as nvidia.com/pgpu; ask for one of them",
        ),
    ],
    ids=[
        "other-runtime-class",
        "image-volume",
        "privileged",
        "privileged-init",
        "privileged-ephemeral",
        "hostPath",
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "tee-label-conflict",
        "gpu-label-conflict",
        "runtime-class-label-conflict",
        "gpu-counts-differ",
    ],
)
def test_refusals(spec, expected):
    assert expected in refusal(spec)


def test_every_refusal_is_listed_at_once():
    spec = {
        "runtimeClassName": "gvisor",
        "hostNetwork": True,
        "containers": [container(securityContext={"privileged": True})],
    }
    found = refusal(spec)
    assert "container server is privileged" in found
    assert "it sets hostNetwork" in found
    assert "runtime class gvisor" in found


def test_a_runtime_class_of_a_tee_the_model_does_not_allow():
    need = CcNeed(tees=("tdx",), reason="the BOM of m requires it")
    found = refusal({"runtimeClassName": SNP, "containers": [container()]}, need)
    assert found.endswith(
        f"the pod names the runtime class {SNP} of the TEE sev-snp, which the model does not "
        f"allow (it allows tdx): name {TDX} or remove runtimeClassName"
    )


def test_a_model_whose_tees_the_policy_does_not_offer():
    need = CcNeed(tees=("cca",), reason="the BOM of m requires it")
    found = refusal({"containers": [container()]}, need)
    assert found.endswith(
        "the model allows only cca; the policy offers sev-snp, tdx: add one of the model's "
        "TEEs to confidential.tees"
    )


def test_no_runtime_class_is_replaceable_when_the_policy_says_so():
    strict = confidential("confidential:\n  replaceableRuntimeClasses: []\n")
    assert strict.replaceable_runtime_classes == ()
    assert "replaceableRuntimeClasses: none" in refusal(
        {"runtimeClassName": "nvidia", "containers": [container()]}, cc=strict
    )
    # an unset class is always replaceable
    placement = place({"kind": "Pod", "spec": {"containers": [container()]}}, NEED, strict, "/spec")
    assert placement.tee == "sev-snp"


def test_a_confidential_class_of_another_allowed_tee_is_kept():
    pod = {"kind": "Pod", "spec": {"runtimeClassName": TDX, "containers": [container()]}}
    placement = place(pod, NEED, DEFAULT, "/spec")  # the policy prefers sev-snp
    assert placement.tee == "tdx"
    assert placement.patch == [
        {"op": "add", "path": "/spec/nodeSelector", "value": {TDX_LABEL: "true"}}
    ]


# --- details of the patch ----------------------------------------------------------------


def test_json_pointer_escaping_and_merging_into_existing_maps():
    cc = confidential("""\
confidential:
  nodeSelectors: {sev-snp: {"amd.feature.node.kubernetes.io/snp": "true"}}
  gpuResourceRenames: {example.com/gpu-a: example.com/pgpu}
  tolerations:
    - {key: amd.com/sev, operator: Exists}
""")
    spec = {
        "nodeSelector": {"topology.kubernetes.io/zone": "eu-1"},
        "tolerations": [{"key": "other", "operator": "Exists"}],
        "containers": [container(resources={"limits": {"example.com/gpu-a": 2}})],
    }
    placement = place(
        {"kind": "Deployment", "spec": {"template": {"spec": spec}}},
        NEED,
        cc,
        "/spec/template/spec",
    )
    assert placement.patch == [
        {"op": "add", "path": "/spec/template/spec/runtimeClassName", "value": SNP},
        {
            "op": "add",
            "path": "/spec/template/spec/nodeSelector/amd.feature.node.kubernetes.io~1snp",
            "value": "true",
        },
        {
            "op": "add",
            "path": "/spec/template/spec/nodeSelector/nvidia.com~1cc.ready.state",
            "value": "true",
        },
        {
            "op": "add",
            "path": "/spec/template/spec/tolerations/-",
            "value": {"key": "amd.com/sev", "operator": "Exists"},
        },
        {
            "op": "remove",
            "path": "/spec/template/spec/containers/0/resources/limits/example.com~1gpu-a",
        },
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/resources/limits/example.com~1pgpu",
            "value": 2,
        },
    ]
    assert escape("a~b/c") == "a~0b~1c"
    assert escape("~1") == "~01"


def test_a_rename_to_a_name_already_there_with_the_same_count():
    spec = {
        "containers": [
            container(resources={"limits": {"nvidia.com/gpu": 1, "nvidia.com/pgpu": "1"}})
        ]
    }
    placement = place({"kind": "Pod", "spec": spec}, NEED, DEFAULT, "/spec")
    renames = [op for op in placement.patch if "/resources/" in op["path"]]
    assert renames == [
        {"op": "remove", "path": "/spec/containers/0/resources/limits/nvidia.com~1gpu"}
    ]


def test_init_containers_are_renamed_too():
    spec = {
        "initContainers": [
            container(name="warmup", resources={"requests": {"nvidia.com/gpu": "1"}})
        ],
        "containers": [container()],
    }
    placed = apply(
        {"kind": "Pod", "spec": spec}, place({"kind": "Pod", "spec": spec}, NEED, DEFAULT, "/spec")
    )
    assert placed["spec"]["initContainers"][0]["resources"] == {
        "requests": {"nvidia.com/pgpu": "1"}
    }
    assert placed["spec"]["nodeSelector"][GPU_CC] == "true"


def test_the_gpu_label_when_the_model_asks_for_confidential_gpus():
    spec = {"containers": [container()]}
    cpu_only = place({"kind": "Pod", "spec": spec}, NEED, DEFAULT, "/spec")
    gpu = place({"kind": "Pod", "spec": spec}, CcNeed(gpu=True, reason="r"), DEFAULT, "/spec")
    selector = next(op["value"] for op in cpu_only.patch if op["path"] == "/spec/nodeSelector")
    assert GPU_CC not in selector
    selector = next(op["value"] for op in gpu.patch if op["path"] == "/spec/nodeSelector")
    assert selector[GPU_CC] == "true"


def test_a_replaced_class_gets_exactly_the_new_class_overhead():
    # The nvidia class of this cluster had an overhead, which the RuntimeClass step copied.
    spec = {"runtimeClassName": "nvidia", "overhead": {"cpu": "100m"}, "containers": [container()]}
    placement = place({"kind": "Pod", "spec": spec}, NEED, DEFAULT, "/spec")
    assert {
        "op": "replace",
        "path": "/spec/overhead",
        "value": {"cpu": "1", "memory": "10240Mi"},
    } in placement.patch
    # a class without overhead: the old one goes, or the API server rejects the pod
    bare = Confidential(runtime_class_details={})
    placement = place({"kind": "Pod", "spec": spec}, NEED, bare, "/spec")
    assert {"op": "remove", "path": "/spec/overhead"} in placement.patch
    # an equal overhead, written differently, stays
    spec["overhead"] = {"cpu": "1000m", "memory": "10Gi"}
    placement = place({"kind": "Pod", "spec": spec}, NEED, DEFAULT, "/spec")
    assert not [op for op in placement.patch if op["path"] == "/spec/overhead"]


def test_runtime_class_tolerations_are_copied_into_a_pod():
    taint = {"key": "kata", "operator": "Exists", "effect": "NoSchedule"}
    cc = Confidential(
        runtime_class_details={
            SNP: RuntimeClassDetails.from_runtime_class({"scheduling": {"tolerations": [taint]}})
        }
    )
    placement = place({"kind": "Pod", "spec": {"containers": [container()]}}, NEED, cc, "/spec")
    assert {"op": "add", "path": "/spec/tolerations", "value": [taint]} in placement.patch
    assert not any(op["path"] == "/spec/overhead" for op in placement.patch)


def test_pod_spec_paths():
    spec = {"containers": []}
    template = {"template": {"spec": spec}}
    assert pod_spec_paths({"kind": "Pod", "spec": spec}) == ["/spec"]
    for kind in (
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
    ):
        assert pod_spec_paths({"kind": kind, "spec": template}) == ["/spec/template/spec"]
    cron = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": template}}}
    assert pod_spec_paths(cron) == ["/spec/jobTemplate/spec/template/spec"]
    lws = {
        "kind": "LeaderWorkerSet",
        "spec": {"leaderWorkerTemplate": {"workerTemplate": {"spec": spec}}},
    }
    assert pod_spec_paths(lws) == ["/spec/leaderWorkerTemplate/workerTemplate/spec"]
    for other in (
        {"kind": "InferenceService", "spec": {}},
        {"kind": "Deployment"},
        {"kind": 3},
        {},
        [],
    ):
        assert pod_spec_paths(other) == []  # type: ignore[arg-type]
    found = place({"kind": "Pod"}, NEED, DEFAULT, "/spec")
    assert found.refusal and "has no pod spec at /spec" in found.refusal


def test_a_cronjob_is_placed_in_its_job_template():
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "eval"},
        "spec": {
            "schedule": "0 * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {"spec": {"restartPolicy": "Never", "containers": [container()]}}
                }
            },
        },
    }
    [placement] = place_all(cron, NEED, DEFAULT)
    placed = apply(cron, placement)
    assert placed["spec"]["jobTemplate"]["spec"]["template"]["spec"]["runtimeClassName"] == SNP
    assert_valid_kubernetes(placed)


def test_quantities():
    assert quantity("10240Mi") == quantity("10Gi") == 10 * 2**30
    assert quantity("1.0") == quantity("1") == quantity("1000m") == quantity(1) == 1
    assert quantity("250m") == quantity("0.25")
    assert quantity("1e3") == quantity("1k") == 1000
    assert quantity("2E") == 2 * 10**18
    assert quantity("+.5") == quantity("500m")
    for bad in ("", "Mi", "1.5.0", "ten", "1 Gi", None, True, [1]):
        assert quantity(bad) is None


# --- what the model needs ----------------------------------------------------------------


def bom(*properties: tuple[str, str], purl: str | None = "pkg:huggingface/acme/llm@0123") -> dict:
    component: dict = {"type": "machine-learning-model", "name": "llm"}
    if purl:
        component["purl"] = purl
    component["properties"] = [{"name": n, "value": v} for n, v in properties]
    return {"metadata": {"component": component}}


def test_cc_need_of_bom():
    assert cc_need_of_bom(bom(("mlbom:cc:required", "true"))) == CcNeed(
        reason="the BOM of pkg:huggingface/acme/llm@0123 requires it"
    )
    need = cc_need_of_bom(
        bom(
            ("mlbom:cc:required", "true"),
            ("mlbom:cc:tee", "TDX"),
            ("mlbom:cc:tee", "sev-snp, tdx"),
            ("mlbom:cc:gpu", "true"),
            purl=None,
        )
    )
    assert need == CcNeed(tees=("tdx", "sev-snp"), gpu=True, reason="the BOM of llm requires it")
    # what mlbom generate --require-cc writes
    assert (
        cc_need_of_bom(bom(("mlbom:cc:required", "true"), ("mlbom:cc:gpu", "false"))).gpu is False
    )  # type: ignore[union-attr]
    assert cc_need_of_bom(bom(("mlbom:cc:required", "false"), ("mlbom:cc:tee", "tdx"))) is None
    assert cc_need_of_bom(bom(("mlbom:cc:tee", "tdx"))) is None
    for hostile in (
        {},
        {"metadata": []},
        {"metadata": {"component": {"properties": [1, {"name": 2}]}}},
    ):
        assert cc_need_of_bom(hostile) is None


def test_combine_takes_the_stricter():
    namespace = CcNeed(reason="namespace secure requires it")
    model = CcNeed(tees=("sev-snp", "tdx"), reason="the BOM of a requires it")
    other = CcNeed(tees=("tdx",), gpu=True, reason="the BOM of b requires it")
    assert combine([namespace]) == namespace
    assert combine([namespace, model]) == CcNeed(
        tees=("sev-snp", "tdx"),
        reason="namespace secure requires it; the BOM of a requires it",
    )
    assert combine([model, None, other]) == CcNeed(
        tees=("tdx",), gpu=True, reason="the BOM of a requires it; the BOM of b requires it"
    )
    assert combine([namespace, namespace]).reason == "namespace secure requires it"  # type: ignore[union-attr]


def test_needs_with_no_tee_in_common_are_refused():
    need = combine(
        [
            CcNeed(tees=("sev-snp",), reason="the BOM of a requires it"),
            CcNeed(tees=("tdx",), reason="the BOM of b requires it"),
        ]
    )
    assert need is not None and need.conflicting and need.tees == ()
    assert (
        need.reason
        == "the BOM of a requires it (only sev-snp); the BOM of b requires it (only tdx)"
    )
    found = refusal({"containers": [container()]}, need)
    assert found.endswith("no TEE satisfies every requirement")
    # a third need naming no TEE does not make it satisfiable again
    assert combine([need, NEED]).conflicting  # type: ignore[union-attr]
    assert confidential_problems({"runtimeClassName": SNP}, need, DEFAULT) == [
        f"the pod needs confidential computing ({need.reason}), but no TEE satisfies every requirement"
    ]


def test_confidential_problems_of_the_final_pod():
    gpu_pod = {
        "runtimeClassName": SNP,
        "nodeSelector": {SNP_LABEL: "true"},
        "containers": [container(resources={"limits": {"nvidia.com/pgpu": "1"}})],
    }
    assert confidential_problems(gpu_pod, NEED, DEFAULT) == [
        "the pod needs confidential computing (namespace secure requires it) on sev-snp nodes, "
        f"but its nodeSelector lacks {GPU_CC}=true: enable mlbom's mutating webhook or add them"
    ]
    gpu_pod["nodeSelector"][GPU_CC] = "true"
    assert confidential_problems(gpu_pod, NEED, DEFAULT) == []
    # the runtime class of a TEE the model does not allow
    only_tdx = CcNeed(tees=("tdx",), reason="r")
    assert confidential_problems(gpu_pod, only_tdx, DEFAULT) == [
        f"the pod needs confidential computing (r), but its runtime class is {SNP}, not a "
        f"confidential one the model and the policy allow (tdx: {TDX}): enable mlbom's "
        "mutating webhook or set runtimeClassName"
    ]
    unsafe = {**gpu_pod, "hostPID": True}
    assert confidential_problems(unsafe, NEED, DEFAULT) == [
        "the pod needs confidential computing (namespace secure requires it), but it sets "
        "hostPID: a confidential pod cannot share the host's namespaces; remove it"
    ]
    for hostile in ({}, {"runtimeClassName": ["x"], "nodeSelector": "a", "containers": "b"}):
        assert confidential_problems(hostile, NEED, DEFAULT)


# --- idempotency over arbitrary pods -----------------------------------------------------

LABELS = [SNP_LABEL, TDX_LABEL, GPU_CC, KATA, "amd.feature.node.kubernetes.io/snp", "zone"]
TOLERATIONS = [
    {"key": "confidential", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "nvidia.com/gpu", "operator": "Exists"},
]
RESOURCES = ["nvidia.com/gpu", "nvidia.com/pgpu", "cpu", "memory"]
AMOUNTS = st.sampled_from(["0", "1", "2", 1, 2, "500m", "16Gi"])
CLASS_NAMES = st.sampled_from([None, "", "nvidia", "runc", SNP, TDX, "gvisor"])


@st.composite
def pod_specs(draw: st.DrawFn) -> dict:
    spec: dict = {}
    runtime_class = draw(CLASS_NAMES)
    if runtime_class is not None or draw(st.booleans()):
        spec["runtimeClassName"] = runtime_class
    # each map or list absent, null, or given
    selectors = st.dictionaries(
        st.sampled_from(LABELS), st.sampled_from(["true", "false"]), max_size=4
    )
    tolerations = st.lists(st.sampled_from(TOLERATIONS), max_size=2, unique_by=str)
    overheads = st.sampled_from([{"cpu": "1", "memory": "10240Mi"}, {"cpu": "100m"}, {}])
    for key, values in (
        ("nodeSelector", selectors),
        ("tolerations", tolerations),
        ("overhead", overheads),
    ):
        if draw(st.booleans()):
            spec[key] = draw(st.none() | values)
    resources = st.dictionaries(st.sampled_from(RESOURCES), AMOUNTS, max_size=3)
    for key in ("containers", "initContainers"):
        if key == "containers" or draw(st.booleans()):
            spec[key] = [
                container(name=f"{key}-{i}", resources={"limits": limits, "requests": requests})
                for i, (limits, requests) in enumerate(
                    draw(st.lists(st.tuples(resources, resources), min_size=1, max_size=2))
                )
            ]
    return spec


NEEDS = st.builds(
    CcNeed,
    tees=st.lists(st.sampled_from(["sev-snp", "tdx", "cca"]), max_size=2, unique=True).map(tuple),
    gpu=st.booleans(),
    reason=st.just("r"),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=pod_specs(),
    need=NEEDS,
    cc=st.sampled_from([DEFAULT, TDX_FIRST]),
    kind=st.sampled_from(["Pod", "Deployment"]),
)
def test_placement_is_idempotent(spec, need, cc, kind):
    if kind == "Pod":
        obj, path = {"kind": "Pod", "spec": spec}, "/spec"
    else:
        obj, path = {"kind": kind, "spec": {"template": {"spec": spec}}}, "/spec/template/spec"
    before = copy.deepcopy(obj)
    placement = place(obj, need, cc, path)
    assert obj == before  # pure
    assert place(obj, need, cc, path) == placement  # deterministic
    if placement.refusal:
        assert placement.patch == [] and placement.tee is None
        return
    placed = jsonpatch.apply_patch(obj, placement.patch)
    again = place(placed, need, cc, path)
    assert again == Placement([], placement.tee, None)
    final = placed["spec"] if kind == "Pod" else placed["spec"]["template"]["spec"]
    assert confidential_problems(final, need, cc) == []
