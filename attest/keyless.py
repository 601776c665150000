"""Keyless verification: a bundle signed with a short-lived Fulcio certificate for an OIDC
identity, checked against a Sigstore trusted root, then the identity and its issuer against the
expected signer.

sigstore-python makes the checks (certificate chain, SCT, transparency-log inclusion, signed
time) for the log entries it verifies; for those it does not (cosign's), `attest.transparency`
makes them. sigstore is imported only when a keyless bundle is checked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attest import transparency
from mlbom.errors import BadInputError, NotVerifiedError, shown

if TYPE_CHECKING:
    from attest.verify import ExpectedSigner


def load_trusted_root(path: Path) -> Any:
    """A Sigstore trusted root from a JSON file; `BadInputError` when it is not one."""
    from sigstore.models import TrustedRoot

    try:
        return TrustedRoot.from_file(str(path))
    except OSError as e:
        raise BadInputError(f"cannot read {path}: {e.strerror}") from None
    except Exception as e:  # pydantic and protobuf errors alike: a malformed file
        raise BadInputError(
            f"{path} is not a Sigstore trusted root: {shown(str(e), 200)}"
        ) from None


def sigstore_verifier(
    trusted_root: Path | None, trust_config: Path | None, staging: bool, offline: bool
) -> Any:
    """sigstore-python's Verifier for the trusted root given, a private instance's trust
    configuration, the public staging instance, or production (the default)."""
    from sigstore.verify import Verifier

    from attest.sign import trust

    if sum(bool(x) for x in (trusted_root, trust_config, staging)) > 1:
        raise BadInputError("give one of --trusted-root, --trust-config and --staging")
    if trusted_root is not None:
        return Verifier(trusted_root=load_trusted_root(trusted_root))
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
    bundle: bytes | str, document: dict[str, Any], signer: ExpectedSigner, verifier: Any
) -> tuple[str, bytes, str]:
    """The keyless checks (`bundle`, `identity`) of `bundle` (`document` is its JSON): by
    sigstore-python where it verifies the bundle's log entry, else by `attest.transparency`.
    The payload type, the payload and the signer's identity as the certificate names it."""
    from sigstore.errors import VerificationError
    from sigstore.models import Bundle, InvalidBundle

    entry = transparency.entry_to_verify(document)
    if entry is not None:
        # Its bundle rules still apply (a bundle of version 0.2 or later carries the inclusion
        # proof), and so do any RFC 3161 timestamps the bundle holds.
        parsed = None
        if transparency.bundle_version(document) != "0.1":  # cosign's v2 layout may lack it
            try:
                parsed = Bundle.from_json(bundle)
            except Exception as e:  # InvalidBundle, pydantic/protobuf errors on hostile input
                raise NotVerifiedError("bundle", f"not a valid keyless bundle: {type(e).__name__}: {e}") from None  # fmt: skip
        payload_type, payload, cert = transparency.verify_logged(
            document, entry, verifier._trusted_root
        )
        identity = _identity(cert, signer)
        transparency.check_timestamps(document, parsed, verifier)
        return payload_type, payload, identity

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
    return payload_type, payload, policy.identity


def _identity(cert: Any, signer: ExpectedSigner) -> str:
    """The signer's identity, when the certificate's identity and issuer are the expected."""
    from sigstore.errors import VerificationError

    policy = _Policy(signer)
    try:
        policy.verify(cert)
    except VerificationError as e:
        raise NotVerifiedError("identity", policy.failed or str(e)) from None
    return policy.identity
