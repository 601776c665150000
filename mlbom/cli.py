"""The `mlbom` command. Thin by design: parse, call one library function, print.

Exit codes: 0 success, 1 a check failed, 2 bad input or usage (see mlbom.errors).
Heavy libraries are imported inside the commands, so `mlbom --help` stays fast.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from mlbom import __version__
from mlbom.errors import EXIT_BAD_INPUT, BadInputError, CheckFailedError, MlbomError

F = TypeVar("F", bound=Callable[..., Any])
HASH_CHOICES = ("sha256", "sha384", "sha512", "sha3-256", "sha3-384", "sha3-512",
                "blake2b-256", "blake2b-384", "blake2b-512")  # fmt: skip

_QUIET = click.option("-q", "--quiet", is_flag=True, help="No summary; errors only.")
_JSON_RESULT = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON on stdout."
)
_INSECURE_REGISTRY = click.option(
    "--insecure-registry",
    multiple=True,
    metavar="HOST",
    help="Reach this registry over plain HTTP (loopback registries always are).",
)


def _handle_errors(command: F) -> F:
    """Turn mlbom's errors into a message and an exit code; no traceback unless --debug."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return command(*args, **kwargs)
        except MlbomError as e:
            if debug:
                logging.getLogger("mlbom").exception("failed")
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as e:  # a bug, or input no check foresaw: still no traceback
            if isinstance(e, BrokenPipeError) and _stdout_closed():
                _end_on_closed_stdout()
            if debug:
                raise
            click.echo(
                f"error: unexpected {type(e).__name__}: {e} (run with --debug for details)",
                err=True,
            )
            sys.exit(EXIT_BAD_INPUT)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mlbom")
@click.option("--debug", is_flag=True, help="Log details and show tracebacks.")
def main(debug: bool) -> None:
    """Supply-chain security for machine-learning models: CycloneDX ML-BOMs.

    Exit codes: 0 success, 1 a check failed, 2 bad input or usage, 141 stdout was closed
    before all the output was written (`mlbom generate MODEL | head`).
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _stdout_closed() -> bool:
    """Whether nothing reads stdout any more (the reader of its pipe or socket is gone)."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))
    except (OSError, ValueError, AttributeError):  # no real stdout (a test runner's buffer)
        return False


def _end_on_closed_stdout() -> None:
    """End quietly because the reader of stdout went away (`mlbom generate … | head`).

    Exit 141 (128 + SIGPIPE), what a shell reports for `cat` or `git log` ended the same way:
    the output was cut short, so it is not a success (0), and no check failed (1). Nothing is
    printed, and stdout is pointed at /dev/null first so the interpreter's final flush of
    the unwritten rest raises no "Exception ignored" message.
    """
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(141)


