"""Facts → CycloneDX. What cyclonedx-python-lib models (components, hashes, licences,
pedigree, dependencies, metadata) is built with the library; what it does not model yet
(`modelCard`, component `data`, `compositions`, `formulation`) is returned as `Extras`,
JSON fragments that `document` adds to the serialized BOM before validating the whole.
The formulation's components are library `Component`s all the same: `document` has the
library serialize them, so that purls, hashes and properties are written by it.

With `SOURCE_DATE_EPOCH` set, the timestamp is that epoch and the serial number a UUID v5
of the BOM's content, so two runs over the same model write the same bytes."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import (
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType, Pedigree
from cyclonedx.model.contact import OrganizationalContact, OrganizationalEntity
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from packageurl import PackageURL

from mlbom import __version__
from mlbom.errors import BadInputError
from mlbom.hashing import ALGORITHMS
from mlbom.inspectors.card import TASK_IO
from mlbom.models import Environment, Identity, ModelFile, ModelInfo
from mlbom.urls import safe_url, strip_credentials

MODEL_REF = "model"
FORMULA_REF = "formulation"
CODE_REF = "formulation:code"
_SHARD = re.compile(r"-\d+-of-\d+$")
WEIGHT_FORMATS = frozenset({"safetensors", "gguf", "onnx", "pickle", "pytorch", "torchscript"})
_COUNTED_FORMATS = ("safetensors", "gguf", "onnx")  # headers that give parameter counts
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
#: the namespace of content-derived serial numbers (UUID v5)
SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:mlbom:bom-serial-number")


@dataclass
class Manufacturer:
    name: str
    contact: str | None = None  # an e-mail address or a URL


@dataclass
class Extras:
    """JSON fragments for what the library does not model, keyed by bom-ref."""

    component_fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    compositions: list[dict[str, Any]] = field(default_factory=list)
    formulation: list[Formula] = field(default_factory=list)


@dataclass
class Formula:
    """One `formulation` entry: its components for the library to serialize, and the
    workflow and properties as JSON (the library models neither)."""

    bom_ref: str
    components: list[Component] = field(default_factory=list)
    workflows: list[dict[str, Any]] = field(default_factory=list)
    properties: list[dict[str, str]] = field(default_factory=list)


def assemble(
    files: list[ModelFile],
    info: ModelInfo,
    identity: Identity,
    *,
    name: str | None = None,
    version: str | None = None,
    manufacturer: Manufacturer | None = None,
    environment: Environment | None = None,
) -> tuple[Bom, Extras]:
    """The BOM of a model; `environment`, where it was trained, goes to `formulation` and
    never among the model's components or dependencies."""
    extras = Extras()
    licenses = _licenses(info)
    maker = _organization(manufacturer) if manufacturer else None
    version = version or identity.version or info.version
    model_name = name or identity.name or info.name or identity.fallback_name or "model"

    file_components = [_file_component(f, version, licenses, maker) for f in files]
    datasets = [_dataset_component(d, extras) for d in info.datasets]
    model = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref=MODEL_REF,
        name=model_name,
        version=version,
        description=info.description,
        licenses=licenses,
        purl=PackageURL.from_string(identity.purl) if identity.purl else None,
        # What the model states of its maker (a GGUF's author and organization) counts
        # only when the user named no manufacturer.
        manufacturer=maker or _entity(info.author),
        supplier=None if maker else _entity(info.organization),
        publisher=_publisher(model_name, identity),
        external_references=_website(identity.url),
        properties=_model_properties(files, info, identity),
        pedigree=_pedigree(info, model_name),
        tags=info.tags or None,
    )
    extras.component_fields[MODEL_REF] = {"modelCard": _model_card(info, datasets)}

    bom = Bom()
    bom.metadata.component = model
    bom.metadata.manufacturer = maker
    bom.metadata.timestamp = _timestamp()
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="mlbom", version=__version__)
    )
    for component in (*file_components, *datasets):
        bom.components.add(component)
    bom.register_dependency(model, file_components)
    # Every file in the model was listed, so the model's dependencies are complete.
    extras.compositions.append({"aggregate": "complete", "dependencies": [MODEL_REF]})
    if environment is not None:
        extras.formulation.append(_formula(environment, datasets))
    if _epoch() is not None:
        bom.serial_number = content_serial(bom, extras)
    return bom, extras


