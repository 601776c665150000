"""Reading parsed JSON or YAML that anyone may have written (a BOM, a bundle, a pod spec, a
policy): any value may have any type, so each read says what it expects and gets an empty
value of that type otherwise. One home for these readers: every layer above uses them."""

from __future__ import annotations

from typing import Any


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
