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

`pull` also finds what `cosign attest --type cyclonedx` wrote: cosign v3's bundles are
referrers like mlbom's; cosign v2 (and v3 without its new bundle format) keeps every
attestation of an image as one layer of the manifest tagged `sha256-<hex>.att`, a DSSE
envelope annotated with its certificate and the log's promise (`cosign_bundle` turns such a
layer into the Sigstore bundle v0.1 it amounts to). Referrers are asked first.

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

from attest import dsse
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
from mlbom._clients.registry import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    TITLE,
    Registry,
    RegistryError,
    descriptor,
)
from mlbom.errors import BadInputError
from mlbom.references import SHA256_DIGEST, ModelRef, parse, split_name

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


# cosign's attestation image: sigstore/cosign pkg/oci/static/signature.go (annotation keys),
# pkg/types/payload.go (layer media type), cmd/cosign/cli/attest/attest.go (predicateType),
# pkg/cosign/bundle/rekor.go (the bundle annotation's JSON).
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
COSIGN_CERTIFICATE = "dev.sigstore.cosign/certificate"
COSIGN_BUNDLE = "dev.sigstore.cosign/bundle"
COSIGN_PREDICATE = "predicateType"
BUNDLE_V01 = "application/vnd.dev.sigstore.bundle+json;version=0.1"
MAX_COSIGN_LAYERS = 1_000  # every attestation of one image, of every predicate type
MAX_ANNOTATION = 64 << 10  # a certificate, a chain, a log entry's body: a few KiB each
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


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
    try:
        statement = json.loads(dsse.b64decode(envelope.get("payload")))
    except (ValueError, RecursionError):  # binascii.Error is a ValueError
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


def cosign_bundle(envelope: bytes, annotations: dict[str, Any]) -> bytes:
    """The Sigstore bundle v0.1 (the version that holds a log entry's promise without its
    inclusion proof) equal to one layer of cosign's attestation image: the DSSE envelope,
    the signing certificate (not the chain beside it: the trusted root supplies that) and
    the Rekor entry of the bundle annotation. Nothing is verified here. Raises ValueError
    saying what is malformed."""
    try:
        document = json.loads(envelope)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"the layer is not a DSSE envelope ({e})") from None
    if not isinstance(document, dict) or not isinstance(document.get("payload"), str):
        raise ValueError("the layer is not a DSSE envelope")
    values: dict[str, str] = {}
    for key in (COSIGN_CERTIFICATE, COSIGN_BUNDLE):
        value = annotations.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ANNOTATION):
            raise ValueError(f"its {key} annotation is not text of at most 64 KiB")
        values[key] = value or ""
    material: dict[str, Any] = {"tlogEntries": []}
    if values[COSIGN_CERTIFICATE]:
        material["x509CertificateChain"] = {
            "certificates": [{"rawBytes": _pem_certificate(values[COSIGN_CERTIFICATE])}]
        }
    else:
        material["publicKey"] = {}  # `cosign attest --key`: the verifier names the key
    if values[COSIGN_BUNDLE]:
        material["tlogEntries"] = [_rekor_entry(values[COSIGN_BUNDLE])]
    bundle = {"mediaType": BUNDLE_V01, "verificationMaterial": material, "dsseEnvelope": document}
    return (json.dumps(bundle, indent=2) + "\n").encode()


def _pem_certificate(pem: str) -> str:
    """The base64 DER of the first PEM certificate."""
    start = pem.find(_PEM_CERTIFICATE)
    end = pem.find("-----END CERTIFICATE-----", start)
    if start < 0 or end < 0:
        raise ValueError("its certificate annotation holds no PEM certificate")
    text = "".join(pem[start + len(_PEM_CERTIFICATE) : end].split())
    try:
        return base64.b64encode(base64.b64decode(text, validate=True)).decode()
    except (binascii.Error, ValueError):
        raise ValueError("its certificate annotation is not PEM") from None