def content_serial(bom: Bom, extras: Extras) -> uuid.UUID:
    """A UUID v5 of the BOM's content, its serial number and timestamp left out: the same
    model gives the same serial, a changed one another."""
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion

    def library_json(of: Bom) -> dict[str, Any]:
        return json.loads(
            make_outputter(of, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string()
        )

    serial, bom.serial_number = bom.serial_number, uuid.UUID(int=0)
    try:
        doc = library_json(bom)
    finally:
        bom.serial_number = serial
    doc.pop("serialNumber", None)
    doc.get("metadata", {}).pop("timestamp", None)
    formulation = [
        {
            "bom-ref": f.bom_ref,
            "components": library_json(Bom(components=f.components)).get("components", []),
            "workflows": f.workflows,
            "properties": f.properties,
        }
        for f in extras.formulation
    ]
    content = {
        "bom": doc,
        "component_fields": extras.component_fields,
        "compositions": extras.compositions,
        "formulation": formulation,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return uuid.uuid5(SERIAL_NAMESPACE, canonical)


def _formula(env: Environment, datasets: list[Component]) -> Formula:
    """The training step: what it ran on and with, its inputs (datasets, code), its output
    (the model). Datasets stay top-level components; the workflow refers to them."""
    components = _environment_components(env)
    inputs = [{"resource": {"ref": str(d.bom_ref)}} for d in datasets]
    if env.code:
        inputs.append({"resource": {"ref": CODE_REF}})
    workflow: dict[str, Any] = {
        "bom-ref": f"{FORMULA_REF}:training",
        "uid": "training",
        "name": "training",
        "description": "The step that trained the model, in the environment recorded here",
        "taskTypes": ["build"],
    }
    if inputs:
        workflow["inputs"] = inputs
    workflow["outputs"] = [{"resource": {"ref": MODEL_REF}, "type": "artifact"}]
    properties = [{"name": n, "value": v} for n, v in dict.fromkeys(env.properties)]
    return Formula(FORMULA_REF, components, [workflow], properties)


def _environment_components(env: Environment) -> list[Component]:
    made = []
    if env.python_implementation or env.python_version:
        made.append(Component(
            type=ComponentType.PLATFORM, bom_ref=f"{FORMULA_REF}:python",
            name=env.python_implementation or "Python", version=env.python_version,
        ))  # fmt: skip
    if env.os_name:
        made.append(Component(
            type=ComponentType.OPERATING_SYSTEM, bom_ref=f"{FORMULA_REF}:os",
            name=env.os_name, version=env.os_version,
            properties=_properties([
                (n, v) for n, v in (("mlbom:os:kernel", env.kernel), ("mlbom:os:machine", env.machine))
                if v
            ]),
        ))  # fmt: skip
    nvidia = OrganizationalEntity(name="NVIDIA")
    for index, gpu in enumerate(env.gpus):
        props = [("mlbom:gpu:count", str(gpu.count))]
        if gpu.memory:
            props.append(("mlbom:gpu:memory", gpu.memory))
        made.append(Component(
            type=ComponentType.DEVICE, bom_ref=f"{FORMULA_REF}:gpu:{index}", name=gpu.model,
            manufacturer=nvidia, properties=_properties(props),
        ))  # fmt: skip
    if env.nvidia_driver:
        made.append(Component(
            type=ComponentType.DEVICE_DRIVER, bom_ref=f"{FORMULA_REF}:nvidia-driver",
            name="NVIDIA driver", version=env.nvidia_driver, publisher="NVIDIA",
        ))  # fmt: skip
    if env.cuda_version:
        # A library: CUDA is the runtime the framework (PyTorch, JAX) links against, not the
        # framework the training code is written in. No purl: no purl type covers it, and a
        # pkg:generic one would identify it to no vulnerability database.
        made.append(Component(
            type=ComponentType.LIBRARY, bom_ref=f"{FORMULA_REF}:cuda", name="CUDA",
            version=env.cuda_version, publisher="NVIDIA",
            properties=_properties([("mlbom:cuda:reported-by", env.cuda_reported_by or "unknown")]),
        ))  # fmt: skip
    if env.code:
        props = [("mlbom:git:branch", env.code.branch)] if env.code.branch else []
        if env.code.dirty is not None:
            props.append(("mlbom:git:dirty", "true" if env.code.dirty else "false"))
        made.append(Component(
            type=ComponentType.APPLICATION, bom_ref=CODE_REF, name=env.code.name,
            version=env.code.commit, external_references=_source(env.code.url, vcs=True),
            properties=_properties(props),
        ))  # fmt: skip
    if env.requirements:
        made.append(Component(
            type=ComponentType.FILE, bom_ref=f"{FORMULA_REF}:requirements",
            name=env.requirements.name,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=env.requirements.sha256)],
            properties=_properties([("mlbom:format", env.requirements.format)]),
        ))  # fmt: skip
    refs: set[str] = set()
    for package in env.packages:
        ref = base = f"{FORMULA_REF}:{package.purl or package.name}"
        while ref in refs:  # a lock may pin one name twice, per platform or Python version
            ref = f"{base}#{len(refs)}"
        refs.add(ref)
        made.append(Component(
            type=ComponentType.LIBRARY, bom_ref=ref, name=package.name, version=package.version,
            purl=PackageURL.from_string(package.purl) if package.purl else None,
            hashes=[
                HashType(alg=HashAlgorithm(ALGORITHMS[a][0]), content=d) for a, d in package.hashes
            ],
            external_references=_source(package.url, vcs="vcs_url=" in (package.purl or "")),
            properties=_properties(package.properties),
        ))  # fmt: skip
    return made


