"""A kube-apiserver stand-in over HTTPS on loopback: the REST paths the official `kubernetes`
client calls for lists (paged with `limit` and `continue`, `labelSelector`), reads, creates
and replaces (optimistic concurrency on `metadata.resourceVersion`: 409 Conflict), for the
resources it is given. Everything it answers is JSON as the API server writes it."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from kubernetes import client

from tests.tls import TestCA

TOKEN = "eyJhbGciOiJSUzI1NiJ9.stand-in"  # a service account token, as the API server sees it
# (API path prefix, plural) -> (apiVersion, kind, namespaced)
RESOURCES = {
    ("/api/v1", "pods"): ("v1", "Pod", True),
    ("/apis/apps/v1", "deployments"): ("apps/v1", "Deployment", True),
    ("/apis/apps/v1", "statefulsets"): ("apps/v1", "StatefulSet", True),
    ("/apis/apps/v1", "daemonsets"): ("apps/v1", "DaemonSet", True),
    ("/apis/apps/v1", "replicasets"): ("apps/v1", "ReplicaSet", True),
    ("/apis/batch/v1", "jobs"): ("batch/v1", "Job", True),
    ("/apis/batch/v1", "cronjobs"): ("batch/v1", "CronJob", True),
    ("/apis/wgpolicyk8s.io/v1alpha2", "policyreports"): (
        "wgpolicyk8s.io/v1alpha2",
        "PolicyReport",
        True,
    ),
    ("/apis/wgpolicyk8s.io/v1alpha2", "clusterpolicyreports"): (
        "wgpolicyk8s.io/v1alpha2",
        "ClusterPolicyReport",
        False,
    ),
    ("/apis/coordination.k8s.io/v1", "leases"): ("coordination.k8s.io/v1", "Lease", True),
    ("/apis/node.k8s.io/v1", "runtimeclasses"): ("node.k8s.io/v1", "RuntimeClass", False),
    ("/api/v1", "nodes"): ("v1", "Node", False),
}
_METADATA_ONLY = "as=PartialObjectMetadataList"


class Request(NamedTuple):
    method: str
    path: str
    query: dict[str, list[str]]
    accept: str


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip


class ApiServerStandIn:
    """Holds objects per resource; `log` keeps every request. `status` answers the lists whose
    path ends with one of `failing` with that error; `metadata_only` honours
    ``as=PartialObjectMetadataList`` as the API server does."""

    def __init__(self, folder: Path, resources: dict | None = None) -> None:
        self.resources = resources or RESOURCES
        self.objects: dict[tuple[str, str], dict[tuple[str, str], dict]] = {
            key: {} for key in self.resources
        }
        self.version = 1000
        self.page_size = 500  # at most this many per page, whatever the limit
        self.log: list[Request] = []
        self.status: int | None = None
        self.failing: tuple[str, ...] = ()
        self.metadata_only = True
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.ca = TestCA(folder)
        cert, key, _ = self.ca.issue("apiserver")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def configuration(self) -> client.Configuration:
        configuration = client.Configuration(host=self.url)
        configuration.ssl_ca_cert = str(self.ca.path)
        configuration.api_key = {"authorization": f"Bearer {TOKEN}"}
        return configuration

    def kubeconfig(self, folder: Path) -> Path:
        path = folder / "kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "stand-in",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url, "certificate-authority": str(self.ca.path)}}],
            "users": [{"name": "stand-in", "user": {"token": TOKEN}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "stand-in"}}],
        }))  # fmt: skip
        return path

    # -- the store ----------------------------------------------------------------------------

    def add(self, obj: dict) -> dict:
        """Store `obj` as if created (uid, resourceVersion, creationTimestamp filled in)."""
        key = self._resource_of(obj)
        meta = obj.setdefault("metadata", {})
        with self.lock:
            self.version += 1
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", "2026-12-01T10:00:00Z")
            meta["resourceVersion"] = str(self.version)
            self.objects[key][meta.get("namespace", ""), meta["name"]] = obj
        return obj

    def remove(self, obj: dict) -> None:
        key = self._resource_of(obj)
        meta = obj["metadata"]
        with self.lock:
            self.objects[key].pop((meta.get("namespace", ""), meta["name"]), None)

    def all(self, plural: str) -> list[dict]:
        return [o for (_, p), objs in self.objects.items() if p == plural for o in objs.values()]

    def replace_all(self, plural: str, items: list[dict]) -> None:
        """The objects of one resource, in this order (lists answer in it)."""
        for key in self.objects:
            if key[1] == plural:
                with self.lock:
                    self.objects[key] = {}
        for item in items:
            self.add(item)

    def _resource_of(self, obj: dict) -> tuple[str, str]:
        for key, (api_version, kind, _) in self.resources.items():
            if (api_version, kind) == (obj["apiVersion"], obj["kind"]):
                return key
        raise KeyError(obj["kind"])

    # -- the REST paths -------------------------------------------------------------------------

    def route(self, path: str) -> tuple[tuple[str, str], str | None, str | None] | None:
        """(resource, namespace, name) of a path, or None for a path it does not serve."""
        for prefix, plural in self.resources:
            if not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1 :].split("/")
            if rest[0] == plural and len(rest) in (1, 2):
                return (prefix, plural), None, rest[1] if len(rest) == 2 else None
            if rest[0] == "namespaces" and len(rest) in (3, 4) and rest[2] == plural:
                return (prefix, plural), rest[1], rest[3] if len(rest) == 4 else None
        return None

    def answer(self, method: str, path: str, query: dict, body: dict | None, auth: str, accept: str = "") -> tuple[int, dict]:  # fmt: skip
        self.log.append(Request(method, path, query, accept))
        if auth != f"Bearer {TOKEN}":
            return 401, status(401, "Unauthorized", "Unauthorized")
        found = self.route(path)
        if found is None:
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        resource, namespace, name = found
        api_version, kind, _ = self.resources[resource]
        if self.status is not None and path.endswith(self.failing):
            return self.status, self.error(path)
        with self.lock:
            objects = self.objects[resource]
            if method == "GET" and name is None:
                page = self._page(objects, namespace, query, api_version, kind)
                if self.metadata_only and _METADATA_ONLY in accept:
                    page["apiVersion"], page["kind"] = "meta.k8s.io/v1", "PartialObjectMetadataList"
                    page["items"] = [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": i["metadata"]} for i in page["items"]]  # fmt: skip
                return 200, page
            if method == "GET":
                obj = objects.get((namespace or "", name))
                return (200, obj) if obj else (404, status(404, "NotFound", f'{resource[1]} "{name}" not found'))  # fmt: skip
            if method == "POST" and name is None and body is not None:
                key = (namespace or "", body["metadata"]["name"])
                if key in objects:
                    return 409, status(409, "AlreadyExists", f'{resource[1]} "{key[1]}" already exists')  # fmt: skip
                self.version += 1
                body["metadata"] |= {"resourceVersion": str(self.version), "uid": str(uuid.uuid4())}
                objects[key] = body
                return 201, body
            if method == "PUT" and name is not None and body is not None:
                current = objects.get((namespace or "", name))
                if current is None:
                    return 404, status(404, "NotFound", f'{resource[1]} "{name}" not found')
                if (
                    body["metadata"].get("resourceVersion")
                    != current["metadata"]["resourceVersion"]
                ):
                    return 409, status(409, "Conflict", f'Operation cannot be fulfilled on {resource[1]} "{name}": the object has been modified; please apply your changes to the latest version and try again')  # fmt: skip
                self.version += 1
                body["metadata"]["resourceVersion"] = str(self.version)
                objects[namespace or "", name] = body
                return 200, body
        return 405, status(405, "MethodNotAllowed", "the server does not allow this method")

    def error(self, path: str) -> dict:
        """The Status the API server answers with: RBAC's wording for 403."""
        if self.status != 403:
            return status(self.status or 500, "InternalError", "etcdserver: request timed out")
        group = path.split("/")[2] if path.startswith("/apis/") else ""
        resource = path.rsplit("/", 1)[1]
        return status(403, "Forbidden", (
            f'{resource}{"." + group if group else ""} is forbidden: User '
            f'"system:serviceaccount:mlbom:mlbom-admission" cannot list resource "{resource}" '
            f'in API group "{group}" at the cluster scope'
        ))  # fmt: skip

    def _page(self, objects: dict, namespace: str | None, query: dict, api_version: str, kind: str) -> dict:  # fmt: skip
        items = [o for (ns, _), o in objects.items() if namespace is None or ns == namespace]
        if selector := query.get("labelSelector", [""])[0]:
            wanted = dict(term.split("=", 1) for term in selector.split(","))
            items = [o for o in items if all(o["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())]  # fmt: skip
        start = 0
        if token := query.get("continue", [""])[0]:
            start = json.loads(base64.b64decode(token))["start"]
        limit = int(query.get("limit", ["0"])[0]) or len(items)
        end = start + min(limit, self.page_size)
        metadata: dict = {"resourceVersion": str(self.version)}
        if end < len(items):
            metadata["continue"] = base64.b64encode(json.dumps({"start": end}).encode()).decode()
            metadata["remainingItemCount"] = len(items) - end
        return {"kind": f"{kind}List", "apiVersion": api_version, "metadata": metadata, "items": items[start:end]}  # fmt: skip

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                stand_in.connections.add(self.connection)

            def finish(self) -> None:
                stand_in.connections.discard(self.connection)
                super().finish()

            def _serve(self, method: str) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                code, answer = stand_in.answer(method, url.path, parse_qs(url.query), body, self.headers.get("Authorization", ""), self.headers.get("Accept", ""))  # fmt: skip
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def log_message(self, *args: object) -> None:
                pass

        return Handler
