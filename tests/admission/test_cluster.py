"""What the cluster offers for confidential computing (admission/cluster.py), read by the
official `kubernetes` client from a stand-in of the kube-apiserver on loopback.

The stand-in speaks the API server's wire protocol for the two lists mlbom reads, over HTTPS
with a bearer token: `GET /apis/node.k8s.io/v1/runtimeclasses` and `GET /api/v1/nodes`,
`limit` and `continue` as the API server pages (and, like it, sometimes fewer items than the
limit), `Accept: …;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1` answered with metadata
only, and errors as `Status` objects. Its RuntimeClasses are kata-deploy's and its Nodes
carry the labels Node Feature Discovery, kata-deploy and the GPU Operator put on them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jsonpatch
import pytest
import yaml
from kubernetes import client

from admission.cluster import ClusterView
from admission.manifests import admission_request, admission_review
from admission.placement import CcNeed
from admission.policy import Confidential
from admission.policy_loader import parse_policy
from admission.reviewer import Reviewer
from admission.verification import ModelVerifier
from mlbom.errors import BadInputError
from tests.apiserver import TOKEN, ApiServerStandIn
from tests.registry import free_port
from tests.tls import TestCA

SNP, TDX = "kata-qemu-nvidia-gpu-snp", "kata-qemu-nvidia-gpu-tdx"
SNP_LABEL = "feature.node.kubernetes.io/cpu-security.sev.snp.enabled"
TDX_LABEL = "feature.node.kubernetes.io/cpu-security.tdx.enabled"
KATA = "katacontainers.io/kata-runtime"
GPU_CC = "nvidia.com/cc.ready.state"
NEED = CcNeed(reason="namespace secure requires it")

POLICY = """\
apiVersion: mlbom.dev/v1
kind: AdmissionPolicy
stores: [/srv/attestations]
trust:
  signers:
    - name: ci
      keyless: {issuer: https://token.actions.githubusercontent.com, subject: https://github.com/acme/m/.github/workflows/r.yml@refs/heads/main}
loadTimeVerification: {namespaces: {secure: "off"}}   # placement alone here
confidential:
  required: {namespaces: [secure]}
"""
SNP_FIRST = parse_policy(POLICY).confidential
TDX_FIRST = parse_policy(POLICY + "  tees: [tdx, sev-snp]\n").confidential


# --- the cluster's objects ---------------------------------------------------------------


def runtime_class(name: str, memory: str = "10240Mi", tolerations: list | None = None) -> dict:
    """A RuntimeClass as kata-deploy's Helm chart makes it (templates/runtimeclasses.yaml),
    as the API server returns it."""
    scheduling: dict = {"nodeSelector": {KATA: "true"}}
    if tolerations:
        scheduling["tolerations"] = tolerations
    return {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {
            "name": name,
            "uid": f"0b8c2a9e-{abs(hash(name)) % 10**4:04d}-4c1e-9a57-2f1d6c3b8e10",
            "resourceVersion": "4711",
            "creationTimestamp": "2026-03-02T10:15:42Z",
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "kata-deploy"},
        },
        "handler": name,
        "overhead": {"podFixed": {"memory": memory, "cpu": "1.0"}},
        "scheduling": scheduling,
    }


NVIDIA = {
    "apiVersion": "node.k8s.io/v1",
    "kind": "RuntimeClass",
    "metadata": {"name": "nvidia", "resourceVersion": "812", "creationTimestamp": "2026-03-01T08:00:00Z"},
    "handler": "nvidia",
}  # fmt: skip


def node(name: str, *tees: str, kata: bool = True, gpu_cc: bool = True) -> dict:
    """A Node with NFD's CPU security labels for `tees`, kata-deploy's and the GPU
    Operator's, and the status a kubelet reports (which mlbom never needs)."""
    labels = {
        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "Standard_NCC40ads_H100_v5",
        "feature.node.kubernetes.io/cpu-model.vendor_id": "AMD" if "sev-snp" in tees else "Intel",
        **({SNP_LABEL: "true"} if "sev-snp" in tees else {}),
        **({TDX_LABEL: "true"} if "tdx" in tees else {}),
        **({KATA: "true"} if kata else {}),
        **({GPU_CC: "true", "nvidia.com/gpu.present": "true"} if gpu_cc else {}),
    }  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name, "uid": f"7f3e1c2a-{len(name):04d}-4b8d-a1e6-5c9f0d2b7a34",
            "resourceVersion": "99821", "creationTimestamp": "2026-03-01T08:00:00Z",
            "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {"podCIDR": "10.244.1.0/24", "providerID": f"azure:///{name}"},
        "status": {
            "capacity": {"cpu": "40", "memory": "330Gi", "nvidia.com/gpu": "1", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "lastHeartbeatTime": "2026-03-02T10:00:00Z", "lastTransitionTime": "2026-03-01T08:01:00Z"}],
            "images": [{"names": [f"registry.k8s.io/pause:3.{i}"], "sizeBytes": 300_000 + i} for i in range(50)],
            "nodeInfo": {"kubeletVersion": "v1.33.2", "containerRuntimeVersion": "containerd://2.0.5",
                         "kernelVersion": "6.8.0-1027-azure", "osImage": "Ubuntu 24.04.2 LTS",
                         "architecture": "amd64", "operatingSystem": "linux"},
        },
    }  # fmt: skip


