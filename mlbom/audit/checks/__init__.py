"""Field-by-field checks of one ML-BOM (a CycloneDX JSON document, as parsed), and the CRA
points the audit export can give evidence for.

Sources, paraphrased (no long quotes):

- BSI TR-03183-2 "Cyber Resilience Requirements for Manufacturers and Products, Part 2:
  Software Bill of Materials", version 2.1.0 (2025-08-20): §3.1 (no vulnerability data in an
  SBOM), §4 (CycloneDX 1.6 or later), §5.1 (recursion over the scope of delivery), §5.2.1
  (required SBOM fields), §5.2.2 (required fields per component), §5.2.3 and §5.2.4 (additional
  fields: required where they exist), §5.2.5 (optional fields), §6.1 (licences as SPDX
  identifiers or expressions, LicenseRef- otherwise) and §8.2 (the CycloneDX mapping, which
  the TR itself calls explanatory, not normative); BSI's CycloneDX property taxonomy for
  `bsi:component:*` (values and "exactly once").
- G7 Cybersecurity Working Group, "Software Bill of Materials (SBOM) for Artificial
  Intelligence - Minimum Elements" (published by BSI, 2026-05-12): seven clusters (Metadata,
  System Level Properties, Models, Dataset Properties, Key Performance Indicators,
  Infrastructure, Security Properties). The elements are not mandatory, so there is no
  pass/fail verdict over them, only what the BOM shows.
- Regulation (EU) 2024/2847 (Cyber Resilience Act): Annex I Part II points 1-8 (vulnerability
  handling) and Annex VII points 1-8 (technical documentation).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal
from urllib.parse import urlsplit

from mlbom.untrusted import as_dict as _dict
from mlbom.untrusted import as_list as _list

Status = Literal["pass", "fail", "n/a"]
Level = Literal["required", "additional", "optional"]


@dataclass(frozen=True)
class Check:
    """One requirement checked against one BOM (or one of its components)."""

    id: str
    title: str
    status: Status
    detail: str
    fix: str | None = None
    subject: str | None = None
    level: Level = "required"


@dataclass(frozen=True)
class CraPoint:
    """One point of the CRA, with what in the export supports it and what is left to do."""

    id: str
    title: str
    status: Literal["evidence", "partial", "gap"]
    evidence: str
    todo: str | None


@dataclass(frozen=True)
class CraFacts:
    """What the export knows: counts over its models, and what the manufacturer told it."""

    models: int
    with_bom: int
    schema_valid: int
    signed_verified: int
    bsi_passing: int
    with_vulnerability_contact: int  # BOMs with a manufacturer contact
    decision_logs: int
    decision_logs_intact: int
    product: str | None = None
    manufacturer: str | None = None
    contact: str | None = None
    support_until: str | None = None


# -- fixes, as mlbom flags where one exists -------------------------------------------------

FIX_MAKER = "generate with --manufacturer NAME --manufacturer-contact EMAIL_OR_URL"
FIX_CONTACT = "generate with --manufacturer-contact EMAIL_OR_URL"
FIX_VERSION = "generate with --version VERSION"
FIX_NAME = "generate with --name NAME"
FIX_SHA512 = "generate with --hash sha256 --hash sha512"
FIX_SPEC = "generate with --spec-version 1.6 (or 1.7)"
FIX_AGAIN = "generate the BOM again with mlbom generate"
FIX_LICENCE = (
    "state the licence in the model card's `license:` as an SPDX identifier or expression "
    "(LicenseRef-NAME for a licence SPDX does not list) and generate again"
)
FIX_DATASET = "generate with --dataset NAME@REVISION"
FIX_ENV = "generate with --env (or --requirements FILE) where the model was trained"
FIX_SOURCE = "generate from hf://ORG/REPO@COMMIT or oci://…, or with --source hf://ORG/REPO@COMMIT"

# BSI's CycloneDX property taxonomy: the allowed values of the three file properties
FILENAME = "bsi:component:filename"
FILE_PROPERTIES = {
    "executable": ("bsi:component:executable", ("executable", "non-executable")),
    "archive": ("bsi:component:archive", ("archive", "no archive")),
    "structured": ("bsi:component:structured", ("structured", "unstructured")),
}
# TR-03183-2 v2.1.0 spells it "effectiveLicense"; some tools write the British spelling
EFFECTIVE_LICENCE = ("bsi:component:effectiveLicense", "bsi:component:effectiveLicence")
SHA256_ONLY = "mlbom:sha256-only"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LICENSE_REF = re.compile(r"^(DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
# Datasets are training inputs: TR-03183-2 covers what is delivered (§5.1), G7 covers datasets
_DATA_NA = "training data, not delivered with the model (TR-03183-2 §5.1: scope of delivery)"


# -- BSI TR-03183-2 v2.1.0 --------------------------------------------------------------------


def bsi_checks(bom: dict[str, Any]) -> list[Check]:
    """Every TR-03183-2 field, SBOM-level first, then for the model (`metadata.component`) and
    every component in `components` (nested ones too). The training environment
    (`formulation`) and base models (`pedigree`) are not part of the delivered model, so they
    are not checked; datasets get n/a for what only applies to delivered components."""
    bom = bom if isinstance(bom, dict) else {}
    metadata = _dict(bom.get("metadata"))
    checks = [
        _format(bom),
        _no_vulnerabilities(bom),
        _sbom_creator(metadata),
        _timestamp(metadata),
        _sbom_uri(bom),
    ]
    graph = _Graph(bom)
    top = _dict(metadata.get("component"))
    components = ([top] if top else []) + list(_components(bom.get("components")))
    for component in components:
        checks += _component_checks(component, graph, top=component is top)
    return checks


def bsi_passes(checks: Iterable[Check]) -> bool:
    """Every required check passes; n/a is fine, and additional or optional fields do not
    count."""
    return all(c.status != "fail" for c in checks if c.level == "required")


def summarize(checks: Iterable[Check]) -> list[Check]:
    """One check per field over all components ("bsi.5.2.2.hash-sha512: 5 of 6 pass"), in the
    order the fields first appear; SBOM-level checks are kept as they are."""
    groups: dict[str, list[Check]] = defaultdict(list)
    for check in checks:
        groups[check.id.split(":", 1)[0]].append(check)
    summary = []
    for field, group in groups.items():
        if len(group) == 1 and group[0].subject is None:
            summary.append(group[0])
            continue
        failed = [c for c in group if c.status == "fail"]
        applicable = [c for c in group if c.status != "n/a"]
        status: Status = "fail" if failed else "pass" if applicable else "n/a"
        detail = f"{len(applicable) - len(failed)} of {len(applicable)} components pass"
        if len(group) > len(applicable):
            detail += f", {len(group) - len(applicable)} n/a"
        if failed:
            detail += "; failing: " + ", ".join(str(c.subject) for c in failed[:10])
            detail += ", …" if len(failed) > 10 else ""
        fixes = list(dict.fromkeys(c.fix for c in failed if c.fix))
        summary.append(
            Check(
                field,
                group[0].title,
                status,
                detail,
                "; ".join(fixes) or None,
                None,
                group[0].level,
            )
        )
    return summary


def _format(bom: dict[str, Any]) -> Check:
    # §4: CycloneDX 1.6 or later (or SPDX 3.0.1, which mlbom does not write)
    fmt, spec = bom.get("bomFormat"), str(bom.get("specVersion") or "")
    ok = fmt == "CycloneDX" and _version_tuple(spec) >= (1, 6)
    return Check(
        "bsi.4.format",
        "SBOM format: CycloneDX 1.6 or later",
        "pass" if ok else "fail",
        f"bomFormat {fmt or 'missing'}, specVersion {spec or 'missing'}",
        None if ok else FIX_SPEC,
    )


def _no_vulnerabilities(bom: dict[str, Any]) -> Check:
    # §3.1: vulnerability data changes while the software does not, so it stays out of the SBOM
    found = bom.get("vulnerabilities")
    if not found:
        return Check(
            "bsi.3.1.no-vulnerabilities",
            "No vulnerability data in the SBOM",
            "pass",
            "no vulnerabilities section",
        )
    return Check(
        "bsi.3.1.no-vulnerabilities",
        "No vulnerability data in the SBOM",
        "fail",
        f"{len(found) if isinstance(found, list) else 'a'} vulnerabilities in the SBOM",
        "move vulnerability data out of the SBOM (a separate VEX or CSAF document)",
    )


def _sbom_creator(metadata: dict[str, Any]) -> Check:
    title = "SBOM creator (e-mail or URL)"
    found = _reachable(metadata.get("manufacturer"), "metadata.manufacturer")
    # §8.2 maps the creator to metadata.manufacturer; the authors' e-mail meets §5.2.1 too
    found = found or _authors_email(metadata.get("authors"), "metadata.authors")
    if found:
        return Check("bsi.5.2.1.creator", title, "pass", found)
    maker = _dict(metadata.get("manufacturer"))
    if maker.get("name"):
        detail = f"metadata.manufacturer {maker['name']!r} has no e-mail or URL"
        return Check("bsi.5.2.1.creator", title, "fail", detail, FIX_CONTACT)
    return Check(
        "bsi.5.2.1.creator", title, "fail", "no metadata.manufacturer or author e-mail", FIX_MAKER
    )


def _timestamp(metadata: dict[str, Any]) -> Check:
    value = metadata.get("timestamp")
    if isinstance(value, str) and _parse_time(value):
        return Check(
            "bsi.5.2.1.timestamp", "SBOM timestamp", "pass", f"metadata.timestamp: {value}"
        )
    detail = (
        f"metadata.timestamp {value!r} is not a date and time" if value else "no metadata.timestamp"
    )
    return Check("bsi.5.2.1.timestamp", "SBOM timestamp", "fail", detail, FIX_AGAIN)


def _sbom_uri(bom: dict[str, Any]) -> Check:
    # CycloneDX identifies a BOM by serialNumber and version (BOM-Link urn:cdx:UUID/VERSION)
    serial, version = bom.get("serialNumber"), bom.get("version")
    if isinstance(serial, str) and serial.startswith("urn:uuid:"):
        uri = f"urn:cdx:{serial.removeprefix('urn:uuid:')}/{version if version is not None else 1}"
        return Check(
            "bsi.5.2.3.sbom-uri",
            "SBOM-URI",
            "pass",
            f"serialNumber: {serial} ({uri})",
            level="additional",
        )
    return Check(
        "bsi.5.2.3.sbom-uri", "SBOM-URI", "fail", "no serialNumber", FIX_AGAIN, level="additional"
    )


class _Graph:
    """The dependency graph and what `compositions` say about its completeness."""

    def __init__(self, bom: dict[str, Any]) -> None:
        self.depends: dict[str, list[str]] = {}
        for entry in _list(bom.get("dependencies")):
            if isinstance(entry, dict) and isinstance(entry.get("ref"), str):
                self.depends[entry["ref"]] = [
                    r for r in _list(entry.get("dependsOn")) if isinstance(r, str)
                ]
        self.aggregate: dict[str, str] = {}
        for composition in _list(bom.get("compositions")):
            if not isinstance(composition, dict):
                continue
            aggregate = str(composition.get("aggregate") or "not_specified")
            for key in ("dependencies", "assemblies"):
                for ref in _list(composition.get(key)):
                    if isinstance(ref, str):
                        self.aggregate.setdefault(ref, aggregate)
        top = _dict(_dict(bom.get("metadata")).get("component"))
        every = ([top] if top else []) + list(_components(bom.get("components")))
        every += [s for s in _list(bom.get("services")) if isinstance(s, dict)]
        self.refs = {c.get("bom-ref") for c in every if isinstance(c.get("bom-ref"), str)}
        self.files = {
            c["bom-ref"]
            for c in every
            if c.get("type") == "file" and isinstance(c.get("bom-ref"), str)
        }
        formulation = _list(bom.get("formulation"))
        self.code_urls = [
            url
            for formula in formulation
            if isinstance(formula, dict)
            for c in _components(formula.get("components"))
            for url in _urls(c, ("vcs", "source-distribution"))
        ]


def _component_checks(component: dict[str, Any], graph: _Graph, *, top: bool) -> list[Check]:
    ref = str(component.get("bom-ref") or component.get("name") or "?")
    kind = _kind(component, graph)
    fields: list[tuple[str, Callable[..., Outcome]]] = [
        ("creator", _creator),
        ("name", _name),
        ("version", _version),
        ("filename", _filename),
        ("dependencies", _dependencies),
        ("distribution-licences", _distribution_licences),
        ("hash-sha512", _sha512),
        ("executable", _file_property),
        ("archive", _file_property),
        ("structured", _file_property),
    ]
    checks = [
        _field(f, "5.2.2", "required", fn, component, graph, kind, ref, top) for f, fn in fields
    ]
    additional: list[tuple[str, Callable[..., Outcome]]] = [
        ("source-code-uri", _source_uri),
        ("deployable-uri", _deployable_uri),
        ("unique-identifiers", _identifiers),
        ("original-licences", _original_licences),
    ]
    checks += [
        _field(f, "5.2.4", "additional", fn, component, graph, kind, ref, top)
        for f, fn in additional
    ]
    optional = [
        ("effective-licence", _effective_licence),
        ("source-hash", _source_hash),
        ("security-txt", _security_txt),
    ]
    checks += [
        _field(f, "5.2.5", "optional", fn, component, graph, kind, ref, top) for f, fn in optional
    ]
    return checks


_TITLES = {
    "creator": "Component creator (e-mail or URL)",
    "name": "Component name",
    "version": "Component version",
    "filename": "Filename of the component",
    "dependencies": "Dependencies and their completeness",
    "distribution-licences": "Distribution licences (SPDX)",
    "hash-sha512": "SHA-512 of the deployable component",
    "executable": "Executable property",
    "archive": "Archive property",
    "structured": "Structured property",
    "source-code-uri": "Source code URI",
    "deployable-uri": "URI of the deployable form",
    "unique-identifiers": "Other unique identifiers (CPE, purl, SWID)",
    "original-licences": "Original licences (SPDX)",
    "effective-licence": "Effective licence",
    "source-hash": "Hash of the source code",
    "security-txt": "URL of the security.txt",
}

# What a dataset still answers in the BSI part; everything else is n/a for it
_DATA_FIELDS = frozenset({"name", "version"})
Outcome = tuple[Status, str, str | None]


def _field(
    field: str,
    section: str,
    level: Level,
    fn: Callable[..., Outcome],
    component: dict[str, Any],
    graph: _Graph,
    kind: str,
    ref: str,
    top: bool,
) -> Check:
    status: Status
    if kind == "data" and field not in _DATA_FIELDS:
        status, detail, fix = "n/a", _DATA_NA, None
    else:
        status, detail, fix = fn(component, graph=graph, kind=kind, field=field, top=top)
    if kind == "data" and field == "version" and status == "fail":
        status, detail, fix = "n/a", f"no version; {_DATA_NA}", None
    if status != "fail":
        fix = None
    return Check(f"bsi.{section}.{field}:{ref}", _TITLES[field], status, detail, fix, ref, level)


def _kind(component: dict[str, Any], graph: _Graph) -> str:
    """data: a dataset. logical: made of other listed components (the model: its files),
    with no file of its own. Anything else is delivered as it is."""
    if component.get("type") == "data":
        return "data"
    own_file = component.get("hashes") or _properties(component).get(FILENAME)
    if not own_file and graph.depends.get(str(component.get("bom-ref"))):
        return "logical"
    return "file" if component.get("type") == "file" else "other"


def _creator(component: dict[str, Any], **_: Any) -> Outcome:
    # §8.2 maps the component creator to its manufacturer; authors' e-mail meets §5.2.2 too
    found = _reachable(component.get("manufacturer"), "manufacturer") or _authors_email(
        component.get("authors"), "authors"
    )
    if found:
        return "pass", found, None
    maker = _dict(component.get("manufacturer"))
    if maker.get("name"):
        return "fail", f"manufacturer {maker['name']!r} has no e-mail or URL", FIX_CONTACT
    supplier = _dict(component.get("supplier")).get("name")
    detail = "no manufacturer" + (
        f" (supplier {supplier!r} is who supplies it, not its creator)" if supplier else ""
    )
    return "fail", detail, FIX_MAKER


def _name(component: dict[str, Any], **_: Any) -> Outcome:
    name = component.get("name")
    if isinstance(name, str) and name.strip():
        return "pass", f"name: {name}", None
    return "fail", "no name", FIX_NAME


def _version(component: dict[str, Any], **_: Any) -> Outcome:
    version = component.get("version")
    if isinstance(version, str) and version.strip():
        return "pass", f"version: {version}", None
    return "fail", "no version", FIX_VERSION


def _filename(component: dict[str, Any], kind: str, **_: Any) -> Outcome:
    values = _properties(component).get(FILENAME, [])
    if not values and kind == "logical":
        return (
            "n/a",
            "a logical component: the model is its files, each with its own filename",
            None,
        )
    if not values:
        return "fail", f"no {FILENAME} property", FIX_AGAIN
    if len(values) > 1:
        return "fail", f"{FILENAME} occurs {len(values)} times (at most once)", FIX_AGAIN
    value = values[0]
    if not value.strip() or "/" in value or "\\" in value:
        return "fail", f"{FILENAME} {value!r} is not a bare filename (no path)", FIX_AGAIN
    return "pass", f"{FILENAME}: {value}", None


def _dependencies(component: dict[str, Any], graph: _Graph, top: bool, **_: Any) -> Outcome:
    ref = component.get("bom-ref")
    if not isinstance(ref, str) or ref not in graph.depends:
        # CycloneDX: a component missing from the graph has unknown dependencies
        return "fail", "not in the dependencies graph: its dependencies are unknown", FIX_AGAIN
    depends = graph.depends[ref]
    dangling = [r for r in depends if r not in graph.refs]
    if dangling:
        return "fail", f"depends on refs not in the BOM: {', '.join(dangling[:5])}", FIX_AGAIN
    aggregate = graph.aggregate.get(ref)
    listed = f"depends on {len(depends)} components" if depends else "declares no dependencies"
    if aggregate == "complete":
        missing = sorted(graph.files - set(depends) - {ref}) if top else []
        if missing:
            return (
                "fail",
                f"compositions say complete, but {len(missing)} files are not among "
                f"its dependencies ({', '.join(missing[:3])})",
                FIX_AGAIN,
            )
        return "pass", f"{listed}; compositions: complete", None
    if aggregate and aggregate.startswith("incomplete"):
        return "pass", f"{listed}; compositions: {aggregate} (stated)", None
    if not depends and aggregate is None:
        # CycloneDX 1.6: a component without dependencies is declared as an empty entry
        return "pass", "declares no dependencies (an empty entry in the graph)", None
    said = f"compositions: {aggregate}" if aggregate else "no compositions entry"
    return (
        "fail",
        f"{listed}, but their completeness is not stated ({said})",
        "state it in compositions (aggregate complete or incomplete): " + FIX_AGAIN,
    )


def _distribution_licences(component: dict[str, Any], **_: Any) -> Outcome:
    # §8.2 maps distribution licences to acknowledgement "concluded"; without one, the licence
    # the BOM states is the one it is distributed under
    entries = _licence_entries(component)
    if not entries:
        return "fail", "no licences", FIX_LICENCE
    chosen = [e for e in entries if e[1] in (None, "concluded")]
    if not chosen:
        return "fail", "only declared (original) licences, no distribution licence", FIX_LICENCE
    return _licence_outcome(chosen)


def _original_licences(component: dict[str, Any], **_: Any) -> Outcome:
    entries = _licence_entries(component)
    chosen = [e for e in entries if e[1] in (None, "declared")]
    if not entries:
        return "fail", "no licences", FIX_LICENCE
    if not chosen:
        return "fail", "only the concluded (distribution) licence is stated", FIX_LICENCE
    return _licence_outcome(chosen)


def _effective_licence(component: dict[str, Any], **_: Any) -> Outcome:
    props = _properties(component)
    values = [v for name in EFFECTIVE_LICENCE for v in props.get(name, [])]
    if not values:
        fix = f"add the {EFFECTIVE_LICENCE[0]} property (mlbom does not write it)"
        return "fail", f"no {EFFECTIVE_LICENCE[0]} property", fix
    problem = _spdx_problem(values[0])
    if problem:
        return "fail", f"{EFFECTIVE_LICENCE[0]} {values[0]!r}: {problem}", FIX_LICENCE
    return "pass", f"{EFFECTIVE_LICENCE[0]}: {values[0]}", None


def _sha512(component: dict[str, Any], kind: str, **_: Any) -> Outcome:
    # §5.2.2 asks for SHA-512 of the deployable form; §8.2 shows it on a distribution
    # reference, but the component's own hashes are the file's digest and mean the same here
    if kind == "logical":
        return "n/a", "a logical component: each of its files carries its own SHA-512", None
    hashes = [h for h in _list(component.get("hashes")) if isinstance(h, dict)]
    for reference in _list(component.get("externalReferences")):
        if isinstance(reference, dict) and reference.get("type") in (
            "distribution",
            "distribution-intake",
        ):
            hashes += [h for h in _list(reference.get("hashes")) if isinstance(h, dict)]
    algorithms = sorted({str(h.get("alg")) for h in hashes})
    for h in hashes:
        if h.get("alg") == "SHA-512":
            content = str(h.get("content") or "")
            if len(content) == 128 and _HEX.match(content):
                return "pass", f"SHA-512: {content[:16]}…", None
            return "fail", "the SHA-512 is not 128 hex digits", FIX_SHA512
    found = f"hashes: {', '.join(algorithms)} only" if algorithms else "no hashes"
    if origin := _properties(component).get(SHA256_ONLY):
        found += f" ({SHA256_ONLY} = {origin[0]})"
    return "fail", found, FIX_SHA512


def _file_property(component: dict[str, Any], kind: str, field: str, **_: Any) -> Outcome:
    name, allowed = FILE_PROPERTIES[field]
    values = _properties(component).get(name, [])
    if not values and kind == "logical":
        return "n/a", f"a logical component: each of its files carries {name}", None
    if not values:
        return "fail", f"no {name} property", FIX_AGAIN
    if len(values) > 1:
        return "fail", f"{name} occurs {len(values)} times (exactly once)", FIX_AGAIN
    if values[0] not in allowed:
        return "fail", f"{name} {values[0]!r} is not one of {' / '.join(allowed)}", FIX_AGAIN
    return "pass", f"{name}: {values[0]}", None


def _source_uri(
    component: dict[str, Any], graph: _Graph, kind: str, top: bool, **_: Any
) -> Outcome:
    if component.get("type") == "file":
        return "n/a", "a model file is not built from source code of its own", None
    urls = _urls(component, ("vcs", "source-distribution"))
    if urls:
        return "pass", f"source: {urls[0]}", None
    if top and graph.code_urls:
        # a model's source is the code that trained it, which mlbom puts under formulation
        return "pass", f"training code (formulation): {graph.code_urls[0]}", None
    return (
        "fail",
        "no vcs or source-distribution reference (required where the source exists)",
        "generate with --env in the training code's git checkout, or add a vcs reference",
    )


def _deployable_uri(component: dict[str, Any], **_: Any) -> Outcome:
    urls = _urls(component, ("distribution", "distribution-intake"))
    if urls:
        return "pass", f"distribution: {urls[0]}", None
    return (
        "fail",
        "no distribution reference (required where it can be downloaded)",
        "add an externalReferences entry of type distribution with its download URL",
    )


def _identifiers(component: dict[str, Any], **_: Any) -> Outcome:
    for key in ("purl", "cpe"):
        if isinstance(component.get(key), str) and component[key]:
            return "pass", f"{key}: {component[key]}", None
    swid = _dict(component.get("swid")).get("tagId")
    if swid:
        return "pass", f"swid: {swid}", None
    for key in ("omniborId", "swhid"):  # CycloneDX 1.6 identifiers
        if values := [v for v in _list(component.get(key)) if isinstance(v, str)]:
            return "pass", f"{key}: {values[0]}", None
    if component.get("type") == "file":
        return (
            "n/a",
            "a file of the model: the model's identifier and the file's hashes name it",
            None,
        )
    return "fail", "no purl, CPE or SWID (required where one exists)", FIX_SOURCE


def _source_hash(component: dict[str, Any], **_: Any) -> Outcome:
    if component.get("type") == "file":
        return "n/a", "a model file is not built from source code of its own", None
    for reference in _list(component.get("externalReferences")):
        if isinstance(reference, dict) and reference.get("type") in ("source-distribution", "vcs"):
            for h in _list(reference.get("hashes")):
                if isinstance(h, dict) and h.get("content"):
                    return "pass", f"source {h.get('alg')}: {str(h['content'])[:16]}…", None
    return "fail", "no hash on a source reference", "add the source archive's hash to its reference"


def _security_txt(component: dict[str, Any], **_: Any) -> Outcome:
    urls = _urls(component, ("rfc-9116",))
    if urls:
        return "pass", f"security.txt: {urls[0]}", None
    return (
        "fail",
        "no rfc-9116 reference",
        "add an externalReferences entry of type rfc-9116 with the creator's security.txt URL",
    )


# -- licences (§6.1) --------------------------------------------------------------------------


def _licence_entries(component: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """(value, acknowledgement, where) for each licence choice of a component."""
    found = []
    for choice in _list(component.get("licenses")):
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("expression"), str):
            found.append((choice["expression"], choice.get("acknowledgement"), "expression"))
        lic = _dict(choice.get("license"))
        if lic.get("id"):
            found.append((str(lic["id"]), lic.get("acknowledgement"), "license.id"))
        elif lic.get("name"):
            found.append((str(lic["name"]), lic.get("acknowledgement"), "license.name"))
    return found


def _licence_outcome(entries: list[tuple[str, str | None, str]]) -> Outcome:
    problems = [
        f"{where} {value!r}: {problem}"
        for value, _, where in entries
        if (problem := _spdx_problem(value))
    ]
    if problems:
        return "fail", "; ".join(problems[:3]), FIX_LICENCE
    stated = ", ".join(
        f"{where}: {value}" + (f" ({ack})" if ack else "") for value, ack, where in entries
    )
    return "pass", stated, None


def _spdx_problem(expression: str) -> str | None:
    """Why this is no SPDX identifier or expression (LicenseRef- allowed), or None."""
    from license_expression import ExpressionError

    licensing = _licensing()
    try:
        parsed = licensing.parse(expression, validate=False, strict=True)
    except ExpressionError as e:
        return f"not an SPDX expression ({e})"
    if parsed is None:
        return "empty"
    unknown = [k for k in licensing.unknown_license_keys(parsed) if not _LICENSE_REF.match(k)]
    if unknown:
        return f"{', '.join(unknown)} is not an SPDX licence identifier"
    return None


@cache
def _licensing() -> Any:
    # imported on first use: the SPDX index takes a moment to load
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


# -- G7 SBOM for AI: minimum elements ---------------------------------------------------------


def g7_checks(bom: dict[str, Any], *, signed: bool | None = None) -> list[Check]:
    """What the BOM shows for each G7 cluster. `signed`: whether the BOM's signature was
    verified (it lives beside the BOM, not in it); None when it was not looked at."""
    bom = bom if isinstance(bom, dict) else {}
    metadata = _dict(bom.get("metadata"))
    model = _dict(metadata.get("component"))
    card = _dict(model.get("modelCard"))
    components = list(_components(bom.get("components")))
    formulas = [f for f in _list(bom.get("formulation")) if isinstance(f, dict)]
    environment = [c for f in formulas for c in _components(f.get("components"))]
    return [
        *_g7_metadata(bom, metadata, signed),
        *_g7_system(model, card, components),
        *_g7_models(model, card, components, formulas),
        *_g7_datasets(card, components, formulas),
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
    top_ref = _dict(metadata.get("component")).get("bom-ref")
    graph = {d.get("ref"): d for d in _list(bom.get("dependencies")) if isinstance(d, dict)}
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
            isinstance(timestamp, str) and _parse_time(timestamp) is not None,
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
            _clip("; ".join(uses + users)) or "no intended uses or users in the model card",
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
    props = _properties(model)
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
    hashed = [c for c in files if _hash_algorithms(c)]
    algorithms = sorted({a for c in files for a in _hash_algorithms(c)})
    ancestors = [
        str(a.get("name"))
        for a in _list(_dict(model.get("pedigree")).get("ancestors"))
        if isinstance(a, dict)
    ]
    training = [f"base model {', '.join(ancestors)}"] if ancestors else []
    if parameters.get("datasets"):
        training.append(f"datasets: {len(_list(parameters['datasets']))}")
    if any(f.get("workflows") or f.get("components") for f in formulas):
        training.append("training environment (formulation)")
    limitations = [
        str(x) for x in _list(_dict(card.get("considerations")).get("technicalLimitations"))
    ]
    licences = [value for value, _, _ in _licence_entries(model)]
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
            _clip(str(model.get("description") or "")) or "no description",
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
            _clip("; ".join(limitations)) or "no limitations in the model card",
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
            _clip("; ".join(references)) or "no external references",
            FIX_SOURCE,
        ),
    ]


def _g7_datasets(
    card: dict[str, Any],
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
    linked = {
        str(_dict(d).get("ref")) for d in _list(_dict(card.get("modelParameters")).get("datasets"))
    }
    for formula in formulas:
        for workflow in _list(formula.get("workflows")):
            for item in _list(_dict(workflow).get("inputs")):
                linked.add(str(_dict(_dict(item).get("resource")).get("ref")))
    rows: dict[str, list[tuple[str, bool, str]]] = defaultdict(list)
    for d in datasets:
        name, version, ref = d.get("name") or "?", d.get("version"), str(d.get("bom-ref"))
        data = [x for x in _list(d.get("data")) if isinstance(x, dict)]
        origin = [str(u) for x in data if (u := _dict(x.get("contents")).get("url"))]
        origin += _urls(d, ("website", "distribution", "vcs", "source-distribution"))
        origin += ["governance stated" for x in data if x.get("governance")]
        licences = [v for v, _, _ in _licence_entries(d)]
        pinned = bool(version and len(str(version)) in (40, 64) and _HEX.match(str(version)))
        digests = _hash_algorithms(d)
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
                + (_clip("; ".join(content)) if content else "no classification or sensitivity"),
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
                f"g7.datasets.{key}", title, ok, _clip("; ".join(e[2] for e in entries)), fixes[key]
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
            _clip("; ".join(shown)) or "no modelCard.quantitativeAnalysis.performanceMetrics",
            "give evaluation results in the model card's model-index and generate again",
        ),
        _check(
            "g7.kpi.security",
            "Security metrics",
            bool(security),
            _clip("; ".join(security)) or "no security metric (robustness, attack success)",
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
    props = _properties(model)
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
    strong = [c for c in files if set(_hash_algorithms(c)) - {"MD5", "SHA-1"}]
    controls = [f"{len(strong)} of {len(files)} files with SHA-256 or stronger"]
    if signed is not None:
        controls.append("BOM signature verified" if signed else "BOM signature not verified")
    props = _properties(model)
    if props.get("mlbom:cc:required"):
        controls.append("confidential computing required")
    unsafe = props.get("mlbom:unsafe-import", [])
    custom = props.get("mlbom:custom-code", [])
    contact = _reachable(metadata.get("manufacturer"), "manufacturer") or _reachable(
        model.get("manufacturer"), "model manufacturer"
    )
    advisories = _urls(model, ("rfc-9116", "security-contact", "advisories"))
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


# -- the CRA: Regulation (EU) 2024/2847 -------------------------------------------------------


def cra_points(facts: CraFacts) -> list[CraPoint]:
    """Annex I Part II points 1-8, then Annex VII points 1-8 (1c, photographs of a hardware
    product, does not apply to models and is left out), each as evidence, partial or gap."""
    return [*_annex_i(facts), *_annex_vii(facts)]


def _of(n: int, total: int) -> str:
    return f"{n} of {total}"


def _point(
    id_: str, title: str, evidence: str, todos: list[str], *, complete: bool, anything: bool
) -> CraPoint:
    status: Literal["evidence", "partial", "gap"] = (
        "evidence" if complete and not todos else "partial" if anything else "gap"
    )
    return CraPoint(id_, title, status, evidence, "; ".join(todos) or None)


def _bom_todos(f: CraFacts) -> list[str]:
    todos = []
    if f.models == 0:
        todos.append("export from the stores that hold the product's models (none found)")
    if f.models > f.with_bom:
        todos.append(
            f"generate, sign and push ML-BOMs for the {f.models - f.with_bom} models "
            "without one (mlbom generate)"
        )
    if f.with_bom > f.schema_valid:
        todos.append(
            f"generate again the {f.with_bom - f.schema_valid} BOMs that fail the CycloneDX schema"
        )
    if f.with_bom > f.bsi_passing:
        todos.append(
            f"fix the {f.with_bom - f.bsi_passing} BOMs failing required BSI "
            "TR-03183-2 fields (see each model's BSI checks)"
        )
    return todos


def _flags(f: CraFacts, *which: str) -> list[str]:
    """The export flags for what the manufacturer did not tell it."""
    missing = {
        "product": (f.product, "name the product: mlbom audit export --product NAME"),
        "manufacturer": (
            f.manufacturer,
            "name the manufacturer: mlbom audit export --manufacturer NAME",
        ),
        "contact": (
            f.contact,
            "give the vulnerability contact: mlbom audit export --contact EMAIL_OR_URL",
        ),
        "support": (
            f.support_until,
            "give the end of the support period: mlbom audit export --support-until YYYY-MM-DD",
        ),
    }
    return [missing[key][1] for key in which if not missing[key][0]]


def _annex_i(f: CraFacts) -> list[CraPoint]:
    boms = (
        f"ML-BOMs for {_of(f.with_bom, f.models)} models ({f.schema_valid} schema-valid, "
        f"{f.bsi_passing} passing BSI TR-03183-2 required fields)"
    )
    bom_todos = _bom_todos(f)
    complete_boms = f.models > 0 and not bom_todos
    signed = f"{_of(f.signed_verified, f.models)} models' BOMs signed and verified"
    logs = f"{_of(f.decision_logs_intact, f.decision_logs)} admission decision logs intact"
    # the webhook's decision logs show that verification happens before a model runs
    webhook = "; the admission webhook verified models before they ran" if f.decision_logs else ""
    contact_todos = _flags(f, "contact")
    if f.with_bom > f.with_vulnerability_contact:
        contact_todos.append(
            f"generate the {f.with_bom - f.with_vulnerability_contact} BOMs "
            "without a manufacturer contact again with --manufacturer-contact "
            "EMAIL_OR_URL"
        )
    contacts = ", ".join(
        filter(
            None,
            [
                f"product contact {f.contact}" if f.contact else "",
                f"{_of(f.with_vulnerability_contact, f.with_bom)} BOMs name a manufacturer contact",
            ],
        )
    )
    update_todos = []
    if f.models > f.signed_verified:
        update_todos.append(
            f"sign the {f.models - f.signed_verified} unsigned or unverified BOMs "
            "(mlbom sign) so that the admission webhook can verify them"
        )
    if f.decision_logs == 0:
        update_todos.append(
            "run the admission webhook with its decision log, which shows that "
            "only verified models are deployed"
        )
    elif f.decision_logs > f.decision_logs_intact:
        update_todos.append(
            f"investigate the {f.decision_logs - f.decision_logs_intact} decision "
            "logs whose hash chain is broken"
        )
    nothing = "nothing in this export"
    return [
        _point(
            "cra.annex-i.part-ii.1",
            "Identify and document components and vulnerabilities, "
            "with an SBOM in a machine-readable format",
            boms + "; vulnerabilities in the listed components are tracked outside the SBOM",
            bom_todos,
            complete=complete_boms,
            anything=f.with_bom > 0,
        ),
        _point(
            "cra.annex-i.part-ii.2",
            "Remediate vulnerabilities without delay, with security "
            "updates apart from feature updates",
            nothing,
            [
                "document how vulnerabilities in the models are remediated (new model versions, "
                "security updates released apart from feature updates)"
            ],
            complete=False,
            anything=False,
        ),
        _point(
            "cra.annex-i.part-ii.3",
            "Effective and regular security tests and reviews",
            f"{signed}; {logs}",
            [
                "document the regular security testing of the product (penetration tests, "
                "robustness evaluations of the models) and its results"
            ],
            complete=False,
            anything=f.signed_verified > 0 or f.decision_logs_intact > 0,
        ),
        _point(
            "cra.annex-i.part-ii.4",
            "Disclose fixed vulnerabilities once an update is out",
            nothing,
            [
                "publish advisories for fixed vulnerabilities (description, affected "
                "product versions, impact, severity, remediation)"
            ],
            complete=False,
            anything=False,
        ),
        _point(
            "cra.annex-i.part-ii.5",
            "A coordinated vulnerability disclosure policy",
            f"contact {f.contact}, but no disclosure policy in this export"
            if f.contact
            else nothing,
            [
                "write, publish and enforce a coordinated vulnerability disclosure policy",
                *_flags(f, "contact"),
            ],
            complete=False,
            anything=False,
        ),
        _point(
            "cra.annex-i.part-ii.6",
            "Facilitate vulnerability reports, with a contact address",
            contacts,
            contact_todos,
            complete=f.with_bom > 0 and not contact_todos,
            # the models' makers are not the product's point of contact: without it, a gap
            anything=bool(f.contact),
        ),
        _point(
            "cra.annex-i.part-ii.7",
            "Distribute updates securely (automatically where applicable)",
            f"{signed}{webhook}; {logs}",
            update_todos,
            complete=f.models > 0 and f.signed_verified == f.models,
            anything=f.signed_verified > 0,
        ),
        _point(
            "cra.annex-i.part-ii.8",
            "Security updates without delay, free of charge, with advisory messages",
            nothing,
            [
                "state in the user information that security updates are free of charge and how "
                "their advisories reach users",
                *_flags(f, "support"),
            ],
            complete=False,
            anything=False,
        ),
    ]


def _annex_vii(f: CraFacts) -> list[CraPoint]:
    bom_todos = _bom_todos(f)
    product = f"product {f.product}" if f.product else "no product named"
    user_info = [
        x
        for x in (
            f"product {f.product}" if f.product else "",
            f"manufacturer {f.manufacturer}" if f.manufacturer else "",
            f"contact {f.contact}" if f.contact else "",
            f"supported until {f.support_until}" if f.support_until else "",
        )
        if x
    ]
    process = [f"ML-BOMs for {_of(f.with_bom, f.models)} models"]
    process.append(f"contact {f.contact}" if f.contact else "no product contact")
    process.append(f"{_of(f.signed_verified, f.models)} BOMs signed and verified")
    process_todos = [
        "add the coordinated vulnerability disclosure policy",
        *_flags(f, "contact"),
        *bom_todos,
    ]
    if f.models > f.signed_verified:
        process_todos.append(
            "sign the unsigned BOMs (mlbom sign), which is how updated models "
            "are verified before they run"
        )
    monitoring = [f"{_of(f.decision_logs_intact, f.decision_logs)} admission decision logs intact"]
    monitoring_todos = [
        "describe the production (training and release) process and how it is validated"
    ]
    if f.decision_logs == 0:
        monitoring_todos.append(
            "run the admission webhook with its decision log (monitoring of what runs)"
        )
    elif f.decision_logs > f.decision_logs_intact:
        monitoring_todos.append(
            f"investigate the {f.decision_logs - f.decision_logs_intact} "
            "decision logs whose hash chain is broken"
        )
    return [
        _point(
            "cra.annex-vii.1a",
            "General description: intended purpose",
            f"{product}; each model's intended uses are in its ML-BOM's model card",
            [*_flags(f, "product"), "state the product's intended purpose"],
            complete=False,
            anything=bool(f.product),
        ),
        _point(
            "cra.annex-vii.1b",
            "General description: software versions relevant to compliance",
            f"the version of each model is in its ML-BOM ({_of(f.with_bom, f.models)})",
            bom_todos,
            complete=f.models > 0 and not bom_todos,
            anything=f.with_bom > 0,
        ),
        _point(
            "cra.annex-vii.1d",
            "General description: user information and instructions (Annex II)",
            "; ".join(user_info) or "nothing in this export",
            [
                *_flags(f, "manufacturer", "contact", "product", "support"),
                "write the rest of the Annex II user information (secure use, updates, "
                "decommissioning)",
            ],
            complete=False,
            anything=bool(user_info),
        ),
        _point(
            "cra.annex-vii.2a",
            "Design and development: system architecture",
            f"ML-BOMs for {_of(f.with_bom, f.models)} models: their files, base models, "
            "datasets and training environments",
            [
                "describe the system architecture: how the models are integrated into the "
                "product and its processing"
            ],
            complete=False,
            anything=f.with_bom > 0,
        ),
        _point(
            "cra.annex-vii.2b",
            "Vulnerability handling: SBOM, disclosure policy, contact "
            "address, secure update distribution",
            "; ".join(process),
            process_todos,
            complete=False,
            anything=f.with_bom > 0 or bool(f.contact),
        ),
        _point(
            "cra.annex-vii.2c",
            "Production and monitoring processes and their validation",
            "; ".join(monitoring),
            monitoring_todos,
            complete=False,
            anything=f.decision_logs_intact > 0,
        ),
        _point(
            "cra.annex-vii.3",
            "Cybersecurity risk assessment (Article 13)",
            "the BOMs' G7 checks and pickle scans can feed it",
            [
                "carry out and document the cybersecurity risk assessment, including how the "
                "Annex I Part I requirements apply"
            ],
            complete=False,
            anything=False,
        ),
        _point(
            "cra.annex-vii.4",
            "Information used to set the support period",
            f"supported until {f.support_until}" if f.support_until else "no support period",
            [*_flags(f, "support"), "record what the support period was based on (Article 13(8))"],
            complete=False,
            anything=bool(f.support_until),
        ),
        _point(
            "cra.annex-vii.5",
            "Harmonised standards and specifications applied",
            f"BOMs checked against BSI TR-03183-2 v2.1.0 ({_of(f.bsi_passing, f.with_bom)} "
            "pass) and the G7 minimum elements for AI SBOMs",
            [
                "list the harmonised standards, common specifications or certification schemes "
                "applied, or describe the solutions adopted instead"
            ],
            complete=False,
            anything=f.with_bom > 0,
        ),
        _point(
            "cra.annex-vii.6",
            "Test reports on conformity with Annex I",
            f"this export's checks: schema ({_of(f.schema_valid, f.with_bom)}), BSI "
            f"({_of(f.bsi_passing, f.with_bom)}), signatures ({_of(f.signed_verified, f.models)})",
            ["add the reports of the product's security tests (Annex I Part I)"],
            complete=False,
            anything=f.with_bom > 0,
        ),
        _point(
            "cra.annex-vii.7",
            "Copy of the EU declaration of conformity",
            f"manufacturer {f.manufacturer}" if f.manufacturer else "nothing in this export",
            [
                "add a copy of the EU declaration of conformity (Annex V)",
                *_flags(f, "manufacturer", "product"),
            ],
            complete=False,
            anything=False,
        ),
        _point(
            "cra.annex-vii.8",
            "The SBOM, on a market surveillance authority's reasoned request",
            f"ML-BOMs for {_of(f.with_bom, f.models)} models, {f.schema_valid} schema-valid",
            [t for t in bom_todos if "BSI" not in t],
            complete=f.models > 0 and f.with_bom == f.models and f.schema_valid == f.with_bom,
            anything=f.with_bom > 0,
        ),
    ]


# -- helpers ----------------------------------------------------------------------------------


def _components(value: Any) -> Iterable[dict[str, Any]]:
    """Components, depth first: nested `components` are part of their parent's delivery."""
    for component in _list(value):
        if isinstance(component, dict):
            yield component
            yield from _components(component.get("components"))


