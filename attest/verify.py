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
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest import keys
from attest.sign import pae
from attest.statement import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    Subject,
    canonical,
    excluded_paths,
    file_subjects,
    subjects,
)
from mlbom.errors import BadInputError, NotVerifiedError

CHECKS = ("bundle", "identity", "payload", "bom", "subjects", "model")
MAX_BUNDLE = 64 << 20


@dataclass(frozen=True)
class Signer:
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
    signer: Signer,
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
        payload_type, payload, result = verify_keyless(
            bundle, signer, sigstore_verifier(trusted_root, trust_config, staging, offline)
        )
    statement = in_toto_statement(payload_type, payload)
    result.passed.append("payload")
    if canonical(statement["predicate"]) != canonical(bom):
        serial = statement["predicate"].get("serialNumber")
        raise NotVerifiedError("bom", f"the bundle attests another BOM (serial number {serial})")
    result.passed.append("bom")
    expected = subjects(bom)
    if statement["subject"] != expected:
        raise NotVerifiedError("subjects", _difference(statement["subject"], expected))
    result.subjects = expected
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
        payload = base64.b64decode(envelope["payload"], validate=True)  # type: ignore[index]
        statement = in_toto_statement(envelope["payloadType"], payload)  # type: ignore[index]
    except (KeyError, TypeError, binascii.Error, NotVerifiedError):
        raise BadInputError("the bundle holds no in-toto statement over a CycloneDX BOM") from None
    if canonical(statement["predicate"]) != canonical(bom):
        raise BadInputError(
            "the bundle attests another BOM", hint="give the bundle `mlbom sign` wrote for it"
        )


# -- the signature ----------------------------------------------------------------------------


