"""Background scan: what already runs, decided again against today's policy and trust.

A webhook only sees what is created or changed after it is installed. The scan lists the
pods and the reviewed workload kinds and serving resources through the API server (paged,
at a bounded rate), decides each one exactly as admission would now (the same reviewer: the
same code path and the same caches), and reports every object that would be denied or
warned, and why:

- as `wgpolicyk8s.io/v1alpha2` PolicyReports (one per namespace) and a ClusterPolicyReport
  (cluster-scoped objects), owned by mlbom and updated in place: a report whose results did
  not change is not written again;
- as Prometheus gauges (objects scanned, violations by reason, last scan time and duration);
- as JSON from `mlbom admission scan --json` (exit 1 when something would be denied).

`mlbom admission serve --scan-interval` runs it in the background; of several replicas only
the holder of a coordination.k8s.io Lease scans.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from admission.cluster import ApiConflict, ClusterReadError, KubeApi
from admission.discovery.untrusted import as_dict
from admission.manifests import admission_request
from admission.reviewer import Decision
from mlbom.errors import MlbomError

if TYPE_CHECKING:
    from admission.reviewer import Reviewer

log = logging.getLogger("mlbom.admission.scan")

REPORT_NAME = "mlbom-admission"
MANAGED_BY = {"app.kubernetes.io/managed-by": "mlbom"}
REPORTS = "/apis/wgpolicyk8s.io/v1alpha2"
# What is scanned: the kinds the webhook reviews (a resource the cluster lacks lists nothing).
SCANNED = (
    "/api/v1/pods",
    "/apis/apps/v1/deployments",
    "/apis/apps/v1/statefulsets",
    "/apis/apps/v1/daemonsets",
    "/apis/apps/v1/replicasets",
    "/apis/batch/v1/jobs",
    "/apis/batch/v1/cronjobs",
    "/apis/leaderworkerset.x-k8s.io/v1/leaderworkersets",
    "/apis/serving.kserve.io/v1beta1/inferenceservices",
    "/apis/serving.kserve.io/v1alpha1/llminferenceservices",
    "/apis/llm-d.ai/v1alpha1/modelservices",
    "/apis/apps.nvidia.com/v1alpha1/nimservices",
    "/apis/apps.nvidia.com/v1alpha1/nimcaches",
    "/apis/kubeai.org/v1/models",
    "/apis/ray.io/v1/rayservices",
    "/apis/ome.io/v1beta1/inferenceservices",
    "/apis/ome.io/v1beta1/basemodels",
    "/apis/ome.io/v1beta1/clusterbasemodels",
)
_QUIET = frozenset({"allowed", "not-inference", "not-reviewed", "excluded", "unchanged"})


@dataclass(frozen=True)
class Finding:
    """One object, as admission would decide it now."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str
    result: str  # fail (would be denied), warn (admitted with problems), pass
    category: str
    reason: str
    models: tuple[str, ...]
    since: str | None  # the object's creationTimestamp

    def resource(self) -> dict[str, str]:
        found = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "uid": self.uid}  # fmt: skip
        return found | ({"namespace": self.namespace} if self.namespace else {})

    def as_json(self) -> dict[str, Any]:
        return {
            "object": f"{self.kind}/{self.name}", "namespace": self.namespace or None,
            "uid": self.uid, "result": self.result, "category": self.category,
            "reason": self.reason, "models": list(self.models), "since": self.since,
        }  # fmt: skip


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    started: float = 0.0  # time.time()
    seconds: float = 0.0
    api_requests: int = 0

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.result != "pass"]

    def by_reason(self) -> Counter[str]:
        return Counter(f.category for f in self.violations)

    def as_json(self) -> dict[str, Any]:
        return {
            "scanned": len(self.findings),
            "denied": sum(f.result == "fail" for f in self.findings),
            "warned": sum(f.result == "warn" for f in self.findings),
            "at": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds"),
            "seconds": round(self.seconds, 3),
            "apiRequests": self.api_requests,
            "violations": [f.as_json() for f in self.violations],
            "running": [f.as_json() for f in self.findings if f.models],
        }


