"""The audit report as one self-contained HTML file, for a reader and for the printer.

`render_html(report)` turns the report dict (schemas/audit-report.schema.json) into one
HTML5 document: the summary figures first, then the findings, a table of the models with
a section for each, the CRA table and the decision logs. It has no scripts, no external
URL of any kind and no web fonts (the system font stack), and its Content-Security-Policy
forbids loading anything, so the file opens the same offline, from an e-mail or from an
auditor's archive. The print style starts each model on a new page, repeats table headers
and drops background colours; every status badge carries its word (PASS, FAIL, GAP…), so
nothing depends on colour.

The report holds text from BOMs and decision logs that an attacker may have written, so
every string goes through `_text` (HTML-escaped, control and bidirectional-override
characters made visible) and none ever becomes markup: no element, no attribute, no link
target (URLs are shown, not linked; anchors are numbered). Per-model decision events are
capped at `MAX_EVENTS`, and the page says so. The output is deterministic: the same report
gives the same bytes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["MAX_EVENTS", "render_html"]

MAX_EVENTS = 100
"""Decision events listed per model; the JSON report keeps the rest."""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

# C0/C1 controls (but tab and newline) and the bidi overrides and isolates that let a
# hostile name read as something else on screen ("Trojan Source"): shown as \uXXXX.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)

# Badge label, CSS tone. The label is the meaning; the tone only helps on screen.
_BADGES: dict[str, tuple[str, str]] = {
    "pass": ("✓ PASS", "good"),
    "fail": ("✗ FAIL", "bad"),
    "n/a": ("– N/A", "none"),
    "evidence": ("✓ EVIDENCE", "good"),
    "partial": ("◐ PARTIAL", "warn"),
    "gap": ("✗ GAP", "bad"),
    "error": ("✗ ERROR", "bad"),
    "warning": ("! WARNING", "warn"),
    "info": ("i INFO", "none"),
    "allowed": ("✓ ALLOWED", "good"),
    "denied": ("✗ DENIED", "bad"),
    "verified": ("✓ VERIFIED", "good"),
    "unverified": ("✗ NOT VERIFIED", "bad"),
    "valid": ("✓ VALID", "good"),
    "invalid": ("✗ INVALID", "bad"),
    "missing": ("✗ MISSING", "bad"),
    "present": ("✓ PRESENT", "good"),
    "intact": ("✓ INTACT", "good"),
    "broken": ("✗ BROKEN", "bad"),
    "yes": ("✓ YES", "good"),
    "no": ("✗ NO", "bad"),
    "required": ("! REQUIRED", "warn"),
    "not-required": ("– NOT REQUIRED", "none"),
    "unsafe": ("✗ UNSAFE", "bad"),
    "none-found": ("✓ NONE FOUND", "good"),
}

# Failing rows first, so the reader meets the work to do before the passes.
_CHECK_ORDER = {"fail": 0, "pass": 1, "n/a": 2}
_LEVEL_ORDER = {"required": 0, "additional": 1, "optional": 2}
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

_STYLE = """
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de;
  --head: #f3f5f7; --good: #116329; --good-bg: #dafbe1; --bad: #a40e26;
  --bad-bg: #ffebe9; --warn: #7d4e00; --warn-bg: #fff8c5; --none: #57606a;
  --none-bg: #eef1f4; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 78rem; padding: 1.5rem; color: var(--fg);
  background: #fff; line-height: 1.45; font-size: 15px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
    "Noto Sans", "Liberation Sans", Arial, sans-serif; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas,
  "Liberation Mono", "DejaVu Sans Mono", monospace; font-size: .9em; }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; }
h2 { font-size: 1.35rem; margin: 2rem 0 .6rem; padding-bottom: .2rem;
  border-bottom: 2px solid var(--fg); }
