"""The training environment, for the BOM's `formulation`.

`collect_environment` records the environment mlbom runs in (the pipeline step that trained
the model): Python, the operating system, every installed distribution, NVIDIA GPUs, driver
and CUDA, and the git checkout of the training code. Each outside tool is optional: one that
is absent, fails or hangs records nothing and never ends the run.

`read_requirements` records what a requirements or lock file pins instead (pip requirements,
uv.lock, poetry.lock, pylock.toml, Pipfile.lock), and nothing of the running environment.
The file is hostile input: the read is bounded, nothing is fetched or executed, and anything
malformed is a `BadInputError` naming the file (and the line where the format has lines).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import shutil
import stat
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from mlbom.errors import BadInputError
from mlbom.hashing import ALGORITHMS
from mlbom.inspectors import text
from mlbom.models import Environment, Gpu, Package, RequirementsFile, TrainingCode
from mlbom.untrusted import as_dict
from mlbom.urls import strip_credentials

log = logging.getLogger(__name__)

TOOL_TIMEOUT = 10.0  # seconds each for nvidia-smi, nvcc and git
MAX_REQUIREMENTS_BYTES = 32 << 20
_HINT = "mlbom reads pip requirements files, uv.lock, poetry.lock, pylock.toml and Pipfile.lock"
_PYPI_INDEXES = ("https://pypi.org/simple", "https://pypi.org/simple/", "https://pypi.org/pypi")

_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9])?$")  # PEP 508
# PEP 440 versions, and the arbitrary strings `===` allows, without anything unprintable.
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.!+_-]{0,127}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_COMMIT = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")  # SHA-1 or SHA-256 repositories
_DRIVER = re.compile(r"^\d+(?:\.\d+)+$")
_MEMORY = re.compile(r"^\d+ [KMGT]iB$")
# ---------------------------------------------------------------------------- the running one


def collect_environment(cwd: Path | None = None) -> Environment:
    """The environment this process runs in. `cwd` is the training code's checkout (default:
    the current directory); outside a git repository no code is recorded."""
    env = Environment(
        python_implementation=platform.python_implementation() or None,
        python_version=platform.python_version() or None,
        packages=_installed_packages(),
    )
    _operating_system(env)
    _nvidia(env)
    env.code = _git(cwd or Path.cwd())
    return env


def _installed_packages() -> list[Package]:
    found: dict[str, Package] = {}
    for dist in importlib.metadata.distributions():
        metadata: Any = dist.metadata  # an email.message.Message: `get` gives None when absent
        name, version = metadata.get("Name"), metadata.get("Version")
        if not isinstance(name, str) or not _NAME.match(name):
            continue  # a broken dist-info directory names nothing
        normalized = normalize(name)
        if normalized in found:
            continue  # the first one on sys.path is the one that is imported
        version = version if isinstance(version, str) and _VERSION.match(version) else None
        found[normalized] = Package(normalized, version, _pypi_purl(normalized, version))
    return [found[n] for n in sorted(found)]


def _operating_system(env: Environment) -> None:
    system = platform.system()
    env.kernel = _clean(f"{system} {platform.release()}")
    env.machine = _clean(platform.machine())
    if system == "Linux":
        try:
            release = platform.freedesktop_os_release()
        except OSError:
            release = {}
        env.os_name = _clean(release.get("NAME")) or system
        env.os_version = _clean(release.get("VERSION_ID"))
    elif system == "Darwin":
        env.os_name, env.os_version = "macOS", _clean(platform.mac_ver()[0])
    else:
        env.os_name, env.os_version = _clean(system), _clean(platform.version())


def _nvidia(env: Environment) -> None:
    query = _run(
        "nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"
    )
    if query is not None:
        counts: dict[tuple[str, str | None], int] = {}
        for line in query.splitlines():
            fields = [f.strip() for f in line.rsplit(",", 2)]  # a GPU name may hold a comma
            if len(fields) != 3 or not (model := _clean(fields[0], 200)):
                continue
            memory = fields[2] if _MEMORY.match(fields[2]) else None  # not "[N/A]"
            counts[(model, memory)] = counts.get((model, memory), 0) + 1
            if env.nvidia_driver is None and _DRIVER.match(fields[1]):
                env.nvidia_driver = fields[1]
        env.gpus = [Gpu(model, memory, n) for (model, memory), n in counts.items()]
        # The summary's "CUDA Version" is the newest CUDA the driver supports.
        summary = _run("nvidia-smi") or ""
        if found := re.search(r"CUDA Version:\s*(\d+(?:\.\d+)*)", summary):
            env.cuda_version, env.cuda_reported_by = found[1], "nvidia-smi"
    if env.cuda_version is None:  # no driver here (a build host): the installed toolkit
        toolkit = _run("nvcc", "--version") or ""
        if found := re.search(r"\brelease (\d+(?:\.\d+)*)", toolkit):
            env.cuda_version, env.cuda_reported_by = found[1], "nvcc"


def _git(cwd: Path) -> TrainingCode | None:
    # Read-only and non-interactive; a repository's own fsmonitor hook is not run.
    environ = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}

    def git(*args: str) -> str | None:
        out = _run("git", "-C", str(cwd), "-c", "core.fsmonitor=false", *args, env=environ)
        return out.strip() if out is not None else None

    commit = git("rev-parse", "--verify", "HEAD")
    if not commit or not _COMMIT.match(commit):
        return None  # not a repository, no commit yet, or no git
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    url = strip_credentials(git("config", "--get", "remote.origin.url"))
    status = git("status", "--porcelain", "--untracked-files=no")
    top = git("rev-parse", "--show-toplevel")
    name = _repository_name(url) or _clean(Path(top).name if top else cwd.resolve().name)
    return TrainingCode(
        name=name or "training-code",
        commit=commit,
        url=url,
        branch=_clean(branch) if branch != "HEAD" else None,  # HEAD: a detached checkout
        dirty=bool(status) if status is not None else None,
    )


def _repository_name(url: str | None) -> str | None:
    last = (url or "").rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    return last if url and _NAME.match(last) else None


def _run(tool: str, *args: str, env: dict[str, str] | None = None) -> str | None:
    """A tool's standard output, or None when it is absent, fails or outlives TOOL_TIMEOUT."""
    executable = shutil.which(tool)
    if executable is None:
        return None
    try:
        done = subprocess.run(
            [executable, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TOOL_TIMEOUT,
            check=False,
            env=env,
        )
    except (OSError, subprocess.SubprocessError) as e:
        log.debug("%s %s: %s", tool, " ".join(args), e)
        return None
    if done.returncode != 0:
        log.debug("%s %s exited with %d", tool, " ".join(args), done.returncode)
        return None
    return done.stdout.decode("utf-8", "replace")


# ------------------------------------------------------------------ requirements and lock files


def read_requirements(path: Path) -> Environment:
    """What a requirements or lock file pins: packages with versions and hashes, `requires-python`
    where the file states it, and the file's name and SHA-256. Raises `BadInputError`."""
    data = _read_bounded(path)
    content = _decode(data, path)
    fmt, document = _detect(path, content)
    readers: dict[str, Callable[[Any, Path], tuple[list[Package], list[tuple[str, str]]]]] = {
        "requirements": _pip,
        "uv.lock": _uv,
        "poetry.lock": _poetry,
        "pylock.toml": _pylock,
        "Pipfile.lock": _pipfile,
    }
    packages, properties = readers[fmt](document, path)
    packages.sort(key=lambda p: (p.name, p.version or ""))
    recorded = RequirementsFile(path.name, hashlib.sha256(data).hexdigest(), fmt)
    return Environment(packages=packages, requirements=recorded, properties=properties)


def _read_bounded(path: Path) -> bytes:
    try:
        # Non-blocking, so that a FIFO cannot stall the open; it is refused just below.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise BadInputError(f"cannot read {path}: {e.strerror}") from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadInputError(f"{path} is not a regular file")
        if info.st_size > MAX_REQUIREMENTS_BYTES:
            raise _too_large(path)
        with os.fdopen(fd, "rb") as f:
            fd = -1  # the file object closes it
            data = f.read(MAX_REQUIREMENTS_BYTES + 1)  # it may have grown since fstat
    except OSError as e:
        raise BadInputError(f"cannot read {path}: {e.strerror}") from e
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > MAX_REQUIREMENTS_BYTES:
        raise _too_large(path)
    return data


def _too_large(path: Path) -> BadInputError:
    return BadInputError(
        f"{path} is larger than {MAX_REQUIREMENTS_BYTES >> 20} MiB",
        hint="no real requirements or lock file is that large: check the path",
    )


def _decode(data: bytes, path: Path) -> str:
    if b"\x00" in data:
        raise BadInputError(f"{path} is not a text file (it holds NUL bytes)", hint=_HINT)
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise BadInputError(f"{path}, line {line}: not UTF-8 text", hint=_HINT) from None
    if found := _CONTROL.search(content):
        line = content.count("\n", 0, found.start()) + 1
        raise BadInputError(f"{path}, line {line}: a control character", hint=_HINT)
    return content


def _detect(path: Path, content: str) -> tuple[str, Any]:
    """The format by file name; other names (requirements-gpu.txt, prod.lock) by content."""
    name = path.name.lower()
    if name in ("uv.lock", "poetry.lock"):
        return name, _toml(content, path)
    if name == "pylock.toml" or (name.startswith("pylock.") and name.endswith(".toml")):
        return "pylock.toml", _toml(content, path)
    if name == "pipfile.lock":
        return "Pipfile.lock", _json(content, path)
    if content.lstrip().startswith("{"):
        try:
            document = json.loads(content)
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict) and "_meta" in document:
            return "Pipfile.lock", document
    try:
        document = tomllib.loads(content)
    except (ValueError, RecursionError):
        return "requirements", content  # the usual case: pip syntax is not TOML
    if isinstance(document.get("packages"), list) and "lock-version" in document:
        return "pylock.toml", document
    if isinstance(document.get("package"), list):
        return ("poetry.lock" if "metadata" in document else "uv.lock"), document
    return "requirements", content


