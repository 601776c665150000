"""mlbom: supply-chain security for machine-learning models.

`mlbom.generate(model)` returns a model's CycloneDX ML-BOM. Heavy libraries load only
when they are used, so that `import mlbom` and `mlbom --help` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mlbom.generator import GeneratedBom, generate

__all__ = ["GeneratedBom", "__version__", "generate"]


def __getattr__(name: str) -> Any:
    if name in ("generate", "GeneratedBom"):
        from mlbom import generator

        return getattr(generator, name)
    raise AttributeError(f"module 'mlbom' has no attribute {name!r}")
