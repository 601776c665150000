"""The `mlbom` command. Thin by design: parse, call one library function, print.

Exit codes: 0 success, 1 a check failed, 2 bad input or usage (see mlbom.errors).
Heavy libraries are imported inside the commands, so `mlbom --help` stays fast.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mlbom import __version__
from mlbom.errors import EXIT_BAD_INPUT, CheckFailedError, MlbomError

F = TypeVar("F", bound=Callable[..., Any])
HASH_CHOICES = ("sha256", "sha384", "sha512", "sha3-256", "sha3-384", "sha3-512",
                "blake2b-256", "blake2b-384", "blake2b-512")  # fmt: skip


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

    Exit codes: 0 success, 1 a check failed, 2 bad input or usage.
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


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
    "--fail-on",
    type=click.Choice(["unsafe"]),
    help="Exit 1 (after writing the BOM) when a pickle imports unsafe globals.",
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
    record_env: bool,
    requirements: Path | None,
    datasets: tuple[str, ...],
    fail_on: str | None,
    no_cache: bool,
    quiet: bool,
) -> None:
    """Write the CycloneDX ML-BOM of MODEL: a model folder, a single model file, or a
    Hugging Face Hub repository as hf://ORG/REPO[@REVISION] (HF_ENDPOINT and HF_TOKEN
    are honoured; no weight file is downloaded).

    Files are hashed, and weights, configs and the model card are read from their
    headers and text only: no weights are loaded and no pickle is ever unpickled.
    """
    from mlbom.bom.document import write_atomically
    from mlbom.errors import BadInputError
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
        cache=not no_cache,
        progress=not quiet,
        exclude=() if to_stdout else (output,),  # type: ignore[arg-type]
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
        found = "; ".join(f"{path}: {', '.join(g)}" for path, g in result.unsafe_imports.items())
        raise CheckFailedError(f"unsafe pickle imports: {found}")
