"""Signing keys for air-gapped sites: ECDSA P-256 / P-384 and Ed25519 in PEM, through
`cryptography`. A key is named in a bundle by its hint, the base64 SHA-256 of its DER
public key, as Sigstore and cosign do."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mlbom.errors import BadInputError
from mlbom.files import read_bounded

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
KeyType = Literal["ecdsa-p256", "ecdsa-p384", "ed25519"]
KEY_TYPES: tuple[KeyType, ...] = ("ecdsa-p256", "ecdsa-p384", "ed25519")
MAX_PEM = 64 << 10
# The digest each ECDSA curve signs with (Sigstore's PKIX_ECDSA_P256_SHA_256, P384_SHA_384,
# P521_SHA_512). P-521 is only verified: model_signing's certificates may carry it, while
# mlbom's own key files are P-256 or P-384 (what cosign and the policy's signers use).
_EC_HASH: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
_KEY_FILE_CURVES = ("secp256r1", "secp384r1")


def load_private_key(path: Path, password: str | None = None) -> PrivateKey:
    data = _read_pem(path)
    try:
        key = serialization.load_pem_private_key(data, password.encode() if password else None)
    except TypeError as e:  # encrypted without a password, or a password for a plain key
        raise BadInputError(
            f"{path}: {e}", hint="give --key-password (or MLBOM_KEY_PASSWORD)"
        ) from None
    except ValueError:
        raise BadInputError(f"{path} is not a PEM private key, or the password is wrong") from None
    return _checked(key, path)  # type: ignore[return-value]


def load_public_key(path: Path) -> PublicKey:
    return parse_public_key(_read_pem(path), str(path))


def parse_public_key(pem: bytes, name: str = "") -> PublicKey:
    """A PEM public key of a type mlbom signs and verifies with; `name` (a file) in messages."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise BadInputError(
            f"{name} is not a PEM public key" if name else "not a PEM public key"
        ) from None
    return _checked(key, name)  # type: ignore[return-value]


def public_key_of(key: PrivateKey) -> PublicKey:
    return key.public_key()


def der(key: PublicKeyTypes) -> bytes:
    """The key's DER SubjectPublicKeyInfo: what a hint hashes, and what tells two keys apart."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def hint(key: PublicKey) -> str:
    return base64.b64encode(hashlib.sha256(der(key)).digest()).decode()


def sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(_EC_HASH[key.curve.name]()))


def verifiable(key: PublicKey) -> bool:
    """Whether `verify` knows the digest the key's curve signs with."""
    return isinstance(key, ed25519.Ed25519PublicKey) or key.curve.name in _EC_HASH


def verify(key: PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, ec.ECDSA(_EC_HASH[key.curve.name]()))
    except InvalidSignature:
        return False
    return True


def generate(kind: KeyType = "ecdsa-p256") -> PrivateKey:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1() if kind == "ecdsa-p256" else ec.SECP384R1())


def write_key_pair(
    key: PrivateKey, private_path: Path, public_path: Path, password: str | None
) -> None:
    """The private key (encrypted when a password is given) with mode 0600, the public key
    beside it; neither file may exist yet, and a failure leaves neither behind."""
    encryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    written: list[Path] = []
    try:
        for path, data, mode in (
            (private_path, private_pem, 0o600),
            (public_path, public_pem, 0o644),
        ):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            written.append(path)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
    except FileExistsError as e:
        for path in written:
            path.unlink(missing_ok=True)
        raise BadInputError(f"{e.filename} exists: not overwriting a key") from None
    except OSError as e:
        for path in written:
            path.unlink(missing_ok=True)
        raise BadInputError(f"cannot write {e.filename}: {e.strerror}") from None


def _read_pem(path: Path) -> bytes:
    return read_bounded(path, MAX_PEM, "the key")


def _checked(key: object, name: str | Path) -> object:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and (
        key.curve.name in _KEY_FILE_CURVES
    ):
        return key
    raise BadInputError(
        f"{name}: unsupported key type" if name else "unsupported key type",
        hint="use an ECDSA P-256 or P-384 key, or Ed25519",
    )
