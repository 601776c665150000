"""DSSE, the Dead Simple Signing Envelope every bundle mlbom makes or reads carries: the
pre-authentication encoding (PAE) a signature covers, the envelope as a bundle's JSON holds it
(hostile input), and its signatures verified with a public key.

Its readers differ in what they accept, and a parameter says where: ML-BOM attestations
signed with a key (`attest.verify`: strict base64, a keyid must name the key), keyless
envelopes whose log entry mlbom checks itself (`attest.transparency`: exactly one signature,
each flaw named), and OpenSSF model signatures (`attest.model_signatures`: protobuf JSON's
base64, keyids not read, a bounded number of signatures tried, model_signing 0.2's malformed
PAE for payloads in its format).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attest import keys
from mlbom.errors import NotVerifiedError


@dataclass(frozen=True)
class Signature:
    """One signature of an envelope; `keyid` is the JSON value found (any type: untrusted)."""

    keyid: object
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope read from a bundle, its payload and signatures decoded."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def legacy_pae(payload_type: str, payload: bytes) -> bytes:
    """What model_signing 0.2 signed in place of the PAE: its type's length in characters and
    the payload as Python prints bytes (`b'…'`)."""
    return f"DSSEV1 {len(payload_type)} {payload_type} {len(payload)} {payload!r}".encode()


def b64decode(value: Any, *, lenient: bool = False) -> bytes:
    """Bytes as a bundle's JSON writes them: standard base64 with its padding; `lenient` also
    takes protobuf JSON's other forms (URL-safe alphabet, padding left out), as model_signing
    writes them. Anything else raises ValueError (binascii.Error is one)."""
    if not isinstance(value, str):
        raise ValueError("not a base64 string")
    if not lenient:
        return base64.b64decode(value, validate=True)
    padded = value + "=" * (-len(value) % 4)
    if "-" in value or "_" in value:
        return base64.urlsafe_b64decode(padded)
    return base64.b64decode(padded, validate=True)


def decoded(value: Any, what: str, *, lenient: bool = False) -> bytes:
    """`b64decode`, or the bundle refused: `what` (named in the message) is not base64."""
    try:
        return b64decode(value, lenient=lenient)
    except ValueError:
        raise NotVerifiedError("bundle", f"{what} is not base64") from None


def material_and_envelope(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A bundle's verification material and DSSE envelope, both JSON objects."""
    material = document.get("verificationMaterial")
    envelope = document.get("dsseEnvelope")
    if not isinstance(material, dict) or not isinstance(envelope, dict):
        raise NotVerifiedError(
            "bundle", "the bundle holds no DSSE envelope or no verification material"
        )
    return material, envelope


def parse_envelope(
    value: Any, *, lenient: bool = False, one_signature: bool = False, detailed: bool = True
) -> Envelope:
    """The envelope in a bundle's `dsseEnvelope`. `lenient` takes protobuf JSON's base64 forms
    (`b64decode`); `one_signature` wants exactly one signature, as Sigstore bundles hold (a
    second would be unaccounted for). A flaw raises `NotVerifiedError("bundle")` naming it or,
    not `detailed`, saying only that the envelope is malformed (what the key checks say)."""
    try:
        return _parse(value, lenient, one_signature)
    except NotVerifiedError:
        if detailed:
            raise
        raise NotVerifiedError("bundle", "the DSSE envelope is malformed") from None


def _parse(value: Any, lenient: bool, one_signature: bool) -> Envelope:
    if not isinstance(value, dict):
        raise NotVerifiedError("bundle", "the bundle holds no DSSE envelope")
    payload_type, listed = value.get("payloadType"), value.get("signatures")
    if not isinstance(payload_type, str):
        raise NotVerifiedError("bundle", "the DSSE envelope has no payload type")
    if one_signature and (not isinstance(listed, list) or len(listed) != 1):
        raise NotVerifiedError("bundle", "the DSSE envelope must hold exactly one signature")
    payload = decoded(value.get("payload"), "the DSSE payload", lenient=lenient)
    # Any JSON value that iterates is walked, as the key checks always have: an object's keys
    # and a string's characters are no signatures, so only an empty one passes, holding none.
    if not isinstance(listed, list | dict | str):
        raise NotVerifiedError("bundle", "the DSSE envelope has no list of signatures")
    return Envelope(payload_type, payload, tuple(_signature(item, lenient) for item in listed))


def _signature(item: Any, lenient: bool) -> Signature:
    if not isinstance(item, dict):
        item = {}
    return Signature(
        item.get("keyid"), decoded(item.get("sig"), "the DSSE signature", lenient=lenient)
    )


def names_key(name: object, *names: str) -> bool:
    """A keyid or a bundle's key hint either names no key (absent, null or empty, as
    model_signing and cosign leave it) or is one of the key's `names`. Neither is trusted: they
    only spare trying a signature and make a refusal clearer."""
    return name in (None, "", *names)


def verifies(
    envelope: Envelope, key: keys.PublicKey, *, keyid: str | None = None, at_most: int | None = None
) -> bool:
    """Whether a signature of `envelope` verifies with `key` over the PAE. With `keyid`, one
    whose keyid names another key is not tried; with `at_most`, only the first that many are."""
    signed = pae(envelope.payload_type, envelope.payload)
    return any(keys.verify(key, s.sig, signed) for s in _tried(envelope, keyid, at_most))


def verify_with_key(
    envelope: Envelope,
    key: keys.PublicKey,
    *,
    keyid: str | None = None,
    at_most: int | None = None,
    legacy: Callable[[bytes], bool] | None = None,
) -> tuple[str, bytes]:
    """The envelope's payload type and payload, when a signature verifies with `key`
    (`verifies`); else `NotVerifiedError("bundle")`. `legacy` says of a payload whether
    model_signing 0.2's malformed PAE may stand for the PAE: 0.2 signed it with ECDSA over
    SHA-256 whatever the curve."""
    if verifies(envelope, key, keyid=keyid, at_most=at_most):
        return envelope.payload_type, envelope.payload
    if (
        legacy is not None
        and isinstance(key, ec.EllipticCurvePublicKey)
        and legacy(envelope.payload)
    ):
        signed = legacy_pae(envelope.payload_type, envelope.payload)
        for s in _tried(envelope, keyid, at_most):
            with suppress(InvalidSignature):
                key.verify(s.sig, signed, ec.ECDSA(hashes.SHA256()))
                return envelope.payload_type, envelope.payload
    raise NotVerifiedError("bundle", "no signature in the bundle verifies with this key")


def _tried(envelope: Envelope, keyid: str | None, at_most: int | None) -> list[Signature]:
    listed = envelope.signatures[:at_most]
    return [s for s in listed if keyid is None or names_key(s.keyid, keyid)]
