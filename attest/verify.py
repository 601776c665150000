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
layout into a bundle v0.1). sigstore-python verifies neither, so `_verify_logged` does: the
SET with the trusted root's log key (and the inclusion proof and checkpoint when present),
the certificate chain to the trusted root's CA at the integrated time, the SCT, the DSSE
signature with the certificate's key, and the entry's body against the envelope (payload
hash, signature, certificate; an envelope hash cannot be recomputed from a bundle's JSON).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest import dsse, keys
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

CHECKS = ("bundle", "identity", "payload", "bom", "subjects", "model")
MAX_BUNDLE = 64 << 20
#: the in-toto statement cosign writes (in-toto-golang's StatementInTotoV01); same fields
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
STATEMENT_TYPES = (STATEMENT_TYPE, STATEMENT_V01)
# Rekor v1 entry kinds of a DSSE envelope: cosign's long-standing one, and sigstore's.
INTOTO = ("intoto", "0.0.2")
DSSE = ("dsse", "0.0.1")


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
        payload_type, payload, result = verify_keyless(
            bundle, signer, sigstore_verifier(trusted_root, trust_config, staging, offline)
        )
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
        payload = base64.b64decode(envelope["payload"], validate=True)  # type: ignore[index]
        statement = in_toto_statement(
            envelope["payloadType"],  # type: ignore[index]
            payload,
            statement_types=STATEMENT_TYPES,
        )
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

    def __init__(self, signer: ExpectedSigner) -> None:
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
    bundle: bytes | str, signer: ExpectedSigner, verifier: Any
) -> tuple[str, bytes, Verification]:
    """The keyless checks (`bundle`, `identity`): by sigstore-python where it verifies the
    bundle's log entry, else by `_verify_logged`."""
    from sigstore.errors import VerificationError
    from sigstore.models import Bundle, InvalidBundle

    document = parse_bundle(bundle)
    entry = _only_entry(document)
    kind = _kind(entry) if entry is not None else None
    if entry is not None and (kind == INTOTO or (kind == DSSE and not _has_proof(entry))):
        # sigstore-python refuses both: it takes its signed time from dsse and hashedrekord
        # entries only, and wants an inclusion proof, which cosign's v2 layout does not keep.
        # Its bundle rules still apply (a bundle of version 0.2 or later carries the proof),
        # and so do any RFC 3161 timestamps the bundle holds.
        parsed = None
        if _bundle_version(document) != "0.1":  # 0.1 (cosign's v2 layout) may lack the proof
            try:
                parsed = Bundle.from_json(bundle)
            except Exception as e:  # InvalidBundle, pydantic/protobuf errors on hostile input
                raise NotVerifiedError("bundle", f"not a valid keyless bundle: {type(e).__name__}: {e}") from None  # fmt: skip
        logged = _verify_logged(document, entry, signer, verifier._trusted_root)
        _check_timestamps(document, parsed, verifier)
        return logged

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


# -- log entries sigstore-python does not verify ---------------------------------------------

_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,18})$")


def _only_entry(document: dict[str, Any]) -> dict[str, Any] | None:
    """The bundle's one log entry (sigstore-python refuses any other number)."""
    material = document.get("verificationMaterial")
    entries = material.get("tlogEntries") if isinstance(material, dict) else None
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        return None
    return entries[0]


def _kind(entry: dict[str, Any]) -> tuple[Any, Any]:
    declared = entry.get("kindVersion")
    declared = declared if isinstance(declared, dict) else {}
    return declared.get("kind"), declared.get("version")


def _has_proof(entry: dict[str, Any]) -> bool:
    proof = entry.get("inclusionProof")
    return isinstance(proof, dict) and isinstance(proof.get("checkpoint"), dict)