def _toml(content: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(content)
    except tomllib.TOMLDecodeError as e:
        raise BadInputError(f"{path}: not valid TOML: {e}", hint=_HINT) from None
    except RecursionError:
        raise BadInputError(f"{path}: not valid TOML: nested too deeply", hint=_HINT) from None


def _json(content: str, path: Path) -> dict[str, Any]:
    try:
        document = json.loads(content)
    except json.JSONDecodeError as e:
        raise BadInputError(
            f"{path}, line {e.lineno}: not valid JSON: {e.msg}", hint=_HINT
        ) from None
    except RecursionError:
        raise BadInputError(f"{path}: not valid JSON: nested too deeply", hint=_HINT) from None
    if not isinstance(document, dict):
        raise BadInputError(f"{path}: not a Pipfile.lock (no JSON object)", hint=_HINT)
    return document


# pip: a comment starts at a `#` at the start of a line or after whitespace. (pip's own
# `(^|\s+)#.*$` backtracks quadratically on a long run of spaces: a hostile file's weapon.)
_COMMENT = re.compile(r"(?:^|(?<=\s))#")
_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*"
    r"(?:\[(?P<extras>[A-Za-z0-9._,\s-]*)\])?\s*(?P<rest>.*)$"
)
_CLAUSE = r"\s*(?:~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+\s*"
_SPECIFIER = re.compile(rf"^\s*(?:\(?{_CLAUSE}(?:,{_CLAUSE})*\)?)?\s*$")  # ">=2,<3", "(==1.0)"
_PIN = re.compile(r"^\(?\s*(?P<op>===?)\s*(?P<version>[^\s,;()]+)\s*\)?$")
_DIRECT = re.compile(r"^@\s*(?P<url>\S+)(?:\s+;\s*(?P<marker>.*))?$")
_HASH_OPTION = re.compile(r"--hash(?:=|\s+)(?P<value>\S+)")
_WHEEL = re.compile(
    r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[A-Za-z0-9_.!+]+)(?:-[^-/]+){2,3}\.whl$"
)


