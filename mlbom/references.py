"""Model references: what a user or a pod names, made canonical and pinned to a digest.

- `hf://ORG/REPO@<40-hex commit>`: a Hub repository at a commit (a branch or tag resolves
  to its commit);
- `oci://REGISTRY/REPO@sha256:<64-hex>`: an OCI artifact by manifest digest (a tag
  resolves to its digest);
- a local folder: the digest model_signing puts in its subject for it, SHA-256 over its
  sorted file digests, written `sha256:<hex>`.

The grammar only: `parse` never touches the network and says whether a reference is pinned
(`mlbom.sources.pin` pins it). An unpinned reference is never treated as pinned: like an
image tag, it can change. Container image names are normalised here too, the way Docker
reads them (`ubuntu` is `docker.io/library/ubuntu`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlbom.errors import BadInputError

Kind = Literal["hf", "oci", "local"]
HF_SCHEME = "hf://"
OCI_SCHEME = "oci://"
# \Z, not $: a trailing newline is another spelling, never the pinned reference
COMMIT = re.compile(r"^[0-9a-f]{40}\Z")
#: a SHA-256 as BOMs, statements and the Hub write it: 64 lower-case hex
SHA256_HEX = re.compile(r"^[0-9a-f]{64}\Z")
#: `sha256:<64 lower-case hex>`: a manifest, layer or folder digest
SHA256_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")
#: a Hub repository id: ORG/REPO, or a bare REPO (the Hub's legacy top-level models)
HUB_REPO = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}\Z")
# registry[:port]/path[:tag][@digest], the distribution reference grammar, lower-case path
_OCI = re.compile(
    r"^(?P<registry>[A-Za-z0-9.-]+(?::\d+)?)/(?P<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[^@]+))?\Z"
)


@dataclass(frozen=True)
class HubRef:
    """`hf://ORG/REPO[@REVISION]`: a branch, tag or commit; no revision means `main`."""

    repo: str
    revision: str | None = None

    @classmethod
    def parse(cls, text: str) -> HubRef:
        body = text.removeprefix(HF_SCHEME)
        repo, _, revision = body.partition("@")
        if not HUB_REPO.match(repo) or repo.endswith((".git", "..")) or "--" in repo:
            raise BadInputError(
                f"{text} is not a Hub model reference",
                hint="write hf://ORG/REPO or hf://ORG/REPO@REVISION (branch, tag or commit)",
            )
        if "@" in body and not revision:
            raise BadInputError(f"{text}: empty revision after @")
        return cls(repo, revision or None)

    def __str__(self) -> str:
        return f"{HF_SCHEME}{self.repo}" + (f"@{self.revision}" if self.revision else "")


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
    if text.startswith(HF_SCHEME):
        hub = HubRef.parse(text)
        if hub.revision and COMMIT.match(hub.revision):
            return ModelRef("hf", hub.repo, hub.revision)
        return ModelRef("hf", hub.repo, None, hub.revision or "main")
    if text.startswith(OCI_SCHEME):
        m = _OCI.match(text.removeprefix(OCI_SCHEME))
        if not m:
            raise BadInputError(
                f"{text} is not an OCI reference",
                hint="write oci://REGISTRY/REPO[:TAG] or oci://REGISTRY/REPO@sha256:<digest>",
            )
        digest = m["digest"]
        if digest is not None and not SHA256_DIGEST.match(digest):
            raise BadInputError(f"{text}: the digest must be sha256:<64 lower-case hex>")
        name = f"{m['registry']}/{m['repo']}"
        return ModelRef("oci", name, digest, None if digest else (m["tag"] or "latest"))
    if SHA256_DIGEST.match(text):
        return ModelRef("local", text, text)
    if "://" in text:
        raise BadInputError(
            f"unsupported model reference {text}",
            hint="use hf://ORG/REPO@COMMIT, oci://REGISTRY/REPO@sha256:…, or a model folder",
        )
    return ModelRef("local", str(Path(text)))


def split_name(name: str) -> tuple[str, str]:
    """`REGISTRY/REPO` -> (registry, repository path)."""
    registry, _, repository = name.partition("/")
    return registry, repository


_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


def _has_registry(first: str) -> bool:
    """Docker's rule: the first path segment is a registry when it looks like a host."""
    return "." in first or ":" in first or first == "localhost"


def full_image_name(image: str) -> str:
    """An image name as a full reference: Docker Hub's implicit registry and library/."""
    first, slash, _ = image.partition("/")
    if not slash:
        return f"docker.io/library/{image}"
    if _has_registry(first):
        return image
    return f"docker.io/{image}"


def image_forms(image: str) -> list[str]:
    """The image as written and its Docker Hub spellings: `vllm/vllm-openai:v1`,
    `docker.io/vllm/vllm-openai:v1`, `docker.io/library/ubuntu`."""
    first, _, rest = image.partition("/")
    if rest and _has_registry(first):
        if first not in _DOCKER_HUB:
            return [image]  # another registry
        short = rest
    else:
        short = image
    short = short.removeprefix("library/")
    forms = [image, short, f"docker.io/{short}"]
    if "/" not in short.partition(":")[0].partition("@")[0]:
        forms.append(f"docker.io/library/{short}")
    return list(dict.fromkeys(forms))
