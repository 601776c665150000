"""The in-toto Statement v1 mlbom signs: the CycloneDX BOM as predicate, the model's files
as subjects (relative path and SHA-256, taken from the BOM's `file` components).

Payload bytes are the statement in RFC 8785 canonical JSON, so the same BOM always gives
the same payload, and a predicate is compared with a BOM after the same canonicalisation.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import rfc8785

from mlbom.bom import read
from mlbom.errors import BadInputError
from mlbom.files import read_bounded
from mlbom.references import SHA256_HEX

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://cyclonedx.org/bom"  # what cosign, policy-controller, Kyverno match
PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_BOM = 256 << 20

Subject = dict[str, Any]  # {"name": path, "digest": {"sha256": hex}}


def read_bom(path: Path) -> dict[str, Any]:
    """A CycloneDX JSON BOM from disk: bounded, parsed, and recognisably a BOM."""
    return parse_bom(read_bounded(path, MAX_BOM), str(path))


def parse_bom(data: bytes | str, name: str = "the BOM") -> dict[str, Any]:
    try:
        bom = json.loads(data)
    except (ValueError, RecursionError) as e:
        hint = "sign the JSON form: mlbom generate --format json" if _looks_xml(data) else None
        raise BadInputError(f"{name} is not JSON ({e})", hint=hint) from None
    if not isinstance(bom, dict) or bom.get("bomFormat") != "CycloneDX":
        raise BadInputError(f"{name} is not a CycloneDX BOM (no bomFormat: CycloneDX)")
    return bom


def subjects(bom: dict[str, Any]) -> list[Subject]:
    """The statement's subjects: the model's files, then the OCI manifest for a model
    packaged as an OCI artifact (as cosign names an image: REGISTRY/REPO and its digest)."""
    found = file_subjects(bom)
    if artifact := oci_subject(bom):
        found.append(artifact)
    return found


def oci_subject(bom: dict[str, Any]) -> Subject | None:
    """The manifest subject of a BOM whose model has a `pkg:oci` purl pinned to a digest."""
    from packageurl import PackageURL

    purl = read.model(bom).get("purl")
    if not isinstance(purl, str) or not purl.startswith("pkg:oci/"):
        return None
    try:
        parsed = PackageURL.from_string(purl)
    except ValueError:
        raise BadInputError(f"the BOM's model purl {purl!r} is malformed") from None
    digest = (parsed.version or "").removeprefix("sha256:")
    if not SHA256_HEX.match(digest):
        raise BadInputError(f"the BOM's model purl {purl} is not pinned to a sha256 digest")
    qualifiers = parsed.qualifiers if isinstance(parsed.qualifiers, dict) else {}
    name = qualifiers.get("repository_url") or parsed.name
    return {"name": name, "digest": {"sha256": digest}}


def file_subjects(bom: dict[str, Any]) -> list[Subject]:
    """One subject per `file` component of the BOM, sorted by path."""
    found: dict[str, str] = {}
    for component in read.files(bom):
        name = component.get("name")
        # the first SHA-256 given is the one: a second cannot mend a broken first
        digest = next((h.content for h in read.hashes(component) if h.alg == "SHA-256"), None)
        if not isinstance(name, str) or digest is None or not SHA256_HEX.match(digest):
            raise BadInputError(
                f"the BOM's file {name!r} has no SHA-256",
                hint="generate the BOM with SHA-256 (the default) to sign it",
            )
        if name in found:
            raise BadInputError(f"the BOM lists the file {name} twice")
        found[name] = digest
    if not found:
        raise BadInputError("the BOM lists no files: there is nothing to attest")
    return [{"name": n, "digest": {"sha256": found[n]}} for n in sorted(found)]


def excluded_paths(bom: dict[str, Any]) -> list[str]:
    """The paths `generate --exclude` left out, as the (signed) BOM records them."""
    return [p for p in read.property_values(read.model(bom), "mlbom:excluded") if p][:1000]


def statement(bom: dict[str, Any]) -> bytes:
    """The canonical payload bytes of the statement over `bom`."""
    return canonical({
        "_type": STATEMENT_TYPE,
        "subject": subjects(bom),
        "predicateType": PREDICATE_TYPE,
        "predicate": bom,
    })  # fmt: skip


def canonical(value: Any) -> bytes:
    return rfc8785.dumps(value)


def bom_sha256(bom: dict[str, Any]) -> str:
    """The SHA-256 of a BOM's canonical JSON (RFC 8785): the same whichever store holds it
    and however it spaces or orders its JSON (stores that keep it in a bundle's statement
    write it anew)."""
    return hashlib.sha256(canonical(bom)).hexdigest()


def _looks_xml(data: bytes | str) -> bool:
    if isinstance(data, bytes):
        return data[:100].lstrip().startswith(b"<")
    return data[:100].lstrip().startswith("<")
