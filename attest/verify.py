"""`verify`: is this BOM what the bundle's signer attested, and (optionally) is the model
on disk what the BOM lists? The checks run in a fixed order and the first to fail is named:

1. `bundle`   the signature verifies: certificate chain, SCT, transparency-log inclusion and
              signed time for keyless bundles; the named public key for key bundles;
2. `identity` the certificate's identity and OIDC issuer match exactly (or the anchored
              regular expression);
3. `payload`  the payload is an in-toto Statement v1 with the CycloneDX predicate type;
4. `bom`      the predicate equals the BOM given, after RFC 8785 canonicalisation;
5. `subjects` the subjects equal the BOM's files and SHA-256 digests;
6. `model`    with a model folder: every file re-hashed equals its subject.

There is no mode without a key or an identity: a bundle is always checked against one.

Bundles made by cosign verify too. cosign's statements are in-toto Statement v0.1 with one
subject, the image's manifest: the BOM must name that manifest (its `pkg:oci` purl). Its
Rekor entries are often of kind `intoto` 0.0.2, and its v2 registry layout carries only the
log's promise (the SignedEntryTimestamp), no inclusion proof (`attest.stores.oci` turns that
layout into a bundle v0.1). sigstore-python verifies neither, so mlbom does
(`attest.transparency`).

Keyless bundles are checked in `attest.keyless`, DSSE envelopes read and key signatures
checked in `attest.dsse`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest import dsse, keys
from attest.keyless import sigstore_verifier, verify_keyless
from attest.statement import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    Subject,
    canonical,
    excluded_paths,
    file_subjects,
    oci_subject,
    subjects,
)
from mlbom.errors import BadInputError, NotVerifiedError
from mlbom.files import read_bounded

CHECKS = ("bundle", "identity", "payload", "bom", "subjects", "model")
MAX_BUNDLE = 64 << 20
#: the in-toto statement cosign writes (in-toto-golang's StatementInTotoV01); same fields
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
STATEMENT_TYPES = (STATEMENT_TYPE, STATEMENT_V01)


@dataclass(frozen=True)
class ExpectedSigner:
    """Who the bundle must be signed by: a public key, or an identity and its issuer."""

    key: keys.PublicKey | None = None
    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None

    def __post_init__(self) -> None:
        keyless = self.identity is not None or self.identity_regexp is not None
        if self.key is not None and (keyless or self.issuer):
            raise BadInputError("give either a key or an identity and issuer, not both")
        if self.key is None and not (keyless and self.issuer):
            raise BadInputError(
                "a bundle is only verified against a signer",
                hint="give --key PUBLIC_KEY.pem, or --cert-identity (or "
                "--cert-identity-regexp) with --cert-oidc-issuer",
            )
        if self.identity is not None and self.identity_regexp is not None:
            raise BadInputError("give --cert-identity or --cert-identity-regexp, not both")
        if self.identity_regexp is not None:
            try:
                re.compile(self.identity_regexp)
            except re.error as e:
                raise BadInputError(
                    f"--cert-identity-regexp is not a regular expression: {e}"
                ) from None


@dataclass
class Verification:
    """What was verified: the signer as the bundle proves it, the statement's subjects,
    and the checks passed, in order."""

    signer: str
    issuer: str | None
    subjects: list[Subject]
    passed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verified": True,
            "signer": self.signer,
            "issuer": self.issuer,
            "checks": [{"name": c, "ok": True} for c in self.passed],
            "subjects": self.subjects,
        }


def verify(
    bom: dict[str, Any],
    bundle: bytes | str,
    signer: ExpectedSigner,
    *,
    trusted_root: Path | None = None,
    trust_config: Path | None = None,
    staging: bool = False,
    offline: bool = False,
    model: Path | None = None,
    model_exclude: tuple[Path, ...] = (),
) -> Verification:
    """Run the checks; raises `NotVerifiedError` naming the first that fails."""
    document = parse_bundle(bundle)
    if signer.key is not None:
        payload_type, payload = _verify_with_key(document, signer.key)
        result = Verification(f"key {keys.hint(signer.key)}", None, [], ["bundle"])
    else:
        payload_type, payload, identity = verify_keyless(
            bundle,
            document,
            signer,
            sigstore_verifier(trusted_root, trust_config, staging, offline),
        )
        result = Verification(identity, signer.issuer, [], ["bundle", "identity"])
    statement = in_toto_statement(payload_type, payload, statement_types=STATEMENT_TYPES)
    result.passed.append("payload")
    if canonical(statement["predicate"]) != canonical(bom):
        serial = statement["predicate"].get("serialNumber")
        raise NotVerifiedError("bom", f"the bundle attests another BOM (serial number {serial})")
    result.passed.append("bom")
    result.subjects = _attested_subjects(statement["subject"], bom)
    result.passed.append("subjects")
    if model is not None:
        recorded = tuple(model / p for p in excluded_paths(bom)) if model.is_dir() else ()
        check_model(model, file_subjects(bom), (*model_exclude, *recorded))
        result.passed.append("model")
    return result


def attested_bom(bundle: bytes | str, bom: dict[str, Any]) -> None:
    """Refuse a bundle whose statement is not over `bom`. No signature is checked: this is
    a consistency check before publishing, not a verification."""
    try:
        envelope = parse_bundle(bundle).get("dsseEnvelope")
        payload = dsse.b64decode(envelope["payload"])  # type: ignore[index]
        statement = in_toto_statement(
            envelope["payloadType"],  # type: ignore[index]
            payload,
            statement_types=STATEMENT_TYPES,
        )
    except (KeyError, TypeError, ValueError, NotVerifiedError):  # binascii.Error: a ValueError
        raise BadInputError("the bundle holds no in-toto statement over a CycloneDX BOM") from None
    if canonical(statement["predicate"]) != canonical(bom):
        raise BadInputError(
            "the bundle attests another BOM", hint="give the bundle `mlbom sign` wrote for it"
        )


# -- the signature ----------------------------------------------------------------------------


def read_bundle(path: Path, what: str = "the bundle") -> bytes:
    """A bundle from disk, at most one byte more than one may hold: `parse_bundle` refuses
    the rest with its own words."""
    return read_bounded(path, MAX_BUNDLE + 1, what)


def parse_bundle(bundle: bytes | str) -> dict[str, Any]:
    """The bundle's JSON document, of bounded size, with a Sigstore bundle media type."""
    if len(bundle) > MAX_BUNDLE:
        raise NotVerifiedError("bundle", f"the bundle is larger than {MAX_BUNDLE >> 20} MiB")
    try:
        document = json.loads(bundle)
    except (ValueError, RecursionError) as e:
        raise NotVerifiedError("bundle", f"the bundle is not JSON ({e})") from None
    if not isinstance(document, dict) or not str(document.get("mediaType", "")).startswith(
        "application/vnd.dev.sigstore.bundle"
    ):
        raise NotVerifiedError("bundle", "not a Sigstore bundle (no bundle mediaType)")
    return document


