"""The HTML audit report, opened in a real headless browser: Debian's chromium.

The report dicts are valid against schemas/audit-report.schema.json. One chromium is
started for the module and driven over the Chrome DevTools protocol (a websocket on
loopback): the page is loaded from a file, and the tests read what the browser renders
(`innerText`, which leaves out what CSS hides), the DOM it built from the markup (no
script, no image, no event handler from a hostile name), the requests it made (none but
the file), the print style, a screenshot; the PDF is printed by `chromium --print-to-pdf`
as a user would. `make test` installs chromium when it is missing and runs as root;
without it these tests skip locally and fail under CI=true.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import struct
import subprocess
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from mlbom.audit.html import MAX_EVENTS, render_html
from tests.builders import ROOT

SCHEMA = ROOT / "schemas" / "audit-report.schema.json"
HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_VERSION = '"><img src=x onerror=alert(2)>'
HOSTILE_LICENCE = "<style>body{display:none}</style>"
BIDI_DATASET = "invoice\u202egpj.exe"
BSI_FIX = "Regenerate the ML-BOM with --hash sha256 --hash sha512"
CRA_TODO = "Publish a coordinated vulnerability disclosure policy at the contact address"
BROKEN_FINDING = "decisions.jsonl.2 line 57: prev does not match the hash of line 56"
TIMEOUT = 60


# -- realistic reports ----------------------------------------------------------------


def _check(cid, title, status, detail, fix=None, level="required", subject=None):
    return {
        "id": cid,
        "title": title,
        "status": status,
        "detail": detail,
        "fix": fix,
        "level": level,
        "subject": subject,
    }


def _bsi(sha512_ok: bool) -> list[dict]:
    return [
        _check(
            "bsi.creator", "Creator of the SBOM", "pass", "mlbom example <security@example.org>"
        ),
        _check("bsi.timestamp", "Timestamp", "pass", "2025-11-20T10:00:00Z"),
        _check(
            "bsi.hash-sha512",
            "Hash value of the executable part (SHA-512)",
            "pass" if sha512_ok else "fail",
            "every file has a SHA-512" if sha512_ok else "3 of 5 files have no SHA-512",
            fix=None if sha512_ok else BSI_FIX,
        ),
        _check("bsi.license", "Licence", "pass", "Apache-2.0"),
        _check(
            "bsi.archive", "Archive property", "n/a", "no archives in the model", level="additional"
        ),
    ]


def _g7(ok: bool) -> list[dict]:
    return [
        _check("g7.model-card", "Model card", "pass", "present"),
        _check(
            "g7.datasets",
            "Training data provenance",
            "pass" if ok else "fail",
            "2 datasets with revisions" if ok else "no dataset declared",
            fix=None if ok else "Declare the training datasets with --dataset NAME@REVISION",
        ),
    ]


def _event(i: int, allowed: bool, pod: str = "sentiment") -> dict:
    return {
        "time": f"2025-11-{1 + i // 1440 % 28:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00Z",
        "allowed": allowed,
        "namespace": "prod",
        "name": f"{pod}-{i}",
        "kind": "Pod",
        "operation": "CREATE",
        "mode": "enforce",
        "reason": None if allowed else "ML-BOM signature not verified: no trusted signer",
        "log": "/var/log/mlbom/decisions.jsonl",
    }


def _model(**over) -> dict:
    m = {
        "reference": "hf://acme/sentiment-bert@0123456789abcdef0123456789abcdef01234567",
        "digest": "sha256:" + "ab" * 32,
        "purl": "pkg:huggingface/acme/sentiment-bert@0123456789abcdef0123456789abcdef01234567",
        "name": "acme/sentiment-bert",
        "version": "0123456789abcdef0123456789abcdef01234567",
        "store": "oci://registry.example/attestations",
        "bom": {
            "present": True,
            "schemaValid": True,
            "specVersion": "1.6",
            "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
            "timestamp": "2025-11-01T09:00:00Z",
            "files": 5,
            "sha512Files": 5,
            "error": None,
        },
        "signature": {
            "verified": True,
            "signer": "sigstore",
            "identity": "https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main",
            "issuer": "https://token.actions.githubusercontent.com",
            "reason": None,
        },
        "hashesRecheckable": True,
        "licenses": ["Apache-2.0"],
        "datasets": [
            {
                "name": "stanfordnlp/imdb",
                "version": "e6281661ce1c48d982bc483cf8a173c1bbeb5d31",
                "url": "https://huggingface.co/datasets/stanfordnlp/imdb",
                "role": "training",
            }
        ],
        "baseModels": [
            "pkg:huggingface/google-bert/bert-base-uncased@86b5e0934494bd15c9632b12f734a8a67f723594"
        ],
        "unsafeImports": [],
        "cc": {"required": False, "tees": [], "gpu": False},
        "decisions": {
            "allowed": 3,
            "denied": 0,
            "events": [_event(i, True) for i in range(3)],
        },
        "bsi": _bsi(True),
        "bsiPasses": True,
        "g7": _g7(True),
        "findings": [],
    }
    m.update(over)
    return m


def _report() -> dict:
    verified = _model()
    unverified = _model(
        reference="oci://registry.example/models/llama-ft@sha256:" + "cd" * 32,
        digest="sha256:" + "cd" * 32,
        purl=None,
        name="llama-ft",
        version="2.1.0",
        signature={
            "verified": False,
            "signer": None,
            "identity": "https://github.com/mallory/fork/.github/workflows/x.yml@refs/heads/main",
            "issuer": "https://token.actions.githubusercontent.com",
            "reason": "signed by an identity the policy does not trust",
        },
        bom={
            "present": True,
            "schemaValid": True,
            "specVersion": "1.6",
            "files": 5,
            "sha512Files": 2,
        },
        unsafeImports=["posix.system", "builtins.exec"],
        cc={"required": True, "tees": ["sev-snp", "tdx"], "gpu": True},
        decisions={
            "allowed": 0,
            "denied": 2,
            "events": [_event(i, False, "llama") for i in range(2)],
        },
        bsi=_bsi(False),
        bsiPasses=False,
        g7=_g7(False),
        findings=[
            {
                "severity": "error",
                "subject": "oci://registry.example/models/llama-ft@sha256:" + "cd" * 32,
                "message": "the ML-BOM's signature does not verify",
                "fix": "Sign the ML-BOM in the release workflow (mlbom sign)",
            }
        ],
    )
    hostile = _model(
        reference="pvc://models/evil@sha256:" + "ef" * 32,
        digest="sha256:" + "ef" * 32,
        purl="pkg:generic/evil?x=<b>bold</b>",
        name=HOSTILE_NAME,
        version=HOSTILE_VERSION,
        licenses=[HOSTILE_LICENCE],
        bsi=[
            *_bsi(True),
            _check(
                "bsi.effective-licence",
                "Effective licence",
                "fail",
                "no bsi:component:effectiveLicense property",
                fix="add the effective licence",
                level="optional",
            ),
        ],
        datasets=[{"name": BIDI_DATASET, "url": "javascript:alert(3)", "role": "<iframe src=//x>"}],
        baseModels=["<a href=https://evil.example>click</a>"],
        decisions={
            "allowed": 150,
            "denied": 0,
            "events": [_event(i, True, "evil") for i in range(150)],
        },
        findings=[{"severity": "warning", "subject": HOSTILE_NAME, "message": "<b>not bold</b>"}],
    )
    missing = _model(
        reference="hf://acme/no-bom@89abcdef0123456789abcdef0123456789abcdef",
        name=None,
        version=None,
        purl=None,
        bom={"present": False, "schemaValid": False, "error": "no ML-BOM in the store"},
        signature={"verified": False, "reason": "no bundle"},
        hashesRecheckable=False,
        licenses=[],
        datasets=[],
        baseModels=[],
        decisions={"allowed": 0, "denied": 1, "events": [_event(0, False, "nobom")]},
        bsi=[],
        bsiPasses=False,
        g7=[],
    )
    models = [verified, unverified, hostile, missing]
    findings = [
        {
            "severity": "info",
            "subject": "hf://acme/sentiment-bert@0123456789abcdef0123456789abcdef01234567",
            "message": "everything checks",
            "fix": None,
        },
        *unverified["findings"],
        *hostile["findings"],
        {
            "severity": "error",
            "subject": "/var/log/mlbom/decisions.jsonl",
            "message": "the decision log's hash chain is broken",
            "fix": "Restore the log from backup and find out who altered it",
        },
    ]
    return {
        "schemaVersion": "1",
        "generated": "2025-11-26T12:00:00Z",
        "tool": {"name": "mlbom", "version": "0.9.0"},
        "product": {
            "name": "Acme Sentiment Service",
            "manufacturer": "Acme GmbH",
            "contact": "security@acme.example",
            "supportUntil": "2030-12-31",
        },
        "summary": {
            "models": 4,
            "withBom": 3,
            "signedVerified": 2,
            "signedShare": 0.5,
            "bsiPassing": 2,
            "bsiShare": 0.5,
            "allowed": 153,
            "denied": 3,
            "findings": len(findings),
        },
        "models": models,
        "cra": [
            {
                "id": "I.II.1",
                "title": "Identify and document components, including an SBOM",
                "status": "evidence",
                "evidence": "3 of 4 models have a valid ML-BOM",
                "todo": None,
            },
            {
                "id": "I.II.2",
                "title": "Address and remediate vulnerabilities without delay",
                "status": "partial",
                "evidence": "unsafe pickles found in 1 model",
                "todo": "Convert llama-ft to safetensors",
            },
            {
                "id": "I.II.5",
                "title": "Coordinated vulnerability disclosure policy",
                "status": "gap",
                "evidence": "",
                "todo": CRA_TODO,
            },
        ],
        "decisionLogs": [
            {
                "path": "/var/log/mlbom/decisions.jsonl",
                "files": ["decisions.jsonl.1", "decisions.jsonl.2", "decisions.jsonl"],
                "records": 156,
                "intact": False,
                "findings": [BROKEN_FINDING],
            },
            {
                "path": "/var/log/mlbom-staging/decisions.jsonl",
                "files": ["decisions.jsonl"],
                "records": 12,
                "intact": True,
                "findings": [],
            },
        ],
        "findings": findings,
    }


def _validate(report: dict) -> None:
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(report)


# -- the browser ----------------------------------------------------------------------


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _chromium_binary() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if found:
        return found
    message = (
        "Debian's chromium is not installed (make test installs it as root; "
        "else: sudo apt-get install chromium)"
    )
    if _in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def _chromium_args(binary: str, profile: Path) -> list[str]:
    args = [
        binary,
        "--headless=new",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]
    if os.geteuid() == 0:  # chromium refuses to run as root with its sandbox
        args.append("--no-sandbox")
    return args


class Browser:
    """A headless chromium and one page, over the DevTools protocol (flat sessions)."""

    def __init__(self, binary: str, profile: Path) -> None:
        import websocket  # websocket-client

        self.log = profile / "chromium.log"
        # chromium writes the port it picked and the browser's websocket path here
        active = profile / "DevToolsActivePort"
        active.unlink(missing_ok=True)  # a stale one from a reused profile points nowhere
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    *_chromium_args(binary, profile),
                    "--remote-debugging-port=0",
                    "--remote-debugging-address=127.0.0.1",
                    "about:blank",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.ws = None
        self.next_id = 0
        self.events: list[dict] = []
        try:
            deadline = time.monotonic() + TIMEOUT
            while True:
                lines = active.read_text().splitlines() if active.exists() else []
                if len(lines) >= 2:
                    break
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"chromium did not start: {self.log.read_text()[-2000:]}")
                time.sleep(0.05)
            self.ws = websocket.create_connection(
                f"ws://127.0.0.1:{lines[0]}{lines[1]}", suppress_origin=True, timeout=TIMEOUT
            )
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            attached = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
            self.session = attached["sessionId"]
            self.call("Page.enable", session=True)
            self.call("Network.enable", session=True)
        except BaseException:
            self.close()  # never leave a browser behind
            raise

    def call(self, method: str, params: dict | None = None, *, session: bool = False) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            answer = json.loads(self.ws.recv())
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(json.loads(self.ws.recv()))

    def js(self, expression: str, *, wait: bool = False):
        params = {"expression": expression, "returnByValue": True, "awaitPromise": wait}
        result = self.call("Runtime.evaluate", params, session=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def report() -> dict:
    r = _report()
    _validate(r)
    return r


@pytest.fixture(scope="module")
def page_file(report, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "audit report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser(page_file, tmp_path_factory):
    b = Browser(_chromium_binary(), tmp_path_factory.mktemp("profile"))
    try:
        b.open(page_file.as_uri())
        yield b
    finally:
        b.close()


def _text(browser: Browser, selector: str) -> str:
    return browser.js(f"document.querySelector({json.dumps(selector)}).innerText")


# -- without a browser ----------------------------------------------------------------


def test_reports_are_valid_and_output_is_deterministic(report):
    assert render_html(report) == render_html(copy.deepcopy(report))
    empty = {
        **copy.deepcopy(report),
        "models": [],
        "cra": [],
        "decisionLogs": [],
        "findings": [],
        "summary": dict.fromkeys(report["summary"], 0),
    }
    _validate(empty)
    page = render_html(empty)
    assert "No models in this report." in page
    assert "No findings" in page


def test_nothing_loads_or_runs(report):
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    assert f'<meta http-equiv="Content-Security-Policy" content="{csp}">' in page
    assert "<script" not in page.lower()
    assert "@import" not in page and "url(" not in page and "@font-face" not in page

    # Every element and attribute the markup makes: a fixed vocabulary, links in-page only.
    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags: set[str] = set()
            self.attributes: set[str] = set()
            self.hrefs: set[str] = set()

        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)
            self.attributes.update(name for name, _ in attrs)
            self.hrefs.update(v for name, v in attrs if name == "href")

    tags = Tags()
    tags.feed(page)
    assert tags.tags <= {
        *("html", "head", "meta", "title", "style", "body", "header", "nav", "main"),
        *("section", "footer", "h1", "h2", "h3", "p", "strong", "small", "span", "code"),
        *("a", "ol", "ul", "li", "dl", "dt", "dd", "div", "br", "table", "caption"),
        *("thead", "tbody", "tr", "th", "td"),
    }, tags.tags
    assert tags.attributes <= {
        *("lang", "charset", "http-equiv", "content", "name", "aria-label", "id", "class"),
        *("href", "scope"),
    }, tags.attributes
    assert all(h.startswith("#") for h in tags.hrefs), tags.hrefs
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# -- in chromium ----------------------------------------------------------------------


def test_summary_first_with_the_figures(browser):
    order = browser.js("[...document.querySelectorAll('main > section')].map(s => s.id)")
    assert order[:3] == ["summary", "findings", "models"]
    assert order[-2:] == ["cra", "decision-logs"]
    summary = _text(browser, "#summary")
    for expected in (
        "Models\n4",
        "With an ML-BOM\n3 of 4",
        "Valid, signed and verified ML-BOM\n2 of 4 50 %",
        "Passing BSI TR-03183-2\n2 of 4 50 %",
        "Admission decisions: denied\n3",
        "Admission decisions: allowed\n153",
        "Decision logs intact\n1 of 2 1 broken",
        "CRA points with evidence\n1 of 3 1 partial, 1 gap",
    ):
        assert expected in summary, (expected, summary)
    assert "Acme Sentiment Service" in browser.js("document.title")


def test_hostile_text_is_shown_as_text(browser, report):
    # Nothing the hostile model's strings tried to create exists in the DOM.
    assert browser.js("document.querySelectorAll('script, img, iframe, object, embed').length") == 0
    assert browser.js("document.querySelectorAll('style').length") == 1
    assert browser.js("document.querySelectorAll('b').length") == 0
    assert (
        browser.js(
            "[...document.querySelectorAll('*')].filter(e => [...e.attributes]"
            ".some(a => a.name.startsWith('on'))).length"
        )
        == 0
    )
    hrefs = browser.js("[...document.querySelectorAll('[href]')].map(a => a.getAttribute('href'))")
    assert hrefs and all(h.startswith("#") for h in hrefs), hrefs
    # ...and it is all there, literally, as the reader sees it.
    heading = browser.js("document.querySelector('#model-3 h3').innerText")
    assert heading == f"{HOSTILE_NAME} {HOSTILE_VERSION}"
    section = _text(browser, "#model-3")
    for literal in (HOSTILE_LICENCE, "javascript:alert(3)", "<iframe src=//x>", "<b>bold</b>"):
        assert literal in section, literal
    # The bidi override would show "invoiceexe.jpg": it is shown as an escape instead.
    assert "invoice\\u202egpj.exe" in section
    assert "\u202e" not in browser.js("document.body.innerText")
    # The <style> licence did not hide the page.
    assert browser.js("getComputedStyle(document.body).display") == "block"
    models = _text(browser, "#models")
    assert HOSTILE_NAME in models and "acme/sentiment-bert" in models and "llama-ft" in models
    assert "<b>not bold</b>" in _text(browser, "#findings")


def test_models_table_links_to_each_model(browser, report):
    rows = browser.js(
        "[...document.querySelectorAll('#models tbody tr')].map(r => "
        "[r.querySelector('a').getAttribute('href'), r.innerText])"
    )
    assert [href for href, _ in rows] == ["#model-1", "#model-2", "#model-3", "#model-4"]
    assert "VERIFIED" in rows[0][1] and "✗ NOT VERIFIED" not in rows[0][1]
    assert "NOT VERIFIED" in rows[1][1] and "FAIL" in rows[1][1] and "UNSAFE" in rows[1][1]
    # a model without a name is listed by its reference, without a BOM as MISSING
    assert report["models"][3]["reference"] in rows[3][1] and "MISSING" in rows[3][1]
    for i in range(1, 5):
        assert browser.js(f"document.getElementById('model-{i}') !== null")


def test_a_model_that_failed_verification(browser):
    section = _text(browser, "#model-2")
    assert "NOT VERIFIED" in section
    assert "Why not\tsigned by an identity the policy does not trust" in section
    assert "posix.system" in section and "builtins.exec" in section
    assert "sev-snp" in section and "REQUIRED" in section
    assert "ML-BOM signature not verified: no trusted signer" in section  # a denial's reason
    # The BSI table puts the failing check first, with its fix.
    caption, first = _bsi_table(browser, "#model-2")
    assert caption.startswith("✗ FAIL BSI TR-03183-2: 1 of 5 checks failing (1 of them required)")
    assert first.startswith("✗ FAIL") and "bsi.hash-sha512" in first and BSI_FIX in first
    # BSI passes when only optional checks fail: the verdict is the report's.
    caption, first = _bsi_table(browser, "#model-3")
    assert caption.startswith("✓ PASS BSI TR-03183-2: 1 of 6 checks failing (0 of them required)")
    assert first.startswith("✗ FAIL") and "bsi.effective-licence" in first
    # ...and a verified, passing model reads so.
    verified = _text(browser, "#model-1")
    assert "✓ VERIFIED" in verified and "release.yml@refs/heads/main" in verified
    assert "FAIL" not in verified
    assert "stanfordnlp/imdb" in verified and "bert-base-uncased" in verified
    assert "Why not" not in verified
    missing = _text(browser, "#model-4")
    assert "no ML-BOM in the store" in missing and "Why not\tno bundle" in missing


def _bsi_table(browser, section):
    return browser.js(
        f"(t => [t.caption.innerText, t.tBodies[0].rows[0].innerText])([...document"
        f".querySelectorAll('{section} table')].find(t => t.caption.innerText.includes('BSI')))"
    )


def test_events_are_capped(browser):
    rows = browser.js(
        "[...document.querySelectorAll('#model-3 table')].find(t => "
        "t.caption.innerText.startsWith('Admission')).tBodies[0].rows.length"
    )
    assert rows == MAX_EVENTS
    assert f"the {MAX_EVENTS} most recent of 150 decisions" in _text(browser, "#model-3")
    assert "most recent of" not in _text(browser, "#model-1")


def test_cra_gaps_and_the_broken_log(browser):
    gaps = browser.js(
        "[...document.querySelectorAll('#cra tbody tr')].filter(r => "
        "r.cells[0].innerText.includes('GAP')).map(r => r.innerText)"
    )
    assert len(gaps) == 1 and CRA_TODO in gaps[0] and "I.II.5" in gaps[0]
    cra = _text(browser, "#cra")
    assert "✓ EVIDENCE" in cra and "◐ PARTIAL" in cra
    logs = browser.js(
        "[...document.querySelectorAll('#decision-logs tbody tr')].map(r => r.innerText)"
    )
    assert "BROKEN" in logs[0] and BROKEN_FINDING in logs[0]
    assert "INTACT" in logs[1] and "BROKEN" not in logs[1]
    assert "1 broken" in _text(browser, "#decision-logs caption")


def test_the_browser_loaded_nothing_but_the_file(browser, page_file):
    requests = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requests == [page_file.as_uri()]
    assert not [e for e in browser.events if e.get("method") == "Network.loadingFailed"]


def test_print_style(browser):
    browser.call("Emulation.setEmulatedMedia", {"media": "print"}, session=True)
    try:
        assert browser.js("getComputedStyle(document.querySelector('#model-2')).breakBefore") == (
            "page"
        )
        assert browser.js("getComputedStyle(document.querySelector('thead')).display") == (
            "table-header-group"
        )
        assert browser.js("getComputedStyle(document.querySelector('nav')).display") == "none"
        # Badges keep their words and lose their colours: black on the paper.
        badge = browser.js(
            "(b => [b.innerText, getComputedStyle(b).color, getComputedStyle(b).backgroundColor])"
            "(document.querySelector('#model-2 .badge.bad'))"
        )
        assert badge == ["✗ NOT VERIFIED", "rgb(0, 0, 0)", "rgba(0, 0, 0, 0)"]
    finally:
        browser.call("Emulation.setEmulatedMedia", {"media": ""}, session=True)
    assert browser.js("getComputedStyle(document.querySelector('nav')).display") == "block"


def test_screenshot(browser):
    # A fixed viewport: a full-page capture of the tall page takes seconds.
    metrics = {"width": 1280, "height": 1600, "deviceScaleFactor": 1, "mobile": False}
    browser.call("Emulation.setDeviceMetricsOverride", metrics, session=True)
    try:
        png = base64.b64decode(
            browser.call("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        )
    finally:
        browser.call("Emulation.clearDeviceMetricsOverride", session=True)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1280, 1600)
    pixels, offset = b"", 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        if png[offset + 4 : offset + 8] == b"IDAT":
            pixels += png[offset + 8 : offset + 8 + length]
        offset += 12 + length
    assert len(set(zlib.decompress(pixels))) > 16  # text and badges, not a blank page


def test_print_to_pdf(page_file, report, tmp_path):
    pdf = tmp_path / "report.pdf"
    result = subprocess.run(
        [
            *_chromium_args(_chromium_binary(), tmp_path / "profile"),
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page_file.as_uri(),
        ],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", data))
    # the front matter, then each model on its own page, then the CRA table and the logs
    assert pages >= len(report["models"]) + 3, pages


def test_the_policy_forbids_loading(browser, page_file):
    # What the markup never asks for, the page's own CSP refuses anyway: an image from the
    # network added to the live page is blocked by img-src.
    try:
        violated = browser.js(
            "new Promise(done => {"
            " document.addEventListener('securitypolicyviolation',"
            " e => done(e.effectiveDirective));"
            " const image = document.createElement('img');"
            " image.src = 'https://example.invalid/pixel.png';"
            " document.body.append(image); })",
            wait=True,
        )
        assert violated == "img-src"
    finally:
        browser.open(page_file.as_uri())  # the page as rendered, for any later test