@main.command()
@click.argument("model", metavar="MODEL")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the BOM here (atomically) instead of to stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "xml"]),
    help="Output format [default: from the -o extension, else json].",
)
@click.option(
    "--spec-version",
    type=click.Choice(["1.6", "1.7"]),
    default="1.6",
    show_default=True,
    help="CycloneDX specification version.",
)
@click.option("--name", help="Model name (default: from the card, config or folder).")
@click.option(
    "--version", "model_version", help="Model version (default: from the card or source)."
)
@click.option("--manufacturer", help="Organisation that made the model (BOM creator too).")
@click.option(
    "--manufacturer-contact", metavar="EMAIL_OR_URL", help="How to reach the manufacturer."
)
@click.option(
    "--hash",
    "hashes",
    multiple=True,
    type=click.Choice(HASH_CHOICES),
    help="Digest to record; repeat for several [default: sha256 and sha512; for hf:// "
    "models, large files keep the Hub's SHA-256 unless --hash asks for more, which streams them].",
)
@click.option(
    "--source",
    "verify_source",
    metavar="hf://ORG/REPO@COMMIT",
    help="MODEL is a local copy of this Hub repository: check every file against the Hub's "
    "digests (a mismatch exits 1) and name the model after it.",
)
@_INSECURE_REGISTRY
@click.option(
    "--require-cc",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[TEE,...]",
    help="The model may only run in confidential computing, on these TEEs (sev-snp, tdx; "
    "none named: any). Signed with the BOM, the admission webhook enforces it.",
)
@click.option(
    "--gpu-cc", is_flag=True, help="With --require-cc: confidential GPUs too (NVIDIA CC mode)."
)
@click.option(
    "--env",
    "record_env",
    is_flag=True,
    help="Record the environment this command runs in as the one that trained the model: "
    "Python, every installed distribution, OS, NVIDIA GPUs, driver and CUDA, the git commit "
    "of the current directory (CycloneDX formulation).",
)
@click.option(
    "--requirements",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Record this requirements or lock file (requirements.txt, uv.lock, poetry.lock, "
    "pylock.toml, Pipfile.lock) as the training environment instead of --env.",
)
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    metavar="NAME@REVISION",
    help="A dataset the model was trained on, pinned to a revision; repeat for several.",
)
@click.option(
    "--exclude",
    "excluded",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Leave this file or folder of the model out (a scratch folder, say); repeat for "
    "several. Exclusions are recorded in the BOM, and verification skips exactly them.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["unsafe"]),
    help="Exit 1 (after writing the BOM) when a file runs code on load that is not allowed "
    "(a pickle's unsafe import, a Lambda layer, TorchScript) or could not be fully scanned.",
)
@click.option(
    "--no-cache", is_flag=True, help="Hash every file again; do not use or fill the cache."
)
@click.option(
    "-q", "--quiet", is_flag=True, help="No progress bar or summary; warnings and errors only."
)
@_handle_errors
def generate(
    model: str,
    output: Path | None,
    fmt: str | None,
    spec_version: str,
    name: str | None,
    model_version: str | None,
    manufacturer: str | None,
    manufacturer_contact: str | None,
    hashes: tuple[str, ...],
    verify_source: str | None,
    insecure_registry: tuple[str, ...],
    require_cc: str | None,
    gpu_cc: bool,
    record_env: bool,
    requirements: Path | None,
    datasets: tuple[str, ...],
    excluded: tuple[Path, ...],
    fail_on: str | None,
    no_cache: bool,
    quiet: bool,
) -> None:
    """Write the CycloneDX ML-BOM of MODEL: a model folder, a single model file, a Hugging
    Face Hub repository as hf://ORG/REPO[@REVISION] (HF_ENDPOINT and HF_TOKEN are
    honoured), or an OCI artifact as oci://REGISTRY/REPO[:TAG|@sha256:…] (credentials from
    the docker config). No remote weight file is downloaded.

    Files are hashed, and weights, configs and the model card are read from their
    headers and text only: no weights are loaded and no pickle is ever unpickled.
    """
    from mlbom.errors import BadInputError, shown
    from mlbom.files import check_output, write_atomically
    from mlbom.generator import generate as generate_bom

    if manufacturer_contact and not manufacturer:
        raise BadInputError("--manufacturer-contact needs --manufacturer")
    if record_env and requirements:
        raise BadInputError(
            "--env and --requirements both describe the training environment: give one"
        )
    environment = None
    if record_env:
        from mlbom.environment import collect_environment

        environment = collect_environment()
    elif requirements:
        from mlbom.environment import read_requirements

        environment = read_requirements(requirements)
    to_stdout = output is None or str(output) == "-"
    if not to_stdout:
        check_output(output)  # type: ignore[arg-type]
    fmt = fmt or ("xml" if output and output.suffix.lower() == ".xml" else "json")
    result = generate_bom(
        model,
        name=name,
        version=model_version,
        manufacturer=manufacturer,
        manufacturer_contact=manufacturer_contact,
        algorithms=hashes or None,
        verify_source=verify_source,
        environment=environment,
        datasets=datasets,
        insecure_registries=insecure_registry,
        require_cc=require_cc.split(",") if require_cc is not None else None,
        gpu_cc=gpu_cc,
        cache=not no_cache,
        progress=not quiet,
        exclude=(*excluded, *(() if to_stdout else (output,))),
    )
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    text = result.render(fmt, spec_version)
    if to_stdout:
        click.echo(text, nl=False)
    else:
        write_atomically(output, text)  # type: ignore[arg-type]
    if not quiet:
        target = "stdout" if to_stdout else output
        click.echo(f"wrote the ML-BOM of {len(result.files)} files to {target}", err=True)
    if fail_on == "unsafe" and result.unsafe_imports:
        found = "; ".join(
            f"{shown(path)}: {', '.join(shown(g) for g in found)}"
            for path, found in result.unsafe_imports.items()
        )
        raise CheckFailedError(f"code that runs on load (--fail-on unsafe): {found}")


_KEY_PASSWORD = click.option(
    "--key-password",
    envvar="MLBOM_KEY_PASSWORD",
    metavar="PASSWORD",
    help="Password of the private key [env: MLBOM_KEY_PASSWORD].",
)


