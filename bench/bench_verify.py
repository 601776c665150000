"""Speed figure for `mlbom verify` (issue: attest — sign and verify ML-BOMs with Sigstore):
verifying a BOM and its keyless bundle offline, without --model, in-process after start-up.

The bundle is made by `attest.sign` against the local Sigstore instance the tests use
(tests/sigstore/server.js, built from @sigstore/mock; needs `make test` to have installed
it), for the ML-BOM of the built-in example model. Figures, medians over many runs:

1. `attest.verify(bom, bundle, ExpectedSigner(identity, issuer), trusted_root=…)`: all six checks but
   the model's. Target: under 10 ms.
2. the baseline measured in the same run: sigstore-python's own `Verifier.verify_dsse` on the
   same bundle with the same policy, a verifier built once; the ratio says what mlbom adds
   (parsing, the statement checks, canonicalisation of the BOM).
3. the same for a key bundle, for comparison.

Run: `make bench` (or `python bench/bench_verify.py [--runs 300]`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import attest
import mlbom
from attest import keys
from tests.keyless import ISSUER, LocalSigstore, email_token

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tiny-sentiment"


def median_ms(call: Callable[[], object], runs: int) -> float:
    call()  # warm: imports, caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp())
    sigstore = LocalSigstore.start(folder)
    try:
        bom = mlbom.generate(EXAMPLE, version="1.0.0").to_dict()
        bundle = attest.sign(
            bom, identity_token=email_token("bench@example.com"), trust_config=sigstore.trust_config
        )
        signer = attest.ExpectedSigner(identity="bench@example.com", issuer=ISSUER)

        def ours() -> object:
            return attest.verify(bom, bundle, signer, trusted_root=sigstore.trusted_root)

        from sigstore.models import Bundle, TrustedRoot
        from sigstore.verify import Verifier, policy

        verifier = Verifier(trusted_root=TrustedRoot.from_file(str(sigstore.trusted_root)))
        identity = policy.Identity(identity="bench@example.com", issuer=ISSUER)

        def baseline() -> object:
            return verifier.verify_dsse(Bundle.from_json(bundle), identity)

        private = keys.generate("ecdsa-p256")
        key_bundle = attest.sign(bom, key=private)
        key_signer = attest.ExpectedSigner(key=private.public_key())

        def with_key() -> object:
            return attest.verify(bom, key_bundle, key_signer)

        mine = median_ms(ours, args.runs)
        base = median_ms(baseline, args.runs)
        key = median_ms(with_key, args.runs)
        subjects = len(json.loads(bom_json := json.dumps(bom))["components"])
        print(
            f"example BOM: {len(bom_json)} bytes, {subjects} components; bundle {len(bundle)} bytes"
        )
        print(
            f"mlbom keyless verify, offline: median {mine:.2f} ms over {args.runs} runs (target < 10 ms)"
        )
        print(f"sigstore-python verify_dsse alone: median {base:.2f} ms; ratio {mine / base:.2f}")
        print(f"mlbom key verify: median {key:.2f} ms")
    finally:
        sigstore.stop()


if __name__ == "__main__":
    main()