class Scanner:
    """Lists what runs and decides it with `reviewer`."""

    def __init__(self, reviewer: Reviewer, api: KubeApi, *, paths: tuple[str, ...] = SCANNED) -> None:  # fmt: skip
        self.reviewer = reviewer
        self.api = api
        self.paths = paths

    def objects(self) -> Iterator[dict[str, Any]]:
        """Every object to decide (blocking: run it in a thread). Finished pods are not."""
        for path in self.paths:
            for obj in self.api.objects(path):
                phase = as_dict(obj.get("status")).get("phase")
                if obj.get("kind") == "Pod" and phase in ("Succeeded", "Failed"):
                    continue
                yield obj

    async def scan(self) -> ScanResult:
        """Decide everything that runs, as admission would now."""
        result = ScanResult(started=time.time())
        start, requests = time.monotonic(), self.api.requests
        objects = await asyncio.to_thread(lambda: list(self.objects()))
        for obj in objects:
            result.findings.append(await self._decide(obj))
            await asyncio.sleep(0)  # in serve, the webhook's requests go first between objects
        result.seconds = time.monotonic() - start
        result.api_requests = self.api.requests - requests
        return result

    async def _decide(self, obj: dict[str, Any]) -> Finding:
        meta = as_dict(obj.get("metadata"))
        namespace = str(meta.get("namespace") or "")
        try:
            decision = await self.reviewer.review(admission_request(obj, namespace=namespace))
        except MlbomError as e:  # an object admission could not read is one it would refuse
            decision = Decision(False, e.message, "error")
        if not decision.allowed:
            result = "fail"
        elif decision.category in _QUIET:
            result = "pass"
        else:  # admitted in warn or audit mode, with problems
            result = "warn"
        return Finding(
            api_version=str(obj.get("apiVersion") or ""), kind=str(obj.get("kind") or ""),
            namespace=namespace, name=str(meta.get("name") or ""), uid=str(meta.get("uid") or ""),
            result=result, category=decision.category, reason=decision.reason,
            models=tuple(v.reference for v in decision.verdicts),
            since=meta.get("creationTimestamp") if isinstance(meta.get("creationTimestamp"), str) else None,
        )  # fmt: skip


# -- PolicyReports ----------------------------------------------------------------------------


def report_bodies(result: ScanResult) -> dict[str, dict[str, Any]]:
    """Namespace ("" for the cluster) -> the report's summary and results."""
    bodies: dict[str, dict[str, Any]] = {}
    for finding in result.findings:
        body = bodies.setdefault(finding.namespace, {"summary": Counter(), "results": []})
        body["summary"][finding.result] += 1
        if finding.result == "pass":
            continue
        body["results"].append({
            "policy": REPORT_NAME, "rule": finding.category, "result": finding.result,
            "source": "mlbom", "message": finding.reason[:4000], "category": "supply chain",
            "severity": "high" if finding.result == "fail" else "medium",
            "resources": [finding.resource()],
            "properties": {"models": ",".join(finding.models)[:1000]} if finding.models else {},
        })  # fmt: skip
    for body in bodies.values():
        summary = body["summary"]
        body["summary"] = {k: summary.get(k, 0) for k in ("pass", "fail", "warn", "error", "skip")}
        body["results"].sort(key=lambda r: (r["resources"][0]["kind"], r["resources"][0]["name"]))
    return bodies


def write_reports(api: KubeApi, result: ScanResult, now: Callable[[], float] = time.time) -> int:
    """Create or update mlbom's reports (blocking); an unchanged one is not written. Reports
    of namespaces that have nothing left to report are emptied. Returns how many were written."""
    bodies = report_bodies(result)
    existing = {
        str(as_dict(r.get("metadata")).get("namespace") or ""): r
        for path in (f"{REPORTS}/policyreports", f"{REPORTS}/clusterpolicyreports")
        for r in api.objects(path, label_selector="app.kubernetes.io/managed-by=mlbom")
        if as_dict(r.get("metadata")).get("name") == REPORT_NAME
    }
    written = 0
    for namespace in sorted(set(bodies) | set(existing)):
        body = bodies.get(namespace, {"summary": dict.fromkeys(("pass", "fail", "warn", "error", "skip"), 0), "results": []})  # fmt: skip
        old = existing.get(namespace)
        previous = (old or {}).get("results")
        stamped = _keep_timestamps(
            body["results"], previous if isinstance(previous, list) else [], now()
        )
        if old is not None and old.get("summary") == body["summary"] and old.get("results") == stamped:  # fmt: skip
            continue
        kind = "PolicyReport" if namespace else "ClusterPolicyReport"
        path = f"{REPORTS}/namespaces/{namespace}/policyreports/{REPORT_NAME}" if namespace else f"{REPORTS}/clusterpolicyreports/{REPORT_NAME}"  # fmt: skip
        metadata: dict[str, Any] = {"name": REPORT_NAME, "labels": dict(MANAGED_BY)}
        if namespace:
            metadata["namespace"] = namespace
        if old is not None:
            metadata["resourceVersion"] = as_dict(old.get("metadata")).get("resourceVersion")
        report = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": kind, "metadata": metadata,
                  "summary": body["summary"], "results": stamped}  # fmt: skip
        try:
            api.put(path, report, create=old is None)
        except ApiConflict:
            log.info("the report of %s changed while it was written; the next scan writes it", namespace or "the cluster")  # fmt: skip
            continue
        written += 1
    return written