@main.command()
@click.argument("bom", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the bundle here [default: BOM.sigstore.json].",
)
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sign with this PEM private key (ECDSA P-256/P-384 or Ed25519) instead of keyless.",
)
@_KEY_PASSWORD
@click.option(
    "--identity-token",
    metavar="TOKEN",
    help="OIDC identity token for keyless signing [default: SIGSTORE_ID_TOKEN, ambient CI "
    "credentials, or the browser].",
)
@click.option(
    "--trust-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A private Sigstore instance (ClientTrustConfig JSON).",
)
@click.option("--staging", is_flag=True, help="Use the public Sigstore staging instance.")
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle.")
@_QUIET
@_handle_errors
def sign(
    bom: Path,
    output: Path | None,
    key: Path | None,
    key_password: str | None,
    identity_token: str | None,
    trust_config: Path | None,
    staging: bool,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Sign the CycloneDX JSON ML-BOM in BOM as an in-toto attestation (predicate type
    https://cyclonedx.org/bom, the model's files as subjects) in a Sigstore bundle."""
    from attest import keys
    from attest.sign import sign as sign_bom
    from attest.statement import read_bom
    from mlbom.errors import BadInputError
    from mlbom.files import write_atomically

    if key and (identity_token or trust_config or staging):
        raise BadInputError("--key signs without Sigstore: drop the keyless options")
    if trust_config and staging:
        raise BadInputError("give --trust-config or --staging, not both")
    target = output or bom.with_name(bom.name + ".sigstore.json")
    if target.exists() and not overwrite:
        raise BadInputError(f"{target} exists", hint="pass --overwrite to replace it")
    document = read_bom(bom)
    private = keys.load_private_key(key, key_password) if key else None
    bundle = sign_bom(
        document,
        key=private,
        identity_token=identity_token,
        trust_config=trust_config,
        staging=staging,
    )
    write_atomically(target, bundle)
    if not quiet:
        click.echo(f"wrote the signed attestation of {bom} to {target}", err=True)


@contextmanager
def _reported(as_json: bool) -> Iterator[None]:
    """With --json, a failed check, or no attestation at all, is printed as JSON too."""
    from attest.stores import CorruptEntryError, NoAttestationError
    from mlbom.errors import NotVerifiedError

    try:
        yield
    except (NotVerifiedError, NoAttestationError, CorruptEntryError) as e:
        if as_json:
            check = e.check if isinstance(e, NotVerifiedError) else "attestation"
            reason = e.reason if isinstance(e, NotVerifiedError) else e.message
            failure = {"verified": False, "failed": check, "reason": reason}
            click.echo(json.dumps(failure, indent=2))
        raise


def _signer(
    key: Path | None, identity: str | None, identity_regexp: str | None, issuer: str | None
) -> Any:
    from attest import keys
    from attest.verify import ExpectedSigner

    public = keys.load_public_key(key) if key else None
    return ExpectedSigner(
        key=public, identity=identity, identity_regexp=identity_regexp, issuer=issuer
    )


def _verification_options(command: F) -> F:
    """The signer (a key, or an identity and issuer) and the trust to verify against:
    the same flags for every verifying command."""
    options = [
        click.option(
            "--key",
            type=click.Path(dir_okay=False, path_type=Path),
            help="PEM public key of the signer.",
        ),
        click.option("--cert-identity", metavar="ID", help="The signer's identity, exactly."),
        click.option(
            "--cert-identity-regexp",
            metavar="RE",
            help="A regular expression the whole identity must match (anchored at both ends).",
        ),
        click.option(
            "--cert-oidc-issuer", metavar="ISSUER", help="The identity's OIDC issuer, exactly."
        ),
        click.option(
            "--trusted-root",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Sigstore trusted root JSON to verify against.",
        ),
        click.option(
            "--trust-config",
            type=click.Path(dir_okay=False, path_type=Path),
            help="A private Sigstore instance (ClientTrustConfig JSON).",
        ),
        click.option("--staging", is_flag=True, help="Verify against the public staging instance."),
        click.option(
            "--offline",
            is_flag=True,
            help="No network: the trusted root shipped with sigstore (or --trusted-root).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.command()
@click.argument("bom", metavar="BOM|MODEL_REF")
@click.option(
    "--bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Sigstore bundle [default: BOM.sigstore.json].",
)
@click.option(
    "--store",
    metavar="STORE",
    help="Find the BOM and bundle of MODEL_REF (hf://…@COMMIT, oci://…@sha256:…, a model "
    "folder) in this store: a folder, oci://REGISTRY/REPO or hf://ORG/REPO.",
)
@_INSECURE_REGISTRY
@_verification_options
@click.option(
    "--model",
    type=click.Path(exists=True, path_type=Path),
    help="Re-hash this model folder (or file): every file must equal its subject.",
)
@_JSON_RESULT
@_handle_errors
def verify(
    bom: str,
    bundle: Path | None,
    store: str | None,
    insecure_registry: tuple[str, ...],
    key: Path | None,
    cert_identity: str | None,
    cert_identity_regexp: str | None,
    cert_oidc_issuer: str | None,
    trusted_root: Path | None,
    trust_config: Path | None,
    staging: bool,
    offline: bool,
    model: Path | None,
    as_json: bool,
) -> None:
    """Verify BOM against its Sigstore bundle and a signer: a public key, or an identity
    and its issuer. With --store, find the BOM and bundle of MODEL_REF there (an OCI store
    also finds what cosign attest --type cyclonedx wrote). Exit 0 verified, 1 not verified
    or no attestation (the failed check is named), 2 bad input or an unreachable store.
    """

    from attest.statement import read_bom
    from attest.stores import verify_stored
    from attest.verify import read_bundle
    from attest.verify import verify as verify_bom
    from mlbom.errors import BadInputError

    signer = _signer(key, cert_identity, cert_identity_regexp, cert_oidc_issuer)
    checks: dict[str, Any] = {
        "trusted_root": trusted_root,
        "trust_config": trust_config,
        "staging": staging,
        "offline": offline,
        "model": model,
    }
    if store:
        if bundle:
            raise BadInputError("--store finds the bundle: drop --bundle")
        with _reported(as_json):
            _, result = verify_stored(
                bom, store, signer, insecure_registries=insecure_registry, **checks
            )
    else:
        bundle = bundle or Path(bom + ".sigstore.json")
        document, raw = read_bom(Path(bom)), read_bundle(bundle)
        with _reported(as_json):
            result = verify_bom(document, raw, signer, model_exclude=(Path(bom), bundle), **checks)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        issuer = f" (issuer {result.issuer})" if result.issuer else ""
        click.echo(
            f"verified: {bom} signed by {result.signer}{issuer}; "
            f"{len(result.subjects)} subjects; checks: {', '.join(result.passed)}"
        )


@main.command()
@click.option(
    "-o",
    "--output",
    "prefix",
    default="mlbom",
    show_default=True,
    help="Write PREFIX.key (private, mode 0600) and PREFIX.pub.",
)
@click.option(
    "--type",
    "kind",
    type=click.Choice(["ecdsa-p256", "ecdsa-p384", "ed25519"]),
    default="ecdsa-p256",
    show_default=True,
    help="Key type.",
)
@_KEY_PASSWORD
@_handle_errors
def keygen(prefix: str, kind: str, key_password: str | None) -> None:
    """Write a key pair for signing without Sigstore (air-gapped sites); the private key is
    encrypted when a password is given."""
    from attest import keys

    private, public = Path(prefix + ".key"), Path(prefix + ".pub")
    keys.write_key_pair(keys.generate(kind), private, public, key_password)  # type: ignore[arg-type]
    if not key_password:
        click.echo("warning: the private key is not encrypted (no --key-password)", err=True)
    click.echo(f"wrote {private} and {public}", err=True)


@main.command("verify-model")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--signature",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The OpenSSF model-signing signature (a Sigstore bundle, often model.sig).",
)
@_verification_options
@click.option(
    "--certificate-chain", "certificate_chain", multiple=True, metavar="PEM",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Instead of --key or an identity: certificates (roots, trusted intermediates) the "
    "signing certificate in the signature must chain to, as model_signing's certificate mode "
    "signs (a publisher's CA). Repeat for several files.",
)  # fmt: skip
@click.option(
    "--ignore-paths", "ignore_paths", multiple=True, metavar="PATH",
    type=click.Path(path_type=Path),
    help="A file or folder inside MODEL left out of the check, as model_signing's "
    "--ignore-paths (relative to the working directory, or absolute). Repeatable.",
)  # fmt: skip
@_JSON_RESULT
@_handle_errors
def verify_model(
    model: Path,
    signature: Path,
    key: Path | None,
    cert_identity: str | None,
    cert_identity_regexp: str | None,
    cert_oidc_issuer: str | None,
    trusted_root: Path | None,
    trust_config: Path | None,
    staging: bool,
    offline: bool,
    certificate_chain: tuple[Path, ...],
    ignore_paths: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Verify MODEL (a folder, or the one file a signature covers) against an OpenSSF
    model-signing signature (every layout model_signing has written since 0.2: key,
    certificate and keyless; as NVIDIA NGC signs its models) and a signer: a public key, a
    certificate chain, or an identity and its issuer. Every file is re-hashed. Exit 0
    verified, 1 not verified (the failed check is named), 2 bad input.
    """

    from attest.model_signatures import CertificateChain
    from attest.model_signatures import verify_model as verify_oms
    from attest.verify import read_bundle

    signer: Any
    if certificate_chain:
        if key or cert_identity or cert_identity_regexp or cert_oidc_issuer:
            raise BadInputError("give --certificate-chain, --key or an identity: one of them")
        signer = CertificateChain.load(list(certificate_chain))
    else:
        signer = _signer(key, cert_identity, cert_identity_regexp, cert_oidc_issuer)
    ignored = _inside(model, ignore_paths)
    raw = read_bundle(signature, "the signature")
    with _reported(as_json):
        result = verify_oms(
            raw,
            signer,
            model=model,
            trusted_root=trusted_root,
            trust_config=trust_config,
            staging=staging,
            offline=offline,
            exclude=(signature,),
            ignore_paths=ignored,
        )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        issuer = f" (issuer {result.issuer})" if result.issuer else ""
        manner = result.serialization
        how = f"{manner.method}, {manner.hash_type}" if manner else "unknown"
        click.echo(
            f"verified: {model} signed by {result.signer}{issuer}; model {result.model_name!r} "
            f"sha256:{result.model_digest}; {len(result.files)} files ({how}); "
            f"checks: {', '.join(result.passed)}"
        )


def _inside(model: Path, paths: tuple[Path, ...]) -> tuple[str, ...]:
    """Paths as model_signing's --ignore-paths takes them (from the working directory, or
    absolute), each as a path inside the model folder; one outside it is refused (model_signing
    drops it silently)."""
    if paths and not model.is_dir():
        raise BadInputError("--ignore-paths needs MODEL to be a folder")
    root = model.resolve()
    inside = []
    for path in paths:
        try:
            inside.append(path.absolute().resolve().relative_to(root).as_posix())
        except ValueError:
            raise BadInputError(f"--ignore-paths {path} is not inside {model}") from None
        if inside[-1] == ".":
            raise BadInputError(f"--ignore-paths {path} is the whole model")
    return tuple(inside)


_TERMINATION_LOG = Path("/dev/termination-log")
_TERMINATION_LIMIT = 4096  # bytes Kubernetes keeps of a termination message


@main.command("verify-load")
@click.argument("reference", metavar="REFERENCE")
@click.option(
    "--path", "path", type=click.Path(path_type=Path),
    help="The folder the pod's server reads the model from (with --fetch: writes it to).",
)  # fmt: skip
@click.option(
    "--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path),
    help="The admission policy: its stores, signers and BOM requirements.",
)  # fmt: skip
@click.option("--namespace", help="The pod's namespace (recorded; its mode applies).")
@click.option(
    "--bom-sha256", metavar="HEX",
    help="Instead of --policy: the SHA-256 of the canonical JSON (RFC 8785) of the BOM "
    "admission verified (the webhook writes it into the pod); the BOM fetched from --store "
    "must have it.",
)  # fmt: skip
@click.option(
    "--store", "stores", multiple=True, metavar="STORE",
    help="With --bom-sha256: a store holding the BOM (oci://REGISTRY/REPO, hf://ORG/REPO).",
)  # fmt: skip
@click.option(
    "--fetch", is_flag=True,
    help="hf:// and oci:// models: download the BOM's files into --path first (Hub models "
    "as a Hugging Face cache: HF_HUB_CACHE=PATH, HF_HUB_OFFLINE=1).",
)  # fmt: skip
@click.option(
    "--termination-log", type=click.Path(dir_okay=False, path_type=Path),
    help="Write a failure here [default: /dev/termination-log when it is writable].",
)  # fmt: skip
@_INSECURE_REGISTRY
@_JSON_RESULT
@_QUIET
@_handle_errors
def verify_load(
    reference: str,
    path: Path | None,
    policy_path: Path | None,
    namespace: str | None,
    bom_sha256: str | None,
    stores: tuple[str, ...],
    fetch: bool,
    termination_log: Path | None,
    insecure_registry: tuple[str, ...],
    as_json: bool,
    quiet: bool,
) -> None:
    """Verify the model REFERENCE (hf://ORG/REPO@COMMIT, oci://REGISTRY/REPO@sha256:…, or a
    local folder's sha256:…) where a pod's server reads it: its attestation from the
    policy's stores, verified as the admission webhook does (or, as the webhook injects it,
    the very BOM admission verified, by --bom-sha256 from --store), then every file at
    --path re-hashed against the signed BOM. Runs as an init container before the server. Exit 0
    verified, 1 not verified (the reason also goes to the termination log), 2 bad input.
    """
    import os
    from contextlib import suppress

    from admission.loadtime import PinnedBom
    from admission.loadtime import verify_load as verify_at_load
    from mlbom.errors import NotVerifiedError, shown

    log = termination_log
    if log is None and _TERMINATION_LOG.exists() and os.access(_TERMINATION_LOG, os.W_OK):
        log = _TERMINATION_LOG
    try:
        pinned = bom_sha256 is not None or bool(stores)
        wanted = (("path", path), ("bom-sha256", bom_sha256), ("store", stores or None)) if pinned else (
            ("path", path), ("policy", policy_path), ("namespace", namespace))  # fmt: skip
        missing = [f"--{n}" for n, v in wanted if v is None]
        if missing:
            raise BadInputError(f"give {', '.join(missing)}", hint="see mlbom verify-load --help")
        if pinned and policy_path is not None:
            raise BadInputError("give --policy, or --bom-sha256 with --store: not both")
        assert path is not None
        trust = PinnedBom(bom_sha256 or "", stores) if pinned else policy_path
        assert trust is not None
        result = verify_at_load(
            reference, path, trust, namespace=namespace, fetch=fetch,
            insecure_registries=insecure_registry,
        )  # fmt: skip
    except Exception as e:
        message = str(e) if isinstance(e, MlbomError) else f"unexpected {type(e).__name__}: {e}"
        text = f"mlbom verify-load {shown(reference)}: {shown(message, 3800)}"
        if log is not None:
            data = text.encode()[: _TERMINATION_LIMIT - 4]
            with suppress(OSError):
                log.write_text(data.decode(errors="ignore") + "\n")
        if as_json:
            check = e.check if isinstance(e, NotVerifiedError) else "input"
            reason = e.reason if isinstance(e, NotVerifiedError) else message
            click.echo(json.dumps({"verified": False, "reference": reference,
                                   "namespace": namespace, "failed": check,
                                   "reason": reason}, indent=2))  # fmt: skip
        raise
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif not quiet:
        fetched = f"; fetched {result.fetched_bytes} bytes" if fetch else ""
        click.echo(
            f"verified: {result.reference} at {result.model_path}: {result.files} files, "
            f"{result.bytes} bytes re-hashed in {result.seconds:.3f} s "
            f"({result.megabytes_per_second:.0f} MB/s); signed by {result.signer}{fetched}"
        )


@main.command()
@click.argument("bom", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Sigstore bundle [default: BOM.sigstore.json].",
)
@click.option(
    "--to", "store", required=True, metavar="STORE",
    help="A folder, oci://REGISTRY/REPO or hf://ORG/REPO.",
)  # fmt: skip
@click.option(
    "--model",
    "model_ref",
    metavar="MODEL_REF",
    help="The model to file it under [default: the BOM's own: its Hub commit, OCI manifest, "
    "or the digest of its files].",
)
@_INSECURE_REGISTRY
@_QUIET
@_handle_errors
def push(
    bom: Path,
    bundle: Path | None,
    store: str,
    model_ref: str | None,
    insecure_registry: tuple[str, ...],
    quiet: bool,
) -> None:
    """Publish BOM and its bundle in an attestation store, filed under the model."""
    from attest.stores import push as push_attestation

    ref, where = push_attestation(
        bom,
        bundle or bom.with_name(bom.name + ".sigstore.json"),
        store,
        model=model_ref,
        insecure_registries=insecure_registry,
    )
    if not quiet:
        click.echo(f"pushed the attestation of {ref} to {where}", err=True)


@main.command()
@click.argument("model_ref", metavar="MODEL_REF")
@click.option(
    "--from", "store", required=True, metavar="STORE",
    help="A folder, oci://REGISTRY/REPO or hf://ORG/REPO.",
)  # fmt: skip
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Write DIR/mlbom.cdx.json and DIR/mlbom.cdx.json.sigstore.json.",
)
@_INSECURE_REGISTRY
@_QUIET
@_handle_errors
def pull(
    model_ref: str, store: str, output: Path, insecure_registry: tuple[str, ...], quiet: bool
) -> None:
    """Fetch the BOM and bundle of MODEL_REF from an attestation store (not verified: run
    mlbom verify on them)."""
    from attest.stores import BOM_NAME, BUNDLE_NAME, attestation_for
    from mlbom.errors import BadInputError
    from mlbom.files import write_atomically

    ref, attestation = attestation_for(model_ref, store, insecure_registries=insecure_registry)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInputError(f"cannot create {output}: {e.strerror}") from None
    write_atomically(output / BOM_NAME, attestation.bom.decode("utf-8", "replace"))
    write_atomically(output / BUNDLE_NAME, attestation.bundle.decode("utf-8", "replace"))
    if not quiet:
        click.echo(
            f"wrote the attestation of {ref} to {output / BOM_NAME} and its bundle", err=True
        )


@main.group()
def admission() -> None:
    """The Kubernetes admission webhook: serve it, review manifests offline, check policies."""


_POLICY = click.option(
    "--policy",
    "policy_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The admission policy (YAML; schema in schemas/policy.schema.json).",
)
_STORES = click.option(
    "--store",
    "stores",
    multiple=True,
    metavar="STORE",
    help="An attestation store to look in, after the policy's own; repeat for several.",
)


@admission.command("check-policy")
@click.argument("policy_path", metavar="POLICY", type=click.Path(dir_okay=False, path_type=Path))
@_handle_errors
def check_policy(policy_path: Path) -> None:
    """Validate a policy file: exit 0 when the webhook would start with it, 2 otherwise."""
    from admission.policy_loader import load_policy

    policy = load_policy(policy_path)
    signers = ", ".join(s.name for s in policy.signers) or "none"
    oms = ", ".join(s.name for s in policy.oms.signers)
    click.echo(
        f"{policy_path}: valid; signers: {signers}; "
        + (f"model-signing signers: {oms}; " if oms else "")
        + f"stores: {len(policy.stores)}; "
        f"default mode: {policy.mode_for('default') or 'excluded'}"
    )


@admission.command("review")
@click.argument("manifests", nargs=-1, required=True, type=click.Path(path_type=Path))
@_POLICY
@_STORES
@click.option(
    "-n", "--namespace", default="default", show_default=True,
    help="Namespace for objects that name none.",
)  # fmt: skip
@click.option(
    "--no-mutate", is_flag=True,
    help="Skip mlbom's mutating webhook (where the chart's mutating.enabled is false): decide "
    "the objects as written.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the decisions as JSON.")
@_handle_errors
def review_manifests(
    manifests: tuple[Path, ...],
    policy_path: Path,
    stores: tuple[str, ...],
    namespace: str,
    no_mutate: bool,
    as_json: bool,
) -> None:
    """Decide MANIFEST files (multi-document YAML, Lists, Helm output; `-` for stdin) exactly
    as the cluster would: mlbom's mutating webhook (placement in a TEE, the load-time
    verifier), then its validating webhook. Exit 1 if any object is denied."""
    import admission
    from admission.manifests import objects_in
    from admission.policy_loader import load_policy

    objects = [o for m in manifests for o in objects_in(m)]
    policy = load_policy(policy_path)
    results = []
    for request, decision in admission.review(
        objects, policy=policy, stores=stores, namespace=namespace, mutate=not no_mutate
    ):
        kind = request.kind.kind if request.kind else None
        what = f"{kind}/{request.name} ({request.namespace})"
        results.append({"object": what, "allowed": decision.allowed, "mode": decision.mode,
                        "category": decision.category, "reason": decision.reason,
                        "warnings": decision.warnings,
                        "problems": [{"code": p.code, "container": p.container, "message": p.message}
                                     for p in decision.problems],
                        "pods": [_account_json(a) for a in decision.accounts]})  # fmt: skip
        if not as_json:
            verdict = "allow" if decision.allowed else "DENY"
            click.echo(f"{verdict:5} {what}: {decision.reason}")
            for warning in decision.warnings:
                click.echo(f"      warning: {warning}")
    if as_json:
        click.echo(json.dumps(results, indent=2))
    denied = [r for r in results if not r["allowed"]]
    if denied:
        raise CheckFailedError(f"{len(denied)} of {len(results)} objects would be denied")


def _account_json(account: Any) -> dict[str, Any]:
    """What discovery found in one pod: per container, its role and each model with where
    it was read from."""

    def model(use: Any) -> dict[str, Any]:
        return {"model": use.reference, "pinned": use.pinned, "checkable": use.mappable,
                "source": use.source, "onAnnotationsWord": use.on_word}  # fmt: skip

    return {
        "models": [model(m) for m in account.models],
        "containers": [
            {"name": c.name, "field": c.where, "role": c.role, "why": c.why,
             "runtime": c.runtime, "models": [model(m) for m in c.models],
             "unresolvedPaths": [model(p) for p in c.paths],
             "problems": [{"code": p.code, "message": p.message} for p in c.problems]}
            for c in account.containers
        ],
    }  # fmt: skip


@admission.command("serve")
@_POLICY
@_STORES
@click.option(
    "--tls-cert", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="PEM certificate (reloaded when the file changes).",
)  # fmt: skip
@click.option(
    "--tls-key", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="PEM private key (reloaded when the file changes).",
)  # fmt: skip
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")  # noqa: S104
@click.option("--port", default=8443, show_default=True, help="HTTPS port for the webhook.")
@click.option(
    "--metrics-port", default=9090, show_default=True,
    help="Plain-HTTP port for /metrics (0: none).",
)  # fmt: skip
@click.option(
    "--discover", is_flag=True,
    help="Read RuntimeClasses and node labels from the API server (in-cluster, else the "
    "kubeconfig) every 60 s, and place pods only on TEEs some node offers.",
)  # fmt: skip
@click.option(
    "--scan-interval", type=click.FloatRange(min=0), default=0, show_default=True,
    help="Seconds between background scans of what runs (0: none); one replica scans, the "
    "holder of the Lease mlbom-admission-scan.",
)  # fmt: skip
@click.option(
    "--scan-namespace", envvar="POD_NAMESPACE", default="default", show_default=True,
    help="Namespace of the scan's Lease (the chart passes its own).",
)  # fmt: skip
@_handle_errors
def serve_webhook(
    policy_path: Path,
    stores: tuple[str, ...],
    tls_cert: Path,
    tls_key: Path,
    host: str,
    port: int,
    metrics_port: int,
    discover: bool,
    scan_interval: float,
    scan_namespace: str,
) -> None:
    """Serve the validating webhook over HTTPS: /validate, /healthz, /readyz, and /metrics
    on the metrics port. Fails closed; one JSON log line per decision on stderr."""

    from admission.reviewer import Reviewer
    from admission.server import Metrics, run

    metrics = Metrics()
    reviewer = Reviewer.load(policy_path, stores, on_cache=metrics.cache_lookup)
    if discover:
        from admission.cluster import ClusterView

        reviewer.cluster = ClusterView.connect(reviewer.policy.confidential)
    for path in (tls_cert, tls_key):
        if not path.is_file():
            raise BadInputError(f"{path}: no such file")
    scanner = None
    if scan_interval:
        import os
        import socket

        from admission.cluster import KubeApi
        from admission.scan import LeaderLease, Scanner, run_forever

        api = KubeApi.connect()
        lease = LeaderLease(api, scan_namespace, os.environ.get("POD_NAME") or socket.gethostname(),
                            seconds=int(max(scan_interval * 2, 60)))  # fmt: skip

        async def scanner(metrics: Metrics) -> None:
            await run_forever(Scanner(reviewer, api), lease, scan_interval, metrics.scanned)

    click.echo(f"mlbom admission webhook on https://{host}:{port}/validate", err=True)
    run(
        reviewer, metrics, host=host, port=port, metrics_port=metrics_port or None,
        tls_cert=tls_cert, tls_key=tls_key, scanner=scanner,
    )  # fmt: skip


@admission.command("scan")
@_POLICY
@_STORES
@click.option("--json", "as_json", is_flag=True, help="Print the scan as JSON.")
@click.option(
    "--write-reports", is_flag=True,
    help="Also write the results as PolicyReports (per namespace) and a ClusterPolicyReport.",
)  # fmt: skip
@click.option(
    "--qps", type=click.FloatRange(min=0.1), default=20, show_default=True,
    help="At most this many API server requests a second.",
)  # fmt: skip
@_handle_errors
def scan_cluster(
    policy_path: Path, stores: tuple[str, ...], as_json: bool, write_reports: bool, qps: float
) -> None:
    """Decide everything that runs in the cluster (in-cluster, else the kubeconfig) as
    admission would now: pods, workloads and serving resources. Exit 1 if any would be
    denied."""
    import asyncio

    from admission import scan
    from admission.cluster import ClusterReadError, KubeApi
    from admission.reviewer import Reviewer

    reviewer = Reviewer.load(policy_path, stores)
    api = KubeApi.connect(qps=qps)
    try:
        result = asyncio.run(scan.Scanner(reviewer, api).scan())
        written = scan.write_reports(api, result) if write_reports else 0
    except ClusterReadError as e:
        raise BadInputError(f"the scan could not read the cluster: {e}") from None
    if as_json:
        click.echo(json.dumps(result.as_json() | {"reportsWritten": written}, indent=2))
    else:
        for finding in result.violations:
            verdict = "DENY" if finding.result == "fail" else "warn"
            where = f" ({finding.namespace})" if finding.namespace else ""
            click.echo(f"{verdict:5} {finding.kind}/{finding.name}{where}: {finding.reason}")
        click.echo(f"{len(result.findings)} objects scanned in {result.seconds:.1f} s "
                   f"({result.api_requests} API requests), {len(result.violations)} violations"
                   + (f", {written} reports written" if write_reports else ""), err=True)  # fmt: skip
    denied = [f for f in result.findings if f.result == "fail"]
    if denied:
        raise CheckFailedError(f"{len(denied)} of {len(result.findings)} objects would be denied")


@admission.command("verify-log")
@click.argument("logs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_handle_errors
def verify_log(logs: tuple[Path, ...], as_json: bool) -> None:
    """Check the hash chain of decision logs (give rotated files oldest first, or the live
    log alone: its rotated files are found beside it). Exit 1 when the chain is broken."""
    from admission.decisions import rotated_files, verify_chain

    paths = list(logs)
    if len(paths) == 1 and paths[0].exists():
        paths = [*rotated_files(paths[0]), paths[0]]
    report = verify_chain(paths)
    if as_json:
        out = {"records": report.records, "files": report.files, "findings": report.findings}
        click.echo(json.dumps(out, indent=2))
    else:
        for finding in report.findings:
            click.echo(f"finding: {finding}")
        click.echo(f"{report.records} records in {len(report.files)} files: "
                   + ("chain intact" if report.intact else "chain BROKEN"))  # fmt: skip
    if not report.intact:
        raise CheckFailedError(
            f"the decision log's hash chain is broken ({len(report.findings)} findings)"
        )


@main.group()
def audit() -> None:
    """CRA compliance evidence: every model's ML-BOM, signature and checks, for auditors."""


@audit.command("export")
@click.option(
    "--store", "stores", multiple=True, required=True, metavar="STORE",
    help="An attestation store to report on (a folder, oci://…, hf://…); repeat for several.",
)  # fmt: skip
@click.option(
    "--decisions", "logs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
    help="An admission decision log (its rotated files are read too); repeat for several.",
)  # fmt: skip
@click.option(
    "--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path),
    help="The admission policy: its signers and trusted root verify the bundles.",
)  # fmt: skip
@click.option(
    "--scan", "scan_path", type=click.Path(dir_okay=False, path_type=Path),
    help="The JSON of `mlbom admission scan --json`: what runs each model now.",
)  # fmt: skip
@click.option("--product", help="The product with digital elements the evidence is for.")
@click.option("--manufacturer", help="Its manufacturer.")
@click.option("--contact", metavar="EMAIL", help="The single point of contact for vulnerabilities.")
@click.option("--support-until", metavar="DATE", help="End of the support period (YYYY-MM-DD).")
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the report (all or nothing).",
)  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(["json", "html", "zip"]),
    help="Output format [default: from the -o extension].",
)  # fmt: skip
@click.option("--sign", is_flag=True, help="ZIP: sign the manifest of digests (keyless or --key).")
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), help="Sign with this key.")
@_KEY_PASSWORD
@click.option("--identity-token", metavar="TOKEN", help="OIDC token for keyless signing.")
@click.option(
    "--trust-config", type=click.Path(dir_okay=False, path_type=Path),
    help="A private Sigstore instance for keyless signing.",
)  # fmt: skip
@_INSECURE_REGISTRY
@_QUIET
@_handle_errors
def audit_export(
    stores: tuple[str, ...],
    logs: tuple[Path, ...],
    policy_path: Path | None,
    scan_path: Path | None,
    product: str | None,
    manufacturer: str | None,
    contact: str | None,
    support_until: str | None,
    output: Path,
    fmt: str | None,
    sign: bool,
    key: Path | None,
    key_password: str | None,
    identity_token: str | None,
    trust_config: Path | None,
    insecure_registry: tuple[str, ...],
    quiet: bool,
) -> None:
    """Export CRA compliance evidence for every model in the stores: per model its BOM
    (schema, BSI TR-03183-2, G7 checks), signature, decisions seen in the logs; the CRA
    Annex I Part II and Annex VII mapping; and every finding with what to do. Findings do
    not fail the export; unusable arguments exit 2."""
    from mlbom.audit import export
    from mlbom.audit.report import Product

    report = export(
        stores, output, fmt=fmt, decision_logs=logs, policy=policy_path, scan=scan_path,
        product=Product(product, manufacturer, contact, support_until),
        sign=sign, key=key, key_password=key_password, identity_token=identity_token,
        trust_config=trust_config, insecure_registries=insecure_registry,
    )  # fmt: skip
    if not quiet:
        s = report.data["summary"]
        click.echo(
            f"wrote {output}: {s['models']} models, {s['signedVerified']} with a verified "
            f"signed BOM, {s['bsiPassing']} passing BSI TR-03183-2, {s['denied']} denials, "
            f"{s['findings']} findings", err=True,
        )  # fmt: skip


