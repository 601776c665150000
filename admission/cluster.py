"""What the cluster offers for confidential computing (`mlbom admission serve --discover`):
the RuntimeClasses and the node labels the API server has, read with the official
`kubernetes` client, so that placement skips a TEE no node offers and copies the cluster's
real RuntimeClass overhead and scheduling rather than the policy's copy of them.

    view = ClusterView.connect(policy.confidential)     # in-cluster, or the kubeconfig
    await view.start()                                  # read now, then every 60 s
    cc = view.offered(policy.confidential)              # tees narrowed, details the cluster's
    view.place(obj, need, policy.confidential, "/spec") # placement.place within what is offered

A TEE is offered when its RuntimeClass exists and at least one node carries every label of
the TEE's node selector and of that RuntimeClass's `scheduling.nodeSelector` (without which
the pod could not schedule either). The confidential-GPU label is not required: whether a
pod needs GPUs is the pod's, and a TEE is about the CPU; placement still adds that label to
GPU pods. Nodes are read as metadata only (`PartialObjectMetadataList`), page by page, and
only the labels those selectors use are kept.

A cluster that cannot be read (forbidden, unreachable, too slow) leaves the last good view
in place; before there is one, the policy is used unchanged. Both are logged, never fatal.
A node pool that scales from zero has no Node to read: `--discover` skips its TEE until a
node exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import msgspec

from admission.placement import CcNeed, Placement, confidential_problems, place
from admission.policy import Confidential, RuntimeClassDetails
from mlbom.errors import BadInputError
from mlbom.untrusted import as_dict as _dict

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger("mlbom.admission.cluster")

DEFAULT_INTERVAL = 60.0  # seconds between reads
PAGE = 500  # items per list request, as kubectl asks
MAX_ITEMS = 100_000  # per kind: beyond any real cluster; a longer list is not trusted
MAX_PAGE_BYTES = 64 << 20  # one page's body
CONNECT_TIMEOUT = 5.0  # seconds, per request
READ_TIMEOUT = 15.0  # seconds, per request
REFRESH_DEADLINE = 30.0  # seconds for a whole read, every page of both kinds
# Metadata only: a Node's status (images, conditions) is most of its size, and none of it is
# needed. The API server answers in this form since 1.15; a server or proxy that ignores it
# sends whole Nodes, which read the same way.
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


class ClusterReadError(Exception):
    """The cluster's objects could not be read, or not within bounds."""


@dataclass(frozen=True)
class _Snapshot:
    """One good read: RuntimeClass name -> its details, and the distinct label sets of the
    nodes (only the keys in `keys`)."""

    runtime_classes: Mapping[str, RuntimeClassDetails]
    nodes: frozenset[frozenset[tuple[str, str]]]
    keys: frozenset[str]
    at: float  # time.monotonic()