def parse_bundle(bundle: bytes | str) -> dict[str, Any]:
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
    material = document.get("verificationMaterial")
    envelope = document.get("dsseEnvelope")
    if not isinstance(material, dict) or not isinstance(envelope, dict):
        raise NotVerifiedError(
            "bundle", "the bundle holds no DSSE envelope or no verification material"
        )
    if "publicKey" not in material:
        raise NotVerifiedError(
            "bundle",
            "the bundle was signed keylessly (it holds a certificate), not with a key",
            hint="verify it with --cert-identity and --cert-oidc-issuer",
        )
    expected = keys.hint(key)
    hint = material["publicKey"].get("hint") if isinstance(material["publicKey"], dict) else None
    if hint not in (None, "", expected):
        raise NotVerifiedError(
            "bundle", f"the bundle was signed by another key (hint {hint}, this key {expected})"
        )
    try:
        payload_type = envelope["payloadType"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [
            (s.get("keyid"), base64.b64decode(s["sig"], validate=True))
            for s in envelope["signatures"]
        ]
    except (KeyError, TypeError, AttributeError, binascii.Error, ValueError):
        raise NotVerifiedError("bundle", "the DSSE envelope is malformed") from None
    if not isinstance(payload_type, str):
        raise NotVerifiedError("bundle", "the DSSE envelope is malformed")
    signed = pae(payload_type, payload)
    if not any(
        keyid in (None, "", expected) and keys.verify(key, sig, signed) for keyid, sig in signatures
    ):
        raise NotVerifiedError("bundle", "no signature in the bundle verifies with this key")
    return payload_type, payload


def sigstore_verifier(
    trusted_root: Path | None, trust_config: Path | None, staging: bool, offline: bool
) -> Any:
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier

    from attest.sign import trust

    if sum(bool(x) for x in (trusted_root, trust_config, staging)) > 1:
        raise BadInputError("give one of --trusted-root, --trust-config and --staging")
    if trusted_root is not None:
        try:
            return Verifier(trusted_root=TrustedRoot.from_file(str(trusted_root)))
        except OSError as e:
            raise BadInputError(f"cannot read {trusted_root}: {e.strerror}") from None
        except Exception as e:
            raise BadInputError(f"{trusted_root} is not a Sigstore trusted root: {e}") from None
    if trust_config is not None:
        return Verifier(trusted_root=trust(trust_config, False).trusted_root)
    return Verifier.staging(offline=offline) if staging else Verifier.production(offline=offline)


class _Policy:
    """The identity policy, remembering whether it was the one that failed."""

    def __init__(self, signer: Signer) -> None:
        from sigstore.verify import policy

        self.signer = signer
        # Fulcio writes the issuer in the original extension, the newer one, or both.
        issuer = signer.issuer or ""
        self.issuer = policy.AnyOf([policy.OIDCIssuer(issuer), policy.OIDCIssuerV2(issuer)])
        self.failed: str | None = None
        self.identity = ""

    def verify(self, cert: Any) -> None:
        from sigstore.errors import VerificationError

        sans = _sans(cert)
        self.identity = next(iter(sorted(sans)), "")
        try:
            self.issuer.verify(cert)
        except VerificationError:
            self.failed = f"the identity was not issued by {self.signer.issuer}"
            raise
        if self.signer.identity is not None:
            ok = self.signer.identity in sans
            wanted = self.signer.identity
        else:
            pattern = re.compile(self.signer.identity_regexp or "")
            ok = any(pattern.fullmatch(san) for san in sans)  # anchored at both ends
            wanted = f"/{self.signer.identity_regexp}/"
        if not ok:
            self.failed = f"the signer is {', '.join(sorted(sans)) or 'nobody'}, not {wanted}"
            raise VerificationError(self.failed)


def _sans(cert: Any) -> set[str]:
    from cryptography.x509 import (
        OtherName,
        RFC822Name,
        SubjectAlternativeName,
        UniformResourceIdentifier,
    )
    from cryptography.x509.oid import ObjectIdentifier

    othername = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")  # Fulcio's username SAN
    ext = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
    sans = set(ext.get_values_for_type(RFC822Name)) | set(
        ext.get_values_for_type(UniformResourceIdentifier)
    )
    sans |= {
        o.value.decode(errors="replace")
        for o in ext.get_values_for_type(OtherName)
        if o.type_id == othername
    }
    return sans


def verify_keyless(
    bundle: bytes | str, signer: Signer, verifier: Any
) -> tuple[str, bytes, Verification]:
    from sigstore.errors import VerificationError
    from sigstore.models import Bundle, InvalidBundle

    try:
        parsed = Bundle.from_json(bundle)
    except InvalidBundle as e:
        raise NotVerifiedError("bundle", f"not a valid keyless bundle: {e}") from None
    except Exception as e:  # pydantic/protobuf errors on malformed JSON structures
        raise NotVerifiedError(
            "bundle", f"not a valid keyless bundle: {type(e).__name__}: {e}"
        ) from None
    policy = _Policy(signer)
    try:
        payload_type, payload = verifier.verify_dsse(parsed, policy)
    except VerificationError as e:
        if policy.failed:
            raise NotVerifiedError("identity", policy.failed) from None
        raise NotVerifiedError("bundle", str(e)) from None
    except Exception as e:  # the library's internals on hostile bundles
        raise NotVerifiedError("bundle", f"{type(e).__name__}: {e}") from None
    result = Verification(policy.identity, signer.issuer, [], ["bundle", "identity"])
    return payload_type, payload, result


# -- the statement ----------------------------------------------------------------------------


def in_toto_statement(
    payload_type: str, payload: bytes, predicate_type: str = PREDICATE_TYPE
) -> dict[str, Any]:
    """The in-toto Statement v1 in a DSSE payload, of the predicate type wanted."""
    if payload_type != PAYLOAD_TYPE:
        raise NotVerifiedError(
            "payload", f"the payload type is {payload_type!r}, not {PAYLOAD_TYPE}"
        )
    try:
        statement = json.loads(payload)
    except (ValueError, RecursionError):
        raise NotVerifiedError("payload", "the payload is not JSON") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
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


def _difference(found: list[Any], expected: list[Subject]) -> str:
    def table(items: list[Any]) -> dict[str, Any]:
        return {s.get("name"): s.get("digest") for s in items if isinstance(s, dict)}

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
