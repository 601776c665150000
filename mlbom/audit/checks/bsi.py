"""BSI TR-03183-2 "Cyber Resilience Requirements for Manufacturers and Products, Part 2:
Software Bill of Materials", version 2.1.0 (2025-08-20), field by field over one ML-BOM.

Sources, paraphrased (no long quotes): §3.1 (no vulnerability data in an SBOM), §4 (CycloneDX
1.6 or later), §5.1 (recursion over the scope of delivery), §5.2.1 (required SBOM fields),
§5.2.2 (required fields per component), §5.2.3 and §5.2.4 (additional fields: required where
they exist), §5.2.5 (optional fields), §6.1 (licences as SPDX identifiers or expressions,
LicenseRef- otherwise) and §8.2 (the CycloneDX mapping, which the TR itself calls explanatory,
not normative); BSI's CycloneDX property taxonomy for `bsi:component:*` (values and "exactly
once").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from mlbom.audit.checks.common import (
    FIX_AGAIN,
    FIX_CONTACT,
    FIX_LICENCE,
    FIX_MAKER,
    FIX_NAME,
    FIX_SHA512,
    FIX_SOURCE,
    FIX_SPEC,
    FIX_VERSION,
    HEX,
    Check,
    Level,
    Status,
    authors_email,
    parse_time,
    property_texts,
    reachable,
    reference_urls,
)
from mlbom.bom import read
from mlbom.untrusted import as_dict as _dict
from mlbom.untrusted import as_list as _list

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

_LICENSE_REF = re.compile(r"^(DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+$")
# Datasets are training inputs: TR-03183-2 covers what is delivered (§5.1), G7 covers datasets
_DATA_NA = "training data, not delivered with the model (TR-03183-2 §5.1: scope of delivery)"


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
    top = read.model(bom)
    components = ([top] if top else []) + list(read.walk_components(bom.get("components")))
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
    found = reachable(metadata.get("manufacturer"), "metadata.manufacturer")
    # §8.2 maps the creator to metadata.manufacturer; the authors' e-mail meets §5.2.1 too
    found = found or authors_email(metadata.get("authors"), "metadata.authors")
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
    if isinstance(value, str) and parse_time(value):
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
        top = read.model(bom)
        every = ([top] if top else []) + list(read.walk_components(bom.get("components")))
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
            for c in read.walk_components(formula.get("components"))
            for url in reference_urls(c, ("vcs", "source-distribution"))
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
    own_file = component.get("hashes") or property_texts(component).get(FILENAME)
    if not own_file and graph.depends.get(str(component.get("bom-ref"))):
        return "logical"
    return "file" if component.get("type") == "file" else "other"


def _creator(component: dict[str, Any], **_: Any) -> Outcome:
    # §8.2 maps the component creator to its manufacturer; authors' e-mail meets §5.2.2 too
    found = reachable(component.get("manufacturer"), "manufacturer") or authors_email(
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
    values = property_texts(component).get(FILENAME, [])
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
    entries = read.licences(component)
    if not entries:
        return "fail", "no licences", FIX_LICENCE
    chosen = [e for e in entries if e.acknowledgement in (None, "concluded")]
    if not chosen:
        return "fail", "only declared (original) licences, no distribution licence", FIX_LICENCE
    return _licence_outcome(chosen)


def _original_licences(component: dict[str, Any], **_: Any) -> Outcome:
    entries = read.licences(component)
    chosen = [e for e in entries if e.acknowledgement in (None, "declared")]
    if not entries:
        return "fail", "no licences", FIX_LICENCE
    if not chosen:
        return "fail", "only the concluded (distribution) licence is stated", FIX_LICENCE
    return _licence_outcome(chosen)


def _effective_licence(component: dict[str, Any], **_: Any) -> Outcome:
    props = property_texts(component)
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
    hashes = read.hashes(component)
    for reference in _list(component.get("externalReferences")):
        if isinstance(reference, dict) and reference.get("type") in (
            "distribution",
            "distribution-intake",
        ):
            hashes += read.hashes(reference)
    algorithms = sorted({str(h.alg) for h in hashes})
    for h in hashes:
        if h.alg == "SHA-512":
            content = h.content or ""
            if len(content) == 128 and HEX.match(content):
                return "pass", f"SHA-512: {content[:16]}…", None
            return "fail", "the SHA-512 is not 128 hex digits", FIX_SHA512
    found = f"hashes: {', '.join(algorithms)} only" if algorithms else "no hashes"
    if origin := property_texts(component).get(SHA256_ONLY):
        found += f" ({SHA256_ONLY} = {origin[0]})"
    return "fail", found, FIX_SHA512


def _file_property(component: dict[str, Any], kind: str, field: str, **_: Any) -> Outcome:
    name, allowed = FILE_PROPERTIES[field]
    values = property_texts(component).get(name, [])
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
    urls = reference_urls(component, ("vcs", "source-distribution"))
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
    urls = reference_urls(component, ("distribution", "distribution-intake"))
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
            for h in read.hashes(reference):
                if h.content:
                    return "pass", f"source {h.alg}: {h.content[:16]}…", None
    return "fail", "no hash on a source reference", "add the source archive's hash to its reference"


def _security_txt(component: dict[str, Any], **_: Any) -> Outcome:
    urls = reference_urls(component, ("rfc-9116",))
    if urls:
        return "pass", f"security.txt: {urls[0]}", None
    return (
        "fail",
        "no rfc-9116 reference",
        "add an externalReferences entry of type rfc-9116 with the creator's security.txt URL",
    )


# -- licences (§6.1) --------------------------------------------------------------------------


def _licence_outcome(entries: list[read.Licence]) -> Outcome:
    problems = [
        f"{e.field} {e.value!r}: {problem}" for e in entries if (problem := _spdx_problem(e.value))
    ]
    if problems:
        return "fail", "; ".join(problems[:3]), FIX_LICENCE
    stated = ", ".join(
        f"{e.field}: {e.value}" + (f" ({e.acknowledgement})" if e.acknowledgement else "")
        for e in entries
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


def _version_tuple(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in value.split("."))
    except ValueError:
        return ()
