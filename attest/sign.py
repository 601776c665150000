"""`sign`: an ML-BOM in, a Sigstore bundle v0.3 (JSON) out, holding a DSSE envelope over the
in-toto statement (`attest.statement`).

Keyless signing goes through the `sigstore` library (Fulcio certificate for an OIDC identity,
Rekor transparency-log entry). Key signing is for air-gapped sites: the bundle names the key
by its hint and carries no certificate and no log entry.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

from attest import keys
from attest.dsse import pae
from attest.statement import PAYLOAD_TYPE, statement
from mlbom.errors import BadInputError

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def sign(
    bom: dict[str, Any],
    *,
    key: keys.PrivateKey | None = None,
    identity_token: str | None = None,
    trust_config: Path | None = None,
    staging: bool = False,
) -> str:
    """The bundle JSON for `bom`: with `key` when given, else keyless. The keyless identity
    token comes from `identity_token`, `SIGSTORE_ID_TOKEN`, ambient CI credentials, or the
    browser flow when a person is at the terminal."""
    return sign_payload(
        statement(bom),
        key=key,
        identity_token=identity_token,
        trust_config=trust_config,
        staging=staging,
    )


def sign_payload(
    payload: bytes,
    *,
    key: keys.PrivateKey | None = None,
    identity_token: str | None = None,
    trust_config: Path | None = None,
    staging: bool = False,
) -> str:
    """The bundle JSON for any in-toto statement's payload bytes (an audit export's manifest,
    say): with `key` when given, else keyless."""
    if key is not None:
        return sign_with_key(payload, key)
    return _sign_keyless(payload, identity_token, trust_config, staging)


def sign_with_key(payload: bytes, key: keys.PrivateKey) -> str:
    hint = keys.hint(key.public_key())
    signature = keys.sign(key, pae(PAYLOAD_TYPE, payload))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": hint}],
        },
    }
    return json.dumps(bundle, indent=2) + "\n"


def trust(trust_config: Path | None, staging: bool) -> Any:
    """The ClientTrustConfig for a private instance, the public staging one, or production."""
    from sigstore.models import ClientTrustConfig

    if trust_config is not None:
        try:
            return ClientTrustConfig.from_json(trust_config.read_text())
        except OSError as e:
            raise BadInputError(f"cannot read {trust_config}: {e.strerror}") from None
        except Exception as e:  # pydantic and protobuf errors alike: a malformed file
            raise BadInputError(
                f"{trust_config} is not a Sigstore ClientTrustConfig: {e}"
            ) from None
    return ClientTrustConfig.staging() if staging else ClientTrustConfig.production()


def _sign_keyless(
    payload: bytes, identity_token: str | None, trust_config: Path | None, staging: bool
) -> str:
    from sigstore._internal.fulcio.client import FulcioClientError
    from sigstore._internal.rekor import RekorClientError
    from sigstore.dsse import Statement
    from sigstore.errors import Error as SigstoreError
    from sigstore.oidc import IdentityError, IdentityToken, Issuer, detect_credential
    from sigstore.sign import SigningContext

    config = trust(trust_config, staging)
    try:
        raw = identity_token or os.environ.get("SIGSTORE_ID_TOKEN") or detect_credential()
        if raw is None and sys.stdin.isatty():
            raw = str(Issuer(config.signing_config.get_oidc_url()).identity_token())
        if raw is None:
            raise BadInputError(
                "no identity token for keyless signing",
                hint="in CI give the job an OIDC token (GitHub Actions: id-token: write), or "
                "pass --identity-token / SIGSTORE_ID_TOKEN, or sign with --key",
            )
        token = IdentityToken(raw)
        context = SigningContext.from_trust_config(config)
        # The default cache=True: sigstore 4.x with cache=False asks for the certificate with
        # one fresh key and signs with another, and the log rightly refuses the entry.
        with context.signer(token) as signer:
            bundle = signer.sign_dsse(Statement(payload))
    except IdentityError as e:
        raise BadInputError(f"the identity token was refused: {e}") from None
    except SigstoreError as e:
        raise BadInputError(f"keyless signing failed: {e}") from None
    except (FulcioClientError, RekorClientError) as e:  # not sigstore Errors: the CA or log said no
        service = "the certificate authority" if isinstance(e, FulcioClientError) else "the log"
        raise BadInputError(f"keyless signing failed: {service} refused: {_refusal(e)}") from None
    except OSError as e:  # requests' connection errors are OSErrors
        raise BadInputError(
            f"keyless signing failed: cannot reach the Sigstore instance ({e})",
            hint="check the network, or --trust-config for a private instance",
        ) from None
    return bundle.to_json()


def _refusal(error: Exception) -> str:
    """What a Sigstore service answered: sigstore wraps the HTTP error without its body."""
    http = error.__cause__ or (error.args[0] if error.args else None)
    response = getattr(http, "response", None)
    if response is None:
        return str(error) or type(error).__name__
    body = response.text.strip()[:500]
    return f"HTTP {response.status_code}" + (f": {body}" if body else "")
