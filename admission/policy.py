"""The admission policy, as the webhook decides with it: which stores to ask, whom to trust,
what a model's BOM must say, what each namespace's mode is, which pods are inference pods,
and which need confidential computing. Frozen dataclasses, built from a policy file by
`admission.policy_loader`:

    policy = load_policy(Path("/etc/mlbom/policy.yaml"))
    policy.mode_for("team-a")          # "warn"
    policy.bom_problems(bom)           # ["licence AGPL-3.0-only is denied by the policy"]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from admission.discovery.runtimes import Sources
from attest.model_signatures import CertificateChain
from attest.verify import ExpectedSigner
from mlbom.bom import read
from mlbom.references import image_forms
from mlbom.untrusted import as_dict as _dict
from mlbom.untrusted import as_list as _list

MAX_BOM_PROBLEMS = 20  # per BOM: they end up in one AdmissionResponse message

Mode = Literal["enforce", "warn", "audit"]
MODES: tuple[Mode, ...] = ("enforce", "warn", "audit")
LoadTimeMode = Literal["off", "inject", "required"]

# Defaults, also written in the schema as `default` annotations (a test keeps them equal).
DEFAULT_EXCLUDE = ("kube-system",)
DEFAULT_IMAGES = (
    "vllm/vllm-openai*",
    "ghcr.io/huggingface/text-generation-inference*",
    "kserve/huggingfaceserver*",
    "ghcr.io/llm-d/llm-d:*",
    "ghcr.io/llm-d/llm-d-cuda*",
    "nvcr.io/nim/*",
)
DEFAULT_GPU_RESOURCES = ("nvidia.com/gpu", "nvidia.com/mig-*", "nvidia.com/pgpu", "amd.com/gpu")
DEFAULT_TEES = ("sev-snp", "tdx")
DEFAULT_RUNTIME_CLASSES = {"sev-snp": "kata-qemu-nvidia-gpu-snp", "tdx": "kata-qemu-nvidia-gpu-tdx"}
DEFAULT_NODE_SELECTORS = {
    "sev-snp": {"feature.node.kubernetes.io/cpu-security.sev.snp.enabled": "true"},
    "tdx": {"feature.node.kubernetes.io/cpu-security.tdx.enabled": "true"},
}
DEFAULT_GPU_NODE_SELECTOR = {"nvidia.com/cc.ready.state": "true"}
DEFAULT_GPU_RESOURCE_RENAMES = {"nvidia.com/gpu": "nvidia.com/pgpu"}
DEFAULT_VERIFIER_RESOURCES = {
    "requests": {"cpu": "1", "memory": "256Mi"},
    "limits": {"memory": "1Gi"},
}
# The GPU Operator's class (plain containers with GPUs) and the default runtime: placement
# replaces them. A pod naming no class is always placed.
DEFAULT_REPLACEABLE_RUNTIME_CLASSES = ("nvidia", "runc")
# The RuntimeClasses kata-deploy (which Confidential Containers installs) creates for the NVIDIA
# GPU TEE shims, in the shape of a RuntimeClass: the kata-deploy Helm chart's
# templates/runtimeclasses.yaml, kata-containers/kata-containers commit
# 0041891c3a1bd0380c562e31c10cf25dc4493f9c ("qemu-nvidia-gpu-snp" and "qemu-nvidia-gpu-tdx":
# memory "10240Mi", cpu "1.0"; every class selects katacontainers.io/kata-runtime=true, and the
# nvidia-gpu TEE classes add no TEE label of their own). The values changed between releases
# (16384Mi in earlier charts): write the cluster's own with `kubectl get runtimeclass -o yaml`
# under runtimeClassDetails. cpu "1" is "1.0" as Kubernetes stores it.
DEFAULT_RUNTIME_CLASS_DETAILS: dict[str, dict[str, Any]] = {
    name: {
        "overhead": {"podFixed": {"cpu": "1", "memory": "10240Mi"}},
        "scheduling": {"nodeSelector": {"katacontainers.io/kata-runtime": "true"}},
    }
    for name in ("kata-qemu-nvidia-gpu-snp", "kata-qemu-nvidia-gpu-tdx")
}

# What to tell the user when a required field is missing from a BOM mlbom made.
_FIELD_HINTS = {
    "metadata.component.name": "generate with --name",
    "metadata.component.version": "generate with --version",
    "metadata.component.licenses": "add license: to the model card's front matter",
    "metadata.component.description": "describe the model in its card",
    "metadata.component.purl": "generate from hf://ORG/REPO@COMMIT or oci://REGISTRY/REPO@DIGEST, or with --source",
    "metadata.component.manufacturer": "generate with --manufacturer",
    "metadata.manufacturer": "generate with --manufacturer",
    "metadata.manufacturer.name": "generate with --manufacturer",
    "metadata.manufacturer.contact": "generate with --manufacturer-contact EMAIL",
    "metadata.manufacturer.url": "generate with --manufacturer-contact URL",
    "metadata.component.modelCard.modelParameters.datasets": "name the datasets in the model card or generate with --dataset NAME@REVISION",
    "formulation": "generate with --env or --requirements FILE in the training pipeline",
}


@dataclass(frozen=True)
class NamedSigner:
    """A trusted signer and the name decisions call it by."""

    name: str
    signer: ExpectedSigner


@dataclass(frozen=True)
class OmsSigner:
    """A trusted signer of OpenSSF model signatures: a key or identity, or a certificate
    chain (model_signing's certificate mode)."""

    name: str
    signer: ExpectedSigner | CertificateChain


@dataclass(frozen=True)
class Oms:
    """Where a verified OpenSSF model signature is enough without an ML-BOM."""

    signers: tuple[OmsSigner, ...] = ()
    namespaces: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    signature_files: tuple[str, ...] = ("model.sig",)

    def accepted(self, namespace: str, reference: str) -> bool:
        return namespace in self.namespaces or any(_matches_model(p, reference) for p in self.models)  # fmt: skip


@dataclass(frozen=True)
class Requirements:
    """What a verified BOM must say about its model."""

    required_fields: tuple[str, ...] = ()
    #: globs; empty: any licence that is not denied
    allowed_licenses: tuple[str, ...] = ()
    denied_licenses: tuple[str, ...] = ()
    unsafe_pickle_imports: Literal["deny", "allow"] = "deny"
    dataset_provenance: Literal["required", "optional"] = "optional"

    def problems(self, bom: dict[str, Any]) -> list[str]:
        found = [
            *self._missing_fields(bom),
            *self._licence_problems(bom),
            *(self._unsafe_imports(bom) if self.unsafe_pickle_imports == "deny" else []),
            *(self._dataset_problems(bom) if self.dataset_provenance == "required" else []),
        ]
        if len(found) > MAX_BOM_PROBLEMS:
            more = len(found) - MAX_BOM_PROBLEMS + 1
            found = [*found[: MAX_BOM_PROBLEMS - 1], f"and {more} more problems"]
        return found

    def _missing_fields(self, bom: dict[str, Any]) -> Iterable[str]:
        for path in self.required_fields:
            where = _missing(bom, path.split("."), "")
            if where is None:
                continue
            where = where.lstrip(".")
            message = f"required field {path} is missing"
            if where != path:
                message += f" at {where}"
            hint = _FIELD_HINTS.get(path)
            yield f"{message}: {hint}" if hint else message

    def _licence_problems(self, bom: dict[str, Any]) -> Iterable[str]:
        licences = _licences(bom)
        if self.allowed_licenses and not licences:
            yield (
                f"the model declares no licence, and the policy allows only "
                f"{', '.join(self.allowed_licenses)}: add license: to the model card's front matter"
            )
        for licence, expression in licences:
            where = f" (in {expression})" if expression else ""
            if _matches_licence(self.denied_licenses, licence):
                yield f"licence {licence}{where} is denied by the policy"
            elif self.allowed_licenses and not _matches_licence(self.allowed_licenses, licence):
                yield (
                    f"licence {licence}{where} is not one the policy allows "
                    f"({', '.join(self.allowed_licenses)})"
                )

    @staticmethod
    def _unsafe_imports(bom: dict[str, Any]) -> Iterable[str]:
        in_files: set[str] = set()
        for component in read.files(bom):
            name = _text(component.get("name")) or _text(component.get("bom-ref")) or "?"
            for imported in read.property_values(component, "mlbom:unsafe-import"):
                in_files.add(imported)
                yield f"file {name} imports {imported} when unpickled"
        # The model lists its files' imports again; report those no file component names.
        for imported in read.property_values(read.model(bom), "mlbom:unsafe-import"):
            if imported not in in_files:
                yield f"the model imports {imported} when unpickled"

    @staticmethod
    def _dataset_problems(bom: dict[str, Any]) -> Iterable[str]:
        datasets = read.datasets(bom)
        if not datasets:
            yield (
                "the model names no training datasets: name them in the model card "
                "(datasets:) or generate with --dataset NAME@REVISION"
            )
            return
        for dataset in datasets:
            ref, component = dataset.ref, dataset.component  # a reference, or the data inline
            if component is None:
                yield f"dataset {ref} is named by the model card but is not in the BOM's components"
                continue
            name = _text(component.get("name")) or ref or "(unnamed)"
            if not _text(component.get("version")):
                yield f"dataset {name} has no revision: generate with --dataset {name}@REV"
            if not read.dataset_url(component):
                yield (
                    f"dataset {name} has no source URL: name it by its Hub id (ORG/NAME) "
                    "in the model card, or add its URL to the BOM"
                )


@dataclass(frozen=True)
class Modes:
    """What a failed check does in each namespace, as Pod Security Admission does."""

    default: Mode = "enforce"
    namespaces: Mapping[str, Mode] = field(default_factory=lambda: MappingProxyType({}))
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE

    def mode_for(self, namespace: str) -> Mode | None:
        if namespace in self.exclude:
            return None
        return self.namespaces.get(namespace, self.default)


@dataclass(frozen=True)
class InferenceSelector:
    """Which pods are inference pods, even without a model reference mlbom recognises."""

    images: tuple[str, ...] = DEFAULT_IMAGES
    gpu_resources: tuple[str, ...] = DEFAULT_GPU_RESOURCES

    def matches(self, images: list[str], gpu_requests: dict[str, int]) -> bool:
        return any(self.why(image, {}) for image in images) or bool(self.why("", gpu_requests))

    def why(self, image: str, gpu_requests: dict[str, int]) -> str | None:
        """Why a container with this image and these resource requests is an inference
        container, or None."""
        for pattern in self.images:
            if image and any(fnmatchcase(name, pattern) for name in image_forms(image)):
                return f"its image matches the policy's {pattern}"
        for resource, count in gpu_requests.items():
            if count > 0 and any(fnmatchcase(resource, p) for p in self.gpu_resources):
                return f"it requests {resource}"
        return None


@dataclass(frozen=True)
class RuntimeClassDetails:
    """What a RuntimeClass holds besides its handler. The API server's RuntimeClass step
    copies it into a pod before mutating webhooks run (with the class the pod named then),
    so placement copies it into a pod whose runtime class it sets."""

    #: overhead.podFixed: resource name -> quantity
    overhead: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: scheduling.nodeSelector
    node_selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: scheduling.tolerations, as written
    tolerations: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_runtime_class(cls, data: Mapping[str, Any]) -> RuntimeClassDetails:
        """From a RuntimeClass object, or its `overhead` and `scheduling` alone."""
        overhead = _dict(_dict(data.get("overhead")).get("podFixed"))
        scheduling = _dict(data.get("scheduling"))
        return cls(
            overhead=MappingProxyType({k: str(v) for k, v in overhead.items()}),
            node_selector=MappingProxyType(dict(_dict(scheduling.get("nodeSelector")))),
            tolerations=tuple(
                MappingProxyType(dict(t)) for t in _list(scheduling.get("tolerations"))
            ),
        )


@dataclass(frozen=True)
class Confidential:
    """Which models need confidential computing, and how pods are placed in a TEE."""

    required_namespaces: tuple[str, ...] = ()
    required_models: tuple[str, ...] = ()
    required_licenses: tuple[str, ...] = ()
    #: most preferred first
    tees: tuple[str, ...] = DEFAULT_TEES
    runtime_classes: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(dict(DEFAULT_RUNTIME_CLASSES))
    )
    node_selectors: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: frozen_maps(DEFAULT_NODE_SELECTORS)
    )
    gpu_node_selector: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(dict(DEFAULT_GPU_NODE_SELECTOR))
    )
    #: Kubernetes toleration objects, as written in the policy
    tolerations: tuple[Mapping[str, Any], ...] = ()
    gpu_resource_renames: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(dict(DEFAULT_GPU_RESOURCE_RENAMES))
    )
    #: runtime classes placement replaces with a TEE's; an unset one always is
    replaceable_runtime_classes: tuple[str, ...] = DEFAULT_REPLACEABLE_RUNTIME_CLASSES
    #: per RuntimeClass name
    runtime_class_details: Mapping[str, RuntimeClassDetails] = field(
        default_factory=lambda: frozen_details(DEFAULT_RUNTIME_CLASS_DETAILS)
    )

    def required(self, namespace: str, references: list[str], bom: dict[str, Any] | None) -> bool:
        if namespace in self.required_namespaces:
            return True
        if any(_matches_model(p, r) for p in self.required_models for r in references):
            return True
        if bom is None:
            return False
        if "true" in read.property_values(read.model(bom), "mlbom:cc:required"):
            return True
        return any(
            _matches_licence(self.required_licenses, licence) for licence, _ in _licences(bom)
        )


