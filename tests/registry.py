"""A real OCI registry on loopback for the tests: Debian's `docker-registry` package (the
CNCF distribution registry 2.8, which has no referrers API, so the referrers tag schema is
what gets exercised), started with a temporary storage folder, optionally behind htpasswd
(bcrypt) credentials. Its access log (stdout) records every request's status and response
size, so a test can tell how many bytes of each blob were served and whether by range.

Models are pushed to it as ORAS artifacts, one layer per file, with the oras SDK itself.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

BINARY = "/usr/bin/docker-registry"
TITLE = "org.opencontainers.image.title"
# 127.0.0.1 - - [26/Nov/2026:16:22:35 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"
_ACCESS = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-)')


def registry_binary() -> str:
    """The registry binary; installed with apt-get when missing and root, else the tests
    skip (locally) or fail (under CI=true)."""
    found = shutil.which("docker-registry") or (BINARY if os.access(BINARY, os.X_OK) else None)
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "install", "-y", "docker-registry"], ["apt-get", "update"],
                        ["apt-get", "install", "-y", "docker-registry"]):  # fmt: skip
            done = subprocess.run(command, env=env, capture_output=True, timeout=900, check=False)
            if command[1] == "install" and done.returncode == 0:
                break
        found = shutil.which("docker-registry") or (BINARY if os.access(BINARY, os.X_OK) else None)
    if found:
        return found
    reason = "docker-registry is not installed (apt-get install docker-registry, or run make test as root)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Access:
    method: str
    path: str
    status: int
    size: int


class RegistryServer:
    """One docker-registry process on 127.0.0.1, its storage under `root`."""

    def __init__(self, root: Path, *, users: dict[str, str] | None = None) -> None:
        import bcrypt

        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.host = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.host}"
        self.users = users or {}
        config: dict = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(root / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.host, "secret": uuid.uuid4().hex},
        }
        if users:
            lines = [
                f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode()}"
                for user, pw in users.items()
            ]
            (root / "htpasswd").write_text("\n".join(lines) + "\n")
            config["auth"] = {"htpasswd": {"realm": "mlbom-tests", "path": str(root / "htpasswd")}}
        (root / "config.yml").write_text(yaml.safe_dump(config))
        self.log: list[Access] = []
        self._stderr = open(root / "registry.err", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [registry_binary(), "serve", str(root / "config.yml")],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        threading.Thread(target=self._read_log, daemon=True).start()
        self._wait_ready()

    def _read_log(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if m := _ACCESS.match(line):
                size = 0 if m[4] == "-" else int(m[4])
                self.log.append(Access(m[1], m[2], int(m[3]), size))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(f"{self.url}/v2/", timeout=1).status_code in (200, 401):
                    return
            except requests.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"docker-registry did not start: {(self.root / 'registry.err').read_text()}"
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()

    def sync(self) -> None:
        """Wait until every request answered so far is in the access log: the log line is
        written after the answer, so a marker request is sent and waited for."""
        marker = f"/v2/?sync={uuid.uuid4().hex}"
        requests.get(self.url + marker, timeout=5)
        deadline = time.monotonic() + 5
        while not any(a.path == marker for a in list(self.log)):
            if time.monotonic() > deadline:
                raise AssertionError("the registry's access log did not record a request")
            time.sleep(0.01)

    def mark(self) -> int:
        """A position in the access log, to look at what came after it."""
        self.sync()
        return len(self.log)

    def since(self, mark: int) -> list[Access]:
        self.sync()
        return list(self.log[mark:])

    def docker_config(self, folder: Path, user: str, password: str) -> Path:
        """A DOCKER_CONFIG folder holding these credentials for this registry."""
        folder.mkdir(parents=True, exist_ok=True)
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        (folder / "config.json").write_text(json.dumps({"auths": {self.host: {"auth": auth}}}))
        return folder


@contextmanager
def running_registry(
    root: Path, *, users: dict[str, str] | None = None
) -> Iterator[RegistryServer]:
    server = RegistryServer(root, users=users)
    try:
        yield server
    finally:
        server.stop()


def blob_reads(accesses: list[Access], digest: str) -> list[Access]:
    return [a for a in accesses if a.method == "GET" and a.path.endswith(f"/blobs/{digest}")]


def push_model(
    server: RegistryServer,
    target: str,
    folder: Path,
    *,
    credentials: tuple[str, str] | None = None,
) -> str:
    """Push every file of `folder` as one layer titled with its relative path, with the oras
    SDK's own push (its default layer and config media types); the manifest digest."""
    import oras.provider

    client = oras.provider.Registry(
        hostname=server.host, insecure=True, auth_backend="basic" if credentials else "token"
    )
    if credentials:
        client.auth.set_basic_auth(*credentials)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    annotations = {str(p): {TITLE: p.relative_to(folder).as_posix()} for p in files}
    annotation_file = folder.parent / f".{folder.name}-{uuid.uuid4().hex}.annotations.json"
    annotation_file.write_text(json.dumps(annotations))
    try:
        response = client.push(
            f"{server.host}/{target}",
            files=[str(p) for p in files],
            annotation_file=str(annotation_file),
            disable_path_validation=True,
            quiet=True,
        )
    finally:
        annotation_file.unlink()
    assert response.status_code == 201, response.text
    return response.headers["Docker-Content-Digest"]
