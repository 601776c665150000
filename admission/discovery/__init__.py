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

import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from admission.discovery import runtimes
from admission.discovery.commandline import CommandLine, Invocation, read
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
from mlbom.references import SHA256_DIGEST

__all__ = [
    "ANNOTATION", "KSERVE_SOURCE_URI", "MAX_ITEMS", "MAX_TEXT", "ContainerAccount",
    "ModelUse", "PodAccount", "PodUnderReview", "Problem", "Sources", "account",
    "gpu_requests", "images", "models_in", "pods_in",
]  # fmt: skip

_FIELDS = ("initContainers", "containers", "ephemeralContainers")
# The file system's usual folders: a volume there is no package a server imports.
_NOT_PACKAGES = frozenset(
    {"mnt", "tmp", "dev", "proc", "sys", "etc", "var", "run", "opt", "srv", "home", "root",
     "media", "boot", "usr", "lib", "lib64", "bin", "sbin", "cache", "scratch"}
)  # fmt: skip
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


class _Mount(NamedTuple):
    at: str  # where in the container (normalised)
    volume: str  # the pod's volume
    read_only: bool
    sub: str  # subPath within the volume


@dataclass
class _Seen:
    """One container as read: its account, its spec, what it runs and what that loads."""

    account: ContainerAccount
    spec: dict[str, Any]
    readings: list[Reading]
    mounts: list[_Mount]
    unread: list[Invocation]  # programs it runs that mlbom does not recognise


