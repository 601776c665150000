"""admission: the Kubernetes admission webhook that checks inference pods' models.

`admission.review(objects, policy=load_policy(path))` decides objects as the cluster would,
without a cluster: the library call of `mlbom admission review`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from admission.policy import Policy
    from admission.reviewer import AdmissionRequest, Decision


def review(
    objects: Iterable[dict[str, Any]],
    *,
    policy: Policy,
    stores: Sequence[str] = (),
    namespace: str = "default",
    mutate: bool = True,
) -> list[tuple[AdmissionRequest, Decision]]:
    """Decide Kubernetes objects exactly as the cluster would, each in the AdmissionReview
    for creating it (objects naming no namespace go to `namespace`): mlbom's mutating webhook
    first (placement, the load-time verifier; `mutate=False` where the chart's
    `mutating.enabled` is off), its patch applied, then the validating webhook. A denial of
    the mutating webhook is the decision. `stores` are looked in after the policy's own.
    Nothing is recorded."""
    import asyncio

    from admission import patches
    from admission.manifests import admission_request
    from admission.policy import Policy
    from admission.reviewer import Reviewer

    if not isinstance(policy, Policy):
        raise TypeError("policy: give a loaded Policy (admission.policy_loader.load_policy)")

    reviewer = Reviewer.for_policy(policy, stores)
    requests = [admission_request(o, namespace=namespace) for o in objects]

    async def decide(request: AdmissionRequest) -> tuple[AdmissionRequest, Decision]:
        if mutate:
            mutation = await reviewer.mutate(request)
            if not mutation.allowed:
                return request, mutation
            if mutation.patch:
                patched = patches.apply(request.parsed_object(), mutation.patch)
                request = admission_request(patched, namespace=namespace)
        return request, await reviewer.review(request)

    async def decide_all() -> list[tuple[AdmissionRequest, Decision]]:
        return [await decide(r) for r in requests]

    return asyncio.run(decide_all())
