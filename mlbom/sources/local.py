"""A model in a local folder (or a single local file), as a training pipeline leaves it.

Every file of the folder is listed, hidden folders and caches too: what is skipped is
only what the user excludes by name. Every path is confined to the model folder: a
symlink that leaves it is refused. The one exception is the Hugging Face cache layout,
where `snapshots/<commit>/` links into the same repository's `blobs/` by design. A file
that cannot be read (a symlink loop, a pipe, no permission) is listed with the reason and
never opened, so one bad file does not stop the run. Names that are not UTF-8 are
recorded escaped (`\\xe9`), as the filesystem has them.
"""

from __future__ import annotations

import configparser
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

from mlbom.errors import BadInputError, shown
from mlbom.files import recorded_name
from mlbom.hashing import HashCache, Stamp, folder_digest, hash_files
from mlbom.models import Identity
from mlbom.progress import Advance
from mlbom.sources import Blob, Source
from mlbom.sources.hub import hub_identity

MAX_FILES = 100_000
_COMMIT = re.compile(r"[0-9a-f]{40}")
_HF_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HF_GIT_REMOTE = re.compile(r"^https://(?:[^@/]+@)?huggingface\.co/([\w.-]+/[\w.-]+?)(?:\.git)?/?$")


class LocalBlob(Blob):
    def __init__(self, path: str, file: Path, size: int, stamp: Stamp | None = None) -> None:
        super().__init__(path, size)
        self.file = file
        self.stamp = stamp  # the file as it was listed (and then inspected)

    @property
    def local_path(self) -> Path:
        return self.file

    def open(self) -> BinaryIO:
        return open(self.file, "rb")


class LocalSource(Source):
    def __init__(self, path: Path, *, exclude: tuple[Path, ...] = ()) -> None:
        if not path.exists() and not path.is_symlink():
            raise BadInputError(f"{path}: no such file or folder")
        self.location = str(path)
        self.single_file = not path.is_dir()
        self.root = (path.parent if self.single_file else path).resolve()
        self._excluded = {_absolute(p) for p in exclude}
        #: the excluded paths inside the model folder, relative, as the BOM records them
        self.excluded = sorted(
            recorded_name(p.relative_to(self.root).as_posix())
            for p in self._excluded
            if p.is_relative_to(self.root) and p != self.root
        )
        self._blobs = [self._blob(path)] if self.single_file else self._walk()
        if not self._blobs:
            raise BadInputError(
                f"{path} holds no model files",
                hint="point mlbom at the folder the model was saved to",
            )

    # -- listing -----------------------------------------------------------------------------

    def _walk(self) -> list[LocalBlob]:
        found: list[LocalBlob] = []
        for folder, dirs, files in os.walk(self.root, onerror=_raise):
            dirs[:] = sorted(d for d in dirs if _absolute(Path(folder) / d) not in self._excluded)
            for name in files:
                file = Path(folder) / name
                if _absolute(file) in self._excluded:
                    continue
                found.append(self._blob(file))
                if len(found) > MAX_FILES:
                    raise BadInputError(f"{self.location} holds more than {MAX_FILES} files")
            for name in dirs:
                if (Path(folder) / name).is_symlink():
                    # a linked folder is not walked (its files would be listed twice or
                    # come from elsewhere): it is listed as a file that cannot be read
                    found.append(self._blob(Path(folder) / name))
        names = [b.path for b in found]
        if len(set(names)) != len(names):
            raise BadInputError(
                f"{self.location}: two file names read the same once escaped",
                hint="rename the files whose names are not UTF-8",
            )
        return sorted(found, key=lambda b: b.path)

    def _blob(self, file: Path) -> LocalBlob:
        rel = file.name if self.single_file else file.relative_to(self.root).as_posix()
        rel = recorded_name(rel)
        try:
            target = self._confined(file)
            st = target.stat()
        except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop (Python < 3.13)
            if self.single_file:
                raise BadInputError(f"{shown(str(file))}: cannot read it ({_why(e)})") from e
            return _unreadable(rel, file, _why(e))
        if not stat.S_ISREG(st.st_mode):
            what = (
                "a folder reached through a symlink"
                if stat.S_ISDIR(st.st_mode)
                else ("a pipe" if stat.S_ISFIFO(st.st_mode) else "a device or socket")
            )
            if self.single_file:
                raise BadInputError(f"{shown(str(file))} is not a regular file but {what}")
            return _unreadable(rel, file, f"not a regular file but {what}")
        return LocalBlob(rel, target, st.st_size, Stamp.of_stat(st))

    def _confined(self, file: Path) -> Path:
        """The real file behind `file`, refused when a link takes it out of the model folder."""
        target = file.resolve(strict=True)
        if target.is_relative_to(self.root) or target.is_relative_to(_hf_cache_blobs(self.root)):
            return target
        raise BadInputError(
            f"{file} is a symlink to {target}, outside the model folder {self.root}",
            hint="copy the file into the model folder, or point mlbom at a folder that holds it",
        )

    # -- Source ------------------------------------------------------------------------------

    def blobs(self) -> list[Blob]:
        return list(self._blobs)

    def digests(
        self,
        algorithms: tuple[str, ...],
        *,
        cache: HashCache | None,
        advance: Advance | None,
        complete: bool = True,
    ) -> dict[str, dict[str, str]]:
        readable = [b for b in self._blobs if b.problem is None]
        by_file = hash_files([b.file for b in readable], algorithms, cache=cache, advance=advance)
        for blob in readable:
            # the digests must be of the bytes that were inspected: nothing changed since
            if Stamp.of(blob.file) != blob.stamp:
                raise BadInputError(
                    f"{shown(blob.path)} changed while mlbom read it",
                    hint="run mlbom when the model files are no longer being written",
                )
        return {b.path: by_file[b.file] if b.problem is None else {} for b in self._blobs}

    def identity(self) -> Identity:
        if self.single_file:
            return Identity(fallback_name=Path(self.location).stem)
        if ident := _hf_cache_identity(self.root):
            return ident
        ident = _git_identity(self.root) or Identity()
        ident.fallback_name = self.root.name
        if ident.version is None and (commit := _hf_local_dir_commit(self.root)):
            ident.version = commit
            ident.properties.append(("mlbom:source:commit", commit))
        return ident


