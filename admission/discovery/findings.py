"""What discovery reports of a pod: every container with its role and the models it loads,
and every problem that keeps a container or the pod from being accounted for.

A problem carries a `code` that names its class (tests, metrics and `--json` output match
on it) and a message that says what was found and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Code = Literal[
    "unpinned",  # a model named without a commit or digest
    "unverified",  # a pinned model without a valid attestation (set by the reviewer)
    "no-model",  # an inference or loader container whose model cannot be identified
    "annotation-disagrees",  # mlbom.dev/model names another model than the one found
    "ambiguous",  # an argument the runtime could read otherwise than mlbom does
    "config-file",  # the runtime reads a file the webhook cannot see
    "shell",  # a shell line mlbom cannot fully read
    "unknown-value",  # a ConfigMap, Secret or Downward API value that may name a model
    "byte-source",  # bytes from a place the policy does not list
    "scan-limit",  # more than a scan reads: refused, never cut
    "unmappable",  # a model mlbom cannot check (s3://, a PVC path) and nothing names it
    "confidential",  # the pod does not run where its models' confidential computing needs
    "deadline",  # verification did not finish in time (set by the reviewer)
    "offline-cache",  # a server told to load from a Hub cache it does not fill itself
    "load-time",  # load-time verification is required and missing, altered or impossible
]
Role = Literal["inference", "loader", "other"]


@dataclass(frozen=True)
class ModelUse:
    """A model the pod loads, as mlbom names it, and where in the pod it was found.

    `reference` is canonical (``hf://ORG/REPO@<commit>``, ``oci://REGISTRY/REPO@sha256:…``)
    when `mappable`, else the raw value (``s3://…``, a path). `on_word` marks a model that
    only the ``mlbom.dev/model`` annotation names for a path discovery could not resolve.
    `path` is the folder `container` reads it from, when it reads a local path (it is None for
    a model the runtime downloads by name); `unreadable_before_start` says why no init
    container can read its bytes, when none can (a KServe modelcar's files are linked in
    while the pod runs; a container that downloads its own model)."""

    reference: str
    pinned: bool
    source: str
    container: str | None = None
    mappable: bool = True
    hint: str | None = None
    on_word: bool = False
    path: str | None = None
    unreadable_before_start: str | None = None


@dataclass(frozen=True)
class Problem:
    """Why something in the pod cannot be accounted for, and what to do about it."""

    code: Code
    message: str
    container: str | None = None


@dataclass
class ContainerAccount:
    """One container of the pod: its role, why, the runtime that reads its command line,
    the models it loads and what could not be accounted for."""

    name: str
    where: str  # containers, initContainers or ephemeralContainers
    role: Role
    why: str
    runtime: str | None = None
    models: list[ModelUse] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # the unresolved local paths it reads a model from: the annotation may name them
    paths: list[ModelUse] = field(default_factory=list)
    # folders its own loaders fill, and with what (a download before the server starts)
    local: dict[str, list[ModelUse]] = field(default_factory=dict)
    # the Hub caches its runtime's own options name (--download-dir), which win over HF_HUB_CACHE
    own_caches: list[str] = field(default_factory=list)


@dataclass
class PodAccount:
    """Everything a pod (or a workload's pod template, or a custom resource) loads."""

    containers: list[ContainerAccount] = field(default_factory=list)
    models: list[ModelUse] = field(default_factory=list)  # named by the object itself
    problems: list[Problem] = field(default_factory=list)

    @property
    def reviewed(self) -> bool:
        """Whether the pod loads a model: an inference or loader container, or a model
        the object itself names."""
        return bool(self.models or self.problems) or any(c.role != "other" for c in self.containers)

    def all_models(self) -> list[ModelUse]:
        """Every model, the object's first, then each container's, once per reference."""
        found: dict[str, ModelUse] = {}
        for use in [*self.models, *(m for c in self.containers for m in c.models)]:
            found.setdefault(use.reference, use)
        return list(found.values())

    def all_problems(self) -> list[Problem]:
        return [*self.problems, *(p for c in self.containers for p in c.problems)]