# --- the stand-in ------------------------------------------------------------------------


class ApiServer(ApiServerStandIn):
    """The stand-in holding the two lists --discover reads: RuntimeClasses and Nodes."""

    def __init__(self, folder: Path, runtime_classes: list[dict], nodes: list[dict]) -> None:
        super().__init__(folder)
        self.failing = ("runtimeclasses", "nodes")  # which lists `status` fails
        self.runtime_classes, self.nodes = runtime_classes, nodes

    @property
    def runtime_classes(self) -> list[dict]:
        return self.all("runtimeclasses")

    @runtime_classes.setter
    def runtime_classes(self, items: list[dict]) -> None:
        self.replace_all("runtimeclasses", items)

    @property
    def nodes(self) -> list[dict]:
        return self.all("nodes")

    @nodes.setter
    def nodes(self, items: list[dict]) -> None:
        self.replace_all("nodes", items)

    @property
    def requests(self) -> list[tuple[str, dict[str, list[str]], str]]:
        return [(r.path, r.query, r.accept) for r in self.log]


@pytest.fixture
def apiserver(tmp_path):
    server = ApiServer(
        tmp_path,
        [runtime_class(SNP), runtime_class(TDX), NVIDIA],
        [node("snp-0", "sev-snp"), node("tdx-0", "tdx"), node("cpu-0", kata=False, gpu_cc=False)],
    )
    yield server
    server.close()


def view_of(server: ApiServer, cc: Confidential = SNP_FIRST, **options: float) -> ClusterView:
    return ClusterView(cc, api_client=client.ApiClient(server.configuration()), **options)


def refreshed(view: ClusterView) -> bool:
    return asyncio.run(view.refresh())


def gpu_pod(runtime_class_name: str | None = None) -> dict:
    spec: dict = {
        "containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.10.0",
                        "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
    }  # fmt: skip
    if runtime_class_name:
        spec["runtimeClassName"] = runtime_class_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "llm", "namespace": "secure"},
        "spec": spec,
    }


# --- what is offered ---------------------------------------------------------------------


def test_both_tees_offered(apiserver):
    view = view_of(apiserver)
    assert refreshed(view) and view.healthy and view.error is None
    assert view.offered(SNP_FIRST).tees == ("sev-snp", "tdx")
    assert view.offered(TDX_FIRST).tees == ("tdx", "sev-snp")  # the policy's order
    assert view.offered(SNP_FIRST) is view.offered(SNP_FIRST)  # made once per read
    # each list asked for in pages, Nodes as metadata only
    paths = {path: (query, accept) for path, query, accept in apiserver.requests}
    assert paths["/api/v1/nodes"][0]["limit"] == ["500"]
    assert "as=PartialObjectMetadataList;g=meta.k8s.io;v=v1" in paths["/api/v1/nodes"][1]
    assert paths["/apis/node.k8s.io/v1/runtimeclasses"][0]["limit"] == ["500"]


def test_a_missing_runtime_class_skips_its_tee(apiserver):
    apiserver.runtime_classes = [runtime_class(SNP), NVIDIA]
    view = view_of(apiserver)
    assert refreshed(view)
    assert view.offered(TDX_FIRST).tees == ("sev-snp",)
    assert view.unavailable(TDX_FIRST, "tdx") == f"its RuntimeClass {TDX} is not in the cluster"
    assert view.unavailable(TDX_FIRST, "sev-snp") is None


