"""The decision: an AdmissionReview request in, an AdmissionReview response out.

What is reviewed: Pods (CREATE, UPDATE, `pods/ephemeralcontainers`) and the pod templates of
workloads. What never is: DELETE and CONNECT, status and scale subresources, an object being
deleted. Everything is verified here, from the object itself and the stores: no label or
annotation a mutating phase or the user could set is trusted as a verdict (`mlbom.dev/model`
only names the model to check).

Fail closed: a model that cannot be verified in time, because its store is down or slow, is
a denial in enforce mode with a reason saying so. `warn` mode allows with warnings, `audit`
allows and records; excluded namespaces are allowed untouched.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from admission.discovery import (
    ANNOTATION,
    ModelUse,
    PodAccount,
    PodUnderReview,
    Problem,
    account,
    pods_in,
)
from admission.placement import (
    CcNeed,
    cc_need_of_bom,
    combine,
    confidential_problems,
    place,
    pod_spec_paths,
)
from admission.verification import ModelVerifier, Verdict, verdict_record
from admission.verifier_injection import plan_verifiers
from mlbom.errors import BadInputError

if TYPE_CHECKING:
    from admission.cluster import ClusterView
    from admission.policy import Policy

API_VERSION = "admission.k8s.io/v1"


class MalformedReview(BadInputError):
    """Not an AdmissionReview the API server would send: answered with HTTP 400 (exit 2 in
    an offline review)."""


class _Kind(msgspec.Struct):
    kind: str | None = None


class _User(msgspec.Struct):
    username: str | None = None


class _Metadata(msgspec.Struct, rename="camel"):
    name: str | None = None
    generate_name: str | None = None


class _Named(msgspec.Struct):
    metadata: _Metadata | None = None


_named_decoder = msgspec.json.Decoder(_Named)


def _object_name(raw: bytes) -> str | None:
    """The name (or generateName) in an object's metadata, for the record of a request
    that names none."""
    try:
        metadata = _named_decoder.decode(raw).metadata
    except (msgspec.DecodeError, RecursionError):
        return None
    return (metadata.name or metadata.generate_name) if metadata else None


class AdmissionRequest(msgspec.Struct, rename="camel", frozen=True):
    """The fields of an AdmissionReview request a decision and its record use. The object
    stays as the exact bytes the API server sent: decisions are made from them and cached
    by them, and they are parsed only when a decision is made."""

    uid: str
    operation: str | None = None
    sub_resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    kind: _Kind | None = None
    user_info: _User | None = None
    dry_run: bool | None = None
    object: msgspec.Raw = msgspec.Raw(b"null")
    old_object: msgspec.Raw = msgspec.Raw(b"null")

    def parsed_object(self) -> dict[str, Any]:
        """The object under review ({} when there is none)."""
        try:
            obj = msgspec.json.decode(self.object)
        except RecursionError:
            raise MalformedReview("request.object is nested too deeply") from None
        if obj is not None and not isinstance(obj, dict):
            raise MalformedReview("request.object is not an object")
        return obj or {}

    def decision_key(self) -> bytes:
        """What a decision depends on: the operation and the object, not who asked or the uid."""
        key = hashlib.sha256(
            msgspec.json.encode([self.operation, self.sub_resource, self.namespace])
        )
        key.update(self.object)
        if self.operation == "UPDATE":  # an update is judged against what it changes
            key.update(b"\x00")
            key.update(self.old_object)
        return key.digest()

    def parsed_old_object(self) -> dict[str, Any]:
        """The object before an UPDATE ({} when the request has none)."""
        try:
            obj = msgspec.json.decode(self.old_object)
        except (RecursionError, msgspec.DecodeError):
            raise MalformedReview("request.oldObject is not an object") from None
        return obj if isinstance(obj, dict) else {}


class _Review(msgspec.Struct, rename="camel"):
    api_version: str
    kind: str
    request: AdmissionRequest


_review_decoder = msgspec.json.Decoder(_Review)
_NO_REQUEST = AdmissionRequest(uid="")


def parse_review(review: bytes | dict[str, Any]) -> AdmissionRequest:
    """The request of an AdmissionReview (its JSON body, or the body parsed), checked for
    the fields a decision needs."""
    try:
        body = review if isinstance(review, bytes) else msgspec.json.encode(review)
    except (TypeError, msgspec.EncodeError) as e:
        raise MalformedReview(f"the object cannot be written as JSON ({e})") from None
    try:
        parsed = _review_decoder.decode(body)
    except msgspec.ValidationError as e:
        raise MalformedReview(f"not an {API_VERSION} AdmissionReview: {e}") from None
    except msgspec.DecodeError:
        raise MalformedReview("the body is not JSON") from None
    except RecursionError:
        raise MalformedReview("the body is nested too deeply") from None
    if parsed.api_version != API_VERSION or parsed.kind != "AdmissionReview":
        raise MalformedReview(f"not an {API_VERSION} AdmissionReview")
    request = parsed.request
    if not request.uid or len(request.uid) > 256:
        raise MalformedReview("the request has no uid")
    return request


@dataclass(frozen=True)
class Decision:
    """What was decided for an object: the same for every identical request."""

    allowed: bool
    reason: str
    category: str  # for metrics: allowed, excluded, not-inference, unpinned, no-attestation, …
    mode: str | None = None
    warnings: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    patch: list[dict[str, Any]] = field(default_factory=list)  # the mutating webhook's answer
    problems: list[Problem] = field(default_factory=list)  # each with its class (`code`)
    accounts: list[PodAccount] = field(default_factory=list)  # what was found, per pod

    def response(self, uid: str) -> dict[str, Any]:
        """The AdmissionReview the API server expects back."""
        answer: dict[str, Any] = {"uid": uid, "allowed": self.allowed}
        if not self.allowed:
            answer["status"] = {"code": 403, "reason": "Forbidden", "message": self.reason}
        if self.warnings:
            answer["warnings"] = [w[:500] for w in self.warnings[:20]]
        if self.patch:
            answer["patchType"] = "JSONPatch"
            answer["patch"] = base64.b64encode(msgspec.json.encode(self.patch)).decode()
        answer["auditAnnotations"] = {
            "decision": "allow" if self.allowed else "deny",
            "reason": self.reason[:1000],
            **({"models": ",".join(v.reference for v in self.verdicts)[:1000]} if self.verdicts else {}),
            **({"mode": self.mode} if self.mode else {}),
        }  # fmt: skip
        return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": answer}

    def answer(self, uid: str) -> bytes:
        """`response(uid)` as JSON, made once per decision: only the uid differs."""
        head, tail = self._answer
        return head + msgspec.json.encode(uid) + tail

    @cached_property
    def _answer(self) -> tuple[bytes, bytes]:
        # the uid is the first value after two constants: its first occurrence is the uid
        mark = "\x00uid"
        head, _, tail = msgspec.json.encode(self.response(mark)).partition(
            msgspec.json.encode(mark)
        )
        return head, tail

    def record(self, request: AdmissionRequest, webhook: str = "validate") -> dict[str, Any]:
        """The decision-log record of this decision for `request`."""
        record = _request_fields(request) | {
            "allowed": self.allowed, "mode": self.mode, "category": self.category,
            "reason": self.reason, "models": self._models,
        }  # fmt: skip
        if webhook == "mutate":
            record |= {"webhook": webhook, "patch": self.patch}
        return record

    def record_json(self, request: AdmissionRequest, webhook: str = "validate") -> bytes:
        """`record(request, webhook)` as JSON: the request's fields encoded, the decision's
        encoded once (a warm request pays only for its own)."""
        if webhook == "mutate":
            return msgspec.json.encode(self.record(request, webhook))
        return msgspec.json.encode(_request_fields(request))[:-1] + b"," + self._record_tail

    @cached_property
    def _record_tail(self) -> bytes:
        tail = {k: v for k, v in self.record(_NO_REQUEST).items() if k not in _REQUEST_FIELDS}
        return msgspec.json.encode(tail)[1:]

    @cached_property
    def _models(self) -> list[dict[str, Any]]:
        return [verdict_record(v) for v in self.verdicts]


_REQUEST_FIELDS = ("uid", "operation", "kind", "namespace", "name", "user")


def _request_fields(request: AdmissionRequest) -> dict[str, Any]:
    """What a decision-log record says of the request, in the record's order."""
    return {
        "uid": request.uid,
        "operation": request.operation,
        "kind": request.kind and request.kind.kind,
        "namespace": request.namespace,
        "name": request.name or _object_name(request.object),
        "user": request.user_info and request.user_info.username,
    }