def _pip(content: str, path: Path) -> tuple[list[Package], list[tuple[str, str]]]:
    packages: list[Package] = []
    properties: list[tuple[str, str]] = []
    for number, line in _logical_lines(content):
        if comment := _COMMENT.search(line):
            line = line[: comment.start()]
        line = line.strip()
        if not line:
            continue
        where = f"{path}, line {number}"
        if line.startswith("-"):
            editable = re.match(r"^(?:-e|--editable)(?:=|\s+)(?P<target>\S+)", line)
            if editable:  # -r, -c, --index-url and the other options pin nothing
                packages += _unnamed(editable["target"], where, properties, editable=True)
            continue
        # pip's split: the requirement runs up to the first word starting with a dash.
        words = line.split(" ")
        cut = next((i for i, w in enumerate(words) if w.startswith("-")), len(words))
        requirement, options = " ".join(words[:cut]).strip(), " ".join(words[cut:])
        hashes = [
            h for o in _HASH_OPTION.finditer(options) if (h := _prefixed_digest(o["value"], where))
        ]
        parsed = _REQUIREMENT.match(requirement)
        rest = parsed["rest"] if parsed else ""
        if not parsed or (not rest.startswith("@") and not _SPECIFIER.match(rest.split(";")[0])):
            if "/" in requirement or "\\" in requirement or requirement.startswith("."):
                packages += _unnamed(requirement, where, properties, hashes=hashes)
                continue
            raise BadInputError(f"{where}: not a requirement: {requirement[:80]!r}", hint=_HINT)
        packages.append(_requirement(parsed, hashes, where))
    return packages, properties


