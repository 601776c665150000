"""An OCI registry as attestation store: each signed BOM is a Sigstore bundle attached to
the model's manifest as an OCI 1.1 referrer, the way cosign v3 attaches bundles (its
`specs/BUNDLE_SPEC.md` and `WriteAttestationNewBundleFormat`), so that cosign, Sigstore
policy-controller and `oras discover` find it too.

`oci://REGISTRY/REPO` names the repository the referrers are written to, normally the
model's own. A push uploads the bundle as a blob, the empty config `{}`, and a manifest
whose `artifactType` and single layer are the bundle v0.3 media type and whose `subject`
is the model's manifest. A registry with the referrers API indexes it by subject; for one
without (the CNCF distribution registry 2.x), the referrers tag schema is kept: an image
index tagged `sha256-<hex of the model's manifest digest>` lists every referrer. Updating
that index is read-modify-write with no lock in the protocol: two pushes for the same
model at the same moment can lose one entry (the referrer manifest itself stays).

A model that is no OCI artifact (a Hub commit, a local folder's `sha256:` key) has no
manifest to refer to: its bundle's manifest is tagged `mlbom-<sha256 of the reference>` in
the store's repository instead (`model_tag`), annotated with the reference. So one registry
can hold every model's attestation, for the load-time verifier in pods that reach only the
registry. A tag can be moved: the caller's verification (the signature, the BOM naming the
model, or the pinned SHA-256 of the BOM admission verified) is what binds it.

The BOM travels inside the bundle's statement; `pull` takes it from there. The store does
not verify bundles: its caller does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from attest.reference import ModelRef, parse
from attest.sign import BUNDLE_MEDIA_TYPE
from attest.statement import PAYLOAD_TYPE, PREDICATE_TYPE, canonical
from attest.stores import (
    MAX_ENTRY,
    Attestation,
    CorruptEntryError,
    NoAttestationError,
    Store,
    StoreAuthError,
    StoreUnreachableError,
)
from mlbom.errors import BadInputError
from mlbom.sources.oci import (
    DIGEST,
    OCI_INDEX,
    OCI_MANIFEST,
    TITLE,
    Registry,
    RegistryError,
    descriptor,
    split_name,
)

log = logging.getLogger(__name__)

#: the annotation naming the model of a tagged attestation (a model that is no OCI artifact)
MODEL = "dev.mlbom.model"


def _model_key(model: ModelRef) -> str:
    """The reference as the tag keys it: a Hub repository's name in lower case, as the Hub
    resolves it."""
    return str(model).lower() if model.kind == "hf" else str(model)


def model_tag(model: ModelRef) -> str:
    """The tag of the attestation of a model that is no OCI artifact."""
    return "mlbom-" + hashlib.sha256(_model_key(model).encode()).hexdigest()


EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
# The annotations cosign v3 puts on a bundle's referrer manifest (and that registries copy
# into the referrers index): sigstore/cosign pkg/oci/remote/write.go, specs/BUNDLE_SPEC.md.
CREATED = "org.opencontainers.image.created"
CONTENT = "dev.sigstore.bundle.content"
PREDICATE = "dev.sigstore.bundle.predicateType"
MAX_REFERRERS = 10_000
MAX_CANDIDATES = 32  # bundles fetched, newest first, before giving up on a model
_OLDEST = datetime.min.replace(tzinfo=UTC)


def tag_for(digest: str) -> str:
    """The referrers tag schema's tag for a subject: `sha256-<hex>`."""
    return digest.replace(":", "-", 1)


