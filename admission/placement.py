"""Confidential-computing placement: the JSONPatch that puts a pod (or a workload's pod
template) into a TEE, the refusals when it cannot be made safe, and the checks the
validating webhook makes on the final pod. Pure functions: no I/O, no cluster access.

    need = combine([CcNeed(reason="namespace secure requires it"), cc_need_of_bom(bom)])
    for path in pod_spec_paths(obj):                 # "/spec", "/spec/template/spec", …
        placement = place(obj, need, policy.confidential, path)
        placement.refusal or placement.patch         # deny, or answer with the patch

A placement sets the runtime class of the first TEE in the policy's order that the need
allows, replacing an unset or replaceable one (`nvidia`, `runc`); copies that RuntimeClass's
overhead, node selector and tolerations into a Pod whose class it sets (the API server's
RuntimeClass step ran before the webhook with the old class; it runs again after a webhook
changed the pod, and then rejects an overhead that differs from the class's, which is why
the copy is exact and a stale one is the policy's to fix); merges the TEE's node labels
and, for GPU pods, the confidential-GPU label; adds the policy's tolerations; and renames GPU
resources for passthrough. The patch is deterministic, and idempotent: `place` on its own
output returns no patch. A pod with an image volume, a privileged container, a hostPath
volume or a host namespace is refused: none of those keep the model inside the TEE.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from admission.discovery import gpu_requests
from admission.policy import Confidential, RuntimeClassDetails
from mlbom.bom import read
from mlbom.untrusted import as_dict as _dict
from mlbom.untrusted import as_list as _list

# Kinds whose pods are built from a template at this JSON Pointer.
_TEMPLATE_SPECS = {
    **dict.fromkeys(
        ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"),
        ("/spec/template/spec",),
    ),
    "CronJob": ("/spec/jobTemplate/spec/template/spec",),
    "LeaderWorkerSet": (
        "/spec/leaderWorkerTemplate/leaderTemplate/spec",
        "/spec/leaderWorkerTemplate/workerTemplate/spec",
    ),
}
_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
_CONTAINERS = ("containers", "initContainers", "ephemeralContainers")
_RESOURCED = ("containers", "initContainers")  # ephemeral containers have no resources
_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
_SUFFIXES = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"), "Ki": Decimal(2**10), "Mi": Decimal(2**20),
    "Gi": Decimal(2**30), "Ti": Decimal(2**40), "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}  # fmt: skip


@dataclass(frozen=True)
class CcNeed:
    """What confidential computing a pod's models need."""

    #: the TEEs the model allows; empty: any the policy offers
    tees: tuple[str, ...] = ()
    #: the model requires confidential GPUs (mlbom:cc:gpu)
    gpu: bool = False
    #: why it is needed, for messages ("namespace secure requires it")
    reason: str = ""
    #: the needs combined allow no TEE in common (`combine` of sev-snp-only and tdx-only)
    conflicting: bool = False


@dataclass(frozen=True)
class Placement:
    """The answer for one pod spec: a patch, or a refusal (then the patch is empty)."""

    #: RFC 6902 operations, paths from the root of the admitted object
    patch: list[dict[str, Any]]
    tee: str | None
    refusal: str | None


def cc_need_of_bom(bom: dict[str, Any]) -> CcNeed | None:
    """The need a BOM's model declares (`mlbom:cc:required=true`, `mlbom:cc:tee`, repeated
    or comma-separated, `mlbom:cc:gpu=true`); None when it does not require CC."""
    model = read.model(_dict(bom))

    def values(name: str) -> list[str]:
        return [v.strip().lower() for v in read.property_values(model, name)]

    if "true" not in values("mlbom:cc:required"):
        return None
    tees = (t.strip() for v in values("mlbom:cc:tee") for t in v.split(","))
    name = _text(model.get("purl")) or _text(model.get("name")) or "the model"
    return CcNeed(
        tees=tuple(dict.fromkeys(t for t in tees if t)),
        gpu="true" in values("mlbom:cc:gpu"),
        reason=f"the BOM of {name} requires it",
    )


def combine(needs: Iterable[CcNeed | None]) -> CcNeed | None:
    """The stricter of several needs: the TEEs every one allows (a need that names none
    allows any), GPUs if any asks, the reasons joined; None when there is no need."""
    given = [n for n in needs if n is not None]
    if not given:
        return None
    tees: tuple[str, ...] = ()
    conflicting = any(n.conflicting for n in given)
    for need in given:
        if not need.tees:
            continue
        if not tees:
            tees = need.tees
        else:
            tees = tuple(t for t in tees if t in need.tees)
            conflicting |= not tees
    reasons = [_reason(n, conflicting) for n in given]
    return CcNeed(
        tees=() if conflicting else tees,
        gpu=any(n.gpu for n in given),
        reason="; ".join(dict.fromkeys(r for r in reasons if r)),
        conflicting=conflicting,
    )