def _logical_lines(content: str) -> Iterator[tuple[int, str]]:
    """Lines joined across `\\` continuations, each with the number of its first line. A
    comment line ends a continuation, as in pip."""
    joined: list[str] = []
    start = 0
    for number, line in enumerate(content.splitlines(), 1):
        if not joined:
            start = number
        if line.endswith("\\") and not line.lstrip().startswith("#"):
            joined.append(line[:-1])
            continue
        joined.append(line if not line.lstrip().startswith("#") else "")
        yield start, "".join(joined)
        joined = []
    if joined:
        yield start, "".join(joined)


def _requirement(parsed: re.Match[str], hashes: list[tuple[str, str]], where: str) -> Package:
    name = _package_name(parsed["name"], where)
    extras = ",".join(e.strip() for e in (parsed["extras"] or "").split(",") if e.strip())
    rest = parsed["rest"].strip()
    props: list[tuple[str, str]] = []
    if extras:
        props.append(("mlbom:extras", extras))
    if direct := _DIRECT.match(rest):  # name @ url
        url = strip_credentials(direct["url"])
        if marker := _clean(direct["marker"]):
            props.append(("mlbom:marker", marker))
        props.append(("mlbom:direct-reference", "true"))
        return Package(name, None, _pypi_purl(name, None, url=url), hashes, url, props)
    if rest.startswith("@"):
        raise BadInputError(
            f"{where}: not a direct reference: {parsed.group()[:80]!r}",
            hint="write it as NAME @ URL, and any marker after ' ; '",
        )
    specifier, _, marker_text = rest.partition(";")
    specifier = re.sub(r"\s+", "", specifier)
    if marker := _clean(marker_text):
        props.append(("mlbom:marker", marker))
    pin = _PIN.match(specifier)
    if pin and (pin["op"] == "===" or "*" not in pin["version"]):
        version = _version(pin["version"], where)
        return Package(name, version, _pypi_purl(name, version), hashes, None, props)
    # Not pinned: the range is what the file says, so that is what is recorded.
    spelled = f"{name}[{extras}]" if extras else name
    props.insert(0, ("mlbom:requirement", f"{spelled}{specifier}"))
    return Package(name, None, _pypi_purl(name, None), hashes, None, props)


def _unnamed(
    target: str,
    where: str,
    properties: list[tuple[str, str]],
    *,
    editable: bool = False,
    hashes: list[tuple[str, str]] | None = None,
) -> list[Package]:
    """A bare URL or path: named by its `#egg=` fragment or wheel file name, else only noted."""
    url = strip_credentials(target)
    props = [("mlbom:editable", "true")] if editable else []
    fragment = target.partition("#")[2].split("&")
    if egg := next((f.removeprefix("egg=") for f in fragment if f.startswith("egg=")), None):
        name = _package_name(egg, where)
        return [Package(name, None, _pypi_purl(name, None, url=url), hashes or [], url, props)]
    wheel = _WHEEL.match(target.split("#")[0].split("?")[0].rsplit("/", 1)[-1])
    if wheel and _VERSION.match(wheel["version"]):
        name, version = normalize(wheel["name"]), wheel["version"]
        purl = _pypi_purl(name, version, url=url)
        return [Package(name, version, purl, hashes or [], url, props)]
    # A local project (`.`, `-e ./src`): its name is in its own metadata, which is not read.
    properties.append(("mlbom:unnamed-requirement", url or "a local path"))
    return []


def _uv(document: dict[str, Any], path: Path) -> tuple[list[Package], list[tuple[str, str]]]:
    properties = _requires_python(document.get("requires-python"))
    packages = []
    for where, entry in _entries(document, "package", path):
        name, version = _name_version(entry, where, version_required=False)
        source = as_dict(entry.get("source"))
        artifacts = [entry.get("sdist"), *_list(entry.get("wheels"))]
        hashes = [
            h
            for a in artifacts
            if isinstance(a, dict) and a.get("hash") and (h := _prefixed_digest(a["hash"], where))
        ]
        if any(k in source for k in ("editable", "virtual", "path", "directory")):
            packages.append(_local(name, version, hashes, []))
            continue
        url = strip_credentials(source.get("git") or source.get("url"))
        index = strip_credentials(source.get("registry"))
        props = []
        # uv pins a git source's commit in the URL's fragment.
        if isinstance(source.get("git"), str) and _COMMIT.match(
            commit := source["git"].rpartition("#")[2]
        ):
            props.append(("mlbom:vcs:commit", commit))
        purl = _pypi_purl(name, version, url=url, index=index, vcs="git" in source)
        packages.append(Package(name, version, purl, hashes, url, props))
    return packages, properties


