"""Speed figure for `mlbom generate hf://…` (issue: ML-BOMs for Hub models without
downloading weights): the cost must grow with the number of files, not their size.

Two repositories on the local Hub stand-in (tests/hub_standin.py, the Hub's wire protocol
over loopback HTTP) hold the same files, a card, configs, a tokenizer and 20 safetensors
shards, but weigh 1 GB and 100 GB. Both are generated several times, alternating; the
figure is the ratio of the median times, 100 GB over 1 GB. Target: about 1 (at most 1.2),
with the weights' bytes served staying at the size of their headers.

Run: `make bench` (or `python bench/bench_hub.py [--runs 7]`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mlbom
from tests.builders import CARD, safetensors_head
from tests.hub_standin import File, HubStandIn, Repo

SHARDS = 20


def repo(total: int) -> Repo:
    files = {
        "README.md": File(CARD.encode(), 0, lfs=False),
        "config.json": File(json.dumps({"model_type": "llama"}).encode(), 0, lfs=False),
        "tokenizer.json": File(b"{}" + b" " * 200_000, 0),
        "generation_config.json": File(b"{}", 0, lfs=False),
    }
    per_shard = total // SHARDS
    for i in range(SHARDS):
        # one tensor of F16 per shard, as large as the shard must be
        head, size = safetensors_head({f"layer.{i}.weight": (per_shard // 2 // 4096, 4096)})
        name = f"model-{i + 1:05d}-of-{SHARDS:05d}.safetensors"
        # the Hub's LFS digest is metadata: claimed, never computed over 100 GB of zeros
        files[name] = File(head, size, sha256=hashlib.sha256(name.encode()).hexdigest())
    return Repo(files)


def timed(ref: str) -> float:
    start = time.perf_counter()
    mlbom.generate(ref, cache=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    hub = HubStandIn()
    hub.repos["bench/small"] = repo(10**9)
    hub.repos["bench/large"] = repo(100 * 10**9)
    os.environ["HF_ENDPOINT"] = hub.url
    os.environ["HF_HOME"] = tempfile.mkdtemp()
    os.environ.pop("HF_TOKEN", None)
    try:
        timed("hf://bench/small")  # warm up imports and the connection pool
        times: dict[str, list[float]] = {"small": [], "large": []}
        for _ in range(args.runs):
            for name in times:
                times[name].append(timed(f"hf://bench/{name}"))
        small, large = (statistics.median(times[n]) for n in ("small", "large"))
        weights = sum(v for k, v in hub.served.items() if k.endswith(".safetensors"))
        runs = 2 * args.runs + 1
        print(f"files per repository: {len(hub.repos['bench/small'].files)}")
        print(f"1 GB repository:   median {small * 1000:7.1f} ms over {args.runs} runs")
        print(f"100 GB repository: median {large * 1000:7.1f} ms over {args.runs} runs")
        print(f"ratio 100 GB / 1 GB: {large / small:.2f}  (target: about 1, at most 1.2)")
        print(
            f"weight bytes served per run: {weights / runs / 1024:.0f} KiB "
            f"for {SHARDS} shards (headers only)"
        )
    finally:
        hub.close()


if __name__ == "__main__":
    main()
