"""attest: in-toto statements over ML-BOMs, signed as Sigstore bundles (keyless or with a
private key), and their verification against an expected signer and, optionally, the model's
files.

`attest.sign(bom, ...)` and `attest.verify(bom, bundle, signer, ...)` are the library calls,
`attest.attestation_for(model_ref, store)` finds a model's attestation in a store
(`attest.stores`), `attest.verify_stored(...)` verifies it there, `attest.push(...)` files one, and `attest.verify_model(...)` checks an
OpenSSF model-signing signature; `mlbom sign`, `mlbom verify`, `mlbom push` and
`mlbom verify-model` are thin layers over them. sigstore itself is imported only when a keyless
bundle is made or checked; stores and model signatures load when first named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# `sign` and `verify` are both modules and the functions named after them: bound here, so
# that importing the module later does not replace the function on the package.
from attest.sign import sign
from attest.verify import ExpectedSigner, Verification, verify

if TYPE_CHECKING:
    from attest.model_signatures import verify_model
    from attest.stores import attestation_for, push, verify_stored

__all__ = [
    "ExpectedSigner",
    "Verification",
    "attestation_for",
    "push",
    "sign",
    "verify",
    "verify_model",
    "verify_stored",
]

_LAZY = {
    "attestation_for": "attest.stores",
    "push": "attest.stores",
    "verify_stored": "attest.stores",
    "verify_model": "attest.model_signatures",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'attest' has no attribute {name!r}")