def _verify_with_key(document: dict[str, Any], key: keys.PublicKey) -> tuple[str, bytes]:
    """mlbom's key bundles (and cosign's): the hint and every keyid, when given, name the key
    as Sigstore does (`keys.hint`); base64 is strict."""
    material, envelope = dsse.material_and_envelope(document)
    if "publicKey" not in material:
        raise NotVerifiedError(
            "bundle",
            "the bundle was signed keylessly (it holds a certificate), not with a key",
            hint="verify it with --cert-identity and --cert-oidc-issuer",
        )
    expected = keys.hint(key)
    hint = material["publicKey"].get("hint") if isinstance(material["publicKey"], dict) else None
    if not dsse.names_key(hint, expected):
        raise NotVerifiedError(
            "bundle", f"the bundle was signed by another key (hint {hint}, this key {expected})"
        )
    parsed = dsse.parse_envelope(envelope, detailed=False)
    return dsse.verify_with_key(parsed, key, keyid=expected)


# -- the statement ----------------------------------------------------------------------------


def in_toto_statement(
    payload_type: str,
    payload: bytes,
    predicate_type: str = PREDICATE_TYPE,
    *,
    statement_types: tuple[str, ...] = (STATEMENT_TYPE,),
) -> dict[str, Any]:
    """The in-toto Statement in a DSSE payload (v1, or a type of `statement_types`), of the
    predicate type wanted."""
    if payload_type != PAYLOAD_TYPE:
        raise NotVerifiedError(
            "payload", f"the payload type is {payload_type!r}, not {PAYLOAD_TYPE}"
        )
    try:
        statement = json.loads(payload)
    except (ValueError, RecursionError):
        raise NotVerifiedError("payload", "the payload is not JSON") from None
    if not isinstance(statement, dict) or statement.get("_type") not in statement_types:
        raise NotVerifiedError("payload", "the payload is not an in-toto Statement v1")
    if statement.get("predicateType") != predicate_type:
        raise NotVerifiedError(
            "payload",
            f"the predicate type is {statement.get('predicateType')!r}, not {predicate_type}",
        )
    if not isinstance(statement.get("subject"), list) or not isinstance(
        statement.get("predicate"), dict
    ):
        raise NotVerifiedError("payload", "the statement has no subjects or no predicate")
    return statement


