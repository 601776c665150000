"""Field-by-field checks of one ML-BOM (a CycloneDX JSON document, as parsed), and the CRA
points the audit export can give evidence for, one module per source:

- `bsi`: BSI TR-03183-2 v2.1.0, the SBOM fields a manufacturer must give (pass or fail);
- `g7`: the G7 minimum elements of an SBOM for AI (what the BOM shows, no verdict);
- `cra`: Regulation (EU) 2024/2847, Annex I Part II and Annex VII (evidence, partial, gap);
- `common`: the check record, the fixes and the readers the first two share.
"""

from __future__ import annotations

from mlbom.audit.checks.bsi import bsi_checks, bsi_passes, summarize
from mlbom.audit.checks.common import Check, Level, Status
from mlbom.audit.checks.cra import CraFacts, CraPoint, cra_points
from mlbom.audit.checks.g7 import g7_checks

__all__ = [
    "Check",
    "CraFacts",
    "CraPoint",
    "Level",
    "Status",
    "bsi_checks",
    "bsi_passes",
    "cra_points",
    "g7_checks",
    "summarize",
]
