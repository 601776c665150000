"""mlbom audit: CRA compliance evidence for every model: which ML-BOMs exist, whether they
are valid, signed and complete (BSI TR-03183-2, the G7 minimum elements for AI), what the
admission webhook decided about them, and what is missing, as JSON, HTML and a signed ZIP.

`mlbom.audit.export(stores, output, ...)` is the library call `mlbom audit export` makes:
`report` collects, `checks` judges, `evidence` writes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlbom.audit.report import Product, Report

MAX_SCAN = 64 << 20


def export(
    stores: Sequence[str],
    output: Path,
    *,
    fmt: str | None = None,
    decision_logs: Sequence[Path] = (),
    policy: Path | None = None,
    scan: Path | None = None,
    product: Product | None = None,
    sign: bool = False,
    key: Path | None = None,
    key_password: str | None = None,
    identity_token: str | None = None,
    trust_config: Path | None = None,
    insecure_registries: tuple[str, ...] = (),
) -> Report:
    """Write the CRA evidence for every model in `stores` to `output` (JSON, HTML or ZIP,
    from `fmt` or the file's extension), all or nothing: per model its BOM and checks, its
    signature, the decisions `decision_logs` hold about it, and what runs it now (`scan`,
    the JSON of `mlbom admission scan --json`). `sign` signs the ZIP's manifest of digests,
    with `key` or keyless. Findings do not fail the export; unusable arguments raise
    `BadInputError`. Returns the report written."""
    import datetime
    import json

    from mlbom.audit import evidence
    from mlbom.audit.report import Product, build_report
    from mlbom.errors import BadInputError
    from mlbom.files import read_bounded

    product = product or Product()
    fmt = evidence.format_of(output, fmt)
    if sign and fmt != "zip":
        raise BadInputError("--sign signs the ZIP evidence package: write a .zip")
    if (key or identity_token or trust_config) and not sign:
        raise BadInputError("--key, --identity-token and --trust-config sign: add --sign")
    if product.support_until:
        try:
            datetime.date.fromisoformat(product.support_until)
        except ValueError:
            raise BadInputError(
                f"--support-until {product.support_until!r} is not a date (YYYY-MM-DD)"
            ) from None
    signer = None
    if sign:
        from attest import keys
        from attest.sign import sign_payload

        private = keys.load_private_key(key, key_password) if key else None

        def signer(payload: bytes) -> str:
            return sign_payload(
                payload, key=private, identity_token=identity_token, trust_config=trust_config
            )

    scanned = None
    if scan is not None:
        hint = "give the output of mlbom admission scan --json"
        try:
            scanned = json.loads(read_bounded(scan, MAX_SCAN))
        except (ValueError, RecursionError):
            raise BadInputError(f"{scan} is not JSON", hint=hint) from None
        if not isinstance(scanned, dict) or not isinstance(scanned.get("running"), list):
            raise BadInputError(f"{scan} is not a scan", hint=hint)
    report = build_report(
        stores,
        decision_logs=decision_logs,
        policy_path=policy,
        product=product,
        insecure_registries=insecure_registries,
        scan=scanned,
    )
    evidence.write(report, output, fmt, sign=signer)
    return report