class ClusterView:
    """The RuntimeClasses and node labels of one cluster, as they were at the last good read.

    Reads run in a thread of their own (the client blocks); the view is swapped in whole, so
    the event loop reads it without a lock. `healthy` is whether the last read succeeded.
    """

    def __init__(
        self,
        cc: Confidential,
        *,
        api_client: ApiClient | None = None,
        interval: float = DEFAULT_INTERVAL,
        deadline: float = REFRESH_DEADLINE,
    ) -> None:
        """`cc` says which node labels matter; `api_client` is the client to read with (none:
        configured from the environment on the first read, as `connect` does)."""
        self.interval = interval
        self.deadline = deadline
        self._labels = _selector_keys(cc)
        self._api = api_client
        self._owns_client = api_client is None
        self._snapshot: _Snapshot | None = None
        self._memo: tuple[Confidential, _Snapshot, Confidential] | None = None
        self._task: asyncio.Task[None] | None = None
        # one worker: reads never overlap, and never take a thread the webhook needs
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="mlbom-cluster")
        self.healthy = False
        self.error: str | None = None

    @classmethod
    def connect(cls, cc: Confidential, *, interval: float = DEFAULT_INTERVAL) -> ClusterView:
        """A view read with the pod's service account when running in a cluster, else with
        the kubeconfig (`KUBECONFIG`, `~/.kube/config`); `BadInputError` when neither exists."""
        view = cls(cc, api_client=_client_from_environment(), interval=interval)
        view._owns_client = True
        return view

    # -- the view -----------------------------------------------------------------------------

    @property
    def age(self) -> float | None:
        """Seconds since the last good read; None before the first."""
        return None if self._snapshot is None else time.monotonic() - self._snapshot.at

    def offered(self, cc: Confidential) -> Confidential:
        """`cc` with its TEEs narrowed to those the cluster offers, in the policy's order, and
        the cluster's own RuntimeClass details; `cc` unchanged before any good read."""
        snapshot = self._snapshot
        if snapshot is None:
            return cc
        memo = self._memo
        if memo is not None and memo[0] is cc and memo[1] is snapshot:
            return memo[2]
        narrowed = replace(
            cc,
            tees=tuple(t for t in cc.tees if self._missing(snapshot, cc, t) is None),
            runtime_class_details=MappingProxyType(
                {**cc.runtime_class_details, **snapshot.runtime_classes}
            ),
        )
        self._memo = (cc, snapshot, narrowed)
        return narrowed

    def unavailable(self, cc: Confidential, tee: str) -> str | None:
        """Why the cluster does not offer `tee` ("its RuntimeClass … is not in the cluster",
        "no node has the labels …"); None when it does, or before any good read."""
        snapshot = self._snapshot
        return None if snapshot is None else self._missing(snapshot, cc, tee)

    def place(
        self, obj: dict[str, Any], need: CcNeed, cc: Confidential, pod_path: str
    ) -> Placement:
        """`placement.place` within what the cluster offers. When only the cluster stands in
        the way (the policy alone would place the pod), the refusal says which TEE no node
        offers and why, rather than what placement says of a policy without it."""
        placement = place(obj, need, self.offered(cc), pod_path)
        if placement.refusal is None:
            return placement
        alone = place(obj, need, cc, pod_path)
        if alone.refusal is not None or alone.tee is None:
            return alone  # the policy's own problems come first
        why = need.reason or "the model requires it"
        return Placement(
            [],
            None,
            f"the pod needs confidential computing ({why}) and cannot be placed: "
            + self._not_offered(cc, need, alone.tee),
        )

    def confidential_problems(
        self, spec: dict[str, Any], need: CcNeed, cc: Confidential
    ) -> list[str]:
        """`placement.confidential_problems` within what the cluster offers, saying so when
        only the cluster stands in the way."""
        problems = confidential_problems(spec, need, self.offered(cc))
        if not problems or confidential_problems(spec, need, cc):
            return problems
        runtime = _dict(spec).get("runtimeClassName")
        # the policy alone accepts the pod: its class is one of the policy's TEEs'
        tee = next((t for t in cc.tees if cc.runtime_classes.get(t) == runtime), str(runtime))
        why = need.reason or "the model requires it"
        return [
            f"the pod needs confidential computing ({why}), but " + self._not_offered(cc, need, tee)
        ]

    def _not_offered(self, cc: Confidential, need: CcNeed, tee: str) -> str:
        """Which TEEs no node offers and why, `tee` first, then the other TEEs the need
        allows and the cluster lacks; then those it has, or what to do."""
        allowed = [
            t for t in cc.tees if (not need.tees or t in need.tees) and t in cc.runtime_classes
        ]
        lacking = [tee, *(t for t in allowed if t != tee and self.unavailable(cc, t))]
        offered = [t for t in allowed if t not in lacking]
        text = "no node in the cluster offers " + " or ".join(
            f"{t} ({self.unavailable(cc, t) or 'unknown'})" for t in lacking
        )
        if offered:
            first = offered[0]
            text += (
                f"; it offers {', '.join(offered)}: name the runtime class "
                f"{cc.runtime_classes[first]} or remove runtimeClassName"
            )
        else:
            text += ": install the TEE's RuntimeClass and label its nodes, or allow another TEE"
        return text

    @staticmethod
    def _missing(snapshot: _Snapshot, cc: Confidential, tee: str) -> str | None:
        name = cc.runtime_classes.get(tee)
        if name is None:
            return "the policy names no runtime class for it"
        details = snapshot.runtime_classes.get(name)
        if details is None:
            return f"its RuntimeClass {name} is not in the cluster"
        # a set of pairs: a label the two selectors want with different values fits no node
        wanted = frozenset(cc.node_selectors.get(tee, {}).items()) | frozenset(
            details.node_selector.items()
        )
        unknown = {k for k, _ in wanted} - snapshot.keys
        if unknown:
            raise ValueError(
                f"this view keeps no node label {', '.join(sorted(unknown))}: make it for this policy"
            )
        if any(wanted <= labels for labels in snapshot.nodes):
            return None
        shown = ", ".join(f"{k}={v}" for k, v in sorted(wanted)) or "(none)"
        return f"no node has the labels {shown}"

    # -- reading ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the cluster now (waiting at most the read's deadline), then every `interval`
        seconds in the background until `stop`."""
        if self._task is not None:
            return
        await self.refresh()
        self._task = asyncio.create_task(self._every_interval())

    async def stop(self) -> None:
        """Stop reading. A read under way finishes in its thread, within its timeouts."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._owns_client and self._api is not None:
            self._api.close()  # idle connections now; one in use when its read ends

    async def refresh(self) -> bool:
        """Read the cluster once; on failure keep the last good view (or none). True when
        the read succeeded."""
        loop = asyncio.get_running_loop()
        try:
            snapshot = await loop.run_in_executor(self._executor, self._read)
        except Exception as e:  # whatever failed, the webhook keeps answering with what it has
            self.healthy, self.error = False, _describe(e)
            if self._snapshot is None:
                log.warning(
                    "cannot read the cluster's RuntimeClasses and Nodes (%s): placement uses "
                    "the policy's TEEs unchanged until a read succeeds",
                    self.error,
                )
            else:
                log.warning(
                    "cannot read the cluster's RuntimeClasses and Nodes (%s): keeping what "
                    "was read %.0f s ago",
                    self.error,
                    self.age,
                )
            return False
        if not self.healthy and self.error is not None:
            log.warning("reading the cluster's RuntimeClasses and Nodes works again")
        self._snapshot, self.healthy, self.error = snapshot, True, None
        return True

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.refresh()

    def _read(self) -> _Snapshot:
        """Both lists, in the worker thread."""
        if self._api is None:
            self._api = _client_from_environment()
        api, end = self._api, time.monotonic() + self.deadline
        classes = {
            name: RuntimeClassDetails.from_runtime_class(item)
            for item in _runtime_classes(api, end)
            if isinstance(name := _dict(item.get("metadata")).get("name"), str)
        }
        # The labels that decide whether a TEE is offered: the policy's selectors and
        # those of the cluster's RuntimeClasses.
        keys = self._labels | {k for d in classes.values() for k in d.node_selector}
        nodes = {
            frozenset(
                (k, v) for k, v in _dict(_dict(item.get("metadata")).get("labels")).items()
                if k in keys and isinstance(v, str)
            )
            for item in _nodes(api, end)
        }  # fmt: skip
        return _Snapshot(
            MappingProxyType(classes), frozenset(nodes), frozenset(keys), time.monotonic()
        )