@audit.command("check")
@click.argument("bom", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@_handle_errors
def audit_check(bom: Path, as_json: bool) -> None:
    """Run the BSI TR-03183-2 and G7 checks on one BOM and print them; exit 1 when a
    required BSI field fails."""
    from dataclasses import asdict

    from attest.statement import read_bom
    from mlbom.audit.checks import bsi_checks, bsi_passes, g7_checks

    document = read_bom(bom)
    bsi, g7 = bsi_checks(document), g7_checks(document, signed=None)
    if as_json:
        out = {
            "bsi": [asdict(c) for c in bsi],
            "bsiPasses": bsi_passes(bsi),
            "g7": [asdict(c) for c in g7],
        }
        click.echo(json.dumps(out, indent=2))
    else:
        for title, checks in (("BSI TR-03183-2", bsi), ("G7 SBOM for AI", g7)):
            click.echo(f"{title}:")
            for c in checks:
                where = f" [{c.subject}]" if c.subject else ""
                click.echo(f"  {c.status:4} {c.title}{where}: {c.detail}")
                if c.status == "fail" and c.fix:
                    click.echo(f"       fix: {c.fix}")
    if not bsi_passes(bsi):
        failed = sum(c.status == "fail" and c.level == "required" for c in bsi)
        raise CheckFailedError(f"{failed} required BSI TR-03183-2 checks fail")
