"""OpenSSF Model Signing (OMS) signatures: `verify_model` checks that a model is what its
signature says it is. OMS is the format of the `model_signing` package
(sigstore/model-transparency), and NVIDIA NGC signs its models with it.

An OMS signature file (`model.sig`) is a Sigstore bundle v0.3 whose DSSE envelope holds an
in-toto Statement v1 with predicate type `https://model_signing/signature/v1.0`:

- one subject: the model's name (informative) and a SHA-256 over the raw bytes of every
  resource digest, in the order the resources are listed;
- `predicate.resources`: `{name, algorithm, digest}` per file (serialization method `files`)
  or per byte range `path:start:end` of a file (method `shards`);
- `predicate.serialization`: `method`, `hash_type`, `allow_symlinks`, `shard_size` (shards),
  and `ignore_paths`, the paths left out when the model was hashed.

The checks run in a fixed order and the first to fail is named:

1. `bundle`   the signature verifies: keyless bundles through the `sigstore` library exactly as
              `attest.verify` does (certificate chain, SCT, log inclusion, signed time); key
              bundles with the public key given, whether the bundle names it by a hint,
              carries it, or carries a certificate for it;
2. `identity` keyless only: the certificate's identity and OIDC issuer match;
3. `payload`  in-toto payload type, Statement v1, the OMS predicate type, a well-formed
              predicate;
4. `subjects` the subject digest equals the digest of the listed resources, none listed twice;
5. `model`    with a model path: every file re-hashed as the serialization says, honouring its
              ignored paths; missing, extra and changed files are named.

There is no mode without a key or an identity: `attest.verify.ExpectedSigner` refuses to exist without
one.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
)

from attest import dsse, keys
from attest.keyless import sigstore_verifier, verify_keyless
from attest.verify import ExpectedSigner, in_toto_statement, parse_bundle
from mlbom.errors import BadInputError, NotVerifiedError
from mlbom.hashing import hash_files

PREDICATE_TYPE = "https://model_signing/signature/v1.0"
# model_signing before 1.0: subjects only, no serialization and no model digest.
COMPAT_PREDICATE_TYPE = "https://model_signing/Digests/v0.1"
CHECKS = ("bundle", "identity", "payload", "subjects", "model")
# What model_signing's hashing.Config leaves out by default, at the model's top level only
# (nested `.git` folders are signed). Older signatures do not list them in ignore_paths.
DEFAULT_IGNORED = (".git", ".gitattributes", ".github", ".gitignore")
MAX_FILES = 100_000
MAX_CHAIN = 8  # certificates in a chain, given or in the bundle
MAX_SIGNATURES = 16  # in one DSSE envelope
CHUNK = 1 << 20
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")
# hash_type as model_signing writes it (its digest_name) -> the file hash
_FILE_HASHES: dict[str, Callable[[], Any]] = {
    "sha256": hashlib.sha256,
    "blake2b": hashlib.blake2b,  # the default 64-byte digest, as model_signing uses
}
# mlbom.hashing's name for the same hash, to reuse its parallel, single-pass file hashing
_MLBOM_NAMES = {"sha256": "sha256", "blake2b": "blake2b-512"}


@dataclass(frozen=True)
class Serialization:
    """How the signer turned the model into resources."""

    method: str
    hash_type: str
    allow_symlinks: bool
    shard_size: int | None
    ignore_paths: tuple[str, ...]

    @property
    def resource_algorithm(self) -> str:
        """The `algorithm` each resource must carry (model_signing's digest name)."""
        if self.method == "shards":
            return f"{self.hash_type}-sharded-{self.shard_size}"
        return self.hash_type


@dataclass(frozen=True)
class Resource:
    """One signed file, or one byte range of a file (`start`/`end` for shards)."""

    name: str
    algorithm: str
    digest: bytes
    path: str
    start: int | None = None
    end: int | None = None


@dataclass
class ModelVerification:
    """What was verified: the signer as the bundle proves it, the model the statement names,
    how it was serialized, the signed resources, and the checks passed, in order."""

    signer: str
    issuer: str | None
    model_name: str = ""
    model_digest: str = ""
    serialization: Serialization | None = None
    resources: list[Resource] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        return sorted({r.path for r in self.resources})

    def to_dict(self) -> dict[str, Any]:
        s = self.serialization
        return {
            "verified": True,
            "signer": self.signer,
            "issuer": self.issuer,
            "checks": [{"name": c, "ok": True} for c in self.passed],
            "model": {"name": self.model_name, "digest": {"sha256": self.model_digest}},
            "serialization": None
            if s is None
            else {
                "method": s.method,
                "hash_type": s.hash_type,
                "shard_size": s.shard_size,
                "allow_symlinks": s.allow_symlinks,
                "ignore_paths": list(s.ignore_paths),
            },
            "resources": [
                {"name": r.name, "algorithm": r.algorithm, "digest": r.digest.hex()}
                for r in self.resources
            ],
        }


@dataclass(frozen=True)
class CertificateChain:
    """The certificates a model_signing certificate signature must chain to (roots, and
    intermediates trusted as anchors), as `model_signing verify certificate` takes them."""

    certificates: tuple[x509.Certificate, ...]

    @classmethod
    def load(cls, paths: list[Path]) -> CertificateChain:
        """The PEM certificates in `paths` (each file may hold several)."""
        from mlbom.files import read_bounded

        found: list[x509.Certificate] = []
        for path in paths:
            try:
                found += x509.load_pem_x509_certificates(read_bounded(path, 1 << 20, "a certificate file"))  # fmt: skip
            except ValueError:
                raise BadInputError(f"{path} holds no PEM certificate") from None
        if not found or len(found) > MAX_CHAIN:
            raise BadInputError(f"give 1 to {MAX_CHAIN} certificates to chain to")
        return cls(tuple(found))


def verify_model(
    signature: bytes | str,
    signer: ExpectedSigner | CertificateChain,
    *,
    model: Path | None = None,
    trusted_root: Path | None = None,
    trust_config: Path | None = None,
    staging: bool = False,
    offline: bool = False,
    exclude: tuple[Path, ...] = (),
    ignore_paths: tuple[str, ...] = (),
) -> ModelVerification:
    """Run the checks on an OMS signature (the bundle's bytes) and, given `model`, the model's
    files; `exclude` names files never part of the model (the signature itself),
    `ignore_paths` paths inside the model to leave out as model_signing's `--ignore-paths`
    (relative POSIX paths). Raises `NotVerifiedError` naming the first check that fails,
    `BadInputError` for what cannot be checked at all."""
    document = parse_bundle(signature)
    if isinstance(signer, CertificateChain):
        payload_type, payload, leaf = _verify_with_chain(document, signer)
        result = ModelVerification(f"certificate {leaf}", None, passed=["bundle", "identity"])
    elif signer.key is not None:
        payload_type, payload = _verify_with_key(document, signer.key)
        result = ModelVerification(f"key {keys.hint(signer.key)}", None, passed=["bundle"])
    else:
        _refuse_key_material(document)
        payload_type, payload, identity = verify_keyless(
            signature,
            document,
            signer,
            sigstore_verifier(trusted_root, trust_config, staging, offline),
        )
        result = ModelVerification(identity, signer.issuer, passed=["bundle", "identity"])
    name, digest, manner, resources = _manifest(_statement(payload_type, payload))
    result.model_name, result.serialization, result.resources = name, manner, resources
    result.passed.append("payload")
    result.model_digest = _check_subjects(digest, resources)
    result.passed.append("subjects")
    if model is not None:
        for path in ignore_paths:
            if not _confined_name(path):
                raise BadInputError(f"--ignore-paths {path!r} is not a path inside the model")
        ignoring = replace(manner, ignore_paths=(*manner.ignore_paths, *ignore_paths))
        _check_model(model, ignoring, resources, {p.resolve() for p in exclude})
        result.passed.append("model")
    return result


def verify_listing(
    signature: bytes | str,
    signer: ExpectedSigner | CertificateChain,
    files: dict[str, str],
    *,
    signature_name: str = "model.sig",
    trusted_root: Path | None = None,
    trust_config: Path | None = None,
    offline: bool = True,
) -> ModelVerification:
    """The checks of `verify_model` against a model known by its listing instead of its
    bytes (a Hub commit's files with their SHA-256, as the admission webhook sees a model):
    every file the signature covers is listed with the signed digest, and every listed file
    is covered, the signature's ignored paths and the signature file itself (named
    `signature_name`) apart. Only signatures of whole files with SHA-256 can be checked so."""
    if isinstance(signer, CertificateChain):
        verified = verify_model(signature, signer)
    else:
        verified = verify_model(signature, signer, trusted_root=trusted_root, trust_config=trust_config, offline=offline)  # fmt: skip
    manner = verified.serialization
    assert manner is not None
    if manner.method != "files" or manner.hash_type != "sha256":
        raise NotVerifiedError("model", f"the signature hashes {manner.method} with {manner.hash_type}; against the Hub's listing only whole files hashed with SHA-256 can be checked")  # fmt: skip
    signed = {r.path: r.digest.hex() for r in verified.resources}
    ignored = _ignored(manner.ignore_paths, set(signed))
    listed = {
        path: digest
        for path, digest in files.items()
        if path != signature_name and not _is_ignored(PurePosixPath(path).parts, ignored)
    }
    missing = set(signed) - set(listed)
    extra = set(listed) - set(signed)
    changed = {p for p in set(signed) & set(listed) if signed[p] != listed[p].lower()}
    if problems := _differences(missing, extra, changed):
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise NotVerifiedError("model", f"{'; '.join(problems[:10])}{more}")
    verified.passed.append("model")
    return verified


# -- the signature ----------------------------------------------------------------------------


def oms_hint(key: keys.PublicKey) -> str:
    """How model_signing names a key in a bundle: hex SHA-256 of its PEM public key."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def _b64(value: Any) -> bytes:
    """Bytes as model_signing's protobuf JSON writes them (URL-safe, unpadded forms too)."""
    return dsse.b64decode(value, lenient=True)


def _is_keyless(material: dict[str, Any]) -> bool:
    # v0.3 bundles carry a Fulcio `certificate`; older ones a chain with log entries. A chain
    # without log entries is model_signing's own certificate signer, outside Sigstore.
    return "certificate" in material or (
        "x509CertificateChain" in material and bool(material.get("tlogEntries"))
    )


def _refuse_key_material(document: dict[str, Any]) -> None:
    """Keyless verification of a bundle made with a key would fail inside sigstore with a
    message about the bundle's shape; say what it is instead."""
    material = document.get("verificationMaterial")
    if isinstance(material, dict) and not _is_keyless(material):
        what = "a certificate outside Sigstore" if "x509CertificateChain" in material else "a key"
        if "publicKey" in material or "x509CertificateChain" in material:
            raise NotVerifiedError(
                "bundle",
                f"the signature was made with {what}, not keylessly through Sigstore",
                hint="verify it with --key PUBLIC_KEY.pem (the signer's public key)",
            )


def _verify_with_key(document: dict[str, Any], key: keys.PublicKey) -> tuple[str, bytes]:
    material, envelope = dsse.material_and_envelope(document)
    if _is_keyless(material):
        raise NotVerifiedError(
            "bundle",
            "the signature was made keylessly (it holds a Sigstore certificate), not with a key",
            hint="verify it with --cert-identity and --cert-oidc-issuer",
        )
    if "publicKey" in material:
        _check_named_key(material["publicKey"], key)
    elif "x509CertificateChain" in material:
        _check_certificate_key(material["x509CertificateChain"], key)
    else:
        raise NotVerifiedError("bundle", "the bundle names neither a key nor a certificate")
    return _signed_payload(envelope, key)


def _signed_payload(envelope: dict[str, Any], key: PublicKeyTypes) -> tuple[str, bytes]:
    """The envelope's payload type and payload, when one of its first `MAX_SIGNATURES`
    signatures verifies with `key`. The DSSE keyid may be absent, empty or null (model_signing
    keeps it empty): it is not read. model_signing 0.2's malformed PAE is accepted only for a
    payload in 0.2's own format, as model_signing does."""
    parsed = dsse.parse_envelope(envelope, lenient=True, detailed=False)
    if not isinstance(key, keys.PublicKey):
        raise NotVerifiedError("bundle", f"the signing key is a {type(key).__name__}, which model signing does not use")  # fmt: skip
    if isinstance(key, ec.EllipticCurvePublicKey) and not keys.verifiable(key):
        raise NotVerifiedError("bundle", f"the signing key is on the curve {key.curve.name}, which model signing does not use")  # fmt: skip
    return dsse.verify_with_key(parsed, key, at_most=MAX_SIGNATURES, legacy=_is_compat)


def _is_compat(payload: bytes) -> bool:
    try:
        statement = json.loads(payload)
    except (ValueError, RecursionError):
        return False
    return isinstance(statement, dict) and statement.get("predicateType") == COMPAT_PREDICATE_TYPE


def _verify_with_chain(document: dict[str, Any], chain: CertificateChain) -> tuple[str, bytes, str]:
    """model_signing's certificate mode: the bundle's signing certificate (first of its
    x509CertificateChain, the rest untrusted intermediates) chains to `chain` at the time
    it was issued (no transparency log vouches for a later time), may sign (key usage
    digitalSignature or extended key usage codeSigning), and its key signed the envelope."""
    material, envelope = dsse.material_and_envelope(document)
    listed = material.get("x509CertificateChain")
    if not isinstance(listed, dict):
        how = "keylessly through Sigstore" if "certificate" in material else "with a key"
        raise NotVerifiedError("bundle", f"the signature was made {how}, not with a certificate chain")  # fmt: skip
    try:
        certificates = [
            x509.load_der_x509_certificate(_b64(c["rawBytes"]))
            for c in listed["certificates"][: MAX_CHAIN + 1]
        ]
        leaf, intermediates = certificates[0], certificates[1:]
    except (KeyError, IndexError, TypeError, ValueError, binascii.Error):
        raise NotVerifiedError("bundle", "the bundle's certificate chain is malformed") from None
    name = _subject(leaf)
    ee, ca = ExtensionPolicy.permit_all(), ExtensionPolicy.webpki_defaults_ca()
    policy = (
        PolicyBuilder()
        .store(Store(list(chain.certificates)))
        .time(leaf.not_valid_before_utc)
        .max_chain_depth(MAX_CHAIN)
        .extension_policies(ca_policy=ca, ee_policy=ee)
    )
    try:
        policy.build_client_verifier().verify(leaf, intermediates)
    except Exception as e:  # VerificationError, or an extension cryptography cannot parse
        raise NotVerifiedError("bundle", f"the signing certificate {name} does not chain to the given certificates at its issuance ({leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC): {e}") from None  # fmt: skip
    if not _may_sign(leaf):
        raise NotVerifiedError("bundle", f"the signing certificate {name} may not sign (no key usage digitalSignature, no extended key usage codeSigning)")  # fmt: skip
    payload_type, payload = _signed_payload(envelope, leaf.public_key())
    return payload_type, payload, name


def _subject(certificate: x509.Certificate) -> str:
    """The certificate's subject for messages; a hostile one may not decode."""
    try:
        return certificate.subject.rfc4514_string() or "(no subject)"
    except Exception:  # a name attribute of a type cryptography cannot read
        return "(an undecodable subject)"


def _may_sign(certificate: x509.Certificate) -> bool:
    """Key usage digitalSignature or extended key usage codeSigning; extensions that do not
    parse allow nothing."""
    try:
        return _usages_allow_signing(certificate)
    except Exception:  # a malformed extension: cryptography raises ValueError
        return False


def _usages_allow_signing(certificate: x509.Certificate) -> bool:
    with suppress(x509.ExtensionNotFound):
        if certificate.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return True
    with suppress(x509.ExtensionNotFound):
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        return ExtendedKeyUsageOID.CODE_SIGNING in usages
    return False


def _check_named_key(named: Any, key: keys.PublicKey) -> None:
    """model_signing 1.1 names the key by `hint` (hex SHA-256 of the PEM); 1.0 carried the key
    itself in `rawBytes` (base64 of the PEM). Neither is trusted: they only turn a signature
    that would fail anyway into a clearer message."""
    if not isinstance(named, dict):
        raise NotVerifiedError("bundle", "the bundle's publicKey is malformed")
    hint = named.get("hint")
    if not dsse.names_key(hint, oms_hint(key), keys.hint(key)):
        raise NotVerifiedError(
            "bundle",
            f"the signature was made by another key (hint {hint}, this key {oms_hint(key)})",
        )
    if named.get("rawBytes"):
        try:
            raw = _b64(named["rawBytes"])
            carried = (
                serialization.load_pem_public_key(raw)
                if raw.lstrip().startswith(b"-----BEGIN")
                else serialization.load_der_public_key(raw)
            )
        except (ValueError, TypeError, binascii.Error):
            raise NotVerifiedError("bundle", "the bundle's public key is unreadable") from None
        if keys.der(carried) != keys.der(key):
            raise NotVerifiedError("bundle", "the signature was made by another key")


def _check_certificate_key(chain: Any, key: keys.PublicKey) -> None:
    """model_signing's certificate signer puts the signing certificate first. With --key the
    key is what is trusted, so the chain is not walked: the certificate must hold that key."""
    try:
        leaf = x509.load_der_x509_certificate(_b64(chain["certificates"][0]["rawBytes"]))
    except (KeyError, IndexError, TypeError, ValueError, binascii.Error):
        raise NotVerifiedError("bundle", "the bundle's certificate chain is malformed") from None
    if keys.der(leaf.public_key()) != keys.der(key):
        raise NotVerifiedError(
            "bundle",
            f"the signing certificate ({_subject(leaf)}) holds another key",
        )


# -- the statement ----------------------------------------------------------------------------


def _statement(payload_type: str, payload: bytes) -> dict[str, Any]:
    try:
        return in_toto_statement(payload_type, payload, PREDICATE_TYPE)
    except NotVerifiedError as e:
        if COMPAT_PREDICATE_TYPE not in e.reason:
            raise
    return in_toto_statement(payload_type, payload, COMPAT_PREDICATE_TYPE)


def _malformed(what: str) -> NotVerifiedError:
    return NotVerifiedError("payload", f"the model-signing predicate is malformed: {what}")


def _manifest(statement: dict[str, Any]) -> tuple[str, str, Serialization, list[Resource]]:
    """The model's name and digest, the serialization and the resources, checked for form."""
    if statement.get("predicateType") == COMPAT_PREDICATE_TYPE:
        return _compat_manifest(statement)
    subject = statement.get("subject")
    if not isinstance(subject, list) or len(subject) != 1 or not isinstance(subject[0], dict):
        raise NotVerifiedError("payload", "a model signature has exactly one subject")
    digest = subject[0].get("digest")
    sha256 = digest.get("sha256") if isinstance(digest, dict) else None
    if not isinstance(sha256, str) or not _SHA256_HEX.match(sha256):
        raise NotVerifiedError("payload", "the subject has no SHA-256 digest")
    name = subject[0].get("name")
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise _malformed("no predicate")
    manner = _serialization(predicate.get("serialization"))
    listed = predicate.get("resources")
    if not isinstance(listed, list):
        raise _malformed("no resources list")
    resources = [_resource(r, manner.method) for r in listed]
    return name if isinstance(name, str) else "", sha256, manner, resources


def _compat_manifest(statement: dict[str, Any]) -> tuple[str, str, Serialization, list[Resource]]:
    """model_signing 0.2's format: one subject per file with its SHA-256, no predicate, no
    serialization (files, SHA-256, no symlinks, as model_signing reads it) and no model
    digest: the digest over the resources is computed here, for the record."""
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise NotVerifiedError("payload", "a model signature of the 0.2 format lists its files as subjects")  # fmt: skip
    resources = []
    for subject in subjects[:MAX_FILES]:
        digest = subject.get("digest") if isinstance(subject, dict) else None
        sha256 = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(sha256, str) or not _SHA256_HEX.match(sha256):
            raise NotVerifiedError("payload", "a subject has no SHA-256 digest")
        annotations = subject.get("annotations")
        stated = annotations.get("actual_hash_algorithm") if isinstance(annotations, dict) else None  # fmt: skip
        if stated not in (None, "file-sha256"):
            raise NotVerifiedError("payload", f"a subject is hashed as {str(stated)[:50]!r}, which the 0.2 format names but model_signing never verifies: have it re-signed")  # fmt: skip
        resources.append(_resource({"name": subject.get("name"), "algorithm": "sha256", "digest": sha256}, "files"))  # fmt: skip
    hasher = hashlib.sha256()
    for r in resources:
        hasher.update(r.digest)
    manner = Serialization("files", "sha256", False, None, ())
    return "", hasher.hexdigest(), manner, resources


def _serialization(args: Any) -> Serialization:
    if not isinstance(args, dict):
        raise _malformed("no serialization")
    method, hash_type = args.get("method"), args.get("hash_type")
    allow_symlinks, ignore = args.get("allow_symlinks"), args.get("ignore_paths", [])
    if not isinstance(method, str) or not isinstance(hash_type, str):
        raise _malformed("the serialization names no method or hash type")
    if not isinstance(allow_symlinks, bool):
        raise _malformed("allow_symlinks is not true or false")
    if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
        raise _malformed("ignore_paths is not a list of paths")
    shard_size = None
    if method == "shards":
        # The predicate is a protobuf Struct: whole numbers come back as floats (1000.0).
        raw = args.get("shard_size")
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw != int(raw):  # fmt: skip
            raise _malformed("shard_size is not a whole number")
        shard_size = int(raw)
        if shard_size <= 0:
            raise _malformed("shard_size is not positive")
    return Serialization(method, hash_type, allow_symlinks, shard_size, tuple(ignore))


def _resource(item: Any, method: str) -> Resource:
    if not isinstance(item, dict):
        raise _malformed("a resource is not an object")
    name, algorithm, digest = item.get("name"), item.get("algorithm"), item.get("digest")
    if not (isinstance(name, str) and isinstance(algorithm, str) and isinstance(digest, str)):
        raise _malformed("a resource lacks its name, algorithm or digest")
    if not _HEX.match(digest):
        raise _malformed(f"the digest of {name} is not hexadecimal")
    if method != "shards":
        # model_signing keys files by PurePosixPath, so "a//b" and "./a/b" name "a/b"
        path = str(PurePosixPath(name))
        return Resource(path, algorithm, bytes.fromhex(digest), path)
    path_part, _, rest = name.rpartition(":")
    path_part, _, start_part = path_part.rpartition(":")
    try:
        start, end = int(start_part), int(rest)
    except ValueError:
        raise _malformed(f"the shard {name!r} is not PATH:START:END") from None
    if not path_part or start < 0 or end <= start:
        raise _malformed(f"the shard {name!r} is not PATH:START:END")
    path = str(PurePosixPath(path_part))
    return Resource(f"{path}:{start}:{end}", algorithm, bytes.fromhex(digest), path, start, end)


def _check_subjects(subject_digest: str, resources: list[Resource]) -> str:
    """The subject digest is SHA-256 over the raw resource digests, in the listed order
    (model_signing's dsse_payload_to_manifest); a resource listed twice is refused."""
    if not resources:
        raise NotVerifiedError("subjects", "the signature lists no files")
    seen: set[str] = set()
    for r in resources:
        if r.name in seen:
            raise NotVerifiedError("subjects", f"{r.name} is listed twice")
        seen.add(r.name)
    hasher = hashlib.sha256()
    for r in resources:
        hasher.update(r.digest)
    if hasher.hexdigest() != subject_digest:
        raise NotVerifiedError(
            "subjects",
            f"the model digest {subject_digest} is not the digest of the listed files "
            f"({hasher.hexdigest()})",
        )
    return subject_digest


# -- the model --------------------------------------------------------------------------------


def _check_model(
    model: Path, manner: Serialization, resources: list[Resource], exclude: set[Path]
) -> None:
    if manner.method not in ("files", "shards"):
        raise BadInputError(
            f"unsupported serialization {manner.method!r}: mlbom re-hashes models "
            "serialized by files or shards"
        )
    supported = (*_FILE_HASHES, "blake3") if manner.method == "files" else tuple(_FILE_HASHES)
    if manner.hash_type not in supported:
        raise BadInputError(
            f"unsupported hash {manner.hash_type!r} for {manner.method} serialization",
            hint=f"mlbom re-hashes with {', '.join(supported)}",
        )
    for r in resources:
        if r.algorithm != manner.resource_algorithm:
            raise NotVerifiedError(
                "model",
                f"{r.name} is signed with {r.algorithm}, but the serialization hashes with "
                f"{manner.resource_algorithm}",
            )
    signed_paths = {r.path for r in resources}
    found = _model_files(model, _ignored(manner.ignore_paths, signed_paths), manner, exclude)
    if manner.method == "files":
        problems = _compare_files(found, resources, manner.hash_type)
    else:
        problems = _compare_shards(found, resources, manner)
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise NotVerifiedError("model", f"{model}: {'; '.join(problems[:10])}{more}")


def _ignored(paths: tuple[str, ...], signed: set[str]) -> list[tuple[str, ...]]:
    """The ignored paths as path parts. model_signing adds its git defaults at verification
    too, unless the signer signed them (signed without them ignored): then they are checked.
    Paths outside the model ignore nothing, as in model_signing."""
    ignored: list[tuple[str, ...]] = [
        (name,)
        for name in DEFAULT_IGNORED
        if not any(PurePosixPath(p).parts[:1] == (name,) for p in signed)
    ]
    for p in paths:
        pure = PurePosixPath(p)
        if not pure.is_absolute() and ".." not in pure.parts:
            ignored.append(pure.parts)
    return ignored


def _confined_name(name: str) -> bool:
    pure = PurePosixPath(name)
    return bool(name) and not pure.is_absolute() and ".." not in pure.parts and "\0" not in name


def _is_ignored(parts: tuple[str, ...], ignored: list[tuple[str, ...]]) -> bool:
    return any(parts[: len(p)] == p for p in ignored)


def _model_files(
    model: Path, ignored: list[tuple[str, ...]], manner: Serialization, exclude: set[Path]
) -> dict[str, Path]:
    """The model's files as model_signing names them (relative POSIX paths; "." for a model
    that is one file), mapped to the file to read. Symlinks follow `allow_symlinks`, but a
    link never leads out of the model folder; linked folders are not entered (model_signing's
    walk does not enter them either)."""
    if not model.exists():
        raise BadInputError(f"{model}: no such file or folder (or a broken symlink)")
    root = model.resolve()
    if not root.is_dir():
        return {".": _regular(root, model)}
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root, onerror=_unreadable):
        here = Path(folder)
        relative = PurePosixPath(here.relative_to(root).as_posix())
        kept = []
        for name in sorted(dirs):
            rel = relative / name
            if _is_ignored(rel.parts, ignored):
                continue
            if (here / name).is_symlink():
                _symlink_allowed(rel, manner)
                continue
            kept.append(name)
        dirs[:] = kept
        for name in files:
            rel, path = relative / name, here / name
            # the signature itself is no part of the model; a link to it is
            if _is_ignored(rel.parts, ignored) or (
                not path.is_symlink() and path.resolve() in exclude
            ):
                continue
            if path.is_symlink():
                _symlink_allowed(rel, manner)
                path = _confined(path, root)
            found[str(rel)] = _regular(path, here / name)
            if len(found) > MAX_FILES:
                raise BadInputError(f"{model} holds more than {MAX_FILES} files")
    return found


