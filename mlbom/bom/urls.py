"""URLs written into a BOM must be valid IRIs; anything else stays out of URL fields."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

NOT_IN_IRI = re.compile(r"[\s<>\"{}|\\^`\x00-\x1f\x7f]")


def safe_url(value: str | None) -> str | None:
    """`value` when it is an absolute http(s) URL with nothing an IRI forbids, else None."""
    if not value or len(value) > 2000 or NOT_IN_IRI.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.netloc else None