h3 { font-size: 1.15rem; margin: 0 0 .5rem; }
p { margin: .4rem 0; }
a { color: #0a58ca; }
.muted { color: var(--muted); }
header p { margin: .15rem 0; }
nav ol { margin: .5rem 0 0; padding-left: 1.2rem; columns: 2; max-width: 30rem; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1.1rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; caption-side: top; }
th, td { border: 1px solid var(--line); padding: .3rem .45rem; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
thead th { background: var(--head); }
/* Identifiers, times and the schema's enums stay whole; long free text may break. */
th, td.word { overflow-wrap: normal; }
td.nw { overflow-wrap: normal; white-space: nowrap; }
/* Long check ids must not squeeze out the fix, the column the reader needs most. */
table.checks td:nth-child(2) { min-width: 10rem; }
table.checks td:nth-child(6) { min-width: 15rem; }
thead th.num { white-space: nowrap; }
table.kv { max-width: 60rem; }
table.kv th { width: 15rem; background: var(--head); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 0 .4rem; border-radius: .25rem;
  border: 1px solid currentColor; font-weight: 700; font-size: .8rem;
  letter-spacing: .02em; white-space: nowrap; }
.good { color: var(--good); background: var(--good-bg); }
.bad { color: var(--bad); background: var(--bad-bg); }
.warn { color: var(--warn); background: var(--warn-bg); }
.none { color: var(--none); background: var(--none-bg); }
tr.fail td { background: var(--bad-bg); }
dl.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr));
  gap: .6rem; margin: .5rem 0 1rem; }