class Reviewer:
    """Decides AdmissionReviews with a policy and a model verifier, within a deadline."""

    def __init__(
        self, policy: Policy, verifier: ModelVerifier, *, cluster: ClusterView | None = None
    ) -> None:
        self.policy = policy
        self.verifier = verifier
        # --discover: place and check within the TEEs the cluster offers (None: the policy's)
        self.cluster = cluster
        # The same object reviewed again (every replica of a Deployment, retries, GitOps
        # dry runs) gets the same decision for as long as its verdicts are cached.
        self._decisions: OrderedDict[bytes, tuple[float, Decision]] = OrderedDict()

    @classmethod
    def load(
        cls,
        policy_path: Path,
        stores: Sequence[str] = (),
        on_cache: Callable[[bool], None] | None = None,
    ) -> Reviewer:
        """A reviewer for a policy file; `stores` are consulted after the policy's own."""
        from admission.policy_loader import load_policy

        return cls.for_policy(load_policy(policy_path), stores, on_cache)

    @classmethod
    def for_policy(
        cls,
        policy: Policy,
        stores: Sequence[str] = (),
        on_cache: Callable[[bool], None] | None = None,
    ) -> Reviewer:
        """A reviewer for a loaded policy; `stores` are consulted after the policy's own."""
        from attest.stores import open_store

        opened = [open_store(s) for s in (*policy.stores, *stores)]
        return cls(policy, ModelVerifier(policy, opened, on_cache=on_cache))

    def _ttl(self, decision: Decision) -> float:
        settings = self.policy.verification
        if decision.category in ("deadline", "error", "unreachable"):
            return 0.0  # transient: the next request tries again
        if self.cluster is not None and decision.category == "confidential":
            return 0.0  # --discover: it may rest on what the cluster offers, which changes
        if decision.verdicts and not all(v.ok for v in decision.verdicts):
            return settings.cache_failure_seconds
        return settings.cache_success_seconds

    async def review(self, request: AdmissionRequest) -> Decision:
        """The validating webhook's decision."""
        key = request.decision_key()
        cached = self._decisions.get(key)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        decision = await self.decide(request, now + self.policy.verification.deadline_seconds)
        if (ttl := self._ttl(decision)) > 0:
            self._decisions[key] = (now + ttl, decision)
            self._decisions.move_to_end(key)
            while len(self._decisions) > self.policy.verification.cache_entries:
                self._decisions.popitem(last=False)
        return decision

    def _let_through(self, request: AdmissionRequest, obj: dict[str, Any]) -> Decision | None:
        """The answer for a request neither webhook reviews: deletes, status and scale,
        objects being deleted, excluded namespaces."""
        if skipped := _not_reviewed(request, obj):
            return Decision(True, skipped, "not-reviewed")
        namespace = _namespace(request, obj)
        if self.policy.mode_for(namespace) is None:
            return Decision(True, f"namespace {namespace} is excluded by the policy", "excluded")
        return None

    async def decide(self, request: AdmissionRequest, deadline: float) -> Decision:
        obj = request.parsed_object()
        if passed := self._let_through(request, obj):
            return passed
        namespace = _namespace(request, obj)
        mode = self.policy.mode_for(namespace)
        pods = pods_in(obj)
        if not pods:
            return Decision(True, "no pod to review", "not-reviewed", mode)

        problems: list[Problem] = []
        verdicts: list[Verdict] = []
        accounts: list[PodAccount] = []
        for pod in pods:
            found = self.account(pod)
            if not found.reviewed:
                continue
            accounts.append(found)
            problems += found.all_problems()
            uses = found.all_models()
            pod_verdicts = await self._verify_all(uses, deadline, problems, namespace)
            verdicts += pod_verdicts
            # KServe's resources get their Pods made by KServe: those Pods are placed and
            # checked when they are created, not the resource's synthesized pod.
            if not pod.controlled and (need := self.cc_need(namespace, uses, pod_verdicts)):
                check = (
                    self.cluster.confidential_problems if self.cluster else confidential_problems
                )
                problems += [Problem("confidential", p) for p in check(pod.spec, need, self.policy.confidential)]  # fmt: skip
            if not pod.controlled:
                problems[:] = self._load_time(namespace, pod, found, pod_verdicts, problems)
        if not accounts:
            return Decision(True, "not an inference pod", "not-inference", mode)
        problems += _running_image_changes(request, obj)
        on_word = [u for a in accounts for u in a.models if u.on_word]
        if not problems:
            signed = "; ".join(v.reason for v in verdicts)
            words = "".join(f"; {u.reference} is taken on the word of {u.source}" for u in on_word)
            return Decision(True, f"verified: {signed}{words}", "allowed", mode, verdicts=verdicts, accounts=accounts)  # fmt: skip
        reason = " | ".join(dict.fromkeys(p.message for p in problems))
        category = _category(verdicts, problems)
        if mode == "enforce":
            return Decision(False, reason, category, mode, [], verdicts, [], problems, accounts)
        warnings = (
            [f"mlbom ({mode} mode): {m}" for m in dict.fromkeys(p.message for p in problems)]
            if mode == "warn"
            else []
        )
        return Decision(True, f"{mode} mode: {reason}", category, mode, warnings, verdicts, [], problems, accounts)  # fmt: skip

    def _load_time(
        self,
        namespace: str,
        pod: PodUnderReview,
        found: PodAccount,
        verdicts: list[Verdict],
        problems: list[Problem],
    ) -> list[Problem]:
        """`problems` with load-time verification's: where it is required (or a model is
        taken on the annotation's word), the pod must carry the verifiers exactly as the
        mutating webhook writes them. A server pointed offline at the verified Hub cache
        is no longer a server reading a cache something else filled."""
        settings = self.policy.load_time
        mode = settings.mode_for(namespace)
        on_word = [u.reference for u in found.models if u.on_word]
        if mode == "off":
            if on_word:
                problems.append(Problem("load-time", f"{', '.join(on_word)} is taken on the word of the annotation {ANNOTATION}, which mlbom accepts only where load-time verification checks the bytes; it is off in namespace {namespace}: set loadTimeVerification (inject or required) for it"))  # fmt: skip
            return problems
        plan = plan_verifiers(pod.spec, "", found, verdicts, settings)
        if mode == "required" or on_word:
            why = f"load-time verification is required in namespace {namespace}" if mode == "required" else f"{', '.join(on_word)} is taken on the word of the annotation {ANNOTATION}, so only load-time verification checks its bytes"  # fmt: skip
            fix = "enable mlbom's mutating webhook, and do not change the init containers it adds"
            problems += [Problem("load-time", f"{why}, but {r}") for r in plan.refusals]
            problems += [Problem("load-time", f"{why}, but {m}: {fix}") for m in plan.missing]
        if not plan.missing:
            problems = [p for p in problems if not (p.code == "offline-cache" and p.container in plan.rewired)]  # fmt: skip
        return problems

    def account(self, pod: PodUnderReview) -> PodAccount:
        """Every container of `pod` with its role and models, as the policy classifies them."""
        return account(pod, self.policy.inference.why, self.policy.sources)

    async def _verify_all(
        self, uses: list[ModelUse], deadline: float, problems: list[Problem], namespace: str
    ) -> list[Verdict]:
        pinned = []
        for use in uses:
            if not use.mappable or not use.pinned:
                what = "is not pinned to a digest" if use.mappable else "cannot be checked by mlbom"
                message = f"model {use.reference} ({use.source}) {what}" + (f": {use.hint}" if use.hint else "")  # fmt: skip
                problems.append(Problem("unpinned" if use.mappable else "unmappable", message, use.container))  # fmt: skip
            else:
                pinned.append(use.reference)
        if not pinned:
            return []
        remaining = deadline - time.monotonic()
        try:
            verdicts = await asyncio.wait_for(
                asyncio.gather(*(self.verifier.check(r) for r in dict.fromkeys(pinned))),
                timeout=max(0.0, remaining),
            )
        except TimeoutError:
            problems.append(Problem(
                "deadline",
                f"verifying {', '.join(dict.fromkeys(pinned))} did not finish within "
                f"{self.policy.verification.deadline_seconds:g} s (a store is slow or unreachable); "
                "denied rather than admitted unverified",
            ))  # fmt: skip
            return []
        for verdict in verdicts:
            if verdict.outcome == "oms" and not self.policy.oms.accepted(namespace, verdict.reference):  # fmt: skip
                problems.append(Problem("unverified", f"{verdict.reason}, but an OpenSSF model signature without an ML-BOM is accepted only where the policy's oms.accept names the namespace or model (not {namespace}): generate, sign and push its ML-BOM"))  # fmt: skip
            elif not verdict.ok and verdict.outcome != "oms":
                problems.append(Problem("unverified", verdict.reason))
        return list(verdicts)

    def cc_need(
        self, namespace: str, uses: list[ModelUse], verdicts: list[Verdict]
    ) -> CcNeed | None:
        """What confidential computing the pod's models need: the policy's (namespace,
        model, licence) and each verified BOM's own `mlbom:cc:*`, the stricter winning."""
        references = [u.reference for u in uses]
        needs = []
        if self.policy.cc_required(namespace, references, None):
            needs.append(
                CcNeed(
                    reason=f"the policy requires confidential computing in {namespace} or for {', '.join(references) or 'this pod'}"
                )
            )
        for verdict in verdicts:
            if verdict.bom is None:
                continue
            if own := cc_need_of_bom(verdict.bom):
                needs.append(
                    replace(
                        own,
                        reason=f"the signed BOM of {verdict.reference} requires confidential computing",
                    )
                )
            elif self.policy.cc_required(namespace, references, verdict.bom):
                needs.append(
                    CcNeed(
                        reason=f"the policy requires confidential computing for the licence of {verdict.reference}"
                    )
                )
        return combine(needs)

    # -- the mutating webhook -----------------------------------------------------------------

    async def mutate(self, request: AdmissionRequest) -> Decision:
        """Place pods whose models need confidential computing (a JSONPatch); refuse those
        that cannot be made safe. Everything else passes untouched."""
        obj = request.parsed_object()
        if passed := self._let_through(request, obj):
            return passed
        namespace = _namespace(request, obj)
        mode = self.policy.mode_for(namespace)
        deadline = time.monotonic() + self.policy.verification.deadline_seconds
        patch: list[dict[str, Any]] = []
        refusals: list[str] = []
        tees: list[str] = []
        verified: list[str] = []
        for path in pod_spec_paths(obj):
            pod = _pod_at(obj, path)
            if pod is None:
                continue
            found = self.account(pod)
            uses = found.all_models()
            ignored: list[Problem] = []  # unpinned models: the validating webhook says so
            verdicts = await self._verify_all(uses, deadline, ignored, namespace)
            need = self.cc_need(namespace, uses, verdicts)
            if need is not None:
                placing = self.cluster.place if self.cluster else place
                placement = placing(obj, need, self.policy.confidential, path)
                if placement.refusal:
                    refusals.append(placement.refusal)
                patch += placement.patch
                tees += [placement.tee] if placement.tee else []
            # after placement's operations, which change containers in place
            if self.policy.load_time.mode_for(namespace) != "off" and found.reviewed:
                plan = plan_verifiers(pod.spec, path, found, verdicts, self.policy.load_time)
                patch += plan.patch
                verified += plan.bound if plan.patch else []
        if refusals and mode == "enforce":
            return Decision(False, " | ".join(dict.fromkeys(refusals)), "confidential", mode)
        warnings = [f"mlbom ({mode} mode): {r}" for r in refusals] if mode == "warn" else []
        if not patch:
            return Decision(True, "nothing to place or verify at load", "unchanged", mode, warnings)  # fmt: skip
        done = (
            [f"placed on {', '.join(dict.fromkeys(tees))} confidential computing"] if tees else []
        )
        done += (
            [f"load-time verification of {', '.join(dict.fromkeys(verified))}"] if verified else []
        )
        category = "placed" if tees else "verifier"
        return Decision(True, "; ".join(done) or "patched", category, mode, warnings, patch=patch)


