"""mlbom's own checks of the Rekor log entries sigstore-python does not verify, as cosign
writes them: entries of kind `intoto` 0.0.2, and cosign's v2 registry layout that keeps only
the log's promise (the SignedEntryTimestamp), no inclusion proof (`attest.stores.oci` turns that
layout into a bundle v0.1).

For such a bundle `verify_logged` checks the SET with the trusted root's log key (and the
inclusion proof and checkpoint when present), the certificate chain to the trusted root's CA at
the integrated time, the SCT, the code-signing usage, the DSSE signature with the certificate's
key, and the entry's body against the envelope (payload hash, signature, certificate; an
envelope hash cannot be recomputed from a bundle's JSON); `check_timestamps` the bundle's
RFC 3161 timestamps. sigstore is imported only when they run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from attest import dsse
from attest.statement import canonical
from mlbom.errors import NotVerifiedError

# Rekor v1 entry kinds of a DSSE envelope: cosign's long-standing one, and sigstore's.
INTOTO = ("intoto", "0.0.2")
DSSE = ("dsse", "0.0.1")
_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,18})$")


def entry_to_verify(document: dict[str, Any]) -> dict[str, Any] | None:
    """The bundle's log entry when mlbom verifies it itself: of kind `intoto` 0.0.2, or `dsse`
    0.0.1 without an inclusion proof. sigstore-python refuses both: it takes its signed time
    from dsse and hashedrekord entries only, and wants an inclusion proof, which cosign's v2
    layout does not keep. None when sigstore-python verifies the bundle."""
    entry = _only_entry(document)
    kind = _kind(entry) if entry is not None else None
    if entry is not None and (kind == INTOTO or (kind == DSSE and not _has_proof(entry))):
        return entry
    return None


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


def verify_logged(
    document: dict[str, Any], entry: dict[str, Any], root: Any
) -> tuple[str, bytes, Any]:
    """The `bundle` check of a keyless bundle whose log entry is `entry_to_verify`'s: every
    check sigstore-python makes but the identity, against the trusted root `root`. The log's
    SET is required: its integrated time is the signed time. The payload type, the payload and
    the signing certificate (its identity is for the caller to check)."""
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
    return payload_type, payload, cert


def bundle_version(document: dict[str, Any]) -> str:
    """The bundle format's version its media type names (0.1, 0.2, 0.3)."""
    media = document.get("mediaType")
    for version in ("0.1", "0.2", "0.3"):
        if media in (f"application/vnd.dev.sigstore.bundle+json;version={version}", f"application/vnd.dev.sigstore.bundle.v{version}+json"):  # fmt: skip
            return version
    raise NotVerifiedError("bundle", f"not a Sigstore bundle media type: {str(media)[:100]!r}")


def check_timestamps(document: dict[str, Any], parsed: Any, verifier: Any) -> None:
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
