"""`generate`: a model (folder or file) in, a validated CycloneDX ML-BOM out.

source → files and digests → inspectors → facts → assembled BOM. The result renders
itself (`to_json`, `to_xml`, `write`), validating against the official schema each time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cyclonedx.model.bom import Bom

from mlbom import inspectors
from mlbom.bom.assemble import Extras, Manufacturer, assemble
from mlbom.bom.document import as_dict, render
from mlbom.errors import BadInputError, shown
from mlbom.files import write_atomically
from mlbom.hashing import DEFAULT_ALGORITHMS, HashCache, check_algorithms
from mlbom.inspectors.card import hub_url
from mlbom.models import Dataset, Environment, ModelFile, ModelInfo
from mlbom.progress import bar
from mlbom.references import HubRef
from mlbom.sources import SHA256_ONLY, open_source
from mlbom.sources.hub import HubCopy
from mlbom.sources.local import LocalSource

log = logging.getLogger(__name__)
INSPECT_WORKERS = 8


@dataclass
class GeneratedBom:
    """A model's ML-BOM: the library `Bom`, the ML fields it does not model, and what was
    found on the way (warnings, files that could not be inspected, unsafe imports)."""

    bom: Bom
    extras: Extras
    files: list[ModelFile]
    warnings: list[str] = field(default_factory=list)

    @property
    def unsafe_imports(self) -> dict[str, list[str]]:
        return {f.path: f.facts.unsafe_imports for f in self.files if f.facts.unsafe_imports}

    def render(self, fmt: str = "json", spec: str = "1.6") -> str:
        return render(self.bom, self.extras, fmt=fmt, spec=spec)

    def to_dict(self, spec: str = "1.6") -> dict[str, Any]:
        return as_dict(self.bom, self.extras, spec=spec)

    def write(self, path: Path, fmt: str = "json", spec: str = "1.6") -> None:
        write_atomically(path, self.render(fmt, spec))


def generate(
    model: str | Path,
    *,
    name: str | None = None,
    version: str | None = None,
    manufacturer: str | None = None,
    manufacturer_contact: str | None = None,
    algorithms: Iterable[str] | None = None,
    cache: bool = True,
    progress: bool = False,
    exclude: Iterable[Path] = (),
    verify_source: str | None = None,
    datasets: Iterable[str] = (),
    environment: Environment | None = None,
    insecure_registries: tuple[str, ...] = (),
    require_cc: Iterable[str] | None = None,
    gpu_cc: bool = False,
) -> GeneratedBom:
    """Build the ML-BOM of a local model folder or file, `hf://ORG/REPO[@REVISION]` or
    `oci://REGISTRY/REPO[:TAG|@DIGEST]`.

    `algorithms` defaults to SHA-256 and SHA-512; a Hub model's large files then carry the
    Hub's SHA-256 only, and naming the algorithms streams them to compute every one.
    `verify_source` (`hf://ORG/REPO@COMMIT`) checks a local copy against the Hub's digests
    and names the model after it. `datasets` (`NAME@REVISION`) pins the datasets the model
    was trained on; they and `environment` (`mlbom.environment`) go to the BOM's
    `formulation`. `exclude` names files and folders never to list (the BOM itself, a
    scratch folder): they are recorded in the BOM, so that verification skips exactly them;
    `insecure_registries` are OCI registries reached over plain HTTP. `require_cc` (TEEs,
    or empty for any) states that the model may only run in confidential computing, with
    confidential GPUs when `gpu_cc`: being inside the signed BOM, this cannot be stripped.
    Raises `BadInputError` for a model that cannot be read at all, `CheckFailedError` when
    files do not match the digests the Hub recorded.
    """
    chosen = check_algorithms(algorithms or DEFAULT_ALGORITHMS)
    cc_properties = _cc_properties(require_cc, gpu_cc)
    given_datasets = [parse_dataset(d) for d in datasets]
    if verify_source and "sha256" not in chosen:
        chosen = ("sha256", *chosen)  # the Hub records SHA-256: compare like with like
    complete = algorithms is not None
    source = open_source(
        str(model), exclude=tuple(exclude), insecure_registries=insecure_registries
    )
    if verify_source and not isinstance(source, LocalSource):
        raise BadInputError("--source checks a local copy: give a local folder as MODEL")
    hub_copy = HubCopy(HubRef.parse(verify_source)) if verify_source else None
    blobs = source.blobs()

    # Headers first: they are cheap, and a corrupt single file fails before any hashing.
    # Threads, because a remote header read waits on the network.
    context = inspectors.Context(paths=frozenset(b.path for b in blobs))
    with ThreadPoolExecutor(INSPECT_WORKERS) as pool:
        inspections = list(pool.map(lambda blob: inspectors.inspect(blob, context), blobs))
    warnings: list[str] = list(source.warnings)
    for blob, (inspection, _) in zip(blobs, inspections, strict=True):
        shown_path = shown(blob.path)
        if inspection.facts.error:
            if source.single_file:
                raise BadInputError(f"{shown_path}: {shown(inspection.facts.error)}")
            warnings.append(f"{shown_path} could not be inspected: {shown(inspection.facts.error)}")
        for found in inspection.facts.unsafe_imports:
            warnings.append(f"{shown_path}: {shown(_finding_text(found))}")

    hash_cache = HashCache() if cache else None
    try:
        total = source.bytes_to_read(chosen, complete=complete)
        with bar(total, "hashing", enabled=progress) as advance:
            digests = source.digests(chosen, cache=hash_cache, advance=advance, complete=complete)
    finally:
        if hash_cache:
            hash_cache.close()
    files = []
    for blob, (inspection, _) in zip(blobs, inspections, strict=True):
        inspection.facts.properties += blob.properties
        files.append(ModelFile(blob.path, blob.size, digests[blob.path], inspection.facts))
    if sha256_only := [f.path for f in files if SHA256_ONLY in dict(f.facts.properties)]:
        warnings.append(
            f"{len(sha256_only)} large files carry only the SHA-256 their source recorded: "
            "pass --hash sha256 --hash sha512 to stream them and add SHA-512"
        )

    identity = source.identity()
    if hub_copy:
        identity, missing = hub_copy.check(blobs, digests)
        warnings += missing

    info = ModelInfo()
    for inspection, _ in sorted(inspections, key=lambda item: item[1]):
        info.merge(inspection.info)
    for dataset in given_datasets:
        _pin_dataset(info, dataset)
    info.properties += cc_properties
    info.properties += [("mlbom:excluded", path) for path in source.excluded]
    manufacturer_entity = Manufacturer(manufacturer, manufacturer_contact) if manufacturer else None
    if given_datasets and environment is None:
        environment = Environment()  # the training step is still worth stating: its inputs
    bom, extras = assemble(
        files,
        info,
        identity,
        name=name,
        version=version,
        manufacturer=manufacturer_entity,
        environment=environment,
    )
    if not (version or bom.metadata.component.version):  # type: ignore[union-attr]
        warnings.append("no model version found in the card, config or source: pass --version")
    return GeneratedBom(bom, extras, files, warnings)


def _finding_text(found: str) -> str:
    """A finding as a warning line says it."""
    if found.startswith("<unscanned: "):
        return f"could not be fully scanned for code that runs on load ({found[12:-1]}): counted as unsafe"
    return f"runs {found} when loaded (unsafe)"


def parse_dataset(reference: str) -> Dataset:
    """`NAME@REVISION` (a Hub dataset id, `hf://datasets/ORG/NAME@REV`, or any name)."""
    body = reference.strip().removeprefix("hf://datasets/")
    name, _, revision = body.rpartition("@")
    if not name or not revision or len(reference) > 500 or any(c.isspace() for c in body):
        raise BadInputError(
            f"--dataset {reference!r}: expected NAME@REVISION",
            hint="for example --dataset stanfordnlp/sst2@8d51e7e (a commit, tag or version)",
        )
    return Dataset(name, revision=revision, url=hub_url(name, "datasets"))


def _pin_dataset(info: ModelInfo, given: Dataset) -> None:
    """The revision the user gave wins; what the card says about the dataset is kept."""
    for i, known in enumerate(info.datasets):
        if known.name.lower() == given.name.lower():
            info.datasets[i] = replace(known, revision=given.revision, url=known.url or given.url)
            return
    info.datasets.append(given)


TEES = ("sev-snp", "tdx")


def _cc_properties(tees: Iterable[str] | None, gpu: bool) -> list[tuple[str, str]]:
    """The model's confidential-computing requirement, as the admission webhook reads it."""
    if tees is None:
        if gpu:
            raise BadInputError("--gpu-cc needs --require-cc")
        return []
    chosen = list(dict.fromkeys(t.strip().lower() for t in tees if t.strip()))
    if unknown := [t for t in chosen if t not in TEES]:
        raise BadInputError(
            f"unknown TEE {', '.join(unknown)}", hint=f"choose from {', '.join(TEES)}"
        )
    props = [("mlbom:cc:required", "true")]
    props += [("mlbom:cc:tee", t) for t in chosen]
    props.append(("mlbom:cc:gpu", "true" if gpu else "false"))
    return props
