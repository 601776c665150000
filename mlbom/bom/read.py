"""Reading a CycloneDX JSON BOM as parsed: the model (`metadata.component`), its licences,
properties, files with their hashes, the datasets its model card names and its base models.

The one reader of these: the audit, the attestation's subjects and the admission policy all
read a BOM through it (DESIGN.md: two pieces of code that read the same thing are one). What a
caller then does with a value (the policy splits an expression into licence ids, the audit
shows a property without a value as the empty string) stays with the caller.

A BOM is hostile input, mlbom's or anyone's: any value may have any type, and nothing here
raises. A list or object of the wrong type reads as empty; where the schema wants a string,
another type reads as absent (None), never as its Python text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mlbom.untrusted import as_dict, as_list, as_str


def model(bom: Mapping[str, Any]) -> dict[str, Any]:
    """The model: `metadata.component` ({} when the BOM has none)."""
    return as_dict(as_dict(bom.get("metadata")).get("component"))


def components(bom: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The top-level `components` (not those nested in them)."""
    return [c for c in as_list(bom.get("components")) if isinstance(c, dict)]


def walk_components(value: Any) -> Iterator[dict[str, Any]]:
    """The components of a `components` list, depth first: nested ones too."""
    for component in as_list(value):
        if isinstance(component, dict):
            yield component
            yield from walk_components(component.get("components"))


def files(bom: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The model's files: the top-level components of type `file`."""
    return [c for c in components(bom) if c.get("type") == "file"]


def ancestors(component: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The components a model derives from (its base models): `pedigree.ancestors`."""
    found = as_list(as_dict(component.get("pedigree")).get("ancestors"))
    return [a for a in found if isinstance(a, dict)]


# -- hashes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hash:
    """One entry of `hashes`: the algorithm as CycloneDX names it ("SHA-256") and the digest."""

    alg: str | None
    content: str | None


def hashes(entity: Mapping[str, Any]) -> list[Hash]:
    """The `hashes` of a component or an external reference, in order."""
    return [
        Hash(as_str(h.get("alg")), as_str(h.get("content")))
        for h in as_list(entity.get("hashes"))
        if isinstance(h, dict)
    ]


# -- properties --------------------------------------------------------------------------------


def properties(component: Mapping[str, Any]) -> dict[str, list[str | None]]:
    """The values of a component's properties by name, in order; a name may occur more than
    once. None for a property that states no value (the schema makes it optional)."""
    found: dict[str, list[str | None]] = {}
    for p in as_list(component.get("properties")):
        if isinstance(p, dict) and isinstance(p.get("name"), str):
            found.setdefault(p["name"], []).append(as_str(p.get("value")))
    return found


def property_values(component: Mapping[str, Any], name: str) -> list[str]:
    """The values the properties called `name` state (a scan, no dict: admission asks this
    of every BOM it decides on)."""
    return [
        p["value"]
        for p in as_list(component.get("properties"))
        if isinstance(p, dict) and p.get("name") == name and isinstance(p.get("value"), str)
    ]


# -- licences ----------------------------------------------------------------------------------

LicenceField = Literal["expression", "license.id", "license.name"]


@dataclass(frozen=True)
class Licence:
    """One licence choice of a component: an SPDX expression, an SPDX licence id, or (for a
    licence SPDX does not list) a name; `field` says which, as the BOM has it."""

    value: str
    field: LicenceField
    #: "declared" or "concluded" (CycloneDX 1.6); None when not stated
    acknowledgement: str | None

    @property
    def ids(self) -> list[str]:
        """The licences it names: those of an expression, else the id or name itself."""
        return expression_ids(self.value) if self.field == "expression" else [self.value]


def licences(component: Mapping[str, Any]) -> list[Licence]:
    """A component's licences in order: an expression as written (an empty one too), and for
    a `license` object its id, or its name when it has no id."""
    found = []
    for choice in as_list(component.get("licenses")):
        if not isinstance(choice, dict):
            continue
        if isinstance(expression := choice.get("expression"), str):
            found.append(Licence(expression, "expression", as_str(choice.get("acknowledgement"))))
        licence = as_dict(choice.get("license"))
        acknowledgement = as_str(licence.get("acknowledgement"))
        if licence_id := as_str(licence.get("id")):
            found.append(Licence(licence_id, "license.id", acknowledgement))
        elif name := as_str(licence.get("name")):
            found.append(Licence(name, "license.name", acknowledgement))
    return found


_SPDX_TOKEN = re.compile(r"[^\s()]+")


def expression_ids(expression: str) -> list[str]:
    """The licence ids of an SPDX expression; exceptions (after WITH) are not licences.
    Only the first 4 KiB are read: no licence expression is longer."""
    ids: list[str] = []
    tokens = iter(_SPDX_TOKEN.findall(expression[:4096]))
    for token in tokens:
        operator = token.upper()
        if operator == "WITH":
            next(tokens, None)
        elif operator not in ("AND", "OR"):
            ids.append(token)
    return ids


# -- datasets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardDataset:
    """One entry of the model card's `modelParameters.datasets`."""

    #: the bom-ref it names; None for a dataset given inline
    ref: str | None
    #: what it stands for: the component with that bom-ref (a `data` component in a sound
    #: BOM), or the inline entry itself; None when no top-level component has the bom-ref
    component: dict[str, Any] | None


def datasets(bom: Mapping[str, Any]) -> list[CardDataset]:
    """The datasets the model card names, in its order, each resolved among the top-level
    components (a bom-ref given twice, which CycloneDX forbids, names the last)."""
    parameters = as_dict(as_dict(model(bom).get("modelCard")).get("modelParameters"))
    by_ref = {c["bom-ref"]: c for c in components(bom) if isinstance(c.get("bom-ref"), str)}
    found = []
    for entry in as_list(parameters.get("datasets")):
        entry = as_dict(entry)
        ref = as_str(entry.get("ref")) or None
        found.append(CardDataset(ref, by_ref.get(ref) if ref else entry))
    return found


def dataset_url(component: Mapping[str, Any]) -> str | None:
    """Where a dataset comes from: its first external reference's URL, else the URL of its
    contents (`data[].contents.url`, or `contents.url` of inline data)."""
    for reference in as_list(component.get("externalReferences")):
        if url := as_str(as_dict(reference).get("url")):
            return url
    for data in [component, *as_list(component.get("data"))]:
        if url := as_str(as_dict(as_dict(data).get("contents")).get("url")):
            return url
    return None
