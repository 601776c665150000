"""Serializing a BOM: the library's output plus the `Extras`, validated as a whole with the
library's bundled official CycloneDX schema (JSON: `mlbom.bom.validate`, the same cost whatever
else is installed; XML: the library's XSD validator). An invalid BOM is never returned or
written."""

from __future__ import annotations

import json
from typing import Any

from cyclonedx.model.bom import Bom
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion

from mlbom.bom.assemble import Extras, Formula
from mlbom.errors import BadInputError, InvalidBomError

SPEC_VERSIONS = {"1.6": SchemaVersion.V1_6, "1.7": SchemaVersion.V1_7}
FORMATS = ("json", "xml")
_TOP_ORDER = ("$schema", "bomFormat", "specVersion", "serialNumber", "version", "metadata",
              "components", "services", "externalReferences", "dependencies", "compositions",
              "properties", "vulnerabilities", "annotations", "formulation")  # fmt: skip


def spec_version(value: str) -> SchemaVersion:
    try:
        return SPEC_VERSIONS[value]
    except KeyError:
        raise BadInputError(
            f"unsupported CycloneDX version {value}", hint=f"choose {' or '.join(SPEC_VERSIONS)}"
        ) from None


def render(bom: Bom, extras: Extras, *, fmt: str = "json", spec: str = "1.6") -> str:
    """The validated document text."""
    version = spec_version(spec)
    if fmt == "json":
        return _render_json(bom, extras, version)
    if fmt == "xml":
        return _render_xml(bom, extras, version)
    raise BadInputError(f"unsupported output format {fmt}", hint="choose json or xml")


def as_dict(bom: Bom, extras: Extras, *, spec: str = "1.6") -> dict[str, Any]:
    return json.loads(render(bom, extras, fmt="json", spec=spec))


def _render_json(bom: Bom, extras: Extras, version: SchemaVersion) -> str:
    from mlbom.bom.validate import validation_error

    doc = json.loads(make_outputter(bom, OutputFormat.JSON, version).output_as_string())
    components = [doc["metadata"]["component"], *doc.get("components", [])]
    for component in components:
        component.update(extras.component_fields.get(component.get("bom-ref", ""), {}))
    if extras.compositions:
        doc["compositions"] = extras.compositions
    if extras.formulation:
        doc["formulation"] = [_formula(f, version) for f in extras.formulation]
    order = {k: i for i, k in enumerate(_TOP_ORDER)}
    doc = {k: doc[k] for k in sorted(doc, key=lambda k: order.get(k, len(order)))}
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    error = validation_error(text, version.to_version())
    if error is not None:
        raise InvalidBomError(
            f"the BOM does not validate against CycloneDX {version.to_version()}: {error}"
        )
    return text


def _formula(formula: Formula, version: SchemaVersion) -> dict[str, Any]:
    entry: dict[str, Any] = {"bom-ref": formula.bom_ref}
    if formula.components:
        # The library writes the components, as it does the top-level ones.
        helper = make_outputter(Bom(components=formula.components), OutputFormat.JSON, version)
        entry["components"] = json.loads(helper.output_as_string())["components"]
    if formula.workflows:
        entry["workflows"] = formula.workflows
    if formula.properties:
        entry["properties"] = formula.properties
    return entry


def _render_xml(bom: Bom, extras: Extras, version: SchemaVersion) -> str:
    from cyclonedx.validation.xml import XmlValidator
    from lxml import etree

    from mlbom.bom.xml import add_extras

    root = etree.fromstring(
        make_outputter(bom, OutputFormat.XML, version).output_as_string().encode()
    )
    add_extras(root, extras, version)
    text = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode()
    error = XmlValidator(version).validate_str(text)
    if error is not None:
        raise InvalidBomError(
            f"the BOM does not validate against CycloneDX {version.to_version()}: {error}"
        )
    return text
