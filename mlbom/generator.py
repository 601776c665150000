"""`generate`: a model (folder or file) in, a validated CycloneDX ML-BOM out.

source → files and digests → inspectors → facts → assembled BOM. The result renders
itself (`to_json`, `to_xml`, `write`), validating against the official schema each time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cyclonedx.model.bom import Bom

from mlbom import inspectors
from mlbom.bom.assemble import Extras, Manufacturer, assemble
from mlbom.bom.document import as_dict, render, write_atomically
from mlbom.errors import BadInputError
from mlbom.hashing import DEFAULT_ALGORITHMS, HashCache, check_algorithms
from mlbom.models import ModelFile, ModelInfo
from mlbom.progress import bar
from mlbom.sources import open_source

log = logging.getLogger(__name__)


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
    algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
    cache: bool = True,
    progress: bool = False,
    exclude: Iterable[Path] = (),
) -> GeneratedBom:
    """Build the ML-BOM of a local model folder or single model file.

    `exclude` names files never to list (the BOM being written into the model folder).
    Raises `BadInputError` for a model that cannot be read at all.
    """
    chosen = check_algorithms(algorithms)
    source = open_source(str(model), exclude=tuple(exclude))
    blobs = source.blobs()

    # Headers first: they are cheap, and a corrupt single file fails before any hashing.
    context = inspectors.Context(paths=frozenset(b.path for b in blobs))
    inspections = [inspectors.inspect(blob, context) for blob in blobs]
    warnings: list[str] = []
    for blob, (inspection, _) in zip(blobs, inspections, strict=True):
        if inspection.facts.error:
            if source.single_file:
                raise BadInputError(f"{blob.path}: {inspection.facts.error}")
            warnings.append(f"{blob.path} could not be inspected: {inspection.facts.error}")
        for imported in inspection.facts.unsafe_imports:
            warnings.append(f"{blob.path} imports {imported} when unpickled (unsafe)")

    hash_cache = HashCache() if cache else None
    try:
        with bar(sum(b.size for b in blobs), "hashing", enabled=progress) as advance:
            digests = source.digests(chosen, cache=hash_cache, advance=advance)
    finally:
        if hash_cache:
            hash_cache.close()
    files = [
        ModelFile(blob.path, blob.size, digests[blob.path], inspection.facts)
        for blob, (inspection, _) in zip(blobs, inspections, strict=True)
    ]

    info = ModelInfo()
    for inspection, _ in sorted(inspections, key=lambda item: item[1]):
        info.merge(inspection.info)
    manufacturer_entity = Manufacturer(manufacturer, manufacturer_contact) if manufacturer else None
    bom, extras = assemble(
        files, info, source.identity(), name=name, version=version, manufacturer=manufacturer_entity
    )
    if not (version or bom.metadata.component.version):  # type: ignore[union-attr]
        warnings.append("no model version found in the card, config or source: pass --version")
    return GeneratedBom(bom, extras, files, warnings)
