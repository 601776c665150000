"""What the BSI, G7 and CRA parts of the audit checks share: the record of one check, the
fixes mlbom's own flags give, and readers of what a BOM says about contacts, references and
hashes (over mlbom.bom.read, the one reader of a parsed BOM)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from mlbom.bom import read
from mlbom.untrusted import as_dict as _dict
from mlbom.untrusted import as_list as _list

Status = Literal["pass", "fail", "n/a"]
Level = Literal["required", "additional", "optional"]


@dataclass(frozen=True)
class Check:
    """One requirement checked against one BOM (or one of its components)."""

    id: str
    title: str
    status: Status
    detail: str
    fix: str | None = None
    subject: str | None = None
    level: Level = "required"


# -- fixes, as mlbom flags where one exists -------------------------------------------------

FIX_MAKER = "generate with --manufacturer NAME --manufacturer-contact EMAIL_OR_URL"
FIX_CONTACT = "generate with --manufacturer-contact EMAIL_OR_URL"
FIX_VERSION = "generate with --version VERSION"
FIX_NAME = "generate with --name NAME"
FIX_SHA512 = "generate with --hash sha256 --hash sha512"
FIX_SPEC = "generate with --spec-version 1.6 (or 1.7)"
FIX_AGAIN = "generate the BOM again with mlbom generate"
FIX_LICENCE = (
    "state the licence in the model card's `license:` as an SPDX identifier or expression "
    "(LicenseRef-NAME for a licence SPDX does not list) and generate again"
)
FIX_DATASET = "generate with --dataset NAME@REVISION"
FIX_ENV = "generate with --env (or --requirements FILE) where the model was trained"
FIX_SOURCE = "generate from hf://ORG/REPO@COMMIT or oci://…, or with --source hf://ORG/REPO@COMMIT"

HEX = re.compile(r"^[0-9a-fA-F]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def property_texts(component: Mapping[str, Any]) -> dict[str, list[str]]:
    """A component's properties by name, as the checks show them: a property that states no
    value reads as the empty string."""
    return {name: [v or "" for v in values] for name, values in read.properties(component).items()}


def reference_urls(component: Mapping[str, Any], types: tuple[str, ...]) -> list[str]:
    return [
        str(r["url"])
        for r in _list(component.get("externalReferences"))
        if isinstance(r, dict) and r.get("type") in types and r.get("url")
    ]


def hash_algorithms(component: Mapping[str, Any]) -> list[str]:
    """The algorithms of the hashes that give a digest."""
    return [str(h.alg) for h in read.hashes(component) if h.content]


def reachable(entity: Any, where: str) -> str | None:
    """An organisation's e-mail (preferred, as TR-03183-2 asks) or URL, described."""
    entity = _dict(entity)
    for contact in _list(entity.get("contact")):
        email = _dict(contact).get("email")
        if isinstance(email, str) and _EMAIL.match(email):
            return f"{where}.contact: {email}"
    for url in _list(entity.get("url")):
        if isinstance(url, str) and _is_url(url):
            return f"{where}.url: {url}"
    return None


def authors_email(authors: Any, where: str) -> str | None:
    for author in _list(authors):
        email = _dict(author).get("email")
        if isinstance(email, str) and _EMAIL.match(email):
            return f"{where}: {email} (TR-03183-2 §8.2 maps the creator to manufacturer)"
    return None


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


def parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
