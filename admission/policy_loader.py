"""Reading an admission policy file: the YAML under bounds (1 MiB, a few aliases, no deep
nesting), the JSON-schema check against `schemas/policy.schema.json`, the checks a schema
cannot make (regular expressions compile, key and trust files load, globs are well formed),
each problem with its line, and then the `Policy` model (`admission.policy`) built from it.
Every problem is collected and raised at once as one `PolicyError`, a `BadInputError`, so
that a broken policy is fixed in one round:

    policy = load_policy(Path("/etc/mlbom/policy.yaml"))

Relative file paths in a policy are relative to the policy file's folder.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from admission.discovery.runtimes import Sources
from admission.policy import (
    DEFAULT_EXCLUDE,
    DEFAULT_GPU_NODE_SELECTOR,
    DEFAULT_GPU_RESOURCE_RENAMES,
    DEFAULT_GPU_RESOURCES,
    DEFAULT_IMAGES,
    DEFAULT_NODE_SELECTORS,
    DEFAULT_REPLACEABLE_RUNTIME_CLASSES,
    DEFAULT_RUNTIME_CLASS_DETAILS,
    DEFAULT_RUNTIME_CLASSES,
    DEFAULT_TEES,
    DEFAULT_VERIFIER_RESOURCES,
    Confidential,
    InferenceSelector,
    LoadTimeVerification,
    Modes,
    NamedSigner,
    Oms,
    OmsSigner,
    Policy,
    Requirements,
    VerificationSettings,
    frozen_details,
    frozen_maps,
)
from attest import keys
from attest.keyless import load_trusted_root
from attest.model_signatures import CertificateChain
from attest.verify import ExpectedSigner
from mlbom import safeyaml
from mlbom.errors import BadInputError
from mlbom.files import FileTooLargeError, read_bounded
from mlbom.untrusted import as_dict as _dict
from mlbom.untrusted import as_list as _list

SCHEMA = "policy.schema.json"
MAX_POLICY = 1 << 20  # bytes
MAX_ALIASES = 64
MAX_NODES = 100_000  # values after expanding aliases: what an alias bomb inflates
MAX_DEPTH = 64  # nesting: PyYAML's composer recurses
MAX_PROBLEMS = 50  # listed in one error; the rest are counted


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


def load_policy(path: Path) -> Policy:
    """The policy in the YAML file `path`, validated; raises `PolicyError` listing every
    problem, or `BadInputError` when the file cannot be read."""
    try:
        data = read_bounded(path, MAX_POLICY, "the policy")
    except FileTooLargeError:
        raise PolicyError(str(path), [f"the file is larger than {MAX_POLICY >> 20} MiB"]) from None
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


def _parse_yaml(text: str, origin: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for line numbers) and data, or each way YAML fails as the
    policy's one problem."""
    try:
        root, data = safeyaml.compose(
            text, max_nodes=MAX_NODES, max_depth=MAX_DEPTH, max_aliases=MAX_ALIASES
        )
    except safeyaml.Refused as e:
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
                self._load((*path, "key", "pem"), key["pem"], _pem_key)
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
            self._load(("trust", "trustedRoot"), root, load_trusted_root)
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
                self._load((*path, "key", "pem"), key["pem"], _pem_key)

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


def _load_trust_config(path: Path) -> None:
    from attest.sign import trust

    trust(path, False)


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
            node_selectors=frozen_maps(
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
            runtime_class_details=frozen_details(
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
            resources=frozen_maps(load_time.get("resources", DEFAULT_VERIFIER_RESOURCES)),
        ),
        oms=Oms(
            signers=tuple(_oms_signer(s, base_dir) for s in trust.get("omsSigners", ())),
            namespaces=tuple(_dict(oms.get("accept")).get("namespaces", ())),
            models=tuple(_dict(oms.get("accept")).get("models", ())),
            signature_files=tuple(oms.get("signatureFiles", ("model.sig",))),
        ),
        decision_log=_optional_path(data.get("decisionLog"), base_dir),
    )


def _pem_key(pem: str) -> keys.PublicKey:
    return keys.parse_public_key(pem.encode())


def _signer(data: dict[str, Any], base_dir: Path | None) -> NamedSigner:
    if "key" in data:
        key = data["key"]
        public = (
            keys.load_public_key(_resolve(key["path"], base_dir))
            if "path" in key
            else _pem_key(key["pem"])
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


__all__ = ["PolicyError", "load_policy", "parse_policy"]