@dataclass(frozen=True)
class LoadTimeVerification:
    """Where the webhook injects the load-time verifier (`mlbom verify-load`), and how."""

    #: the verifier's image; None: nothing can be injected
    image: str | None = None
    default: LoadTimeMode = "off"
    namespaces: Mapping[str, LoadTimeMode] = field(default_factory=lambda: MappingProxyType({}))
    #: namespaces that require confidential computing: required unless named in `namespaces`
    confidential_namespaces: tuple[str, ...] = ()
    #: where the verifier fetches the admitted BOM (stores a pod can reach)
    stores: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    resources: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: frozen_maps(DEFAULT_VERIFIER_RESOURCES)
    )

    def mode_for(self, namespace: str) -> LoadTimeMode:
        if namespace in self.namespaces:
            return self.namespaces[namespace]
        if namespace in self.confidential_namespaces:
            return "required"
        return self.default


@dataclass(frozen=True)
class VerificationSettings:
    """The webhook's time budget and its cache of verification results."""

    deadline_seconds: float = 8.0
    cache_success_seconds: int = 300
    cache_failure_seconds: int = 30
    cache_entries: int = 10_000


@dataclass(frozen=True, kw_only=True)
class Policy:
    """A validated admission policy."""

    stores: tuple[str, ...]
    trusted_root: Path | None = None
    trust_config: Path | None = None
    signers: tuple[NamedSigner, ...]
    requirements: Requirements = field(default_factory=Requirements)
    modes: Modes = field(default_factory=Modes)
    inference: InferenceSelector = field(default_factory=InferenceSelector)
    confidential: Confidential = field(default_factory=Confidential)
    sources: Sources = field(default_factory=Sources)
    verification: VerificationSettings = field(default_factory=VerificationSettings)
    load_time: LoadTimeVerification = field(default_factory=LoadTimeVerification)
    oms: Oms = field(default_factory=Oms)
    decision_log: Path | None = None

    def mode_for(self, namespace: str) -> Mode | None:
        """The namespace's mode, or None when the namespace is excluded."""
        return self.modes.mode_for(namespace)

    def bom_problems(self, bom: dict[str, Any]) -> list[str]:
        """Why the BOM does not meet the requirements, each a sentence saying what to do;
        empty when it does."""
        return self.requirements.problems(bom)

    def is_inference(self, images: list[str], gpu_requests: dict[str, int]) -> bool:
        """Whether a pod with these container images and extended-resource requests is an
        inference pod: an image matches a glob, or it requests a configured GPU resource."""
        return self.inference.matches(images, gpu_requests)

    def cc_required(
        self, namespace: str, references: list[str], bom: dict[str, Any] | None
    ) -> bool:
        """Whether the pod must run confidentially: by its namespace, a model reference, or
        (given the BOM) the model's licence or its own mlbom:cc:required property."""
        return self.confidential.required(namespace, references, bom)