def _raise(error: OSError) -> None:
    raise BadInputError(f"{shown(str(error.filename))}: cannot read it ({error.strerror})")


def _absolute(path: Path) -> Path:
    """A path made absolute without following its last link (an excluded link is that link)."""
    path = Path(os.path.abspath(path))
    return path.parent.resolve() / path.name


def _why(error: OSError | RuntimeError) -> str:
    if isinstance(error, RuntimeError) or getattr(error, "errno", None) == 40:  # ELOOP
        return "a symlink loop"
    if isinstance(error, FileNotFoundError):
        return "a symlink to nothing"
    return error.strerror or str(error)


def _unreadable(rel: str, file: Path, why: str) -> LocalBlob:
    blob = LocalBlob(rel, file, 0)
    blob.problem = why
    return blob


def _hf_cache_blobs(root: Path) -> Path:
    """`<cache>/models--org--name/blobs` when `root` is one of its snapshots, else `root`."""
    if root.parent.name == "snapshots" and root.parent.parent.name.startswith("models--"):
        return root.parent.parent / "blobs"
    return root


def _hf_cache_identity(root: Path) -> Identity | None:
    """A snapshot in the Hugging Face cache names its repository and commit in its path."""
    repo_folder = root.parent.parent.name
    if _hf_cache_blobs(root) == root or not _COMMIT.fullmatch(root.name):
        return None
    repo = "/".join(repo_folder.removeprefix("models--").split("--", 1))
    if not _HF_REPO.match(repo):
        return None
    return hub_identity(repo, root.name)


def _hf_local_dir_commit(root: Path) -> str | None:
    """`hf download --local-dir` records the commit of each file it wrote."""
    folder = root / ".cache" / "huggingface" / "download"
    commits: set[str] = set()
    for meta in folder.rglob("*.metadata") if folder.is_dir() else ():
        try:
            first = meta.read_text(errors="replace")[:100].splitlines()[:1]
        except OSError:
            continue
        commits.update(c for c in first if _COMMIT.fullmatch(c))
    return commits.pop() if len(commits) == 1 else None


def _git_identity(root: Path) -> Identity | None:
    """The commit checked out in a git clone of the model (a Hub repository clone names it)."""
    git = root / ".git"
    if not git.is_dir():
        return None
    commit = _git_head(git)
    if commit is None:
        return None
    ident = Identity(version=commit, properties=[("mlbom:source:commit", commit)])
    config = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        config.read(git / "config")
        remote = config.get('remote "origin"', "url", fallback="")
    except configparser.Error:
        remote = ""
    if m := _HF_GIT_REMOTE.match(remote):
        return hub_identity(m.group(1), commit)
    return ident


def _git_head(git: Path) -> str | None:
    try:
        head = (git / "HEAD").read_text()[:200].strip()
        if _COMMIT.fullmatch(head):
            return head
        if not head.startswith("ref: "):
            return None
        ref = head[5:]
        ref_file = (git / ref).resolve()
        if ref_file.is_relative_to(git.resolve()) and ref_file.is_file():
            value = ref_file.read_text()[:100].strip()
            return value if _COMMIT.fullmatch(value) else None
        packed = (git / "packed-refs").read_text(errors="replace")[: 1 << 20]
    except OSError:
        return None
    for line in packed.splitlines():
        commit, _, name = line.partition(" ")
        if name == ref and _COMMIT.fullmatch(commit):
            return commit
    return None


def folder_key(model: Path, *, exclude: tuple[Path, ...] = ()) -> str:
    """The digest a local model is filed under: `hashing.folder_digest` of every file
    `generate` lists — what `attest.stores.bom_reference` computes from the BOM alone, and
    for a folder without git files what model_signing puts in its subject."""
    source = LocalSource(model, exclude=exclude)
    for blob in source.blobs():
        if blob.problem:
            raise BadInputError(f"{shown(blob.path)} cannot be read ({blob.problem})")
    cache = HashCache()
    try:
        digests = source.digests(("sha256",), cache=cache, advance=None)
    finally:
        cache.close()
    return folder_digest({name: d["sha256"] for name, d in digests.items()})
