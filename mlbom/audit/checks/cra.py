"""The points of Regulation (EU) 2024/2847, the Cyber Resilience Act, that the audit export can
give evidence for: Annex I Part II points 1-8 (vulnerability handling) and Annex VII points
1-8 (technical documentation), each as evidence, partial or gap, with what is left to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
