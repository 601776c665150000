"""The project's container image, built for the tests from Debian packages alone.

No container registry is reachable where the tests run, so the base image cannot be pulled:
it is made here. debootstrap lays out a minimal Debian bookworm (python3, python3-venv) from
the Debian mirror; buildah turns that tree into an image (`FROM scratch` + `ADD rootfs.tar /`);
then the top-level Containerfile is built on it (`--build-arg BASE_IMAGE=...`), its wheel and
dependencies coming from PyPI. Debian's buildah runs as root without a daemon, with chroot
isolation; podman runs the result (`--read-only`, a tmpfs /tmp, no
network), with runc on cgroupfs where the default runtime cannot start a container.

Everything lives in its own container storage under STATE (/var/tmp/mlbom-image-test, or
$MLBOM_IMAGE_TEST_DIR), never the machine's: the overlay driver where it mounts, else vfs. The base image is tagged by its recipe and the
built image by the hash of the Containerfile, .containerignore and every file of the build
context, so a rerun on an unchanged tree reuses both and takes seconds; a changed tree
rebuilds the image (about a minute) on the cached base. `rm -rf` STATE frees it all.

Where the builder cannot run (not root, the Debian tools missing: `make test` installs them
as root), the tests skip with the reason; under CI=true they fail instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTAINERFILE = ROOT / "Containerfile"
CONTAINERIGNORE = ROOT / ".containerignore"
# What .containerignore lets into the build context (its allowlist says the same)
CONTEXT = ("pyproject.toml", "README.md", "mlbom", "attest", "admission", "schemas")
STATE = Path(os.environ.get("MLBOM_IMAGE_TEST_DIR", "/var/tmp/mlbom-image-test"))
SUITE = "bookworm"
MIRROR = os.environ.get("MLBOM_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = ("python3", "python3-venv", "ca-certificates")
TOOLS = ("buildah", "podman", "debootstrap")
BASE_REPOSITORY = "localhost/mlbom-test-base"
IMAGE_REPOSITORY = "localhost/mlbom-test"
# How podman runs a container here: the runtime's defaults first; then runc with cgroupfs and
# rlimits below the sandbox's (crun refuses hybrid cgroup hierarchies, and raising an rlimit
# needs CAP_SYS_RESOURCE, which a container host may not have).
RUNTIMES: tuple[tuple[str, ...], ...] = (
    (),
    ("--runtime", "runc", "--cgroup-manager", "cgroupfs",
     "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"),
)  # fmt: skip


class Unavailable(Exception):
    """The image cannot be built or run on this machine; the message says why and what to do."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip the test, or fail it under CI=true."""
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def storage() -> list[str]:
    """The global options that put buildah and podman on the tests' own storage."""
    driver = storage_driver()
    return [
        "--root", str(STATE / f"storage-{driver}"), "--runroot", str(STATE / f"run-{driver}"),
        "--storage-driver", driver,
    ]  # fmt: skip


_driver: str | None = None


def storage_driver() -> str:
    """overlay where it can mount here (a container's rootfs is then a mount, not a copy),
    else vfs (copies, works everywhere); $MLBOM_IMAGE_STORAGE_DRIVER chooses."""
    global _driver
    if _driver is None:
        _driver = os.environ.get("MLBOM_IMAGE_STORAGE_DRIVER") or (
            "overlay" if overlay_mounts() else "vfs"
        )
    return _driver


