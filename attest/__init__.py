"""attest: in-toto statements over ML-BOMs, signed as Sigstore bundles (keyless or with a
private key), and their verification against a signer and, optionally, the model's files.

`attest.sign(bom, ...)` and `attest.verify(bom, bundle, signer, ...)` are the library calls,
`attest.resolve(model_ref, store)` finds a model's attestation in a store (`attest.stores`),
and `attest.verify_model(...)` checks an OpenSSF model-signing (OMS) signature;
`mlbom sign`, `mlbom verify` and `mlbom keygen` are thin layers over them. sigstore itself is
imported only when a keyless bundle is made or checked.
"""

from __future__ import annotations

from attest.oms import verify_model
from attest.sign import sign
from attest.stores import attestation_for as resolve
from attest.verify import Signer, Verification, verify

__all__ = ["Signer", "Verification", "resolve", "sign", "verify", "verify_model"]
