"""Which models an inference pod serves, read from the pod or workload that admission sees.

Where a model is named (all are read, in this order; a reference found twice keeps the
first place it was found):

1. the annotation ``mlbom.dev/model`` on the pod (template) or the object, comma-separated
   references: the explicit contract; when present nothing else is read;
2. KServe: the storage URI (``storageUri`` of an InferenceService, ``spec.model.uri`` of an
   LLMInferenceService), the ``internal.serving.kserve.io/storage-initializer-sourceuri``
   annotation and the ``storage-initializer`` init container's arguments it puts on the
   pod, the ``modelcar`` sidecar whose image is the model, the ``STORAGE_URI`` variable of
   custom containers;
3. image volumes (``volumes[].image.reference``, Kubernetes 1.31+);
4. model servers' command lines: vLLM (``vllm serve MODEL``, ``--model``, ``--revision``,
   ``VLLM_ADDITIONAL_ARGS``, and what else it loads: ``--tokenizer``/``--tokenizer-revision``,
   the ``--speculative-config`` draft model, ``--lora-modules`` adapters), TGI and TEI
   (``--model-id``/``MODEL_ID``, ``--revision``/``REVISION``), KServe's huggingfaceserver (``--model_id``, ``--model_revision``) and
   SGLang (``--model-path``). A local path is traced to the volume mounted there.

Every value becomes a `ModelUse` with mlbom's canonical reference (``hf://ORG/REPO@<commit>``,
``oci://REGISTRY/REPO@sha256:…``) when it names a Hub repository or an OCI artifact, or the
raw value (``mappable=False``) when it names something mlbom cannot check (``s3://``,
``pvc://``, a folder on a volume). Parsing never touches the network, never raises on
malformed input (a wrong type counts as absent) and reads at most `MAX_ITEMS` of anything.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from attest.reference import parse
from mlbom.errors import MlbomError

ANNOTATION = "mlbom.dev/model"
KSERVE_SOURCE_URI = "internal.serving.kserve.io/storage-initializer-sourceuri"
KSERVE_MODEL_DIR = "/mnt/models"  # where KServe puts the model in the serving container
KSERVE_VOLUME = "kserve-provision-location"  # the emptyDir the initializer or modelcar fills
MAX_ITEMS = 256  # containers, arguments, variables, volumes, mounts, references
MAX_TEXT = 65_536  # longer scripts and variable values are not split into words

_WORKLOADS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}
)
# KServe's predictor: one of these holds the model server (storageUri, args, env, …)
_PREDICTORS = (
    "model", "huggingface", "sklearn", "xgboost", "lightgbm", "tensorflow", "pytorch",
    "triton", "onnx", "paddle", "pmml",
)  # fmt: skip
# predictor fields that are KServe's, not the pod's (the predictor inlines a PodSpec)
_COMPONENT = frozenset(
    {
        *_PREDICTORS, "containers", "workerSpec", "minReplicas", "maxReplicas", "scaleTarget",
        "scaleMetric", "scaleMetricType", "containerConcurrency", "timeout",
        "canaryTrafficPercent", "logger", "batcher", "labels", "annotations",
        "deploymentStrategy", "autoScaling",
    }
)  # fmt: skip
_NOT_CONTAINER = frozenset(
    {"storageUri", "storageUris", "storage", "modelFormat", "runtime", "runtimeVersion",
     "protocolVersion"}
)  # fmt: skip
# how a KServe custom resource's own storage URI is named in `ModelUse.source`
_KSERVE_CRS = {
    "InferenceService": "InferenceService storageUri",
    "LLMInferenceService": "LLMInferenceService spec.model.uri",
}
_HF_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")
_LOCAL_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_K8S_VAR = re.compile(r"\$(\$|\(([A-Za-z_][A-Za-z0-9_.-]*)\))")
_SH_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh"})
_SH_C = re.compile(r"^-[a-z]*c[a-z]*$")  # -c, -ec, -xec …
_MODELCAR = re.compile(r"^modelcar(?:-\d+)?$")  # KServe names the n-th one modelcar-n


@dataclass(frozen=True)
class ModelUse:
    """A model the pod serves, as mlbom names it, and where in the pod it was found."""

    reference: str
    pinned: bool
    source: str
    container: str | None = None
    mappable: bool = True
    hint: str | None = None


@dataclass(frozen=True)
class PodUnderReview:
    """A pod, or the pod template of a workload, with the object it came from."""

    kind: str
    metadata: dict
    spec: dict
    object_metadata: dict


# -- hostile-input helpers: a value of the wrong type is absent ---------------------------


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value[:MAX_ITEMS] if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict]:
    return [v for v in _list(value) if isinstance(v, dict)]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _word(value: Any) -> str:
    # keeps argument positions: a number in args is still one word
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int | float) else ""


# -- the pods of an object ----------------------------------------------------------------


def pods_in(obj: dict) -> list[PodUnderReview]:
    """The pods `obj` runs: a Pod itself, a workload's pod template (Deployment,
    StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob,
    LeaderWorkerSet), or the pods KServe makes for an InferenceService or an
    LLMInferenceService; [] for any other object."""
    obj = _dict(obj)
    kind = _str(obj.get("kind")) or ""
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    if kind == "Pod":
        return [PodUnderReview(kind, meta, spec, meta)]
    if kind in _WORKLOADS:
        return [_template(kind, spec.get("template"), meta)]
    if kind == "CronJob":
        job = _dict(_dict(spec.get("jobTemplate")).get("spec"))
        return [_template(kind, job.get("template"), meta)]
    if kind == "LeaderWorkerSet":
        lws = _dict(spec.get("leaderWorkerTemplate"))
        found = [
            lws[k] for k in ("leaderTemplate", "workerTemplate") if isinstance(lws.get(k), dict)
        ]
        return [_template(kind, t, meta) for t in found] or [_template(kind, None, meta)]
    if kind == "InferenceService":
        return _inference_service(meta, spec)
    if kind == "LLMInferenceService":
        return _llm_inference_service(meta, spec)
    return []


def _template(kind: str, template: Any, meta: dict) -> PodUnderReview:
    template = _dict(template)
    return PodUnderReview(kind, _dict(template.get("metadata")), _dict(template.get("spec")), meta)


def _kserve_pod_metadata(meta: dict, extra: dict, uris: list[str]) -> dict:
    """Labels and annotations as KServe puts them on the pod, with the storage URI in the
    annotation KServe's own webhook reads."""
    labels = {**_dict(meta.get("labels")), **_dict(extra.get("labels"))}
    annotations = {**_dict(meta.get("annotations")), **_dict(extra.get("annotations"))}
    if uris:
        annotations[KSERVE_SOURCE_URI] = uris[0]
    return {"labels": labels, "annotations": annotations}