def test_nodes_without_the_tdx_label_place_on_snp_though_the_policy_prefers_tdx(apiserver):
    # a TDX node without kata-deploy's label cannot run the class either
    apiserver.nodes = [node("snp-0", "sev-snp"), node("tdx-0", "tdx", kata=False)]
    view = view_of(apiserver, TDX_FIRST)
    assert refreshed(view)
    assert view.offered(TDX_FIRST).tees == ("sev-snp",)
    assert view.unavailable(TDX_FIRST, "tdx") == (
        f"no node has the labels {TDX_LABEL}=true, {KATA}=true"
    )
    placement = view.place(gpu_pod(), NEED, TDX_FIRST, "/spec")
    assert placement.refusal is None and placement.tee == "sev-snp"
    placed = jsonpatch.apply_patch(gpu_pod(), placement.patch)
    assert placed["spec"]["runtimeClassName"] == SNP
    assert placed["spec"]["nodeSelector"][SNP_LABEL] == "true"
    # the same pod with the policy alone goes to TDX, where it would never schedule
    from admission.placement import place

    assert place(gpu_pod(), NEED, TDX_FIRST, "/spec").tee == "tdx"


def test_a_model_that_allows_only_a_tee_no_node_offers_is_refused_saying_so(apiserver):
    apiserver.nodes = [node("snp-0", "sev-snp")]
    view = view_of(apiserver)
    assert refreshed(view)
    need = CcNeed(tees=("tdx",), reason="the BOM of the model requires it")
    placement = view.place(gpu_pod(), need, SNP_FIRST, "/spec")
    assert placement.patch == [] and placement.tee is None
    assert placement.refusal == (
        "the pod needs confidential computing (the BOM of the model requires it) and cannot be "
        f"placed: no node in the cluster offers tdx (no node has the labels {TDX_LABEL}=true, "
        f"{KATA}=true): install the TEE's RuntimeClass and label its nodes, or allow another TEE"
    )
    # a pod that names the TDX class itself: the cluster offers SNP instead
    refusal = view.place(gpu_pod(TDX), NEED, SNP_FIRST, "/spec").refusal
    assert refusal is not None and "no node in the cluster offers tdx" in refusal
    assert f"it offers sev-snp: name the runtime class {SNP} or remove runtimeClassName" in refusal
    # and the validating webhook says the same of a pod that runs there already
    spec = {**gpu_pod(TDX)["spec"], "nodeSelector": {TDX_LABEL: "true", GPU_CC: "true"}}
    (problem,) = view.confidential_problems(spec, NEED, SNP_FIRST)
    assert problem.startswith(
        "the pod needs confidential computing (namespace secure requires it), but no node in "
        "the cluster offers tdx (no node has the labels"
    )
    # the policy's own problems come first, whatever the cluster offers
    unsafe = gpu_pod()
    unsafe["spec"]["hostNetwork"] = True
    assert "hostNetwork" in view.place(unsafe, need, SNP_FIRST, "/spec").refusal
    assert "no node" not in view.place(unsafe, need, SNP_FIRST, "/spec").refusal


def test_overhead_and_scheduling_come_from_the_clusters_runtime_class(apiserver):
    # the cluster runs an older kata-deploy (16 GiB) with a taint on its TEE nodes, and the
    # policy keeps its defaults (10240Mi, no tolerations)
    toleration = {"key": "confidential", "operator": "Exists", "effect": "NoSchedule"}
    apiserver.runtime_classes = [runtime_class(SNP, "16384Mi", [toleration]), runtime_class(TDX)]
    view = view_of(apiserver)
    assert refreshed(view)
    details = view.offered(SNP_FIRST).runtime_class_details[SNP]
    assert dict(details.overhead) == {"memory": "16384Mi", "cpu": "1.0"}
    assert dict(details.node_selector) == {KATA: "true"}
    assert [dict(t) for t in details.tolerations] == [toleration]
    assert dict(SNP_FIRST.runtime_class_details[SNP].overhead)["memory"] == "10240Mi"
    placed = jsonpatch.apply_patch(gpu_pod(), view.place(gpu_pod(), NEED, SNP_FIRST, "/spec").patch)
    assert placed["spec"]["overhead"] == {"cpu": "1.0", "memory": "16384Mi"}
    assert placed["spec"]["tolerations"] == [toleration]
    assert placed["spec"]["nodeSelector"] == {SNP_LABEL: "true", KATA: "true", GPU_CC: "true"}