def _rekor_entry(annotation: str) -> dict[str, Any]:
    """A bundle's log entry from cosign's bundle annotation
    {"SignedEntryTimestamp", "Payload": {"body", "integratedTime", "logIndex", "logID"}};
    the kind is the one the (signed) body names."""
    try:
        rekor = json.loads(annotation)
        payload = rekor["Payload"]
        body = json.loads(base64.b64decode(payload["body"], validate=True))
        entry = {
            "logIndex": str(payload["logIndex"]),
            "logId": {"keyId": base64.b64encode(bytes.fromhex(payload["logID"])).decode()},
            "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
            "integratedTime": str(payload["integratedTime"]),
            "inclusionPromise": {"signedEntryTimestamp": rekor["SignedEntryTimestamp"]},
            "canonicalizedBody": payload["body"],
        }
    except (ValueError, KeyError, TypeError, RecursionError, binascii.Error):
        raise ValueError("its bundle annotation is not a Rekor entry") from None
    if not all(isinstance(v, str) for v in (*entry["kindVersion"].values(), rekor["SignedEntryTimestamp"])):  # fmt: skip
        raise ValueError("its bundle annotation is not a Rekor entry")
    return entry


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
            found, others = self._pull_cosign(model.digest)
            if found is not None:
                return found
            what = f"no attestation for {model}"
            if candidates or others:
                what = f"no CycloneDX attestation for {model}, only others"
            raise NoAttestationError(
                f"{self.location} holds {what}",
                hint="sign the model's BOM with mlbom sign and push it with mlbom push",
            )

    def _pull_cosign(self, digest: str) -> tuple[Attestation | None, bool]:
        """The CycloneDX attestation in cosign's attestation image of `digest` (or None),
        and whether the image holds other attestations. Layers of other predicate types are
        other attestations of the model; two CycloneDX ones are refused (which is current
        cannot be told without trusting their order)."""
        tag = f"{tag_for(digest)}.att"
        try:
            manifest = self.client.manifest(self.repository, tag, accept=MANIFEST_TYPES)
        except RegistryError as e:
            if e.kind == "missing":
                return None, False
            raise
        layers = manifest.document.get("layers")
        if manifest.media_type in INDEX_TYPES or not isinstance(layers, list):
            raise CorruptEntryError(f"{self.location}: the tag {tag} is not an image manifest")
        if len(layers) > MAX_COSIGN_LAYERS:
            raise CorruptEntryError(
                f"{self.location}: the tag {tag} has {len(layers)} layers, more than "
                f"{MAX_COSIGN_LAYERS}",
                hint="replace the model's attestations (cosign attest --replace)",
            )
        found = []
        for position, value in enumerate(layers):
            annotations = value.get("annotations") if isinstance(value, dict) else None
            annotations = annotations if isinstance(annotations, dict) else {}
            if annotations.get(COSIGN_PREDICATE) != PREDICATE_TYPE:
                continue  # another attestation of the model (provenance, a scan, …)
            try:
                layer = descriptor(value, f"layer {position} of {tag}")
            except RegistryError as e:
                raise CorruptEntryError(f"{self.location}: {e.message}") from None
            if layer["mediaType"] != DSSE_MEDIA_TYPE:
                raise CorruptEntryError(
                    f"{self.location}: layer {position} of {tag} is no DSSE envelope"
                )
            found.append((layer, annotations))
        if not found:
            return None, bool(layers)
        if len(found) > 1:
            same = len({layer["digest"] for layer, _ in found}) == 1
            raise CorruptEntryError(
                f"{self.location}: the tag {tag} holds {len(found)} CycloneDX attestations"
                + (" of the same envelope" if same else ""),
                hint="keep one: cosign attest --replace",
            )
        layer, annotations = found[0]
        envelope = self._entry_blob(layer, f"the attestation in {tag}", tag)
        where, fix = f"the tag {tag}", "attest the model again with cosign attest --replace"
        try:
            bundle = cosign_bundle(envelope, annotations)
        except ValueError as e:
            raise self._unreadable(where, e, fix) from None
        return self._entry(bundle, where, fix), True

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
            bundle = self._entry_blob(
                layer, f"the bundle of referrer {digest}", f"referrer {digest}"
            )
        except RegistryError as e:
            if e.kind in ("unreachable", "auth", "failed"):
                raise
            raise CorruptEntryError(f"{self.location}: referrer {digest}: {e.message}") from None
        return self._entry(
            bundle, f"referrer {digest}", "delete the referrer and push the attestation again"
        )

    def _entry(self, bundle: bytes, where: str, fix: str) -> Attestation:
        """The attestation of a bundle read from the registry: a bundle whose BOM cannot be
        read is a corrupt entry (`where` holds it, `fix` says what to do)."""
        try:
            _, bom = bom_of(bundle)
        except ValueError as e:
            raise self._unreadable(where, e, fix) from None
        return Attestation(bom, bundle)

    def _unreadable(self, where: str, error: ValueError, fix: str) -> CorruptEntryError:
        return CorruptEntryError(
            f"{self.location}: {where} holds no readable attestation: {error}", hint=fix
        )

    def _entry_blob(self, layer: dict[str, Any], what: str, where: str) -> bytes:
        """An entry's blob, at most `MAX_ENTRY` bytes; what the registry sends that is not
        the blob it names makes the entry corrupt (failing to reach it does not)."""
        if layer["size"] > MAX_ENTRY:
            raise CorruptEntryError(f"{self.location}: {what} is larger than {MAX_ENTRY >> 20} MiB")
        try:
            return self.client.blob(self.repository, layer["digest"], layer["size"], MAX_ENTRY)
        except RegistryError as e:
            if e.kind in ("unreachable", "auth", "failed"):
                raise
            raise CorruptEntryError(f"{self.location}: {where}: {e.message}") from None

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
        if not (isinstance(entry.get("digest"), str) and SHA256_DIGEST.match(entry["digest"])):
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