def _poetry(document: dict[str, Any], path: Path) -> tuple[list[Package], list[tuple[str, str]]]:
    metadata = as_dict(document.get("metadata"))
    properties = _requires_python(metadata.get("python-versions"))
    old_files = as_dict(metadata.get("files"))
    packages = []
    for where, entry in _entries(document, "package", path):
        name, version = _name_version(entry, where, version_required=True)
        # Poetry 1.2+ keeps the files in the package; older locks in [metadata.files].
        files = entry.get("files", old_files.get(entry["name"]))
        hashes = [
            h
            for f in _list(files)
            if isinstance(f, dict) and f.get("hash") and (h := _prefixed_digest(f["hash"], where))
        ]
        groups = [g for g in map(_clean, _list(entry.get("groups"))) if g]
        props = [("mlbom:dependency-group", g) for g in groups]
        source = as_dict(entry.get("source"))
        kind = source.get("type")
        if kind in ("file", "directory"):
            packages.append(_local(name, version, hashes, props))
            continue
        url = strip_credentials(source.get("url")) if kind in ("git", "url") else None
        index = strip_credentials(source.get("url")) if kind == "legacy" else None
        if kind == "git" and _COMMIT.match(str(source.get("resolved_reference"))):
            props.append(("mlbom:vcs:commit", source["resolved_reference"]))
        purl = _pypi_purl(name, version, url=url, index=index, vcs=kind == "git")
        packages.append(Package(name, version, purl, hashes, url, props))
    return packages, properties


def _pylock(document: dict[str, Any], path: Path) -> tuple[list[Package], list[tuple[str, str]]]:
    properties = _requires_python(document.get("requires-python"))
    packages = []
    for where, entry in _entries(document, "packages", path):
        name, version = _name_version(entry, where, version_required=False)
        artifacts = [entry.get("sdist"), entry.get("archive"), *_list(entry.get("wheels"))]
        hashes = [
            h
            for a in artifacts
            if isinstance(a, dict) and isinstance(a.get("hashes"), dict)
            for alg, value in a["hashes"].items()
            if (h := _digest(str(alg), value, where))
        ]
        props = [("mlbom:marker", m)] if (m := _clean(entry.get("marker"))) else []
        if "directory" in entry:
            packages.append(_local(name, version, hashes, props))
            continue
        vcs = entry.get("vcs") if isinstance(entry.get("vcs"), dict) else None
        archive = as_dict(entry.get("archive"))
        url = strip_credentials((vcs or {}).get("url") or archive.get("url"))
        if vcs and _COMMIT.match(str(vcs.get("commit-id"))):
            props.append(("mlbom:vcs:commit", vcs["commit-id"]))
        index = strip_credentials(entry.get("index"))
        purl = _pypi_purl(name, version, url=url, index=index, vcs=vcs is not None)
        packages.append(Package(name, version, purl, hashes, url, props))
    return packages, properties


def _pipfile(document: dict[str, Any], path: Path) -> tuple[list[Package], list[tuple[str, str]]]:
    meta = as_dict(document.get("_meta"))
    requires = as_dict(meta.get("requires"))
    properties = []
    if python := _clean(requires.get("python_full_version") or requires.get("python_version")):
        properties.append(("mlbom:python-version", python))
    packages: list[Package] = []
    seen: set[tuple[str, str | None]] = set()
    for section in ("default", "develop"):
        entries = document.get(section, {})
        if not isinstance(entries, dict):
            raise BadInputError(f"{path}: {section!r} is not an object", hint=_HINT)
        for raw_name, entry in entries.items():
            where = f"{path}: {section} package {str(raw_name)[:80]!r}"
            if not isinstance(entry, dict):
                raise BadInputError(f"{where}: not an object", hint=_HINT)
            name = _package_name(raw_name, where)
            pinned = entry.get("version")
            version = (
                _version(pinned.removeprefix("=="), where) if isinstance(pinned, str) else None
            )
            if (name, version) in seen:
                continue  # also a default package: it is installed either way
            seen.add((name, version))
            hashes = [h for v in _list(entry.get("hashes")) if (h := _prefixed_digest(v, where))]
            props = [("mlbom:dependency-group", "develop")] if section == "develop" else []
            if marker := _clean(entry.get("markers")):
                props.append(("mlbom:marker", marker))
            if "path" in entry or ("file" in entry and not strip_credentials(entry.get("file"))):
                packages.append(_local(name, version, hashes, props))
                continue
            url = strip_credentials(entry.get("git") or entry.get("file"))
            if "git" in entry and _COMMIT.match(str(entry.get("ref"))):
                props.append(("mlbom:vcs:commit", entry["ref"]))
            purl = _pypi_purl(name, version, url=url, vcs="git" in entry)
            packages.append(Package(name, version, purl, hashes, url, props))
    return packages, properties


