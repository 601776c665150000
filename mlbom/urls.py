"""URLs written into a BOM must be valid IRIs without credentials; anything else stays out
of URL fields."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

NOT_IN_IRI = re.compile(r"[\s<>\"{}|\\^`\x00-\x1f\x7f]")
_SCP_LIKE = re.compile(r"^(?:[^@/:\s]+@)?(?P<host>[A-Za-z0-9][A-Za-z0-9.-]+):(?!//)(?P<path>\S+)$")


def safe_url(value: str | None) -> str | None:
    """`value` when it is an absolute http(s) URL with nothing an IRI forbids, else None."""
    if not value or len(value) > 2000 or NOT_IN_IRI.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def strip_credentials(url: object) -> str | None:
    """A remote or download URL fit for a BOM: user, password, query and fragment dropped
    (that is where tokens live), an scp-like git remote (`git@host:org/repo`) made an ssh://
    URL. None for a local path, a file: URL, or anything an IRI may not hold."""
    if not isinstance(url, str) or not url.strip():
        return None
    url = url.strip()
    if "://" not in url and (scp := _SCP_LIKE.match(url)):
        url = f"ssh://{scp['host']}/{scp['path'].lstrip('/')}"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not parts.scheme or not host or parts.scheme.lower() == "file":
        return None
    host = f"[{host}]" if ":" in host else host
    clean = urlunsplit(
        (parts.scheme.lower(), f"{host}:{port}" if port else host, parts.path, "", "")
    )
    return None if len(clean) > 2000 or NOT_IN_IRI.search(clean) else clean
