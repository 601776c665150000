"""A model pushed to an OCI registry as an artifact with one layer per file (the ORAS
convention), read without downloading its weights.

`oci://REGISTRY/REPO[:TAG|@sha256:…]`: a tag is resolved to its manifest digest once and
everything after is read by digest. Each layer is one file: its name is the layer's
`org.opencontainers.image.title` annotation and its SHA-256 the layer digest, so no weight
is downloaded for its SHA-256. Small non-weight files (card, configs, tokenizer) are
fetched, checked against their digest and hashed with every algorithm; weights are
inspected through ranged blob reads of their headers. The registry is spoken to through
`mlbom._clients.registry`, the client the OCI attestation store shares.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from packageurl import PackageURL

from mlbom._clients import DOWNLOAD_LIMIT
from mlbom._clients.registry import (
    MAX_MANIFEST,
    Layer,
    Registry,
    RegistryError,
    descriptor,
    layers,
    model_errors,
    pinned_manifest,
)
from mlbom.errors import BadInputError, CheckFailedError, MlbomError
from mlbom.models import Identity
from mlbom.references import OCI_SCHEME, ModelRef, parse, split_name
from mlbom.sources.remote import RemoteBlob, RemoteSource


def oci_identity(name: str, digest: str, tag: str | None = None) -> Identity:
    """An OCI artifact pinned to its manifest digest, as the purl spec writes it:
    `pkg:oci/<last path segment, lower-cased>@sha256:<hex>?repository_url=<REGISTRY/REPO>`."""
    purl = PackageURL(
        "oci", None, name.rsplit("/", 1)[-1].lower(), digest, {"repository_url": name}
    )
    properties = [("mlbom:source", f"{OCI_SCHEME}{name}@{digest}")]
    if tag:
        properties.append(("mlbom:source:tag", tag))
    return Identity(name=name, version=digest, purl=purl.to_string(), properties=properties)


class OciSource(RemoteSource):
    """`oci://REGISTRY/REPO[:TAG|@sha256:…]`, pinned to its manifest digest."""

    sha256_origin = "oci-layer-digest"

    def __init__(self, ref: ModelRef | str, *, insecure_registries: Sequence[str] = ()) -> None:
        ref = parse(ref) if isinstance(ref, str) else ref
        if ref.kind != "oci":
            raise BadInputError(f"{ref} is not an OCI reference")
        self.ref = ref
        self.registry, self.repository = split_name(ref.name)
        self.client = Registry(self.registry, insecure_registries=insecure_registries)
        self.location = str(ref)
        self.warnings: list[str] = []
        with model_errors(ref):
            self.manifest = pinned_manifest(self.client, ref)
            files = layers(self.manifest)
            if not files:
                raise BadInputError(f"{ref} holds no model files")
            self.config = self._config()
            self._layers = {f.path: f for f in files}
            self._blobs = [
                RemoteBlob(f.path, f.size, f.sha256, partial(self._fetch_range, f))
                for f in sorted(files, key=lambda f: f.path)
            ]
            self.download_small(self._download)

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def _config(self) -> Any:
        """The manifest's config, checked: JSON for a JSON media type (ORAS writes `{}`)."""
        config = descriptor(self.manifest.document.get("config"), "the manifest's config")
        if config["size"] > MAX_MANIFEST:
            raise RegistryError(
                "malformed", f"the manifest's config is larger than {MAX_MANIFEST >> 20} MiB"
            )
        data = self.client.blob(self.repository, config["digest"], config["size"], MAX_MANIFEST)
        if not config["mediaType"].endswith("json"):
            return None
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as e:
            raise RegistryError("malformed", f"the manifest's config is not JSON ({e})") from None

    def _download(self, blob: RemoteBlob) -> bytes:
        layer = self._layers[blob.path]
        return self.client.blob(self.repository, layer.digest, layer.size, layer.size)

    def _fetch_range(self, layer: Layer, offset: int, length: int) -> bytes:
        with model_errors(self.ref):
            return self.client.read_range(
                self.repository, layer.digest, offset, length, whole_limit=DOWNLOAD_LIMIT
            )

    @contextmanager
    def chunks(self, blob: RemoteBlob) -> Iterator[Iterable[bytes]]:
        layer = self._layers[blob.path]
        with model_errors(self.ref):
            yield self.client.blob_chunks(self.repository, layer.digest, layer.size)

    def mismatch(self, blob: RemoteBlob) -> MlbomError:
        return CheckFailedError(
            f"{self.ref}: the bytes of {blob.path} do not match its layer digest",
            hint="the file changed in transit or on the registry; do not trust this model",
        )

    def identity(self) -> Identity:
        ident = oci_identity(self.ref.name, self.digest, self.ref.tag)
        artifact_type = self.manifest.document.get("artifactType")
        config = self.manifest.document.get("config")
        if not isinstance(artifact_type, str) and isinstance(config, dict):
            artifact_type = config.get("mediaType")
        if isinstance(artifact_type, str) and artifact_type:
            ident.properties.append(("mlbom:oci:artifact-type", artifact_type[:255]))
        return ident