def _local(
    name: str, version: str | None, hashes: list[tuple[str, str]], props: list[tuple[str, str]]
) -> Package:
    """A package from a local path (often the project itself): not the PyPI one, no purl."""
    return Package(name, version, None, hashes, None, [*props, ("mlbom:source", "local")])


def _entries(
    document: dict[str, Any], key: str, path: Path
) -> Iterator[tuple[str, dict[str, Any]]]:
    tables = document.get(key, [])
    if not isinstance(tables, list):
        raise BadInputError(f"{path}: {key!r} is not an array of tables", hint=_HINT)
    for index, entry in enumerate(tables, 1):
        where = f"{path}: [[{key}]] #{index}"
        if not isinstance(entry, dict):
            raise BadInputError(f"{where}: not a table", hint=_HINT)
        yield where, entry


def _name_version(
    entry: dict[str, Any], where: str, *, version_required: bool
) -> tuple[str, str | None]:
    name = _package_name(entry.get("name"), where)
    version = entry.get("version")
    if version is None and not version_required:
        return name, None
    return name, _version(version, f"{where} ({name})")


def _package_name(value: object, where: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise BadInputError(f"{where}: not a package name: {str(value)[:80]!r}", hint=_HINT)
    return normalize(value)


def _version(value: object, where: str) -> str:
    if not isinstance(value, str) or not _VERSION.match(value):
        raise BadInputError(f"{where}: not a version: {str(value)[:80]!r}", hint=_HINT)
    return value


def _prefixed_digest(value: object, where: str) -> tuple[str, str] | None:
    """`sha256:<hex>`, as pip, uv, Poetry and Pipenv write digests."""
    if not isinstance(value, str) or ":" not in value:
        raise BadInputError(f"{where}: not a digest: {str(value)[:80]!r}", hint=_HINT)
    algorithm, _, digest = value.partition(":")
    return _digest(algorithm, digest, where)


def _digest(algorithm: str, value: object, where: str) -> tuple[str, str] | None:
    """(mlbom algorithm name, lower-case hex), or None for an algorithm the BOM cannot carry."""
    name = algorithm.strip().lower().replace("_", "-")
    name = {"blake2b": "blake2b-512"}.get(name, name)  # hashlib's name for BLAKE2b-512
    if name not in ALGORITHMS:
        return None
    size = ALGORITHMS[name][1]().digest_size * 2
    if not isinstance(value, str) or not re.fullmatch(rf"[0-9a-fA-F]{{{size}}}", value):
        raise BadInputError(f"{where}: malformed {name} digest: {str(value)[:80]!r}", hint=_HINT)
    return name, value.lower()


def _requires_python(value: object) -> list[tuple[str, str]]:
    return [("mlbom:requires-python", v)] if (v := _clean(value)) else []


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


# ----------------------------------------------------------------------------------- helpers


def normalize(name: str) -> str:
    """A distribution name normalized as PEP 503 says (and the pypi purl type expects)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pypi_purl(
    name: str, version: str | None, *, url: str | None = None, index: str | None = None,
    vcs: bool = False,
) -> str:  # fmt: skip
    qualifiers = {}
    if url:
        qualifiers["vcs_url" if vcs or url.startswith("git+") else "download_url"] = url
    if index and index not in _PYPI_INDEXES:
        qualifiers["repository_url"] = index  # a private index: not the PyPI package
    return PackageURL(type="pypi", name=name, version=version, qualifiers=qualifiers).to_string()


def _clean(value: object, limit: int = 1000) -> str | None:
    """Bounded text with nothing unprintable (XML cannot carry it), else None."""
    found = text(value, limit)
    return found if found and not _CONTROL.search(found) else None
