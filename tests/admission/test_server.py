"""The admission webhook for real: `mlbom admission serve` over HTTPS on loopback, reviewing
AdmissionReviews built from real manifests (tests/data/manifests), with attestations in a
real folder store and in the real OCI registry of the store tests."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import sys
import time
import urllib.request

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import admission
import attest
import mlbom
from admission.decisions import rotated_files, verify_chain
from admission.manifests import admission_request, admission_review, objects_in
from admission.policy_loader import load_policy, parse_policy
from admission.recorder import Recorder
from admission.reviewer import Reviewer
from admission.server import JsonLogs, Metrics, WebhookApp
from admission.verification import ModelVerifier
from attest import keys
from attest.stores import Attestation, NoAttestationError, Store, open_store
from mlbom.references import ModelRef
from tests.builders import COMMIT, DATA, REPO, repo_files
from tests.hub_standin import HubStandIn, Repo
from tests.registry import push_model, running_registry
from tests.webhook import running_webhook

MANIFESTS = DATA / "manifests"
PINNED = f"hf://{REPO}@{COMMIT}"
OTHER = f"hf://{REPO}@{'f' * 40}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A Hub model's BOM, signed with a key and pushed to a folder store, and a policy."""
    root = tmp_path_factory.mktemp("world")
    hub = HubStandIn()
    files = repo_files(root)
    for unsafe in ("pytorch_model.bin", "consolidated.pt"):  # pickles that import os.system
        del files[unsafe]
    hub.repos[REPO] = Repo(files)
    saved = {k: os.environ.get(k) for k in ("HF_ENDPOINT", "HF_HOME")}
    os.environ.update(HF_ENDPOINT=hub.url, HF_HOME=str(root / "hf"))
    try:
        document = mlbom.generate(PINNED).to_dict()
    finally:
        hub.close()
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    key = keys.generate("ecdsa-p256")
    keys.write_key_pair(key, root / "signer.key", root / "signer.pub", None)
    store = root / "store"
    open_store(str(store)).push(
        ModelRef("hf", REPO, COMMIT),
        Attestation(json.dumps(document).encode(), attest.sign(document, key=key).encode()),
    )
    policy = root / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy",
        "stores": [str(store)],
        "trust": {"signers": [{"name": "ci", "key": {"path": str(root / "signer.pub")}}]},
        "modes": {"default": "enforce", "namespaces": {"team-warn": "warn", "team-audit": "audit"}},
        "confidential": {"required": {"namespaces": ["secure"]}},
        "loadTimeVerification": {"namespaces": {"secure": "off"}},  # tests/admission/test_verifier_injection.py
        "decisionLog": str(root / "log" / "decisions.jsonl"),
    }))  # fmt: skip
    return root, policy, document, key


def vllm_deployment(model: str, revision: str | None = None) -> dict:
    """The vLLM production-stack Deployment, serving `model` (at `revision`)."""
    deployment = next(
        o for o in objects_in(MANIFESTS / "vllm-production-stack.yaml")
        if o["kind"] == "Deployment" and "local" not in o["metadata"]["name"]
    )  # fmt: skip
    deployment = copy.deepcopy(deployment)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    words = [*container.get("command", []), *container.get("args", [])]
    words = [model if w == "meta-llama/Llama-3.1-8B-Instruct" else w for w in words]
    if revision:
        words += ["--revision", revision]
    container["command"], container["args"] = words, []
    # the chart keeps its Hub cache on a PVC, a cache others can fill: the pod's own instead
    deployment["spec"]["template"]["spec"]["volumes"] = [{"name": "vllm-storage", "emptyDir": {}}]
    return deployment


@pytest.fixture(scope="module")
def server(world, tmp_path_factory):
    _root, policy, _, _ = world
    with running_webhook(policy, tmp_path_factory.mktemp("tls")) as hook:
        yield hook


def test_attested_model_is_allowed(server, world):
    answer = server.review(vllm_deployment(REPO, COMMIT), namespace="team-a")
    assert answer["allowed"] is True, answer
    assert answer["auditAnnotations"]["decision"] == "allow"
    assert PINNED in answer["auditAnnotations"]["models"]