def _storage_initializer(uris: list[str]) -> list[dict]:
    # further URIs (storageUris) ride on a storage-initializer, as [SRC, DEST] pairs
    if len(uris) < 2:
        return []
    args = [a for uri in uris[1:] for a in (uri, KSERVE_MODEL_DIR)]
    return [{"name": "storage-initializer", "args": args}]


def _storage_uris(component: dict) -> list[str]:
    uris = [_str(component.get("storageUri"))]
    for item in _list(component.get("storageUris")):
        uris.append(_str(item) or _str(_dict(item).get("uri")))
    return [u for u in uris if u]


def _inference_service(meta: dict, spec: dict) -> list[PodUnderReview]:
    """The predictor pod KServe makes: its PodSpec fields, the model server container
    (``spec.predictor.model`` or ``.<framework>``) and the custom containers; workers
    (multi-node) too. The storage URI goes where KServe puts it on the pod."""
    predictor = _dict(spec.get("predictor"))
    containers: list[dict] = []
    uris: list[str] = []
    for key in _PREDICTORS:
        component = predictor.get(key)
        if not isinstance(component, dict):
            continue
        uris += _storage_uris(component)
        container = {k: v for k, v in component.items() if k not in _NOT_CONTAINER}
        container.setdefault("name", "kserve-container")
        containers.append(container)
    containers += _dicts(predictor.get("containers"))
    pod = {k: v for k, v in predictor.items() if k not in _COMPONENT}
    pod["containers"] = containers
    pod["initContainers"] = _dicts(pod.get("initContainers")) + _storage_initializer(uris)
    metadata = _kserve_pod_metadata(meta, predictor, uris)
    pods = [PodUnderReview("InferenceService", metadata, pod, meta)]
    worker = predictor.get("workerSpec")
    if isinstance(worker, dict):
        worker = dict(worker)
        worker["initContainers"] = _dicts(worker.get("initContainers")) + _storage_initializer(uris)
        pods.append(PodUnderReview("InferenceService", metadata, worker, meta))
    return pods


