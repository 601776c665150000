"""attest: in-toto statements over ML-BOMs, signed as Sigstore bundles, and their verification."""
