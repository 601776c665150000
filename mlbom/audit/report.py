"""The audit report: every model in the given stores, with its BOM (present, schema-valid,
complete per BSI TR-03183-2 and the G7 minimum elements), its signature (verified against the
policy's signers), what the admission webhook decided about it, and the CRA points this
evidence covers. The report is a dict valid against schemas/audit-report.schema.json.

Bad input never ends the export: an unreadable store, a corrupt BOM, a bundle that does not
verify, a decision log with a broken chain each become a finding, with what to do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from mlbom import __version__
from mlbom.bom import read
from mlbom.errors import MlbomError
from mlbom.untrusted import as_dict, as_list, as_str

MAX_EVENTS = 100  # per model, the most recent


@dataclass(frozen=True)
class Product:
    """The product with digital elements the evidence is for."""

    name: str | None = None
    manufacturer: str | None = None
    contact: str | None = None
    support_until: str | None = None


@dataclass
class Collected:
    """A model's attestation as found: what the export includes in its ZIP too."""

    reference: str
    store: str
    bom: bytes | None = None
    bundle: bytes | None = None


@dataclass
class Report:
    data: dict[str, Any]
    attestations: list[Collected] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)


def build_report(
    stores: Iterable[str],
    *,
    decision_logs: Iterable[Path] = (),
    policy_path: Path | None = None,
    product: Product = Product(),
    insecure_registries: tuple[str, ...] = (),
    scan: dict[str, Any] | None = None,
) -> Report:
    """Collect and check everything; never raises for what it finds, only for unusable
    arguments (a policy that does not load). `scan`, the JSON of `mlbom admission scan`,
    adds what runs each model now."""
    from mlbom.audit.checks import CraFacts, cra_points

    policy = None
    if policy_path is not None:
        from admission.policy_loader import load_policy

        policy = load_policy(policy_path)
    findings: list[dict[str, Any]] = []
    collected: list[Collected] = []
    for location in stores:
        collected += _collect(location, findings, insecure_registries)
    events, logs_info, log_files, oms = _decisions(decision_logs, findings)
    models = [_model(c, policy, events.get(c.reference, [])) for c in collected]
    in_stores = {m["reference"]: m for m in models}
    for reference, evidence in oms.items():  # admitted on an OpenSSF model signature
        if reference in in_stores:
            in_stores[reference]["oms"] = evidence
        else:
            models.append(_oms_only(reference, evidence, events.get(reference, [])))
    if scan is not None:
        for model in models:
            model["runningNow"] = _running(model["reference"], scan)
    for model in models:
        findings += model["findings"]
    total = len(models)
    with_bom = sum(m["bom"]["present"] for m in models)
    verified = sum(m["signature"]["verified"] for m in models)
    bsi = sum(m["bsiPasses"] for m in models)
    all_events = [e for evs in events.values() for e in evs]
    facts = CraFacts(
        models=total,
        with_bom=with_bom,
        schema_valid=sum(m["bom"]["schemaValid"] for m in models),
        signed_verified=verified,
        bsi_passing=bsi,
        with_vulnerability_contact=sum(m.pop("_contact") for m in models),
        decision_logs=len(logs_info),
        decision_logs_intact=sum(log["intact"] for log in logs_info),
        product=product.name,
        manufacturer=product.manufacturer,
        contact=product.contact,
        support_until=product.support_until,
    )
    data = {
        "schemaVersion": "1",
        "generated": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "tool": {"name": "mlbom", "version": __version__},
        "product": {
            "name": product.name,
            "manufacturer": product.manufacturer,
            "contact": product.contact,
            "supportUntil": product.support_until,
        },
        "summary": {
            "models": total,
            "withBom": with_bom,
            "signedVerified": verified,
            "signedShare": round(verified / total, 4) if total else 0.0,
            "bsiPassing": bsi,
            "bsiShare": round(bsi / total, 4) if total else 0.0,
            "allowed": sum(e["allowed"] for e in all_events),
            "denied": sum(not e["allowed"] for e in all_events),
            "findings": len(findings),
        },
        "models": models,
        "cra": [_plain(p) for p in cra_points(facts)],
        "decisionLogs": logs_info,
        "findings": findings,
    }
    if scan is not None:
        counts = {k: scan.get(k) for k in ("scanned", "denied", "warned")}
        data["scan"] = {"at": _str(scan.get("at"))} | {
            k: v if isinstance(v, int) and not isinstance(v, bool) else None
            for k, v in counts.items()
        }
    return Report(data, collected, log_files)