def _llm_inference_service(meta: dict, spec: dict) -> list[PodUnderReview]:
    """The decode, prefill and worker pods of an LLMInferenceService, each with the
    model URI; one bare pod when the object names no template (KServe's defaults)."""
    uris = _storage_uris({"storageUri": _dict(spec.get("model")).get("uri")})
    prefill = _dict(spec.get("prefill"))
    templates = [spec.get("template"), spec.get("worker")]
    templates += [prefill.get("template"), prefill.get("worker")]
    metadata = _kserve_pod_metadata(meta, {}, uris)
    pods = [t for t in templates if isinstance(t, dict)] or [{}]
    return [PodUnderReview("LLMInferenceService", metadata, p, meta) for p in pods]


# -- resources and images -----------------------------------------------------------------


def _containers(spec: dict, *keys: str) -> Iterator[dict]:
    for key in keys:
        yield from _dicts(spec.get(key))


def gpu_requests(spec: dict, names: Iterable[str] | None = None) -> dict[str, int]:
    """Accelerators asked for: resource name -> total over containers and init containers
    (a container's limit, else its request), for names containing "gpu" or in `names`."""
    wanted = set(names or ())
    totals: dict[str, int] = {}
    for container in _containers(_dict(spec), "containers", "initContainers"):
        resources = _dict(container.get("resources"))
        limits, requests = _dict(resources.get("limits")), _dict(resources.get("requests"))
        for name in list({**requests, **limits})[:MAX_ITEMS]:
            if not isinstance(name, str) or ("gpu" not in name.lower() and name not in wanted):
                continue
            count = _count(limits[name] if name in limits else requests[name])
            if count:
                totals[name] = totals.get(name, 0) + count
    return totals


def _count(quantity: Any) -> int:
    # extended resources are whole numbers: 1, "1", "2"
    if isinstance(quantity, bool):
        return 0
    if isinstance(quantity, int):
        return max(quantity, 0)
    if isinstance(quantity, float) and quantity.is_integer():
        return max(int(quantity), 0)
    text = _str(quantity)
    return int(text) if text and len(text) <= 9 and text.isdecimal() else 0


def images(spec: dict) -> list[str]:
    """Every image the pod runs: containers, init containers, ephemeral containers."""
    found = (
        c.get("image")
        for c in _containers(_dict(spec), "containers", "initContainers", "ephemeralContainers")
    )
    return [i for i in found if isinstance(i, str) and i]


# -- references ---------------------------------------------------------------------------


def _unpinned_hint(repo: str, pin: str | None) -> str:
    hint = f"name the commit: hf://{repo}@<40-hex commit>"
    return hint + f" ({pin.format(repo=repo)})" if pin else hint


def _unmappable_hint(value: str) -> str:
    what = value.split("://", 1)[0] + ":// storage" if "://" in value else "this value"
    return (
        f"mlbom can check Hugging Face and OCI models only, not {what}: serve the model from "
        f"hf://ORG/REPO@<commit> or an OCI artifact by digest, or declare the model it holds "
        f"with the annotation {ANNOTATION}: hf://ORG/REPO@<commit> (or oci://REGISTRY/REPO@sha256:<digest>)"
    )


def _raw(value: str, source: str, container: str | None, hint: str | None = None) -> ModelUse:
    return ModelUse(value, False, source, container, False, hint or _unmappable_hint(value))


def _hf(
    body: str, source: str, container: str | None, revision: str | None, pin: str | None
) -> ModelUse:
    """``ORG/REPO`` with mlbom's ``@REVISION`` or KServe's ``:REVISION`` (a Hub repository
    name has neither character), or the revision given beside it (``--revision``); `pin`
    says how to name a commit where the value was found."""
    if "@" in body:
        repo, _, rev = body.partition("@")
    elif ":" in body:
        repo, _, rev = body.rpartition(":")
    else:
        repo, rev = body, ""
    rev = rev or (revision or "")
    text = f"hf://{repo}" + (f"@{rev}" if rev else "")
    try:
        pinned = parse(text).pinned
    except (MlbomError, ValueError):
        hint = "not a Hub repository id: write hf://ORG/REPO@<40-hex commit>"
        return _raw(f"hf://{body}", source, container, hint)
    hint = None if pinned else _unpinned_hint(repo, pin)
    return ModelUse(text, pinned, source, container, True, hint)


