"""The `Extras` (modelCard, component data, compositions, formulation) as CycloneDX XML,
placed where the XSD's sequences expect them."""

from __future__ import annotations

from typing import Any

from cyclonedx.model.bom import Bom
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from lxml import etree

from mlbom.bom.assemble import Extras, Formula

# JSON array name -> XML item element name
_ITEMS = {
    "datasets": "dataset", "inputs": "input", "outputs": "output",
    "performanceMetrics": "performanceMetric", "users": "user", "useCases": "useCase",
    "technicalLimitations": "technicalLimitation", "ethicalConsiderations": "ethicalConsideration",
    "properties": "property", "assemblies": "assembly", "dependencies": "dependency",
    "workflows": "workflow", "taskTypes": "taskType",
}  # fmt: skip
# Elements that must come after the ones mlbom adds, per the XSD sequences.
_COMPONENT_AFTER = ("cryptoProperties", "tags", "signature")
_BOM_AFTER = ("properties", "vulnerabilities", "annotations", "formulation", "declarations",
              "definitions", "signature")  # fmt: skip
_FORMULATION_AFTER = ("declarations", "definitions", "citations", "signature")


def add_extras(root: etree._Element, extras: Extras, version: SchemaVersion) -> None:
    ns = etree.QName(root).namespace
    for component in root.iter(f"{{{ns}}}component"):
        for name, value in extras.component_fields.get(component.get("bom-ref", ""), {}).items():
            items = value if isinstance(value, list) else [value]
            for item in items:
                _insert(component, _element(ns, name, item), _COMPONENT_AFTER)
    if extras.compositions:
        compositions = etree.Element(f"{{{ns}}}compositions")
        for composition in extras.compositions:
            compositions.append(_composition(ns, composition))
        _insert(root, compositions, _BOM_AFTER)
    if extras.formulation:
        formulation = etree.Element(f"{{{ns}}}formulation")
        for formula in extras.formulation:
            formulation.append(_formula(ns, formula, version))
        _insert(root, formulation, _FORMULATION_AFTER)


def _formula(ns: str, formula: Formula, version: SchemaVersion) -> etree._Element:
    # XSD order: components, services, workflows, properties. The workflow dicts are built in
    # the XSD's order too (uid … taskTypes, inputs, outputs), so `_element` keeps it.
    element = etree.Element(f"{{{ns}}}formula", {"bom-ref": formula.bom_ref})
    if formula.components:
        # The library writes the components, as it does the top-level ones.
        helper = make_outputter(Bom(components=formula.components), OutputFormat.XML, version)
        element.append(
            etree.fromstring(helper.output_as_string().encode()).find(f"{{{ns}}}components")
        )
    if formula.workflows:
        element.append(_list(ns, "workflows", formula.workflows))
    if formula.properties:
        element.append(_properties(ns, formula.properties))
    return element


def _insert(parent: etree._Element, child: etree._Element, before: tuple[str, ...]) -> None:
    for index, existing in enumerate(parent):
        if etree.QName(existing).localname in before:
            parent.insert(index, child)
            return
    parent.append(child)


def _element(ns: str, name: str, value: Any) -> etree._Element:
    element = etree.Element(f"{{{ns}}}{name}")
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "bom-ref":
                element.set("bom-ref", inner)
            elif key == "ref" and name == "dataset":
                element.tag = f"{{{ns}}}ref"  # a dataset reference is <ref>…</ref> in XML
                element.text = inner
            elif key == "properties":
                element.append(_properties(ns, inner))
            elif isinstance(inner, list):
                element.append(_list(ns, key, inner))
            else:
                element.append(_element(ns, key, inner))
    else:
        element.text = str(value)
    return element


def _list(ns: str, name: str, items: list[Any]) -> etree._Element:
    element = etree.Element(f"{{{ns}}}{name}")
    for item in items:
        element.append(_element(ns, _ITEMS[name], item))
    return element


def _properties(ns: str, items: list[dict[str, str]]) -> etree._Element:
    element = etree.Element(f"{{{ns}}}properties")
    for item in items:
        prop = etree.SubElement(element, f"{{{ns}}}property", name=item["name"])
        prop.text = item.get("value", "")
    return element


def _composition(ns: str, composition: dict[str, Any]) -> etree._Element:
    element = etree.Element(f"{{{ns}}}composition")
    etree.SubElement(element, f"{{{ns}}}aggregate").text = composition["aggregate"]
    for key in ("assemblies", "dependencies"):
        if key in composition:
            group = etree.SubElement(element, f"{{{ns}}}{key}")
            for ref in composition[key]:
                etree.SubElement(group, f"{{{ns}}}{_ITEMS[key]}", ref=ref)
    return element
