"""The data mlbom gathers about a model before it becomes a BOM.

Sources say which files a model has and their digests; inspectors read what each file
says about itself (`FileFacts`) and about the model (`ModelInfo`). The BOM is assembled
from these alone, so every source (local folder, Hub, OCI) yields the same BOM content.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Dataset:
    """A dataset the model was trained or evaluated on."""

    name: str
    role: str = "training"  # training | evaluation
    revision: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class BaseModel:
    """A model this one derives from (pedigree ancestor)."""

    name: str
    relation: str | None = None  # finetune | adapter | quantized | merge | …
    version: str | None = None
    url: str | None = None
    inferred: bool = False  # guessed from config `_name_or_path`, not declared


@dataclass(frozen=True)
class Metric:
    """One evaluation result from the card's model-index."""

    type: str
    value: str
    slice: str | None = None


@dataclass
class Considerations:
    users: list[str] = field(default_factory=list)
    use_cases: list[str] = field(default_factory=list)
    technical_limitations: list[str] = field(default_factory=list)
    ethical_considerations: list[tuple[str, str | None]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


@dataclass
class ModelInfo:
    """What the model says about itself. Inspectors fill it in precedence order:
    a value already set is kept, lists are merged without duplicates."""

    name: str | None = None
    version: str | None = None
    description: str | None = None
    licenses: list[str] = field(default_factory=list)  # SPDX ids/expressions or names
    license_url: str | None = None
    task: str | None = None
    # who made the model (an author, a person or organisation) and the organisation it
    # was made by or for; the BOM's manufacturer and supplier unless the user names one
    author: str | None = None
    organization: str | None = None
    architecture_family: str | None = None
    architectures: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    datasets: list[Dataset] = field(default_factory=list)
    base_models: list[BaseModel] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    considerations: Considerations = field(default_factory=Considerations)
    tags: list[str] = field(default_factory=list)
    properties: list[tuple[str, str]] = field(default_factory=list)

    def merge(self, other: ModelInfo) -> None:
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, list):
                names = {_identity(x) for x in mine}
                mine.extend(x for x in theirs if _identity(x) not in names)
            elif isinstance(mine, Considerations):
                if not mine:
                    setattr(self, f.name, theirs)
            elif mine is None:
                setattr(self, f.name, theirs)


def _identity(item: object) -> object:
    """Datasets and base models are the same entry when their names are (first one wins)."""
    if isinstance(item, Dataset | BaseModel):
        return (type(item), item.name.lower())
    return item


@dataclass
class FileFacts:
    """What inspecting one file found. `error` is set when the file could not be inspected."""

    format: str | None = None
    parameter_count: int | None = None
    executable: bool = False
    archive: bool = False
    structured: bool = False
    unsafe_imports: list[str] = field(default_factory=list)
    properties: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None


@dataclass
class ModelFile:
    """One file of the model: its path relative to the model root, size and digests."""

    path: str
    size: int
    digests: dict[str, str]
    facts: FileFacts = field(default_factory=FileFacts)


@dataclass
class Identity:
    """What the source itself knows about the model (beats the card, loses to the user)."""

    name: str | None = None
    version: str | None = None
    purl: str | None = None
    url: str | None = None
    properties: list[tuple[str, str]] = field(default_factory=list)
    fallback_name: str | None = None  # a folder or file name: used when nothing names the model


@dataclass
class Package:
    """A Python distribution of the training environment, installed or pinned by a lock file."""

    name: str  # normalized (PEP 503)
    version: str | None = None
    purl: str | None = None
    # (mlbom algorithm, hex digest) pairs: a lock file pins one digest per wheel and sdist.
    hashes: list[tuple[str, str]] = field(default_factory=list)
    url: str | None = None  # a direct reference (`name @ url`), without credentials
    properties: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Gpu:
    """Identical GPUs of the training machine."""

    model: str
    memory: str | None = None  # as nvidia-smi reports it, e.g. "81920 MiB"
    count: int = 1


@dataclass(frozen=True)
class TrainingCode:
    """The git checkout the training ran from."""

    name: str  # the repository's name
    commit: str
    url: str | None = None  # remote.origin.url without credentials, query or fragment
    branch: str | None = None
    dirty: bool | None = None  # tracked files differ from the commit; None: not known


@dataclass(frozen=True)
class RequirementsFile:
    """The requirements or lock file an environment was read from."""

    name: str  # the file name only, never its path
    sha256: str
    format: str  # requirements | uv.lock | poetry.lock | pylock.toml | Pipfile.lock


@dataclass
class Environment:
    """Where the model was made: the training step's interpreter, system, packages, GPUs and
    code, or what a requirements or lock file pins. Unknown facts stay None or empty."""

    python_implementation: str | None = None  # CPython, PyPy, …
    python_version: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    kernel: str | None = None
    machine: str | None = None  # x86_64, arm64, …
    packages: list[Package] = field(default_factory=list)
    gpus: list[Gpu] = field(default_factory=list)
    nvidia_driver: str | None = None
    cuda_version: str | None = None
    cuda_reported_by: str | None = None  # nvidia-smi (the driver's CUDA) | nvcc (the toolkit)
    code: TrainingCode | None = None
    requirements: RequirementsFile | None = None
    properties: list[tuple[str, str]] = field(default_factory=list)