def _running_image_changes(request: AdmissionRequest, obj: dict[str, Any]) -> list[Problem]:
    """An UPDATE of a running Pod may change its containers' images, and nothing else it
    runs: the new images start on volumes the old ones wrote and beside init containers that
    do not run again. What they read cannot be accounted for."""
    if request.operation != "UPDATE" or request.sub_resource or obj.get("kind") != "Pod":
        return []
    old = request.parsed_old_object()
    if not old:
        return [Problem("byte-source", "an UPDATE of an inference pod without the pod it changes: mlbom cannot tell what changed")]  # fmt: skip

    def images(pod: dict[str, Any]) -> dict[tuple[str, str], Any]:
        spec = _metadata_of(pod, "spec")
        found = {}
        for where in ("initContainers", "containers"):
            containers = spec.get(where)
            for c in containers if isinstance(containers, list) else []:
                if isinstance(c, dict):
                    found[where, str(c.get("name"))] = c.get("image")
        return found

    before = images(old)
    changed = sorted(
        key[1] for key, image in images(obj).items() if before.get(key, image) != image
    )
    if not changed:
        return []
    return [Problem(
        "byte-source",
        f"this UPDATE changes the image of container {', '.join(changed)} of a running inference "
        f"pod: the new image would read volumes the old one wrote, beside init containers that do "
        f"not run again. Delete the pod and create it anew (a Deployment's rollout does)",
    )]  # fmt: skip


