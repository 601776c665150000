"""A local stand-in for the Hugging Face Hub, speaking the routes huggingface-hub and mlbom
use: `GET /api/models/{repo}[/revision/{rev}]` with file metadata, `POST .../paths-info/{rev}`
with security scans, and `GET|HEAD /{repo}/resolve/{rev}/{path}` with byte ranges, the commit
header and a redirect to a CDN path for LFS files, and commits (`preupload`, `commit`, as
`HfApi.create_commit` sends them). Point HF_ENDPOINT at `url`.

Files may be virtual: a header followed by zeros up to any size, never held in memory, so a
100 GB model costs nothing. Every request and every byte served is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

_REPO = r"(?:[^/]+/)?[^/]+"


@dataclass
class File:
    head: bytes  # the real bytes at the start
    size: int  # the rest, up to size, is zeros
    lfs: bool = True
    sha256: str | None = None  # claimed LFS digest; computed from the bytes when None
    security: dict | None = None

    def __post_init__(self) -> None:
        self.size = max(self.size, len(self.head))
        if self.sha256 is None and self.lfs:
            digest = hashlib.sha256(self.head)
            zeros = bytes(1 << 20)
            left = self.size - len(self.head)
            while left:
                n = min(left, len(zeros))
                digest.update(zeros[:n])
                left -= n
            self.sha256 = digest.hexdigest()

    def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end)."""
        head = self.head[start:end]
        return head + bytes(max(0, end - max(start, len(self.head))))

    def git_oid(self) -> str:
        body = self.read(0, self.size)
        return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()


@dataclass
class Repo:
    files: dict[str, File]
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    branches: dict[str, str] = field(default_factory=dict)
    token: str | None = None  # private: this bearer token is needed
    history: dict[str, dict[str, File]] = field(default_factory=dict)  # older commits

    def files_at(self, revision: str) -> dict[str, File]:
        return self.history.get(revision, self.files)

    gated: bool = False  # files need a token that has been granted access
    granted: tuple[str, ...] = ()