def pod_spec_paths(obj: dict[str, Any]) -> list[str]:
    """The JSON Pointer of every pod spec in `obj`: a Pod's, a workload's template's
    (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob,
    LeaderWorkerSet). [] for other kinds: KServe's resources become Pods that are placed
    when they are created."""
    obj = _dict(obj)
    kind = obj.get("kind")
    if not isinstance(kind, str):
        return []
    paths = ("/spec",) if kind == "Pod" else _TEMPLATE_SPECS.get(kind, ())
    return [p for p in paths if isinstance(_at(obj, p), dict)]


def place(obj: dict[str, Any], need: CcNeed, cc: Confidential, pod_path: str) -> Placement:
    """The patch that places the pod spec at `pod_path` of `obj` in a TEE, or why it
    cannot be placed. Call it only for a pod that needs CC: it always places."""
    spec = _at(obj, pod_path)
    if not isinstance(spec, dict):
        return _refuse([f"the object has no pod spec at {pod_path}"], need)
    problems = _unsafe(spec)
    choice = _choose(spec, need, cc)
    if isinstance(choice, str):
        return _refuse([*problems, choice], need)
    if problems:
        return _refuse(problems, need)
    tee, runtime_class, sets_class = choice
    patch: list[dict[str, Any]] = []
    # Only a Pod gets the RuntimeClass's own overhead and scheduling, and only when its class
    # is set here: otherwise the API server's RuntimeClass step copies them (into the Pod it
    # admits, or later into each Pod a template makes), from the cluster's real class.
    details = (
        cc.runtime_class_details.get(runtime_class, RuntimeClassDetails())
        if sets_class and _dict(obj).get("kind") == "Pod"
        else None
    )
    if sets_class:
        op = "replace" if "runtimeClassName" in spec else "add"
        patch.append({"op": op, "path": f"{pod_path}/runtimeClassName", "value": runtime_class})
    if details is not None:
        patch += _overhead(spec, details, pod_path)
    selectors = _wanted_selectors(spec, need, cc, tee, details)
    patch += _merge_selector(spec, selectors, pod_path, problems)
    tolerations = [dict(t) for t in cc.tolerations]
    if details is not None:
        tolerations += [dict(t) for t in details.tolerations]
    patch += _add_tolerations(spec, tolerations, pod_path, problems)
    patch += _renames(spec, cc.gpu_resource_renames, pod_path, problems)
    if problems:
        return _refuse(problems, need)
    return Placement(patch, tee, None)


def confidential_problems(spec: dict[str, Any], need: CcNeed, cc: Confidential) -> list[str]:
    """Why the final pod spec does not run confidentially as `need` asks, each an actionable
    sentence; [] when it does: a runtime class of a TEE both the policy and the need allow,
    that TEE's node labels (and the confidential-GPU label when it asks for GPUs), and
    nothing that reaches outside the TEE."""
    spec = _dict(spec)
    why = f"the pod needs confidential computing ({need.reason or 'the model requires it'})"
    problems = [f"{why}, but {p}" for p in _unsafe(spec)]
    if need.conflicting:
        return [f"{why}, but no TEE satisfies every requirement", *problems]
    allowed = _allowed(need, cc)
    runtime = spec.get("runtimeClassName")
    tee = next((t for t in allowed if cc.runtime_classes.get(t) == runtime), None)
    if tee is None:
        choices = ", ".join(f"{t}: {cc.runtime_classes[t]}" for t in allowed) or "none"
        problems.insert(
            0,
            f"{why}, but its runtime class is {runtime or 'not set'}, not a confidential one "
            f"the model and the policy allow ({choices}): enable mlbom's mutating webhook or "
            f"set runtimeClassName",
        )
        return problems
    selector = _dict(spec.get("nodeSelector"))
    wanted = _wanted_selectors(spec, need, cc, tee, None)
    missing = [f"{k}={v}" for k, (v, _) in sorted(wanted.items()) if selector.get(k) != v]
    if missing:
        problems.insert(
            0,
            f"{why} on {tee} nodes, but its nodeSelector lacks {', '.join(missing)}: enable "
            f"mlbom's mutating webhook or add them",
        )
    return problems


# -- choosing the TEE and the runtime class -------------------------------------------------


def _allowed(need: CcNeed, cc: Confidential) -> list[str]:
    """The TEEs both allow, in the policy's order of preference, that have a class."""
    return [
        t
        for t in cc.tees
        if (not need.tees or t in need.tees) and t in cc.runtime_classes and not need.conflicting
    ]


