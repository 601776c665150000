"""sigstore-conformance's bundle-verification cases through mlbom's `bundle` check.

Each case folder (upstream's `test/assets/bundle-verify/<case>/`, see
tests/data/sigstore-conformance/README.md) holds `bundle.sigstore.json` and, as upstream's
harness reads them (`BundleMaterials.from_dir` in its `test/client.py`): `trusted_root.json`
(else the public-good production root, here the one sigstore ships, offline), `key.pub` (then
the bundle is checked against that key instead of an identity), `identity` and `issuer` (else
the conformance beacon's workflow identity and GitHub's issuer). A name ending in `_fail` must
not verify.

mlbom only verifies DSSE envelopes holding in-toto statements, so:
- every `_fail` case must be refused at the `bundle` check: a `NotVerifiedError` whose
  `.check` is `bundle`, or a `BadInputError` for input that cannot be read at all; nothing
  else, and within a deadline;
- every happy path whose bundle holds a DSSE envelope must pass `bundle` and `identity`; it
  then fails `payload` or `bom`, since its statement is not over the BOM given here;
- a happy path holding a message signature is skipped: mlbom refuses those by design.

The cases are read from three places, each a copy of upstream's `bundle-verify` folder
(tests/data/sigstore-conformance/README.md says why the first is empty):
`tests/data/sigstore-conformance/bundle-verify/`, `shared/sigstore-conformance/bundle-verify/`
beside the work tree (ids prefixed `shared/`), and the folder named by
`MLBOM_SIGSTORE_CONFORMANCE` (ids prefixed `upstream/`). With none, the cases are skipped.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

import attest
from attest import keys
from mlbom.errors import BadInputError, NotVerifiedError
from tests.builders import DATA, ROOT

SUBPATH = Path("sigstore-conformance", "bundle-verify")
SOURCES = [
    ("", DATA / SUBPATH),
    ("shared/", ROOT.parent / "shared" / SUBPATH),
    *([("upstream/", Path(os.environ["MLBOM_SIGSTORE_CONFORMANCE"]))]
      if os.environ.get("MLBOM_SIGSTORE_CONFORMANCE") else []),
]  # fmt: skip

# upstream's test/client.py: CERTIFICATE_IDENTITY, CERTIFICATE_OIDC_ISSUER
IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/"
    "workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ISSUER = "https://token.actions.githubusercontent.com"

BOM = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": []}
DEADLINE = 120  # seconds; one case takes well under one

# Cases whose refusal mlbom gets wrong today: {case name: reason}. Each is a product defect,
# marked xfail(strict=True) so that the fix shows up as an unexpected pass. (None today: the
# intoto 0.0.2 entries sigstore-python refuses are verified by attest.verify itself.)
PRODUCT_DEFECTS: dict[str, str] = {}


@dataclass(frozen=True)
class Case:
    name: str
    folder: Path

    @property
    def must_fail(self) -> bool:
        return self.name.endswith("_fail")

    @property
    def holds_dsse(self) -> bool:
        try:
            document = json.loads((self.folder / "bundle.sigstore.json").read_bytes())
        except ValueError:
            return False
        return isinstance(document, dict) and "dsseEnvelope" in document

    def signer(self) -> attest.ExpectedSigner:
        key = self.folder / "key.pub"
        if key.exists():
            return attest.ExpectedSigner(key=keys.load_public_key(key))
        return attest.ExpectedSigner(
            identity=self._text("identity") or IDENTITY, issuer=self._text("issuer") or ISSUER
        )

    def trusted_root(self) -> Path | None:
        root = self.folder / "trusted_root.json"
        return root if root.exists() else None

    def _text(self, name: str) -> str | None:
        path = self.folder / name
        return path.read_text().strip() if path.exists() else None


def _cases() -> list[object]:
    params: list[object] = []
    for prefix, root in SOURCES:
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if (p / "bundle.sigstore.json").exists()):
            case = Case(folder.name, folder)
            marks = []
            if case.name in PRODUCT_DEFECTS:
                marks.append(pytest.mark.xfail(strict=True, reason=PRODUCT_DEFECTS[case.name]))
            params.append(pytest.param(case, id=prefix + case.name, marks=marks))
    return params


CASES = _cases()


@pytest.fixture
def production(monkeypatch, tmp_path):
    """sigstore's offline production trust: a fresh TUF cache holds the root it ships."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _run(case: Case) -> BaseException | None:
    """mlbom's verification of the case's bundle, offline, in a thread that must end in time:
    the exception it raised, or None."""
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            attest.verify(
                BOM,
                (case.folder / "bundle.sigstore.json").read_bytes(),
                case.signer(),
                trusted_root=case.trusted_root(),
                offline=True,
            )
        except BaseException as e:  # every outcome is judged by the test
            outcome.append(e)
        else:
            outcome.append(None)

    thread = threading.Thread(target=work, name=f"conformance-{case.name}", daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive(), f"{case.name}: no answer within {DEADLINE} s"
    return outcome[0]


def test_the_cases_are_here():
    if not CASES:
        pytest.skip(
            f"no copy of sigstore-conformance's cases in any of {[str(r) for _, r in SOURCES]}"
        )
    names = {p.values[0].name for p in CASES}  # type: ignore[attr-defined]
    assert any(n.endswith("_fail") for n in names)
    assert any(not n.endswith("_fail") for n in names)


@pytest.mark.parametrize(
    "case", CASES or [pytest.param(None, marks=pytest.mark.skip(reason="no cases"))]
)
def test_conformance_case(case: Case, production):
    if not case.must_fail and not case.holds_dsse:
        pytest.skip("a message-signature bundle: mlbom verifies only DSSE in-toto attestations")
    error = _run(case)
    if case.must_fail:
        assert error is not None, f"{case.name} verified, but must be refused"
        if isinstance(error, NotVerifiedError):
            assert error.check == "bundle", f"refused at {error.check!r}: {error.reason}"
        else:
            assert isinstance(error, BadInputError), f"{type(error).__name__}: {error}"
    else:
        # The statement is not over BOM, so the first check after the signer's must fail.
        assert isinstance(error, NotVerifiedError), f"{type(error).__name__}: {error}"
        assert error.check in ("payload", "bom"), f"refused at {error.check!r}: {error.reason}"