def _source(url: str | None, *, vcs: bool) -> list[ExternalReference]:
    """Where code came from; credentials are stripped again in case the caller did not."""
    url = strip_credentials(url)
    kind = ExternalReferenceType.VCS if vcs else ExternalReferenceType.DISTRIBUTION
    return [ExternalReference(type=kind, url=XsUri(url))] if url else []


def _file_component(
    file: ModelFile, version: str | None, licenses: list[Any], maker: OrganizationalEntity | None
) -> Component:
    facts = file.facts
    props = [
        ("bsi:component:filename", file.path.rsplit("/", 1)[-1]),
        ("bsi:component:executable", "executable" if facts.executable else "non-executable"),
        ("bsi:component:archive", "archive" if facts.archive else "no archive"),
        ("bsi:component:structured", "structured" if facts.structured else "unstructured"),
        ("mlbom:size", str(file.size)),
        *facts.properties,
    ]
    if facts.format:
        props.append(("mlbom:format", facts.format))
    if facts.parameter_count is not None:
        props.append(("mlbom:parameter-count", str(facts.parameter_count)))
    if facts.error:
        props.append(("mlbom:inspection-error", facts.error))
    return Component(
        type=ComponentType.FILE,
        bom_ref=f"file:{file.path}",
        name=file.path,
        version=version,
        hashes=[
            HashType(alg=HashAlgorithm(ALGORITHMS[a][0]), content=d)
            for a, d in file.digests.items()
        ],
        licenses=licenses,
        manufacturer=maker,
        properties=_properties(props),
    )


