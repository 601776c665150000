"""The training environment in `formulation`: collected from the running interpreter, GPUs
and git checkout, or read from a requirements or lock file, then rendered and validated."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import pytest
from lxml import etree

from mlbom import environment
from mlbom.bom.assemble import MODEL_REF, assemble
from mlbom.bom.document import render
from mlbom.environment import collect_environment, read_requirements
from mlbom.errors import BadInputError
from mlbom.models import Dataset, Environment, Gpu, Identity, ModelFile, ModelInfo
from mlbom.urls import strip_credentials
from tests.builders import hf_folder, prop, props


def sha(label: str) -> str:
    """A stand-in SHA-256 digest, distinct per label."""
    return hashlib.sha256(label.encode()).hexdigest()


# ------------------------------------------------------------------ the running environment


def test_collect_in_the_real_venv(tmp_path):
    env = collect_environment(tmp_path)
    assert env.python_implementation == platform.python_implementation()
    assert env.python_version == platform.python_version()
    assert env.os_name and env.machine == platform.machine()
    click = next(p for p in env.packages if p.name == "click")
    version = importlib.metadata.version("click")
    assert click.version == version and click.purl == f"pkg:pypi/click@{version}"
    names = [p.name for p in env.packages]
    assert names == sorted(set(names))  # normalized, deduplicated, sorted
    assert "cyclonedx-python-lib" in names and "pyyaml" in names  # PEP 503 names
    assert env.code is None  # tmp_path is no git checkout
    assert env.requirements is None


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), "-c", "commit.gpgsign=false", *args],
        capture_output=True, text=True, check=True,
        env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
             "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"},
    )  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path) -> Path:
    repo = tmp_path / "trainer-checkout"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("print('training')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "train")
    _git(repo, "remote", "add", "origin", "https://user:tok@git.example.com/acme/trainer.git")
    return repo


def test_git_commit_branch_remote_without_credentials(checkout):
    code = collect_environment(checkout).code
    assert code is not None
    assert code.commit == _git(checkout, "rev-parse", "HEAD")
    assert code.url == "https://git.example.com/acme/trainer.git"  # user:tok@ stripped
    assert code.name == "trainer"  # from the remote, not the folder
    assert code.branch == "main" and code.dirty is False

    (checkout / "notes.txt").write_text("untracked files do not make it dirty\n")
    assert collect_environment(checkout).code.dirty is False
    (checkout / "train.py").write_text("print('changed')\n")
    assert collect_environment(checkout).code.dirty is True

    (checkout / "sub").mkdir()
    assert collect_environment(checkout / "sub").code.commit == code.commit
    _git(checkout, "checkout", "-q", "--detach")
    assert collect_environment(checkout).code.branch is None


def test_git_without_remote_is_named_after_the_folder(checkout):
    _git(checkout, "remote", "remove", "origin")
    code = collect_environment(checkout).code
    assert code.name == "trainer-checkout" and code.url is None


@pytest.mark.parametrize(
    ("remote", "clean"),
    [
        ("https://user:tok@host.example/x.git", "https://host.example/x.git"),
        ("https://ghp_secret@github.com/acme/x.git", "https://github.com/acme/x.git"),
        ("https://gitlab.example/x.git?private_token=s#frag", "https://gitlab.example/x.git"),
        ("git@github.com:acme/x.git", "ssh://github.com/acme/x.git"),
        ("ssh://git:pw@host.example:2222/srv/x.git", "ssh://host.example:2222/srv/x.git"),
        ("git+https://u:p@github.com/acme/x@v1#egg=x", "git+https://github.com/acme/x@v1"),
        ("/srv/git/x.git", None),
        ("file:///srv/git/x.git", None),
        ("../x", None),
        ("C:\\repos\\x", None),
        ("https://host.example/a b", None),
        ("https://host.example:99999/x", None),
        ("", None),
    ],
)
def test_strip_credentials(remote, clean):
    assert strip_credentials(remote) == clean


def _tools(folder: Path, **scripts: str) -> Path:
    """Executables `name` running the given shell script body."""
    folder.mkdir(exist_ok=True)
    for name, body in scripts.items():
        tool = folder / name.replace("_", "-")
        tool.write_text(f"#!/bin/sh\nPATH=/usr/bin:/bin\n{body}\n")  # the script's own PATH
        tool.chmod(0o755)
    return folder


NVIDIA_SMI = """\
if [ "$1" = "--query-gpu=name,driver_version,memory.total" ]; then
  echo "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB"
  echo "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB"
  echo "NVIDIA A10G, 550.54.15, [N/A]"
  exit 0