def bom_of(bundle: bytes) -> tuple[dict[str, Any], bytes]:
    """The CycloneDX BOM a bundle's DSSE statement carries, parsed and as JSON bytes.
    Raises ValueError saying why the bundle holds none."""
    try:
        document = json.loads(bundle)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"the bundle is not JSON ({e})") from None
    if not isinstance(document, dict) or not str(document.get("mediaType", "")).startswith(
        "application/vnd.dev.sigstore.bundle"
    ):
        raise ValueError("it is not a Sigstore bundle (no bundle mediaType)")
    envelope = document.get("dsseEnvelope")
    if not isinstance(envelope, dict) or envelope.get("payloadType") != PAYLOAD_TYPE:
        raise ValueError("the bundle holds no DSSE envelope over an in-toto statement")
    payload = envelope.get("payload")
    try:
        raw = base64.b64decode(payload, validate=True) if isinstance(payload, str) else None
        statement = json.loads(raw) if raw is not None else None
    except (binascii.Error, ValueError, RecursionError):
        statement = None
    if not isinstance(statement, dict):
        raise ValueError("the bundle's DSSE payload is not a JSON statement")
    if statement.get("predicateType") != PREDICATE_TYPE:
        kind = str(statement.get("predicateType"))[:200]
        raise ValueError(f"its statement is not a CycloneDX one (predicateType {kind!r})")
    bom = statement.get("predicate")
    if not isinstance(bom, dict) or bom.get("bomFormat") != "CycloneDX":
        raise ValueError("its statement's predicate is not a CycloneDX BOM")
    return bom, (json.dumps(bom, indent=2, ensure_ascii=False) + "\n").encode()