def _dataset_component(dataset: Any, extras: Extras) -> Component:
    ref = f"dataset:{dataset.name}"
    url = safe_url(dataset.url)
    data: dict[str, Any] = {"type": "dataset", "name": dataset.name}
    if url:
        data["contents"] = {"url": url}
    extras.component_fields[ref] = {"data": [data]}
    return Component(
        type=ComponentType.DATA,
        bom_ref=ref,
        name=dataset.name,
        version=dataset.revision,
        external_references=_website(url),
        properties=_properties([("mlbom:dataset:role", dataset.role)]),
    )


def _model_card(info: ModelInfo, datasets: list[Component]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    if info.task:
        parameters["task"] = info.task
    if info.architecture_family:
        parameters["architectureFamily"] = info.architecture_family
    if info.architectures:
        parameters["modelArchitecture"] = ", ".join(info.architectures)
    if datasets:
        parameters["datasets"] = [{"ref": str(d.bom_ref)} for d in datasets]
    if info.inputs:
        parameters["inputs"] = [{"format": f} for f in info.inputs]
    if info.outputs:
        parameters["outputs"] = [{"format": f} for f in info.outputs]
    # A task stated without formats (a PEFT adapter's task_type) still implies them.
    inputs, outputs = TASK_IO.get(info.task or "", ([], []))
    if not info.inputs and inputs:
        parameters["inputs"] = [{"format": f} for f in inputs]
    if not info.outputs and outputs:
        parameters["outputs"] = [{"format": f} for f in outputs]
    card: dict[str, Any] = {"bom-ref": "model-card"}
    if parameters:
        card["modelParameters"] = parameters
    if info.metrics:
        card["quantitativeAnalysis"] = {
            "performanceMetrics": [
                {"type": m.type, "value": m.value, **({"slice": m.slice} if m.slice else {})}
                for m in info.metrics
            ]
        }
    c = info.considerations
    considerations: dict[str, Any] = {}
    if c.users:
        considerations["users"] = c.users
    if c.use_cases:
        considerations["useCases"] = c.use_cases
    if c.technical_limitations:
        considerations["technicalLimitations"] = c.technical_limitations
    if c.ethical_considerations:
        considerations["ethicalConsiderations"] = [
            {"name": n, **({"mitigationStrategy": m} if m else {})}
            for n, m in c.ethical_considerations
        ]
    if considerations:
        card["considerations"] = considerations
    return card


def _model_properties(
    files: list[ModelFile], info: ModelInfo, identity: Identity
) -> list[Property]:
    executable = any(f.facts.executable for f in files)
    props = [
        ("bsi:component:executable", "executable" if executable else "non-executable"),
        ("bsi:component:archive", "no archive"),
        ("bsi:component:structured", "structured"),
        *identity.properties,
        *info.properties,
    ]
    weights = {f.facts.format for f in files if f.facts.format in WEIGHT_FORMATS}
    props += [("mlbom:format", f) for f in sorted(weights)]
    if (count := _parameter_count(files)) is not None:
        props.append(("mlbom:parameter-count", str(count)))
    props += [
        ("mlbom:unsafe-import", g)
        for g in sorted({g for f in files for g in f.facts.unsafe_imports})
    ]
    props += [("mlbom:uninspected-file", f.path) for f in files if f.facts.error]
    for base in info.base_models:
        if base.inferred:
            props.append(("mlbom:lineage:inferred-from", "config.json _name_or_path"))
    if info.license_url and not safe_url(info.license_url):
        props.append(("mlbom:license-link", info.license_url))
    return _properties(props)


def _parameter_count(files: list[ModelFile]) -> int | None:
    """The largest checkpoint's parameter count: shards of one checkpoint add up, but a
    repository holding the same model in several formats or quantizations does not."""
    groups: dict[tuple[str, str], int] = defaultdict(int)
    for f in files:
        if f.facts.format in _COUNTED_FORMATS and f.facts.parameter_count is not None:
            stem = f.path.rsplit(".", 1)[0]
            groups[(f.facts.format, _SHARD.sub("", stem))] += f.facts.parameter_count
    return max(groups.values()) if groups else None


def _pedigree(info: ModelInfo, model_name: str) -> Pedigree | None:
    ancestors = []
    # A config saved from an unchanged download names the model itself: not an ancestor.
    for base in (b for b in info.base_models if b.name.lower() != model_name.lower()):
        props = []
        if base.relation:
            props.append(("mlbom:lineage:relation", base.relation))
        if base.inferred:
            props.append(("mlbom:lineage:inferred", "true"))
        purl = None
        if _HUB_ID.match(base.name):
            org, repo = base.name.split("/")
            purl = PackageURL(type="huggingface", namespace=org, name=repo, version=base.version)
        ancestors.append(Component(
            type=ComponentType.MACHINE_LEARNING_MODEL,
            bom_ref=f"base:{base.name}",
            name=base.name,
            version=base.version,
            purl=purl,
            external_references=_website(base.url),
            properties=_properties(props),
        ))  # fmt: skip
    return Pedigree(ancestors=ancestors) if ancestors else None


def _licenses(info: ModelInfo) -> list[DisjunctiveLicense | LicenseExpression]:
    factory = LicenseFactory()
    url = safe_url(info.license_url)
    found: list[DisjunctiveLicense | LicenseExpression] = []
    for value in info.licenses:
        lic = factory.make_from_string(value)
        if isinstance(lic, DisjunctiveLicense) and lic.id is None and url:
            lic = DisjunctiveLicense(name=lic.name, url=XsUri(url))
        found.append(lic)
    if any(isinstance(lic, LicenseExpression) for lic in found) and len(found) > 1:
        # CycloneDX allows one expression, or any number of single licences, not both.
        found = [LicenseExpression(" AND ".join(_as_expression(lic) for lic in found))]
    return found


def _as_expression(lic: DisjunctiveLicense | LicenseExpression) -> str:
    if isinstance(lic, LicenseExpression):
        return f"({lic.value})"
    return lic.id or f"LicenseRef-{re.sub(r'[^A-Za-z0-9.-]', '-', lic.name or 'unknown')}"


def _organization(manufacturer: Manufacturer) -> OrganizationalEntity:
    contact = manufacturer.contact
    if contact and _EMAIL.match(contact):
        return OrganizationalEntity(
            name=manufacturer.name, contacts=[OrganizationalContact(email=contact)]
        )
    if contact and not safe_url(contact):
        raise BadInputError(
            f"manufacturer contact {contact!r} is neither an e-mail address nor an http(s) URL"
        )
    return OrganizationalEntity(name=manufacturer.name, urls=[XsUri(contact)] if contact else None)


def _entity(name: str | None) -> OrganizationalEntity | None:
    return OrganizationalEntity(name=name) if name else None


def _publisher(model_name: str, identity: Identity) -> str | None:
    """The Hub organisation of a Hub model; a registry host publishes nothing."""
    purl = identity.purl or ""
    if purl.startswith("pkg:huggingface/") and "/" in model_name:
        return model_name.split("/")[0]
    return None


def _website(url: str | None) -> list[ExternalReference]:
    url = safe_url(url)
    return [ExternalReference(type=ExternalReferenceType.WEBSITE, url=XsUri(url))] if url else []


def _properties(pairs: list[tuple[str, str]]) -> list[Property]:
    return [Property(name=n, value=v) for n, v in dict.fromkeys(pairs)]


def _epoch() -> int | None:
    """SOURCE_DATE_EPOCH, set for a reproducible build; None when unset or not a number."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(epoch) if epoch.isdigit() else None


def _timestamp() -> datetime:
    """Now, or SOURCE_DATE_EPOCH for reproducible builds."""
    epoch = _epoch()
    return datetime.fromtimestamp(epoch, tz=UTC) if epoch is not None else datetime.now(tz=UTC)
