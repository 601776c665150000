"""Validating a CycloneDX JSON document against the official schema, at the same cost whatever
else is installed.

The schemas are the ones cyclonedx-python-lib ships (its package resources: the BOM schema of
each version and the SPDX, JSF and cryptography-definitions schemas they reference), so mlbom
validates against exactly what the library's `JsonStrictValidator` uses. The validator is
jsonschema-rs, not jsonschema: importing `jsonschema` imports every format library that
happens to be installed (with cyclonedx-bom beside mlbom, `rfc3987-syntax` alone builds a
grammar for about a second on every run), and no option of jsonschema avoids that import.

Formats: the bundled schemas use exactly `date-time`, `date`, `idn-email`, `iri-reference` and
`uri` (jsf). The first three are checked as the library's validator checks them (jsonschema's
own checks, with `rfc3339-validator` for date-time); `iri-reference` and `uri` are checked by
jsonschema-rs (RFC 3987 / RFC 3986), which agrees with `rfc3987-syntax`, the checker
jsonschema uses next to cyclonedx-bom, except that it also accepts IPv6 literal hosts, as the
RFC does. Two deliberate differences from the library where its Python regular expressions
are laxer than the JSON Schema (ECMA-262) meaning: a `pattern` ending in `$` and a date-time
do not accept a trailing newline.

One validator is built per CycloneDX version and kept for the process (a few milliseconds).
Nothing is fetched: a `$ref` to a schema that is not bundled is an error. The one validator of
CycloneDX JSON in mlbom: generation checks what it writes, the audit what it reads.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import date
from importlib import resources
from typing import TYPE_CHECKING, Any

from mlbom.untrusted import as_dict

if TYPE_CHECKING:
    import jsonschema_rs

#: The CycloneDX JSON schema of each version mlbom validates, as named in the library's
#: resources: the versions it writes (1.6, 1.7) and 1.5, which the audit accepts in BOMs that
#: other tools made.
SCHEMAS = {
    "1.5": "bom-1.5.SNAPSHOT.schema.json",
    "1.6": "bom-1.6.SNAPSHOT.schema.json",
    "1.7": "bom-1.7.SNAPSHOT.schema.json",
}
#: Schemas the BOM schemas reference, under the URIs the library registers them at.
_REFERENCED = ("spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json",
               "cryptography-defs.SNAPSHOT.schema.json")  # fmt: skip
_BASE = "http://cyclonedx.org/schema/"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _is_date_time(value: str) -> bool:
    """RFC 3339 date-time, as jsonschema checks it with rfc3339-validator (`t`/`z` allowed)."""
    from rfc3339_validator import validate_rfc3339

    return not value.endswith("\n") and bool(validate_rfc3339(value.upper()))


def _is_date(value: str) -> bool:
    """RFC 3339 full-date, as jsonschema checks it."""
    try:
        return bool(_DATE.fullmatch(value)) and bool(date.fromisoformat(value))
    except ValueError:
        return False


def _is_email(value: str) -> bool:
    """jsonschema's check for `idn-email` (and `email`): an `@` somewhere."""
    return "@" in value


#: The formats checked in Python, as the library's validator checks them; `iri-reference` and
#: `uri` are left to jsonschema-rs's own checks.
FORMATS = {"date-time": _is_date_time, "date": _is_date, "idn-email": _is_email}
#: Every format the bundled schemas use; tests/mlbom/bom/test_validate.py fails when that set changes.
CHECKED_FORMATS = frozenset({*FORMATS, "iri-reference", "uri"})


def validation_error(document: str | Any, spec: str | None = None) -> str | None:
    """None when `document` (JSON text, or the parsed value) is a valid CycloneDX `spec`
    BOM, else the first violation: where it is (a JSON pointer into the document) and what is
    wrong. Strict: properties the schema does not define are violations. Without `spec`, the
    document's own `specVersion` says which schema, and a version without one is the error."""
    instance = json.loads(document) if isinstance(document, str) else document
    if spec is None:
        stated = as_dict(instance).get("specVersion")
        spec = str(stated)
        if spec not in SCHEMAS:
            return f"unsupported CycloneDX specVersion {stated!r}"
    error = next(_validator(spec).iter_errors(instance), None)
    if error is None:
        return None
    where = "/" + "/".join(str(p) for p in error.instance_path) if error.instance_path else "/"
    return f"at {where}: {_shorten(error.message)}"


def _shorten(message: str, limit: int = 500) -> str:
    """A violation's message without a whole subdocument quoted in it."""
    return message if len(message) <= limit else message[: limit - 1] + "…"


@functools.cache
def _validator(spec: str) -> jsonschema_rs.Validator:
    import jsonschema_rs

    name = SCHEMAS.get(spec)
    if name is None:
        raise ValueError(f"no bundled CycloneDX schema for version {spec}")
    bundled = resources.files("cyclonedx.schema") / "_res"
    registry = jsonschema_rs.Registry(
        [(_BASE + n, json.loads((bundled / n).read_text("utf-8"))) for n in _REFERENCED],
        retriever=_refuse,
    )
    return jsonschema_rs.Draft7Validator(
        json.loads((bundled / name).read_text("utf-8")),
        registry=registry,
        retriever=_refuse,
        validate_formats=True,
        formats=FORMATS,
    )


def _refuse(uri: str) -> Any:
    raise LookupError(f"{uri} is not a bundled schema: mlbom fetches no schema")
