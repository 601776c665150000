"""A value a pod names, as mlbom names the model: ``hf://ORG/REPO@<commit>`` for a Hub
repository (a commit in lower case, as the Hub has it), ``oci://REGISTRY/REPO@sha256:…``
for an image or artifact, and the raw value for what mlbom cannot check."""

from __future__ import annotations

import re

from admission.discovery.findings import ModelUse
from mlbom.errors import MlbomError
from mlbom.references import HUB_REPO, full_image_name, parse

ANNOTATION = "mlbom.dev/model"
_COMMIT = re.compile(r"^[0-9A-Fa-f]{40}$")


def is_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~", "file://")) or value in (".", "..")


def unpinned_hint(repo: str, pin: str | None) -> str:
    hint = f"name the commit: hf://{repo}@<40-hex commit>"
    return hint + f" ({pin.format(repo=repo)})" if pin else hint


def unmappable_hint(value: str) -> str:
    what = value.split("://", 1)[0] + ":// storage" if "://" in value else "this value"
    return (
        f"mlbom can check Hugging Face and OCI models only, not {what}: serve the model from "
        f"hf://ORG/REPO@<commit> or an OCI artifact by digest, or, for a model on a volume, "
        f"declare it with the annotation {ANNOTATION}: hf://ORG/REPO@<commit> "
        f"(or oci://REGISTRY/REPO@sha256:<digest>)"
    )


def raw(
    value: str,
    source: str,
    container: str | None,
    hint: str | None = None,
    path: str | None = None,
) -> ModelUse:
    return ModelUse(value, False, source, container, False, hint or unmappable_hint(value), path=path)  # fmt: skip


def hub(
    body: str, source: str, container: str | None, revision: str | None, pin: str | None
) -> ModelUse:
    """``ORG/REPO`` with mlbom's ``@REVISION`` or KServe's ``:REVISION`` (a Hub repository
    name has neither character), or the revision given beside it (``--revision``)."""
    if "@" in body:
        repo, _, rev = body.partition("@")
    elif ":" in body:
        repo, _, rev = body.rpartition(":")
    else:
        repo, rev = body, ""
    rev = rev or (revision or "")
    if _COMMIT.match(rev):
        rev = rev.lower()  # the Hub resolves a commit in any case
    text = f"hf://{repo}" + (f"@{rev}" if rev else "")
    try:
        pinned = parse(text).pinned
    except (MlbomError, ValueError):
        return raw(f"hf://{body}", source, container, "not a Hub repository id: write hf://ORG/REPO@<40-hex commit>")  # fmt: skip
    return ModelUse(text, pinned, source, container, True, None if pinned else unpinned_hint(repo, pin))  # fmt: skip


def oci(image: str, source: str, container: str | None) -> ModelUse:
    text = "oci://" + full_image_name(image)
    try:
        ref = parse(text)
    except (MlbomError, ValueError):
        hint = "not an OCI reference: write REGISTRY/REPO@sha256:<digest> (lower-case repository)"
        return raw(f"oci://{image}", source, container, hint)
    if ref.pinned:
        return ModelUse(str(ref), True, source, container)
    hint = f"name the manifest digest: {ref.name}@sha256:<digest> instead of the tag {ref.tag}"
    return ModelUse(str(ref), False, source, container, True, hint)


def reference(
    value: str,
    source: str,
    container: str | None = None,
    revision: str | None = None,
    pin: str | None = None,
    *,
    uri: bool = False,
) -> ModelUse:
    """The model `value` names: a URI, a Hub repository id or an image; not a local path.
    With `uri`, a bare ``ORG/REPO`` is not a Hub id (storage URIs are URIs)."""
    if value.startswith("hf://"):
        return hub(value.removeprefix("hf://"), source, container, revision, pin)
    if value.startswith("oci://"):
        return oci(value.removeprefix("oci://"), source, container)
    if not uri and "://" not in value and HUB_REPO.match(value):
        return hub(value, source, container, revision, pin)
    return raw(value, source, container)


def same_model(a: str, b: str) -> bool:
    """Whether two references name the same model: Hub repository ids compare without
    regard to case, as the Hub resolves them."""
    if a.startswith("hf://") and b.startswith("hf://"):
        return a.lower() == b.lower()
    return a == b
