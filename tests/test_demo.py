"""`make demo` (examples/demo/walk.sh): the whole path on the built-in example, offline —
generate, keygen, sign, push, review two pods (one admitted, one denied with its reason), and
the audit evidence — each step a line naming where its output is."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.builders import ROOT


def test_the_demo_walks_the_whole_path(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run(
        ["sh", "examples/demo/walk.sh", str(Path(sys.executable).parent), str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines if line[:1].isdigit()] == ["1.", "2.", "3.", "4.", "5.", "6."]  # fmt: skip
    assert any(line.strip().startswith("allow Pod/sentiment") for line in lines)
    assert any(line.strip().startswith("DENY  Pod/unvetted") and "has no attestation" in line for line in lines)  # fmt: skip
    for name in ("tiny-sentiment.cdx.json", "tiny-sentiment.cdx.json.sigstore.json", "release.pub", "audit.html"):  # fmt: skip
        assert (out / name).is_file(), name
    with zipfile.ZipFile(out / "audit.zip") as package:
        assert "MANIFEST.sha256" in package.namelist()
