"""Speed figures for the background scan (issue: admission background scan).

10,000 running vLLM pods over 500 attested models in 50 namespaces, served by the
kube-apiserver stand-in of the tests (HTTPS on loopback, pages of 500), decided by the same
reviewer admission uses, then written as PolicyReports. Printed: the first scan (every model
verified once), a second scan with a warm verification cache, and the API requests of each
(target: under 60 s warm; requests linear in pages, not in pods).

Run: `make bench` (or `python bench/bench_scan.py [--pods 10000] [--models 500]`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml
from kubernetes import client

import attest
from admission.cluster import KubeApi
from admission.reviewer import Reviewer
from admission.scan import Scanner, write_reports
from attest import keys
from attest.stores import Attestation, open_store
from mlbom.references import parse
from tests.apiserver import ApiServerStandIn
from tests.builders import minimal_bom, vllm_pod


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--namespaces", type=int, default=50)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp())
    key = keys.generate("ecdsa-p256")
    keys.write_key_pair(key, root / "k.key", root / "k.pub", None)
    store = open_store(str(root / "store"))
    models = [f"hf://acme/model-{i}@{i:040x}" for i in range(args.models)]
    for model in models:
        bom = minimal_bom(model)
        store.push(parse(model), Attestation(json.dumps(bom).encode(), attest.sign(bom, key=key).encode()))  # fmt: skip
    policy = root / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy", "stores": [str(root / "store")],
        "trust": {"signers": [{"name": "ci", "key": {"path": str(root / "k.pub")}}]},
        "verification": {"cacheEntries": 100_000},
    }))  # fmt: skip
    server = ApiServerStandIn(root)
    try:
        for i in range(args.pods):
            server.add(vllm_pod(f"pod-{i}", f"ns-{i % args.namespaces}", models[i % len(models)]))
        reviewer = Reviewer.load(policy)
        for run in ("first scan (every model verified once)", "second scan (warm verification cache)"):  # fmt: skip
            api = KubeApi(client.ApiClient(server.configuration()), qps=0)
            start = time.perf_counter()
            result = asyncio.run(Scanner(reviewer, api).scan())
            scanned = time.perf_counter() - start
            written = write_reports(api, result)
            total = time.perf_counter() - start
            pages = -(-args.pods // server.page_size)
            print(
                f"{run}: {len(result.findings)} objects in {scanned:.1f} s, with the reports "
                f"{total:.1f} s (target < 60 s warm); {api.requests} API requests "
                f"({pages} pages of pods, {len(Scanner(reviewer, api).paths) - 1} other kinds, "
                f"{written} reports written); {len(result.violations)} violations"
            )
            reviewer._decisions.clear()  # the next scan decides again; only verdicts stay cached
    finally:
        server.close()


if __name__ == "__main__":
    main()
