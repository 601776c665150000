"""A model repository on the Hugging Face Hub, or an HF-compatible private hub, read
without downloading its weights.

The revision is resolved to its commit once and everything after is read at that commit.
Large files are hashed by the Hub itself (the LFS SHA-256 in its file metadata) and
inspected through byte-range reads of their headers; small non-weight files (card,
configs, tokenizer) are downloaded, checked against the Hub's digest and hashed locally.
`HubCopy` checks a local folder said to be a copy of a Hub repository.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from functools import partial

from packageurl import PackageURL

from mlbom._clients import DOWNLOAD_LIMIT
from mlbom._clients.hub import DEFAULT_ENDPOINT, Hub, git_blob_id, mismatch
from mlbom.errors import BadInputError, CheckFailedError, MlbomError
from mlbom.models import Identity
from mlbom.references import HF_SCHEME, HubRef
from mlbom.sources import Blob
from mlbom.sources.remote import RemoteBlob, RemoteSource


def hub_identity(repo: str, commit: str, hub: str = DEFAULT_ENDPOINT) -> Identity:
    """A Hub model pinned to a commit: `pkg:huggingface/ORG/REPO@<commit>`, plus the
    `repository_url` qualifier when it lives on another hub than huggingface.co."""
    namespace, _, name = repo.rpartition("/")
    qualifiers = {"repository_url": hub} if hub != DEFAULT_ENDPOINT else None
    purl = PackageURL("huggingface", namespace or None, name, commit, qualifiers)
    return Identity(
        name=repo,
        version=commit,
        purl=purl.to_string(),
        url=f"{hub}/{repo}/tree/{commit}",
        properties=[
            ("mlbom:source", f"{HF_SCHEME}{repo}@{commit}"),
            ("mlbom:source:commit", commit),
        ],
    )


class HubSource(RemoteSource):
    """`hf://ORG/REPO[@REVISION]`, pinned to the revision's commit."""

    sha256_origin = "hub-lfs-metadata"

    def __init__(self, ref: HubRef) -> None:
        self.hub = Hub(ref)
        self.location = str(ref)
        self.warnings: list[str] = []
        files = {f.path: f for f in self.hub.resolve()}
        if not files:
            raise BadInputError(f"{ref} holds no model files")
        self._files = files
        self._blobs = [
            RemoteBlob(f.path, f.size, f.sha256, partial(self.hub.fetch_range, f.path))
            for f in sorted(files.values(), key=lambda f: f.path)
        ]
        self.download_small(lambda blob: self.hub.download(self._files[blob.path]))
        scans = self.hub.security([b.path for b in self._blobs])
        if scans is None:
            self.warnings.append(f"{self.hub.endpoint} offers no security scan status")
        for blob in self._blobs:
            blob.properties += (scans or {}).get(blob.path, [])

    def chunks(self, blob: RemoteBlob) -> AbstractContextManager[Iterable[bytes]]:
        return self.hub.chunks(blob.path)

    def mismatch(self, blob: RemoteBlob) -> MlbomError:
        return mismatch(self.hub.ref, blob.path, "its LFS SHA-256")

    def identity(self) -> Identity:
        ident = hub_identity(self.hub.ref.repo, self.hub.commit, self.hub.endpoint)
        if self.hub.ref.revision and self.hub.ref.revision != self.hub.commit:
            ident.properties.append(("mlbom:source:revision", self.hub.ref.revision))
        return ident


class HubCopy:
    """A local folder said to be a copy of a Hub repository. The reference is resolved when
    made, so that a bad one fails before any hashing; `check` then compares file by file
    with the Hub's digests (LFS SHA-256, or the git blob id for files kept in git)."""

    def __init__(self, ref: HubRef) -> None:
        self.hub = Hub(ref)
        self.remote = {f.path: f for f in self.hub.resolve()}

    def check(
        self, blobs: Sequence[Blob], digests: dict[str, dict[str, str]]
    ) -> tuple[Identity, list[str]]:
        """The Hub model's identity and warnings (repository files missing locally: a
        partial download); any local file that differs is a failed check."""
        problems = []
        for blob in blobs:
            file = self.remote.get(blob.path)
            if file is None:
                problems.append(f"{blob.path} is not in the repository")
            elif file.size != blob.size:
                problems.append(f"{blob.path} is {blob.size} bytes here, {file.size} on the Hub")
            elif file.sha256 and digests[blob.path].get("sha256") != file.sha256:
                problems.append(f"{blob.path} differs from its LFS SHA-256")
            elif (
                not file.sha256
                and file.blob_id
                and git_blob_id(blob.read_all(DOWNLOAD_LIMIT)) != file.blob_id
            ):
                problems.append(f"{blob.path} differs from its git blob id")
        pinned = f"{HF_SCHEME}{self.hub.ref.repo}@{self.hub.commit}"
        if problems:
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise CheckFailedError(
                f"the local files do not match {pinned}: {'; '.join(problems[:10])}{more}",
                hint="download the repository again at that commit, or drop --source",
            )
        warnings = []
        if missing := sorted(set(self.remote) - {b.path for b in blobs}):
            shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
            warnings.append(f"{len(missing)} files of {pinned} are not in the local copy: {shown}")
        identity = hub_identity(self.hub.ref.repo, self.hub.commit, self.hub.endpoint)
        identity.properties.append(("mlbom:source:verified", "local files match the Hub's digests"))
        return identity, warnings