fi
cat <<'EOF'
Tue Mar 11 10:02:41 2025
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
|   0  NVIDIA H100 80GB HBM3          On  |   00000000:18:00.0 Off |                    0 |
+-----------------------------------------+------------------------+----------------------+
EOF"""
NVCC = """\
echo "nvcc: NVIDIA (R) Cuda compiler driver"
echo "Copyright (c) 2005-2024 NVIDIA Corporation"
echo "Built on Thu_Mar_28_02:18:24_PDT_2024"
echo "Cuda compilation tools, release 12.4, V12.4.131"
echo "Build cuda_12.4.r12.4/compiler.34097967_0\""""


def test_gpus_driver_and_cuda_from_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(_tools(tmp_path / "bin", nvidia_smi=NVIDIA_SMI, nvcc=NVCC)))
    env = collect_environment(tmp_path)
    assert env.gpus == [Gpu("NVIDIA H100 80GB HBM3", "81559 MiB", 2), Gpu("NVIDIA A10G", None, 1)]
    assert env.nvidia_driver == "550.54.15"
    assert (env.cuda_version, env.cuda_reported_by) == ("12.4", "nvidia-smi")
    assert env.code is None  # no git on this PATH: nothing recorded, no failure
    assert env.python_version == platform.python_version()


def test_cuda_toolkit_from_nvcc_when_there_is_no_driver(tmp_path, monkeypatch):
    failing = 'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."; exit 9'
    monkeypatch.setenv("PATH", str(_tools(tmp_path / "bin", nvidia_smi=failing, nvcc=NVCC)))
    env = collect_environment(tmp_path)
    assert env.gpus == [] and env.nvidia_driver is None
    assert (env.cuda_version, env.cuda_reported_by) == ("12.4", "nvcc")


def test_absent_failing_garbled_and_hanging_tools_record_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(_tools(tmp_path / "empty")))
    env = collect_environment(tmp_path)
    assert (env.gpus, env.nvidia_driver, env.cuda_version, env.code) == ([], None, None, None)

    garbled = "head -c 2000 /dev/urandom; echo; echo 'no, commas'"
    monkeypatch.setenv("PATH", str(_tools(tmp_path / "garbled", nvidia_smi=garbled, nvcc="exit 1")))
    env = collect_environment(tmp_path)
    assert env.nvidia_driver is None and env.cuda_version is None
    assert all(g.memory is None for g in env.gpus)

    monkeypatch.setattr(environment, "TOOL_TIMEOUT", 0.5)
    hanging = "exec sleep 30"
    monkeypatch.setenv("PATH", str(_tools(tmp_path / "hang", nvidia_smi=hanging, nvcc=hanging)))
    started = time.monotonic()
    env = collect_environment(tmp_path)
    assert time.monotonic() - started < 5
    assert env.gpus == [] and env.cuda_version is None


def test_a_non_executable_tool_records_nothing(tmp_path, monkeypatch):
    folder = _tools(tmp_path / "bin", nvidia_smi=NVIDIA_SMI)
    (folder / "nvcc").write_bytes(b"\x7fELF not really")
    (folder / "nvcc").chmod(0o755)
    (folder / "nvidia-smi").chmod(0o644)  # which() skips it
    monkeypatch.setenv("PATH", str(folder))
    env = collect_environment(tmp_path)
    assert env.gpus == [] and env.cuda_version is None


# ---------------------------------------------------------------- requirements and lock files

PIP_COMPILE = f"""\
#
# This file is autogenerated by pip-compile with Python 3.11
# by the following command:
#
#    pip-compile --generate-hashes requirements.in
#
--index-url https://__token__:pypi-secret@pypi.internal.example/simple
--extra-index-url https://download.pytorch.org/whl/cu124
-c constraints.txt

certifi==2025.1.31 \\
    --hash=sha256:{sha("certifi-whl")} \\
    --hash=sha256:{sha("certifi-sdist")}
    # via requests
charset-normalizer==3.4.1 \\
    --hash=sha256:{sha("charset")}
    # via requests
Requests[socks]==2.32.3 ; python_version >= "3.8" \\
    --hash=sha256:{sha("requests")}
    # via -r requirements.in
torch===2.5.1+cu124  # an arbitrary-equality pin
typing_extensions>=4.8 ; python_version < "3.12"
numpy
tokenizers @ https://u:p@files.example/tokenizers-0.21.0-cp39-abi3-manylinux_2_17_x86_64.whl
acme-data @ git+https://oauth2:glpat-secret@gitlab.example/acme/data.git@v1.2
-e git+https://github.com/acme/tools.git@0123abc#egg=acme_tools
-e .
"""


