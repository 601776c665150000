"""The pods an object runs, and the models a custom resource names itself.

Pods and workloads give their pod (template). Serving custom resources are reviewed
themselves, so that a resource naming an unattested model is refused before its
controller renders pods ("shift left"): KServe's InferenceService and
LLMInferenceService, llm-d's ModelService, NVIDIA's NIMService and NIMCache, KubeAI's
Model, KubeRay's RayService, OME's InferenceService and (Cluster)BaseModel. Their
controllers hand the resource's model to the containers they render; the rendered pods are
reviewed again when they are created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from admission.discovery.findings import ModelUse, Problem
from admission.discovery.references import oci, raw, reference
from admission.discovery.untrusted import MAX_ITEMS, MAX_TEXT, as_dict, as_str
from mlbom import safeyaml

KSERVE_SOURCE_URI = "internal.serving.kserve.io/storage-initializer-sourceuri"
KSERVE_MODEL_DIR = "/mnt/models"  # where KServe puts the model in the serving container
KSERVE_VOLUME = "kserve-provision-location"  # the emptyDir the initializer or modelcar fills
CONTROLLED_MODEL = KSERVE_MODEL_DIR  # where a controller puts the object's model for its server

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


@dataclass(frozen=True)
class PodUnderReview:
    """A pod, or the pod template of a workload or custom resource, with the object it came
    from. `models` are named by the object itself; `controlled` marks a template a
    controller completes (it hands the object's model to containers that name none)."""

    kind: str
    metadata: dict[str, Any]
    spec: dict[str, Any]
    object_metadata: dict[str, Any]
    models: tuple[ModelUse, ...] = ()
    problems: tuple[Problem, ...] = ()
    controlled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def pods_in(obj: Any) -> list[PodUnderReview]:
    """The pods `obj` runs (a Pod itself, a workload's template, a serving resource's
    pods); [] for an object that runs none and names no model."""
    obj = as_dict(obj)
    kind = as_str(obj.get("kind")) or ""
    group = (as_str(obj.get("apiVersion")) or "").partition("/")[0]
    meta = as_dict(obj.get("metadata"))
    spec = as_dict(obj.get("spec"))
    if kind == "Pod" and group in ("", "v1"):
        return [PodUnderReview(kind, meta, spec, meta)]
    if kind == "EphemeralContainers":  # the alpha API of Kubernetes 1.16-1.21: no pod in sight
        problem = Problem("ambiguous", "the legacy EphemeralContainers API shows new containers without their pod: mlbom cannot account for them; use pods/ephemeralcontainers of Kubernetes 1.22+")  # fmt: skip
        return [PodUnderReview(kind, meta, {}, meta, problems=(problem,))]
    if kind in _WORKLOADS:
        return [_template(kind, spec.get("template"), meta)]
    if kind == "CronJob":
        job = as_dict(as_dict(spec.get("jobTemplate")).get("spec"))
        return [_template(kind, job.get("template"), meta)]
    if kind == "LeaderWorkerSet":
        lws = as_dict(spec.get("leaderWorkerTemplate"))
        found = [
            lws[k] for k in ("leaderTemplate", "workerTemplate") if isinstance(lws.get(k), dict)
        ]
        return [_template(kind, t, meta) for t in found] or [_template(kind, None, meta)]
    if kind == "InferenceService" and group == "ome.io":
        return _ome_inference_service(meta, spec)
    if kind == "InferenceService":
        return _inference_service(meta, spec)
    if kind in ("LLMInferenceService", "LLMInferenceServiceConfig"):
        return _llm_inference_service(kind, meta, spec)
    if kind == "ModelService":
        return _model_service(meta, spec)
    if kind in ("NIMService", "NIMCache"):
        return _nim(kind, meta, spec)
    if kind == "Model" and group == "kubeai.org":
        return _kubeai(meta, spec)
    if kind == "RayService":
        return _ray_service(meta, spec)
    if kind in ("BaseModel", "ClusterBaseModel") and group == "ome.io":
        storage = as_dict(spec.get("storage"))
        uri = as_str(storage.get("storageUri"))
        models = (_storage(uri, f"{kind} spec.storage.storageUri", None),) if uri else ()
        problems = () if uri else (Problem("no-model", f"{kind} names no spec.storage.storageUri"),)
        return [PodUnderReview(kind, {}, {}, meta, models, problems)]
    return []


def _template(kind: str, template: Any, meta: dict[str, Any], **more: Any) -> PodUnderReview:
    template = as_dict(template)
    return PodUnderReview(
        kind, as_dict(template.get("metadata")), as_dict(template.get("spec")), meta, **more
    )


def _storage(uri: str, source: str, container: str | None) -> ModelUse:
    """A storage URI: ``hf://ORG/REPO:REVISION`` (KServe's form), ``oci://``, or storage
    mlbom cannot check. A bare ``org/model`` here is not a Hub id."""
    return reference(uri, source, container, pin="KServe: hf://{repo}:<commit>", uri=True)


# -- KServe ---------------------------------------------------------------------------------


def _kserve_pod_metadata(
    meta: dict[str, Any], extra: dict[str, Any], uris: list[str]
) -> dict[str, Any]:
    """Labels and annotations as KServe puts them on the pod, with the storage URI in the
    annotation KServe's own webhook reads."""
    labels = {**as_dict(meta.get("labels")), **as_dict(extra.get("labels"))}
    annotations = {**as_dict(meta.get("annotations")), **as_dict(extra.get("annotations"))}
    if uris:
        annotations[KSERVE_SOURCE_URI] = uris[0]
    return {"labels": labels, "annotations": annotations}


def _storage_initializer(uris: list[str]) -> list[dict[str, Any]]:
    """The init container KServe adds: [SRC, DEST] pairs into the provision volume."""
    if not uris:
        return []
    args = [a for uri in uris for a in (uri, KSERVE_MODEL_DIR)]
    mount = {"name": KSERVE_VOLUME, "mountPath": KSERVE_MODEL_DIR}
    return [{"name": "storage-initializer", "image": "kserve/storage-initializer",
             "args": args, "volumeMounts": [mount]}]  # fmt: skip


def _storage_uris(component: dict[str, Any]) -> list[str]:
    uris = [as_str(component.get("storageUri"))]
    for item in (
        component.get("storageUris") or [] if isinstance(component.get("storageUris"), list) else []
    ):
        uris.append(as_str(item) or as_str(as_dict(item).get("uri")))
    return [u for u in uris if u]


def _kserve_pod(pod: dict[str, Any], uris: list[str], modelcar: bool) -> dict[str, Any]:
    """The pod KServe renders: the storage initializer (or the modelcar) fills
    /mnt/models, which every container reads."""
    pod = dict(pod)
    mount = {"name": KSERVE_VOLUME, "mountPath": KSERVE_MODEL_DIR, "readOnly": True}
    containers = []
    for c in pod.get("containers") or []:
        c = dict(as_dict(c))
        c["volumeMounts"] = (
            [*(c.get("volumeMounts") or []), mount] if uris else c.get("volumeMounts", [])
        )
        containers.append(c)
    pod["containers"] = containers
    if uris and modelcar:
        image = uris[0].removeprefix("oci://")
        containers.append(
            {"name": "modelcar", "image": image, "volumeMounts": [dict(mount, readOnly=False)]}
        )
    else:
        pod["initContainers"] = [*(pod.get("initContainers") or []), *_storage_initializer(uris)]
    pod["volumes"] = [*(pod.get("volumes") or []), {"name": KSERVE_VOLUME, "emptyDir": {}}] if uris else pod.get("volumes", [])  # fmt: skip
    return pod


def _inference_service(meta: dict[str, Any], spec: dict[str, Any]) -> list[PodUnderReview]:
    """The predictor pod KServe makes: its PodSpec fields, the model server container
    (``spec.predictor.model`` or ``.<framework>``) and the custom containers; workers
    (multi-node) too."""
    predictor = as_dict(spec.get("predictor"))
    containers: list[dict[str, Any]] = []
    uris: list[str] = []
    for key in _PREDICTORS:
        component = predictor.get(key)
        if not isinstance(component, dict):
            continue
        uris += _storage_uris(component)
        container = {k: v for k, v in component.items() if k not in _NOT_CONTAINER}
        container.setdefault("name", "kserve-container")
        fmt = as_str(as_dict(component.get("modelFormat")).get("name")) or key
        if fmt == "huggingface" and not container.get("image") and not container.get("command"):
            # the runtime KServe picks: its own arguments come before the predictor's
            container["image"] = "kserve/huggingfaceserver"
            own = [f"--model_name={as_str(meta.get('name')) or 'model'}"]
            own += [f"--model_dir={KSERVE_MODEL_DIR}"] if _storage_uris(component) else []
            args = container.get("args")
            container["args"] = own + (list(args) if isinstance(args, list) else [])
        containers.append(container)
    custom = predictor.get("containers")
    for container in custom[:MAX_ITEMS] if isinstance(custom, list) else []:
        if isinstance(container, dict):
            containers.append(container)
            for variable in container.get("env") or [] if isinstance(container.get("env"), list) else []:  # fmt: skip
                if as_dict(variable).get("name") == "STORAGE_URI" and as_str(as_dict(variable).get("value")):  # fmt: skip
                    uris.append(as_dict(variable)["value"])  # KServe downloads it for the container
    pod = {k: v for k, v in predictor.items() if k not in _COMPONENT}
    pod["containers"] = containers
    modelcar = bool(uris) and uris[0].startswith("oci://")
    metadata = _kserve_pod_metadata(meta, predictor, uris)
    models = tuple(_storage(u, "InferenceService storageUri", None) for u in uris)
    pods = [PodUnderReview("InferenceService", metadata, _kserve_pod(pod, uris, modelcar), meta, models, controlled=True)]  # fmt: skip
    worker = predictor.get("workerSpec")
    if isinstance(worker, dict):
        pods.append(PodUnderReview("InferenceService", metadata, _kserve_pod(worker, uris, modelcar), meta, models, controlled=True))  # fmt: skip
    for component in ("transformer", "explainer"):  # deployments of their own, no storage URI
        part = as_dict(spec.get(component))
        if part:
            pod = {k: v for k, v in part.items() if k not in _COMPONENT or k == "containers"}
            pods.append(PodUnderReview("InferenceService", _kserve_pod_metadata(meta, part, []), pod, meta))  # fmt: skip
    return pods


def _llm_inference_service(
    kind: str, meta: dict[str, Any], spec: dict[str, Any]
) -> list[PodUnderReview]:
    """The decode, prefill and worker pods of an LLMInferenceService, each with the
    model URI; one bare pod when the object names no template (KServe's defaults)."""
    model = as_dict(spec.get("model"))
    uri = as_str(model.get("uri"))
    uris = [uri] if uri else []
    named = [(u, f"{kind} spec.model.uri") for u in uris]
    adapters = as_dict(model.get("lora")).get("adapters")
    for adapter in adapters[:MAX_ITEMS] if isinstance(adapters, list) else []:
        if adapter_uri := as_str(as_dict(adapter).get("uri")):
            named.append((adapter_uri, f"{kind} spec.model.lora.adapters[].uri"))
    prefill = as_dict(spec.get("prefill"))
    templates = [spec.get("template"), spec.get("worker"), prefill.get("template"), prefill.get("worker")]  # fmt: skip
    metadata = _kserve_pod_metadata(meta, {}, uris)
    models = tuple(_storage(u, where, None) for u, where in named)
    needs = kind == "LLMInferenceService"  # a config may leave the model to what uses it
    problems = () if uris or not needs else (Problem("no-model", "LLMInferenceService names no spec.model.uri"),)  # fmt: skip
    pods = [_llm_template(t) for t in templates if isinstance(t, dict)] or [{}]
    return [PodUnderReview(kind, metadata, p, meta, models, problems, True) for p in pods]


def _llm_template(template: dict[str, Any]) -> dict[str, Any]:
    """KServe's default for the main container: vllm serve /mnt/models, followed by the
    words of VLLM_ADDITIONAL_ARGS (its config expands them in a shell line)."""
    containers = []
    found = template.get("containers")
    for c in found[:MAX_ITEMS] if isinstance(found, list) else []:
        c = dict(as_dict(c))
        if c.get("name") == "main" and not c.get("command") and not c.get("image"):
            c["command"] = ["vllm", "serve", KSERVE_MODEL_DIR]
        containers.append(c)
    return {**template, "containers": containers}


# -- other serving resources --------------------------------------------------------------


def _model_service(meta: dict[str, Any], spec: dict[str, Any]) -> list[PodUnderReview]:
    """llm-d's ModelService: ``spec.modelArtifacts.uri`` (hf://, pvc://, oci://) served by
    its decode and prefill pods."""
    uri = as_str(as_dict(spec.get("modelArtifacts")).get("uri"))
    models = (_model_service_uri(uri),) if uri else ()
    problems = (
        () if uri else (Problem("no-model", "ModelService names no spec.modelArtifacts.uri"),)
    )
    templates = [as_dict(spec.get(role)).get("containers") for role in ("decode", "prefill")]
    pods = [
        PodUnderReview(
            "ModelService",
            {},
            {"containers": [_model_service_container(x) for x in c[:MAX_ITEMS]]},
            meta,
            models,
            problems,
            True,
        )
        for c in templates
        if isinstance(c, list)
    ]
    return pods or [PodUnderReview("ModelService", {}, {}, meta, models, problems, True)]


def _model_service_container(container: Any) -> dict[str, Any]:
    """A ModelService container as its controller renders it: ``modelCommand: vllmServe``
    (or none) runs ``vllm serve`` on the model it downloads, and the template placeholders
    (``{{ .HFModelName }}``, ``/model-cache/{{ .ModelPath }}``) stand for that model."""
    c = dict(as_dict(container))
    given = c.get("args")
    args = [CONTROLLED_MODEL if isinstance(a, str) and "{{" in a else a for a in (given if isinstance(given, list) else [])]  # fmt: skip
    if not c.get("command") and c.get("modelCommand", "vllmServe") == "vllmServe":
        c["command"] = ["vllm", "serve"]
        if CONTROLLED_MODEL not in args:
            args = [CONTROLLED_MODEL, *args]
    c["args"] = args
    return c


def _model_service_uri(uri: str) -> ModelUse:
    source = "ModelService spec.modelArtifacts.uri"
    if uri.startswith("hf://"):
        return reference(uri, source, None, pin="llm-d: hf://ORG/REPO@<commit>")
    return _storage(uri, source, None)


def _nim(kind: str, meta: dict[str, Any], spec: dict[str, Any]) -> list[PodUnderReview]:
    """NIMService runs an NGC NIM image (its model is the image's, fetched from NGC or a
    NIMCache); NIMCache fills a volume from NGC or the Hub."""
    models: list[ModelUse] = []
    source = as_dict(spec.get("source"))
    hf = as_dict(source.get("hf"))
    if kind == "NIMCache" and hf:
        repo = f"{as_str(hf.get('namespace')) or ''}/{as_str(hf.get('modelName')) or ''}".strip("/")
        revision = as_str(hf.get("revision"))
        models.append(reference(repo, "NIMCache spec.source.hf", None, revision, "NIMCache: spec.source.hf.revision: <commit>"))  # fmt: skip
        endpoint = (as_str(hf.get("endpoint")) or "https://huggingface.co").rstrip("/")
        if endpoint != "https://huggingface.co":
            models.append(raw(f"{endpoint}/{repo}", "NIMCache spec.source.hf.endpoint", None))
    elif kind == "NIMCache":
        what = "ngc" if "ngc" in source else next(iter(source), "unknown")
        models.append(raw(f"{what}://(NIMCache {as_str(meta.get('name'))})", f"NIMCache spec.source.{what}", None))  # fmt: skip
    else:
        image = as_dict(spec.get("image"))
        repository, tag = as_str(image.get("repository")), as_str(image.get("tag"))
        where = f"{repository}:{tag}" if tag else repository
        cache = as_str(as_dict(as_dict(spec.get("storage")).get("nimCache")).get("name"))
        via = f"NIMCache {cache}" if cache else "NGC at start-up"
        models.append(raw(f"ngc://{where}", f"NIMService spec.image (its model comes from {via})", None))  # fmt: skip
    return [PodUnderReview(kind, {}, {}, meta, tuple(models), (), True)]


def _kubeai(meta: dict[str, Any], spec: dict[str, Any]) -> list[PodUnderReview]:
    """KubeAI's Model: ``spec.url`` (hf://, ollama://, s3://, gs://, pvc://) and its
    adapters' URLs."""
    models = []
    url = as_str(spec.get("url"))
    if url:
        models.append(_kubeai_url(url, "Model spec.url"))
    adapters = spec.get("adapters")
    for adapter in adapters[:MAX_ITEMS] if isinstance(adapters, list) else []:
        if adapter_url := as_str(as_dict(adapter).get("url")):
            models.append(_kubeai_url(adapter_url, "Model spec.adapters[].url"))
    problems = () if url else (Problem("no-model", "the KubeAI Model names no spec.url"),)
    return [PodUnderReview("Model", {}, {}, meta, tuple(models), problems, True)]


def _kubeai_url(url: str, source: str) -> ModelUse:
    if url.startswith("hf://"):
        # KubeAI has no revision field: hf://ORG/REPO is the main branch
        return reference(url, source, None, pin="KubeAI cannot pin a Hub commit: serve the model from an OCI image by digest")  # fmt: skip
    return _storage(url, source, None)


def _ray_service(meta: dict[str, Any], spec: dict[str, Any]) -> list[PodUnderReview]:
    """KubeRay's RayService: the Ray Serve applications of ``serveConfigV2`` (Ray Serve
    LLM's ``llm_configs``), run by the head and worker pods. The configs are read with the
    policy (`PodUnderReview.extra["ray"]`: application, config, its runtime_env variables)."""
    problems: list[Problem] = []
    configs: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    text = as_str(spec.get("serveConfigV2"))
    config: Any = None
    if text is not None and len(text) > MAX_TEXT:
        problems.append(Problem("scan-limit", f"serveConfigV2 is longer than {MAX_TEXT} characters, more than mlbom reads: shorten it"))  # fmt: skip
    elif text:
        try:
            config = safeyaml.load(text)
        except Exception:
            problems.append(Problem("config-file", "serveConfigV2 is not YAML mlbom can read"))
    applications = as_dict(config).get("applications")
    for app in applications[:MAX_ITEMS] if isinstance(applications, list) else []:
        app = as_dict(app)
        name = as_str(app.get("name")) or "?"
        env_vars = as_dict(as_dict(app.get("runtime_env")).get("env_vars"))
        args = as_dict(app.get("args"))
        found = args.get("llm_configs")
        llm = found if isinstance(found, list) else [args.get("llm_config")] if args.get("llm_config") else []  # fmt: skip
        configs += [(name, as_dict(c), env_vars) for c in llm[:MAX_ITEMS]]
        if not llm:
            problems.append(Problem(
                "no-model",
                f"the Ray Serve application {name} runs {as_str(app.get('import_path')) or 'code'}, "
                f"which loads models mlbom cannot tell: use Ray Serve LLM's llm_configs with "
                f"model_loading_config.model_source ORG/REPO and engine_kwargs.revision <commit>, "
                f"or name the models in the annotation mlbom.dev/model",
            ))  # fmt: skip
    if not text:
        problems.append(Problem("no-model", "the RayService has no serveConfigV2: mlbom cannot tell what it serves"))  # fmt: skip
    cluster = as_dict(spec.get("rayClusterConfig"))
    workers = cluster.get("workerGroupSpecs")
    groups = [as_dict(cluster.get("headGroupSpec"))]
    groups += [as_dict(g) for g in (workers[:MAX_ITEMS] if isinstance(workers, list) else [])]
    return [
        _template(
            "RayService",
            g.get("template"),
            meta,
            problems=tuple(problems),
            controlled=True,
            extra={"ray": configs},
        )
        for g in groups
    ]


def _ome_inference_service(meta: dict[str, Any], spec: dict[str, Any]) -> list[PodUnderReview]:
    """OME's InferenceService names its model by a (Cluster)BaseModel, reviewed on its own."""
    name = as_str(as_dict(spec.get("model")).get("name"))
    use = raw(f"ome-basemodel://{name}", "ome.io InferenceService spec.model.name", None,
              "OME's model is named by its (Cluster)BaseModel, which the webhook reviews itself; "
              "declare the model with the annotation mlbom.dev/model: hf://ORG/REPO@<commit>")  # fmt: skip
    return [PodUnderReview("InferenceService", {}, {}, meta, (use,), (), True)]


def image_volume(volume: dict[str, Any], source: str, container: str | None) -> ModelUse | None:
    image = as_str(as_dict(volume.get("image")).get("reference"))
    return oci(image, source, container) if image else None