def _properties(component: Mapping[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for p in _list(component.get("properties")):
        if isinstance(p, dict) and isinstance(p.get("name"), str):
            found[p["name"]].append(str(p.get("value") or ""))
    return found


def _urls(component: Mapping[str, Any], types: tuple[str, ...]) -> list[str]:
    return [
        str(r["url"])
        for r in _list(component.get("externalReferences"))
        if isinstance(r, dict) and r.get("type") in types and r.get("url")
    ]


def _hash_algorithms(component: Mapping[str, Any]) -> list[str]:
    return [
        str(h.get("alg"))
        for h in _list(component.get("hashes"))
        if isinstance(h, dict) and h.get("content")
    ]


def _reachable(entity: Any, where: str) -> str | None:
    """An organisation's e-mail (preferred, as TR-03183-2 asks) or URL, described."""
    entity = _dict(entity)
    for contact in _list(entity.get("contact")):
        email = _dict(contact).get("email")
        if isinstance(email, str) and _EMAIL.match(email):
            return f"{where}.contact: {email}"
    for url in _list(entity.get("url")):
        if isinstance(url, str) and _is_url(url):
            return f"{where}.url: {url}"
    return None


def _authors_email(authors: Any, where: str) -> str | None:
    for author in _list(authors):
        email = _dict(author).get("email")
        if isinstance(email, str) and _EMAIL.match(email):
            return f"{where}: {email} (TR-03183-2 §8.2 maps the creator to manufacturer)"
    return None


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


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _version_tuple(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in value.split("."))
    except ValueError:
        return ()


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