def test_forbidden_keeps_the_last_good_view(apiserver, caplog):
    apiserver.nodes = [node("snp-0", "sev-snp")]
    view = view_of(apiserver)
    assert refreshed(view)
    apiserver.nodes = [node("tdx-0", "tdx")]
    apiserver.status = 403  # the ClusterRoleBinding went away
    with caplog.at_level(logging.WARNING, "mlbom.admission.cluster"):
        assert refreshed(view) is False
    assert view.healthy is False
    assert view.error.startswith("HTTP 403 runtimeclasses.node.k8s.io is forbidden")
    assert "list on nodes and runtimeclasses.node.k8s.io" in view.error
    assert "keeping what was read" in caplog.text
    assert view.offered(SNP_FIRST).tees == ("sev-snp",)
    apiserver.status = None  # and back
    assert refreshed(view) and view.healthy and view.offered(SNP_FIRST).tees == ("tdx",)


def test_nodes_forbidden_alone(apiserver):
    apiserver.status, apiserver.failing = 403, ("nodes",)  # a rule for runtimeclasses only
    view = view_of(apiserver)
    assert refreshed(view) is False
    assert view.error.startswith('HTTP 403 nodes is forbidden: User "system:serviceaccount:')


def test_forbidden_before_any_good_view_uses_the_policy(apiserver, caplog):
    apiserver.status = 403
    view = view_of(apiserver)
    with caplog.at_level(logging.WARNING, "mlbom.admission.cluster"):
        assert refreshed(view) is False
    assert "placement uses the policy's TEEs unchanged" in caplog.text
    assert view.offered(SNP_FIRST) is SNP_FIRST and view.age is None
    assert view.place(gpu_pod(), NEED, SNP_FIRST, "/spec").tee == "sev-snp"


def test_an_unreachable_api_server(apiserver, caplog):
    view = view_of(apiserver)
    assert refreshed(view)
    apiserver.close()  # connections are refused from now on
    with caplog.at_level(logging.WARNING, "mlbom.admission.cluster"):
        assert refreshed(view) is False
    assert "unreachable" in view.error and "Connection refused" in view.error
    assert view.offered(SNP_FIRST).tees == ("sev-snp", "tdx")  # the last good view
    never = view_of(apiserver)
    assert refreshed(never) is False and never.offered(TDX_FIRST) is TDX_FIRST


def test_a_server_error_and_a_deadline_keep_the_last_view_too(apiserver):
    view = view_of(apiserver, deadline=5)
    assert refreshed(view)
    apiserver.status = 500
    assert refreshed(view) is False and view.error.startswith("HTTP 500 etcdserver")
    apiserver.status = None
    late = view_of(apiserver, deadline=0)
    assert refreshed(late) is False and "deadline" in late.error


@pytest.mark.parametrize("metadata_only", [True, False], ids=["metadata", "whole-nodes"])
def test_pages_are_followed(apiserver, metadata_only):
    # the API server answers fewer than asked for; the only TDX node is on the last page
    apiserver.page_size = 2
    apiserver.metadata_only = metadata_only
    apiserver.runtime_classes = [NVIDIA, runtime_class("kata-qemu"), runtime_class(SNP), runtime_class(TDX)]  # fmt: skip
    apiserver.nodes = [node(f"cpu-{i}", kata=False) for i in range(6)] + [node("tdx-0", "tdx")]
    view = view_of(apiserver, TDX_FIRST)
    assert refreshed(view)
    assert view.offered(TDX_FIRST).tees == ("tdx",)
    nodes = [q for p, q, _ in apiserver.requests if p == "/api/v1/nodes"]
    classes = [q for p, q, _ in apiserver.requests if p.endswith("/runtimeclasses")]
    assert len(nodes) == 4 and len(classes) == 2
    assert "continue" not in nodes[0] and all("continue" in q for q in nodes[1:])


def test_reads_again_in_the_background(apiserver):
    apiserver.nodes = [node("snp-0", "sev-snp")]
    view = view_of(apiserver, interval=0.05)

    async def run() -> tuple[tuple[str, ...], tuple[str, ...]]:
        await view.start()
        before = view.offered(SNP_FIRST).tees
        apiserver.nodes = [node("snp-0", "sev-snp"), node("tdx-0", "tdx")]
        for _ in range(100):
            await asyncio.sleep(0.05)
            if view.offered(SNP_FIRST).tees != before:
                break
        await view.stop()
        return before, view.offered(SNP_FIRST).tees

    assert asyncio.run(run()) == (("sev-snp",), ("sev-snp", "tdx"))