def _symlink_allowed(rel: PurePosixPath, manner: Serialization) -> None:
    # model_signing refuses to hash a folder holding symlinks unless told to allow them, so a
    # link here means the folder is not in the form that was signed.
    if not manner.allow_symlinks:
        raise NotVerifiedError(
            "model",
            f"{rel} is a symlink, and the model was signed without symlinks",
            hint="verify a copy with the links resolved (cp -rL)",
        )


def _confined(path: Path, root: Path) -> Path:
    target = path.resolve()
    if not target.is_relative_to(root):
        raise BadInputError(
            f"{path} is a symlink to {target}, outside the model folder {root}",
            hint="copy the file into the model folder",
        )
    return target


def _regular(path: Path, shown: Path) -> Path:
    try:
        mode = path.stat().st_mode
    except OSError as e:
        raise BadInputError(f"{shown}: cannot read it ({e.strerror})") from None
    if not stat.S_ISREG(mode):
        raise BadInputError(
            f"{shown} is not a regular file",
            hint="remove devices, pipes and sockets from the model folder",
        )
    return path


def _unreadable(error: OSError) -> None:
    raise BadInputError(f"{error.filename}: cannot read it ({error.strerror})")


def _differences(missing: set[str], extra: set[str], changed: set[str]) -> list[str]:
    problems = [f"{n} is missing" for n in sorted(missing)]
    problems += [f"{n} is not in the signature" for n in sorted(extra)]
    problems += [f"{n} has changed" for n in sorted(changed)]
    return problems