class _Accountant:
    def __init__(self, pod: PodUnderReview, selector: Selector, sources: Sources) -> None:
        self.pod, self.selector, self.sources = pod, selector, sources
        self.scan = Scan()
        self.spec = as_dict(pod.spec)
        self.volumes: dict[str, dict[str, Any]] = {}
        for volume in self.scan.dicts(self.spec.get("volumes"), "the pod's volumes"):
            if isinstance(volume.get("name"), str):
                self.volumes[volume["name"]] = volume
        # (backing store, folder in it) -> what loaders put there; only fresh emptyDirs count
        self.filled: dict[tuple[str, str], list[ModelUse]] = {}
        self.writers: dict[str, list[str]] = {}  # backing store -> containers writing unknown bytes

    def run(self) -> PodAccount:
        out = PodAccount(models=list(self.pod.models), problems=list(self.pod.problems))
        seen = [
            self._container(field, c)
            for field in _FIELDS
            for c in self.scan.dicts(self.spec.get(field), f"the pod's {field}")
        ]
        out.containers = [s.account for s in seen]
        for s in seen:
            self._loaded(s)
        for s in seen:  # a server writes too: into its own folders, or another server's
            if s.account.role != "loader":
                for m in s.mounts:
                    if not m.read_only:
                        self.writers.setdefault(self._backing(m.volume), []).append(s.account.name)
        out.problems += self._reach(seen)
        for s in seen:
            self._served(s)
        for use in self._image_volumes():
            if all(use.reference != m.reference for m in out.all_models()):
                out.models.append(use)
        for app, config, env_vars in self.pod.extra.get("ray", []):
            reading = runtimes.ray_llm(app, config, env_vars, self.sources)
            source = f"RayService serveConfigV2 application {app}"
            out.models += [reference(n.value, f"{source}: {n.how}", None, n.revision, n.pin, uri=n.uri) for n in reading.named]  # fmt: skip
            out.problems += [Problem(code, f"{source}: {message}") for code, message in reading.problems]  # fmt: skip
        self._annotation(out)
        self._kserve_annotation(out)
        # a limit reached in a container that serves and loads nothing changes nothing
        others = {c.name for c in out.containers if c.role == "other"}
        out.problems += [p for p in self.scan.problems if p.container not in others]
        return out

    # -- one container --------------------------------------------------------------------

    def _container(self, field: str, c: dict[str, Any]) -> _Seen:
        name = as_str(c.get("name")) or "(unnamed)"
        image = as_str(c.get("image")) or ""
        env = Env.of(c, self.scan, name)
        line = read(c, env, self.scan, name, runtimes.entrypoint(image))
        hooks, probes = self._hooks(c, env, name)
        acc = ContainerAccount(name, field, "other", "")
        readings: list[Reading] = []
        unrecognised: list[Invocation] = []
        for inv in [*line.invocations, *hooks.invocations]:
            reading = runtimes.read(inv, self.sources)
            if reading is not None:
                readings.append(reading)
            elif not inv.harmless:
                unrecognised.append(inv)
        readings += [r for inv in probes.invocations if (r := runtimes.read(inv, self.sources)) and r.role != "other"]  # fmt: skip
        served = [r.runtime for r in readings if r.role == "inference"]
        loads = [r.runtime for r in readings if r.role == "loader"]
        if served:
            acc.role, acc.why = "inference", f"it runs {', '.join(dict.fromkeys(served))}"
        elif loads or _MODELCAR.match(name):
            acc.role, acc.why = "loader", f"it runs {', '.join(dict.fromkeys(loads)) or 'a KServe modelcar'}"  # fmt: skip
        elif why := self._accelerators(c, image, env):
            acc.role, acc.why = "inference", why
        acc.runtime = ", ".join(dict.fromkeys([*served, *loads])) or None
        acc.own_caches = [c for r in readings if r.role == "inference" for c in r.own_caches]
        self._unread_runtimes(acc, unrecognised, image, c)
        for reading in readings:
            for code, message in reading.problems:
                acc.problems.append(Problem(code, f"container {name} ({reading.runtime}): {message}", name))  # fmt: skip
        for what, cl in (("its command", line), ("a lifecycle hook", hooks), ("a probe", probes)):
            self._unreadable(acc, what, cl, image)
        if acc.role != "other" and (served or loads):
            for inv in unrecognised:  # beside a server or loader: it may fetch what they load
                acc.problems.append(Problem(
                    "shell",
                    f"container {name}: cannot tell what {' '.join(inv.argv[:3])[:120]!r} does "
                    f"beside {acc.runtime}: bake it into the image or run it as its own init container",
                    name,
                ))  # fmt: skip
        found = _Seen(acc, c, readings, self._mounts(c), unrecognised)
        paths = [m.at for m in found.mounts]
        for twice in sorted({p for p in paths if paths.count(p) > 1}):
            acc.problems.append(Problem(
                "ambiguous",
                f"container {name} mounts two volumes at {twice} (spelled differently): which one "
                f"it sees is the container runtime's choice, not the pod's. Mount one",
                name,
            ))  # fmt: skip
        for inv in [*line.invocations, *hooks.invocations]:
            self._program_source(found, inv)
        return found

    def _unread_runtimes(
        self,
        acc: ContainerAccount,
        unrecognised: list[Invocation],
        image: str,
        c: dict[str, Any],
    ) -> None:
        """A serving runtime mlbom cannot read as it runs (an unknown module or subcommand,
        an image whose entrypoint it does not know) is refused: nothing may take its word."""
        for inv in unrecognised:
            if program := runtimes.runtime_program(inv.argv):
                acc.role, acc.why = "inference", f"it runs {program}"
                acc.runtime = acc.runtime or f"{program} (not read)"
                acc.problems.append(Problem(
                    "ambiguous",
                    f"container {acc.name} runs {' '.join(inv.argv[:4])[:160]!r}, a form of "
                    f"{program} mlbom does not read: start it as the runtime documents "
                    f"(vllm serve MODEL, python -m vllm.entrypoints.openai.api_server …)",
                    acc.name,
                ))  # fmt: skip
        unknown_image = runtimes.entrypoint(image) is None and runtimes.RUNTIME_IMAGES.search(
            runtimes.image_repository(image)
        )
        if not c.get("command") and unknown_image and not acc.runtime:
            acc.role, acc.why = "inference", f"its image {image} is a serving runtime's"
            acc.runtime = "unknown entrypoint"
            acc.problems.append(Problem(
                "ambiguous",
                f"container {acc.name}: mlbom does not know what the image {image} runs "
                f"with its args: name the command (command: [vllm, serve, …])",
                acc.name,
            ))  # fmt: skip

    def _hooks(self, c: dict[str, Any], env: Env, name: str) -> tuple[CommandLine, CommandLine]:
        """Commands the kubelet runs inside the container: lifecycle hooks, exec probes."""
        found = (CommandLine(), CommandLine())
        lifecycle = as_dict(c.get("lifecycle"))
        handlers = [(found[0], as_dict(lifecycle.get(h))) for h in ("postStart", "preStop")]
        handlers += [(found[1], as_dict(c.get(p))) for p in ("startupProbe", "livenessProbe", "readinessProbe")]  # fmt: skip
        for into, handler in handlers:
            command = as_dict(handler.get("exec")).get("command")
            if isinstance(command, list) and command:
                line = read({"command": command}, env, self.scan, name)
                into.invocations += line.invocations
                if line.refusal:
                    into.refusal = line.refusal
                    into.script = line.script or " ".join(map(str, command))
        return found

    def _accelerators(self, c: dict[str, Any], image: str, env: Env) -> str | None:
        if why := self.selector(image, container_gpus(c, None)):
            return why
        visible = env.values.get("NVIDIA_VISIBLE_DEVICES")  # as set in the pod spec
        if visible is not None and visible.strip().lower() not in ("void", "none", ""):
            return "NVIDIA_VISIBLE_DEVICES hands it GPUs without a resource request"
        claims = as_dict(c.get("resources")).get("claims")
        found = claims[:MAX_ITEMS] if isinstance(claims, list) else []
        names = [n for x in found if (n := as_str(as_dict(x).get("name")))]
        if names:
            return f"it uses the DRA resource claim {', '.join(names)} (its device class may be an accelerator)"  # fmt: skip
        return None

    def _unreadable(self, acc: ContainerAccount, what: str, line: CommandLine, image: str) -> None:
        """A shell line mlbom cannot read is a denial where it may start a server or a
        download: in an inference or loader container, or when it names one."""
        if not line.refusal:
            return
        mentions = runtimes.SERVER_WORDS.search(line.script or "") or runtimes.entrypoint(image)
        if (acc.role == "other" or what == "a probe") and not mentions:
            return  # a health check's pipe, in a container that serves nothing
        if acc.role == "other":
            acc.role, acc.why = "inference", "its shell line names a server or a download"
        acc.problems.append(Problem(
            "shell",
            f"container {acc.name}: cannot tell what {what} runs ({line.refusal}): run the "
            f"server directly (command and args), or a shell line of simple commands",
            acc.name,
        ))  # fmt: skip

    # -- where the models come from -------------------------------------------------------

    def _loaded(self, s: _Seen) -> None:
        """What the container's loaders fetch, and the volumes (or its own folders) they
        put it in."""
        acc = s.account
        modelcar = _MODELCAR.match(acc.name) and as_str(s.spec.get("image"))
        car = [replace(oci(modelcar, f"container {acc.name}: image (a KServe modelcar)", acc.name), unreadable_before_start=f"its files are the image of the modelcar {acc.name}, linked in only while the pod runs")] if modelcar else []  # fmt: skip
        acc.models += car
        for reading in s.readings:
            if reading.role != "loader":
                continue
            models = [m for n in reading.named for m in self._named(n, s, None)]
            if reading.runtime == "KServe modelcar":
                if not car:  # another container's files, linked in: only a modelcar's image
                    acc.problems.append(Problem("byte-source", f"container {acc.name} links another container's files into {', '.join(reading.writes)}: mlbom cannot tell what they are", acc.name))  # fmt: skip
                models = car
            acc.models += [m for m in models if m not in acc.models]
            targets = reading.writes or [m.at for m in s.mounts if not m.read_only]
            for target in targets:
                self._fill(s, _normal(target, self._cwd(s, reading)), models)
        if car and not any(r.runtime == "KServe modelcar" for r in s.readings):
            for m in s.mounts:
                if not m.read_only:
                    self._fill(s, m.at, car)

    def _fill(self, s: _Seen, target: str, models: list[ModelUse]) -> None:
        """A loader's destination: in a fresh emptyDir it holds what the loader fetched; in
        a volume that outlives the pod it may hold more (a download keeps files it finds)."""
        s.account.local[target] = models
        mount, inner = self._mount_in(s.mounts, target)
        if mount is not None and self._fresh(mount.volume):
            self.filled[self._backing(mount.volume), inner] = models

    def _fresh(self, volume: str) -> bool:
        """A volume made empty for this pod: an emptyDir, or a generic ephemeral volume not
        made from a snapshot or another volume."""
        spec = as_dict(self.volumes.get(volume))
        claim = as_dict(as_dict(as_dict(spec.get("ephemeral")).get("volumeClaimTemplate")).get("spec"))  # fmt: skip
        if "ephemeral" in spec:
            return not (claim.get("dataSource") or claim.get("dataSourceRef"))
        return "emptyDir" in spec

    def _served(self, s: _Seen) -> None:
        acc = s.account
        if acc.role != "inference":
            return
        for reading in s.readings:
            if reading.role != "inference":
                continue
            for named in reading.named:
                acc.models += self._named(named, s, reading)
            for cache in reading.cache_dirs:
                self._cache(s, reading, cache)
            for named in reading.named:
                self._local_name(s, reading, named)
        if self.pod.controlled and not (acc.models or acc.paths or s.unread) and self.pod.models:
            acc.models += list(self.pod.models)  # the controller hands it the object's model

    def _cache(self, s: _Seen, reading: Reading, cache: str) -> None:
        """A cache the runtime reads before it downloads: on a volume others can fill, the
        bytes under a pinned commit's name may be anyone's."""
        folder = _normal(cache, self._cwd(s, reading))
        if folder.startswith("~"):
            return
        holding, _ = self._mount_in(s.mounts, folder)
        inside = [m for m in s.mounts if m.at != folder and _under(m.at, folder)]
        for mount in [*([holding] if holding else []), *inside]:
            writers = self._writers(mount.volume, s.account.name)
            if self._fresh(mount.volume) and not writers:
                continue
            if self.sources.shared_caches and not writers:
                continue
            by = (
                f"container {', '.join(writers)} writes to it"
                if writers
                else "other pods can fill it"
            )
            s.account.problems.append(Problem(
                "byte-source",
                f"container {s.account.name} ({reading.runtime}) reads and keeps downloads in "
                f"{cache}, on the volume {mount.volume} (at {mount.at}), and {by}: the runtime "
                f"serves what it finds there under the pinned commit's name without checking it. "
                f"Keep the cache on an emptyDir, or set sources.sharedCaches: allow where "
                f"load-time verification binds it",
                s.account.name,
            ))  # fmt: skip
            return

    def _cwd(self, s: _Seen, reading: Reading) -> str:
        return _start_dir(s.spec, reading.cwd)

    def _program_source(self, s: _Seen, inv: Invocation) -> None:
        """A program is its image's: one run from a volume, or Python importing from a
        folder a volume can put code into, runs what mlbom cannot see."""
        python = runtimes.python_parts(inv.argv)
        cwd = _start_dir(s.spec, inv.cwd)
        script = python[1][0] if python and not python[0] and python[1] and not python[1][0].startswith("-") else None  # fmt: skip
        for program in [inv.argv[0], *([script] if script else [])]:
            mount, _ = self._mount_in(s.mounts, _normal(program, cwd)) if "/" in program else (None, "")  # fmt: skip
            if mount is not None:
                s.account.problems.append(Problem(
                    "byte-source",
                    f"container {s.account.name} runs {program} from the volume {mount.volume}: "
                    f"mlbom cannot tell what it does. Run programs from the image",
                    s.account.name,
                ))  # fmt: skip
                return
        # sys.path[0]: the working directory (-m) or the script's folder
        first = cwd if python and python[0] else posixpath.dirname(_normal(script, cwd)) if script else None  # fmt: skip
        for m in s.mounts if first else []:
            # a volume holding that folder, or a package-named one right inside it, can stand
            # in for any module the server imports (the usual mount points are no packages)
            inside = posixpath.dirname(m.at) == first and posixpath.basename(m.at) not in _NOT_PACKAGES  # fmt: skip
            if _under(first, m.at) or inside:  # type: ignore[arg-type]
                s.account.problems.append(Problem(
                    "ambiguous",
                    f"container {s.account.name}: Python imports from {first} first, and the "
                    f"volume {m.volume} at {m.at} can put other code there (any package the "
                    f"server imports): set workingDir away from volumes",
                    s.account.name,
                ))  # fmt: skip
                return

    def _reach(self, seen: list[_Seen]) -> list[Problem]:
        """Ways other containers reach into a server's files: a shared process namespace, a
        privileged container, the node's filesystem, an ephemeral container targeting it."""
        serving = {s.account.name for s in seen if s.account.role != "other"}
        if not serving:
            return []
        problems = []
        spec = self.spec
        if spec.get("hostPID") is True:
            problems.append(Problem("byte-source", "hostPID lets the pod's containers reach other processes' files: remove it from an inference pod"))  # fmt: skip
        for s in seen:
            acc, c = s.account, s.spec
            if acc.role != "other":
                continue
            security = as_dict(c.get("securityContext"))
            node = [m for m in s.mounts if self._backing(m.volume).startswith("host:") and not m.read_only
                    and any(_under(d, self._backing(m.volume)[5:]) for d in ("/var/lib/kubelet", "/var/lib/containerd", "/run/containerd", "/var/lib/docker"))]  # fmt: skip
            target = as_str(c.get("targetContainerName"))
            if security.get("privileged") is True:
                why = "is privileged: it can write into the server's files"
            elif node:
                why = f"mounts the node's {self._backing(node[0].volume)[5:]}, where the server's volumes are"
            elif target in serving:
                why = f"shares the process namespace of {target}, whose files it can write through /proc"
            elif spec.get("shareProcessNamespace") is True and (s.unread or (not c.get("command") and not c.get("args"))):  # fmt: skip
                why = "shares the pod's process namespace and runs what mlbom cannot read: it can write into the server's files through /proc"  # fmt: skip
            else:
                continue
            problems.append(Problem("byte-source", f"container {acc.name} {why}. Keep it out of an inference pod", acc.name))  # fmt: skip
        return problems

    def _local_name(self, s: _Seen, reading: Reading, named: runtimes.Named) -> None:
        """A Hub id is also a relative path: runtimes load a folder of that name from their
        working directory before they ask the Hub, so it must not be on a volume."""
        value = named.value.strip()
        if named.uri or named.path or is_path(value) or "://" in value or not value:
            return
        folder = _normal(value.split("@", 1)[0], self._cwd(s, reading))
        for m in s.mounts:
            if _under(folder, m.at) or _under(m.at, folder):
                s.account.problems.append(Problem(
                    "ambiguous",
                    f"container {s.account.name} ({reading.runtime}): {value} is also the folder "
                    f"{folder} on the volume {m.volume}, which {reading.runtime} would load instead "
                    f"of the Hub repository: mount the volume elsewhere or set workingDir elsewhere",
                    s.account.name,
                ))  # fmt: skip
                return

    def _named(self, named: runtimes.Named, s: _Seen, reading: Reading | None) -> list[ModelUse]:
        """The models a named value stands for. A loader's local path is where it writes,
        not a model (`reading` is None for loaders)."""
        acc = s.account
        value = named.value.strip()
        source = f"container {acc.name}: {named.how}"
        if not value:
            return []
        if not (named.path or is_path(value)):
            return [reference(value, source, acc.name, named.revision, named.pin, uri=named.uri)]
        if reading is None:
            return []
        path = _normal(value.removeprefix("file://"), self._cwd(s, reading))
        return self._trace(path, s, source)

    def _mounts(self, c: dict[str, Any]) -> list[_Mount]:
        mounts = []
        what = f"container {as_str(c.get('name'))}: volumeMounts"
        for m in self.scan.dicts(c.get("volumeMounts"), what):
            at, name = as_str(m.get("mountPath")), as_str(m.get("name"))
            if at and name:
                # subPathExpr's value is the kubelet's: an unknown folder of the volume
                sub = as_str(m.get("subPath")) or ("\x00expr" if m.get("subPathExpr") else "")
                mounts.append(
                    _Mount(_normal(at, "/"), name, m.get("readOnly") is True, sub.strip("/"))
                )
        return mounts

    @staticmethod
    def _mount_in(mounts: list[_Mount], path: str) -> tuple[_Mount | None, str]:
        """The innermost mount holding `path`, and where `path` is within its volume."""
        best: _Mount | None = None
        for m in mounts:
            if _under(path, m.at) and (best is None or len(m.at) > len(best.at)):
                best = m
        if best is None:
            return None, ""
        rest = path[len(best.at) :].strip("/")
        return best, "/".join(p for p in (best.sub, rest) if p)

    def _backing(self, volume: str) -> str:
        """What holds a volume's bytes: two volumes of one claim or host folder are one."""
        spec = as_dict(self.volumes.get(volume))
        if claim := as_str(as_dict(spec.get("persistentVolumeClaim")).get("claimName")):
            return f"pvc:{claim}"
        if host := as_str(as_dict(spec.get("hostPath")).get("path")):
            return f"host:{_normal(host, '/')}"
        return f"volume:{volume}"

    def _writers(self, volume: str, reader: str) -> list[str]:
        """The containers besides `reader` that may write unknown bytes into a volume's store
        (host folders inside one another are one store)."""
        backing = self._backing(volume)
        if not backing.startswith("host:"):
            return [w for w in self.writers.get(backing, []) if w != reader]
        path = backing.removeprefix("host:")
        return [w for key, names in self.writers.items() if key.startswith("host:")
                and (_under(path, key[5:]) or _under(key[5:], path)) for w in names if w != reader]  # fmt: skip

    def _trace(self, path: str, s: _Seen, source: str) -> list[ModelUse]:
        """The models behind a local path: what a loader of the same container or of the
        volume put there, an image volume; a volume something else writes to is refused;
        anything else is unresolved (the annotation may name it)."""
        acc = s.account
        where = f"{source} {path}"
        if self.pod.controlled and self.pod.models and _under(path, KSERVE_MODEL_DIR):
            # the controller fills /mnt/models with the object's model
            return [replace(m, container=acc.name, path=path) for m in self.pod.models]
        for target, models in acc.local.items():
            if _under(path, target) or _under(target, path):
                if not models:
                    acc.problems.append(Problem("byte-source", f"container {acc.name} reads {path}, which it fills itself from a source mlbom cannot tell", acc.name))  # fmt: skip
                return [replace(m, source=f"{where} (written by {m.source})", container=acc.name, path=path, unreadable_before_start=f"container {acc.name} downloads it itself as it starts") for m in models]  # fmt: skip
        mount, inner = self._mount_in(s.mounts, path)
        name = mount.volume if mount else None
        inside = [(m.at, m.volume) for m in s.mounts if m.at != path and _under(m.at, path)]
        if inside:
            at, inner = inside[0]
            acc.problems.append(Problem(
                "byte-source",
                f"container {acc.name} reads its model from {path}, and the volume {inner} is "
                f"mounted inside it at {at}: its files stand beside or over the model's. Mount "
                f"nothing inside a model folder",
                acc.name,
            ))  # fmt: skip
            return []
        if name is None:
            acc.paths.append(raw(path, where, acc.name, _path_hint(path, "no volume is mounted there; it is in the image"), path))  # fmt: skip
            return []
        if writers := self._writers(name, acc.name):
            acc.problems.append(Problem(
                "byte-source",
                f"container {acc.name} reads its model from {path} on the volume {name}, which "
                f"container {', '.join(writers)} can write to with commands mlbom does not read: "
                f"mount it read-only there, fill the volume with a recognised loader "
                f"(hf download --revision, KServe's storage initializer), or use an image volume "
                f"pinned by digest",
                acc.name,
            ))  # fmt: skip
            return []
        backing = self._backing(name)
        for (store, folder), loaded in self.filled.items():
            if store == backing and (_within(inner, folder) or _within(folder, inner)):
                return [replace(m, source=f"{where} (volume {name}, filled by {m.source})", container=acc.name, path=path) for m in loaded]  # fmt: skip
        volume = as_dict(self.volumes.get(name))
        if use := image_volume(volume, f"{where} (image volume {name})", acc.name):
            return [replace(use, path=path)]
        claim = as_str(as_dict(volume.get("persistentVolumeClaim")).get("claimName"))
        if claim:
            acc.paths.append(raw(f"pvc://{claim}" + (f"/{inner}" if inner else ""), where, acc.name, _path_hint(path, f"it is on the PVC {claim}"), path))  # fmt: skip
            return []
        kind = next((k for k in volume if k != "name"), "unknown")
        acc.paths.append(raw(path, where, acc.name, _path_hint(path, f"volume {name} is {kind} and nothing mlbom reads fills it"), path))  # fmt: skip
        return []

    def _image_volumes(self) -> Iterator[ModelUse]:
        for name, volume in self.volumes.items():
            if use := image_volume(volume, f"volume {name}: image.reference", None):
                yield use

    # -- the annotations ------------------------------------------------------------------

    def _annotation(self, out: PodAccount) -> None:
        """``mlbom.dev/model`` names what discovery cannot resolve; it never overrides what
        discovery finds, and it covers the unresolved paths only with a model of its own."""
        declared = list({u.reference: u for u in self._declared()}.values())
        unresolved = [p for c in out.containers for p in c.paths]
        unknown = [c for c in out.containers if c.role == "inference" and not c.models and not c.paths and not c.runtime]  # fmt: skip
        found = out.all_models()
        needs_word = bool(unresolved or unknown or not found)
        covered = False
        for use in declared:
            if any(same_model(use.reference, m.reference) for m in found):
                continue  # it names what the pod already loads: it stands for nothing else
            if needs_word:
                what = ", ".join([p.reference for p in unresolved] + [f"container {c.name}" for c in unknown]) or "the pod"  # fmt: skip
                # the one folder it stands for, where there is one: load-time verification checks it there
                only = unresolved[0] if len(unresolved) == 1 and not unknown else None
                reader, folder = (only.container, only.path) if only else (None, None)
                out.models.append(ModelUse(use.reference, use.pinned, f"annotation {ANNOTATION}, taken on its word for {what}", reader, use.mappable, use.hint, on_word=True, path=folder))  # fmt: skip
                covered = True
            else:
                loaded = ", ".join(m.reference for m in found) or "no model"
                out.problems.append(Problem(
                    "annotation-disagrees",
                    f"the annotation {ANNOTATION} names {use.reference}, but the pod loads {loaded}: "
                    f"the annotation names only models on volumes mlbom cannot trace; remove it or "
                    f"make it agree",
                ))  # fmt: skip
        if covered:
            return
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

    def _declared(self) -> Iterator[ModelUse]:
        for meta in (self.pod.metadata, self.pod.object_metadata):
            annotations = as_dict(as_dict(meta).get("annotations"))
            text = self.scan.text(annotations.get(ANNOTATION), f"the annotation {ANNOTATION}")
            values = (text or "").split(",")
            if len(values) > MAX_ITEMS:
                self.scan.limit(f"the annotation {ANNOTATION}", f"{MAX_ITEMS} references", "name fewer models per pod")  # fmt: skip
            for value in values[:MAX_ITEMS]:
                value = value.strip()
                if SHA256_DIGEST.match(value):  # a folder's digest, as stores file local models
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


def _start_dir(spec: dict[str, Any], cd: str | None) -> str:
    """Where a program starts: a shell line's cd, the container's workingDir, the image's."""
    base = as_str(spec.get("workingDir")) or runtimes.workdir(as_str(spec.get("image")) or "")
    return _normal(cd, base) if cd else _normal(base, "/")


def _normal(path: str, cwd: str) -> str:
    """An absolute, normalised path (``..`` resolved as the kernel does without symlinks)."""
    if path.startswith("~"):
        return path  # the home directory of a user mlbom does not know
    return posixpath.normpath(posixpath.join(cwd or "/", path)).replace("//", "/")


def _within(inner: str, folder: str) -> bool:
    """`inner` is `folder` or inside it, both paths within one volume ("" is its root)."""
    return not folder or inner == folder or inner.startswith(folder + "/")


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _path_hint(path: str, why: str) -> str:
    return (
        f"mlbom cannot tell which model is in {path} ({why}): mount it as an image volume "
        f"pinned by digest (volumes[].image.reference: REGISTRY/REPO@sha256:<digest>), serve "
        f"it from hf://ORG/REPO@<commit>, or declare it with the annotation "
        f"{ANNOTATION}: hf://ORG/REPO@<commit>"
    )
