"""The load-time verifier in the pod: the init containers that bind the models admission
verified to the bytes the pod's servers read, as a JSONPatch. Pure functions, like
`placement`: no I/O.

    plan = plan_verifiers(spec, "/spec", account, verdicts, policy.load_time)
    plan.patch        # RFC 6902 operations; empty when the pod already carries them exactly
    plan.refusals     # models no init container can check, each with its reason
    plan.missing      # what the final pod lacks (the validating webhook's reasons)

For every model an inference container loads:

- from a local path (a volume a loader filled, an image volume, a claim the annotation
  names): a verifier mounts the volume the server reads, read-only, at the same path and
  with the same subPath, and re-hashes that folder against the admitted BOM;
- by name from the Hub (the runtime would download it as it starts): the verifier downloads
  the pinned commit into the emptyDir `mlbom-hub-cache` as a Hugging Face cache and verifies
  it there; the server gets that volume read-only, HF_HUB_CACHE (and the variables older
  clients read) pointed at it and HF_HUB_OFFLINE=1, so it reads the verified copy and
  downloads nothing.

The verifiers are the init containers `mlbom-verify-load-N`, right after the pod's last
loader: they run after every download and before any server starts. Each names the BOM by
the SHA-256 admission verified (`--bom-sha256`), so the pod holds no trust material and a
BOM replaced in the store since admission is refused. The containers' every field is set
(what the API server would default included), so the object the validating webhook sees
equals the plan byte for byte, and planning the patched pod again yields no patch.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from admission.discovery import ContainerAccount, ModelUse, PodAccount
from admission.policy import LoadTimeVerification
from admission.verification import Verdict
from attest.stores import can_hold
from mlbom.references import parse
from mlbom.untrusted import as_dict as _dict
from mlbom.untrusted import as_list as _list

#: the verifiers' names: `mlbom-verify-load-0`, `-1`, …; any init container so named is
#: the webhook's to write
PREFIX = "mlbom-verify-load-"
HUB_CACHE_VOLUME = "mlbom-hub-cache"
HUB_CACHE_PATH = "/var/lib/mlbom/hub"
#: what points a server at the verified Hub cache, offline (the legacy names too: older
#: clients and transformers read them before HF_HUB_CACHE)
HUB_ENV = (
    ("HF_HUB_CACHE", HUB_CACHE_PATH),
    ("HUGGINGFACE_HUB_CACHE", HUB_CACHE_PATH),
    ("TRANSFORMERS_CACHE", HUB_CACHE_PATH),
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
)
#: the server's variables the verifier needs to download what the server would have
HUB_CLIENT_ENV = ("HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
#: the image runs as this user (Containerfile); the verifier only needs to read and write
#: files that are world-readable (and the emptyDir, which is world-writable)
VERIFIER_UID = 65532


@dataclass(frozen=True)
class _Step:
    """One verifier: a model, where the server reads it, and the mount that shows it."""

    reference: str
    bom_sha256: str
    path: str
    mount: dict[str, Any]  # a volumeMount of the verifier
    server: str  # the container that reads it
    fetch: bool = False
    env: tuple[dict[str, Any], ...] = ()  # the Hub client's variables, from the server


@dataclass
class VerifierPlan:
    """The verifiers a pod needs, and the patch that gives it them."""

    patch: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    #: what the pod lacks, in words (empty when the pod already carries every verifier)
    missing: list[str] = field(default_factory=list)
    #: containers pointed at the verified Hub cache (their HF_HUB_OFFLINE is the verifier's)
    rewired: list[str] = field(default_factory=list)
    #: every model the plan binds at load
    bound: list[str] = field(default_factory=list)


def plan_verifiers(
    spec: dict[str, Any],
    pod_path: str,
    account: PodAccount,
    verdicts: Iterable[Verdict],
    settings: LoadTimeVerification,
) -> VerifierPlan:
    """The verifiers the pod `spec` needs for the models `account` found in it, each pinned
    to the BOM its verdict verified; the patch's paths start at `pod_path` (the spec's JSON
    Pointer in the admitted object)."""
    plan = VerifierPlan()
    if not settings.image:
        plan.refusals.append("the policy names no verifier image (loadTimeVerification.image)")
        return plan
    for where in ("containers", "ephemeralContainers"):
        for taken in [_name(c) for c in _list(spec.get(where)) if _is_verifier(c)]:
            plan.refusals.append(f"the container {taken} takes a name mlbom keeps for its verifiers (init containers {PREFIX}N): rename it")  # fmt: skip
    pins = {v.reference: v.bom_sha256 for v in verdicts if v.ok and v.bom_sha256}
    steps, hub_servers = _steps(spec, account, pins, settings, plan.refusals)
    plan.bound = list(dict.fromkeys(s.reference for s in steps))
    verifiers = [_container(i, s, settings) for i, s in enumerate(steps)]
    ops: list[dict[str, Any]] = []
    for where, index, server in _located(spec, hub_servers):
        plan.rewired.append(_name(server))
        ops += _rewire(server, f"{pod_path}/{where}/{index}", plan.missing)
    if hub_servers:
        ops += _cache_volume(spec, pod_path, plan.missing)
    ops += _init_containers(spec, pod_path, verifiers, steps, account, plan)
    plan.patch = ops
    return plan


# -- what to verify -------------------------------------------------------------------------


def _steps(
    spec: dict[str, Any],
    account: PodAccount,
    pins: dict[str, str],
    settings: LoadTimeVerification,
    refusals: list[str],
) -> tuple[list[_Step], list[str]]:
    steps: dict[tuple[str, str, str], _Step] = {}
    hub_servers: list[str] = []
    if not settings.stores:
        refusals.append(
            "the verifier has no store to fetch the admitted BOM from: the policy's stores are "
            "folders in the webhook's pod; list an oci:// or hf:// store under "
            "loadTimeVerification.stores"
        )
        return [], []
    for use, server in _served(account, refusals):
        container = _container_spec(spec, server)
        if server.where == "ephemeralContainers":
            refusals.append(
                f"the ephemeral container {server.name} loads {use.reference} in a running pod, "
                f"after the verifiers ran: serve models from the pod spec"
            )
            continue
        if use.unreadable_before_start:
            refusals.append(
                f"{use.reference} cannot be verified before container {server.name} starts: "
                f"{use.unreadable_before_start}. Fill a volume with a recognised loader in an "
                f"init container, or mount an image volume pinned by digest"
            )
            continue
        pin = pins.get(use.reference)
        if pin is None:
            refusals.append(f"{use.reference} has no verified BOM to pin the verifier to")
            continue
        if not any(can_hold(store, parse(use.reference)) for store in settings.stores):
            refusals.append(
                f"none of the verifier's stores ({', '.join(settings.stores)}) can hold the "
                f"attestation of {use.reference} (a Hub store holds only its own repository's "
                f"commits): push it to an OCI store the pod can reach and list that under "
                f"loadTimeVerification.stores"
            )
            continue
        if use.path is None:
            step = _hub_step(use, server, container, pin, refusals)
            if step is not None:
                hub_servers += [server.name] if server.name not in hub_servers else []
                steps.setdefault((step.reference, step.path, ""), step)
            continue
        mount = _mount_of(container, use.path)
        if mount is None:
            refusals.append(
                f"container {server.name} reads {use.reference} from {use.path}, inside its own "
                f"image, where no init container can read it: ship the model on a volume (an "
                f"image volume pinned by digest, or one a loader fills)"
            )
            continue
        if "subPathExpr" in mount:
            refusals.append(
                f"container {server.name} mounts {use.path} with subPathExpr, which the "
                f"verifier cannot reproduce: use subPath"
            )
            continue
        key = (use.reference, use.path, repr(sorted(mount.items())))
        steps.setdefault(key, _Step(use.reference, pin, use.path, mount, server.name))
    return list(steps.values()), hub_servers


def _served(
    account: PodAccount, refusals: list[str]
) -> Iterator[tuple[ModelUse, ContainerAccount]]:
    """Every model a server of the pod loads, with that server: its own, and the ones only
    the annotation names (checked where they are read, so one folder per model)."""
    by_name = {c.name: c for c in account.containers}
    for container in account.containers:
        if container.role != "inference":
            continue
        fetched_here = {m.reference for models in container.local.values() for m in models}
        for use in container.models:
            if use.path is None and use.reference in fetched_here:
                continue  # its own download: the folder it serves says why it cannot be checked
            yield use, container
    for use in account.models:
        if not use.on_word:
            continue  # named by the object (a KServe resource): checked in the Pods it makes
        server = by_name.get(use.container or "")
        if server is None or use.path is None:
            refusals.append(
                f"{use.reference} is taken on the word of the annotation for more than one "
                f"folder or a server whose model mlbom cannot find: load-time verification "
                f"needs to know where each model is read; name one model per folder"
            )
            continue
        yield use, server


def _hub_step(
    use: ModelUse,
    server: ContainerAccount,
    container: dict[str, Any],
    pin: str,
    refusals: list[str],
) -> _Step | None:
    """A model the server would download: the verifier downloads it instead."""
    if not use.reference.startswith("hf://"):
        refusals.append(
            f"container {server.name} loads {use.reference} by name, and only Hub models can "
            f"be downloaded by the verifier: mount it as an image volume pinned by digest"
        )
        return None
    if server.own_caches:
        refusals.append(
            f"container {server.name} names its own download cache ({', '.join(server.own_caches)}), "
            f"which wins over the verified copy mlbom gives it: remove it (the verifier "
            f"downloads the model into {HUB_CACHE_PATH} and the server reads it there, offline)"
        )
        return None
    env = tuple(
        e for e in _list(container.get("env")) if isinstance(e, dict) and e.get("name") in HUB_CLIENT_ENV
    )  # fmt: skip
    mount = {"name": HUB_CACHE_VOLUME, "mountPath": HUB_CACHE_PATH}
    return _Step(use.reference, pin, HUB_CACHE_PATH, mount, server.name, fetch=True, env=env)


# -- the patch ------------------------------------------------------------------------------


def _container(index: int, step: _Step, settings: LoadTimeVerification) -> dict[str, Any]:
    """The verifier's init container, every field the API server would default set."""
    command = ["mlbom", "verify-load", step.reference, "--path", step.path]
    command += ["--bom-sha256", step.bom_sha256]
    model = parse(step.reference)
    for store in settings.stores:  # only those that can hold it: no lookup bound to fail
        if can_hold(store, model):
            command += ["--store", store]
    for registry in settings.insecure_registries:
        command += ["--insecure-registry", registry]
    command += [*(["--fetch"] if step.fetch else []), "--quiet"]
    mount = {**step.mount, "readOnly": not step.fetch}
    container: dict[str, Any] = {
        "name": f"{PREFIX}{index}",
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
    }
    if step.env:
        container["env"] = [dict(e) for e in step.env]
    container |= {
        "resources": {k: dict(v) for k, v in settings.resources.items()},
        "volumeMounts": [mount],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsGroup": VERIFIER_UID,
            "runAsNonRoot": True,
            "runAsUser": VERIFIER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    return container


def _rewire(server: dict[str, Any], path: str, missing: list[str]) -> list[dict[str, Any]]:
    """The server reads the verified cache, offline: its env and a read-only mount."""
    name = server.get("name")
    ops = []
    env = [e for e in _list(server.get("env")) if not (isinstance(e, dict) and e.get("name") in dict(HUB_ENV))]  # fmt: skip
    env += [{"name": k, "value": v} for k, v in HUB_ENV]
    if server.get("env") != env:
        missing.append(f"container {name} is not pointed at the verified Hub cache ({', '.join(f'{k}={v}' for k, v in HUB_ENV)})")  # fmt: skip
        ops.append({"op": "replace" if "env" in server else "add", "path": f"{path}/env", "value": env})  # fmt: skip
    mount = {"name": HUB_CACHE_VOLUME, "mountPath": HUB_CACHE_PATH, "readOnly": True}
    mounts = [
        m for m in _list(server.get("volumeMounts"))
        if not (isinstance(m, dict) and (m.get("name") == HUB_CACHE_VOLUME or m.get("mountPath") == HUB_CACHE_PATH))
    ]  # fmt: skip
    mounts.append(mount)
    if server.get("volumeMounts") != mounts:
        missing.append(f"container {name} does not mount the verified Hub cache read-only at {HUB_CACHE_PATH}")  # fmt: skip
        op = "replace" if "volumeMounts" in server else "add"
        ops.append({"op": op, "path": f"{path}/volumeMounts", "value": mounts})
    return ops


def _cache_volume(spec: dict[str, Any], pod_path: str, missing: list[str]) -> list[dict[str, Any]]:
    volumes = [v for v in _list(spec.get("volumes")) if not (isinstance(v, dict) and v.get("name") == HUB_CACHE_VOLUME)]  # fmt: skip
    volumes.append({"name": HUB_CACHE_VOLUME, "emptyDir": {}})
    if spec.get("volumes") == volumes:
        return []
    missing.append(f"the pod lacks the verified Hub cache, the emptyDir {HUB_CACHE_VOLUME}")
    op = "replace" if "volumes" in spec else "add"
    return [{"op": op, "path": f"{pod_path}/volumes", "value": volumes}]


def _init_containers(
    spec: dict[str, Any],
    pod_path: str,
    verifiers: list[dict[str, Any]],
    steps: list[_Step],
    account: PodAccount,
    plan: VerifierPlan,
) -> list[dict[str, Any]]:
    """The verifiers right after the last loader init container; any other init container
    named like a verifier is taken out. Operations by index, after placement's (which
    change containers in place)."""
    current = spec.get("initContainers")
    path = f"{pod_path}/initContainers"
    if current is not None and not isinstance(current, list):
        plan.refusals.append("its initContainers are not a list")
        return []
    current = current or []
    stale = [i for i, c in enumerate(current) if _is_verifier(c)]
    base = [c for i, c in enumerate(current) if i not in stale]
    roles = {c.name: c.role for c in account.containers if c.where == "initContainers"}
    loaders = [i for i, c in enumerate(base) if roles.get(_name(c)) == "loader"]
    at = loaders[-1] + 1 if loaders else 0
    early = [_name(c) for c in base[:at] if roles.get(_name(c)) == "inference"]
    if early:
        plan.refusals.append(
            f"the sidecar {', '.join(early)} serves a model and starts before the pod's loaders "
            f"finish, so before any verifier: list it after them"
        )
    plan.refusals += _late_writers(spec, steps, base[:at])
    desired = base[:at] + verifiers + base[at:]
    if desired == current:
        return []
    plan.missing += _differences(current, verifiers)
    if not current:
        return [{"op": "add", "path": path, "value": desired}]
    ops: list[dict[str, Any]] = [{"op": "remove", "path": f"{path}/{i}"} for i in reversed(stale)]
    ops += [{"op": "add", "path": f"{path}/{at + i}", "value": v} for i, v in enumerate(verifiers)]
    return ops


def _late_writers(spec: dict[str, Any], steps: list[_Step], before: list[Any]) -> list[str]:
    """Containers that can write a verified volume after its verifier ran: anything but the
    init containers that finish before it (and the server that reads it)."""
    done_before = {_name(c) for c in before if not _dict(c).get("restartPolicy")}
    found = []
    for step in steps:
        volume = step.mount["name"]
        for where in ("initContainers", "containers", "ephemeralContainers"):
            for container in _list(spec.get(where)):
                name = _name(container)
                if _is_verifier(container) or name in done_before or name == step.server:
                    continue
                if any(_dict(m).get("name") == volume and not _dict(m).get("readOnly") for m in _list(_dict(container).get("volumeMounts"))):  # fmt: skip
                    found.append(
                        f"container {name} can write the volume {volume} after the verifier "
                        f"of {step.reference} checked it: mount it read-only there, or fill "
                        f"the volume in an init container before the verifiers"
                    )
    return list(dict.fromkeys(found))


def _differences(current: list[Any], verifiers: list[dict[str, Any]]) -> list[str]:
    """What is wrong with the verifiers the pod has, in words."""
    found = {_name(c): c for c in current if _is_verifier(c)}
    problems = []
    for verifier in verifiers:
        name = verifier["name"]
        have = found.pop(name, None)
        if have is None:
            problems.append(f"the load-time verifier {name} ({verifier['command'][2]}) is missing")
        elif have != verifier:
            fields = sorted(k for k in {*verifier, *have} if have.get(k) != verifier.get(k))
            problems.append(f"the load-time verifier {name} is not the one admission requires ({', '.join(fields)} differ)")  # fmt: skip
    problems += [f"the init container {n} is named as a verifier but verifies nothing admission asked for" for n in found]  # fmt: skip
    return problems or ["the load-time verifiers are not where they must run: right after the pod's last loader"]  # fmt: skip


# -- reading the pod spec (any value may have any type) ----------------------------------


def _is_verifier(container: Any) -> bool:
    return _name(container).startswith(PREFIX)


def _name(container: Any) -> str:
    name = container.get("name") if isinstance(container, dict) else None
    return name if isinstance(name, str) else ""


def _container_spec(spec: dict[str, Any], account: ContainerAccount) -> dict[str, Any]:
    for candidate in _list(spec.get(account.where)):
        if _name(candidate) == account.name:
            return candidate
    return {}


def _located(spec: dict[str, Any], names: list[str]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for where in ("initContainers", "containers"):
        for index, container in enumerate(_list(spec.get(where))):
            if _name(container) in names and not (where == "initContainers" and _is_verifier(container)):  # fmt: skip
                yield where, index, container


def _mount_of(container: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The container's innermost volumeMount holding `path`, as the verifier mounts it."""
    best: dict[str, Any] | None = None
    for mount in _list(container.get("volumeMounts")):
        if not isinstance(mount, dict) or not isinstance(mount.get("mountPath"), str):
            continue
        at = posixpath.normpath("/" + mount["mountPath"].lstrip("/"))
        if (path == at or path.startswith(at.rstrip("/") + "/")) and (
            best is None or len(at) > len(best["mountPath"])
        ):
            best = {k: mount[k] for k in ("name", "subPath", "subPathExpr") if k in mount}
            best["mountPath"] = at
    return best


__all__ = ["HUB_CACHE_PATH", "HUB_CACHE_VOLUME", "PREFIX", "VerifierPlan", "plan_verifiers"]