def test_connect_reads_the_kubeconfig(apiserver, tmp_path, monkeypatch):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(kubeconfig_for(apiserver))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    view = ClusterView.connect(SNP_FIRST)
    assert refreshed(view) and view.offered(SNP_FIRST).tees == ("sev-snp", "tdx")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    with pytest.raises(BadInputError, match="mlbom cannot find the API server"):
        ClusterView.connect(SNP_FIRST)


def kubeconfig_for(server: ApiServer) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "stand-in",
        "clusters": [{"name": "stand-in", "cluster": {"server": server.url, "certificate-authority": str(server.ca.path)}}],
        "users": [{"name": "mlbom", "user": {"token": TOKEN}}],
        "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "mlbom"}}],
    })  # fmt: skip


# --- through the webhook -----------------------------------------------------------------


def test_the_reviewer_places_on_the_only_tee_offered(apiserver):
    apiserver.runtime_classes = [runtime_class(TDX), NVIDIA]
    apiserver.nodes = [node("snp-0", "sev-snp"), node("tdx-0", "tdx")]
    policy = parse_policy(POLICY)  # prefers SEV-SNP
    view = ClusterView(policy.confidential, api_client=client.ApiClient(apiserver.configuration()))
    reviewer = Reviewer(policy, ModelVerifier(policy, []), cluster=view)
    assert refreshed(view)
    pod = gpu_pod("nvidia")
    decision = asyncio.run(reviewer.mutate(admission_request(pod)))
    assert decision.allowed and decision.reason == "placed on tdx confidential computing"
    placed = jsonpatch.apply_patch(pod, decision.patch)
    assert placed["spec"]["runtimeClassName"] == TDX
    assert placed["spec"]["nodeSelector"][TDX_LABEL] == "true"
    assert placed["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/pgpu": "1"}
    # the validating webhook: a pod that names the SNP class itself is told why not
    snp = gpu_pod(SNP)
    snp["spec"]["nodeSelector"] = {SNP_LABEL: "true", GPU_CC: "true"}
    decision = asyncio.run(reviewer.review(admission_request(snp)))
    assert decision.allowed is False
    assert f"no node in the cluster offers sev-snp (its RuntimeClass {SNP} is not in the cluster)" in decision.reason  # fmt: skip
    # without the view, the policy alone places on SEV-SNP
    alone = Reviewer(policy, ModelVerifier(policy, []))
    decision = asyncio.run(alone.mutate(admission_request(gpu_pod("nvidia"))))
    assert jsonpatch.apply_patch(gpu_pod("nvidia"), decision.patch)["spec"]["runtimeClassName"] == SNP  # fmt: skip


def test_serve_discover_end_to_end(apiserver, tmp_path):
    """`mlbom admission serve --discover` with a kubeconfig: the first read before serving,
    then /mutate places on the TEE the cluster offers."""
    apiserver.runtime_classes = [runtime_class(TDX)]
    (tmp_path / "kubeconfig").write_text(kubeconfig_for(apiserver))
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "tls").mkdir()
    ca = TestCA(tmp_path / "tls")  # not the stand-in's
    cert, key, _ = ca.issue()
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "kubeconfig")}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "mlbom", "admission", "serve", "--discover",
         "--policy", str(tmp_path / "policy.yaml"), "--tls-cert", str(cert), "--tls-key", str(key),
         "--host", "127.0.0.1", "--port", str(port), "--metrics-port", "0"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "wb"), env=env,  # noqa: SIM115
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(ca.path))
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=context, timeout=5)  # fmt: skip
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail((tmp_path / "server.log").read_text())
        review = admission_review(gpu_pod())
        review["request"]["dryRun"] = False
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/mutate", data=json.dumps(review).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, context=context, timeout=10) as r:
            answer = json.loads(r.read())["response"]
    finally:
        process.terminate()
        process.wait(10)
    patch = json.loads(base64.b64decode(answer["patch"]))
    assert jsonpatch.apply_patch(gpu_pod(), patch)["spec"]["runtimeClassName"] == TDX
    assert any(p == "/api/v1/nodes" for p, _, _ in apiserver.requests)
