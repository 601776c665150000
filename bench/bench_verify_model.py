"""Speed figures for `mlbom verify-model` (issue 16): a ~2 GiB model of four files signed by
the OpenSSF model-signing package itself, verified by `mlbom verify-model` and by
`model_signing verify`, both as the whole commands a user runs (interpreter start-up and
imports included), on the same files, alternately, page cache warm; best of three each.

Target: mlbom no slower than model_signing (ratio mlbom / model_signing <= 1.00), for a key
signature and for a certificate-chain signature (model_signing's certificate mode).

Run: `python bench/bench_verify_model.py [--size-gib 2]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_generate import FILES, make_folder, warm

from attest import keys
from tests.builders import ca_chain

TARGET = 1.00


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])}… failed: {done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=2.0)
    args = parser.parse_args()
    total = int(args.size_gib * (1 << 30))
    print(f"machine: {os.cpu_count()} cores; model: {FILES} files, {total / 2**30:.1f} GiB (page cache warm)")  # fmt: skip
    import model_signing

    python = sys.executable
    failures = []
    with tempfile.TemporaryDirectory(prefix="mlbom-bench-") as name:
        tmp = Path(name)
        root = tmp / "model"
        root.mkdir()
        paths = make_folder(root, total)
        keys.write_key_pair(keys.generate("ecdsa-p256"), tmp / "k.key", tmp / "k.pub", None)
        model_signing.signing.Config().use_elliptic_key_signer(private_key=tmp / "k.key").sign(root, tmp / "key.sig")  # fmt: skip
        (tmp / "pki").mkdir()
        pki = ca_chain(tmp / "pki")
        model_signing.signing.Config().use_certificate_signer(
            private_key=pki["key"], signing_certificate=pki["leaf"], certificate_chain=[pki["mid"]]
        ).sign(root, tmp / "cert.sig")
        warm(paths)
        modes = {
            "key": (
                [
                    python,
                    "-m",
                    "mlbom",
                    "verify-model",
                    str(root),
                    "--signature",
                    str(tmp / "key.sig"),
                    "--key",
                    str(tmp / "k.pub"),
                ],
                [
                    python,
                    "-m",
                    "model_signing",
                    "verify",
                    "key",
                    "--signature",
                    str(tmp / "key.sig"),
                    "--public_key",
                    str(tmp / "k.pub"),
                    str(root),
                ],
            ),
            "certificate chain": (
                [
                    python,
                    "-m",
                    "mlbom",
                    "verify-model",
                    str(root),
                    "--signature",
                    str(tmp / "cert.sig"),
                    "--certificate-chain",
                    str(pki["root"]),
                ],
                [
                    python,
                    "-m",
                    "model_signing",
                    "verify",
                    "certificate",
                    "--signature",
                    str(tmp / "cert.sig"),
                    "--certificate_chain",
                    str(pki["root"]),
                    str(root),
                ],
            ),
        }
        for mode, (ours, theirs) in modes.items():
            mine, other = [], []
            for _ in range(3):  # alternate, so both see the same machine state
                mine.append(timed(ours))
                other.append(timed(theirs))
            ratio = min(mine) / min(other)
            verdict = "PASS" if ratio <= TARGET else "FAIL"
            print(f"   {mode:18} mlbom verify-model {min(mine):.2f} s ({total / min(mine) / 1e6:.0f} MB/s)   "
                  f"model_signing verify {min(other):.2f} s   ratio {ratio:.2f} (target <= {TARGET:.2f}) {verdict}")  # fmt: skip
            if ratio > TARGET:
                failures.append(mode)
    print(f"\nresult: {'all targets met' if not failures else 'missed: ' + ', '.join(failures)}")


if __name__ == "__main__":
    main()