def _running(reference: str, scan: dict[str, Any]) -> list[dict[str, Any]]:
    """The workloads the scan found running `reference` (Hub names without regard to case),
    since when, and how admission would decide them now."""
    wanted = reference.lower() if reference.startswith("hf://") else reference
    found = []
    entries = scan.get("running")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("models"), list):
            continue
        models = [m.lower() if m.startswith("hf://") else m for m in entry["models"] if isinstance(m, str)]  # fmt: skip
        if wanted in models:
            workload = {k: _str(entry.get(k)) for k in ("object", "namespace", "since", "reason")}
            result = entry.get("result")
            found.append(workload | {"result": result if result in ("pass", "warn", "fail") else None})  # fmt: skip
    return found


# -- the stores ------------------------------------------------------------------------------


def _collect(
    location: str, findings: list[dict[str, Any]], insecure: tuple[str, ...]
) -> list[Collected]:
    from attest.stores import CorruptEntryError, NoAttestationError, open_store

    try:
        store = open_store(location, insecure_registries=insecure)
        refs = store.models()
    except MlbomError as e:
        findings.append(_finding("error", location, f"the store cannot be read: {e.message}",
                                 e.hint or "check the location and the credentials"))  # fmt: skip
        return []
    found = []
    for ref in refs:
        entry = Collected(str(ref), location)
        try:
            attestation = store.pull(ref)
            entry.bom, entry.bundle = attestation.bom, attestation.bundle
        except (NoAttestationError, CorruptEntryError) as e:
            findings.append(_finding("error", str(ref), f"its entry in {location} is unreadable: {e.message}",
                                     "publish the attestation again with mlbom push"))  # fmt: skip
        except MlbomError as e:
            findings.append(_finding("error", str(ref), f"{location}: {e.message}", e.hint))
        found.append(entry)
    return found


# -- one model -------------------------------------------------------------------------------


def _model(entry: Collected, policy: Any, events: list[dict[str, Any]]) -> dict[str, Any]:
    from mlbom.audit.checks import bsi_checks, bsi_passes, g7_checks
    from mlbom.bom.validate import validation_error

    findings: list[dict[str, Any]] = []
    ref = entry.reference
    model: dict[str, Any] = {
        "reference": ref, "digest": None, "purl": None, "name": None, "version": None,
        "store": entry.store,
        "bom": {"present": entry.bom is not None, "schemaValid": False},
        "signature": {"verified": False, "signer": None, "identity": None, "issuer": None,
                      "reason": "no BOM"},
        "hashesRecheckable": False, "licenses": [], "datasets": [], "baseModels": [],
        "unsafeImports": [], "cc": {"required": False, "tees": [], "gpu": False},
        "decisions": _decision_summary(events), "bsi": [], "bsiPasses": False, "g7": [],
        "findings": findings, "_contact": False,
    }  # fmt: skip
    if entry.bom is None:
        findings.append(
            _finding("error", ref, "no BOM was found for it", "generate, sign and push its ML-BOM")
        )
        return model
    try:
        bom = msgspec.json.decode(entry.bom)
        if not isinstance(bom, dict):
            raise ValueError("not a JSON object")
    except (msgspec.DecodeError, RecursionError, ValueError) as e:
        model["bom"]["error"] = f"not JSON: {e}"
        findings.append(
            _finding("error", ref, "its BOM is corrupt (not JSON)", "generate and push it again")
        )
        return model
    _describe(model, bom)
    error = validation_error(bom)
    model["bom"]["schemaValid"] = error is None
    if error:
        model["bom"]["error"] = error[:1000]
        findings.append(_finding("error", ref, f"its BOM does not validate against CycloneDX: {error[:300]}",
                                 "generate it again with mlbom generate"))  # fmt: skip
    model["signature"] = _signature(bom, entry.bundle, policy)
    if not model["signature"]["verified"]:
        findings.append(_finding("error", ref, f"its BOM is not verified: {model['signature']['reason']}",
                                 "sign it with mlbom sign by a signer the policy trusts, and push it"))  # fmt: skip
    bsi = bsi_checks(bom)
    model["bsi"] = [_plain(c) for c in bsi]
    model["bsiPasses"] = bsi_passes(bsi)
    model["g7"] = [_plain(c) for c in g7_checks(bom, signed=model["signature"]["verified"])]
    if not model["bsiPasses"]:
        failed = [c for c in bsi if c.status == "fail" and c.level == "required"]
        fixes = "; ".join(dict.fromkeys(c.fix for c in failed if c.fix))
        findings.append(_finding("warning", ref, f"{len(failed)} required BSI TR-03183-2 fields fail",
                                 fixes or None))  # fmt: skip
    if model["unsafeImports"]:
        findings.append(_finding("warning", ref, f"pickles import {', '.join(model['unsafeImports'][:5])} when loaded",
                                 "convert the weights to safetensors"))  # fmt: skip
    return model


