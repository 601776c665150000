"""`mlbom admission serve` for real, over HTTPS on loopback, and a client for it."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from admission.manifests import admission_review
from tests.registry import free_port
from tests.tls import TestCA


class Webhook:
    def __init__(self, url: str, ca: Path, metrics: str) -> None:
        self.url, self.metrics_url = url, metrics
        self.context = ssl.create_default_context(cafile=str(ca))

    def post(self, body: bytes, path: str = "/validate") -> tuple[int, dict]:
        request = urllib.request.Request(
            self.url + path, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def review(self, obj: dict, **request: object) -> dict:
        review = admission_review(obj)
        review["request"].update({"dryRun": False, **request})
        status, body = self.post(json.dumps(review).encode())
        assert status == 200, body
        assert body["response"]["uid"] == review["request"]["uid"]
        return body["response"]

    def get(self, path: str) -> tuple[int, bytes]:
        with urllib.request.urlopen(self.url + path, context=self.context, timeout=10) as r:
            return r.status, r.read()

    def peer_serial(self) -> int:
        import socket

        host, port = self.url.removeprefix("https://").split(":")
        from cryptography import x509

        with (
            socket.create_connection((host, int(port)), timeout=5) as raw,
            self.context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).serial_number


@contextmanager
def running_webhook(policy: Path, folder: Path) -> Iterator[Webhook]:
    """The webhook serving `policy` with a certificate from a test CA in `folder`."""
    ca = TestCA(folder)
    cert, key, _ = ca.issue()
    port, metrics_port = free_port(), free_port()
    log = folder / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlbom", "admission", "serve", "--policy", str(policy),
         "--tls-cert", str(cert), "--tls-key", str(key), "--host", "127.0.0.1",
         "--port", str(port), "--metrics-port", str(metrics_port)],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"),  # noqa: SIM115
    )  # fmt: skip
    hook = Webhook(f"https://127.0.0.1:{port}", ca.path, f"http://127.0.0.1:{metrics_port}")
    hook.ca, hook.cert, hook.key, hook.log = ca, cert, key, log
    for _ in range(100):
        try:
            if hook.get("/healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(log.read_text())
    try:
        yield hook
    finally:
        process.terminate()
        process.wait(10)
