"""Attestation stores: where a model's signed ML-BOM lives, found by the model's reference.

One interface, one module per kind: a local folder (`folder.py`, the embedded default; in a
cluster a mounted volume), an OCI registry (`oci.py`, the bundle as an OCI 1.1 referrer of
the model's manifest, as cosign does), and the model's own Hub repository (`hub.py`).

A store holds, per model, the BOM and its Sigstore bundle. What goes wrong is told apart,
because the admission webhook must tell "no attestation" from "store unreachable":
`NoAttestationError`, `StoreUnreachableError`, `StoreAuthError`, `CorruptEntryError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbom.errors import BadInputError, CheckFailedError, MlbomError, NotVerifiedError
from mlbom.references import ModelRef

if TYPE_CHECKING:
    from attest.verify import ExpectedSigner, Verification

BOM_NAME = "mlbom.cdx.json"
BUNDLE_NAME = "mlbom.cdx.json.sigstore.json"
MAX_ENTRY = 256 << 20  # a BOM or a bundle


@dataclass(frozen=True)
class Attestation:
    """A BOM (CycloneDX JSON bytes) and the Sigstore bundle that signs it."""

    bom: bytes
    bundle: bytes


class NoAttestationError(CheckFailedError):
    """The store answered: it holds nothing for this model (exit 1)."""


class CorruptEntryError(CheckFailedError):
    """The store holds something for the model, but not a readable attestation (exit 1)."""


class StoreUnreachableError(MlbomError):
    """The store could not be asked: network, DNS, TLS, a missing folder (exit 2)."""


class StoreAuthError(MlbomError):
    """The store refused the credentials, or there were none (exit 2)."""


class Store(ABC):
    """Where attestations live."""

    #: the store as the user named it, for messages
    location: str

    @abstractmethod
    def push(self, ref: ModelRef, attestation: Attestation) -> str:
        """Store the attestation of the pinned `ref`; returns where it now is."""

    @abstractmethod
    def pull(self, ref: ModelRef) -> Attestation:
        """The attestation of the pinned `ref`, or `NoAttestationError`."""

    def models(self) -> list[ModelRef]:
        """The models the store holds attestations for, where it can list them."""
        raise BadInputError(f"{self.location} cannot list its models")


def can_hold(location: str, ref: ModelRef) -> bool:
    """Whether the store `location` can hold the attestation of `ref` at all: a Hub store
    only its own repository's commits; an OCI store or a folder any model (an OCI artifact
    as a referrer, another model under a tag)."""
    if location.startswith("hf://"):
        return ref.kind == "hf" and ref.name.lower() == location.removeprefix("hf://").lower()
    return location.startswith("oci://") or "://" not in location


def open_store(location: str, *, insecure_registries: tuple[str, ...] = ()) -> Store:
    """The store `location` names: `oci://REGISTRY/REPO`, `hf://ORG/REPO`, or a folder."""
    if location.startswith("oci://"):
        from attest.stores.oci import OciStore

        return OciStore(location, insecure_registries=insecure_registries)
    if location.startswith("hf://"):
        from attest.stores.hub import HubStore

        return HubStore(location)
    if "://" in location:
        raise BadInputError(
            f"unsupported store {location}",
            hint="give a folder, oci://REGISTRY/REPO or hf://ORG/REPO",
        )
    from attest.stores.folder import FolderStore

    return FolderStore(Path(location))


def bom_reference(bom: dict[str, Any]) -> ModelRef:
    """The model a BOM describes, as stores key it: the Hub repository and commit or the OCI
    manifest of its purl, else (a local folder's BOM) the digest over its files' SHA-256s,
    the same value model_signing and `mlbom.sources.pin` give the folder."""
    from packageurl import PackageURL

    from attest.statement import file_subjects, oci_subject
    from mlbom.bom import read
    from mlbom.hashing import folder_digest

    purl = read.model(bom).get("purl")
    if isinstance(purl, str) and purl.startswith("pkg:huggingface/"):
        parsed = PackageURL.from_string(purl)
        name = f"{parsed.namespace}/{parsed.name}" if parsed.namespace else parsed.name
        if parsed.version:
            return ModelRef("hf", name, parsed.version.lower())
    if artifact := oci_subject(bom):
        return ModelRef("oci", artifact["name"], "sha256:" + artifact["digest"]["sha256"])
    subjects = file_subjects(bom)
    digest = "sha256:" + folder_digest({s["name"]: s["digest"]["sha256"] for s in subjects})
    return ModelRef("local", digest, digest)


def describes(bom: dict[str, Any], ref: ModelRef) -> bool:
    """The BOM is about this very model: its Hub commit or OCI manifest, or for a model
    filed by the digest of its files, those files."""
    found = bom_reference(bom)
    if found.kind == ref.kind == "local":  # a folder's key: its name may be a path
        return found.digest == ref.digest
    if (found.kind, found.name.lower(), found.digest) == (ref.kind, ref.name.lower(), ref.digest):
        return True
    if ref.kind == found.kind == "hf" and ref.name.lower() == found.name.lower():
        return _hub_attestation_commit(bom, ref)
    if ref.kind == "oci" and found.kind == "local":  # a folder's BOM pushed under the artifact
        from attest.statement import file_subjects
        from mlbom._clients.registry import manifest_files

        files = {s["name"]: s["digest"]["sha256"] for s in file_subjects(bom)}
        try:
            return manifest_files(ref) == files
        except MlbomError:
            return False
    return False


def _hub_attestation_commit(bom: dict[str, Any], ref: ModelRef) -> bool:
    """A Hub store commits the BOM of commit C on top of C: the commit `ref` names is then
    the BOM's model when it holds exactly the BOM's files with their SHA-256, besides the
    attestation's own two files (and the paths the BOM records as excluded)."""
    from attest.statement import excluded_paths, file_subjects
    from mlbom._clients.hub import Hub
    from mlbom.references import HubRef

    try:
        hub = Hub(HubRef(ref.name, ref.digest))
        listed = hub.sha256s([f for f in hub.resolve() if f.path not in (BOM_NAME, BUNDLE_NAME)], 64 << 20)  # fmt: skip
    except MlbomError:
        return False
    skipped = set(excluded_paths(bom))
    signed = {s["name"]: s["digest"]["sha256"] for s in file_subjects(bom)}
    return signed == {p: d for p, d in listed.items() if p not in skipped}


def entries(
    stores: Iterable[Store], ref: ModelRef
) -> Iterator[tuple[Store, Attestation | MlbomError]]:
    """Each store's entry for `ref`, in order: the attestation, or the error that leaves it
    unusable (the store unreachable or refusing access, a corrupt entry). A store without an
    entry, or one that cannot hold this kind of model (a Hub store of another repository),
    is passed over."""
    for store in stores:
        try:
            found: Attestation | MlbomError = store.pull(ref)
        except (NoAttestationError, BadInputError):
            continue
        except (StoreUnreachableError, StoreAuthError, CorruptEntryError) as e:
            found = e
        yield store, found


def push(
    bom: Path,
    bundle: Path,
    store: str | Store,
    *,
    model: str | ModelRef | None = None,
    insecure_registries: tuple[str, ...] = (),
) -> tuple[ModelRef, str]:
    """File the BOM and its bundle in `store` under the model (by default the BOM's own:
    its Hub commit, OCI manifest or the digest of its files). A bundle that does not sign
    this BOM, or an OCI model whose layers are not the BOM's files, is refused before
    anything travels. Returns the model's pinned reference and where the entry went."""
    from attest.statement import MAX_BOM, file_subjects, parse_bom
    from attest.verify import attested_bom, read_bundle
    from mlbom.files import read_bounded
    from mlbom.sources import pin

    bom_bytes = read_bounded(bom, MAX_BOM)
    document = parse_bom(bom_bytes, str(bom))
    raw = read_bundle(bundle)
    attested_bom(raw, document)
    ref = pin(model, insecure_registries=insecure_registries) if model else bom_reference(document)
    if model and ref.kind == "oci":  # a folder's BOM filed under an OCI model
        from mlbom._clients.registry import manifest_files

        layers = manifest_files(ref, insecure_registries=insecure_registries)
        files = {s["name"]: s["digest"]["sha256"] for s in file_subjects(document)}
        if layers != files:
            differ = sorted(n for n in set(layers) | set(files) if layers.get(n) != files.get(n))
            raise BadInputError(
                f"the layers of {ref} are not the BOM's files: {', '.join(differ[:10])}",
                hint="push the attestation of the BOM generated for this model",
            )
    opened = (
        open_store(store, insecure_registries=insecure_registries)
        if isinstance(store, str)
        else store
    )
    return ref, opened.push(ref, Attestation(bom_bytes, raw))


def attestation_for(
    model: str | ModelRef, store: str | Store, *, insecure_registries: tuple[str, ...] = ()
) -> tuple[ModelRef, Attestation]:
    """The attestation of the model `model` names, from `store`: the library call the
    admission webhook makes. The store is opened, then the reference pinned (a tag or branch
    resolved, a folder hashed); raises the store errors, each telling what went wrong."""
    from mlbom.sources import pin

    opened = (
        open_store(store, insecure_registries=insecure_registries)
        if isinstance(store, str)
        else store
    )  # a store mlbom cannot open is refused before a folder is hashed or a remote asked
    ref = pin(model, insecure_registries=insecure_registries)
    return ref, opened.pull(ref)


def verify_stored(
    reference: str | ModelRef,
    store: str | Store,
    signer: ExpectedSigner,
    *,
    insecure_registries: tuple[str, ...] = (),
    trusted_root: Path | None = None,
    trust_config: Path | None = None,
    staging: bool = False,
    offline: bool = False,
    model: Path | None = None,
) -> tuple[ModelRef, Verification]:
    """The attestation of the model `reference` names, from `store`, verified as
    `attest.verify.verify` does (with its trust options, and `model`, the folder to re-hash)
    and bound to the model: an entry filed under it that describes another is refused."""
    from attest.statement import parse_bom
    from attest.verify import verify

    ref, attestation = attestation_for(reference, store, insecure_registries=insecure_registries)
    document = parse_bom(attestation.bom, f"the BOM of {ref}")
    result = verify(
        document,
        attestation.bundle,
        signer,
        trusted_root=trusted_root,
        trust_config=trust_config,
        staging=staging,
        offline=offline,
        model=model,
    )
    if not describes(document, ref):
        raise NotVerifiedError(
            "subjects",
            f"the attestation filed under {ref} in {store} describes "
            f"{bom_reference(document)}, not this model",
        )
    return ref, result