def _oms_only(reference: str, evidence: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """A model the webhook admitted on an OpenSSF model signature alone: no store holds a
    BOM of it, so every field of the SBOM the CRA asks for is missing; the BSI checks of a
    bare model component say which."""
    from mlbom.audit.checks import bsi_checks

    bare = {"bomFormat": "CycloneDX", "specVersion": "1.6",
            "metadata": {"component": {"type": "machine-learning-model", "name": reference}}}  # fmt: skip
    lacking = [c.title for c in bsi_checks(bare) if c.level == "required" and c.status == "fail"]
    evidence = {**evidence, "lacking": list(dict.fromkeys(lacking))}
    model = _model(Collected(reference, evidence["signature"] or "(the model's own repository)"), None, events)  # fmt: skip
    model["oms"] = evidence
    model["signature"]["reason"] = "no BOM: admitted on an OpenSSF model signature"
    model["findings"] = [_finding(
        "error", reference,
        f"admitted on an OpenSSF model signature by {evidence['signer']} without an ML-BOM: it "
        f"lacks the SBOM the CRA asks for ({len(evidence['lacking'])} required BSI TR-03183-2 "
        f"fields: {', '.join(evidence['lacking'][:8])})",
        "generate its ML-BOM (mlbom generate), sign it and push it to a store",
    )]  # fmt: skip
    return model


def _describe(model: dict[str, Any], bom: dict[str, Any]) -> None:
    """The model's identity and facts, from its BOM."""
    from attest.stores import bom_reference

    metadata = as_dict(bom.get("metadata"))
    component = read.model(bom)
    model["name"] = _str(component.get("name"))
    model["version"] = _str(component.get("version"))
    model["purl"] = _str(component.get("purl"))
    try:
        model["digest"] = bom_reference(bom).digest
    except MlbomError:
        model["digest"] = None
    model["bom"].update(
        specVersion=_str(bom.get("specVersion")),
        serialNumber=_str(bom.get("serialNumber")),
        timestamp=_str(metadata.get("timestamp")),
    )
    files = read.files(bom)

    def algorithms(c: dict[str, Any]) -> set[str | None]:
        return {h.alg for h in read.hashes(c)}

    model["bom"]["files"] = len(files)
    model["bom"]["sha512Files"] = sum("SHA-512" in algorithms(c) for c in files)
    model["hashesRecheckable"] = bool(files) and all("SHA-256" in algorithms(c) for c in files)
    model["licenses"] = [licence.value for licence in read.licences(component)]
    # Listed in the order of components, each once. A data component without a bom-ref counts
    # as named when the card names a dataset without one (inline): kept as it was.
    refs = {d.ref for d in read.datasets(bom)}
    model["datasets"] = [
        {"name": str(c.get("name")), "version": _str(c.get("version")),
         "url": next((_str(r.get("url")) for r in as_list(c.get("externalReferences")) if isinstance(r, dict)), None),
         "role": _str(next(iter(read.properties(c).get("mlbom:dataset:role", [])), None))}
        for c in read.components(bom)
        if c.get("type") == "data" and as_str(c.get("bom-ref")) in refs
    ]  # fmt: skip
    model["baseModels"] = [str(a.get("name")) for a in read.ancestors(component)]
    props = read.properties(component)
    model["unsafeImports"] = sorted({v or "" for v in props.get("mlbom:unsafe-import", [])})
    tees = [t.strip() for v in props.get("mlbom:cc:tee", []) for t in (v or "").split(",") if t.strip()]  # fmt: skip
    model["cc"] = {
        "required": "true" in props.get("mlbom:cc:required", []),
        "tees": tees,
        "gpu": "true" in props.get("mlbom:cc:gpu", []),
    }
    maker = as_dict(metadata.get("manufacturer"))
    model["_contact"] = bool(maker.get("contact") or maker.get("url"))


def _signature(bom: dict[str, Any], bundle: bytes | None, policy: Any) -> dict[str, Any]:
    from attest.verify import verify
    from mlbom.errors import NotVerifiedError

    result: dict[str, Any] = {"verified": False, "signer": None, "identity": None, "issuer": None}
    if bundle is None:
        return result | {"reason": "no bundle"}
    if policy is None or not policy.signers:
        return result | {"reason": "no trusted signer to verify against (give --policy)"}
    reasons = []
    for named in policy.signers:
        try:
            verified = verify(
                bom, bundle, named.signer, trusted_root=policy.trusted_root,
                trust_config=policy.trust_config, offline=True,
            )  # fmt: skip
        except NotVerifiedError as e:
            reasons.append(f"{named.name}: {e.check}: {e.reason}")
            continue
        except MlbomError as e:
            reasons.append(f"{named.name}: {e.message}")
            continue
        return {"verified": True, "signer": named.name, "identity": verified.signer,
                "issuer": verified.issuer, "reason": None}  # fmt: skip
    return result | {"reason": "; ".join(reasons)[:2000]}


# -- the decision logs -----------------------------------------------------------------------


def _decisions(
    paths: Iterable[Path], findings: list[dict[str, Any]]
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]], list[Path], dict[str, dict[str, Any]]]:  # fmt: skip
    """Events by model reference, one entry per log (its chain checked), the files read,
    and the OpenSSF model signature each model admitted on one alone was last admitted on."""
    from admission.decisions import rotated_files, verify_chain

    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    oms: dict[str, dict[str, Any]] = {}
    logs: list[dict[str, Any]] = []
    read: list[Path] = []
    for path in paths:
        files = [*rotated_files(path), path] if path.exists() else [path]
        read += [f for f in files if f.exists()]
        report = verify_chain(files)
        logs.append({"path": str(path), "files": report.files, "records": report.records,
                     "intact": report.intact, "findings": report.findings[:100]})  # fmt: skip
        if not report.intact:
            findings.append(_finding("error", str(path), f"the decision log's hash chain is broken ({len(report.findings)} findings: {report.findings[0][:200]})",
                                     "keep the log's files together and unedited; investigate who changed it"))  # fmt: skip
        for file in files:
            try:
                lines = file.read_bytes().splitlines()
            except OSError:
                continue
            for line in lines:
                try:
                    record = msgspec.json.decode(line)
                except (msgspec.DecodeError, RecursionError):
                    continue
                if not isinstance(record, dict) or record.get("webhook") == "mutate":
                    continue
                event = {
                    "time": _str(record.get("time")), "allowed": bool(record.get("allowed")),
                    "namespace": _str(record.get("namespace")), "name": _str(record.get("name")),
                    "kind": _str(record.get("kind")), "operation": _str(record.get("operation")),
                    "mode": _str(record.get("mode")), "reason": _str(record.get("reason")),
                    "log": str(path),
                }  # fmt: skip
                for verdict in record.get("models") or []:
                    if isinstance(verdict, dict) and isinstance(verdict.get("model"), str):
                        events[verdict["model"]].append(event)
                        if verdict.get("evidence") == "oms-signature" and event["allowed"]:
                            oms[verdict["model"]] = {"signature": _str(verdict.get("store")),
                                                     "signer": _str(verdict.get("signer")),
                                                     "lastAdmitted": event["time"]}  # fmt: skip
    return events, logs, read, oms


def _decision_summary(events: list[dict[str, Any]]) -> dict[str, Any]:
    recent = sorted(events, key=lambda e: e.get("time") or "", reverse=True)[:MAX_EVENTS]
    return {
        "allowed": sum(e["allowed"] for e in events),
        "denied": sum(not e["allowed"] for e in events),
        "events": recent,
    }


# -- small helpers ---------------------------------------------------------------------------


def _finding(severity: str, subject: str, message: str, fix: str | None) -> dict[str, Any]:
    return {"severity": severity, "subject": subject, "message": message, "fix": fix}


def _plain(item: Any) -> dict[str, Any]:
    return asdict(item)


def _str(value: Any) -> str | None:
    return value[:2000] if isinstance(value, str) else None
