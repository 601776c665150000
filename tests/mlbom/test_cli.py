"""The command as users run it: --help everywhere, stdout/stderr, exit codes, a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.builders import ROOT, assert_valid, hf_folder

EXAMPLE = ROOT / "examples" / "tiny-sentiment"


COMMANDS = ["generate", "sign", "verify", "keygen", "push", "pull", "verify-model", "admission",
            "admission serve", "admission review", "admission check-policy",
            "admission verify-log", "audit", "audit export", "audit check"]  # fmt: skip


@pytest.mark.parametrize("args", [["--help"], ["-h"], *([*c.split(), "--help"] for c in COMMANDS)])
def test_help(cli, args):
    out, _ = cli(*args)
    assert "Usage:" in out


def test_version(cli):
    import mlbom

    out, _ = cli("--version")
    assert mlbom.__version__ in out


def test_stdout_is_only_the_bom(cli, tmp_path):
    folder = hf_folder(tmp_path / "m")
    out, err = cli("generate", folder, "--version", "1")
    assert_valid(out)
    assert "wrote the ML-BOM of 5 files" in err
    out, err = cli("generate", folder, "--version", "1", "-q")
    assert err == ""


def test_example_model(cli):
    out, _ = cli("generate", EXAMPLE, "--version", "1.0.0", "-q")
    bom = assert_valid(out)
    m = bom["metadata"]["component"]
    assert (m["name"], m["licenses"][0]["license"]["id"]) == ("tiny-sentiment", "Apache-2.0")


def test_subprocess_run(tmp_path):
    folder = hf_folder(tmp_path / "m")
    out = tmp_path / "bom.json"
    done = subprocess.run(
        [sys.executable, "-m", "mlbom", "generate", str(folder), "-o", str(out), "--spec-version", "1.7"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert_valid(out.read_text(), "1.7")
    bad = subprocess.run(
        [sys.executable, "-m", "mlbom", "generate", str(tmp_path / "missing")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.startswith("error:")


def test_help_imports_no_heavy_library():
    code = (
        "import sys, json\n"
        "from click.testing import CliRunner\n"
        "from mlbom.cli import main\n"
        "CliRunner().invoke(main, ['generate', '--help'])\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(done.stdout))
    heavy = {
        "cyclonedx",
        "jsonschema",
        "gguf",
        "onnx",
        "numpy",
        "sigstore",
        "huggingface_hub",
        "yaml",
        "lxml",
    }
    assert not heavy & {m.split(".")[0] for m in loaded}


def test_debug_shows_details(cli, tmp_path):
    _, err = cli("--debug", "generate", tmp_path / "missing", code=2)
    assert "no such file or folder" in err


def test_require_cc_is_written_into_the_bom(cli, tmp_path):
    model = hf_folder(tmp_path / "m")
    bom, _ = cli.bom(model, "--require-cc", "tdx,sev-snp", "--gpu-cc", "-q")
    props = bom["metadata"]["component"]["properties"]
    cc = sorted((p["name"], p["value"]) for p in props if p["name"].startswith("mlbom:cc:"))
    assert cc == [("mlbom:cc:gpu", "true"), ("mlbom:cc:required", "true"),
                  ("mlbom:cc:tee", "sev-snp"), ("mlbom:cc:tee", "tdx")]  # fmt: skip
    bom, _ = cli.bom(model, "--require-cc", "-q")  # any TEE
    cc = {p["name"]: p["value"] for p in bom["metadata"]["component"]["properties"]}
    assert cc["mlbom:cc:required"] == "true" and "mlbom:cc:tee" not in cc
    _, err = cli("generate", model, "--require-cc", "sgx", code=2)
    assert "unknown TEE sgx" in err
    _, err = cli("generate", model, "--gpu-cc", code=2)
    assert "--gpu-cc needs --require-cc" in err
