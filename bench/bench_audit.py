"""Speed figure for `mlbom audit export` (issue: CRA compliance evidence): 1,000 models with
signed BOMs in a local folder store, every bundle verified, under 60 s on this machine; the
cost grows linearly with the number of models (the same export of 250 models, measured in the
same run, is the baseline: the ratio should be about 4).

Run: `make bench` (or `python bench/bench_audit.py [--models 1000]`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

import attest
import mlbom
from attest import keys
from attest.stores import Attestation, open_store
from mlbom.audit.evidence import write
from mlbom.audit.report import Product, build_report
from mlbom.references import ModelRef
from tests.builders import COMMIT, REPO, repo_files
from tests.hub_standin import HubStandIn, Repo


def world(root: Path, models: int) -> tuple[Path, Path]:
    """A folder store with `models` signed attestations, and a policy trusting the key."""
    hub = HubStandIn()
    files = repo_files(root)
    hub.repos[REPO] = Repo(files)
    os.environ.update(HF_ENDPOINT=hub.url, HF_HOME=str(root / "hf"))
    try:
        template = json.dumps(mlbom.generate(f"hf://{REPO}@{COMMIT}", manufacturer="Acme",
                                             manufacturer_contact="security@acme.example").to_dict())  # fmt: skip
    finally:
        hub.close()
    key = keys.generate("ecdsa-p256")
    keys.write_key_pair(key, root / "k.key", root / "k.pub", None)
    store = open_store(str(root / "store"))
    for i in range(models):
        commit = hashlib.sha1(str(i).encode()).hexdigest()
        bom = json.loads(template.replace(COMMIT, commit))
        store.push(ModelRef("hf", REPO, commit),
                   Attestation(json.dumps(bom).encode(), attest.sign(bom, key=key).encode()))  # fmt: skip
    policy = root / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy", "stores": [str(root / "store")],
        "trust": {"signers": [{"name": "ci", "key": {"path": str(root / "k.pub")}}]},
    }))  # fmt: skip
    return root / "store", policy


def export_seconds(store: Path, policy: Path, out: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    report = build_report([str(store)], policy_path=policy, product=Product("bench", "Acme"))
    write(report, out, "json")
    return time.perf_counter() - start, report.data["summary"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    small_store, small_policy = world(root / "small", args.models // 4)
    large_store, large_policy = world(root / "large", args.models)
    export_seconds(small_store, small_policy, root / "warm.json")  # imports, schema compilation
    small, _ = export_seconds(small_store, small_policy, root / "small.json")
    large, summary = export_seconds(large_store, large_policy, root / "large.json")
    assert summary["signedVerified"] == args.models, summary
    print(f"{args.models} models, every bundle verified: {large:.1f} s (target < 60 s)")
    print(f"{args.models // 4} models: {small:.1f} s; ratio {large / small:.2f} "
          f"(linear: about 4)")  # fmt: skip


if __name__ == "__main__":
    main()