def _choose(spec: dict[str, Any], need: CcNeed, cc: Confidential) -> tuple[str, str, bool] | str:
    """(the TEE, its runtime class, whether the class must be set), or why none can be."""
    if need.conflicting:
        return "no TEE satisfies every requirement"
    allowed = _allowed(need, cc)
    if not allowed and need.tees:
        return (
            f"the model allows only {', '.join(need.tees)}; the policy offers "
            f"{', '.join(cc.tees) or 'none'}: add one of the model's TEEs to confidential.tees"
        )
    if not allowed:
        return "none of the policy's TEEs has a runtime class"
    current = spec.get("runtimeClassName")
    for tee in allowed:  # a confidential class the need allows is kept, whichever TEE
        if cc.runtime_classes[tee] == current:
            return tee, current, False
    first = allowed[0]
    wanted = cc.runtime_classes[first]
    if not current or current in cc.replaceable_runtime_classes:
        return first, wanted, True
    other = next((t for t, name in cc.runtime_classes.items() if name == current), None)
    if other is not None:
        return (
            f"the pod names the runtime class {current} of the TEE {other}, which the model "
            f"does not allow (it allows {', '.join(allowed)}): name {wanted} or remove "
            "runtimeClassName"
        )
    replaceable = ", ".join(cc.replaceable_runtime_classes) or "none"
    return (
        f"the pod names the runtime class {current}, which is not confidential and which "
        f"the policy does not allow replacing (confidential.replaceableRuntimeClasses: "
        f"{replaceable}): remove runtimeClassName or name {wanted}"
    )


def _unsafe(spec: dict[str, Any]) -> list[str]:
    """What would let the model or its data out of the TEE, each a sentence fragment."""
    found = []
    for volume in _dicts(spec.get("volumes")):
        name = volume.get("name", "?")
        if "image" in volume:
            reference = _text(_dict(volume["image"]).get("reference")) or "an image"
            found.append(
                f"volume {name} mounts {reference} as an image volume: Kata Containers cannot "
                "mount image volumes, and weights the host pulls would sit outside the TEE; "
                "ship the model in a container image (KServe's modelcar) or download it in the pod"
            )
        if "hostPath" in volume:
            path = _text(_dict(volume["hostPath"]).get("path")) or "?"
            found.append(
                f"volume {name} is the host's {path} (hostPath): the host's files are outside "
                "the TEE; use an emptyDir or a persistent volume claim"
            )
    for key in _CONTAINERS:
        for container in _dicts(spec.get(key)):
            if _dict(container.get("securityContext")).get("privileged") is True:
                found.append(
                    f"container {container.get('name', '?')} is privileged, which confidential "
                    "containers do not allow: remove securityContext.privileged"
                )
    for key in _HOST_NAMESPACES:
        if spec.get(key) is True:
            found.append(
                f"it sets {key}: a confidential pod cannot share the host's namespaces; remove it"
            )
    return found


def _refuse(problems: list[str], need: CcNeed) -> Placement:
    why = need.reason or "the model requires it"
    return Placement(
        [],
        None,
        f"the pod needs confidential computing ({why}) and cannot be placed: "
        + "; ".join(dict.fromkeys(problems)),
    )


def _reason(need: CcNeed, conflicting: bool) -> str:
    # name the TEEs when they are why nothing is left
    if conflicting and need.tees and need.reason:
        return f"{need.reason} (only {', '.join(need.tees)})"
    return need.reason


# -- the patch ------------------------------------------------------------------------------


def _overhead(spec: dict[str, Any], details: RuntimeClassDetails, pod_path: str) -> list[dict]:
    """Exactly the RuntimeClass's podFixed: the API server rejects a pod whose overhead
    differs from its class's, or that has one when the class has none."""
    path = f"{pod_path}/overhead"
    current = spec.get("overhead")
    wanted = {k: details.overhead[k] for k in sorted(details.overhead)}
    if not wanted:
        return [{"op": "remove", "path": path}] if current is not None else []
    if current is None:
        return [{"op": "add", "path": path, "value": wanted}]
    if isinstance(current, dict) and _same_resources(current, wanted):
        return []
    return [{"op": "replace", "path": path, "value": wanted}]


def _wanted_selectors(
    spec: dict[str, Any],
    need: CcNeed,
    cc: Confidential,
    tee: str,
    details: RuntimeClassDetails | None,
) -> dict[str, tuple[str, str]]:
    """label -> (value, whose it is), for messages; the first source of a label wins."""
    sources: list[tuple[str, Mapping[str, str]]] = [
        (f"the TEE {tee}'s", cc.node_selectors.get(tee, {}))
    ]
    if details is not None:
        sources.append((f"the runtime class {cc.runtime_classes[tee]}'s", details.node_selector))
    names = [*cc.gpu_resource_renames, *cc.gpu_resource_renames.values()]
    if need.gpu or any(n > 0 for n in gpu_requests(spec, names).values()):
        sources.append(("the confidential GPUs'", cc.gpu_node_selector))
    wanted: dict[str, tuple[str, str]] = {}
    for whose, labels in sources:
        for key, value in labels.items():
            wanted.setdefault(key, (value, whose))
    return wanted