def _compare_files(found: dict[str, Path], resources: list[Resource], hash_type: str) -> list[str]:
    want = {r.path: r.digest for r in resources}
    common = sorted(set(found) & set(want))
    if hash_type == "blake3":
        have = {n: _blake3(found[n]) for n in common}
    else:
        alg = _MLBOM_NAMES[hash_type]
        try:
            digests = hash_files([found[n] for n in common], (alg,), cache=None)
        except OSError as e:
            raise BadInputError(f"{e.filename}: cannot read it ({e.strerror})") from None
        have = {n: bytes.fromhex(digests[found[n]][alg]) for n in common}
    changed = {n for n in common if have[n] != want[n]}
    return _differences(set(want) - set(found), set(found) - set(want), changed)


def _blake3(path: Path) -> bytes:
    try:
        import blake3  # model_signing's dependency, not mlbom's: only for blake3 signatures
    except ImportError:
        raise BadInputError(
            "the model was hashed with BLAKE3, and the blake3 package is not installed",
            hint="pip install blake3",
        ) from None
    hasher = blake3.blake3()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                hasher.update(chunk)
    except OSError as e:
        raise BadInputError(f"{path}: cannot read it ({e.strerror})") from None
    return hasher.digest()


def _compare_shards(
    found: dict[str, Path], resources: list[Resource], manner: Serialization
) -> list[str]:
    """Shards are compared file by file: a file whose byte ranges differ from the signed ones
    has changed size and is not read; the others have every range hashed."""
    size = manner.shard_size or 1
    signed: dict[str, dict[tuple[int, int], bytes]] = {}
    for r in resources:
        signed.setdefault(r.path, {})[(r.start or 0, r.end or 0)] = r.digest
    sizes = {n: p.stat().st_size for n, p in found.items()}
    # model_signing writes no shard for an empty file, so an empty file is never extra
    extra = {n for n in set(found) - set(signed) if sizes[n] > 0}
    changed: set[str] = set()
    jobs: list[tuple[str, int, int]] = []
    for name in sorted(set(found) & set(signed)):
        length, want = sizes[name], signed[name]
        if -(-length // size) != len(want):  # count first: never list 10^9 tiny ranges
            changed.add(name)
            continue
        ranges = [(start, min(start + size, length)) for start in range(0, length, size)]
        if set(ranges) != set(want):
            changed.add(name)
            continue
        jobs += [(name, start, end) for start, end in ranges]
    new = _FILE_HASHES[manner.hash_type]

    def work(job: tuple[str, int, int]) -> bool:
        name, start, end = job
        return _hash_range(found[name], start, end, new) == signed[name][(start, end)]

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for job, ok in zip(jobs, pool.map(work, jobs), strict=True):
            if not ok:
                changed.add(job[0])
    return _differences(set(signed) - set(found), extra, changed)


def _hash_range(path: Path, start: int, end: int, new: Callable[[], Any]) -> bytes:
    hasher = new()
    try:
        with open(path, "rb") as f:
            f.seek(start)
            left = end - start
            while left > 0 and (chunk := f.read(min(CHUNK, left))):
                hasher.update(chunk)
                left -= len(chunk)
    except OSError as e:
        raise BadInputError(f"{path}: cannot read it ({e.strerror})") from None
    digest: bytes = hasher.digest()
    return digest