# --- read-only values, as the frozen dataclasses hold them ------------------------------


def frozen_maps(
    selectors: Mapping[str, Mapping[str, str]],
) -> Mapping[str, Mapping[str, str]]:
    return MappingProxyType({tee: MappingProxyType(dict(s)) for tee, s in selectors.items()})


def frozen_details(classes: Mapping[str, Mapping[str, Any]]) -> Mapping[str, RuntimeClassDetails]:
    return MappingProxyType(
        {name: RuntimeClassDetails.from_runtime_class(d) for name, d in classes.items()}
    )


# --- reading BOMs (mlbom.bom.read; parsed JSON: every value may have any type) ---------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _missing(value: Any, parts: list[str], where: str) -> str | None:
    """Where the dotted path first lacks a non-empty value, or None when it is present;
    a list on the way must be non-empty and every element must have the rest."""
    if isinstance(value, list):
        if not value:
            return where
        for i, item in enumerate(value):
            if isinstance(item, list):  # no BOM field is a list of lists: do not recurse
                return f"{where}[{i}]"
            if (found := _missing(item, parts, f"{where}[{i}]")) is not None:
                return found
        return None
    if not parts:
        return None if _present(value) else where
    here = f"{where}.{parts[0]}"
    if not isinstance(value, dict) or not _present(value.get(parts[0])):
        return here
    return _missing(value[parts[0]], parts[1:], here)


