"""Model sources: where a model's files come from (a local folder or file, a Hugging Face
Hub repository, an OCI artifact). A source lists the model's files as `Blob`s, gives their
digests, and says what it knows of the model's identity; `pin` pins a model reference the
same way (a branch to its commit, a tag to its manifest digest, a folder to its digest)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from mlbom.errors import BadInputError, InspectionError
from mlbom.hashing import HashCache
from mlbom.models import Identity
from mlbom.progress import Advance
from mlbom.references import HF_SCHEME, OCI_SCHEME, HubRef, ModelRef, parse

#: the property on a file whose only digest is the one its source recorded (a Hub's LFS
#: SHA-256, an OCI layer digest); its value says which
SHA256_ONLY = "mlbom:sha256-only"


class Blob(ABC):
    """One file of a model, readable in bounded pieces wherever it lives."""

    def __init__(self, path: str, size: int) -> None:
        self.path = path  # relative POSIX path inside the model
        self.size = size
        # why the file cannot be read at all (a symlink loop, a pipe): it is listed with
        # this as its inspection error, and never opened
        self.problem: str | None = None
        # what the source itself says about the file (a hub's scan status, say)
        self.properties: list[tuple[str, str]] = []

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def local_path(self) -> Path | None:
        """The file on disk, when there is one (some parsers need a real file)."""
        return None

    @abstractmethod
    def open(self) -> BinaryIO:
        """A seekable binary reader over the whole file."""

    def read_at(self, offset: int, length: int) -> bytes:
        """At most `length` bytes from `offset`; never more than the file holds."""
        length = max(0, min(length, self.size - offset))
        with self.open() as f:
            f.seek(offset)
            return f.read(length)

    def peek_at(self, offset: int, length: int) -> bytes:
        """A few bytes at `offset`, without reading ahead (a probe for a signature)."""
        return self.read_at(offset, length)

    def read_all(self, limit: int) -> bytes:
        """The whole file, refused when it is larger than `limit` (bounded reads)."""
        if self.size > limit:
            raise InspectionError(
                f"{self.path} is {self.size} bytes, more than the {limit} read for it"
            )
        return self.read_at(0, self.size)


class Source(ABC):
    """Where a model comes from."""

    #: a human-readable location, for messages
    location: str
    #: True when the user named one file rather than a folder
    single_file: bool = False
    #: what the user should know about the source (scan results unavailable, say)
    warnings: Sequence[str] = ()
    #: paths the user excluded, relative, as the BOM records them (`mlbom:excluded`)
    excluded: Sequence[str] = ()

    @abstractmethod
    def blobs(self) -> list[Blob]:
        """The model's files, sorted by path: every one, but those the user excluded."""

    @abstractmethod
    def digests(
        self,
        algorithms: tuple[str, ...],
        *,
        cache: HashCache | None,
        advance: Advance | None,
        complete: bool = True,
    ) -> dict[str, dict[str, str]]:
        """Digests of every blob, by relative path and algorithm. A source that already
        knows a digest (a hub's LFS SHA-256) may give just that one unless `complete`."""

    def bytes_to_read(self, algorithms: tuple[str, ...], *, complete: bool) -> int:
        """How many bytes `digests` will read, for its progress bar."""
        return sum(b.size for b in self.blobs())

    def identity(self) -> Identity:
        """What the source knows of the model's name, version and purl."""
        return Identity()


def open_source(
    model: str, *, exclude: tuple[Path, ...] = (), insecure_registries: tuple[str, ...] = ()
) -> Source:
    """The source for what the user named: `hf://ORG/REPO[@REVISION]`,
    `oci://REGISTRY/REPO[:TAG|@DIGEST]`, a local folder or a single model file."""
    if model.startswith(HF_SCHEME):
        from mlbom.sources.hub import HubSource

        return HubSource(HubRef.parse(model))
    if model.startswith(OCI_SCHEME):
        from mlbom.sources.oci import OciSource

        return OciSource(model, insecure_registries=insecure_registries)
    if "://" in model:
        scheme = model.split("://", 1)[0]
        raise BadInputError(
            f"unsupported model location scheme {scheme}://",
            hint="give a local model folder or file, hf://ORG/REPO[@REVISION] or "
            "oci://REGISTRY/REPO[:TAG|@sha256:…]",
        )
    from mlbom.sources.local import LocalSource

    return LocalSource(Path(model), exclude=exclude)


def pin(
    reference: str | ModelRef,
    *,
    exclude: tuple[Path, ...] = (),
    insecure_registries: tuple[str, ...] = (),
) -> ModelRef:
    """The reference pinned: a branch or tag resolved to its commit or manifest digest, a
    local folder hashed (`local.folder_key`). Raises `BadInputError` when that cannot be
    done."""
    ref = parse(reference) if isinstance(reference, str) else reference
    if ref.pinned:
        return ref
    if ref.kind == "hf":
        from mlbom._clients.hub import Hub

        hub = Hub(HubRef(ref.name, ref.tag))
        hub.resolve()
        return ModelRef("hf", ref.name, hub.commit, ref.tag)
    if ref.kind == "oci":
        from mlbom._clients.registry import resolve_digest

        digest = resolve_digest(
            ref.name, ref.tag or "latest", insecure_registries=insecure_registries
        )
        return ModelRef("oci", ref.name, digest, ref.tag)
    from mlbom.sources.local import folder_key

    return ModelRef("local", ref.name, "sha256:" + folder_key(Path(ref.name), exclude=exclude))