dl.figures div { border: 1px solid var(--line); border-radius: .4rem; padding: .5rem .7rem; }
dl.figures dt { color: var(--muted); font-size: .85rem; }
dl.figures dd { margin: .1rem 0 0; font-size: 1.3rem; font-weight: 700; }
dl.figures dd small { font-size: .85rem; font-weight: 400; color: var(--muted); }
section.model { border-top: 1px solid var(--line); margin-top: 1.5rem; padding-top: 1rem; }
.badges { margin: 0 0 .6rem; }
.badges .badge { margin-right: .3rem; }
ul.plain { margin: .2rem 0 .8rem; padding-left: 1.2rem; }
.note { border-left: 3px solid var(--line); padding-left: .6rem; color: var(--muted); }
footer { margin-top: 2.5rem; color: var(--muted); font-size: .85rem; }
@media print {
  @page { margin: 14mm 12mm; }
  body { max-width: none; padding: 0; font-size: 10pt; }
  nav { display: none; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; }
  section.model { break-before: page; border-top: none; margin-top: 0; }
  section.cra, section.logs { break-before: page; }
  thead { display: table-header-group; }
  tfoot { display: table-footer-group; }
  tr, dl.figures div { break-inside: avoid; }
  caption { break-after: avoid; }
  .good, .bad, .warn, .none, tr.fail td, thead th, table.kv th {
    background: none !important; color: #000 !important; }
  .badge { border: 1px solid #000; }
  .bad.badge { border-width: 2px; }
  .muted, .note, dl.figures dt, dl.figures dd small { color: #000; }
}
"""


def render_html(report: Mapping[str, Any]) -> str:
    """One self-contained HTML5 document for `report` (a dict of the audit-report schema)."""
    models: Sequence[Mapping[str, Any]] = report.get("models") or []
    # Anchors are numbered (model-1, model-2…), never made of report text.
    by_reference = {m.get("reference"): _anchor(i) for i, m in enumerate(models, 1)}
    product = report.get("product") or {}
    title = "CRA audit evidence" + (f": {product['name']}" if product.get("name") else "")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{html.escape(CSP, quote=False)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_text(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        _header(report, title),
        _nav(),
        "<main>",
        _summary(report),
        _findings(report.get("findings") or [], by_reference),
        _models_table(models),
        *(_model_section(m, _anchor(i)) for i, m in enumerate(models, 1)),
        _cra(report.get("cra") or []),
        _logs(report.get("decisionLogs") or []),
        "</main>",
        _footer(report),
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


# -- pieces ---------------------------------------------------------------------------


def _header(report: Mapping[str, Any], title: str) -> str:
    product = report.get("product") or {}
    tool = report.get("tool") or {}
    lines = [f"<header>\n<h1>{_text(title)}</h1>"]
    for label, key in (
        ("Manufacturer", "manufacturer"),
        ("Contact for vulnerability reports", "contact"),
        ("Support period until", "supportUntil"),
    ):
        if product.get(key):
            lines.append(f"<p><strong>{label}:</strong> {_text(product[key])}</p>")
    lines.append(
        f'<p class="muted">Generated {_text(report.get("generated") or "?")} by '
        f"{_text(tool.get('name') or 'mlbom')} {_text(tool.get('version') or '')}, "
        f"report format {_text(report.get('schemaVersion') or '?')}.</p>"
    )
    lines.append("</header>")
    return "\n".join(lines)


def _nav() -> str:
    items = [
        ("summary", "Summary"),
        ("findings", "Findings"),
        ("models", "Models"),
        ("cra", "CRA requirements"),
        ("decision-logs", "Decision logs"),
    ]
    links = "".join(f'<li><a href="#{a}">{t}</a></li>' for a, t in items)
    return f'<nav aria-label="Contents"><strong>Contents</strong><ol>{links}</ol></nav>'


def _summary(report: Mapping[str, Any]) -> str:
    s = report.get("summary") or {}
    models = _int(s.get("models"))
    logs = report.get("decisionLogs") or []
    broken = sum(1 for log in logs if not log.get("intact"))
    cra = report.get("cra") or []
    cra_counts = {k: sum(1 for p in cra if p.get("status") == k) for k in _CRA_STATES}
    figures = [
        ("Models", str(models), ""),
        ("With an ML-BOM", f"{_int(s.get('withBom'))} of {models}", ""),
        (
            "Valid, signed and verified ML-BOM",
            f"{_int(s.get('signedVerified'))} of {models}",
            _percent(s.get("signedShare")),
        ),
        (
            "Passing BSI TR-03183-2",
            f"{_int(s.get('bsiPassing'))} of {models}",
            _percent(s.get("bsiShare")),
        ),
        ("Admission decisions: denied", str(_int(s.get("denied"))), ""),
        ("Admission decisions: allowed", str(_int(s.get("allowed"))), ""),
        ("Findings", str(_int(s.get("findings"))), ""),
        (
            "Decision logs intact",
            f"{len(logs) - broken} of {len(logs)}" if logs else "none read",
            f"{broken} broken" if broken else "",
        ),
        (
            "CRA points with evidence",
            f"{cra_counts['evidence']} of {len(cra)}",
            f"{cra_counts['partial']} partial, {cra_counts['gap']} gap",
        ),
    ]
    cards = "\n".join(
        f"<div><dt>{label}</dt><dd>{_text(value)}"
        + (f" <small>{_text(extra)}</small>" if extra else "")
        + "</dd></div>"
        for label, value, extra in figures
    )
    return (
        '<section id="summary" class="summary">\n<h2>Summary</h2>\n'
        f'<dl class="figures">\n{cards}\n</dl>\n</section>'
    )


def _findings(findings: Sequence[Mapping[str, Any]], by_reference: Mapping[Any, str]) -> str:
    head = '<section id="findings" class="findings">\n<h2>Findings</h2>'
    if not findings:
        return f"{head}\n<p>No findings: nothing needs attention.</p>\n</section>"
    ordered = sorted(findings, key=lambda f: _SEVERITY_ORDER.get(str(f.get("severity")), 3))
    rows = []
    for f in ordered:
        subject = _text(f.get("subject") or "")
        anchor = by_reference.get(f.get("subject"))
        if anchor:
            subject = f'<a href="#{anchor}">{subject}</a>'
        rows.append(
            "<tr>"
            f"<td>{_badge(f.get('severity'))}</td>"
            f"<td>{subject}</td>"
            f"<td>{_text(f.get('message') or '')}</td>"
            f"<td>{_text(f.get('fix') or '—')}</td>"
            "</tr>"
        )
    return (
        f"{head}\n"
        + _table(
            f"{len(findings)} findings, errors first",
            ["Severity", "About", "Finding", "What to do"],
            rows,
        )
        + "\n</section>"
    )


def _models_table(models: Sequence[Mapping[str, Any]]) -> str:
    head = '<section id="models" class="models">\n<h2>Models</h2>'
    if not models:
        return f"{head}\n<p>No models in this report.</p>\n</section>"
    rows = []
    for i, m in enumerate(models, 1):
        decisions = m.get("decisions") or {}
        reference = ""
        if m.get("name") and m.get("reference"):
            reference = f'<br><code class="muted">{_text(m["reference"])}</code>'
        rows.append(
            "<tr>"
            f'<td class="num">{i}</td>'
            f'<td><a href="#{_anchor(i)}">{_text(_model_title(m))}</a>{reference}</td>'
            f"<td>{_text(m.get('version') or '—')}</td>"
            f"<td>{_badge(_bom_state(m))}</td>"
            f"<td>{_badge('verified' if _signature(m).get('verified') else 'unverified')}</td>"
            f"<td>{_badge('pass' if m.get('bsiPasses') else 'fail')}</td>"
            f"<td>{_badge(_overall(m.get('g7') or []))}</td>"
            f"<td>{_badge('unsafe' if m.get('unsafeImports') else 'none-found')}</td>"
            f'<td class="num">{_int(decisions.get("allowed"))}</td>'
            f'<td class="num">{_int(decisions.get("denied"))}</td>'
            f'<td class="num">{len(m.get("findings") or [])}</td>'
            "</tr>"
        )
    header = [
        ("#", True),
        ("Model", False),
        ("Version", False),
        ("ML-BOM", False),
        ("Signature", False),
        ("BSI TR-03183-2", False),
        ("G7", False),
        ("Unsafe imports", False),
        ("Allowed", True),
        ("Denied", True),
        ("Findings", True),
    ]
    return (
        f"{head}\n"
        + _table(f"{len(models)} models, one row each; details below", header, rows)
        + "\n</section>"
    )


def _model_section(m: Mapping[str, Any], anchor: str) -> str:
    sig = _signature(m)
    out = [
        f'<section id="{anchor}" class="model">',
        f"<h3>{_text(_model_title(m))}"
        + (f' <span class="muted">{_text(m["version"])}</span>' if m.get("version") else "")
        + "</h3>",
        '<p class="badges">'
        + " ".join(
            [
                f"ML-BOM {_badge(_bom_state(m))}",
                f"Signature {_badge('verified' if sig.get('verified') else 'unverified')}",
                f"BSI {_badge('pass' if m.get('bsiPasses') else 'fail')}",
                f"G7 {_badge(_overall(m.get('g7') or []))}",
            ]
        )
        + "</p>",
        _kv(
            "Identity",
            [
                ("Reference", _code(m.get("reference"))),
                ("Name", _text(m.get("name") or "—")),
                ("Version", _text(m.get("version") or "—")),
                ("Digest", _code(m.get("digest"))),
                ("Package URL", _code(m.get("purl"))),
                ("Attestation store", _code(m.get("store"))),
            ],
        ),
        _bom(m),
        _signature_table(sig),
        _oms_table(m.get("oms")),
        _kv(
            "File hashes",
            [
                (
                    "Re-checkable (SHA-256 for every file)",
                    _badge("yes" if m.get("hashesRecheckable") else "no")
                    + (
                        ""
                        if m.get("hashesRecheckable")
                        else " the model cannot be re-hashed against its ML-BOM"
                        " (mlbom verify --model)"
                    ),
                ),
            ],
        ),
        _list("Licences", "Declared", m.get("licenses") or [], "No licence declared."),
        _datasets(m.get("datasets") or []),
        _list(
            "Base models (lineage)",
            "Ancestors",
            m.get("baseModels") or [],
            "No base model declared.",
        ),
        _unsafe(m.get("unsafeImports") or []),
        _cc(m.get("cc") or {}),
        _decisions(m.get("decisions") or {}),
        _running(m["runningNow"]) if "runningNow" in m else "",
        _checks("BSI TR-03183-2", m.get("bsi") or [], "pass" if m.get("bsiPasses") else "fail"),
        _checks("G7 minimum elements for AI", m.get("g7") or []),
        _model_findings(m.get("findings") or []),
        "</section>",
    ]
    return "\n".join(out)


def _bom(m: Mapping[str, Any]) -> str:
    bom = m.get("bom") or {}
    rows = [
        ("Present", _badge("present" if bom.get("present") else "missing")),
        ("Valid against the CycloneDX schema", _badge("yes" if bom.get("schemaValid") else "no")),
    ]
    for label, key in (
        ("Spec version", "specVersion"),
        ("Serial number", "serialNumber"),
        ("Timestamp", "timestamp"),
    ):
        if bom.get(key) is not None:
            rows.append((label, _code(bom[key])))
    if bom.get("files") is not None:
        rows.append(("Files", str(_int(bom["files"]))))
    if bom.get("sha512Files") is not None:
        rows.append(("Files with a SHA-512", str(_int(bom["sha512Files"]))))
    if bom.get("error"):
        rows.append(("Error", _text(bom["error"])))
    return _kv("ML-BOM", rows)


def _signature_table(sig: Mapping[str, Any]) -> str:
    rows = [("Verified", _badge("verified" if sig.get("verified") else "unverified"))]
    for label, key in (("Signer", "signer"), ("Identity", "identity"), ("Issuer", "issuer")):
        if sig.get(key):
            rows.append((label, _code(sig[key])))
    if not sig.get("verified"):
        rows.append(("Why not", _text(sig.get("reason") or "no reason recorded")))
    elif sig.get("reason"):
        rows.append(("Note", _text(sig["reason"])))
    return _kv("Signature", rows)


def _oms_table(oms: Any) -> str:
    """The OpenSSF model signature a model was admitted on without an ML-BOM."""
    if not isinstance(oms, Mapping):
        return ""
    rows = [
        ("Signature", _code(oms.get("signature"))),
        ("Signer (policy name)", _code(oms.get("signer"))),
        ("Last admitted", _text(oms.get("lastAdmitted") or "—")),
    ]
    lacking = [str(x) for x in oms.get("lacking") or []]
    if lacking:
        rows.append(("SBOM fields it lacks", _text(", ".join(lacking))))
    return _kv("Admitted on an OpenSSF model signature", rows)


def _datasets(datasets: Sequence[Mapping[str, Any]]) -> str:
    if not datasets:
        return _kv("Datasets", [("Declared", "No dataset declared.")])
    # URLs are shown, never linked: a hostile BOM picks them.
    rows = [
        "<tr>"
        f"<td>{_text(d.get('name') or '')}</td>"
        f"<td>{_text(d.get('version') or '—')}</td>"
        f"<td>{_text(d.get('role') or '—')}</td>"
        f"<td>{_code(d.get('url'))}</td>"
        "</tr>"
        for d in datasets
    ]
    return _table(
        f"Datasets and their provenance ({len(datasets)})",
        ["Dataset", "Version", "Role", "Source"],
        rows,
    )


def _unsafe(imports: Sequence[str]) -> str:
    if not imports:
        return _kv(
            "Unsafe serialization", [("Imports outside the allowlist", _badge("none-found"))]
        )
    items = "".join(f"<li>{_code(i)}</li>" for i in imports)
    return _kv(
        "Unsafe serialization",
        [
            (
                "Imports outside the allowlist",
                f"{_badge('unsafe')} {len(imports)} found:"
                f'<ul class="plain">{items}</ul>'
                "Loading these pickles can run code: convert the weights to safetensors.",
            )
        ],
    )


def _cc(cc: Mapping[str, Any]) -> str:
    rows = [
        (
            "Confidential computing",
            _badge("required" if cc.get("required") else "not-required"),
        )
    ]
    if cc.get("tees"):
        rows.append(("Accepted TEEs", ", ".join(_code(t) for t in cc["tees"])))
    if "gpu" in cc:
        rows.append(("Confidential GPU", "required" if cc.get("gpu") else "not required"))
    return _kv("Confidential computing", rows)


def _decisions(decisions: Mapping[str, Any]) -> str:
    events: Sequence[Mapping[str, Any]] = decisions.get("events") or []
    allowed, denied = _int(decisions.get("allowed")), _int(decisions.get("denied"))
    summary = f"<p><strong>Admission decisions:</strong> {allowed} allowed, {denied} denied.</p>"
    if not events:
        return summary + "\n<p>No admission decision about this model in the logs.</p>"
    # Bounded so that one busy model cannot make the file unprintable; the report lists
    # the most recent decisions first.
    shown = events[:MAX_EVENTS]
    total = max(allowed + denied, len(events))
    note = ""
    if total > len(shown):
        note = (
            f'\n<p class="note">Listed: the {len(shown)} most recent of {total} decisions '
            f"(at most {MAX_EVENTS} per model); the decision logs hold them all.</p>"
        )
    rows = []
    for e in shown:
        pod = "/".join(str(x) for x in (e.get("namespace"), e.get("name")) if x)
        rows.append(
            _tr(not e.get("allowed"))
            + f'<td class="nw"><code>{_text(e.get("time") or "—")}</code></td>'
            f"<td>{_badge('allowed' if e.get('allowed') else 'denied')}</td>"
            f"<td>{_text(e.get('kind') or '')} {_text(pod or '—')}</td>"
            f'<td class="word">{_text(e.get("operation") or "—")}</td>'
            f'<td class="word">{_text(e.get("mode") or "—")}</td>'
            f"<td>{_text(e.get('reason') or '—')}</td>"
            f"<td>{_code(e.get('log'))}</td>"
            "</tr>"
        )
    return (
        summary
        + note
        + "\n"
        + _table(
            f"Admission decisions seen in the logs ({len(shown)} listed)",
            ["Time", "Decision", "Workload", "Operation", "Mode", "Reason", "Log"],
            rows,
        )
    )


def _running(workloads: Sequence[Mapping[str, Any]]) -> str:
    """What the included scan found running the model."""
    if not workloads:
        return "<p><strong>Running now:</strong> no workload of the scan runs this model.</p>"
    rows = [
        _tr(w.get("result") == "fail")
        + f"<td>{_text(w.get('object') or '—')}</td><td>{_text(w.get('namespace') or '—')}</td>"
        f'<td class="nw"><code>{_text(w.get("since") or "—")}</code></td>'
        f"<td>{_badge('allowed' if w.get('result') != 'fail' else 'denied')}</td>"
        f"<td>{_text(w.get('reason') or '—')}</td></tr>"
        for w in workloads[:MAX_EVENTS]
    ]
    return _table(
        f"Running now ({len(workloads)} workloads, per the included scan)",
        ["Workload", "Namespace", "Since", "Today", "Reason"],
        rows,
    )


def _checks(name: str, checks: Sequence[Mapping[str, Any]], verdict: str | None = None) -> str:
    """A check table, failing rows first (required ones on top), each with its fix; the
    verdict is the report's where it has one (BSI passes with optional checks failing)."""
    if not checks:
        return f"<p><strong>{_text(name)}:</strong> not checked (no ML-BOM to check).</p>"
    ordered = sorted(
        checks,
        key=lambda c: (
            _CHECK_ORDER.get(str(c.get("status")), 3),
            _LEVEL_ORDER.get(str(c.get("level")), 3),
        ),
    )
    failing = [c for c in checks if c.get("status") == "fail"]
    required = sum(1 for c in failing if c.get("level", "required") == "required")
    rows = []
    for c in ordered:
        status = c.get("status")
        title = _text(c.get("title") or "")
        if c.get("subject"):
            title += f'<br><span class="muted">{_text(c["subject"])}</span>'
        rows.append(
            _tr(status == "fail") + f"<td>{_badge(status)}</td>"
            f"<td><code>{_text(c.get('id') or '')}</code></td>"
            f"<td>{title}</td>"
            f'<td class="nw">{_text(c.get("level") or "—")}</td>'
            f"<td>{_text(c.get('detail') or '')}</td>"
            f"<td>{_text(c.get('fix') or ('—' if status != 'fail' else 'no fix recorded'))}</td>"
            "</tr>"
        )
    if failing:
        caption = (
            f"{name}: {len(failing)} of {len(checks)} checks failing ({required} of them "
            "required), listed first with the fix"
        )
    else:
        caption = f"{name}: none of the {len(checks)} checks fails"
    return _table(
        caption,
        ["Status", "Check", "Requirement", "Level", "Found", "Fix"],
        rows,
        badge=_badge(verdict or _overall(checks)),
        css="checks",
    )


def _model_findings(findings: Sequence[Mapping[str, Any]]) -> str:
    if not findings:
        return "<p><strong>Findings:</strong> none for this model.</p>"
    ordered = sorted(findings, key=lambda f: _SEVERITY_ORDER.get(str(f.get("severity")), 3))
    rows = [
        "<tr>"
        f"<td>{_badge(f.get('severity'))}</td>"
        f"<td>{_text(f.get('message') or '')}</td>"
        f"<td>{_text(f.get('fix') or '—')}</td>"
        "</tr>"
        for f in ordered
    ]
    return _table(
        f"Findings for this model ({len(findings)})",
        ["Severity", "Finding", "What to do"],
        rows,
    )


_CRA_STATES = ("evidence", "partial", "gap")


def _cra(points: Sequence[Mapping[str, Any]]) -> str:
    head = '<section id="cra" class="cra">\n<h2>CRA requirements</h2>'
    if not points:
        return f"{head}\n<p>No CRA points in this report.</p>\n</section>"
    counts = {k: sum(1 for p in points if p.get("status") == k) for k in _CRA_STATES}
    rows = [
        _tr(p.get("status") == "gap") + f"<td>{_badge(p.get('status'))}</td>"
        f'<td class="word"><code>{_text(p.get("id") or "")}</code></td>'
        f"<td>{_text(p.get('title') or '')}</td>"
        f"<td>{_text(p.get('evidence') or '—')}</td>"
        f"<td>{_text(p.get('todo') or '—')}</td>"
        "</tr>"
        for p in points
    ]
    caption = (
        "Annex I Part II and Annex VII: "
        f"{counts['evidence']} with evidence, {counts['partial']} partial, {counts['gap']} gap"
    )
    return (
        f"{head}\n"
        + _table(caption, ["Status", "Point", "Requirement", "Evidence", "What to do"], rows)
        + "\n</section>"
    )


def _logs(logs: Sequence[Mapping[str, Any]]) -> str:
    head = '<section id="decision-logs" class="logs">\n<h2>Decision logs</h2>'
    if not logs:
        return f"{head}\n<p>No decision log was read.</p>\n</section>"
    rows = []
    for log in logs:
        files = "".join(f"<li>{_code(f)}</li>" for f in log.get("files") or [])
        findings = "".join(f"<li>{_text(f)}</li>" for f in log.get("findings") or [])
        rows.append(
            _tr(not log.get("intact")) + f"<td>{_code(log.get('path'))}</td>"
            f"<td>{_badge('intact' if log.get('intact') else 'broken')}</td>"
            f'<td class="num">{_int(log.get("records"))}</td>'
            f"<td>{_ul(files, '—')}</td>"
            f"<td>{_ul(findings, 'none')}</td>"
            "</tr>"
        )
    broken = sum(1 for log in logs if not log.get("intact"))
    caption = f"{len(logs)} decision logs, hash chains checked: {len(logs) - broken} intact"
    if broken:
        caption += f", {broken} broken (a broken chain means records were lost or altered)"
    header = [
        ("Log", False),
        ("Hash chain", False),
        ("Records", True),
        ("Files", False),
        ("Findings", False),
    ]
    return f"{head}\n" + _table(caption, header, rows) + "\n</section>"


def _footer(report: Mapping[str, Any]) -> str:
    tool = report.get("tool") or {}
    return (
        "<footer>Made by "
        f"{_text(tool.get('name') or 'mlbom')} {_text(tool.get('version') or '')} "
        f"on {_text(report.get('generated') or '?')}. The JSON report is the record; "
        "this page presents it.</footer>"
    )


# -- helpers --------------------------------------------------------------------------


def _text(value: object) -> str:
    """Report text as HTML text: escaped, with invisible and direction-changing
    characters shown as \\uXXXX so that what is displayed is what the report says."""
    escaped = html.escape(str(value), quote=True)
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", escaped)


def _tr(highlight: bool) -> str:
    """A row that opens tinted when it is a failure, gap, denial or broken chain."""
    return '<tr class="fail">' if highlight else "<tr>"


def _ul(items: str, empty: str) -> str:
    return f'<ul class="plain">{items}</ul>' if items else empty


def _code(value: object) -> str:
    return f"<code>{_text(value)}</code>" if value not in (None, "") else "—"


def _badge(state: object) -> str:
    label, tone = _BADGES.get(str(state), (str(state).upper(), "none"))
    return f'<span class="badge {tone}">{_text(label)}</span>'


def _table(
    caption: str,
    header: Iterable[str | tuple[str, bool]],
    rows: Iterable[str],
    *,
    badge: str = "",
    css: str = "",
) -> str:
    """A table with a caption (text, after an optional badge) and a header row; `rows` are
    HTML already built from escaped text. Numeric columns are `(name, True)`."""
    cells = []
    for h in header:
        name, numeric = h if isinstance(h, tuple) else (h, False)
        align = ' class="num"' if numeric else ""
        cells.append(f'<th scope="col"{align}>{_text(name)}</th>')
    body = "\n".join(rows)
    opening = f'<table class="{css}">' if css else "<table>"
    prefix = f"{badge} " if badge else ""
    return (
        f"{opening}\n<caption>{prefix}{_text(caption)}</caption>\n"
        f"<thead><tr>{''.join(cells)}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"
    )


def _kv(caption: str, rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table; values are HTML already built from escaped text."""
    body = "\n".join(f'<tr><th scope="row">{_text(k)}</th><td>{v}</td></tr>' for k, v in rows)
    return f'<table class="kv">\n<caption>{_text(caption)}</caption>\n<tbody>\n{body}\n</tbody>\n</table>'


def _list(caption: str, label: str, items: Sequence[str], empty: str) -> str:
    if not items:
        return _kv(caption, [(label, _text(empty))])
    return _kv(caption, [(label, "<br>".join(_code(i) for i in items))])


def _anchor(index: int) -> str:
    return f"model-{index}"


def _model_title(m: Mapping[str, Any]) -> str:
    return str(m.get("name") or m.get("reference") or "unnamed model")


def _signature(m: Mapping[str, Any]) -> Mapping[str, Any]:
    return m.get("signature") or {}


def _bom_state(m: Mapping[str, Any]) -> str:
    bom = m.get("bom") or {}
    if not bom.get("present"):
        return "missing"
    return "valid" if bom.get("schemaValid") else "invalid"


def _overall(checks: Sequence[Mapping[str, Any]]) -> str:
    statuses = {c.get("status") for c in checks}
    if "fail" in statuses:
        return "fail"
    return "pass" if "pass" in statuses else "n/a"


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _percent(share: object) -> str:
    if not isinstance(share, int | float) or isinstance(share, bool):
        return ""
    text = f"{share * 100:.1f}".removesuffix(".0")
    return f"{text} %"
