"""A container's environment as the kubelet builds it, and what the webhook cannot see in it.

The kubelet's rules: ``envFrom`` sources first, in order, then ``env`` entries in order, a
later definition of a name replacing an earlier one; ``$(VAR)`` in a value expands with the
variables defined before it, in command and args with all of them; ``$$`` is a ``$``; an
undefined ``$(VAR)`` stays as written. Values from ConfigMaps, Secrets and the Downward API
are unknown here, not absent: such a value is a string holding `UNKNOWN`, and a name the
``env`` list does not define may still come from an ``envFrom`` source.
"""

from __future__ import annotations

import re
from typing import Any

from admission.discovery.untrusted import Scan, as_dict, as_str

UNKNOWN = "\ue000"  # marks a value (or a part of a word) the webhook cannot see
# the kubelet reads a name as everything up to the closing parenthesis (expansion.go)
_K8S_VAR = re.compile(r"\$(\$|\(([^)]*)\))")


def is_unknown(word: str) -> bool:
    return UNKNOWN in word


class Env:
    """The variables a container starts with."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.origins: dict[str, str] = {}  # where an unknown value comes from
        self.open: list[str] = []  # envFrom sources: any other name may be defined there

    @classmethod
    def of(cls, container: dict[str, Any], scan: Scan, name: str | None) -> Env:
        env = cls()
        for source in scan.dicts(container.get("envFrom"), f"container {name}: envFrom", name):
            ref = as_dict(source.get("configMapRef")) or as_dict(source.get("secretRef"))
            kind = "ConfigMap" if "configMapRef" in source else "Secret"
            env.open.append(f"envFrom {kind} {as_str(ref.get('name'))}")
        for item in scan.dicts(container.get("env"), f"container {name}: env", name):
            key = as_str(item.get("name"))
            if not key:
                continue
            value = scan.text(item.get("value"), f"container {name}: env {key}", name)
            if "valueFrom" in item:
                env.set_unknown(key, _value_from(as_dict(item.get("valueFrom"))))
            elif value is not None or "value" not in item:
                env.set(key, env.expand(value or ""))
            else:  # a value over the limit: the scan says so; it is not known here either
                env.set_unknown(key, "a value longer than mlbom reads")
        return env

    def set(self, key: str, value: str) -> None:
        self.values[key] = value
        self.origins.pop(key, None)

    def set_unknown(self, key: str, origin: str) -> None:
        self.values[key] = UNKNOWN
        self.origins[key] = origin

    def get(self, key: str) -> str | None:
        """The value, `UNKNOWN` when the webhook cannot see it, None when surely unset."""
        if key in self.values:
            return self.values[key]
        return UNKNOWN if self.open else None

    def origin(self, key: str) -> str:
        """Where an unknown value may come from, for messages."""
        if key in self.origins:
            return self.origins[key]
        return ", ".join(self.open) or "somewhere the webhook cannot see"

    def expand(self, text: str) -> str:
        """Kubernetes' ``$(VAR)`` expansion; ``$$`` is a ``$``."""

        def one(m: re.Match[str]) -> str:
            if m[1] == "$":
                return "$"
            value = self.get(m[2])
            return m[0] if value is None else value

        return _K8S_VAR.sub(one, text)

    def copy(self) -> Env:
        other = Env()
        other.values, other.origins, other.open = (
            dict(self.values),
            dict(self.origins),
            list(self.open),
        )
        return other


def _value_from(source: dict[str, Any]) -> str:
    for field, what in (
        ("configMapKeyRef", "ConfigMap"),
        ("secretKeyRef", "Secret"),
        ("fieldRef", "the pod's field"),
        ("resourceFieldRef", "a resource field"),
    ):
        ref = as_dict(source.get(field))
        if ref:
            name = as_str(ref.get("name")) or as_str(ref.get("fieldPath")) or ""
            key = as_str(ref.get("key")) or as_str(ref.get("resource")) or ""
            return f"{what} {name} {key}".strip()
    return "valueFrom"
