"""Writing the audit report: JSON (validated against schemas/audit-report.schema.json), one
self-contained HTML file, or a ZIP evidence package holding both, every BOM and bundle, the
decision logs read, and a manifest of the SHA-256 of every file, optionally signed as an
in-toto statement (Sigstore bundle) so the package stays tamper-evident for its ten years."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from mlbom.audit.report import Report
from mlbom.errors import BadInputError, InvalidBomError
from mlbom.files import write_atomically

MANIFEST = "MANIFEST.sha256"
MANIFEST_BUNDLE = "MANIFEST.sha256.sigstore.json"
PREDICATE_TYPE = "https://mlbom.dev/audit-export/v1"
FORMATS = ("json", "html", "zip")
_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def report_json(report: Report) -> str:
    """The report as JSON, validated against the schema mlbom ships."""
    import jsonschema

    from schemas import load

    validator = jsonschema.Draft202012Validator(
        load("audit-report.schema.json"), format_checker=jsonschema.FormatChecker()
    )
    errors = sorted(validator.iter_errors(report.data), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path)
        raise InvalidBomError(
            f"the audit report does not match its schema at {where}: {errors[0].message}"
        )
    return msgspec.json.format(msgspec.json.encode(report.data), indent=2).decode() + "\n"


def write(
    report: Report,
    path: Path,
    fmt: str,
    *,
    sign: Callable[[bytes], str] | None = None,
) -> None:
    """Write the report in `fmt` (json, html, zip) to `path`, all or nothing. `sign` turns
    the manifest statement's payload into a bundle (zip only)."""
    if fmt == "json":
        write_atomically(path, report_json(report))
    elif fmt == "html":
        from mlbom.audit.html import render_html

        report_json(report)  # the HTML shows what the schema allows, nothing else
        write_atomically(path, render_html(report.data))
    elif fmt == "zip":
        _write_zip(report, path, sign)
    else:
        raise BadInputError(f"unsupported format {fmt}", hint=f"choose {', '.join(FORMATS)}")


def format_of(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = path.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise BadInputError(
        f"cannot tell the format of {path}", hint="name it .json, .html or .zip, or give --format"
    )


def _write_zip(report: Report, path: Path, sign: Callable[[bytes], str] | None) -> None:
    from mlbom.audit.html import render_html

    files: dict[str, bytes] = {
        "report.json": report_json(report).encode(),
        "report.html": render_html(report.data).encode(),
    }
    for entry in report.attestations:
        folder = "attestations/" + _safe(entry.reference)
        if entry.bom is not None:
            files[f"{folder}/mlbom.cdx.json"] = entry.bom
        if entry.bundle is not None:
            files[f"{folder}/mlbom.cdx.json.sigstore.json"] = entry.bundle
    for log in report.logs:
        try:
            files[f"decision-logs/{_safe(str(log.parent))}/{log.name}"] = log.read_bytes()
        except OSError:
            continue  # already a finding of the report
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    files[MANIFEST] = "".join(f"{d}  {n}\n" for n, d in digests.items()).encode()
    if sign is not None:
        files[MANIFEST_BUNDLE] = sign(manifest_statement(digests, report.data)).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    write_atomically(path, buffer.getvalue())


def manifest_statement(digests: dict[str, str], data: dict[str, Any]) -> bytes:
    """An in-toto statement over every file of the package: what `--sign` signs."""
    from attest.statement import STATEMENT_TYPE, canonical

    return canonical({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": n, "digest": {"sha256": d}} for n, d in sorted(digests.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"generated": data["generated"], "summary": data["summary"],
                      "product": data["product"], "tool": data["tool"]},
    })  # fmt: skip


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("._")[:200] or "model"