def _merge_selector(
    spec: dict[str, Any],
    wanted: dict[str, tuple[str, str]],
    pod_path: str,
    problems: list[str],
) -> list[dict]:
    path = f"{pod_path}/nodeSelector"
    current = spec.get("nodeSelector")
    if not wanted:
        return []
    if current is None:
        return [{"op": "add", "path": path, "value": {k: wanted[k][0] for k in sorted(wanted)}}]
    if not isinstance(current, dict):
        problems.append("its nodeSelector is not a mapping")
        return []
    ops = []
    for key in sorted(wanted):
        value, whose = wanted[key]
        if key not in current:
            ops.append({"op": "add", "path": f"{path}/{escape(key)}", "value": value})
        elif current[key] != value:
            problems.append(
                f"nodeSelector {key}={current[key]} conflicts with {whose} {key}={value}: "
                "remove it from the pod"
            )
    return ops


def _add_tolerations(
    spec: dict[str, Any], wanted: list[dict[str, Any]], pod_path: str, problems: list[str]
) -> list[dict]:
    path = f"{pod_path}/tolerations"
    current = spec.get("tolerations")
    if current is not None and not isinstance(current, list):
        problems.append("its tolerations are not a list")
        return []
    missing: list[dict[str, Any]] = []
    for toleration in wanted:
        if toleration not in (current or []) and toleration not in missing:
            missing.append(toleration)
    if not missing:
        return []
    if current is None:
        return [{"op": "add", "path": path, "value": missing}]
    return [{"op": "add", "path": f"{path}/-", "value": t} for t in missing]


def _renames(
    spec: dict[str, Any], renames: Mapping[str, str], pod_path: str, problems: list[str]
) -> list[dict]:
    """Each old resource name becomes the new one with the same quantity: confidential
    GPUs are passed through to the VM under another name."""
    ops: list[dict] = []
    for key in _RESOURCED:
        containers = spec.get(key)
        if not isinstance(containers, list):
            continue
        for i, container in enumerate(containers):
            resources = _dict(_dict(container).get("resources"))
            name = _dict(container).get("name", "?")
            for field in ("limits", "requests"):
                amounts = resources.get(field)
                if not isinstance(amounts, dict):
                    continue
                base = f"{pod_path}/{key}/{i}/resources/{field}"
                for old in sorted(renames):
                    if old not in amounts:
                        continue
                    new = renames[old]
                    if new in amounts and not _same_quantity(amounts[new], amounts[old]):
                        problems.append(
                            f"container {name} has {field} {old}={amounts[old]} and "
                            f"{new}={amounts[new]}: confidential GPUs are passed through as "
                            f"{new}; ask for one of them"
                        )
                        continue
                    ops.append({"op": "remove", "path": f"{base}/{escape(old)}"})
                    if new not in amounts:
                        ops.append(
                            {"op": "add", "path": f"{base}/{escape(new)}", "value": amounts[old]}
                        )
    return ops


def escape(key: str) -> str:
    """A key as one JSON Pointer token (RFC 6901): `~` is `~0`, `/` is `~1`."""
    return key.replace("~", "~0").replace("/", "~1")


# -- quantities -----------------------------------------------------------------------------


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity's value ("10240Mi", "1.0", "250m", 2); None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str) or not (m := _QUANTITY.match(value.strip())):
        return None
    number, suffix = m[1], m[2] or ""
    try:
        if suffix[:1] in ("e", "E") and len(suffix) > 1:
            return Decimal(number) * Decimal(10) ** int(suffix[1:])
        return Decimal(number) * _SUFFIXES[suffix]
    except (InvalidOperation, ValueError, OverflowError):
        return None


def _same_quantity(a: Any, b: Any) -> bool:
    qa, qb = quantity(a), quantity(b)
    return qa == qb if qa is not None and qb is not None else a == b


def _same_resources(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """As the API server compares resource lists: the same names, equal quantities."""
    return a.keys() == b.keys() and all(_same_quantity(a[k], b[k]) for k in a)


# -- reading objects (any value may have any type) ------------------------------------------


def _at(obj: Any, pointer: str) -> Any:
    for token in pointer.split("/")[1:]:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(token.replace("~1", "/").replace("~0", "~"))
    return obj


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    return (v for v in _list(value) if isinstance(v, dict))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


__all__ = [
    "CcNeed",
    "Placement",
    "cc_need_of_bom",
    "combine",
    "confidential_problems",
    "escape",
    "place",
    "pod_spec_paths",
    "quantity",
]