class HubStandIn:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Range
        self.served: dict[str, int] = defaultdict(int)  # file path -> body bytes sent
        self.drop: re.Pattern[str] | None = None  # close the connection on matching paths
        self.paths_info = True  # False: answer paths-info with 404 like an older hub
        self.commits: list[tuple[str, str | None]] = []  # repository, summary
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fetched(self, path: str) -> int:
        return self.served.get(path, 0)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._route()

            def do_HEAD(self) -> None:
                self._route()

            def do_POST(self) -> None:
                self._route()

            def _route(self) -> None:
                url = urlsplit(self.path)
                path = unquote(url.path)
                hub.requests.append((self.command, path, self.headers.get("Range")))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if hub.drop and hub.drop.search(path):
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if m := re.fullmatch(rf"/api/models/({_REPO})/preupload/([^/]+)", path):
                    return self._preupload(m[1], m[2], body)
                if m := re.fullmatch(rf"/api/models/({_REPO})/commit/([^/]+)", path):
                    return self._commit(m[1], m[2], body)
                if m := re.fullmatch(rf"/api/models/({_REPO})/paths-info/([^/]+)", path):
                    return self._paths_info(m[1], m[2], body)
                if m := re.fullmatch(rf"/api/models/({_REPO})(?:/revision/([^/]+))?", path):
                    return self._model_info(m[1], m[2] or "main", parse_qs(url.query))
                if m := re.fullmatch(rf"/({_REPO})/resolve/([^/]+)/(.+)", path):
                    return self._resolve(m[1], m[2], m[3])
                if m := re.fullmatch(rf"/lfs-cdn/({_REPO})/([0-9a-f]{{64}})", path):
                    return self._cdn(m[1], m[2])
                self._error(404, "RepoNotFound", "not found")

            # -- API -------------------------------------------------------------------------

            def _repo(self, name: str, revision: str, files: bool = False) -> Repo | None:
                repo = hub.repos.get(name)
                auth = self.headers.get("Authorization", "")
                if repo is None or (repo.token and auth != f"Bearer {repo.token}"):
                    # like the Hub: a private repository is indistinguishable from none
                    self._error(401, "RepoNotFound", "Repository not found")
                    return None
                if files and repo.gated and auth.removeprefix("Bearer ") not in repo.granted:
                    code = 403 if auth else 401
                    self._error(code, "GatedRepo", "Access to this model is restricted")
                    return None
                if (
                    revision not in (repo.commit, *repo.branches, *repo.history)
                    and revision != "main"
                ):
                    self._error(404, "RevisionNotFound", "Invalid rev id")
                    return None
                return repo

            def _model_info(self, name: str, revision: str, query: dict) -> None:
                if not (repo := self._repo(name, revision)):
                    return
                siblings = []
                for path, f in sorted(repo.files_at(revision).items()):
                    entry: dict = {"rfilename": path}
                    if query.get("blobs"):
                        entry |= {"size": f.size, "blobId": f.git_oid() if not f.lfs else "b" * 40}
                        if f.lfs:
                            entry["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": 134}
                    siblings.append(entry)
                body = {
                    "_id": "x", "id": name, "modelId": name,
                    "sha": revision if revision in repo.history else repo.commit,
                    "private": bool(repo.token), "gated": "manual" if repo.gated else False,
                    "disabled": False, "downloads": 0, "likes": 0, "tags": [],
                    "siblings": siblings, "lastModified": "2026-01-01T00:00:00.000Z",
                }  # fmt: skip
                self._json(body)

            def _paths_info(self, name: str, revision: str, body: bytes) -> None:
                form = parse_qs(body.decode())
                if not hub.paths_info:
                    return self._error(404, None, "Not Found")
                if not (repo := self._repo(name, revision)):
                    return
                out = []
                for path in form.get("paths", []):
                    if f := repo.files_at(revision).get(path):
                        entry = {"type": "file", "oid": "c" * 40, "size": f.size, "path": path}
                        if f.lfs:
                            entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
                        if form.get("expand", [""])[0].lower() == "true" and f.security is not None:
                            entry["securityFileStatus"] = f.security
                        out.append(entry)
                self._json(out)

            def _preupload(self, name: str, revision: str, body: bytes) -> None:
                if not (self._repo(name, revision)):
                    return
                paths = [f["path"] for f in json.loads(body)["files"]]
                self._json({"files": [
                    {"path": p, "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                    for p in paths
                ]})  # fmt: skip

            def _commit(self, name: str, revision: str, body: bytes) -> None:
                if not (repo := self._repo(name, revision)):
                    return
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                header = next(item["value"] for item in lines if item["key"] == "header")
                if header.get("parentCommit") not in (None, repo.commit):
                    return self._error(412, None, "A commit has happened since")
                files = dict(repo.files)
                for item in lines:
                    if item["key"] == "file":
                        content = base64.b64decode(item["value"]["content"])
                        files[item["value"]["path"]] = File(content, 0, lfs=False)
                repo.history[repo.commit] = repo.files
                digest = hashlib.sha1(repr(sorted(files)).encode() + repo.commit.encode())
                repo.files, repo.commit = files, digest.hexdigest()
                hub.commits.append((name, header.get("summary")))
                self._json({"commitUrl": f"{hub.url}/{name}/commit/{repo.commit}",
                            "commitOid": repo.commit})  # fmt: skip

            # -- files -----------------------------------------------------------------------

            def _resolve(self, name: str, revision: str, path: str) -> None:
                if not (repo := self._repo(name, revision, files=True)):
                    return
                f = repo.files_at(revision).get(path)
                if f is None:
                    return self._error(404, "EntryNotFound", "Entry not found")
                extra = {"X-Repo-Commit": repo.commit, "ETag": f'"{f.sha256 or f.git_oid()}"'}
                if f.lfs:
                    extra |= {"X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size)}
                    self.send_response(302)
                    # another origin, like the Hub's CDN: credentials must not follow
                    cdn = hub.url.replace("127.0.0.1", "localhost")
                    self.send_header("Location", f"{cdn}/lfs-cdn/{name}/{f.sha256}")
                    self.send_header("Content-Length", "0")
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    return
                self._body(path, f, extra)

            def _cdn(self, name: str, sha256: str) -> None:
                repo = hub.repos.get(name)
                if self.headers.get("Authorization"):
                    return self._error(400, None, "credentials must not reach the CDN")
                match = [
                    (p, f) for p, f in (repo.files.items() if repo else ()) if f.sha256 == sha256
                ]
                if not match:
                    return self._error(404, None, "no such object")
                self._body(*match[0], {})

            def _body(self, path: str, f: File, extra: dict[str, str]) -> None:
                start, end = 0, f.size
                status = 200
                if rng := self.headers.get("Range"):
                    m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
                    start = int(m[1])
                    end = min(int(m[2]) + 1 if m[2] else f.size, f.size)
                    if start >= f.size:
                        return self._error(416, None, "range not satisfiable")
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(end - start))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{f.size}")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command == "HEAD":
                    return
                position = start
                while position < end:
                    chunk = f.read(position, min(end, position + (1 << 20)))
                    try:
                        self.wfile.write(chunk)
                    except OSError:
                        return
                    hub.served[path] += len(chunk)
                    position += len(chunk)

            def _json(self, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, code: int, error_code: str | None, message: str) -> None:
                data = json.dumps({"error": message}).encode()
                self.send_response(code)
                if error_code:
                    self.send_header("X-Error-Code", error_code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

        return Handler