def test_pip_compile_output_with_hashes(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text(PIP_COMPILE)
    env = read_requirements(path)
    by_name = {p.name: p for p in env.packages}
    assert sorted(by_name) == [
        "acme-data", "acme-tools", "certifi", "charset-normalizer", "numpy", "requests",
        "tokenizers", "torch", "typing-extensions",
    ]  # fmt: skip
    certifi = by_name["certifi"]
    assert certifi.version == "2025.1.31" and certifi.purl == "pkg:pypi/certifi@2025.1.31"
    assert certifi.hashes == [("sha256", sha("certifi-whl")), ("sha256", sha("certifi-sdist"))]
    requests = by_name["requests"]
    assert requests.version == "2.32.3" and requests.hashes == [("sha256", sha("requests"))]
    assert ("mlbom:extras", "socks") in requests.properties
    assert ("mlbom:marker", 'python_version >= "3.8"') in requests.properties
    assert by_name["torch"].version == "2.5.1+cu124"
    unpinned = by_name["typing-extensions"]
    assert unpinned.version is None and unpinned.purl == "pkg:pypi/typing-extensions"
    assert ("mlbom:requirement", "typing-extensions>=4.8") in unpinned.properties
    assert ("mlbom:requirement", "numpy") in by_name["numpy"].properties
    tokenizers = by_name["tokenizers"]
    assert tokenizers.url == (
        "https://files.example/tokenizers-0.21.0-cp39-abi3-manylinux_2_17_x86_64.whl"
    )
    assert by_name["acme-data"].url == "git+https://gitlab.example/acme/data.git@v1.2"
    assert "vcs_url=" in by_name["acme-data"].purl
    assert ("mlbom:editable", "true") in by_name["acme-tools"].properties
    assert ("mlbom:unnamed-requirement", "a local path") in env.properties
    assert "secret" not in repr(env) and "u:p@" not in repr(env)  # credentials never recorded

    recorded = env.requirements
    assert recorded.name == "requirements.txt" and recorded.format == "requirements"
    assert recorded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # Only what the file says: nothing of the interpreter running mlbom.
    assert (env.python_version, env.os_name, env.gpus, env.code) == (None, None, [], None)


def test_pip_line_continuations_and_comments(tmp_path):
    path = tmp_path / "requirements-gpu.txt"  # not a known name: sniffed, then read as pip
    path.write_text(
        "# comment\n"
        "pkg-a \\\n"
        "  ==1.0  # trailing comment\n"
        "pkg-b==2.0 \\\n"
        "# a comment line ends the continuation\n"
        "pkg-c[x, y] (==3.0)\r\n"
        "pkg-d==1.*\n"
    )
    env = read_requirements(path)
    assert [(p.name, p.version) for p in env.packages] == [
        ("pkg-a", "1.0"), ("pkg-b", "2.0"), ("pkg-c", "3.0"), ("pkg-d", None),
    ]  # fmt: skip
    assert env.packages[2].properties == [("mlbom:extras", "x,y")]


UV_LOCK = f"""\
version = 1
revision = 2
requires-python = ">=3.11"

[[package]]
name = "certifi"
version = "2025.1.31"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "https://files.pythonhosted.org/packages/1c/ab/c9f1e32b7b1bf505bf26f0ef697775960db7932abeb7b516de930ba2705f/certifi-2025.1.31.tar.gz", hash = "sha256:{sha("certifi-sdist")}", size = 167577, upload-time = "2025-01-31T02:16:47.166Z" }}
wheels = [
    {{ url = "https://files.pythonhosted.org/packages/38/fc/bce832fd4fd99766c04d1ee0eead6b0ec6486fb100ae5e74c1d91292b982/certifi-2025.1.31-py3-none-any.whl", hash = "sha256:{sha("certifi-whl")}", size = 166393, upload-time = "2025-01-31T02:16:45.015Z" }},
]

[[package]]
name = "tokenizers-fork"
version = "0.21.0"
source = {{ git = "https://github.com/acme/tokenizers?rev=v0.21.0#0123456789abcdef0123456789abcdef01234567" }}

[[package]]
name = "torch"
version = "2.5.1+cu124"
source = {{ registry = "https://download.pytorch.org/whl/cu124" }}
dependencies = [
    {{ name = "typing-extensions" }},
]
wheels = [
    {{ url = "https://download.pytorch.org/whl/cu124/torch-2.5.1%2Bcu124-cp311-cp311-linux_x86_64.whl", hash = "sha256:{sha("torch")}" }},
]

[[package]]
name = "trainer"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [
    {{ name = "torch" }},
]

[package.metadata]
requires-dist = [{{ name = "torch", specifier = ">=2" }}]
"""


def test_uv_lock(tmp_path):
    path = tmp_path / "uv.lock"
    path.write_text(UV_LOCK)
    env = read_requirements(path)
    by_name = {p.name: p for p in env.packages}
    assert [p.name for p in env.packages] == ["certifi", "tokenizers-fork", "torch", "trainer"]
    assert by_name["certifi"].purl == "pkg:pypi/certifi@2025.1.31"
    assert by_name["certifi"].hashes == [
        ("sha256", sha("certifi-sdist")), ("sha256", sha("certifi-whl"))
    ]  # fmt: skip
    torch = by_name["torch"]
    assert torch.version == "2.5.1+cu124" and torch.hashes == [("sha256", sha("torch"))]
    assert "repository_url=https://download.pytorch.org/whl/cu124" in torch.purl
    fork = by_name["tokenizers-fork"]
    assert fork.url == "https://github.com/acme/tokenizers"
    assert ("mlbom:vcs:commit", "0123456789abcdef0123456789abcdef01234567") in fork.properties
    trainer = by_name["trainer"]  # the project itself: not a PyPI package
    assert trainer.purl is None and ("mlbom:source", "local") in trainer.properties
    assert env.properties == [("mlbom:requires-python", ">=3.11")]
    assert env.requirements.format == "uv.lock"


POETRY_LOCK = f"""\
# This file is automatically @generated by Poetry 2.1.1 and should not be changed by hand.

[[package]]
name = "certifi"
version = "2025.1.31"
description = "Python package for providing Mozilla's CA Bundle."
optional = false
python-versions = ">=3.6"
groups = ["main"]
files = [
    {{file = "certifi-2025.1.31-py3-none-any.whl", hash = "sha256:{sha("certifi-whl")}"}},
    {{file = "certifi-2025.1.31.tar.gz", hash = "sha256:{sha("certifi-sdist")}"}},
]

[[package]]
name = "private_utils"
version = "1.4.0"
description = "Internal helpers"
optional = false
python-versions = ">=3.11"
groups = ["main"]
files = [
    {{file = "private_utils-1.4.0-py3-none-any.whl", hash = "sha256:{sha("private")}"}},
]

[package.source]
type = "legacy"
url = "https://__token__:secret@pkgs.acme.example/simple"
reference = "acme"

[[package]]
name = "pytest"
version = "8.3.4"
description = "pytest: simple powerful testing with Python"
optional = false
python-versions = ">=3.8"
groups = ["dev"]
files = [
    {{file = "pytest-8.3.4-py3-none-any.whl", hash = "sha256:{sha("pytest")}"}},
]

[package.dependencies]
colorama = {{version = "*", markers = "sys_platform == \\"win32\\""}}
iniconfig = "*"

[metadata]
lock-version = "2.1"
python-versions = ">=3.11,<3.13"
content-hash = "{sha("content")}"
"""

POETRY_1_LOCK = f"""\
[[package]]
name = "six"
version = "1.16.0"
description = "Python 2 and 3 compatibility utilities"
category = "main"
optional = false
python-versions = ">=2.7, !=3.0.*, !=3.1.*, !=3.2.*"

[metadata]
lock-version = "1.1"
python-versions = "^3.8"
content-hash = "{sha("content")}"

[metadata.files]
six = [
    {{file = "six-1.16.0-py2.py3-none-any.whl", hash = "sha256:{sha("six-whl")}"}},
    {{file = "six-1.16.0.tar.gz", hash = "sha256:{sha("six-sdist")}"}},
]
"""


def test_poetry_lock(tmp_path):
    path = tmp_path / "poetry.lock"
    path.write_text(POETRY_LOCK)
    env = read_requirements(path)
    by_name = {p.name: p for p in env.packages}
    assert sorted(by_name) == ["certifi", "private-utils", "pytest"]
    assert len(by_name["certifi"].hashes) == 2
    assert ("mlbom:dependency-group", "dev") in by_name["pytest"].properties
    private = by_name["private-utils"]
    assert private.purl == (
        "pkg:pypi/private-utils@1.4.0?repository_url=https://pkgs.acme.example/simple"
    )
    assert env.properties == [("mlbom:requires-python", ">=3.11,<3.13")]
    assert "secret" not in repr(env)

    old = tmp_path / "old" / "poetry.lock"
    old.parent.mkdir()
    old.write_text(POETRY_1_LOCK)
    (six,) = read_requirements(old).packages
    assert (six.name, six.version) == ("six", "1.16.0")
    assert six.hashes == [("sha256", sha("six-whl")), ("sha256", sha("six-sdist"))]


PYLOCK = f"""\
lock-version = "1.0"
environments = ["sys_platform == 'linux'"]
requires-python = ">=3.11"
created-by = "pip"

[[packages]]
name = "attrs"
version = "25.1.0"
index = "https://pypi.org/simple"

[[packages.wheels]]
name = "attrs-25.1.0-py3-none-any.whl"
upload-time = 2025-01-25T11:30:10.164000Z
url = "https://files.pythonhosted.org/packages/fc/30/d4986a882011f9df997a55e6becd864812ccfcd821d64aac8570ee39f719/attrs-25.1.0-py3-none-any.whl"
size = 63152
hashes = {{sha256 = "{sha("attrs")}"}}

[[packages]]
name = "tomli"
version = "2.2.1"
marker = "python_version < '3.11'"
index = "https://pypi.org/simple"

[packages.sdist]
name = "tomli-2.2.1.tar.gz"
url = "https://files.pythonhosted.org/packages/18/87/302344fed471e44a87289cf4967697d07e532f2421fdaf868a303cbae4ff/tomli-2.2.1.tar.gz"
size = 17175
hashes = {{sha256 = "{sha("tomli")}", blake2b = "{hashlib.blake2b(b"tomli").hexdigest()}", md5 = "{hashlib.md5(b"x").hexdigest()}"}}

[[packages]]
name = "acme-data"

[packages.vcs]
type = "git"
url = "https://github.com/acme/data.git"
requested-revision = "main"
commit-id = "0123456789abcdef0123456789abcdef01234567"
"""


def test_pylock_toml(tmp_path):
    path = tmp_path / "pylock.toml"
    path.write_text(PYLOCK)
    env = read_requirements(path)
    by_name = {p.name: p for p in env.packages}
    assert by_name["attrs"].hashes == [("sha256", sha("attrs"))]
    assert by_name["attrs"].purl == "pkg:pypi/attrs@25.1.0"
    assert by_name["tomli"].hashes == [  # md5 is not a digest a BOM should carry: left out
        ("sha256", sha("tomli")), ("blake2b-512", hashlib.blake2b(b"tomli").hexdigest())
    ]  # fmt: skip
    assert ("mlbom:marker", "python_version < '3.11'") in by_name["tomli"].properties
    data = by_name["acme-data"]
    assert data.version is None and data.url == "https://github.com/acme/data.git"
    assert ("mlbom:vcs:commit", "0123456789abcdef0123456789abcdef01234567") in data.properties
    assert env.properties == [("mlbom:requires-python", ">=3.11")]
    assert read_requirements(path.rename(tmp_path / "pylock.gpu.toml")).requirements.format == (
        "pylock.toml"
    )


PIPFILE_LOCK = {
    "_meta": {
        "hash": {"sha256": sha("pipfile")},
        "pipfile-spec": 6,
        "requires": {"python_version": "3.11"},
        "sources": [{"name": "pypi", "url": "https://u:p@pypi.org/simple", "verify_ssl": True}],
    },
    "default": {
        "certifi": {
            "hashes": [f"sha256:{sha('certifi-whl')}", f"sha256:{sha('certifi-sdist')}"],
            "index": "pypi",
            "markers": "python_version >= '3.6'",
            "version": "==2025.1.31",
        },
        "acme-utils": {
            "git": "https://github.com/acme/utils.git",
            "ref": "0123456789abcdef0123456789abcdef01234567",
        },
    },
    "develop": {
        "pytest": {
            "hashes": [f"sha256:{sha('pytest')}"],
            "index": "pypi",
            "markers": "python_version >= '3.8'",
            "version": "==8.3.4",
        },
        "certifi": {"hashes": [], "index": "pypi", "version": "==2025.1.31"},
    },
}


def test_pipfile_lock(tmp_path):
    path = tmp_path / "Pipfile.lock"
    path.write_text(json.dumps(PIPFILE_LOCK, indent=4))
    env = read_requirements(path)
    by_name = {p.name: p for p in env.packages}
    assert sorted(by_name) == ["acme-utils", "certifi", "pytest"]  # certifi once
    assert len(by_name["certifi"].hashes) == 2
    assert ("mlbom:dependency-group", "develop") not in by_name["certifi"].properties
    assert ("mlbom:dependency-group", "develop") in by_name["pytest"].properties
    assert by_name["acme-utils"].url == "https://github.com/acme/utils.git"
    assert env.properties == [("mlbom:python-version", "3.11")]


def test_lock_files_under_other_names_are_sniffed(tmp_path):
    uv = tmp_path / "prod.lock"
    uv.write_text(UV_LOCK)
    assert read_requirements(uv).requirements.format == "uv.lock"
    poetry = tmp_path / "deps.lock"
    poetry.write_text(POETRY_LOCK)
    assert read_requirements(poetry).requirements.format == "poetry.lock"
    pipenv = tmp_path / "locked.json"
    pipenv.write_text(json.dumps(PIPFILE_LOCK))
    assert read_requirements(pipenv).requirements.format == "Pipfile.lock"
    empty = tmp_path / "requirements.in"
    empty.write_text("")
    assert read_requirements(empty).packages == []


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("requirements.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
        ("requirements.txt", "torch==2.1\n\xff\xfe".encode("latin-1"), "line 2: not UTF-8"),
        ("requirements.txt", b"a==1\nb==2\x1b[31m\n", "line 2: a control character"),
        ("requirements.txt", b"a==1\n\nthis is not a requirement\n", "line 3: not a requirement"),
        ("requirements.txt", b"a==1 --hash=sha256:1234\n", "line 1: malformed sha256 digest"),
        ("requirements.txt", b"a==1 --hash=nonsense\n", "line 1: not a digest"),
        ("requirements.txt", b"a==1 ; x\nb @\n", "line 2"),
        ("uv.lock", b'version = 1\n[[package]]\nname = "a"\nversion = 1.0.0\n', "not valid TOML"),
        ("uv.lock", b'[[package]]\nname = "a b"\nversion = "1"\n', "not a package name"),
        ("uv.lock", b'[[package]]\nname = "a"\nversion = 1\n', "not a version"),
        ("uv.lock", b'package = "x"\n', "not an array of tables"),
        ("uv.lock", b'[[package]]\nname = "a"\nversion = "1\\u0007"\n', "not a version"),
        ("poetry.lock", b'[[package]]\nname = "a"\n', "not a version"),
        ("pylock.toml", b"packages = [1, 2]\n", "not a table"),
        ("pylock.toml", b"a = " + b"[" * 5000 + b"]" * 5000, "not valid TOML"),
        ("Pipfile.lock", b'{"default": {"a": {"version": "==1",}}}', "line 1: not valid JSON"),
        ("Pipfile.lock", b"[1, 2]", "no JSON object"),
        ("Pipfile.lock", b'{"default": {"a": "==1"}}', "not an object"),
        ("Pipfile.lock", b'{"default": {"a": {"hashes": ["sha256:zz"]}}}', "malformed sha256"),
    ],
)
def test_hostile_files_are_bad_input_naming_the_file(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadInputError) as caught:
        read_requirements(path)
    assert str(path) in caught.value.message
    assert expected in caught.value.message


