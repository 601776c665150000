"""A local Sigstore instance for the keyless tests, and the tools around it.

`LocalSigstore.start` runs `tests/sigstore/server.js` (Fulcio and Rekor v1 built from
@sigstore/mock, on loopback) and writes the ClientTrustConfig it prints, and its trusted
root, to files the `mlbom` command can be given. `token` mints OIDC identity tokens as an
identity provider would, signed with a throwaway key: the sigstore client reads tokens
without checking them, and the local Fulcio checks their audience, times and identity
claims but has no provider keys to check the signature with. `sigstore_js` verifies a
bundle with @sigstore/verify, an implementation that shares no code with mlbom's verifier.

Without Node or `tests/sigstore/node_modules` the tests that need them skip locally and
fail in CI (CI=true): `make test` installs the peers from the lock file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

NODE_DIR = Path(__file__).parent / "sigstore"
START_TIMEOUT = 30.0
ISSUER = "https://accounts.example.com"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
_SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())  # the test identity provider's


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def node() -> str:
    """The `node` binary, with the test peers installed; else skip (fail in CI)."""
    found = shutil.which("node")
    message = None
    if found is None:
        message = "node is not on PATH: install Node.js 20+ and npm, then run `make test`"
    elif not (NODE_DIR / "node_modules" / "@sigstore" / "mock").is_dir():
        message = (
            "the Node test peers are not installed in tests/sigstore/node_modules: "
            "run `make test` (npm ci --prefix tests/sigstore)"
        )
    if message:
        if in_ci():
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    assert found is not None
    return found


@dataclass
class LocalSigstore:
    """A running server.js: its URL, its trust config and trusted root on disk."""

    url: str
    trust_config: Path
    trusted_root: Path
    tlogs: dict[str, str]
    process: subprocess.Popen
    folder: Path
    _variants: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def start(cls, folder: Path) -> LocalSigstore:
        log = open(folder / "server.log", "wb")  # noqa: SIM115 - kept open for the process
        process = subprocess.Popen(
            [node(), str(NODE_DIR / "server.js")],
            cwd=NODE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        line = _first_line(process, START_TIMEOUT)
        if not line:
            process.kill()
            process.wait()
            log.close()
            error = (folder / "server.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"tests/sigstore/server.js did not start:\n{error}", pytrace=False)
        hello = json.loads(line)
        config = folder / "trust_config.json"
        config.write_text(json.dumps(hello["trustConfig"], indent=2))
        root = folder / "trusted_root.json"
        root.write_text(json.dumps(hello["trustConfig"]["trustedRoot"], indent=2))
        return cls(hello["url"], config, root, hello["tlogs"], process, folder)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()

    def with_tlog(self, name: str) -> Path:
        """A trust config that logs to the same log with a lying clock ("late", "early")."""
        if name not in self._variants:
            config = json.loads(self.trust_config.read_text())
            config["signingConfig"]["rekorTlogUrls"][0]["url"] = self.tlogs[name]
            path = self.folder / f"trust_config.{name}.json"
            path.write_text(json.dumps(config, indent=2))
            self._variants[name] = path
        return self._variants[name]

    def log(self) -> str:
        return (self.folder / "server.log").read_text(errors="replace")


def _first_line(process: subprocess.Popen, timeout: float) -> bytes:
    """The server's first stdout line, or b"" when it exits or stays silent too long."""
    box: list[bytes] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: box.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0] if box else b""


def token(
    sub: str = "alice-1234",
    *,
    issuer: str = ISSUER,
    audience: str | list[str] = "sigstore",
    lifetime: int = 300,
    **claims: Any,
) -> str:
    """An OIDC identity token for the local Fulcio: it reads the identity from `email`
    (when `email_verified`), GitHub's `job_workflow_ref`, or `sub`, as Fulcio does."""
    now = int(time.time())
    body = {"iss": issuer, "aud": audience, "sub": sub, "iat": now, "nbf": now}
    body["exp"] = now + lifetime
    body.update(claims)
    return jwt.encode(body, _SIGNING_KEY, algorithm="ES256", headers={"kid": "test"})


def email_token(email: str = "alice@example.com", *, issuer: str = ISSUER, **claims: Any) -> str:
    claims.setdefault("email_verified", True)
    return token(issuer=issuer, email=email, **claims)


def github_token(
    repo: str = "acme/repo", workflow: str = "release.yml", ref: str = "refs/heads/main"
) -> str:
    """A GitHub Actions token: the identity is https://github.com/{job_workflow_ref}."""
    return token(
        f"repo:{repo}:ref:{ref}",
        issuer=GITHUB_ISSUER,
        job_workflow_ref=f"{repo}/.github/workflows/{workflow}@{ref}",
        repository=repo,
        ref=ref,
        workflow=workflow,
        event_name="push",
    )


def github_identity(
    repo: str = "acme/repo", workflow: str = "release.yml", ref: str = "refs/heads/main"
) -> str:
    return f"https://github.com/{repo}/.github/workflows/{workflow}@{ref}"


def sigstore_js(
    bundle: Path,
    *,
    trusted_root: Path | None = None,
    identity: str | None = None,
    issuer: str | None = None,
    key: Path | None = None,
) -> dict[str, Any]:
    """@sigstore/verify's verdict on `bundle` ({"verified": bool, ...})."""
    args = [node(), str(NODE_DIR / "verify.js"), "--bundle", str(bundle)]
    if key is not None:
        args += ["--key", str(key)]
    else:
        args += ["--trusted-root", str(trusted_root), "--identity", str(identity)]
        args += ["--issuer", str(issuer)]
    done = subprocess.run(args, cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), (done.returncode, done.stdout, done.stderr)
    result = json.loads(done.stdout)
    assert result["verified"] is (done.returncode == 0), result
    return result