def _keep_timestamps(results: list[dict[str, Any]], old: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:  # fmt: skip
    """A result seen before keeps the time it was first reported: nothing churns."""
    first = {_identity(r): r.get("timestamp") for r in old if isinstance(r, dict)}
    stamp = {"seconds": int(now), "nanos": 0}
    return [r | {"timestamp": first.get(_identity(r)) or stamp} for r in results]


def _identity(result: dict[str, Any]) -> tuple[str, ...]:
    resource = (result.get("resources") or [{}])[0]
    return (str(resource.get("uid")), str(result.get("rule")), str(result.get("result")), str(result.get("message")))  # fmt: skip


# -- one scanner of many replicas ----------------------------------------------------------------


class LeaderLease:
    """A coordination.k8s.io/v1 Lease: the replica holding it scans, the others wait. Taken
    when absent or expired, renewed by its holder, and written with the resourceVersion it
    was read at, so that of two replicas racing only one wins."""

    def __init__(self, api: KubeApi, namespace: str, identity: str, *, name: str = "mlbom-admission-scan", seconds: int = 600) -> None:  # fmt: skip
        self.api, self.identity, self.seconds = api, identity, seconds
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self.namespace, self.name = namespace, name

    def acquire(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> bool:
        """Whether this replica holds the lease now (blocking)."""
        current = self.api.get(self.path)
        moment = now()
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec = {"holderIdentity": self.identity, "leaseDurationSeconds": self.seconds, "renewTime": stamp}  # fmt: skip
        if current is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(MANAGED_BY)},
                    "spec": spec | {"acquireTime": stamp, "leaseTransitions": 0}}  # fmt: skip
            return self._write(body, create=True)
        held = as_dict(current.get("spec"))
        holder = held.get("holderIdentity")
        if holder != self.identity and not _expired(held, moment):
            return False
        if holder != self.identity:
            spec |= {"acquireTime": stamp, "leaseTransitions": int(held.get("leaseTransitions") or 0) + 1}  # fmt: skip
        current["spec"] = held | spec
        return self._write(current, create=False)

    def _write(self, body: dict[str, Any], *, create: bool) -> bool:
        try:
            self.api.put(self.path, body, create=create)
        except ApiConflict:
            return False  # another replica wrote it first
        return True


def _expired(spec: dict[str, Any], now: datetime) -> bool:
    renewed = spec.get("renewTime")
    try:
        at = datetime.fromisoformat(str(renewed).replace("Z", "+00:00"))
    except ValueError:
        return True
    return (now - at).total_seconds() > float(spec.get("leaseDurationSeconds") or 0)


async def run_forever(
    scanner: Scanner,
    lease: LeaderLease,
    interval: float,
    on_scan: Callable[[ScanResult], None],
) -> None:
    """Scan every `interval` seconds while holding the lease; errors are logged, never fatal."""
    while True:
        try:
            if await asyncio.to_thread(lease.acquire):
                result = await scanner.scan()
                written = await asyncio.to_thread(write_reports, scanner.api, result)
                on_scan(result)
                log.info(
                    "scanned %d objects in %.1f s: %d would be denied, %d warned; %d reports written",
                    len(result.findings),
                    result.seconds,
                    sum(f.result == "fail" for f in result.findings),
                    sum(f.result == "warn" for f in result.findings),
                    written,
                )
        except (ClusterReadError, OSError) as e:
            log.warning("the scan could not read the cluster: %s", e)
        except Exception:
            log.exception("the scan failed")
        await asyncio.sleep(interval)
