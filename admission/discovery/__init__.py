"""Which models a pod loads, container by container, read from what admission sees.

Every container, init container (sidecar or not) and ephemeral container is accounted for:

- *inference*: it runs a serving runtime mlbom recognises (`runtimes`), runs an image the
  policy names, or asks for an accelerator (an extended resource the policy names, or a
  DRA resource claim, whose device class the webhook cannot see);
- *loader*: it puts a model where a server reads it (``hf download``, object-store and git
  copies, ``ollama pull``, KServe's storage initializer, a modelcar);
- *other*: none of these.

Each inference or loader container must have every model it loads identified, and each
model is checked on its own: one verified model never covers another container or another
model of the same container. A local path is traced to the volume behind it: an image
volume is an OCI model, a volume a loader fills holds the loader's models; a path that
cannot be traced (a PVC, a folder baked into the image) may be named by the
``mlbom.dev/model`` annotation, and is then taken on the annotation's word (load-time
verification binds it). Where discovery finds a model itself, an annotation naming another
one is a denial, not an override.

Discovery never touches the network and never raises on malformed input; what it cannot
account for (a limit reached, an argument read two ways, a shell line it cannot read, a
value it cannot see) is a `Problem`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from admission.discovery import runtimes
from admission.discovery.commandline import CommandLine, read
from admission.discovery.environment import Env
from admission.discovery.findings import ContainerAccount, ModelUse, PodAccount, Problem
from admission.discovery.objects import (
    KSERVE_MODEL_DIR,
    KSERVE_SOURCE_URI,
    PodUnderReview,
    image_volume,
    pods_in,
)
from admission.discovery.references import ANNOTATION, is_path, oci, raw, reference, same_model
from admission.discovery.runtimes import Reading, Sources
from admission.discovery.untrusted import MAX_ITEMS, MAX_TEXT, Scan, as_dict, as_str

__all__ = [
    "ANNOTATION", "KSERVE_SOURCE_URI", "MAX_ITEMS", "MAX_TEXT", "ContainerAccount",
    "ModelUse", "PodAccount", "PodUnderReview", "Problem", "Sources", "account",
    "gpu_requests", "images", "models_in", "pods_in",
]  # fmt: skip

_FIELDS = ("initContainers", "containers", "ephemeralContainers")
_LOCAL_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_MODELCAR = re.compile(r"^modelcar(?:-init)?(?:-\d+)?$")  # KServe names the n-th one modelcar-n
# IsInference(image, accelerators) -> why the container is an inference container, or None
Selector = Callable[[str, dict[str, int]], "str | None"]


def _no_selector(image: str, gpus: dict[str, int]) -> str | None:
    return f"it requests {', '.join(gpus)}" if gpus else None


# -- resources and images -----------------------------------------------------------------


def _containers(spec: dict[str, Any], *keys: str) -> Iterator[dict[str, Any]]:
    for key in keys:
        value = spec.get(key)
        if isinstance(value, list):
            yield from (c for c in value[:MAX_ITEMS] if isinstance(c, dict))


def container_gpus(container: dict[str, Any], names: Iterable[str] | None = ()) -> dict[str, int]:
    """Accelerators one container asks for: a limit, else a request, for resource names
    containing "gpu" or in `names`; with `names` None, every extended resource."""
    wanted = set(names or ())
    totals: dict[str, int] = {}
    resources = as_dict(container.get("resources"))
    limits, requests = as_dict(resources.get("limits")), as_dict(resources.get("requests"))
    for name in list({**requests, **limits})[:MAX_ITEMS]:
        if not isinstance(name, str):
            continue
        if names is None:
            if "/" not in name or name.startswith(("hugepages-", "requests.")):
                continue
        elif "gpu" not in name.lower() and name not in wanted:
            continue
        count = _count(limits[name] if name in limits else requests[name])
        if count:
            totals[name] = totals.get(name, 0) + count
    return totals


def gpu_requests(spec: dict[str, Any], names: Iterable[str] | None = None) -> dict[str, int]:
    """Accelerators asked for: resource name -> total over containers and init containers."""
    totals: dict[str, int] = {}
    for container in _containers(as_dict(spec), "containers", "initContainers"):
        for name, count in container_gpus(container, names or ()).items():
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
    text = as_str(quantity)
    return int(text) if text and len(text) <= 9 and text.isdecimal() else 0


def images(spec: dict[str, Any]) -> list[str]:
    """Every image the pod runs: containers, init containers, ephemeral containers."""
    found = (c.get("image") for c in _containers(as_dict(spec), *_FIELDS))
    return [i for i in found if isinstance(i, str) and i]


# -- the account of a pod -----------------------------------------------------------------


def account(
    pod: PodUnderReview, selector: Selector | None = None, sources: Sources | None = None
) -> PodAccount:
    """Every container of `pod` with its role and models, and what cannot be accounted for."""
    return _Accountant(pod, selector or _no_selector, sources or Sources()).run()


def models_in(pod: PodUnderReview) -> list[ModelUse]:
    """Every model `pod` loads, once per reference: those found (the annotation's
    included), then the paths nothing names (as raw, unmappable values)."""
    found = account(pod)
    paths = [p for c in found.containers for p in c.paths]
    uses = found.all_models()
    return uses + [p for p in paths if all(p.reference != u.reference for u in uses)]


class _Accountant:
    def __init__(self, pod: PodUnderReview, selector: Selector, sources: Sources) -> None:
        self.pod, self.selector, self.sources = pod, selector, sources
        self.scan = Scan()
        self.spec = as_dict(pod.spec)
        self.volumes: dict[str, dict[str, Any]] = {}
        for volume in self.scan.dicts(self.spec.get("volumes"), "the pod's volumes"):
            if isinstance(volume.get("name"), str):
                self.volumes[volume["name"]] = volume
        self.claims = {
            as_str(c.get("name")) for c in self.scan.dicts(self.spec.get("resourceClaims"), "resourceClaims")
        }  # fmt: skip

    def run(self) -> PodAccount:
        out = PodAccount(models=list(self.pod.models), problems=list(self.pod.problems))
        entries: list[tuple[str, dict[str, Any]]] = []
        for field in _FIELDS:
            for c in self.scan.dicts(self.spec.get(field), f"the pod's {field}"):
                entries.append((field, c))
        readings: list[list[Reading]] = []
        for field, container in entries:
            account, found = self._container(field, container)
            out.containers.append(account)
            readings.append(found)
        # containers that may write into a volume with commands mlbom does not read
        self.writers: dict[str, list[str]] = {}
        for (_, container), acc in zip(entries, out.containers, strict=True):
            for _, volume, read_only in self._mounts(container):
                if not read_only and acc.role == "other":
                    self.writers.setdefault(volume, []).append(acc.name)
        # a loader's destination feeds the servers that read the same volume
        filled = self._filled(entries, out.containers, readings)
        for (_, container), acc, found in zip(entries, out.containers, readings, strict=True):
            self._models(container, acc, found, filled)
        for use in self._image_volumes():
            if all(use.reference != m.reference for m in out.all_models()):
                out.models.append(use)
        self._annotation(out)
        self._kserve_annotation(out)
        out.problems += self.scan.problems
        return out

    # -- one container --------------------------------------------------------------------

    def _container(self, field: str, c: dict[str, Any]) -> tuple[ContainerAccount, list[Reading]]:
        name = as_str(c.get("name")) or "(unnamed)"
        image = as_str(c.get("image")) or ""
        env = Env.of(c, self.scan, name)
        line = read(c, env, self.scan, name)
        hooks = self._hooks(c, env, name)
        readings = [r for inv in line.invocations if (r := runtimes.read(inv, image, self.sources))]
        hook_readings = [
            r for inv in hooks.invocations if (r := runtimes.read(inv, image, self.sources))
        ]
        readings += [r for r in hook_readings if r.role != "other"]
        acc = ContainerAccount(name, field, "other", "")
        served = [r for r in readings if r.role == "inference"]
        loads = [r for r in readings if r.role == "loader"]
        accelerators = self._accelerators(c, image)
        if served:
            acc.role, acc.why = (
                "inference",
                f"it runs {', '.join(dict.fromkeys(r.runtime for r in served))}",
            )
        elif loads or _MODELCAR.match(name):
            acc.role, acc.why = "loader", f"it runs {', '.join(dict.fromkeys(r.runtime for r in loads)) or 'a KServe modelcar'}"  # fmt: skip
        elif accelerators:
            acc.role, acc.why = "inference", accelerators
        acc.runtime = (
            ", ".join(dict.fromkeys(r.runtime for r in readings if r.role != "other")) or None
        )
        for reading in readings:
            for code, message in reading.problems:
                acc.problems.append(Problem(code, f"container {name} ({reading.runtime}): {message}", name))  # fmt: skip
        self._unreadable(acc, line, hooks, image)
        self._unrecognised(acc, line, readings)
        return acc, readings

    def _hooks(self, c: dict[str, Any], env: Env, name: str) -> CommandLine:
        """Commands the kubelet runs inside the container: lifecycle hooks, exec probes."""
        found = CommandLine()
        handlers = [as_dict(as_dict(c.get("lifecycle")).get(h)) for h in ("postStart", "preStop")]
        handlers += [as_dict(c.get(p)) for p in ("startupProbe", "livenessProbe", "readinessProbe")]
        for handler in handlers:
            command = as_dict(handler.get("exec")).get("command")
            if isinstance(command, list) and command:
                line = read({"command": command}, env, self.scan, name)
                found.invocations += line.invocations
                if line.refusal:
                    found.refusal, found.script = (
                        line.refusal,
                        line.script or " ".join(map(str, command)),
                    )
        return found

    def _accelerators(self, c: dict[str, Any], image: str) -> str | None:
        why = self.selector(image, container_gpus(c, None))
        if why:
            return why
        claims = [as_str(as_dict(x).get("name")) for x in as_dict(c.get("resources")).get("claims") or [] if isinstance(as_dict(c.get("resources")).get("claims"), list)]  # fmt: skip
        claims = [x for x in claims if x]
        if claims:
            return f"it uses the DRA resource claim {', '.join(claims)} (its device class may be an accelerator)"  # fmt: skip
        return None

    def _unreadable(
        self, acc: ContainerAccount, line: CommandLine, hooks: CommandLine, image: str
    ) -> None:
        """A shell line mlbom cannot read is a denial where it may start a server or a
        download: in an inference or loader container, or when it names one."""
        for what, cl in (("its command", line), ("a hook or probe", hooks)):
            if not cl.refusal:
                continue
            mentions = runtimes.SERVER_WORDS.search(cl.script or "") or runtimes.entrypoint(image)
            if acc.role == "other" and not mentions:
                continue
            if acc.role == "other":
                acc.role, acc.why = "inference", "its shell line names a server or a download"
            acc.problems.append(Problem(
                "shell",
                f"container {acc.name}: cannot tell what {what} runs ({cl.refusal}): run the "
                f"server directly (command and args), or a shell line of simple commands",
                acc.name,
            ))  # fmt: skip

    def _unrecognised(
        self, acc: ContainerAccount, line: CommandLine, readings: list[Reading]
    ) -> None:
        """Programs of a shell line beside a server that mlbom does not recognise may fetch
        what the server loads."""
        if acc.role == "other" or len(line.invocations) < 2:
            return
        known = {id(i) for i in line.invocations if i.harmless}
        for inv in line.invocations:
            if id(inv) in known or runtimes.read(inv, "", self.sources) is not None:
                continue
            acc.problems.append(Problem(
                "shell",
                f"container {acc.name}: cannot tell what {' '.join(inv.argv[:3])[:120]!r} does "
                f"beside the server: bake it into the image or run it as its own init container",
                acc.name,
            ))  # fmt: skip

    # -- where the models come from -------------------------------------------------------

    def _filled(
        self,
        entries: list[tuple[str, dict[str, Any]]],
        accounts: list[ContainerAccount],
        readings: list[list[Reading]],
    ) -> dict[str, list[ModelUse]]:
        """Volume name -> the models the loaders write into it."""
        filled: dict[str, list[ModelUse]] = {}
        for (_, c), acc, found in zip(entries, accounts, readings, strict=True):
            if acc.role != "loader":
                continue
            mounts = self._mounts(c)
            models = [m for r in found if r.role == "loader" for n in r.named for m in self._named(n, c, acc)]  # fmt: skip
            if _MODELCAR.match(acc.name) and (image := as_str(c.get("image"))):
                models.append(
                    oci(image, f"container {acc.name}: image (a KServe modelcar)", acc.name)
                )
            acc.models += models
            targets = [w for r in found for w in r.writes]
            written = {self._mount_at(mounts, t)[0] for t in targets} - {None} if targets else {m[1] for m in mounts if not m[2]}  # fmt: skip
            for volume in written:
                filled.setdefault(str(volume), []).extend(models)
        return filled

    def _models(self, c: dict[str, Any], acc: ContainerAccount, found: list[Reading], filled: dict[str, list[ModelUse]]) -> None:  # fmt: skip
        if acc.role != "inference":
            return
        for reading in found:
            if reading.role != "inference":
                continue
            for named in reading.named:
                acc.models += self._named(named, c, acc, filled)
            for cache in reading.cache_dirs:
                volume = self._volume_at(c, cache)
                if volume and not ("emptyDir" in volume or volume["name"] in filled):
                    acc.problems.append(Problem(
                        "byte-source",
                        f"container {acc.name} ({reading.runtime}): it keeps downloads in {cache} on "
                        f"the volume {volume['name']}, which other pods can fill with other bytes "
                        f"under the same names: download into an emptyDir, or verify the volume at load",
                        acc.name,
                    ))  # fmt: skip
        if self.pod.controlled and not acc.models and not acc.paths and self.pod.models:
            acc.models += list(self.pod.models)  # the controller hands it the object's model

    def _named(
        self,
        named: runtimes.Named,
        c: dict[str, Any],
        acc: ContainerAccount,
        filled: dict[str, list[ModelUse]] | None = None,
    ) -> list[ModelUse]:
        """The models a named value stands for; a loader's local paths are what it fills,
        not a model (`filled` is None for loaders)."""
        value = named.value.strip()
        source = f"container {acc.name}: {named.how}"
        if not value:
            return []
        if not (named.path or is_path(value)):
            return [reference(value, source, acc.name, named.revision, named.pin, uri=named.uri)]
        if filled is None:
            return [raw(value, source, acc.name)]
        path = value.removeprefix("file://")
        if not path.startswith("/"):  # relative to a working directory mlbom does not know
            workdir = as_str(c.get("workingDir"))
            path = f"{workdir.rstrip('/')}/{path.removeprefix('./')}" if workdir else path
        return self._trace(path, c, source, acc, filled)

    def _mounts(self, c: dict[str, Any]) -> list[tuple[str, str, bool]]:
        mounts = []
        for m in self.scan.dicts(c.get("volumeMounts"), f"container {as_str(c.get('name'))}: volumeMounts"):  # fmt: skip
            at, name = as_str(m.get("mountPath")), as_str(m.get("name"))
            if at and name:
                mounts.append(((at.rstrip("/") or "/"), name, m.get("readOnly") is True))
        return mounts

    @staticmethod
    def _mount_at(mounts: list[tuple[str, str, bool]], path: str) -> tuple[str | None, str]:
        """The volume mounted at `path` (the innermost mount) and the path inside it."""
        best, rest, longest = None, "", -1
        for at, name, _ in mounts:
            inside = path == at or path.startswith(at if at == "/" else at + "/")
            if inside and len(at) > longest:
                best, rest, longest = name, path[len(at) :].strip("/"), len(at)
        return best, rest

    def _volume_at(self, c: dict[str, Any], path: str) -> dict[str, Any] | None:
        name, _ = self._mount_at(self._mounts(c), path)
        return self.volumes.get(name) if name else None

    def _trace(self, path: str, c: dict[str, Any], source: str, acc: ContainerAccount, filled: dict[str, list[ModelUse]]) -> list[ModelUse]:  # fmt: skip
        """The models behind a local path: an image volume, the loaders that fill the volume;
        else the path is unresolved (the annotation may name it)."""
        if self.pod.controlled and self.pod.models and (path == KSERVE_MODEL_DIR or path.startswith(KSERVE_MODEL_DIR + "/")):  # fmt: skip
            return list(self.pod.models)  # the controller fills /mnt/models with the object's model
        mounts = self._mounts(c)
        name, rest = self._mount_at(mounts, path)
        where = f"{source} {path}"
        if name is None:
            acc.paths.append(raw(path, where, acc.name, _path_hint(path, "no volume is mounted there; it is in the image")))  # fmt: skip
            return []
        if filled.get(name):
            found = [ModelUse(m.reference, m.pinned, f"{where} (volume {name}, filled by {m.source})", acc.name, m.mappable, m.hint) for m in filled[name]]  # fmt: skip
            return found
        volume = as_dict(self.volumes.get(name))
        if use := image_volume(volume, f"{where} (image volume {name})", acc.name):
            return [use]
        if writers := self.writers.get(name):
            acc.problems.append(Problem(
                "byte-source",
                f"container {acc.name} reads its model from {path} on the volume {name}, which "
                f"container {', '.join(writers)} writes to with a command mlbom does not read: "
                f"fill the volume with a recognised loader (hf download --revision, KServe's "
                f"storage initializer) or mount an image volume pinned by digest",
                acc.name,
            ))  # fmt: skip
            return []
        claim = as_str(as_dict(volume.get("persistentVolumeClaim")).get("claimName"))
        sub = "/".join(p for p in (self._sub_path(c, name), rest) if p)
        if claim:
            acc.paths.append(raw(f"pvc://{claim}" + (f"/{sub}" if sub else ""), where, acc.name, _path_hint(path, f"it is on the PVC {claim}")))  # fmt: skip
            return []
        kind = next((k for k in volume if k != "name"), "unknown")
        acc.paths.append(raw(path, where, acc.name, _path_hint(path, f"volume {name} is {kind} and nothing mlbom reads fills it")))  # fmt: skip
        return []

    def _sub_path(self, c: dict[str, Any], volume: str) -> str:
        for m in self.scan.dicts(c.get("volumeMounts"), "volumeMounts"):
            if m.get("name") == volume:
                return as_str(m.get("subPath")) or ""
        return ""

    def _image_volumes(self) -> Iterator[ModelUse]:
        for name, volume in self.volumes.items():
            if use := image_volume(volume, f"volume {name}: image.reference", None):
                yield use

    # -- the annotations ------------------------------------------------------------------

    def _annotation(self, out: PodAccount) -> None:
        """``mlbom.dev/model`` names what discovery cannot resolve; it never overrides what
        discovery finds."""
        declared = list({u.reference: u for u in self._declared()}.values())
        unresolved = [p for c in out.containers for p in c.paths]
        unknown = [c for c in out.containers if c.role == "inference" and not c.models and not c.paths and not c.runtime]  # fmt: skip
        found = out.all_models()
        if not declared:
            for container in out.containers:
                for path in container.paths:
                    container.problems.append(Problem("unmappable", f"container {container.name}: model {path.reference} ({path.source}) cannot be checked by mlbom: {path.hint}", container.name))  # fmt: skip
            for container in unknown:
                container.problems.append(Problem(
                    "no-model",
                    f"container {container.name} is an inference container ({container.why}) but mlbom "
                    f"cannot tell which model it loads: run a recognised server that names the "
                    f"model, or add the annotation {ANNOTATION}: hf://ORG/REPO@<commit> "
                    f"(or oci://REGISTRY/REPO@sha256:<digest>)",
                    container.name,
                ))  # fmt: skip
            return
        needs_word = bool(unresolved or unknown or not found)
        for use in declared:
            if any(same_model(use.reference, m.reference) for m in found):
                continue
            if needs_word:
                what = ", ".join([p.reference for p in unresolved] + [f"container {c.name}" for c in unknown]) or "the pod"  # fmt: skip
                out.models.append(ModelUse(use.reference, use.pinned, f"annotation {ANNOTATION}, taken on its word for {what}", None, use.mappable, use.hint, on_word=True))  # fmt: skip
            else:
                loaded = ", ".join(m.reference for m in found) or "no model"
                out.problems.append(Problem(
                    "annotation-disagrees",
                    f"the annotation {ANNOTATION} names {use.reference}, but the pod loads {loaded}: "
                    f"the annotation names only models on volumes mlbom cannot trace; remove it or "
                    f"make it agree",
                ))  # fmt: skip

    def _declared(self) -> Iterator[ModelUse]:
        for meta in (self.pod.metadata, self.pod.object_metadata):
            annotations = as_dict(as_dict(meta).get("annotations"))
            text = self.scan.text(annotations.get(ANNOTATION), f"the annotation {ANNOTATION}")
            values = (text or "").split(",")
            if len(values) > MAX_ITEMS:
                self.scan.limit(f"the annotation {ANNOTATION}", f"{MAX_ITEMS} references", "name fewer models per pod")  # fmt: skip
            for value in values[:MAX_ITEMS]:
                value = value.strip()
                if _LOCAL_DIGEST.match(value):  # a folder's digest, as stores file local models
                    yield ModelUse(value, True, f"annotation {ANNOTATION}")
                elif value:
                    yield reference(value, f"annotation {ANNOTATION}")

    def _kserve_annotation(self, out: PodAccount) -> None:
        """KServe's internal annotation is KServe's own note of the storage URI: believed
        only as far as the storage initializer or modelcar in the same pod agrees."""
        uri = as_str(as_dict(as_dict(self.pod.metadata).get("annotations")).get(KSERVE_SOURCE_URI))
        if not uri or self.pod.models:
            return
        claimed = reference(uri, "", uri=True).reference
        loaders = [m for c in out.containers if c.role == "loader" for m in c.models]
        if not loaders:
            out.problems.append(Problem(
                "annotation-disagrees",
                f"the annotation {KSERVE_SOURCE_URI} says {uri}, but no storage initializer or "
                f"modelcar in the pod loads it: that annotation is KServe's, not evidence",
            ))  # fmt: skip
        elif not any(same_model(claimed, m.reference) for m in loaders):
            out.problems.append(Problem(
                "annotation-disagrees",
                f"the annotation {KSERVE_SOURCE_URI} says {uri}, but the pod's loaders load "
                f"{', '.join(m.reference for m in loaders)}",
            ))  # fmt: skip


def _path_hint(path: str, why: str) -> str:
    return (
        f"mlbom cannot tell which model is in {path} ({why}): mount it as an image volume "
        f"pinned by digest (volumes[].image.reference: REGISTRY/REPO@sha256:<digest>), serve "
        f"it from hf://ORG/REPO@<commit>, or declare it with the annotation "
        f"{ANNOTATION}: hf://ORG/REPO@<commit>"
    )