def _docker(image: str) -> str:
    """An image name as a full reference: Docker Hub's implicit registry and library/."""
    first, slash, _ = image.partition("/")
    if not slash:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{image}"


def _oci(image: str, source: str, container: str | None) -> ModelUse:
    text = "oci://" + _docker(image)
    try:
        ref = parse(text)
    except (MlbomError, ValueError):
        hint = "not an OCI reference: write REGISTRY/REPO@sha256:<digest> (lower-case repository)"
        return _raw(f"oci://{image}", source, container, hint)
    if ref.pinned:
        return ModelUse(str(ref), True, source, container)
    hint = f"name the manifest digest: {ref.name}@sha256:<digest> instead of the tag {ref.tag}"
    return ModelUse(str(ref), False, source, container, True, hint)


def _reference(
    value: str,
    source: str,
    container: str | None = None,
    revision: str | None = None,
    pin: str | None = None,
) -> ModelUse:
    """The model `value` names: a URI, a Hub repository id or an image; not a local path."""
    if value.startswith("hf://"):
        return _hf(value.removeprefix("hf://"), source, container, revision, pin)
    if value.startswith("oci://"):
        return _oci(value.removeprefix("oci://"), source, container)
    if "://" not in value and _HF_ID.match(value):
        return _hf(value, source, container, revision, pin)
    return _raw(value, source, container)


def _declared(pod: PodUnderReview) -> list[ModelUse]:
    """The references of the ``mlbom.dev/model`` annotations (pod template and object)."""
    uses = []
    for meta in (pod.metadata, pod.object_metadata):
        text = _str(_dict(_dict(meta).get("annotations")).get(ANNOTATION))
        for value in (text or "").split(",")[:MAX_ITEMS]:
            value = value.strip()
            if _LOCAL_DIGEST.match(value):  # a folder's digest, as stores file local models
                uses.append(ModelUse(value, True, f"annotation {ANNOTATION}"))
            elif value:
                uses.append(_reference(value, f"annotation {ANNOTATION}"))
    return uses


# -- command lines ------------------------------------------------------------------------