def _runtime_classes(client: ApiClient, end: float) -> Iterator[dict[str, Any]]:
    from kubernetes.client import NodeV1Api

    api = NodeV1Api(client)

    def page(token: str | None) -> dict[str, Any]:
        found = api.list_runtime_class(limit=PAGE, _continue=token, _request_timeout=_timeout(end))
        # as the API server sent it (camelCase), which is what RuntimeClassDetails reads
        return _dict(client.sanitize_for_serialization(found))

    return _paged("RuntimeClasses", page)


def _nodes(client: ApiClient, end: float) -> Iterator[dict[str, Any]]:
    from kubernetes.client import CoreV1Api

    api = CoreV1Api(client)

    def page(token: str | None) -> dict[str, Any]:
        response: Any = api.list_node(
            limit=PAGE, _continue=token, _preload_content=False,
            _headers={"Accept": _METADATA_ONLY}, _request_timeout=_timeout(end),
        )  # fmt: skip
        try:
            body = response.read(MAX_PAGE_BYTES + 1)
            if len(body) > MAX_PAGE_BYTES:
                raise ClusterReadError(f"a page of Nodes is larger than {MAX_PAGE_BYTES >> 20} MiB")  # fmt: skip
        except BaseException:
            response.close()  # the rest of the body is unread: drop the connection
            raise
        response.release_conn()
        try:
            return _dict(msgspec.json.decode(body))
        except (msgspec.DecodeError, RecursionError):
            raise ClusterReadError("the list of Nodes is not JSON") from None

    return _paged("Nodes", page)


