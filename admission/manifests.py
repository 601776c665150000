"""Manifests on disk, for the offline review (shift left): multi-document YAML or JSON,
`List` kinds and Helm output, each object wrapped in the AdmissionReview the API server
would send for creating it, so that `mlbom admission review` decides exactly as the server."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml

from admission.reviewer import API_VERSION, AdmissionRequest, parse_review
from mlbom import safeyaml
from mlbom.errors import BadInputError
from mlbom.files import read_bounded

MAX_MANIFEST = 16 << 20
MAX_OBJECTS = 10_000


def objects_in(path: Path) -> list[dict[str, Any]]:
    """The Kubernetes objects of a manifest file (`-` for stdin), Lists expanded."""
    data = read_bounded(path, MAX_MANIFEST)
    try:
        documents = list(safeyaml.load_all(data.decode("utf-8", "replace")))
    except yaml.YAMLError as e:
        raise BadInputError(f"{path} is not valid YAML: {e}") from None
    found: list[dict[str, Any]] = []
    for document in documents:
        if document is None:
            continue  # an empty document between two `---`
        if not isinstance(document, dict):
            raise BadInputError(f"{path}: a document is not a Kubernetes object")
        items = document.get("items")
        if str(document.get("kind", "")).endswith("List") and isinstance(items, list):
            found += [item for item in items if isinstance(item, dict)]
        else:
            found.append(document)
        if len(found) > MAX_OBJECTS:
            raise BadInputError(f"{path} holds more than {MAX_OBJECTS} objects")
    return found


def admission_review(obj: dict[str, Any], *, namespace: str = "default") -> dict[str, Any]:
    """The AdmissionReview for creating `obj`, as the API server would send it."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    kind = str(obj.get("kind", ""))
    found = obj.get("metadata")
    metadata = found if isinstance(found, dict) else {}
    resource = kind.lower() + ("es" if kind.lower().endswith("s") else "s")
    return {
        "apiVersion": API_VERSION,
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": metadata.get("name") or metadata.get("generateName"),
            "namespace": metadata.get("namespace") or namespace,
            "operation": "CREATE",
            "userInfo": {"username": "mlbom-review"},
            "object": obj,
            "dryRun": True,
        },
    }


def admission_request(obj: dict[str, Any], *, namespace: str = "default") -> AdmissionRequest:
    """`admission_review(obj)` parsed as the webhook parses the API server's body."""
    return parse_review(admission_review(obj, namespace=namespace))