def _metadata_of(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _not_reviewed(request: AdmissionRequest, obj: dict[str, Any]) -> str | None:
    """Why a request is let through unreviewed, if it is: deletes, status and scale,
    objects being deleted."""
    if request.operation not in ("CREATE", "UPDATE"):
        return f"{request.operation} is never blocked"
    sub = request.sub_resource
    if sub and sub != "ephemeralcontainers":  # status, scale, binding, eviction, …
        return f"the {sub} subresource is not reviewed"
    if _metadata(obj).get("deletionTimestamp"):
        return "the object is being deleted"
    return None


def _namespace(request: AdmissionRequest, obj: dict[str, Any]) -> str:
    return str(request.namespace or _metadata(obj).get("namespace") or "")


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _pod_at(obj: dict[str, Any], path: str) -> PodUnderReview | None:
    """The pod whose spec is at JSON Pointer `path` (its metadata beside it)."""
    spec, metadata = _pointer(obj, path), _pointer(obj, path.removesuffix("/spec") + "/metadata")
    if not isinstance(spec, dict):
        return None
    kind = str(obj.get("kind") or "")
    return PodUnderReview(
        kind, metadata if isinstance(metadata, dict) else {}, spec, _metadata(obj)
    )


def _pointer(obj: Any, path: str) -> Any:
    for part in path.split("/")[1:]:
        obj = obj.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(obj, dict) else None
    return obj


def _category(verdicts: list[Verdict], problems: list[Problem]) -> str:
    for verdict in verdicts:
        if not verdict.ok:
            return verdict.outcome
    codes = {p.code for p in problems}
    if "deadline" in codes:
        return "deadline"
    if codes == {"load-time"}:
        return "load-time"
    if codes - {"confidential"}:
        return "unidentified"
    return "confidential"