def overlay_mounts() -> bool:
    """Whether buildah can mount an overlay container on STATE (not, for example, where STATE
    is itself on an overlay filesystem)."""
    base = [
        "buildah", "--root", str(STATE / "storage-overlay"),
        "--runroot", str(STATE / "run-overlay"), "--storage-driver", "overlay",
    ]  # fmt: skip
    made = subprocess.run(
        [*base, "from", "--quiet", "scratch"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if made.returncode != 0:
        return False
    container = made.stdout.strip()
    mounted = subprocess.run(
        [*base, "mount", container], capture_output=True, timeout=120, check=False
    )
    subprocess.run([*base, "rm", container], capture_output=True, timeout=120, check=False)
    return mounted.returncode == 0


def check_builder() -> None:
    """Raise Unavailable unless the tools are installed and we are root."""
    install = "run `make test` as root (it installs them), or apt-get install buildah podman runc debootstrap"
    if os.geteuid() != 0:
        raise Unavailable(
            "building the image needs root (buildah with the vfs driver, debootstrap): " + install
        )
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if missing:
        raise Unavailable(f"{', '.join(missing)} not installed: {install}")


def digest_of(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def context_files() -> list[Path]:
    """The files of the build context, as .containerignore lets them through."""
    files: list[Path] = []
    for name in CONTEXT:
        path = ROOT / name
        if path.is_file():
            files.append(path)
            continue
        for folder, subfolders, names in os.walk(path):
            subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
            files += [Path(folder, n) for n in sorted(names) if not n.endswith(".pyc")]
    return files


def base_key() -> str:
    recipe = json.dumps({"suite": SUITE, "variant": "minbase", "packages": PACKAGES, "v": 1})
    return digest_of(recipe.encode())[:16]


def image_key() -> str:
    parts = [base_key().encode(), CONTAINERFILE.read_bytes(), CONTAINERIGNORE.read_bytes()]
    for path in context_files():
        parts += [str(path.relative_to(ROOT)).encode(), path.read_bytes()]
    return digest_of(*parts)[:16]


def ca_bundle() -> str | None:
    """The CA bundle this machine's pip trusts, handed to the build's pip as a secret."""
    for variable in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(variable)
        if value and Path(value).is_file():
            return value
    return None


def run(command: Sequence[str], *, log: Path | None = None, timeout: float = 900) -> str:
    """Run a build step; raise RuntimeError with its output's tail when it fails."""
    done = subprocess.run(
        list(command), capture_output=True, text=True, timeout=timeout, check=False
    )
    if log is not None:
        with log.open("a") as f:
            f.write(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-4000:]
        raise RuntimeError(f"{' '.join(command[:3])}... exited {done.returncode}:\n{tail}")
    return done.stdout


def has_image(ref: str) -> bool:
    done = subprocess.run(
        ["buildah", *storage(), "images", "--quiet", ref],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return done.returncode == 0 and bool(done.stdout.strip())


def drop_other_tags(repository: str, keep: str) -> None:
    """Remove the images of `repository` other than `keep`, and what only they used."""
    listed = run(["buildah", *storage(), "images", "--format", "{{.Name}}:{{.Tag}}"], timeout=120)
    for ref in listed.split():
        if ref.startswith(repository + ":") and ref != keep:
            run(["buildah", *storage(), "rmi", "--force", ref], timeout=300)
    subprocess.run(
        ["buildah", *storage(), "rmi", "--prune"], capture_output=True, timeout=300, check=False
    )


def build_base(log: Path) -> str:
    """The Debian bookworm base image (python3, python3-venv), debootstrapped once."""
    ref = f"{BASE_REPOSITORY}:{base_key()}"
    if has_image(ref):
        return ref
    with tempfile.TemporaryDirectory(dir=STATE, prefix="base-") as work:
        rootfs = Path(work, "rootfs")
        run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             SUITE, str(rootfs), MIRROR],
            log=log,
        )  # fmt: skip
        # what an image does not need: the package caches and lists
        for folder in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / folder).glob("*"):
                if entry.is_file():
                    entry.unlink()
        context = Path(work, "context")
        context.mkdir()
        run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(context / "rootfs.tar"), "."])
        (context / "Containerfile").write_text('FROM scratch\nADD rootfs.tar /\nCMD ["python3"]\n')
        run(
            ["buildah", *storage(), "bud", "--isolation", "chroot", "-t", ref, str(context)],
            log=log,
        )
    drop_other_tags(BASE_REPOSITORY, ref)
    return ref