def _decimal(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DECIMAL.match(value):
        return int(value)
    raise NotVerifiedError("bundle", f"{what} is not a number")


def _leaf_certificate(document: dict[str, Any]) -> Any:
    """The signing certificate: v0.3's `certificate`, or the first of an older bundle's
    `x509CertificateChain` (the rest is never trusted: the chain comes from the root)."""
    from cryptography import x509

    material = document["verificationMaterial"]
    certificate = material.get("certificate")
    if certificate is None and isinstance(material.get("x509CertificateChain"), dict):
        listed = material["x509CertificateChain"].get("certificates")
        certificate = listed[0] if isinstance(listed, list) and listed else None
    raw = certificate.get("rawBytes") if isinstance(certificate, dict) else None
    if raw is None:
        raise NotVerifiedError(
            "bundle",
            "the bundle holds no signing certificate",
            hint="a bundle signed with a key is verified with --key",
        )
    try:
        return x509.load_der_x509_certificate(dsse.decoded(raw, "the certificate"))
    except ValueError:
        raise NotVerifiedError("bundle", "the signing certificate is not DER X.509") from None


def _verify_logged(
    document: dict[str, Any], entry: dict[str, Any], signer: ExpectedSigner, root: Any
) -> tuple[str, bytes, Verification]:
    """A keyless bundle whose Rekor v1 entry is `intoto` 0.0.2, or `dsse` 0.0.1 without an
    inclusion proof: every check sigstore-python makes, in mlbom's order (all of `bundle`,
    then `identity`). The log's SET is required: its integrated time is the signed time."""
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.errors import VerificationError

    cert = _leaf_certificate(document)
    # cosign and sigstore sign with one key: a second signature would be unaccounted for
    envelope = dsse.parse_envelope(document.get("dsseEnvelope"), one_signature=True)
    payload_type, payload, signature = (
        envelope.payload_type,
        envelope.payload,
        envelope.signatures[0].sig,
    )
    body = dsse.decoded(entry.get("canonicalizedBody"), "the log entry's body")
    log_id = entry.get("logId")
    promise = entry.get("inclusionPromise")
    if not isinstance(log_id, dict):
        raise NotVerifiedError("bundle", "the log entry names no log")
    if not isinstance(promise, dict):
        raise NotVerifiedError(
            "bundle", "the log entry has no signed entry timestamp (inclusion promise)"
        )
    when = _decimal(entry.get("integratedTime"), "the integrated time")
    signed = {
        "body": base64.b64encode(body).decode(),
        "integratedTime": when,
        "logID": dsse.decoded(log_id.get("keyId"), "the log ID").hex(),
        "logIndex": _decimal(entry.get("logIndex"), "the log index"),
    }
    keyring = root.rekor_keyring(KeyringPurpose.VERIFY)
    try:
        keyring.verify(
            key_id=dsse.decoded(log_id.get("keyId"), "the log ID"),
            signature=dsse.decoded(promise.get("signedEntryTimestamp"), "the SET"),
            data=canonical(signed),
        )
    except VerificationError:
        raise NotVerifiedError(
            "bundle", "the log entry's signed entry timestamp is not signed by a trusted log"
        ) from None
    if _has_proof(entry):
        _verify_inclusion(entry, keyring)
    _check_certificate(cert, when, root)
    if not _signed_by(cert.public_key(), envelope):
        raise NotVerifiedError("bundle", "the DSSE signature does not verify with the certificate")
    _check_body(body, _kind(entry), payload_type, payload, signature, cert)
    policy = _Policy(signer)
    try:
        policy.verify(cert)
    except VerificationError as e:
        raise NotVerifiedError("identity", policy.failed or str(e)) from None
    return (
        payload_type,
        payload,
        Verification(policy.identity, signer.issuer, [], ["bundle", "identity"]),
    )


def _bundle_version(document: dict[str, Any]) -> str:
    """The bundle format's version its media type names (0.1, 0.2, 0.3)."""
    media = document.get("mediaType")
    for version in ("0.1", "0.2", "0.3"):
        if media in (f"application/vnd.dev.sigstore.bundle+json;version={version}", f"application/vnd.dev.sigstore.bundle.v{version}+json"):  # fmt: skip
            return version
    raise NotVerifiedError("bundle", f"not a Sigstore bundle media type: {str(media)[:100]!r}")


def _check_timestamps(document: dict[str, Any], parsed: Any, verifier: Any) -> None:
    """Every RFC 3161 timestamp the bundle holds verifies against the trusted root's
    timestamp authorities (sigstore-python's check), and the certificate was valid then."""
    from sigstore.errors import VerificationError

    material = document.get("verificationMaterial")
    data = material.get("timestampVerificationData") if isinstance(material, dict) else None
    stamps = data.get("rfc3161Timestamps") if isinstance(data, dict) else None
    if not stamps:
        return
    if parsed is None:
        raise NotVerifiedError("bundle", "a bundle of version 0.1 with RFC 3161 timestamps: mlbom cannot check them there")  # fmt: skip
    try:
        verified = verifier._verify_timestamp_authority(parsed)
    except VerificationError as e:
        raise NotVerifiedError("bundle", f"the bundle's timestamps do not verify: {e}") from None
    if len(verified) != len(stamps):
        raise NotVerifiedError("bundle", f"{len(stamps) - len(verified)} of the bundle's RFC 3161 timestamps do not verify against the trusted timestamp authorities")  # fmt: skip
    cert = _leaf_certificate(document)
    for stamp in verified:
        if not cert.not_valid_before_utc <= stamp.time <= cert.not_valid_after_utc:
            raise NotVerifiedError("bundle", f"the certificate was not valid at the bundle's timestamp ({stamp.time.isoformat()})")  # fmt: skip


def _verify_inclusion(entry: dict[str, Any], keyring: Any) -> None:
    """The Merkle inclusion proof and its signed checkpoint, with sigstore-python's own
    checks (they take any entry kind)."""
    from sigstore._internal.merkle import verify_merkle_inclusion
    from sigstore._internal.rekor.checkpoint import verify_checkpoint
    from sigstore.errors import VerificationError
    from sigstore.models import TransparencyLogEntry
    from sigstore_models.rekor.v1 import TransparencyLogEntry as Inner

    try:
        parsed = TransparencyLogEntry(Inner.from_dict(entry))
        verify_merkle_inclusion(parsed)
        verify_checkpoint(keyring, parsed)
    except VerificationError as e:
        raise NotVerifiedError("bundle", f"the log entry's inclusion proof: {e}") from None
    except Exception as e:  # pydantic errors on a malformed proof
        raise NotVerifiedError(
            "bundle", f"the log entry's inclusion proof is malformed: {type(e).__name__}"
        ) from None


def _check_certificate(cert: Any, when: int, root: Any) -> None:
    """Valid at the log's integrated time, chained to the trusted root's CA then, with a
    valid SCT and the Sigstore profile's key usages."""
    from datetime import UTC, datetime

    from cryptography.x509 import ExtendedKeyUsage, KeyUsage
    from cryptography.x509.oid import ExtendedKeyUsageOID
    from cryptography.x509.verification import (
        Criticality,
        ExtensionPolicy,
        PolicyBuilder,
        Store,
    )
    from cryptography.x509.verification import (
        VerificationError as ChainError,
    )
    from sigstore._internal.sct import verify_sct
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.errors import VerificationError

    at = datetime.fromtimestamp(when, tz=UTC)
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise NotVerifiedError(
            "bundle",
            f"the certificate was not valid when the log recorded the entry ({at.isoformat()}; "
            f"valid {cert.not_valid_before_utc.isoformat()} to "
            f"{cert.not_valid_after_utc.isoformat()})",
        )
    # Fulcio certificates carry the code-signing usage, checked below, not client auth.
    eku = (ExtendedKeyUsage, Criticality.NON_CRITICAL, None)
    chains = (
        PolicyBuilder()
        .store(Store(root.get_fulcio_certs()))
        .time(at)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca().may_be_present(*eku),
            ee_policy=ExtensionPolicy.webpki_defaults_ee().may_be_present(*eku),
        )
        .build_client_verifier()
    )
    try:
        chain = chains.verify(cert, []).chain[1:]
    except Exception as e:  # ChainError, or a name type the verifier does not know
        reason = str(e) if isinstance(e, ChainError) else type(e).__name__
        raise NotVerifiedError(
            "bundle", f"the certificate does not chain to the trusted root's CA: {reason}"
        ) from None
    try:
        verify_sct(cert, chain, root.ct_keyring(KeyringPurpose.VERIFY))
    except VerificationError as e:
        raise NotVerifiedError("bundle", f"the certificate's SCT does not verify: {e}") from None
    try:
        usage = cert.extensions.get_extension_for_class(KeyUsage).value.digital_signature
        code = ExtendedKeyUsageOID.CODE_SIGNING in (
            cert.extensions.get_extension_for_class(ExtendedKeyUsage).value
        )
    except Exception:
        usage = code = False
    if not (usage and code):
        raise NotVerifiedError("bundle", "the certificate is not for code signing")