def _licences(bom: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The model's licences: (id or name, the expression it is part of), each once. A rule
    matches licence ids, so an expression counts by each id it names (none when empty)."""
    found: dict[tuple[str, str | None], None] = {}
    for licence in read.licences(read.model(bom)):
        expression = licence.value.strip() if licence.field == "expression" else None
        for licence_id in licence.ids:
            found[(licence_id, expression)] = None
    return list(found)


def _matches_licence(patterns: Iterable[str], licence: str) -> bool:
    # SPDX ids are case-insensitive (SPDX 2.3, annex D).
    return any(fnmatchcase(licence.lower(), p.lower()) for p in patterns)


def _matches_model(pattern: str, reference: str) -> bool:
    """The glob matches the reference with or without its pin. Case is ignored: the Hub
    resolves repository ids without regard to case, so a differently cased name must not
    escape a rule."""
    reference, pattern = reference.lower(), pattern.lower()
    scheme, sep, rest = reference.partition("://")
    unpinned = f"{scheme}{sep}{rest.rpartition('@')[0]}" if "@" in rest else reference
    return fnmatchcase(reference, pattern) or fnmatchcase(unpinned, pattern)


__all__ = [
    "Confidential",
    "InferenceSelector",
    "LoadTimeVerification",
    "Mode",
    "Modes",
    "NamedSigner",
    "Oms",
    "OmsSigner",
    "Policy",
    "Requirements",
    "RuntimeClassDetails",
    "VerificationSettings",
]
