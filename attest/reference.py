"""Model references: what a user or a pod names, made canonical and pinned to a digest.

- `hf://ORG/REPO@<40-hex commit>`: a Hub repository at a commit (a branch or tag resolves
  to its commit);
- `oci://REGISTRY/REPO@sha256:<64-hex>`: an OCI artifact by manifest digest (a tag
  resolves to its digest);
- a local folder: the digest model_signing puts in its subject for it, SHA-256 over its
  sorted file digests, written `sha256:<hex>`.

`parse` never touches the network and says whether a reference is pinned; `resolve` pins it.
An unpinned reference is never treated as pinned: like an image tag, it can change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlbom.errors import BadInputError

Kind = Literal["hf", "oci", "local"]
# \Z, not $: a trailing newline is another spelling, never the pinned reference
_COMMIT = re.compile(r"^[0-9a-f]{40}\Z")
_OCI_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")
# registry[:port]/path[:tag][@digest], the distribution reference grammar, lower-case path
_OCI = re.compile(
    r"^(?P<registry>[A-Za-z0-9.-]+(?::\d+)?)/(?P<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[^@]+))?\Z"
)


@dataclass(frozen=True)
class ModelRef:
    """A model as a store keys it: `kind`, `name` (ORG/REPO, REGISTRY/REPO, or a folder),
    and the digest that pins it (a commit, or `sha256:<hex>`); `tag` is the mutable name it
    was given by (a branch, tag), if any."""

    kind: Kind
    name: str
    digest: str | None = None
    tag: str | None = None

    @property
    def pinned(self) -> bool:
        return self.digest is not None

    def __str__(self) -> str:
        if self.kind == "local":
            return self.digest or self.name
        if self.digest:
            return f"{self.kind}://{self.name}@{self.digest}"
        if self.tag:
            return f"{self.kind}://{self.name}{':' if self.kind == 'oci' else '@'}{self.tag}"
        return f"{self.kind}://{self.name}"

    def require_pinned(self) -> ModelRef:
        if not self.pinned:
            how = {
                "hf": "name the commit: hf://ORG/REPO@<40-hex commit>",
                "oci": "name the manifest digest: oci://REGISTRY/REPO@sha256:<digest>",
                "local": "give the folder itself",
            }[self.kind]
            raise BadInputError(f"{self} is not pinned to a digest", hint=how)
        return self


def parse(text: str) -> ModelRef:
    """The reference `text` names, without network access; it may be unpinned."""
    if text.startswith("hf://"):
        from mlbom.sources.hub import HubRef

        hub = HubRef.parse(text)
        if hub.revision and _COMMIT.match(hub.revision):
            return ModelRef("hf", hub.repo, hub.revision)
        return ModelRef("hf", hub.repo, None, hub.revision or "main")
    if text.startswith("oci://"):
        m = _OCI.match(text.removeprefix("oci://"))
        if not m:
            raise BadInputError(
                f"{text} is not an OCI reference",
                hint="write oci://REGISTRY/REPO[:TAG] or oci://REGISTRY/REPO@sha256:<digest>",
            )
        digest = m["digest"]
        if digest is not None and not _OCI_DIGEST.match(digest):
            raise BadInputError(f"{text}: the digest must be sha256:<64 lower-case hex>")
        name = f"{m['registry']}/{m['repo']}"
        return ModelRef("oci", name, digest, None if digest else (m["tag"] or "latest"))
    if _OCI_DIGEST.match(text):
        return ModelRef("local", text, text)
    if "://" in text:
        raise BadInputError(
            f"unsupported model reference {text}",
            hint="use hf://ORG/REPO@COMMIT, oci://REGISTRY/REPO@sha256:…, or a model folder",
        )
    return ModelRef("local", str(Path(text)))


def resolve(
    text: str | ModelRef,
    *,
    exclude: tuple[Path, ...] = (),
    insecure_registries: tuple[str, ...] = (),
) -> ModelRef:
    """The reference pinned: a branch or tag resolved to its commit or manifest digest, a
    local folder hashed. Raises `BadInputError` when that cannot be done."""
    ref = parse(text) if isinstance(text, str) else text
    if ref.pinned:
        return ref
    if ref.kind == "hf":
        from mlbom.sources.hub import Hub, HubRef

        hub = Hub(HubRef(ref.name, ref.tag))
        hub.resolve()
        return ModelRef("hf", ref.name, hub.commit, ref.tag)
    if ref.kind == "oci":
        from mlbom.sources.oci import resolve_digest

        digest = resolve_digest(
            ref.name, ref.tag or "latest", insecure_registries=insecure_registries
        )
        return ModelRef("oci", ref.name, digest, ref.tag)
    return ModelRef("local", ref.name, "sha256:" + folder_key(Path(ref.name), exclude=exclude))


def folder_key(model: Path, *, exclude: tuple[Path, ...] = ()) -> str:
    """The digest a local model is filed under: SHA-256 over the SHA-256 of every file
    `generate` lists, in path order — what `attest.stores.bom_reference` computes from the
    BOM alone, and for a folder without git files what model_signing puts in its subject."""
    import hashlib

    from mlbom.errors import shown
    from mlbom.hashing import HashCache
    from mlbom.sources.local import LocalSource

    source = LocalSource(model, exclude=exclude)
    for blob in source.blobs():
        if blob.problem:
            raise BadInputError(f"{shown(blob.path)} cannot be read ({blob.problem})")
    cache = HashCache()
    try:
        digests = source.digests(("sha256",), cache=cache, advance=None)
    finally:
        cache.close()
    hasher = hashlib.sha256()
    for name in sorted(digests):
        hasher.update(bytes.fromhex(digests[name]["sha256"]))
    return hasher.hexdigest()