def test_annotation_names_the_model_of_a_volume_only_with_load_time_verification(server):
    pod = copy.deepcopy(objects_in(MANIFESTS / "llm-d-modelservice-pvc.yaml")[0])
    pod["spec"]["template"]["metadata"]["annotations"] = {"mlbom.dev/model": PINNED}
    answer = server.review(pod)  # the policy injects no verifier: nothing checks the claim's bytes
    assert answer["allowed"] is False
    assert "taken on the word of the annotation" in answer["status"]["message"]
    assert "loadTimeVerification" in answer["status"]["message"]


def test_annotation_does_not_override_what_the_server_serves(server):
    pod = next(
        o for o in objects_in(MANIFESTS / "tgi-gke-deployment.yaml") if o["kind"] == "Deployment"
    )
    pod = copy.deepcopy(pod)
    pod["spec"]["template"]["metadata"].setdefault("annotations", {})["mlbom.dev/model"] = PINNED
    answer = server.review(pod)
    assert answer["allowed"] is False and "mlbom.dev/model names" in answer["status"]["message"]


def test_unattested_model_is_denied_with_what_to_do(server):
    answer = server.review(vllm_deployment(REPO, "f" * 40))
    assert answer["allowed"] is False
    message = answer["status"]["message"]
    assert OTHER in message and "has no attestation" in message and "mlbom push" in message


def test_unpinned_model_is_denied_with_how_to_pin(server):
    answer = server.review(vllm_deployment(REPO))
    assert answer["allowed"] is False and "--revision <commit>" in answer["status"]["message"]


def test_modes(server):
    warn = server.review(vllm_deployment(REPO, "f" * 40), namespace="team-warn")
    assert warn["allowed"] is True and any("has no attestation" in w for w in warn["warnings"])
    audit = server.review(vllm_deployment(REPO, "f" * 40), namespace="team-audit")
    assert audit["allowed"] is True and "warnings" not in audit
    assert audit["auditAnnotations"]["mode"] == "audit"
    assert server.review(vllm_deployment(REPO), namespace="kube-system")["allowed"] is True


def test_never_blocks_deletes_status_scale_or_deleting_pods(server):
    bad = vllm_deployment(REPO)
    assert server.review(bad, operation="DELETE")["allowed"] is True
    assert server.review(bad, operation="UPDATE", subResource="scale")["allowed"] is True
    assert server.review(bad, operation="UPDATE", subResource="status")["allowed"] is True
    deleting = copy.deepcopy(bad)
    deleting["metadata"]["deletionTimestamp"] = "2026-11-26T00:00:00Z"
    assert server.review(deleting, operation="UPDATE")["allowed"] is True


def test_confidential_namespace_needs_a_confidential_runtime(server):
    answer = server.review(vllm_deployment(REPO, COMMIT), namespace="secure")
    assert answer["allowed"] is False and "confidential computing" in answer["status"]["message"]


def test_dry_run_answers_the_same_and_writes_nothing(server, world):
    log = world[0] / "log" / "decisions.jsonl"
    before = log.read_bytes() if log.exists() else b""
    answer = server.review(vllm_deployment(REPO, "f" * 40), dryRun=True)
    assert answer["allowed"] is False
    assert (log.read_bytes() if log.exists() else b"") == before


def test_decision_log_is_chained(server, world):
    server.review(vllm_deployment(REPO, COMMIT))
    log = world[0] / "log" / "decisions.jsonl"
    report = verify_chain([*rotated_files(log), log])
    assert report.intact and report.records >= 1
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["allowed"] is True and last["models"][0]["model"] == PINNED


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[]", 400),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', 400),
        (b'{"apiVersion": "v1", "kind": "Pod"}', 400),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 5}}',
            400,
        ),
        (b"[" * 100_000, 400),
        (b"x" * (4 << 20), 413),
    ],
)
def test_malformed_bodies_are_answered_and_the_server_keeps_going(server, body, status):
    try:
        answered = server.post(body)[0]
    except urllib.error.URLError:  # an oversized body is refused before it is all sent
        answered = 413
    assert answered == status
    assert server.get("/healthz")[0] == 200