@dataclass
class Image:
    """The built image in the tests' storage, and how podman runs it here."""

    ref: str
    seconds: float  # how long getting it took (building it, or finding it built)
    runtime: tuple[str, ...] = ()
    smoke: subprocess.CompletedProcess[str] | None = None  # `mlbom --version`, read-only, no /tmp
    _inspected: dict = field(default_factory=dict)

    def run(
        self,
        *args: str,
        entrypoint: str | None = None,
        read_only: bool = True,
        tmp: bool = True,
        volumes: Sequence[tuple[Path, str]] = (),
        writable: Sequence[tuple[Path, str]] = (),
        network: str = "none",
        options: Sequence[str] = (),
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """`podman run --rm --network=none` the image with `args`; the root filesystem is
        read-only and /tmp a tmpfs unless asked otherwise; `volumes` are mounted read-only,
        `writable` read-write."""
        command = ["podman", *storage(), "run", "--rm", f"--network={network}", *self.runtime]
        if read_only:
            command.append("--read-only")
        if tmp:
            command += ["--tmpfs", "/tmp:rw,size=256m,mode=1777"]
        for source, target in volumes:
            command += ["--volume", f"{source}:{target}:ro"]
        for source, target in writable:
            command += ["--volume", f"{source}:{target}:rw"]
        command += options
        if entrypoint is not None:
            command += ["--entrypoint", entrypoint]
        command += [self.ref, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    def inspect(self) -> dict:
        if not self._inspected:
            out = run(["podman", *storage(), "image", "inspect", self.ref], timeout=120)
            self._inspected = json.loads(out)[0]
        return self._inspected


_runtime: tuple[str, ...] | None = None


def choose_runtime(image: Image) -> None:
    """Set how podman runs containers here: the first of RUNTIMES whose container starts (the
    one that worked last time first). The probe is the smoke test, `mlbom --version` with
    nothing writable, kept in image.smoke."""
    global _runtime
    remembered = STATE / "runtime.json"
    order = list(RUNTIMES)
    with contextlib.suppress(OSError, ValueError, TypeError):
        last = tuple(json.loads(remembered.read_text()))
        if last in order:
            order.remove(last)
            order.insert(0, last)
    if _runtime is not None:
        order = [_runtime]
    error = ""
    for runtime in order:
        image.runtime = runtime
        image.smoke = image.run("--version", tmp=False, timeout=120)
        if image.smoke.returncode == 0 or "OCI" not in image.smoke.stderr:
            # it started (what it printed is the tests' business)
            remembered.write_text(json.dumps(runtime))
            _runtime = runtime
            return
        error = image.smoke.stderr.strip()
    raise Unavailable(f"podman cannot start a container here: {error}")


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One build at a time across processes (pytest-xdist workers, two checkouts)."""
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def built_image() -> Image:
    """The image of the current tree, built (or reused) and runnable; raises Unavailable."""
    from mlbom import __version__

    check_builder()
    started = time.monotonic()
    with locked():
        log = STATE / "build.log"
        key = image_key()
        ref = f"{IMAGE_REPOSITORY}:{key}"
        if not has_image(ref):
            log.write_text("")
            try:
                base = build_base(log)
                command = ["buildah", *storage(), "bud", "--isolation", "chroot",
                           "--build-arg", f"BASE_IMAGE={base}",
                           "--build-arg", f"VERSION={__version__}",
                           "--build-arg", f"REVISION=tree-{key}",
                           "-f", str(CONTAINERFILE), "-t", ref]  # fmt: skip
                if bundle := ca_bundle():
                    command += ["--secret", f"id=ca-certificates,src={bundle}"]
                run([*command, str(ROOT)], log=log)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                raise RuntimeError(f"the image build failed (log: {log}): {e}") from e
            drop_other_tags(IMAGE_REPOSITORY, ref)
    image = Image(ref, seconds=time.monotonic() - started)
    choose_runtime(image)
    return image
