"""The G7 Cybersecurity Working Group's "Software Bill of Materials (SBOM) for Artificial
Intelligence - Minimum Elements" (published by BSI, 2026-05-12) over one ML-BOM: what it shows
for each of the seven clusters (Metadata, System Level Properties, Models, Dataset Properties,
Key Performance Indicators, Infrastructure, Security Properties). The elements are not
mandatory, so there is no pass/fail verdict over them, only what the BOM shows.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from mlbom.audit.checks.common import (
    FIX_AGAIN,
    FIX_CONTACT,
    FIX_DATASET,
    FIX_ENV,
    FIX_LICENCE,
    FIX_MAKER,
    FIX_NAME,
    FIX_SHA512,
    FIX_SOURCE,
    FIX_VERSION,
    HEX,
    Check,
    clip,
    hash_algorithms,
    parse_time,
    property_texts,
    reachable,
    reference_urls,
)
from mlbom.bom import read
from mlbom.untrusted import as_dict as _dict
from mlbom.untrusted import as_list as _list
from mlbom.untrusted import as_str


def g7_checks(bom: dict[str, Any], *, signed: bool | None = None) -> list[Check]:
    """What the BOM shows for each G7 cluster. `signed`: whether the BOM's signature was
    verified (it lives beside the BOM, not in it); None when it was not looked at."""
    bom = bom if isinstance(bom, dict) else {}
    metadata = _dict(bom.get("metadata"))
    model = read.model(bom)
    card = _dict(model.get("modelCard"))
    components = list(read.walk_components(bom.get("components")))
    formulas = [f for f in _list(bom.get("formulation")) if isinstance(f, dict)]
    environment = [c for f in formulas for c in read.walk_components(f.get("components"))]
    return [
        *_g7_metadata(bom, metadata, signed),
        *_g7_system(model, card, components),
        *_g7_models(model, card, components, formulas),
        *_g7_datasets(read.datasets(bom), components, formulas),
        *_g7_kpis(card),
        *_g7_infrastructure(model, environment),
        *_g7_security(metadata, model, components, signed),
    ]


def _check(id_: str, title: str, ok: bool, detail: str, fix: str | None = None) -> Check:
    return Check(id_, title, "pass" if ok else "fail", detail, None if ok else fix)


def _g7_metadata(bom: dict[str, Any], metadata: dict[str, Any], signed: bool | None) -> list[Check]:
    authors = [
        str(a.get("name") or a.get("email"))
        for a in _list(metadata.get("authors"))
        if isinstance(a, dict) and (a.get("name") or a.get("email"))
    ]
    maker = _dict(metadata.get("manufacturer")).get("name")
    author = ", ".join(([f"manufacturer {maker}"] if maker else []) + authors)
    tools = _tools(metadata)
    lifecycles = [
        str(p.get("phase") or p.get("name"))
        for p in _list(metadata.get("lifecycles"))
        if isinstance(p, dict) and (p.get("phase") or p.get("name"))
    ]
    top_ref = as_str(_dict(metadata.get("component")).get("bom-ref"))
    graph = {
        d["ref"]: d
        for d in _list(bom.get("dependencies"))
        if isinstance(d, dict) and isinstance(d.get("ref"), str)
    }
    spec = f"{bom.get('bomFormat') or '?'} {bom.get('specVersion') or '?'}"
    if signed is None:
        signature = Check(
            "g7.metadata.signature",
            "Author signature",
            "n/a",
            "the signature is kept beside the BOM and was not checked here",
        )
    else:
        signature = _check(
            "g7.metadata.signature",
            "Author signature",
            signed,
            "signature verified" if signed else "no verified signature",
            "sign the BOM with mlbom sign and keep the bundle beside it",
        )
    timestamp = metadata.get("timestamp")
    return [
        _check(
            "g7.metadata.author",
            "SBOM author",
            bool(author),
            author or "no author or manufacturer",
            FIX_MAKER,
        ),
        _check(
            "g7.metadata.format",
            "Data format and version",
            bom.get("bomFormat") == "CycloneDX" and bool(bom.get("specVersion")),
            spec,
            FIX_AGAIN,
        ),
        _check(
            "g7.metadata.version",
            "SBOM version",
            isinstance(bom.get("version"), int),
            f"version {bom.get('version')} of {bom.get('serialNumber') or 'an unnamed BOM'}",
            FIX_AGAIN,
        ),
        signature,
        _check(
            "g7.metadata.tool",
            "Tool name and version",
            bool(tools),
            ", ".join(tools) or "no tool",
            FIX_AGAIN,
        ),
        _check(
            "g7.metadata.generation-context",
            "Generation context (lifecycle phase)",
            bool(lifecycles),
            f"metadata.lifecycles: {', '.join(lifecycles)}"
            if lifecycles
            else "no metadata.lifecycles",
            "state the lifecycle phase the BOM was made in (metadata.lifecycles, e.g. build); "
            "mlbom does not write it",
        ),
        _check(
            "g7.metadata.timestamp",
            "SBOM timestamp",
            isinstance(timestamp, str) and parse_time(timestamp) is not None,
            f"metadata.timestamp: {timestamp}" if timestamp else "no metadata.timestamp",
            FIX_AGAIN,
        ),
        _check(
            "g7.metadata.dependencies",
            "Dependency relationships",
            top_ref in graph,
            f"{len(graph)} entries in dependencies, the model's included"
            if top_ref in graph
            else "the model has no entry in dependencies",
            FIX_AGAIN,
        ),
    ]


def _g7_system(
    model: dict[str, Any], card: dict[str, Any], components: list[dict[str, Any]]
) -> list[Check]:
    # The BOM describes the model; the system it runs in is the product's own documentation
    name, version = model.get("name"), model.get("version")
    producer = _producer(model)
    missing = [
        w for w, v in (("name", name), ("version", version), ("producer", producer)) if not v
    ]
    fixes = [
        f
        for w, f in (("name", FIX_NAME), ("version", FIX_VERSION), ("producer", FIX_MAKER))
        if w in missing
    ]
    considerations = _dict(card.get("considerations"))
    uses = [str(u) for u in _list(considerations.get("useCases"))]
    users = [str(u) for u in _list(considerations.get("users"))]
    kinds: defaultdict[str, int] = defaultdict(int)
    for c in components:
        kinds[str(c.get("type"))] += 1
    return [
        _check(
            "g7.system.identity",
            "System name, version and producer",
            not missing,
            f"{name or '?'} {version or '?'} by {producer or '?'}"
            + (f" (missing: {', '.join(missing)})" if missing else ""),
            "; ".join(fixes),
        ),
        _check(
            "g7.system.components",
            "System components",
            bool(components),
            ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "no components",
            FIX_AGAIN,
        ),
        _check(
            "g7.system.intended-use",
            "Intended application area",
            bool(uses or users),
            clip("; ".join(uses + users)) or "no intended uses or users in the model card",
            "describe the intended uses in the model card (an 'Intended uses' section) and "
            "generate again",
        ),
        Check(
            "g7.system.data-flow",
            "System data flow and data usage",
            "n/a",
            "how the deployed system moves and uses data belongs to the product, not to a "
            "model's BOM: describe it in the technical documentation (CRA Annex VII 2a)",
        ),
    ]


def _g7_models(
    model: dict[str, Any],
    card: dict[str, Any],
    components: list[dict[str, Any]],
    formulas: list[dict[str, Any]],
) -> list[Check]:
    name, version = model.get("name"), model.get("version")
    identifier = model.get("purl") or model.get("cpe") or _dict(model.get("swid")).get("tagId")
    producer = _producer(model)
    parameters = _dict(card.get("modelParameters"))
    props = property_texts(model)
    facts = [
        f"{k}: {parameters[k]}"
        for k in ("task", "architectureFamily", "modelArchitecture")
        if parameters.get(k)
    ]
    facts += [
        f"{n}: {', '.join(props[n])}"
        for n in ("mlbom:format", "mlbom:parameter-count")
        if props.get(n)
    ]
    inputs = [str(_dict(i).get("format")) for i in _list(parameters.get("inputs"))]
    outputs = [str(_dict(o).get("format")) for o in _list(parameters.get("outputs"))]
    files = [c for c in components if c.get("type") == "file"]
    hashed = [c for c in files if hash_algorithms(c)]
    algorithms = sorted({a for c in files for a in hash_algorithms(c)})
    ancestors = [str(a.get("name")) for a in read.ancestors(model)]
    training = [f"base model {', '.join(ancestors)}"] if ancestors else []
    if parameters.get("datasets"):
        training.append(f"datasets: {len(_list(parameters['datasets']))}")
    if any(f.get("workflows") or f.get("components") for f in formulas):
        training.append("training environment (formulation)")
    limitations = [
        str(x) for x in _list(_dict(card.get("considerations")).get("technicalLimitations"))
    ]
    licences = [licence.value for licence in read.licences(model)]
    references = [
        f"{r.get('type')}: {r.get('url')}"
        for r in _list(model.get("externalReferences"))
        if isinstance(r, dict)
    ]
    return [
        _check(
            "g7.models.identity",
            "Model name and version",
            bool(name and version),
            f"{name or '?'} {version or '?'}",
            FIX_VERSION if name else FIX_NAME,
        ),
        _check(
            "g7.models.identifier",
            "Model identifier",
            bool(identifier),
            str(identifier) if identifier else "no purl, CPE or SWID",
            FIX_SOURCE,
        ),
        _check(
            "g7.models.producer",
            "Model producer",
            bool(producer),
            producer or "no producer",
            FIX_MAKER,
        ),
        Check(
            "g7.models.timestamp",
            "Model timestamp",
            "fail",
            "no date of training or release for the model (metadata.timestamp dates the BOM)",
            "state when the model was trained or released in the technical documentation "
            "(mlbom has no field for it)",
        ),
        _check(
            "g7.models.description",
            "Model description",
            bool(model.get("description")),
            clip(str(model.get("description") or "")) or "no description",
            "write a description at the top of the model card and generate again",
        ),
        _check(
            "g7.models.hash",
            "Model hash value and algorithm",
            bool(files) and len(hashed) == len(files),
            f"{len(hashed)} of {len(files)} files hashed ({', '.join(algorithms) or 'none'})",
            FIX_AGAIN,
        ),
        _check(
            "g7.models.properties",
            "Model properties",
            bool(facts),
            "; ".join(facts) or "none stated",
            "give the card's pipeline_tag and the config's architectures, and generate again",
        ),
        _check(
            "g7.models.io",
            "Model inputs and outputs",
            bool(inputs or outputs),
            f"inputs: {', '.join(inputs) or '?'}; outputs: {', '.join(outputs) or '?'}",
            "give the card's pipeline_tag (it sets inputs and outputs) and generate again",
        ),
        _check(
            "g7.models.training",
            "Training properties",
            bool(training),
            "; ".join(training) or "no base model, datasets or training environment",
            FIX_ENV + "; name base models and datasets in the model card",
        ),
        _check(
            "g7.models.limitations",
            "Model limitations",
            bool(limitations),
            clip("; ".join(limitations)) or "no limitations in the model card",
            "describe the limitations in the model card (a 'Limitations' section) and generate again",
        ),
        _check(
            "g7.models.license",
            "Model licence",
            bool(licences),
            ", ".join(licences) or "no licence",
            FIX_LICENCE,
        ),
        _check(
            "g7.models.references",
            "External references",
            bool(references),
            clip("; ".join(references)) or "no external references",
            FIX_SOURCE,
        ),
    ]


def _g7_datasets(
    named: list[read.CardDataset],
    components: list[dict[str, Any]],
    formulas: list[dict[str, Any]],
) -> list[Check]:
    datasets = [c for c in components if c.get("type") == "data"]
    titles = {
        "identity": "Dataset name and version",
        "provenance": "Dataset provenance",
        "relationship": "Dataset dependency relationship",
        "license": "Dataset licence",
        "integrity": "Dataset hash",
        "sensitivity": "Dataset content and sensitivity",
    }
    if not datasets:
        fix = "name the training data in the model card's `datasets:` or " + FIX_DATASET
        return [
            Check(f"g7.datasets.{k}", t, "fail", "no datasets in the BOM", fix)
            for k, t in titles.items()
        ]
    # an inline dataset reads "None", as the bom-ref of a data component without one does
    linked = {str(d.ref) for d in named}
    for formula in formulas:
        for workflow in _list(formula.get("workflows")):
            for item in _list(_dict(workflow).get("inputs")):
                linked.add(str(_dict(_dict(item).get("resource")).get("ref")))
    rows: dict[str, list[tuple[str, bool, str]]] = defaultdict(list)
    for d in datasets:
        name, version, ref = d.get("name") or "?", d.get("version"), str(d.get("bom-ref"))
        data = [x for x in _list(d.get("data")) if isinstance(x, dict)]
        origin = [str(u) for x in data if (u := _dict(x.get("contents")).get("url"))]
        origin += reference_urls(d, ("website", "distribution", "vcs", "source-distribution"))
        origin += ["governance stated" for x in data if x.get("governance")]
        licences = [licence.value for licence in read.licences(d)]
        pinned = bool(version and len(str(version)) in (40, 64) and HEX.match(str(version)))
        digests = hash_algorithms(d)
        content = [
            str(x.get(k))
            for x in data
            for k in ("classification", "sensitiveData", "description")
            if x.get(k)
        ]
        rows["identity"].append(
            (name, bool(version), f"{name}@{version}" if version else f"{name} (no version)")
        )
        rows["provenance"].append(
            (name, bool(origin), f"{name}: {origin[0]}" if origin else f"{name}: no source")
        )
        rows["relationship"].append(
            (
                name,
                ref in linked,
                f"{name}: "
                + (
                    "linked to the model"
                    if ref in linked
                    else "not referenced by the model card or formulation"
                ),
            )
        )
        rows["license"].append(
            (name, bool(licences), f"{name}: {', '.join(licences) or 'no licence'}")
        )
        rows["integrity"].append(
            (
                name,
                bool(digests) or pinned,
                f"{name}: "
                + (
                    ", ".join(digests)
                    if digests
                    else f"pinned to commit {version}"
                    if pinned
                    else "no hash"
                ),
            )
        )
        rows["sensitivity"].append(
            (
                name,
                bool(content),
                f"{name}: "
                + (clip("; ".join(content)) if content else "no classification or sensitivity"),
            )
        )
    fixes = {
        "identity": FIX_DATASET,
        "provenance": "name the dataset by its Hub id or URL in the model card",
        "relationship": FIX_AGAIN,
        "license": "record each dataset's licence on its data component (mlbom does not read it)",
        "integrity": FIX_DATASET + " with REVISION a commit (content-addressed)",
        "sensitivity": "state each dataset's classification and sensitive data on its data component",
    }
    checks = []
    for key, title in titles.items():
        entries = rows[key]
        ok = all(e[1] for e in entries)
        checks.append(
            _check(
                f"g7.datasets.{key}", title, ok, clip("; ".join(e[2] for e in entries)), fixes[key]
            )
        )
    return checks


def _g7_kpis(card: dict[str, Any]) -> list[Check]:
    metrics = [
        m
        for m in _list(_dict(card.get("quantitativeAnalysis")).get("performanceMetrics"))
        if isinstance(m, dict)
    ]
    shown = [
        f"{m.get('type')} {m.get('value')}" + (f" ({m['slice']})" if m.get("slice") else "")
        for m in metrics
    ]
    security = [
        s
        for m, s in zip(metrics, shown, strict=True)
        if re.search(
            r"robust|adversar|attack|jailbreak|injection|toxic|safety",
            str(m.get("type")),
            re.IGNORECASE,
        )
    ]
    return [
        _check(
            "g7.kpi.performance",
            "Operational performance metrics",
            bool(metrics),
            clip("; ".join(shown)) or "no modelCard.quantitativeAnalysis.performanceMetrics",
            "give evaluation results in the model card's model-index and generate again",
        ),
        _check(
            "g7.kpi.security",
            "Security metrics",
            bool(security),
            clip("; ".join(security)) or "no security metric (robustness, attack success)",
            "evaluate security metrics (e.g. adversarial robustness) and give them in the "
            "model card's model-index",
        ),
    ]


def _g7_infrastructure(model: dict[str, Any], environment: list[dict[str, Any]]) -> list[Check]:
    software = [
        c
        for c in environment
        if c.get("type")
        in ("platform", "operating-system", "library", "framework", "container", "application")
    ]
    hardware = [c for c in environment if c.get("type") in ("device", "device-driver")]
    kinds: defaultdict[str, int] = defaultdict(int)
    for c in software:
        kinds[str(c.get("type"))] += 1
    named = [
        f"{c.get('name')} {c.get('version') or ''}".strip()
        for c in software
        if c.get("type") in ("platform", "operating-system")
    ]
    props = property_texts(model)
    devices = [str(c.get("name")) for c in hardware]
    if props.get("mlbom:cc:required"):
        tees = ", ".join(props.get("mlbom:cc:tee", [])) or "any TEE"
        devices.append(f"runs only in confidential computing ({tees})")
    return [
        _check(
            "g7.infrastructure.software",
            "Infrastructure software",
            bool(software),
            "formulation: "
            + ", ".join(
                named
                + [
                    f"{n} {k}"
                    for k, n in sorted(kinds.items())
                    if k not in ("platform", "operating-system")
                ]
            )
            if software
            else "no training environment (formulation)",
            FIX_ENV,
        ),
        _check(
            "g7.infrastructure.hardware",
            "Infrastructure hardware",
            bool(devices),
            "; ".join(devices)
            or "no hardware (no GPU in formulation, no confidential-computing requirement)",
            "generate with --env on the machine that trained the model (it "
            "records NVIDIA GPUs), or --require-cc for where it may run",
        ),
    ]


def _g7_security(
    metadata: dict[str, Any],
    model: dict[str, Any],
    components: list[dict[str, Any]],
    signed: bool | None,
) -> list[Check]:
    files = [c for c in components if c.get("type") == "file"]
    strong = [c for c in files if set(hash_algorithms(c)) - {"MD5", "SHA-1"}]
    controls = [f"{len(strong)} of {len(files)} files with SHA-256 or stronger"]
    if signed is not None:
        controls.append("BOM signature verified" if signed else "BOM signature not verified")
    props = property_texts(model)
    if props.get("mlbom:cc:required"):
        controls.append("confidential computing required")
    unsafe = props.get("mlbom:unsafe-import", [])
    custom = props.get("mlbom:custom-code", [])
    contact = reachable(metadata.get("manufacturer"), "manufacturer") or reachable(
        model.get("manufacturer"), "model manufacturer"
    )
    advisories = reference_urls(model, ("rfc-9116", "security-contact", "advisories"))
    policy = "; ".join(filter(None, [contact, *advisories]))
    return [
        _check(
            "g7.security.controls",
            "Security controls (integrity)",
            bool(files) and len(strong) == len(files),
            "; ".join(controls),
            FIX_SHA512,
        ),
        _check(
            "g7.security.code-execution",
            "Loading runs no code",
            not unsafe and not custom,
            "; ".join(
                [
                    f"pickles import {', '.join(unsafe[:5])}" if unsafe else "",
                    "custom code runs on loading (auto_map)" if custom else "",
                ]
            ).strip("; ")
            or "no unsafe pickle imports or custom code found",
            "convert the weights to safetensors and drop custom code, or review it",
        ),
        _check(
            "g7.security.policy",
            "Cybersecurity policy information (vulnerability contact)",
            bool(policy),
            policy or "no manufacturer contact or security.txt",
            FIX_CONTACT,
        ),
        Check(
            "g7.security.compliance",
            "Security compliance",
            "n/a",
            "assessed by the audit export itself (BSI TR-03183-2 and CRA sections)",
        ),
        Check(
            "g7.security.vulnerabilities",
            "Vulnerability referencing",
            "n/a",
            "kept out of the SBOM (BSI TR-03183-2 §3.1): vulnerabilities go to the "
            "manufacturer's advisories (CRA Annex I Part II 4)",
        ),
    ]


def _producer(component: Mapping[str, Any]) -> str | None:
    for key in ("manufacturer", "supplier"):
        if name := _dict(component.get(key)).get("name"):
            return str(name)
    authors = [
        str(a.get("name"))
        for a in _list(component.get("authors"))
        if isinstance(a, dict) and a.get("name")
    ]
    publisher = component.get("publisher")
    return ", ".join(authors) or (str(publisher) if publisher else None)


def _tools(metadata: Mapping[str, Any]) -> list[str]:
    tools = metadata.get("tools")
    # CycloneDX 1.5+ lists tools as components and services; older BOMs as a plain list
    entries = (
        _list(_dict(tools).get("components")) + _list(_dict(tools).get("services"))
        if isinstance(tools, dict)
        else _list(tools)
    )
    return [
        f"{t.get('name')} {t.get('version') or ''}".strip()
        for t in entries
        if isinstance(t, dict) and t.get("name")
    ]
