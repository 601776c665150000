"""Speed figures for the admission webhook (issue: a validating webhook that blocks inference
pods whose models are not attested), load from wrk and hey on loopback.

1. Throughput with warm caches: `mlbom admission serve` answering the AdmissionReview of a
   vLLM Deployment whose model is attested in a local folder store, each decision written
   to the decision log and fsynced before it is answered (BENCH_LOG=0: no log), against a
   do-nothing HTTPS endpoint served by the same stack (uvicorn, same TLS certificate, a
   fixed answer), measured in the same run with `wrk` (64 connections). Target: >= 0.50.
2. p99 latency at half the webhook's throughput, with `hey` rate-limited. Target: < 10 ms.
3. First-seen models (cold cache, local store): one request per model never seen before,
   each verified from the store (signature, statement, policy). Target: p99 < 50 ms.

Run: `make bench` (or `python bench/bench_admission.py [--seconds 8] [--models 200]`).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import http.client
import json
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

import attest
import mlbom
from admission.manifests import admission_review, objects_in
from attest import keys
from attest.stores import Attestation, open_store
from mlbom.references import ModelRef
from tests.builders import COMMIT, REPO, repo_files
from tests.hub_standin import HubStandIn, Repo
from tests.registry import free_port
from tests.tls import TestCA

MANIFESTS = Path(__file__).resolve().parent.parent / "tests" / "data" / "manifests"
NOOP = """
import json, sys, uvicorn
BODY = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "response": {"uid": "x", "allowed": True}}).encode()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": BODY})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), ssl_certfile=sys.argv[2],
            ssl_keyfile=sys.argv[3], log_level="warning", access_log=False)
"""
WRK_POST = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("{body}"):read("*a")
"""


def deployment(revision: str) -> dict:
    obj = next(
        o for o in objects_in(MANIFESTS / "vllm-production-stack.yaml")
        if o["kind"] == "Deployment" and "local" not in o["metadata"]["name"]
    )  # fmt: skip
    obj = copy.deepcopy(obj)
    container = obj["spec"]["template"]["spec"]["containers"][0]
    words = [*container.get("command", []), *container.get("args", [])]
    words = [REPO if w == "meta-llama/Llama-3.1-8B-Instruct" else w for w in words]
    container["command"], container["args"] = [*words, "--revision", revision], []
    # the chart keeps its Hub cache on a PVC, a cache others can fill: the pod's own instead
    obj["spec"]["template"]["spec"]["volumes"] = [{"name": "vllm-storage", "emptyDir": {}}]
    return obj


def attested_world(root: Path, models: int) -> tuple[Path, list[str]]:
    """A folder store holding signed attestations of `models` commits of one Hub model."""
    hub = HubStandIn()
    files = repo_files(root)
    for unsafe in ("pytorch_model.bin", "consolidated.pt"):
        del files[unsafe]
    hub.repos[REPO] = Repo(files)
    os.environ.update(HF_ENDPOINT=hub.url, HF_HOME=str(root / "hf"))
    try:
        template = mlbom.generate(f"hf://{REPO}@{COMMIT}").to_dict()
    finally:
        hub.close()
    key = keys.generate("ecdsa-p256")
    keys.write_key_pair(key, root / "k.key", root / "k.pub", None)
    store = open_store(str(root / "store"))
    commits = [COMMIT] + [hashlib.sha1(str(i).encode()).hexdigest() for i in range(models)]
    for commit in commits:
        bom = json.loads(json.dumps(template).replace(COMMIT, commit))
        bundle = attest.sign(bom, key=key)
        store.push(
            ModelRef("hf", REPO, commit), Attestation(json.dumps(bom).encode(), bundle.encode())
        )
    policy = root / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy", "stores": [str(root / "store")],
        "trust": {"signers": [{"name": "ci", "key": {"path": str(root / "k.pub")}}]},
        **({"decisionLog": str(root / "decisions.jsonl")} if os.environ.get("BENCH_LOG", "1") == "1" else {}),
    }))  # fmt: skip
    return policy, commits


def start(command: list[str], port: int, context: ssl.SSLContext) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=2)
            connection.request("POST", "/validate", body=b"{}")
            connection.getresponse().read()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the server on port {port} did not start")


def wrk(port: int, body: Path, seconds: int) -> float:
    script = body.with_suffix(".lua")
    script.write_text(WRK_POST.format(body=body))
    out = subprocess.run(
        ["wrk", "-t1", "-c64", f"-d{seconds}s", "-s", str(script), f"https://127.0.0.1:{port}/validate"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors[1]} error answers:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]


def hey_p99(port: int, body: Path, rate: float, seconds: int) -> float:
    workers = 8
    out = subprocess.run(
        ["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", f"{max(rate / workers, 1):.1f}",
         "-m", "POST", "-T", "application/json", "-D", str(body), f"https://127.0.0.1:{port}/validate"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(re.search(r"99% in ([\d.]+) secs", out)[1]) * 1000  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--models", type=int, default=200)
    args = parser.parse_args()
    for tool in ("wrk", "hey"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed: apt-get install wrk hey (make bench does it)")

    root = Path(tempfile.mkdtemp())
    policy, commits = attested_world(root, args.models)
    ca = TestCA(root)
    cert, key, _ = ca.issue()
    context = ssl.create_default_context(cafile=str(ca.path))
    warm = root / "warm.json"
    warm.write_text(json.dumps(admission_review(deployment(COMMIT)) | {}))
    review = json.loads(warm.read_text())
    review["request"]["dryRun"] = False
    warm.write_text(json.dumps(review))

    port, noop_port = free_port(), free_port()
    webhook = start(
        [sys.executable, "-m", "mlbom", "admission", "serve", "--policy", str(policy),
         "--tls-cert", str(cert), "--tls-key", str(key), "--host", "127.0.0.1",
         "--port", str(port), "--metrics-port", "0"], port, context,
    )  # fmt: skip
    noop = start(
        [sys.executable, "-c", NOOP, str(noop_port), str(cert), str(key)], noop_port, context
    )
    try:
        # 3. cold: every model seen for the first time, one request each, on one connection
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context)
        cold = []
        for commit in commits[1:]:
            body = json.dumps(admission_review(deployment(commit)) | {}).encode()
            start_time = time.perf_counter()
            connection.request(
                "POST", "/validate", body=body, headers={"Content-Type": "application/json"}
            )
            answer = json.loads(connection.getresponse().read())
            cold.append((time.perf_counter() - start_time) * 1000)
            assert answer["response"]["allowed"], answer
        connection.close()

        # 1. warm throughput against the do-nothing endpoint, alternating
        ours, base = [], []
        for _ in range(2):
            ours.append(wrk(port, warm, args.seconds))
            base.append(wrk(noop_port, warm, args.seconds))
        mine, baseline = max(ours), max(base)
        # 2. p99 at half the webhook's throughput
        p99 = hey_p99(port, warm, mine / 2, args.seconds)
    finally:
        webhook.terminate()
        noop.terminate()
    cold_p99 = statistics.quantiles(cold, n=100)[98]
    print(f"warm throughput: webhook {mine:.0f} req/s, do-nothing HTTPS endpoint {baseline:.0f} req/s "
          f"(same uvicorn stack and certificate): ratio {mine / baseline:.2f} (target >= 0.50)")  # fmt: skip
    print(
        f"p99 at half the webhook's throughput ({mine / 2:.0f} req/s): {p99:.1f} ms (target < 10 ms)"
    )
    print(f"first-seen models, local store: p99 {cold_p99:.1f} ms, median "
          f"{statistics.median(cold):.1f} ms over {len(cold)} models (target p99 < 50 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
