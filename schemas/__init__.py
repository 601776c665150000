"""The JSON Schemas mlbom owns, shipped inside the wheel."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any


def load(name: str) -> dict[str, Any]:
    """The schema `name` (for example `policy.schema.json`) as a dict."""
    return json.loads(files(__name__).joinpath(name).read_text(encoding="utf-8"))