def test_health_and_metrics(server):
    first, second = vllm_deployment(REPO, COMMIT), vllm_deployment(REPO, COMMIT)
    second["metadata"]["name"] = "another"  # another object: the verdict comes from the cache
    server.review(first)
    server.review(second)
    assert server.get("/readyz")[0] == 200
    with urllib.request.urlopen(server.metrics_url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    assert (
        'mlbom_admission_decisions_total{allowed="true",category="allowed",mode="enforce"}' in text
    )
    assert 'mlbom_admission_verification_cache_total{result="hit"}' in text
    assert "mlbom_admission_latency_seconds_bucket" in text
    for _ in range(40):  # decision lines are written every 50 ms
        lines = [json.loads(line) for line in server.log.read_text().splitlines()[1:]]  # all JSON
        decisions = [line for line in lines if line.get("event") == "decision"]
        if "another" in {d["name"] for d in decisions}:
            break
        time.sleep(0.05)
    assert "another" in {d["name"] for d in decisions} and all(d["uid"] for d in decisions)


def test_server_logs_are_json_lines():
    try:
        raise OSError("disk gone")
    except OSError:
        record = logging.LogRecord("mlbom.admission", logging.ERROR, __file__, 1, "cannot %s", ("write",), sys.exc_info())  # fmt: skip
    line = JsonLogs().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"]) == ("error", "mlbom.admission", "cannot write")  # fmt: skip
    assert "OSError: disk gone" in entry["exception"] and entry["time"].endswith("+00:00")


def test_certificate_is_reloaded_without_a_restart(server):
    before = server.peer_serial()
    cert, key, serial = server.ca.issue("renewed")
    os.replace(key, server.key)
    os.replace(cert, server.cert)
    for _ in range(60):
        if server.peer_serial() == serial:
            break
        time.sleep(0.1)
    assert server.peer_serial() == serial != before
    assert server.get("/healthz")[0] == 200


# -- in-process: failure behaviour, caching, fuzzing ---------------------------------------


def image_volume_pod(reference: str) -> dict:
    """A vLLM pod serving the model an image volume mounts."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
        "spec": {
            "containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.10.0",
                            "command": ["vllm", "serve", "/models"],
                            "volumeMounts": [{"name": "m", "mountPath": "/models"}]}],
            "volumes": [{"name": "m", "image": {"reference": reference}}],
        },
    }  # fmt: skip


class SlowStore(Store):
    """A store that answers late, or not at all (the `Store` interface, not a peer)."""

    location = "slow://"

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0

    def push(self, ref: ModelRef, attestation: Attestation) -> str:
        raise NotImplementedError  # never used: this store is only read

    def pull(self, ref: ModelRef) -> Attestation:
        self.calls += 1
        time.sleep(self.delay)
        raise NoAttestationError(f"nothing for {ref}")


def reviewer_with(world, stores: list[Store], **verification: float) -> Reviewer:
    _root, policy_path, _, _ = world
    text = yaml.safe_load(policy_path.read_text())
    text["verification"] = {"deadlineSeconds": 8, **verification}
    text.pop("decisionLog")
    policy = parse_policy(yaml.safe_dump(text))
    return Reviewer(policy, ModelVerifier(policy, stores))


def test_the_python_api_decides_as_the_server_and_records_nothing(world):
    root, policy, _, _ = world
    log = root / "log" / "decisions.jsonl"
    before = log.read_bytes() if log.exists() else b""
    decided = admission.review(
        [vllm_deployment(REPO, COMMIT), vllm_deployment(REPO)], policy=load_policy(policy)
    )
    (first, allowed), (_, denied) = decided
    assert first.kind and first.kind.kind == "Deployment"
    assert allowed.allowed is True and allowed.verdicts[0].reference == PINNED
    assert denied.allowed is False and "not pinned" in denied.reason
    assert (log.read_bytes() if log.exists() else b"") == before


def test_the_python_api_takes_a_loaded_policy(world):
    _, policy, _, _ = world
    with pytest.raises(TypeError, match="load_policy"):
        admission.review([vllm_deployment(REPO, COMMIT)], policy=policy)


def test_the_review_command(world, tmp_path, cli):
    _, policy, _, _ = world
    good, bad = vllm_deployment(REPO, COMMIT), vllm_deployment(REPO)
    bad["metadata"]["name"] = "unpinned"
    manifests = tmp_path / "all.yaml"
    manifests.write_text(
        yaml.safe_dump_all([good, {"apiVersion": "v1", "kind": "List", "items": [bad]}])
    )
    out, err = cli("admission", "review", manifests, "--policy", policy, code=1)
    lines = out.splitlines()
    assert lines[0].startswith("allow Deployment/") and "verified" in lines[0]
    assert lines[1].startswith("DENY  Deployment/unpinned") and "not pinned" in lines[1]
    assert "1 of 2 objects would be denied" in err

    out, _ = cli("admission", "review", manifests, "--policy", policy, "--json", code=1)
    assert [d["allowed"] for d in json.loads(out)] == [True, False]

    only_good = tmp_path / "good.json"
    only_good.write_text(json.dumps(good))
    out, _ = cli("admission", "review", only_good, "--policy", policy)
    assert out.startswith("allow")

    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {~: x}}\n")
    _, err = cli("admission", "review", broken, "--policy", policy, code=2)
    assert "cannot be written as JSON" in err


def test_an_unreachable_store_is_a_denial(world):
    reviewer = reviewer_with(world, [open_store("oci://127.0.0.1:9/models")])
    pod = image_volume_pod(f"127.0.0.1:9/models@sha256:{'1' * 64}")
    decision = asyncio.run(reviewer.review(admission_request(pod)))
    assert decision.allowed is False and "unreachable" in decision.reason


def test_a_deadline_is_a_denial_answered_in_time(world):
    reviewer = reviewer_with(world, [SlowStore(3)], deadlineSeconds=0.5)

    async def timed() -> tuple[float, object]:
        start = time.monotonic()
        decision = await reviewer.review(admission_request(vllm_deployment(REPO, COMMIT)))
        return time.monotonic() - start, decision

    elapsed, decision = asyncio.run(timed())
    assert elapsed < 1.0
    assert decision.allowed is False and "did not finish within 0.5 s" in decision.reason


def test_identical_concurrent_lookups_are_made_once(world):
    store = SlowStore(0.3)
    reviewer = reviewer_with(world, [store])

    async def burst() -> list:
        reviews = [admission_request(vllm_deployment(REPO, COMMIT)) for _ in range(20)]
        return await asyncio.gather(*(reviewer.review(r) for r in reviews))

    decisions = asyncio.run(burst())
    assert store.calls == 1 and all(not d.allowed for d in decisions)


def test_the_real_oci_registry(world, tmp_path):
    root, _policy_path, _, _key = world
    with running_registry(tmp_path / "registry") as registry:
        folder = tmp_path / "model"
        folder.mkdir()
        (folder / "config.json").write_text('{"model_type": "bert"}')
        (folder / "README.md").write_text("---\nlicense: mit\n---\n# m\n")
        digest = push_model(registry, "models/m:v1", folder)
        reference = f"oci://{registry.host}/models/m@{digest}"
        document = mlbom.generate(reference).to_dict()
        bundle = attest.sign(document, key=keys.load_private_key(root / "signer.key"))
        store = open_store(f"oci://{registry.host}/models/m")
        store.push(
            mlbom.references.parse(reference),
            Attestation(json.dumps(document).encode(), bundle.encode()),
        )
        pod = image_volume_pod(f"{registry.host}/models/m@{digest}")
        reviewer = reviewer_with(world, [store])
        decision = asyncio.run(reviewer.review(admission_request(pod)))
        assert decision.allowed is True, decision.reason
        other = copy.deepcopy(pod)
        other["spec"]["volumes"][0]["image"]["reference"] = (
            f"{registry.host}/models/m@sha256:{'0' * 64}"
        )
        decision = asyncio.run(reviewer.review(admission_request(other)))
        assert decision.allowed is False and "has no attestation" in decision.reason


async def asgi(app: WebhookApp, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request through the ASGI application: its status and body."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "method": "POST" if body else "GET", "headers": []}
    await app(scope, receive, send)
    return sent[0]["status"], sent[1]["body"]


def test_without_its_recorder_the_webhook_denies_and_asks_for_a_restart(world, tmp_path):
    review = admission_review(vllm_deployment(REPO, COMMIT))
    review["request"]["dryRun"] = False  # a dry run needs no record
    body = json.dumps(review).encode()
    store = open_store(str(world[0] / "store"))

    async def go() -> list[tuple[int, bytes]]:
        recorder = Recorder(tmp_path / "decisions.jsonl")
        await recorder.start()
        app = WebhookApp(reviewer_with(world, [store]), Metrics(), recorder)
        answers = [await asgi(app, "/validate", body), await asgi(app, "/healthz")]
        recorder._process.kill()  # type: ignore[union-attr]
        await asyncio.sleep(0.5)
        answers += [await asgi(app, p, b) for p, b in (("/validate", body), ("/healthz", b""), ("/readyz", b""))]  # fmt: skip
        await recorder.close()
        return answers

    allowed, healthy, denied, unhealthy, unready = asyncio.run(go())
    assert json.loads(allowed[1])["response"]["allowed"] is True and healthy[0] == 200
    answer = json.loads(denied[1])["response"]
    assert answer["allowed"] is False and "recorder is not running" in answer["status"]["message"]
    assert unhealthy[0] == 503 and unready[0] == 503


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request=st.dictionaries(
    st.sampled_from(["uid", "operation", "object", "namespace", "subResource", "kind", "dryRun", "oldObject", "name", "userInfo"]),
    json_values, max_size=8,
))  # fmt: skip
def test_fuzzed_reviews_always_get_an_answer(world, request):
    app = WebhookApp(reviewer_with(world, []), Metrics(), Recorder(None))
    body = json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()
    status, answer = asyncio.run(asgi(app, "/validate", body))
    assert status in (200, 400)
    if status == 200:
        assert json.loads(answer)["response"]["uid"] == request["uid"]


# -- the mutating webhook: placement on confidential nodes ---------------------------------


def mutate(server, obj: dict, **request: object) -> dict:
    review = admission_review(obj)
    review["request"].update({"dryRun": False, **request})
    status, body = server.post(json.dumps(review).encode(), path="/mutate")
    assert status == 200, body
    assert body["response"]["uid"] == review["request"]["uid"]
    return body["response"]


def patched(obj: dict, answer: dict) -> dict:
    import base64

    import jsonpatch

    assert answer["patchType"] == "JSONPatch"
    return jsonpatch.apply_patch(obj, json.loads(base64.b64decode(answer["patch"])))


def test_mutate_places_a_confidential_pod_then_validation_admits_it(server):
    deployment = vllm_deployment(REPO, COMMIT)
    deployment["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"nvidia.com/gpu": "1"}
    }
    answer = mutate(server, deployment, namespace="secure")
    assert answer["allowed"] is True
    placed = patched(deployment, answer)
    spec = placed["spec"]["template"]["spec"]
    assert spec["runtimeClassName"] == "kata-qemu-nvidia-gpu-snp"
    assert spec["nodeSelector"]["feature.node.kubernetes.io/cpu-security.sev.snp.enabled"] == "true"
    assert spec["nodeSelector"]["nvidia.com/cc.ready.state"] == "true"
    assert spec["containers"][0]["resources"]["limits"] == {"nvidia.com/pgpu": "1"}
    again = mutate(server, placed, namespace="secure")  # reinvocation: nothing more to do
    assert again["allowed"] is True and "patch" not in again
    assert server.review(placed, namespace="secure")["allowed"] is True
    assert server.review(deployment, namespace="secure")["allowed"] is False  # the guarantee


def test_mutate_leaves_other_pods_alone_and_refuses_unsafe_ones(server):
    assert "patch" not in mutate(server, vllm_deployment(REPO, COMMIT), namespace="team-a")
    unsafe = vllm_deployment(REPO, COMMIT)
    unsafe["spec"]["template"]["spec"]["hostNetwork"] = True
    answer = mutate(server, unsafe, namespace="secure")
    assert answer["allowed"] is False and "hostNetwork" in answer["status"]["message"]
    assert mutate(server, unsafe, namespace="secure", operation="DELETE")["allowed"] is True
