"""admission: the Kubernetes admission webhook that checks inference pods' models."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from admission.reviewer import AdmissionRequest, Decision


def review(
    objects: Iterable[dict[str, Any]],
    *,
    policy: Path,
    stores: Sequence[str] = (),
    namespace: str = "default",
) -> list[tuple[AdmissionRequest, Decision]]:
    """Decide Kubernetes objects exactly as the webhook would, each in the AdmissionReview
    for creating it (objects naming no namespace go to `namespace`). Nothing is recorded."""
    import asyncio

    from admission.manifests import admission_request
    from admission.reviewer import Reviewer

    reviewer = Reviewer.load(policy, stores)
    requests = [admission_request(o, namespace=namespace) for o in objects]

    async def decide_all() -> list[Decision]:
        return [await reviewer.review(r) for r in requests]

    return list(zip(requests, asyncio.run(decide_all()), strict=True))