def _attested_subjects(found: list[Any], bom: dict[str, Any]) -> list[Subject]:
    """The statement's subjects, which must be the BOM's files (and OCI manifest), as mlbom
    signs them, or the one OCI manifest the BOM names, as cosign attests an image."""
    expected = subjects(bom)
    if found == expected:
        return expected
    files = {s["name"] for s in file_subjects(bom)}
    subject = found[0] if len(found) == 1 and isinstance(found[0], dict) else {}
    if isinstance(subject.get("name"), str) and subject["name"] not in files:
        digest = subject.get("digest")
        artifact = oci_subject(bom)
        if artifact is None:
            raise NotVerifiedError(
                "subjects",
                f"the statement is about {_named(subject)}, and the BOM names no OCI artifact "
                "(a statement over an image binds its BOM by the BOM's pkg:oci purl)",
            )
        if digest != artifact["digest"]:
            raise NotVerifiedError(
                "subjects",
                f"the statement is about {_named(subject)}, the BOM about "
                f"{artifact['name']}@sha256:{artifact['digest']['sha256']}",
            )
        return [{"name": subject["name"], "digest": dict(digest)}]
    raise NotVerifiedError("subjects", _difference(found, expected))


def _named(subject: dict[str, Any]) -> str:
    digest = subject.get("digest")
    sha = digest.get("sha256") if isinstance(digest, dict) else None
    return f"{str(subject.get('name'))[:200]}@sha256:{str(sha)[:64]}"


def _difference(found: list[Any], expected: list[Subject]) -> str:
    def table(items: list[Any]) -> dict[str, Any]:
        return {str(s.get("name")): s.get("digest") for s in items if isinstance(s, dict)}

    have, want = table(found), table(expected)
    extra = sorted(str(n) for n in set(have) - set(want))
    missing = sorted(str(n) for n in set(want) - set(have))
    changed = sorted(str(n) for n in set(have) & set(want) if have[n] != want[n])
    parts = [f"{label}: {', '.join(names[:5])}" for label, names in
             (("extra subjects", extra), ("missing subjects", missing), ("other digests", changed)) if names]  # fmt: skip
    return (
        "the subjects differ from the BOM's files (" + ("; ".join(parts) or "order or form") + ")"
    )


def check_model(model: Path, expected: list[Subject], exclude: tuple[Path, ...]) -> None:
    """Re-hash every file of `model` (a folder or file; `exclude`d paths left out) with
    SHA-256, in parallel, and compare with `expected`: a file that cannot be read, is
    missing, is not in the list or has changed raises `NotVerifiedError("model")` naming
    each (names escaped). A symlink out of the folder raises `BadInputError`."""
    from mlbom.errors import shown
    from mlbom.sources import open_source

    source = open_source(str(model), exclude=exclude)
    digests = source.digests(("sha256",), cache=None, advance=None)
    unreadable = {b.path: b.problem for b in source.blobs() if b.problem}
    have = {path: d["sha256"] for path, d in digests.items() if path not in unreadable}
    want = {s["name"]: s["digest"]["sha256"] for s in expected}
    problems = [f"{shown(n)} cannot be read ({why})" for n, why in sorted(unreadable.items())]
    problems += [f"{shown(n)} is missing" for n in sorted(set(want) - set(have) - set(unreadable))]
    problems += [f"{shown(n)} is not in the BOM" for n in sorted(set(have) - set(want))]
    problems += [
        f"{shown(n)} has changed" for n in sorted(set(have) & set(want)) if have[n] != want[n]
    ]
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise NotVerifiedError("model", f"{model}: {'; '.join(problems[:10])}{more}")