class OciStore(Store):
    """Attestations as OCI 1.1 referrers of the models' manifests in one repository."""

    def __init__(self, location: str, *, insecure_registries: Sequence[str] = ()) -> None:
        ref = parse(location) if location.startswith("oci://") else None
        if ref is None or ref.digest or location.removeprefix("oci://") != ref.name:
            raise BadInputError(
                f"{location} is not an OCI store",
                hint="name a repository: oci://REGISTRY/REPO, without a tag or digest",
            )
        self.location = location
        self.registry, self.repository = split_name(ref.name)
        self.insecure_registries = tuple(insecure_registries)
        self.client = Registry(self.registry, insecure_registries=self.insecure_registries)

    def push(self, ref: ModelRef, attestation: Attestation) -> str:
        model = ref.require_pinned() if ref.kind != "oci" else self._model(ref)
        try:
            bom, _ = bom_of(attestation.bundle)
        except ValueError as e:
            raise BadInputError(f"the bundle cannot be stored for {model}: {e}") from None
        try:
            same = canonical(json.loads(attestation.bom)) == canonical(bom)
        except (ValueError, RecursionError):
            same = False
        if not same:
            raise BadInputError(
                "the bundle does not sign this BOM (its statement's predicate differs)",
                hint="push the BOM together with the bundle mlbom sign wrote for it",
            )
        assert model.digest is not None
        with self._errors():
            subject = self._subject(model) if model.kind == "oci" else None
            layer = self.client.push_blob(self.repository, attestation.bundle, BUNDLE_MEDIA_TYPE)
            layer["annotations"] = {TITLE: f"{tag_for(layer['digest'])}.sigstore.json"}
            config = self.client.push_blob(self.repository, EMPTY_CONFIG, EMPTY_MEDIA_TYPE)
            created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            annotations = {CREATED: created, CONTENT: "dsse-envelope", PREDICATE: PREDICATE_TYPE}
            manifest = {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": BUNDLE_MEDIA_TYPE,
                "config": {**config, "artifactType": BUNDLE_MEDIA_TYPE},  # as cosign writes it
                "layers": [layer],
                **({"subject": subject} if subject else {}),
                "annotations": {**annotations, **({} if subject else {MODEL: _model_key(model)})},
            }
            data = json.dumps(manifest, separators=(",", ":")).encode()
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            if subject is None:
                self.client.push_manifest(self.repository, model_tag(model), data, OCI_MANIFEST)
                return f"oci://{self.registry}/{self.repository}:{model_tag(model)}"
            answer = self.client.push_manifest(self.repository, digest, data, OCI_MANIFEST)
            # A registry with the referrers API says so (OCI-Subject) or answers the API.
            if "OCI-Subject" not in answer and (
                self.client.referrers(self.repository, model.digest) is None
            ):
                entry = {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(data),
                    "artifactType": BUNDLE_MEDIA_TYPE,
                    "annotations": annotations,
                }
                self._add_to_tag_index(model.digest, entry)
        return f"oci://{self.registry}/{self.repository}@{digest}"

    def pull(self, ref: ModelRef) -> Attestation:
        if ref.kind != "oci":
            return self._pull_tagged(ref.require_pinned())
        model = self._model(ref)
        assert model.digest is not None
        with self._errors():
            candidates = _bundles(self._referrers(model.digest))
            if not candidates:
                raise NoAttestationError(
                    f"{self.location} holds no attestation for {model}",
                    hint="sign the model's BOM with mlbom sign and push it with mlbom push",
                )
            problems: list[CorruptEntryError] = []
            for entry in candidates[:MAX_CANDIDATES]:
                try:
                    if found := self._read(entry):
                        return found
                except CorruptEntryError as e:
                    log.warning("skipping an unreadable attestation of %s: %s", model, e.message)
                    problems.append(e)
            if problems:
                raise problems[0]
            raise NoAttestationError(
                f"{self.location} holds no CycloneDX attestation for {model}, only others",
                hint="sign the model's BOM with mlbom sign and push it with mlbom push",
            )

    def _pull_tagged(self, model: ModelRef) -> Attestation:
        """The attestation of a model that is no OCI artifact, under its tag."""
        tag = model_tag(model)
        with self._errors():
            try:
                manifest = self.client.manifest(self.repository, tag, accept=(OCI_MANIFEST,))
            except RegistryError as e:
                if e.kind != "missing":
                    raise
                raise NoAttestationError(
                    f"{self.location} holds no attestation for {model} (no tag {tag})",
                    hint="sign the model's BOM with mlbom sign and push it with "
                    f"mlbom push --to {self.location}",
                ) from None
            annotations = manifest.document.get("annotations")
            named = annotations.get(MODEL) if isinstance(annotations, dict) else None
            if named != _model_key(model):
                raise CorruptEntryError(
                    f"{self.location}: the tag {tag} holds the attestation of "
                    f"{str(named)[:200]!r}, not {model}"
                )
            found = self._attestation_in(manifest.document, tag)
        if found is None:
            raise NoAttestationError(f"{self.location} holds no CycloneDX attestation for {model}")
        return found

    def _model(self, ref: ModelRef) -> ModelRef:
        if ref.kind != "oci":
            raise BadInputError(
                f"{ref}: an OCI store holds attestations of OCI models",
                hint="store attestations of other models in a folder or on the Hub",
            )
        return ref.require_pinned()

    def _subject(self, model: ModelRef) -> dict[str, Any]:
        """The model manifest's descriptor, read from its own registry."""
        registry, repository = split_name(model.name)
        client = (
            self.client
            if registry == self.registry
            else Registry(registry, insecure_registries=self.insecure_registries)
        )
        assert model.digest is not None
        try:
            manifest = client.manifest(repository, model.digest)
        except RegistryError as e:
            if e.kind == "missing":
                raise BadInputError(
                    f"{model}: the registry has no such manifest",
                    hint="push the model first; its attestation refers to its manifest",
                ) from None
            raise
        return manifest.descriptor

    def _referrers(self, digest: str) -> list[Any]:
        """The referrers of `digest`: the API's answer, else the index the referrers tag
        schema keeps; nothing when neither has any."""
        listed = self.client.referrers(self.repository, digest)
        if listed is not None:
            return listed
        try:
            index = self.client.manifest(self.repository, tag_for(digest), accept=(OCI_INDEX,))
        except RegistryError as e:
            if e.kind == "missing":
                return []
            raise
        manifests = index.document.get("manifests")
        if index.media_type != OCI_INDEX or not isinstance(manifests, list):
            raise CorruptEntryError(
                f"{self.location}: the tag {tag_for(digest)} is not a referrers index"
            )
        return manifests

    def _add_to_tag_index(self, subject: str, entry: dict[str, Any]) -> None:
        tag = tag_for(subject)
        try:
            index = self.client.manifest(self.repository, tag, accept=(OCI_INDEX,))
        except RegistryError as e:
            if e.kind != "missing":
                raise
            document: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX}
            listed: list[Any] = []
        else:
            document = index.document
            listed = document.get("manifests")  # type: ignore[assignment]
            if index.media_type != OCI_INDEX or not isinstance(listed, list):
                raise CorruptEntryError(
                    f"{self.location}: the tag {tag} is not a referrers index; not replacing it",
                    hint="delete the tag if it holds nothing of value, then push again",
                )
        kept = [
            m for m in listed if not (isinstance(m, dict) and m.get("digest") == entry["digest"])
        ]
        updated = {**document, "manifests": [*kept, entry]}
        data = json.dumps(updated, separators=(",", ":")).encode()
        self.client.push_manifest(self.repository, tag, data, OCI_INDEX)

    def _read(self, entry: dict[str, Any]) -> Attestation | None:
        """The attestation a referrer holds: manifest, bundle layer, BOM in its statement;
        None for a bundle whose manifest says it attests something else (the tag schema's
        index may have lost that annotation: cosign's own fallback write drops it)."""
        digest = entry["digest"]
        try:
            manifest = self.client.manifest(self.repository, digest, accept=(OCI_MANIFEST,))
        except RegistryError as e:
            if e.kind in ("unreachable", "auth", "failed"):
                raise
            raise CorruptEntryError(f"{self.location}: referrer {digest}: {e.message}") from None
        return self._attestation_in(manifest.document, digest)

    def _attestation_in(self, manifest: dict[str, Any], digest: str) -> Attestation | None:
        """The attestation of a bundle manifest (`digest` names it in messages)."""
        try:
            annotations = manifest.get("annotations")
            if isinstance(annotations, dict) and annotations.get(PREDICATE) not in (
                None,
                PREDICATE_TYPE,
            ):
                return None
            layers = manifest.get("layers")
            layer = next(
                (
                    descriptor(value, f"the bundle layer of {digest}")
                    for value in (layers if isinstance(layers, list) else [])
                    if isinstance(value, dict) and value.get("mediaType") == BUNDLE_MEDIA_TYPE
                ),
                None,
            )
            if layer is None:
                raise CorruptEntryError(f"{self.location}: referrer {digest} holds no bundle layer")
            if layer["size"] > MAX_ENTRY:
                raise CorruptEntryError(
                    f"{self.location}: the bundle of referrer {digest} is larger than "
                    f"{MAX_ENTRY >> 20} MiB"
                )
            bundle = self.client.blob(self.repository, layer["digest"], layer["size"], MAX_ENTRY)
        except RegistryError as e:
            if e.kind in ("unreachable", "auth", "failed"):
                raise
            raise CorruptEntryError(f"{self.location}: referrer {digest}: {e.message}") from None
        try:
            _, bom = bom_of(bundle)
        except ValueError as e:
            raise CorruptEntryError(
                f"{self.location}: referrer {digest} holds no readable attestation: {e}",
                hint="delete the referrer and push the attestation again",
            ) from None
        return Attestation(bom, bundle)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """`RegistryError`s in the store's terms: unreachable, credentials, corrupt."""
        try:
            yield
        except RegistryError as e:
            if e.kind == "unreachable":
                raise StoreUnreachableError(
                    f"the attestation store {self.location} is unreachable: {e.message}",
                    hint="check the registry's address and the network; a registry that is not "
                    "on a loopback address is reached over HTTPS unless --insecure-registry "
                    "names it",
                ) from None
            if e.kind == "auth":
                raise StoreAuthError(
                    f"the attestation store {self.location}: {e.message}",
                    hint=f"log in with `docker login {self.registry}`: mlbom uses the docker "
                    "config ($DOCKER_CONFIG/config.json or ~/.docker/config.json) and its "
                    "credential helpers",
                ) from None
            if e.kind in ("mismatch", "malformed"):
                raise CorruptEntryError(f"{self.location}: {e.message}") from None
            raise StoreUnreachableError(
                f"the attestation store {self.location}: {e.message}"
            ) from None


def _bundles(entries: list[Any]) -> list[dict[str, Any]]:
    """The referrers that may be CycloneDX bundles, newest first (by their created
    annotation, then by their place in the list: the tag schema appends)."""
    found = []
    for position, entry in enumerate(entries[:MAX_REFERRERS]):
        if not isinstance(entry, dict) or entry.get("artifactType") != BUNDLE_MEDIA_TYPE:
            continue
        if not (isinstance(entry.get("digest"), str) and DIGEST.match(entry["digest"])):
            continue
        annotations = entry.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        predicate = annotations.get(PREDICATE)
        if predicate is not None and predicate != PREDICATE_TYPE:
            continue  # another attestation of the model (a cosign signature, provenance)
        found.append((_created(annotations.get(CREATED)), position, entry))
    found.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [entry for _, _, entry in found]


def _created(value: Any) -> datetime:
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else _OLDEST
    except ValueError:
        return _OLDEST
    return when if when.tzinfo else when.replace(tzinfo=UTC)