def _environment(container: dict) -> dict[str, str]:
    """The container's literal variables, each expanded with the earlier ones, as the
    kubelet does; values from secrets and config maps are unknown here."""
    env: dict[str, str] = {}
    for item in _dicts(container.get("env")):
        name, value = _str(item.get("name")), _str(item.get("value"))
        if name and value is not None and len(value) <= MAX_TEXT:
            env[name] = _expand(value, env)
    return env


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion in command, args and env; ``$$`` is a ``$``."""

    def one(m: re.Match[str]) -> str:
        if m[1] == "$":
            return "$"
        return env.get(m[2], m[0])

    return _K8S_VAR.sub(one, text)


def _words(text: str, env: dict[str, str]) -> list[str]:
    """A shell script's words, its ``$VAR``s expanded from the container's variables."""
    if len(text) > MAX_TEXT:
        return []
    text = _SH_VAR.sub(lambda m: env.get(m[1] or m[2], m[0]), text)
    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # unbalanced quotes
        words = text.split()
    return words[: MAX_ITEMS * 4]


def _argv(container: dict, env: dict[str, str]) -> tuple[list[str], bool]:
    """command + args as the process sees them, shell scripts (``sh -c``) split into words;
    and whether the container sets a command (else the image's entrypoint runs)."""
    command = [_expand(_word(w), env) for w in _list(container.get("command"))]
    args = [_expand(_word(w), env) for w in _list(container.get("args"))]
    argv = command + args
    if argv and argv[0].rsplit("/", 1)[-1] in _SHELLS:
        for i, word in enumerate(argv[1:-1], 1):
            if _SH_C.match(word):
                argv = argv[: i + 1] + _words(argv[i + 1], env) + argv[i + 2 :]
                break
    return argv, bool(command)


def _flags(words: list[str], names: set[str], underscores: bool = False) -> dict[str, str]:
    """``--name value`` and ``--name=value`` for `names`, the last one winning as with
    argparse and clap; `underscores` reads ``--max_model_len`` as ``--max-model-len``
    (vLLM's parser does)."""
    found: dict[str, str] = {}
    for i, word in enumerate(words):
        if not word.startswith("--"):
            continue
        name, eq, value = word.partition("=")
        if underscores:
            name = name.replace("_", "-")
        if name not in names:
            continue
        if eq:
            found[name] = value
        elif i + 1 < len(words):
            found[name] = words[i + 1]
    return found


def _base(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _image_repository(image: str) -> str:
    # the repository path without registry host, tag or digest: vllm/vllm-openai
    path = image.split("@", 1)[0]
    first, slash, rest = path.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        path = rest
    return path.rsplit(":", 1)[0].lower() if ":" in path.rsplit("/", 1)[-1] else path.lower()


@dataclass(frozen=True)
class _Named:
    """A model a server's command line names: the value, how, and a revision given beside it."""

    value: str
    how: str
    revision: str | None = None
    pin: str | None = None  # how to name the commit there


_VLLM_FLAGS = {
    "--model", "--revision", "--tokenizer", "--tokenizer-revision", "--speculative-config",
    "--speculative-model",
}  # fmt: skip
_LORA_PIN = (
    "vLLM cannot pin a LoRA adapter from the Hub: serve it from a volume or an OCI image, or "
    f"list every model with its commit in the annotation {ANNOTATION}"
)


def _vllm(argv: list[str], had_command: bool, image: str, env: dict[str, str]) -> list[_Named]:
    """The served model, then what else vLLM loads: its tokenizer when named apart, the draft
    model of speculative decoding, LoRA adapters (``--lora-modules name=path`` or JSON)."""
    extra_text = env.get("VLLM_ADDITIONAL_ARGS")
    extra = _words(extra_text, env) if extra_text is not None else []
    if not had_command and "vllm" in _image_repository(image):
        argv = ["vllm", "serve", *argv]  # the vllm/vllm-openai image's entrypoint
    serve = next(
        (i for i, w in enumerate(argv[:-1]) if _base(w) == "vllm" and argv[i + 1] == "serve"),
        None,
    )
    api = any(w.startswith("vllm.entrypoints") for w in argv)
    if serve is None and not api and extra_text is None:
        return []
    words = argv[serve + 2 :] if serve is not None else argv
    flags = _flags(words, _VLLM_FLAGS, underscores=True)
    more = _flags(extra, _VLLM_FLAGS, underscores=True)
    flags |= more  # VLLM_ADDITIONAL_ARGS come last on the command line
    revision = flags.get("--revision")
    pin = "vLLM: --revision <commit>"
    named: list[_Named] = []
    if serve is not None and len(argv) > serve + 2 and not argv[serve + 2].startswith("-"):
        named.append(_Named(argv[serve + 2], "vllm serve argument", revision, pin))
    elif "--model" in flags:
        how = "VLLM_ADDITIONAL_ARGS --model" if "--model" in more else "--model"
        named.append(_Named(flags["--model"], how, revision, pin))
    if "--tokenizer" in flags:  # at the model's revision unless it names its own, as vLLM does
        revision = flags.get("--tokenizer-revision") or revision
        named.append(_Named(flags["--tokenizer"], "--tokenizer", revision, "vLLM: --tokenizer-revision <commit>"))  # fmt: skip
    if "--speculative-model" in flags:  # vLLM before 0.8
        named.append(_Named(flags["--speculative-model"], "--speculative-model"))
    speculative = _json_object(flags.get("--speculative-config"))
    if isinstance(speculative.get("model"), str):
        pin = 'vLLM: "revision": "<commit>" in --speculative-config'
        named.append(_Named(speculative["model"], "--speculative-config model", _str(speculative.get("revision")), pin))  # fmt: skip
    for adapter in _lora_modules([*words, *extra]):
        named.append(_Named(adapter, "--lora-modules", None, _LORA_PIN))
    return named


def _json_object(text: str | None) -> dict:
    try:
        value = msgspec.json.decode(text) if text else None
    except (msgspec.DecodeError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _lora_modules(words: list[str]) -> list[str]:
    """The adapters' paths after each ``--lora-modules``: ``name=path`` words or JSON objects
    (``{"name": …, "path": …}``), up to the next flag."""
    paths = []
    for i, word in enumerate(words):
        name, eq, value = word.partition("=")
        if name.replace("_", "-") != "--lora-modules":
            continue
        for module in (
            [value] if eq else itertools.takewhile(lambda w: not w.startswith("-"), words[i + 1 :])
        ):
            if module.lstrip().startswith("{"):
                path = _json_object(module).get("path")
            else:
                path = module.partition("=")[2]
            if isinstance(path, str) and path:
                paths.append(path)
    return paths[:MAX_ITEMS]


def _tgi(argv: list[str], image: str, env: dict[str, str]) -> list[_Named]:
    """TGI's launcher and TEI's router: a flag, else its variable (clap's ``env``); the
    SageMaker images' HF_MODEL_ID and HF_MODEL_REVISION feed the same."""
    repo = _image_repository(image)
    launcher = any(_base(w) in ("text-generation-launcher", "text-embeddings-router") for w in argv)
    image_is = "text-generation-inference" in repo or "text-embeddings-inference" in repo
    if not (launcher or image_is):
        return []
    flags = _flags(argv, {"--model-id", "--revision"})
    revision = flags.get("--revision") or env.get("REVISION") or env.get("HF_MODEL_REVISION")
    pin = "TGI: --revision <commit> or the variable REVISION"
    if "--model-id" in flags:
        return [_Named(flags["--model-id"], "--model-id", revision, pin)]
    for name in ("MODEL_ID", "HF_MODEL_ID"):
        if env.get(name):
            return [_Named(env[name], f"env {name}", revision, pin)]
    return []


def _huggingfaceserver(argv: list[str], image: str, name: str) -> list[_Named]:
    """KServe's huggingfaceserver: ``--model_id`` from the Hub, else ``--model_dir``."""
    if not (
        name == "kserve-container"
        or "huggingfaceserver" in _image_repository(image)
        or any("huggingfaceserver" in w for w in argv)
    ):
        return []
    flags = _flags(argv, {"--model_id", "--model_revision", "--model_dir"})
    if "--model_id" in flags:
        pin = "KServe huggingfaceserver: --model_revision=<commit>"
        return [_Named(flags["--model_id"], "--model_id", flags.get("--model_revision"), pin)]
    if "--model_dir" in flags:
        return [_Named(flags["--model_dir"], "--model_dir")]
    return []


def _sglang(argv: list[str]) -> list[_Named]:
    if not any(w.startswith("sglang") for w in argv):
        return []
    flags = _flags(argv, {"--model-path", "--model", "--revision"}, underscores=True)
    for flag in ("--model-path", "--model"):
        if flag in flags:
            return [
                _Named(flags[flag], flag, flags.get("--revision"), "SGLang: --revision <commit>")
            ]
    return []


# -- where a local path comes from --------------------------------------------------------


def _is_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~", "file://"))


class _Pod:
    """What the path tracing needs: the pod's volumes and whether KServe fills /mnt/models."""

    def __init__(self, spec: dict, kserve: bool) -> None:
        self.volumes = {
            v["name"]: v for v in _dicts(spec.get("volumes")) if isinstance(v.get("name"), str)
        }
        self.kserve = kserve

    def trace(self, path: str, container: dict, source: str, name: str | None) -> ModelUse | None:
        """The model behind a local path: the image volume mounted there, else the raw
        path (a PVC as pvc://CLAIM/PATH); None when KServe's storage URI already names it."""
        path = path.removeprefix("file://")
        mount, rest, longest = None, "", -1
        for m in _dicts(container.get("volumeMounts")):
            at = _str(m.get("mountPath"))
            if not at or not isinstance(m.get("name"), str):
                continue
            at = at.rstrip("/") or "/"
            inside = path == at or path.startswith(at if at == "/" else at + "/")
            if inside and len(at) > longest:  # the innermost mount holds the path
                mount, rest, longest = m, path[len(at) :].strip("/"), len(at)
        if self.kserve and (
            (mount is not None and mount["name"] == KSERVE_VOLUME)
            or path == KSERVE_MODEL_DIR
            or path.startswith(KSERVE_MODEL_DIR + "/")
        ):
            return None
        where = f"{source} {path}"
        if mount is None:
            return _raw(path, where, name, _path_hint(path, "no volume is mounted there"))
        volume = _dict(self.volumes.get(mount["name"]))
        image = _str(_dict(volume.get("image")).get("reference"))
        if image:
            return _oci(image, f"{where} (image volume {mount['name']})", name)
        claim = _str(_dict(volume.get("persistentVolumeClaim")).get("claimName"))
        if claim:
            sub = "/".join(p for p in (_str(mount.get("subPath")) or "", rest) if p)
            return _raw(f"pvc://{claim}" + (f"/{sub}" if sub else ""), where, name)
        kind = next((k for k in volume if k != "name"), "unknown")
        return _raw(path, where, name, _path_hint(path, f"volume {mount['name']} is {kind}"))


def _path_hint(path: str, why: str) -> str:
    return (
        f"mlbom cannot tell which model is in {path} ({why}): mount it as an image volume "
        f"pinned by digest (volumes[].image.reference: REGISTRY/REPO@sha256:<digest>), serve "
        f"it from hf://ORG/REPO@<commit>, or declare it with the annotation "
        f"{ANNOTATION}: hf://ORG/REPO@<commit>"
    )


# -- the models of a pod ------------------------------------------------------------------


def _kserve(pod: PodUnderReview, spec: dict) -> Iterator[ModelUse]:
    """What KServe serves: the source-URI annotation, the storage initializer's sources,
    modelcar sidecars, custom containers' STORAGE_URI."""
    crd = _KSERVE_CRS.get(pod.kind)
    uri = _str(_dict(_dict(pod.metadata).get("annotations")).get(KSERVE_SOURCE_URI))
    if uri:
        yield _storage(uri, crd or f"annotation {KSERVE_SOURCE_URI}", None)
    for c in _containers(spec, "initContainers"):
        if c.get("name") == "storage-initializer":
            args = [_word(a) for a in _list(c.get("args"))]
            for src in args[::2]:  # [SRC, DEST, SRC, DEST, …]
                if "://" in src:
                    yield _storage(src, crd or "initContainer storage-initializer: argument", None)
    for c in _containers(spec, "containers"):
        name, image = _str(c.get("name")), _str(c.get("image"))
        if name and _MODELCAR.match(name) and image:
            yield _oci(image, f"container {name}: image", name)
        uri = _environment(c).get("STORAGE_URI")
        if uri and "://" in uri:
            yield _storage(uri, f"container {name}: env STORAGE_URI", name)


def _storage(uri: str, source: str, container: str | None) -> ModelUse:
    # a storage URI is a URI: a bare "org/model" here is not a Hub id
    if uri.startswith(("hf://", "oci://")):
        return _reference(uri, source, container, pin="KServe: hf://{repo}:<commit>")
    return _raw(uri, source, container)


def _image_volumes(spec: dict) -> Iterator[ModelUse]:
    for volume in _dicts(spec.get("volumes")):
        image = _str(_dict(volume.get("image")).get("reference"))
        if image:
            yield _oci(image, f"volume {_str(volume.get('name'))}: image.reference", None)


def _served(container: dict, pod: _Pod) -> Iterator[ModelUse]:
    name = _str(container.get("name"))
    image = _str(container.get("image")) or ""
    env = _environment(container)
    argv, had_command = _argv(container, env)
    named = (
        _vllm(argv, had_command, image, env)
        or _tgi(argv, image, env)
        or _huggingfaceserver(argv, image, name or "")
        or _sglang(argv)
    )
    for n in named:
        value = n.value.strip()
        source = f"container {name}: {n.how}"
        if not value:
            continue
        if _is_path(value):
            use = pod.trace(value, container, source, name)
            if use is not None:
                yield use
        else:
            yield _reference(value, source, name, n.revision, n.pin)


def models_in(pod: PodUnderReview) -> list[ModelUse]:
    """The models `pod` serves, one entry per reference. The ``mlbom.dev/model``
    annotation, when present, is the whole answer."""
    found: dict[str, ModelUse] = {}
    for use in _declared(pod):
        found.setdefault(use.reference, use)
    if found:
        return list(found.values())
    spec = _dict(pod.spec)
    for use in _kserve(pod, spec):
        found.setdefault(use.reference, use)
    tracer = _Pod(spec, kserve=bool(found))
    for use in _image_volumes(spec):
        found.setdefault(use.reference, use)
    for container in _containers(spec, "containers", "initContainers", "ephemeralContainers"):
        for use in _served(container, tracer):
            found.setdefault(use.reference, use)
    return list(found.values())