def test_garbage_too_large_missing_and_special_files(tmp_path):
    garbage = tmp_path / "uv.lock"
    garbage.write_bytes(os.urandom(4096) + b"\x00")
    with pytest.raises(BadInputError, match=r"uv\.lock"):
        read_requirements(garbage)

    huge = tmp_path / "requirements.txt"
    with huge.open("wb") as f:
        f.truncate(environment.MAX_REQUIREMENTS_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(BadInputError, match=r"requirements.txt is larger than 32 MiB"):
        read_requirements(huge)

    with pytest.raises(BadInputError, match=r"cannot read .*missing\.txt"):
        read_requirements(tmp_path / "missing.txt")
    with pytest.raises(BadInputError, match="is not a regular file"):
        read_requirements(tmp_path)
    fifo = tmp_path / "requirements.fifo"
    os.mkfifo(fifo)
    with pytest.raises(BadInputError, match="is not a regular file"):
        read_requirements(fifo)  # refused, not waited on


# --------------------------------------------------------------------------------- the BOM


def _bom(env: Environment, *datasets: Dataset):
    files = [ModelFile("model.safetensors", 4, {"sha256": sha("model")})]
    info = ModelInfo(name="acme/sentiment", version="1.0", datasets=list(datasets))
    return assemble(files, info, Identity(), environment=env)


@pytest.fixture
def training_env(checkout, tmp_path, monkeypatch) -> Environment:
    bin_dir = _tools(tmp_path / "bin", nvidia_smi=NVIDIA_SMI, nvcc=NVCC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return collect_environment(checkout)


@pytest.mark.parametrize("spec", ["1.6", "1.7"])
def test_formulation_json(training_env, checkout, spec):
    bom, extras = _bom(training_env, Dataset("stanfordnlp/sst2", revision="8d51e7e"))
    doc = json.loads(render(bom, extras, fmt="json", spec=spec))  # validates
    (formula,) = doc["formulation"]
    by_ref = {c["bom-ref"]: c for c in formula["components"]}

    click = next(c for c in formula["components"] if c["name"] == "click")
    assert click["type"] == "library"
    assert click["purl"] == f"pkg:pypi/click@{importlib.metadata.version('click')}"
    top = {c["bom-ref"] for c in doc["components"]}
    assert top == {"file:model.safetensors", "dataset:stanfordnlp/sst2"}  # none from here
    model = next(d for d in doc["dependencies"] if d["ref"] == MODEL_REF)
    assert model["dependsOn"] == ["file:model.safetensors"]
    assert not [d for d in doc["dependencies"] if d["ref"].startswith("formulation")]

    python = by_ref["formulation:python"]
    assert (python["type"], python["version"]) == ("platform", platform.python_version())
    assert by_ref["formulation:os"]["type"] == "operating-system"
    gpu = by_ref["formulation:gpu:0"]
    assert (gpu["type"], gpu["name"]) == ("device", "NVIDIA H100 80GB HBM3")
    assert prop(gpu, "mlbom:gpu:count") == "2" and prop(gpu, "mlbom:gpu:memory") == "81559 MiB"
    driver = by_ref["formulation:nvidia-driver"]
    assert (driver["type"], driver["version"]) == ("device-driver", "550.54.15")
    cuda = by_ref["formulation:cuda"]
    assert (cuda["type"], cuda["version"]) == ("library", "12.4")
    code = by_ref["formulation:code"]
    assert code["type"] == "application" and code["name"] == "trainer"
    assert code["version"] == _git(checkout, "rev-parse", "HEAD")
    assert code["externalReferences"] == [
        {"type": "vcs", "url": "https://git.example.com/acme/trainer.git"}
    ]
    assert prop(code, "mlbom:git:dirty") == "false" and prop(code, "mlbom:git:branch") == "main"

    (workflow,) = formula["workflows"]
    assert workflow["taskTypes"] == ["build"]
    assert [i["resource"]["ref"] for i in workflow["inputs"]] == [
        "dataset:stanfordnlp/sst2", "formulation:code"
    ]  # fmt: skip
    assert workflow["outputs"] == [{"resource": {"ref": MODEL_REF}, "type": "artifact"}]
    dataset = next(c for c in doc["components"] if c["bom-ref"] == "dataset:stanfordnlp/sst2")
    assert dataset["version"] == "8d51e7e"


@pytest.mark.parametrize("spec", ["1.6", "1.7"])
def test_formulation_xml(training_env, spec):
    bom, extras = _bom(training_env, Dataset("imdb", revision="e6281661"))
    root = etree.fromstring(render(bom, extras, fmt="xml", spec=spec).encode())  # validates
    ns = {"c": f"http://cyclonedx.org/schema/bom/{spec}"}
    children = [etree.QName(e).localname for e in root]
    assert children.index("compositions") < children.index("formulation") == len(children) - 1
    (formula,) = root.findall("c:formulation/c:formula", ns)
    assert [etree.QName(e).localname for e in formula] == ["components", "workflows"]
    purls = formula.xpath("c:components/c:component[@type='library']/c:purl/text()", namespaces=ns)
    assert f"pkg:pypi/click@{importlib.metadata.version('click')}" in purls
    assert not root.xpath("c:components/c:component[@type='library']", namespaces=ns)
    workflow = formula.find("c:workflows/c:workflow", ns)
    assert workflow.xpath("c:inputs/c:input/c:resource/c:ref/text()", namespaces=ns) == [
        "dataset:imdb", "formulation:code"
    ]  # fmt: skip
    assert workflow.xpath("c:outputs/c:output/c:resource/c:ref/text()", namespaces=ns) == [
        MODEL_REF
    ]


@pytest.mark.parametrize(("fmt", "spec"), [("json", "1.6"), ("json", "1.7"), ("xml", "1.6"), ("xml", "1.7")])  # fmt: skip
def test_formulation_from_a_lock_file(tmp_path, fmt, spec):
    lock = tmp_path / "requirements.txt"
    lock.write_text(PIP_COMPILE)
    env = read_requirements(lock)
    env.packages.append(env.packages[-1])  # one name pinned twice still gets unique bom-refs
    bom, extras = _bom(env, Dataset("imdb", revision="e6281661"))
    text = render(bom, extras, fmt=fmt, spec=spec)  # validates
    assert "secret" not in text and "oauth2" not in text and "u:p@" not in text
    if fmt == "xml":
        return
    (formula,) = json.loads(text)["formulation"]
    by_name = {c["name"]: c for c in formula["components"]}
    assert "formulation:python" not in {c["bom-ref"] for c in formula["components"]}
    recorded = by_name["requirements.txt"]
    assert recorded["type"] == "file"
    assert recorded["hashes"] == [
        {"alg": "SHA-256", "content": hashlib.sha256(lock.read_bytes()).hexdigest()}
    ]
    certifi = by_name["certifi"]
    assert {h["content"] for h in certifi["hashes"]} == {sha("certifi-whl"), sha("certifi-sdist")}
    assert props(by_name["typing-extensions"], "mlbom:requirement") == ["typing-extensions>=4.8"]
    assert by_name["tokenizers"]["externalReferences"][0]["type"] == "distribution"
    assert by_name["acme-data"]["externalReferences"] == [
        {"type": "vcs", "url": "git+https://gitlab.example/acme/data.git@v1.2"}
    ]
    assert {"name": "mlbom:unnamed-requirement", "value": "a local path"} in formula["properties"]
    (workflow,) = formula["workflows"]
    assert [i["resource"]["ref"] for i in workflow["inputs"]] == ["dataset:imdb"]  # no code


def test_no_environment_no_formulation(tmp_path):
    files = [ModelFile("model.safetensors", 4, {"sha256": sha("model")})]
    bom, extras = assemble(files, ModelInfo(name="m"), Identity())
    assert "formulation" not in json.loads(render(bom, extras))
    assert "formulation" not in render(bom, extras, fmt="xml")


@pytest.mark.parametrize(("fmt", "spec"), [("json", "1.6"), ("xml", "1.7")])
def test_an_empty_environment_still_states_the_training_step(fmt, spec):
    bom, extras = _bom(Environment(), Dataset("imdb", revision="e6281661"))
    text = render(bom, extras, fmt=fmt, spec=spec)  # validates
    if fmt == "json":
        (formula,) = json.loads(text)["formulation"]
        assert "components" not in formula and "properties" not in formula
        (workflow,) = formula["workflows"]
        assert workflow["inputs"] == [{"resource": {"ref": "dataset:imdb"}}]
    else:
        assert "<ref>dataset:imdb</ref>" in text and "<ref>model</ref>" in text


# -- the command -----------------------------------------------------------------------------


def test_generate_env_and_datasets(cli, tmp_path):
    model = hf_folder(tmp_path / "model")
    bom, _ = cli.bom(model, "--env", "--dataset", "imdb@v2", "--dataset", "acme/reviews@9f1c2ab")
    formula = bom["formulation"][0]
    purls = {c.get("purl") for c in formula["components"]}
    assert f"pkg:pypi/click@{importlib.metadata.version('click')}" in purls
    assert not any(c.get("purl", "").startswith("pkg:pypi/") for c in bom["components"])
    data = {c["name"]: c.get("version") for c in bom["components"] if c["type"] == "data"}
    assert data == {"stanfordnlp/sst2": None, "imdb": "v2", "acme/reviews": "9f1c2ab"}
    inputs = [i["resource"]["ref"] for i in formula["workflows"][0]["inputs"]]
    assert {"dataset:imdb", "dataset:acme/reviews"} <= set(inputs)
    assert formula["workflows"][0]["outputs"] == [
        {"resource": {"ref": "model"}, "type": "artifact"}
    ]


def test_generate_requirements(cli, tmp_path):
    model = hf_folder(tmp_path / "model")
    lock = tmp_path / "requirements.txt"
    lock.write_text("torch==2.5.1\ntransformers==4.57.1 ; python_version >= '3.10'\n")
    bom, _ = cli.bom(model, "--requirements", lock)
    names = {c["name"]: c.get("version") for c in bom["formulation"][0]["components"]}
    assert names["torch"] == "2.5.1" and names["transformers"] == "4.57.1"
    assert "CPython" not in names  # a lock file says nothing about the running interpreter


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "--requirements", "REQ"], "give one"),
        (["--dataset", "imdb"], "expected NAME@REVISION"),
        (["--dataset", "imdb@"], "expected NAME@REVISION"),
        (["--requirements", "MISSING"], "does not exist"),
    ],
)
def test_generate_training_options_bad_input(cli, tmp_path, args, message):
    model = hf_folder(tmp_path / "model")
    (tmp_path / "req.txt").write_text("torch==2.5.1\n")
    args = [str(tmp_path / "req.txt") if a == "REQ" else a for a in args]
    args = [str(tmp_path / "nope.txt") if a == "MISSING" else a for a in args]
    out, err = cli("generate", model, *args, code=2)
    assert message in err and not out