def _paged(what: str, page: Callable[[str | None], dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every item of a list, following `metadata.continue`, within MAX_ITEMS."""
    token: str | None = None
    count = 0
    while True:
        found = page(token)
        for item in found.get("items") or []:
            count += 1
            if count > MAX_ITEMS:
                raise ClusterReadError(f"the cluster has more than {MAX_ITEMS} {what}")
            if isinstance(item, dict):
                yield item
        token = _dict(found.get("metadata")).get("continue") or None
        if not isinstance(token, str):
            return


class ApiConflict(Exception):
    """The object changed since it was read (HTTP 409): read it again."""


class KubeApi:
    """The API server's REST interface for any resource path, as raw JSON: pages bounded in
    size, requests spaced to at most `qps` a second, and counted (`requests`)."""

    def __init__(self, api: ApiClient, *, qps: float = 20.0, deadline: float = REFRESH_DEADLINE) -> None:  # fmt: skip
        self.api = api
        self.interval = 1.0 / qps if qps > 0 else 0.0
        self.deadline = deadline
        self.requests = 0
        self._next = 0.0

    @classmethod
    def connect(cls, **options: float) -> KubeApi:
        """In-cluster with the pod's service account, else the kubeconfig."""
        return cls(_client_from_environment(), **options)

    def call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One request: (HTTP status, the JSON body). Network failures raise."""
        wait = self._next - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._next = max(self._next, time.monotonic()) + self.interval
        self.requests += 1
        serialized = self.api.param_serialize(
            method, path, query_params=query or [], body=body,
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            auth_settings=["BearerToken"],
        )  # fmt: skip
        end = time.monotonic() + self.deadline
        response = self.api.call_api(*serialized, _request_timeout=_timeout(end))
        raw = response.response
        try:
            data = raw.read(MAX_PAGE_BYTES + 1)
            if len(data) > MAX_PAGE_BYTES:
                raise ClusterReadError(f"an answer from {path} is larger than {MAX_PAGE_BYTES >> 20} MiB")  # fmt: skip
        finally:
            raw.release_conn()
        found = _json(data)
        if data and not isinstance(found, dict):
            raise ClusterReadError(f"the answer from {path} is not a JSON object")
        return response.status, _dict(found)

    def objects(self, path: str, *, label_selector: str | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list, page by page; nothing when the resource does not exist."""

        def page(token: str | None) -> dict[str, Any]:
            query = [("limit", str(PAGE))]
            query += [("continue", token)] if token else []
            query += [("labelSelector", label_selector)] if label_selector else []
            status, found = self.call("GET", path, query=query)
            if status == 404:
                return {}
            if status != 200:
                raise ClusterReadError(f"listing {path}: HTTP {status} {found.get('message', '')}")
            return found

        return _paged(path, page)

    def get(self, path: str) -> dict[str, Any] | None:
        status, found = self.call("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise ClusterReadError(f"reading {path}: HTTP {status} {found.get('message', '')}")
        return found

    def put(self, path: str, body: dict[str, Any], *, create: bool) -> dict[str, Any]:
        """Create the object at `path` (POST to its collection) or replace it (PUT, with the
        resourceVersion it was read at); ApiConflict when someone else changed it first."""
        collection = path.rsplit("/", 1)[0]
        status, found = self.call("POST" if create else "PUT", collection if create else path, body=body)  # fmt: skip
        if status == 409:
            raise ApiConflict(found.get("message", "conflict"))
        if status not in (200, 201):
            raise ClusterReadError(f"writing {path}: HTTP {status} {found.get('message', '')}")
        return found


def _timeout(end: float) -> tuple[float, float]:
    """(connect, read) seconds for one request, within the read's deadline."""
    left = end - time.monotonic()
    if left <= 0:
        raise ClusterReadError("the read did not finish within its deadline")
    return min(CONNECT_TIMEOUT, left), min(READ_TIMEOUT, left)


def _selector_keys(cc: Confidential) -> frozenset[str]:
    return frozenset(
        [*(k for labels in cc.node_selectors.values() for k in labels), *cc.gpu_node_selector]
    )


def _client_from_environment() -> ApiClient:
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            # read now: the client takes KUBECONFIG's value when it is first imported
            config.load_kube_config(
                os.environ.get("KUBECONFIG"), client_configuration=configuration
            )
    except (config.ConfigException, OSError) as e:
        raise BadInputError(
            f"mlbom cannot find the API server: {e}",
            hint="run in a pod with a service account token, or point KUBECONFIG at a kubeconfig",
        ) from None
    # one retry, for a kept-alive connection a load balancer closed; a read that fails is
    # tried again at the next interval anyway
    configuration.retries = 1
    return client.ApiClient(configuration)


def _describe(error: BaseException) -> str:
    """A log line's worth: the HTTP status and the API server's message, or the cause."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import MaxRetryError

    if isinstance(error, ApiException):
        message = _dict(_json(error.body)).get("message") or error.reason or ""
        hint = (
            ": give the webhook's service account list on nodes and runtimeclasses.node.k8s.io"
            if error.status == 403
            else ""
        )
        return f"HTTP {error.status} {message}{hint}"
    if isinstance(error, MaxRetryError):
        return f"{error.pool.host}:{error.pool.port} unreachable: {error.reason}"
    return str(error) if isinstance(error, ClusterReadError) else f"{type(error).__name__}: {error}"


def _json(text: Any) -> Any:
    try:
        return msgspec.json.decode(text) if text else None
    except (msgspec.DecodeError, RecursionError):
        return None


__all__ = ["ApiConflict", "ClusterReadError", "ClusterView", "KubeApi"]