def _signed_by(key: Any, envelope: dsse.Envelope) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp384r1"):
        return dsse.verifies(envelope, key)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return dsse.verifies(envelope, key)
    raise NotVerifiedError("bundle", "the certificate's key is not ECDSA P-256/P-384 or Ed25519")


def _check_body(
    raw: bytes,
    kind: tuple[Any, Any],
    payload_type: str,
    payload: bytes,
    signature: bytes,
    cert: Any,
) -> None:
    """The log entry's body records this envelope: its kind as declared, the payload's
    SHA-256, and the one signature with this certificate (rekor pkg/types/intoto/v0.0.2,
    pkg/types/dsse/v0.0.1)."""
    try:
        body = json.loads(raw)
        if (body["kind"], body["apiVersion"]) != kind:
            raise NotVerifiedError(
                "bundle", "the log entry's body is of another kind than declared"
            )
        spec = body["spec"]
        if kind == INTOTO:
            content = spec["content"]
            hashed, listed = content["payloadHash"], content["envelope"]["signatures"]
            if content["envelope"]["payloadType"] != payload_type:
                raise NotVerifiedError("bundle", "the log entry records another payload type")
            # intoto 0.0.2 keeps the envelope's base64 signature text, base64-encoded again
            recorded = [
                (dsse.decoded(dsse.decoded(s["sig"], "a logged signature").decode(), "a logged signature"),
                 dsse.decoded(s["publicKey"], "a logged key")) for s in listed
            ]  # fmt: skip
        else:
            hashed, listed = spec["payloadHash"], spec["signatures"]
            recorded = [
                (
                    dsse.decoded(s["signature"], "a logged signature"),
                    dsse.decoded(s["verifier"], "a logged key"),
                )
                for s in listed
            ]
        algorithm, value = hashed["algorithm"], hashed["value"]
    except NotVerifiedError:
        raise
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        raise NotVerifiedError("bundle", f"the log entry's body is not a {kind[0]} entry") from None
    if algorithm != "sha256" or value != hashlib.sha256(payload).hexdigest():
        raise NotVerifiedError(
            "bundle", "the log entry records another payload than the envelope's"
        )
    if len(recorded) != 1 or recorded[0][0] != signature:
        raise NotVerifiedError(
            "bundle", "the log entry records another signature than the envelope's"
        )
    if not _same_certificate(recorded[0][1], cert):
        raise NotVerifiedError("bundle", "the log entry records another signing certificate")


def _same_certificate(pem: bytes, cert: Any) -> bool:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER) == cert.public_bytes(
            Encoding.DER
        )
    except ValueError:
        return False


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
