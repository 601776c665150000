"""The admission policy: which stores to ask, whom to trust, what a model's BOM must say,
what each namespace's mode is, which pods are inference pods, and which need confidential
computing.

A policy is a YAML file (`examples/policy.yaml`), read with a safe loader under bounds (1 MiB,
a few aliases, no deep nesting), validated against `schemas/policy.schema.json` and then
checked for what a schema cannot see (regular expressions compile, key and trust files load,
globs are well formed). Every problem is collected and raised at once as one
`PolicyError`, a `BadInputError`, so that a broken policy is fixed in one round:

    policy = load_policy(Path("/etc/mlbom/policy.yaml"))
    policy.mode_for("team-a")          # "warn"
    policy.bom_problems(bom)           # ["licence AGPL-3.0-only is denied by the policy"]

Relative file paths in a policy are relative to the policy file's folder.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml

from admission.discovery.runtimes import Sources
from attest import keys
from attest.oms import CertificateChain
from attest.verify import ExpectedSigner
from mlbom.errors import BadInputError
from mlbom.references import image_forms
from mlbom.untrusted import as_dict as _dict
from mlbom.untrusted import as_list as _list

SCHEMA = "policy.schema.json"
MAX_POLICY = 1 << 20  # bytes
MAX_ALIASES = 64
MAX_NODES = 100_000  # values after expanding aliases: what an alias bomb inflates
MAX_DEPTH = 64  # nesting: PyYAML's composer recurses
MAX_PROBLEMS = 50  # listed in one error; the rest are counted
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


class PolicyError(BadInputError):
    """A policy file that cannot be used; `problems` lists each "path: message" (exit 2)."""

    def __init__(self, origin: str, problems: list[str]) -> None:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        lines = "".join(f"\n  {p}" for p in shown) + (f"\n  … and {more} more" if more else "")
        count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        super().__init__(
            f"{origin}: the policy has {count}:{lines}",
            hint="fix them and check again with `mlbom admission check-policy FILE`",
        )
        self.problems = problems


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
        for component in _list(bom.get("components")):
            if isinstance(component, dict) and component.get("type") == "file":
                name = _text(component.get("name")) or _text(component.get("bom-ref")) or "?"
                for imported in _properties(component, "mlbom:unsafe-import"):
                    in_files.add(imported)
                    yield f"file {name} imports {imported} when unpickled"
        # The model lists its files' imports again; report those no file component names.
        for imported in _properties(_model(bom), "mlbom:unsafe-import"):
            if imported not in in_files:
                yield f"the model imports {imported} when unpickled"

    @staticmethod
    def _dataset_problems(bom: dict[str, Any]) -> Iterable[str]:
        parameters = _dict(_dict(_model(bom).get("modelCard")).get("modelParameters"))
        entries = _list(parameters.get("datasets"))
        if not entries:
            yield (
                "the model names no training datasets: name them in the model card "
                "(datasets:) or generate with --dataset NAME@REVISION"
            )
            return
        by_ref = {
            c.get("bom-ref"): c
            for c in _list(bom.get("components"))
            if isinstance(c, dict) and isinstance(c.get("bom-ref"), str)
        }
        for entry in entries:
            entry = _dict(entry)
            ref = _text(entry.get("ref"))
            component = by_ref.get(ref) if ref else entry  # a reference, or the data inline
            if component is None:
                yield f"dataset {ref} is named by the model card but is not in the BOM's components"
                continue
            name = _text(component.get("name")) or ref or "(unnamed)"
            if not _text(component.get("version")):
                yield f"dataset {name} has no revision: generate with --dataset {name}@REV"
            if not _dataset_url(component):
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
        default_factory=lambda: _frozen_maps(DEFAULT_NODE_SELECTORS)
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
        default_factory=lambda: _frozen_details(DEFAULT_RUNTIME_CLASS_DETAILS)
    )

    def required(self, namespace: str, references: list[str], bom: dict[str, Any] | None) -> bool:
        if namespace in self.required_namespaces:
            return True
        if any(_matches_model(p, r) for p in self.required_models for r in references):
            return True
        if bom is None:
            return False
        if "true" in _properties(_model(bom), "mlbom:cc:required"):
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
        default_factory=lambda: _frozen_maps(DEFAULT_VERIFIER_RESOURCES)
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


def load_policy(path: Path) -> Policy:
    """The policy in the YAML file `path`, validated; raises `PolicyError` listing every
    problem, or `BadInputError` when the file cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_POLICY + 1)
    except OSError as e:
        raise BadInputError(f"cannot read the policy {path}: {e.strerror}") from None
    if len(data) > MAX_POLICY:
        raise PolicyError(str(path), [f"the file is larger than {MAX_POLICY >> 20} MiB"])
    if b"\x00" in data:
        raise PolicyError(str(path), ["the file is binary, not YAML"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PolicyError(str(path), [f"the file is not UTF-8 text (byte {e.start})"]) from None
    return parse_policy(text, str(path), base_dir=path.parent)


def parse_policy(text: str, origin: str = "<policy>", *, base_dir: Path | None = None) -> Policy:
    """The policy in the YAML `text`; `origin` names it in messages, `base_dir` is where
    relative paths start (default: as given, from the working directory)."""
    if len(text) > MAX_POLICY:
        raise PolicyError(origin, [f"the policy is larger than {MAX_POLICY >> 20} MiB"])
    root, data = _parse_yaml(text, origin)
    problems = _Checker(root, base_dir).check(data)
    if problems:
        raise PolicyError(origin, problems)
    return _build(data, base_dir)


# --- reading YAML under bounds ----------------------------------------------------------


class _HostileYaml(Exception):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader that counts what aliases would expand to, so that a small file cannot
    become a huge (or cyclic) object; and bounds nesting, since the composer recurses."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        # id(node) → (values in it, its depth), once aliases are expanded
        self._sizes: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _HostileYaml(f"more than {MAX_ALIASES} YAML aliases")
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:  # the alias is inside its own anchor
                raise _HostileYaml("a YAML alias refers to a value that contains it")
            return node
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _HostileYaml(f"values nested more than {MAX_DEPTH} deep")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        size = 1 + sum(self._sizes[id(c)][0] for c in children)
        depth = 1 + max((self._sizes[id(c)][1] for c in children), default=0)
        if size > MAX_NODES:
            raise _HostileYaml(f"more than {MAX_NODES} values once its aliases are expanded")
        if depth > MAX_DEPTH:  # nesting through aliases: later walks recurse too
            raise _HostileYaml(f"values nested more than {MAX_DEPTH} deep")
        self._sizes[id(node)] = (size, depth)
        return node


def _parse_yaml(text: str, origin: str) -> tuple[yaml.Node | None, Any]:
    loader = None
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters here
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except _HostileYaml as e:
        raise PolicyError(origin, [f"refused: {e}"]) from None
    except yaml.reader.ReaderError as e:
        raise PolicyError(
            origin, [f"character #x{e.character:04x} at offset {e.position} is not YAML text"]
        ) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(m for m in (e.context, e.problem) if m)
        if isinstance(e, yaml.constructor.ConstructorError) and "tag" in what:
            what += " (a policy is plain YAML: no tags)"
        raise PolicyError(origin, [f"{where}not valid YAML: {what}"]) from None
    except yaml.YAMLError as e:
        raise PolicyError(origin, [f"not valid YAML: {e}"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if data is None:
        raise PolicyError(origin, ["the policy is empty"])
    return root, data


# --- validation --------------------------------------------------------------------------

PathParts = tuple[str | int, ...]
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TAG_KINDS = {
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:null": "empty",
    "tag:yaml.org,2002:timestamp": "a date",
}


class _Checker:
    """Collects every problem: YAML keys that are not strings, the schema's verdicts, then
    what the schema cannot check."""

    def __init__(self, root: yaml.Node | None, base_dir: Path | None) -> None:
        self.root = root
        self.base_dir = base_dir
        # (path, message, line when the YAML node is known better than the path finds it)
        self.found: list[tuple[PathParts, str, int | None]] = []

    def check(self, data: Any) -> list[str]:
        from jsonschema import Draft202012Validator

        import schemas

        self._string_keys(self.root, (), set())
        validator = Draft202012Validator(schemas.load(SCHEMA))
        for error in validator.iter_errors(data):
            for path, message in _describe(error):
                self.add(path, message)
        if isinstance(data, dict):
            self._semantics(data)
        seen: set[str] = set()
        problems = []
        located = [(line or self._line(path), path, message) for path, message, line in self.found]
        for line, path, message in sorted(located, key=lambda p: (p[0] or 0, _dotted(p[1]))):
            problem = f"{_dotted(path)}: {message}" + (f" (line {line})" if line else "")
            if problem not in seen:
                seen.add(problem)
                problems.append(problem)
        return problems

    def add(self, path: PathParts, message: str, line: int | None = None) -> None:
        self.found.append((path, message, line))

    def _string_keys(self, node: yaml.Node | None, path: PathParts, seen: set[int]) -> None:
        """Keys such as `on:`, `yes:` or `1:` would reach the schema as booleans or numbers."""
        if node is None or id(node) in seen:  # an alias: its node was walked already
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            names: set[str] = set()
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    self.add(path, "a key is a list or a mapping, not a name")
                    continue
                if key.tag == _MERGE_TAG:  # `<<: *defaults`: the merged keys are walked there
                    self._string_keys(value, path, seen)
                    continue
                if key.value in names:  # PyYAML would silently keep the last one
                    self.add((*path, key.value), "the key is given twice", key.start_mark.line + 1)
                names.add(key.value)
                if key.tag != _STR_TAG:
                    kind = _TAG_KINDS.get(key.tag, "not a string")
                    self.add((*path, key.value), f"the key {key.value!r} is read as {kind}: quote it", key.start_mark.line + 1)  # fmt: skip
                self._string_keys(value, (*path, key.value), seen)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._string_keys(item, (*path, i), seen)

    def _line(self, path: PathParts) -> int | None:
        """The line of the deepest node of `path` the YAML has (1-based)."""
        node, line = self.root, None
        for part in path:
            if node is None:
                break
            line = node.start_mark.line + 1
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == part), None)
                if node is None:  # a missing key: the mapping that lacks it
                    return line
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if part < len(node.value) else None
            else:
                node = None
        return node.start_mark.line + 1 if node is not None else line

    # What the schema cannot say. Every check tolerates values of the wrong type, which
    # the schema has already reported.

    def _semantics(self, data: dict[str, Any]) -> None:
        for i, store in enumerate(_list(data.get("stores"))):
            if (
                isinstance(store, str)
                and "://" in store
                and not store.startswith(("oci://", "hf://"))
            ):
                self.add(("stores", i), f"unsupported store {store}: give a folder, oci://REGISTRY/REPO or hf://ORG/REPO")  # fmt: skip
        self._trust(_dict(data.get("trust")))
        requirements = _dict(data.get("requirements"))
        licenses = _dict(requirements.get("licenses"))
        for key in ("allow", "deny"):
            self._globs(("requirements", "licenses", key), licenses.get(key))
        modes = _dict(data.get("modes"))
        excluded = {
            n for n in _list(modes.get("exclude", list(DEFAULT_EXCLUDE))) if isinstance(n, str)
        }
        for namespace in _dict(modes.get("namespaces")):
            if namespace in excluded:
                self.add(("modes", "namespaces", namespace), "the namespace is also excluded (modes.exclude): give it a mode or exclude it, not both")  # fmt: skip
        inference = _dict(data.get("inference"))
        self._globs(("inference", "images"), inference.get("images"))
        self._globs(("inference", "gpuResources"), inference.get("gpuResources"))
        self._confidential(_dict(data.get("confidential")))
        self._load_time(data)
        self._oms(data)

    def _oms(self, data: dict[str, Any]) -> None:
        trust = _dict(data.get("trust"))
        names = {s.get("name") for s in _list(trust.get("signers")) if isinstance(s, dict)}
        for i, signer in enumerate(_list(trust.get("omsSigners"))):
            signer = _dict(signer)
            path: PathParts = ("trust", "omsSigners", i)
            if signer.get("name") in names:
                self.add((*path, "name"), f"a signer is already named {signer.get('name')}")
            names.add(signer.get("name"))
            chain = _dict(signer.get("certificateChain")).get("path")
            if isinstance(chain, str):
                self._load((*path, "certificateChain", "path"), chain, lambda p: CertificateChain.load([p]))  # fmt: skip
            key = _dict(signer.get("key"))
            if isinstance(key.get("path"), str):
                self._load((*path, "key", "path"), key["path"], keys.load_public_key)
            elif isinstance(key.get("pem"), str):
                self._load((*path, "key", "pem"), key["pem"], _inline_key)
        self._globs(("oms", "accept", "models"), _dict(_dict(data.get("oms")).get("accept")).get("models"))  # fmt: skip

    def _load_time(self, data: dict[str, Any]) -> None:
        """The verifier can be injected wherever the policy asks for it."""
        settings = _dict(data.get("loadTimeVerification"))
        if isinstance(settings.get("image"), str):
            return
        required = _dict(_dict(data.get("confidential")).get("required")).get("namespaces")
        named = _dict(settings.get("namespaces"))
        for namespace, mode in named.items():
            if mode in ("inject", "required"):
                self.add(("loadTimeVerification", "namespaces", namespace), f"{mode} needs the verifier's image: set loadTimeVerification.image (the chart sets it)")  # fmt: skip
        if settings.get("default") in ("inject", "required"):
            self.add(("loadTimeVerification", "default"), f"{settings['default']} needs the verifier's image: set loadTimeVerification.image (the chart sets it)")  # fmt: skip
        excluded = _list(_dict(data.get("modes")).get("exclude", list(DEFAULT_EXCLUDE)))
        for namespace in _list(required):
            if isinstance(namespace, str) and namespace not in named and namespace not in excluded:
                self.add(("confidential", "required", "namespaces"), f"the namespace {namespace} requires confidential computing, and so load-time verification, which needs the verifier's image: set loadTimeVerification.image (the chart sets it), or loadTimeVerification.namespaces.{namespace}: off")  # fmt: skip

    def _trust(self, trust: dict[str, Any]) -> None:
        root, config = trust.get("trustedRoot"), trust.get("trustConfig")
        if isinstance(root, str) and isinstance(config, str):
            self.add(("trust",), "give trustedRoot or trustConfig, not both (a trust config holds its own trusted root)")  # fmt: skip
        elif isinstance(root, str):
            self._load(("trust", "trustedRoot"), root, _load_trusted_root)
        elif isinstance(config, str):
            self._load(("trust", "trustConfig"), config, _load_trust_config)
        names: set[str] = set()
        for i, signer in enumerate(_list(trust.get("signers"))):
            signer = _dict(signer)
            path: PathParts = ("trust", "signers", i)
            name = signer.get("name")
            if isinstance(name, str):
                if name in names:
                    self.add((*path, "name"), f"another signer is already named {name}")
                names.add(name)
            regexp = _dict(signer.get("keyless")).get("subjectRegExp")
            if isinstance(regexp, str):
                try:
                    re.compile(regexp)
                except re.error as e:
                    self.add((*path, "keyless", "subjectRegExp"), f"not a regular expression: {e}")  # fmt: skip
            key = _dict(signer.get("key"))
            if isinstance(key.get("path"), str):
                self._load((*path, "key", "path"), key["path"], keys.load_public_key)
            elif isinstance(key.get("pem"), str):
                self._load((*path, "key", "pem"), key["pem"], _inline_key)

    def _load(self, path: PathParts, value: str, loader: Callable[[Any], object]) -> None:
        target: Any = value if path[-1] == "pem" else _resolve(value, self.base_dir)
        try:
            loader(target)
        except BadInputError as e:
            self.add(path, str(e).replace("\n  hint: ", ": "))

    def _globs(self, path: PathParts, patterns: Any) -> None:
        for i, pattern in enumerate(_list(patterns)):
            if isinstance(pattern, str) and (problem := _glob_problem(pattern)):
                self.add((*path, i), problem)

    def _confidential(self, confidential: dict[str, Any]) -> None:
        required = _dict(confidential.get("required"))
        self._globs(("confidential", "required", "models"), required.get("models"))
        self._globs(("confidential", "required", "licenses"), required.get("licenses"))
        classes = {**DEFAULT_RUNTIME_CLASSES, **_dict(confidential.get("runtimeClasses"))}
        selectors = {**DEFAULT_NODE_SELECTORS, **_dict(confidential.get("nodeSelectors"))}
        seen: set[str] = set()
        for i, tee in enumerate(_list(confidential.get("tees", list(DEFAULT_TEES)))):
            if not isinstance(tee, str):
                continue
            path: PathParts = ("confidential", "tees", i)
            if tee in seen:
                self.add(path, f"{tee} is listed twice")
            seen.add(tee)
            if tee not in classes:
                self.add(path, f"the TEE {tee} has no runtime class: add one under confidential.runtimeClasses")  # fmt: skip
            if tee not in selectors:
                self.add(path, f"the TEE {tee} has no node selector: add one under confidential.nodeSelectors")  # fmt: skip
            elif not _dict(selectors[tee]):
                self.add(path, f"the node selector of the TEE {tee} is empty: pods would not be kept to its nodes")  # fmt: skip


def _describe(error: Any) -> list[tuple[PathParts, str]]:
    """A jsonschema error as (path, message) pairs that say what to write instead."""
    path: PathParts = tuple(error.absolute_path)
    kind, expected, value, schema = (
        error.validator,
        error.validator_value,
        error.instance,
        error.schema,
    )
    if kind == "required":
        missing = [r for r in expected if isinstance(value, dict) and r not in value]
        return [((*path, name), "required field is missing") for name in missing]
    if kind == "additionalProperties" and isinstance(value, dict):
        known = list(_dict(schema.get("properties")))
        found = []
        for name in value:
            if isinstance(name, str) and name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                advice = (
                    f"did you mean {close[0]}?" if close else f"known fields: {', '.join(known)}"
                )
                found.append(((*path, name), f"unknown field; {advice}"))
        return found
    if kind == "oneOf" and all(set(s) == {"required"} for s in expected):
        names = [s["required"][0] for s in expected]
        given = [n for n in names if isinstance(value, dict) and n in value]
        state = f"both {' and '.join(given)} are given" if given else "neither is given"
        return [(path, f"give exactly one of {' and '.join(names)} ({state})")]
    if kind == "type":
        message = f"must be {_a(expected)}, not {_kind_of(value)}"
        if isinstance(value, bool) and expected == "string":
            message += ": quote it (YAML reads true, yes and on as booleans)"
        elif isinstance(value, int | float) and expected == "string":
            message += ": quote it"
        return [(path, message)]
    if kind == "enum":
        return [(path, f"must be one of {', '.join(map(str, expected))}, not {_show(value)}")]
    if kind == "const":
        return [(path, f"must be {expected}, not {_show(value)}")]
    if kind == "pattern":
        title = schema.get("title", "value")
        return [(path, f"{_show(value)} is not a valid {title}")]
    if kind in ("minItems", "minProperties", "minLength") and expected == 1:
        return [(path, "must not be empty")]
    if kind in ("maxItems", "maxProperties"):
        return [(path, f"has more than {expected} entries")]
    if kind == "maxLength":
        return [(path, f"is longer than {expected} characters")]
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {"minimum": "at least", "exclusiveMinimum": "more than", "maximum": "at most", "exclusiveMaximum": "less than"}[kind]  # fmt: skip
        return [(path, f"must be {word} {expected}, not {_show(value)}")]
    return [(path, _clip(error.message, 200))]


def _a(kind: Any) -> str:
    names = {"string": "a string", "array": "a list", "object": "a mapping", "integer": "a whole number", "number": "a number", "boolean": "true or false"}  # fmt: skip
    if isinstance(kind, list):
        return " or ".join(names.get(str(k), str(k)) for k in kind)
    return names.get(kind, str(kind))


def _kind_of(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {_show(value)}"
    kinds: dict[type, str] = {dict: "a mapping", list: "a list"}
    return kinds.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    return _clip(json.dumps(value, default=str, ensure_ascii=False), 60)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dotted(path: PathParts) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}" if out else part
        else:  # label keys have dots and slashes of their own
            out += f"[{json.dumps(part)}]"
    return out or "(top level)"


def _glob_problem(pattern: str) -> str | None:
    """fnmatch takes any string, but an unclosed [ silently matches only itself."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":  # a leading ] is a literal
                j += 1
            j = pattern.find("]", j)
            if j < 0:
                return f"the glob {pattern} has an unclosed [ (write [[] for a literal [)"
            i = j + 1
        else:
            i += 1
    return None


def _load_trusted_root(path: Path) -> None:
    from sigstore.models import TrustedRoot

    try:
        TrustedRoot.from_file(str(path))
    except OSError as e:
        raise BadInputError(f"cannot read {path}: {e.strerror}") from None
    except Exception as e:  # pydantic and protobuf errors alike: a malformed file
        raise BadInputError(
            f"{path} is not a Sigstore trusted root: {_clip(str(e), 200)}"
        ) from None


def _load_trust_config(path: Path) -> None:
    from attest.sign import trust

    trust(path, False)


def _inline_key(pem: str) -> keys.PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        raise BadInputError("not a PEM public key") from None
    # The key types attest.keys signs and verifies with.
    if isinstance(key, ed25519.Ed25519PublicKey) or (
        isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp384r1")
    ):
        return key
    raise BadInputError("unsupported key type: use an ECDSA P-256 or P-384 key, or Ed25519")


# --- building the policy -------------------------------------------------------------------


def _build(data: dict[str, Any], base_dir: Path | None) -> Policy:
    trust = _dict(data.get("trust"))
    requirements = _dict(data.get("requirements"))
    licenses = _dict(requirements.get("licenses"))
    modes = _dict(data.get("modes"))
    inference = _dict(data.get("inference"))
    confidential = _dict(data.get("confidential"))
    required = _dict(confidential.get("required"))
    verification = _dict(data.get("verification"))
    sources = _dict(data.get("sources"))
    load_time = _dict(data.get("loadTimeVerification"))
    oms = _dict(data.get("oms"))
    stores = [s if "://" in s else str(_resolve(s, base_dir)) for s in data["stores"]]
    return Policy(
        stores=tuple(dict.fromkeys(stores)),
        trusted_root=_optional_path(trust.get("trustedRoot"), base_dir),
        trust_config=_optional_path(trust.get("trustConfig"), base_dir),
        signers=tuple(_signer(s, base_dir) for s in trust["signers"]),
        requirements=Requirements(
            required_fields=tuple(dict.fromkeys(requirements.get("requiredFields", ()))),
            allowed_licenses=tuple(licenses.get("allow", ())),
            denied_licenses=tuple(licenses.get("deny", ())),
            unsafe_pickle_imports=requirements.get("unsafePickleImports", "deny"),
            dataset_provenance=requirements.get("datasetProvenance", "optional"),
        ),
        modes=Modes(
            default=modes.get("default", "enforce"),
            namespaces=MappingProxyType(dict(modes.get("namespaces", {}))),
            exclude=tuple(modes.get("exclude", DEFAULT_EXCLUDE)),
        ),
        inference=InferenceSelector(
            images=tuple(inference.get("images", DEFAULT_IMAGES)),
            # the names placement renames GPUs to stay accelerators to the validating webhook
            gpu_resources=tuple(
                dict.fromkeys(
                    [
                        *inference.get("gpuResources", DEFAULT_GPU_RESOURCES),
                        *confidential.get(
                            "gpuResourceRenames", DEFAULT_GPU_RESOURCE_RENAMES
                        ).values(),
                    ]
                )
            ),
        ),
        confidential=Confidential(
            required_namespaces=tuple(required.get("namespaces", ())),
            required_models=tuple(required.get("models", ())),
            required_licenses=tuple(required.get("licenses", ())),
            tees=tuple(confidential.get("tees", DEFAULT_TEES)),
            # Per TEE, entries given override the built-in ones; the rest stay.
            runtime_classes=MappingProxyType(
                {**DEFAULT_RUNTIME_CLASSES, **confidential.get("runtimeClasses", {})}
            ),
            node_selectors=_frozen_maps(
                {**DEFAULT_NODE_SELECTORS, **confidential.get("nodeSelectors", {})}
            ),
            gpu_node_selector=MappingProxyType(
                dict(confidential.get("gpuNodeSelector", DEFAULT_GPU_NODE_SELECTOR))
            ),
            tolerations=tuple(
                MappingProxyType(dict(t)) for t in confidential.get("tolerations", ())
            ),
            gpu_resource_renames=MappingProxyType(
                dict(confidential.get("gpuResourceRenames", DEFAULT_GPU_RESOURCE_RENAMES))
            ),
            replaceable_runtime_classes=tuple(
                dict.fromkeys(
                    confidential.get(
                        "replaceableRuntimeClasses", DEFAULT_REPLACEABLE_RUNTIME_CLASSES
                    )
                )
            ),
            # Per class, entries given replace the built-in ones; the rest stay.
            runtime_class_details=_frozen_details(
                {**DEFAULT_RUNTIME_CLASS_DETAILS, **confidential.get("runtimeClassDetails", {})}
            ),
        ),
        sources=Sources(
            hub_endpoints=tuple(sources.get("hubEndpoints", Sources.hub_endpoints)),
            runtime_loading=sources.get("runtimeLoading") == "allow",
            shared_caches=sources.get("sharedCaches") == "allow",
        ),
        verification=VerificationSettings(
            deadline_seconds=float(verification.get("deadlineSeconds", 8)),
            cache_success_seconds=verification.get("cacheSuccessSeconds", 300),
            cache_failure_seconds=verification.get("cacheFailureSeconds", 30),
            cache_entries=verification.get("cacheEntries", 10_000),
        ),
        load_time=LoadTimeVerification(
            image=load_time.get("image"),
            default=load_time.get("default", "inject" if load_time.get("image") else "off"),
            namespaces=MappingProxyType(dict(load_time.get("namespaces", {}))),
            confidential_namespaces=tuple(required.get("namespaces", ())),
            stores=tuple(dict.fromkeys(load_time.get("stores", [s for s in stores if "://" in s]))),
            insecure_registries=tuple(load_time.get("insecureRegistries", ())),
            resources=_frozen_maps(load_time.get("resources", DEFAULT_VERIFIER_RESOURCES)),
        ),
        oms=Oms(
            signers=tuple(_oms_signer(s, base_dir) for s in trust.get("omsSigners", ())),
            namespaces=tuple(_dict(oms.get("accept")).get("namespaces", ())),
            models=tuple(_dict(oms.get("accept")).get("models", ())),
            signature_files=tuple(oms.get("signatureFiles", ("model.sig",))),
        ),
        decision_log=_optional_path(data.get("decisionLog"), base_dir),
    )


def _signer(data: dict[str, Any], base_dir: Path | None) -> NamedSigner:
    if "key" in data:
        key = data["key"]
        public = (
            keys.load_public_key(_resolve(key["path"], base_dir))
            if "path" in key
            else _inline_key(key["pem"])
        )
        return NamedSigner(data["name"], ExpectedSigner(key=public))
    keyless = data["keyless"]
    return NamedSigner(
        data["name"],
        ExpectedSigner(
            identity=keyless.get("subject"),
            identity_regexp=keyless.get("subjectRegExp"),
            issuer=keyless["issuer"],
        ),
    )


def _oms_signer(data: dict[str, Any], base_dir: Path | None) -> OmsSigner:
    if "certificateChain" in data:
        chain = _resolve(data["certificateChain"]["path"], base_dir)
        return OmsSigner(data["name"], CertificateChain.load([chain]))
    return OmsSigner(data["name"], _signer(data, base_dir).signer)


def _resolve(value: str, base_dir: Path | None) -> Path:
    path = Path(value)
    return path if base_dir is None or path.is_absolute() else base_dir / path


def _optional_path(value: Any, base_dir: Path | None) -> Path | None:
    return _resolve(value, base_dir) if isinstance(value, str) else None


def _frozen_maps(
    selectors: Mapping[str, Mapping[str, str]],
) -> Mapping[str, Mapping[str, str]]:
    return MappingProxyType({tee: MappingProxyType(dict(s)) for tee, s in selectors.items()})


def _frozen_details(classes: Mapping[str, Mapping[str, Any]]) -> Mapping[str, RuntimeClassDetails]:
    return MappingProxyType(
        {name: RuntimeClassDetails.from_runtime_class(d) for name, d in classes.items()}
    )


# --- reading BOMs (parsed JSON: every value may have any type) -------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _model(bom: dict[str, Any]) -> dict[str, Any]:
    return _dict(_dict(bom.get("metadata")).get("component"))


def _properties(component: dict[str, Any], name: str) -> list[str]:
    return [
        p["value"]
        for p in _list(component.get("properties"))
        if isinstance(p, dict) and p.get("name") == name and isinstance(p.get("value"), str)
    ]


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


_SPDX_TOKEN = re.compile(r"[^\s()]+")


def _expression_ids(expression: str) -> list[str]:
    """The licence ids of an SPDX expression; exceptions (after WITH) are not licences."""
    ids: list[str] = []
    tokens = iter(_SPDX_TOKEN.findall(expression[:4096]))
    for token in tokens:
        operator = token.upper()
        if operator == "WITH":
            next(tokens, None)
        elif operator not in ("AND", "OR"):
            ids.append(token)
    return ids


def _licences(bom: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The model's licences: (id or name, the expression it is part of)."""
    found: dict[tuple[str, str | None], None] = {}
    for entry in _list(_model(bom).get("licenses")):
        entry = _dict(entry)
        if expression := _text(entry.get("expression")):
            for licence_id in _expression_ids(expression):
                found[(licence_id, expression.strip())] = None
        licence = _dict(entry.get("license"))
        if name := _text(licence.get("id")) or _text(licence.get("name")):
            found[(name, None)] = None
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


def _dataset_url(component: dict[str, Any]) -> str | None:
    for reference in _list(component.get("externalReferences")):
        if url := _text(_dict(reference).get("url")):
            return url
    for data in [component, *_list(component.get("data"))]:
        if url := _text(_dict(_dict(data).get("contents")).get("url")):
            return url
    return None


__all__ = [
    "Confidential",
    "InferenceSelector",
    "Mode",
    "Modes",
    "NamedSigner",
    "Policy",
    "PolicyError",
    "Requirements",
    "RuntimeClassDetails",
    "VerificationSettings",
    "load_policy",
    "parse_policy",
]
