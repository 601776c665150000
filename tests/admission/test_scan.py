"""The background scan (admission/scan.py) against the kube-apiserver stand-in: what runs is
decided again as admission would decide it now, reported as PolicyReports without churn, and
scanned by one replica at a time (a Lease)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from kubernetes import client

import attest
from admission.cluster import KubeApi
from admission.reviewer import Reviewer
from admission.scan import LeaderLease, Scanner, write_reports
from admission.server import Metrics
from attest import keys
from attest.stores import Attestation, open_store
from mlbom.references import parse
from tests.apiserver import ApiServerStandIn
from tests.builders import minimal_bom, vllm_pod
from tests.registry import free_port
from tests.tls import TestCA

GOOD = "hf://acme/good-llm@" + "1" * 40
OTHER = "hf://acme/other-llm@" + "2" * 40


def deployment(name: str, namespace: str, model: str) -> dict:
    pod = vllm_pod(name, namespace, model)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"metadata": {}, "spec": pod["spec"]}},
    }  # fmt: skip


class World:
    """A folder store, two keys, a policy file, and the API server stand-in."""

    def __init__(self, root) -> None:
        self.root = root
        self.key = keys.generate("ecdsa-p256")
        keys.write_key_pair(self.key, root / "k.key", root / "k.pub", None)
        other = keys.generate("ecdsa-p256")
        keys.write_key_pair(other, root / "other.key", root / "other.pub", None)
        self.store = open_store(str(root / "store"))
        for model in (GOOD, OTHER):
            bom = minimal_bom(model)
            self.store.push(parse(model), Attestation(json.dumps(bom).encode(), attest.sign(bom, key=self.key).encode()))  # fmt: skip
        self.policy = root / "policy.yaml"
        self.trust("k.pub")
        self.server = ApiServerStandIn(root)

    def trust(self, public_key: str) -> None:
        self.policy.write_text(yaml.safe_dump({
            "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy",
            "stores": [str(self.root / "store")],
            "trust": {"signers": [{"name": "ci", "key": {"path": str(self.root / public_key)}}]},
            "modes": {"namespaces": {"team-warn": "warn"}},
            "verification": {"cacheSuccessSeconds": 0, "cacheFailureSeconds": 0},
        }))  # fmt: skip

    def api(self) -> KubeApi:
        return KubeApi(client.ApiClient(self.server.configuration()), qps=0)

    def scan(self):
        api = self.api()
        result = asyncio.run(Scanner(Reviewer.load(self.policy), api).scan())
        return result, api


@pytest.fixture
def world(tmp_path):
    found = World(tmp_path)
    yield found
    found.server.close()


def populate(server: ApiServerStandIn) -> None:
    server.add(vllm_pod("good", "team-a", GOOD))
    server.add(vllm_pod("other", "team-a", OTHER))
    server.add(vllm_pod("unattested", "team-a", "hf://evil/llm@" + "3" * 40))
    server.add(vllm_pod("unpinned", "team-b", "hf://acme/good-llm"))
    server.add(vllm_pod("warned", "team-warn", "hf://acme/good-llm"))
    server.add(deployment("serving", "team-b", GOOD))
    finished = vllm_pod("finished", "team-a", "hf://evil/llm")
    finished["status"]["phase"] = "Succeeded"
    server.add(finished)
    server.add({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "team-a"},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}})  # fmt: skip


def results(result) -> dict[str, str]:
    return {f"{f.namespace}/{f.name}": f.result for f in result.findings}


def test_what_runs_is_decided_as_admission_would_now(world):
    populate(world.server)
    result, _ = world.scan()
    assert results(result) == {
        "team-a/good": "pass",
        "team-a/other": "pass",
        "team-a/unattested": "fail",
        "team-a/web": "pass",
        "team-b/unpinned": "fail",
        "team-warn/warned": "warn",
        "team-b/serving": "pass",
    }  # fmt: skip  (finished pods are not running)
    denied = {f.name: f for f in result.violations}
    assert "has no attestation" in denied["unattested"].reason
    assert denied["unpinned"].category == "unidentified"
    assert json.loads(json.dumps(result.as_json()))["denied"] == 2


def test_reports_are_written_once_and_updated_in_place(world):
    populate(world.server)
    result, api = world.scan()
    assert write_reports(api, result) == 3  # team-a, team-b, team-warn
    (team_a,) = [r for r in world.server.all("policyreports") if r["metadata"]["namespace"] == "team-a"]  # fmt: skip
    assert team_a["summary"] == {"pass": 3, "fail": 1, "warn": 0, "error": 0, "skip": 0}
    (failed,) = team_a["results"]
    assert failed["resources"][0]["name"] == "unattested" and failed["result"] == "fail"
    assert failed["source"] == "mlbom" and failed["policy"] == "mlbom-admission"
    assert team_a["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "mlbom"}
    # nothing changed: nothing written, not even a timestamp
    before = len(world.server.log)
    again, api = world.scan()
    assert write_reports(api, again, now=lambda: time.time() + 3600) == 0
    writes = [r for r in world.server.log[before:] if r.method in ("POST", "PUT")]
    assert writes == []


def test_a_revoked_key_and_a_removed_attestation_show_at_the_next_scan(world):
    populate(world.server)
    result, api = world.scan()
    write_reports(api, result)
    assert results(result)["team-b/serving"] == "pass"
    # the signer's key is revoked: the policy now trusts another one
    world.trust("other.pub")
    result, api = world.scan()
    assert results(result)["team-a/good"] == "fail" and results(result)["team-b/serving"] == "fail"
    assert "not signed by a trusted signer" in {f.name: f for f in result.findings}["good"].reason
    world.trust("k.pub")
    # an attestation removed from the store
    shutil.rmtree(world.root / "store" / "entries" / "hf" / "acme" / "other-llm")
    result, api = world.scan()
    assert results(result)["team-a/other"] == "fail" and results(result)["team-a/good"] == "pass"
    assert write_reports(api, result) == 1  # only team-a's report changed
    (team_b,) = [r for r in world.server.all("policyreports") if r["metadata"]["namespace"] == "team-b"]  # fmt: skip
    assert team_b["summary"]["fail"] == 1  # the unpinned pod, as before


def test_a_namespace_with_nothing_left_to_report_is_emptied(world):
    pod = world.server.add(vllm_pod("unattested", "team-c", "hf://evil/llm@" + "3" * 40))
    result, api = world.scan()
    write_reports(api, result)
    world.server.remove(pod)
    result, api = world.scan()
    assert write_reports(api, result) == 1
    (report,) = world.server.all("policyreports")
    assert report["results"] == [] and report["summary"]["fail"] == 0


def test_lists_are_paged_and_requests_grow_with_pages_not_objects(world):
    world.server.page_size = 10
    for i in range(95):
        world.server.add(vllm_pod(f"p{i}", f"ns{i % 5}", GOOD))
    result, api = world.scan()
    assert len(result.findings) == 95
    pod_lists = [r for r in world.server.log if (r.method, r.path) == ("GET", "/api/v1/pods")]
    assert len(pod_lists) == 10  # 95 pods, 10 a page
    # one GET per scanned kind (each an empty page) besides the pods' ten pages
    assert result.api_requests == 10 + len(Scanner(None, api).paths) - 1  # type: ignore[arg-type]


def test_one_replica_holds_the_lease(world):
    api = world.api()
    leases = [LeaderLease(api, "mlbom", f"replica-{i}", seconds=30) for i in range(2)]
    won: list[bool] = [False, False]

    def race(i: int) -> None:
        won[i] = leases[i].acquire()

    threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [False, True]  # exactly one
    holder = leases[won.index(True)]
    other = leases[won.index(False)]
    assert holder.acquire() and not other.acquire()  # renewed; still held
    later = datetime.now(UTC) + timedelta(seconds=31)
    assert other.acquire(now=lambda: later)  # expired: taken over
    (lease,) = world.server.all("leases")
    assert lease["spec"]["holderIdentity"] == other.identity
    assert lease["spec"]["leaseTransitions"] == 1


def test_scan_metrics(world):
    populate(world.server)
    result, _ = world.scan()
    metrics = Metrics()
    metrics.scanned(result)
    families = {f.name: f for f in metrics.collect()}
    objects = {tuple(s.labels.values()): s.value for s in families["mlbom_scan_objects"].samples}
    assert objects == {("fail",): 2, ("pass",): 4, ("warn",): 1}
    violations = {s.labels["reason"]: s.value for s in families["mlbom_scan_violations"].samples}
    assert violations == {"no-attestation": 1, "unidentified": 2}
    assert families["mlbom_scan_last_timestamp_seconds"].samples[0].value == result.started


def test_the_scan_command(world, tmp_path, monkeypatch):
    populate(world.server)
    kubeconfig = world.server.kubeconfig(tmp_path)
    env = {"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "mlbom", "admission", "scan", "--policy", str(world.policy),
         "--json", "--write-reports"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    found = json.loads(run.stdout)
    assert (found["scanned"], found["denied"], found["warned"]) == (7, 2, 1)
    assert found["reportsWritten"] == 3
    assert {v["object"] for v in found["violations"]} == {"Pod/unattested", "Pod/unpinned", "Pod/warned"}  # fmt: skip
    assert any(r["object"] == "Pod/good" and r["models"] == [GOOD] for r in found["running"])
    text = subprocess.run(
        [sys.executable, "-m", "mlbom", "admission", "scan", "--policy", str(world.policy)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert text.returncode == 1 and "DENY  Pod/unattested (team-a)" in text.stdout
    assert "7 objects scanned" in text.stderr
    unreachable = subprocess.run(
        [sys.executable, "-m", "mlbom", "admission", "scan", "--policy", str(world.policy)],
        capture_output=True, text=True, env=env | {"KUBECONFIG": str(tmp_path / "none")},
        timeout=120, check=False,
    )  # fmt: skip
    assert unreachable.returncode == 2 and "cannot find the API server" in unreachable.stderr


def test_serve_scans_in_the_background(world, tmp_path):
    populate(world.server)
    (tmp_path / "tls").mkdir()
    ca = TestCA(tmp_path / "tls")
    cert, key, _ = ca.issue()
    port, metrics_port = free_port(), free_port()
    env = {"KUBECONFIG": str(world.server.kubeconfig(tmp_path)), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path), "POD_NAMESPACE": "mlbom", "POD_NAME": "mlbom-0"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "mlbom", "admission", "serve", "--policy", str(world.policy),
         "--tls-cert", str(cert), "--tls-key", str(key), "--host", "127.0.0.1",
         "--port", str(port), "--metrics-port", str(metrics_port), "--scan-interval", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        text = ""
        for _ in range(100):
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:  # fmt: skip
                    text = r.read().decode()
            except OSError:
                continue
            if 'mlbom_scan_objects{result="fail"} 2.0' in text:
                break
        assert 'mlbom_scan_objects{result="fail"} 2.0' in text, text[-2000:]
        assert len(world.server.all("policyreports")) == 3
        (lease,) = world.server.all("leases")
        assert lease["spec"]["holderIdentity"] == "mlbom-0"
        assert lease["metadata"]["namespace"] == "mlbom"
    finally:
        process.terminate()
        process.wait(10)


def test_the_audit_export_shows_what_runs_each_model_now(world, tmp_path):
    populate(world.server)
    result, _ = world.scan()
    scan = tmp_path / "scan.json"
    scan.write_text(json.dumps(result.as_json()))
    out = tmp_path / "evidence.json"
    run = subprocess.run(
        [sys.executable, "-m", "mlbom", "audit", "export", "--store", str(world.root / "store"),
         "--policy", str(world.policy), "--scan", str(scan), "-o", str(out), "-q"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    assert report["scan"]["scanned"] == 7
    models = {m["reference"]: m for m in report["models"]}
    running = models[GOOD]["runningNow"]
    assert {(w["object"], w["namespace"], w["result"]) for w in running} == {
        ("Pod/good", "team-a", "pass"), ("Deployment/serving", "team-b", "pass"),
    }  # fmt: skip
    html = tmp_path / "evidence.html"
    subprocess.run(
        [sys.executable, "-m", "mlbom", "audit", "export", "--store", str(world.root / "store"),
         "--scan", str(scan), "-o", str(html), "-q"], check=True, timeout=300,
    )  # fmt: skip
    assert "Running now (2 workloads" in html.read_text()
    # a hostile scan file: entries of the wrong shape are passed over
    scan.write_text(json.dumps({"running": [3, {"models": "x"}, {"models": ["hf://ACME/Good-LLM@" + "1" * 40, 7], "result": "<b>", "object": ["x"]}], "scanned": True}))  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "mlbom", "audit", "export", "--store", str(world.root / "store"),
         "--scan", str(scan), "-o", str(out), "-q"], check=True, timeout=300,
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["scan"]["scanned"] is None
    (odd,) = {m["reference"]: m for m in report["models"]}[GOOD]["runningNow"]
    assert odd == {"object": None, "namespace": None, "since": None, "reason": None, "result": None}
    scan.write_text('{"not": "a scan"}')
    bad = subprocess.run(
        [sys.executable, "-m", "mlbom", "audit", "export", "--store", str(world.root / "store"),
         "--scan", str(scan), "-o", str(out)], capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "is not a scan" in bad.stderr


def test_an_object_admission_cannot_read_is_a_failure_not_a_crash(world, monkeypatch):
    from admission.reviewer import MalformedReview

    world.server.add(vllm_pod("odd", "team-a", GOOD))
    world.server.add({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
                      "metadata": {"name": "mlbom-admission", "namespace": "team-a",
                                   "labels": {"app.kubernetes.io/managed-by": "mlbom"}},
                      "results": "not a list"})  # fmt: skip
    api = world.api()
    reviewer = Reviewer.load(world.policy)

    async def refuse(request):
        raise MalformedReview("request.object is nested too deeply")

    monkeypatch.setattr(reviewer, "review", refuse)
    result = asyncio.run(Scanner(reviewer, api).scan())
    (finding,) = result.findings
    assert (finding.result, finding.category) == ("fail", "error")
    assert write_reports(api, result) == 1  # the odd report is replaced
