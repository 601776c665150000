"""The manifest corpus, decided as the webhook decides it.

tests/data/corpus/realistic/: manifests modelled on each runtime's own published examples
(each names its origin), as published or pinned to a commit, with every model each
container loads (`# Expect-model:`) and the decision expected.

tests/data/corpus/bypass/: an attacker's attempts to get an unattested model past the
webhook (annotation lies, duplicated and abbreviated options, positional precedence,
wrappers, env overrides, extra containers, byte-source redirects, caps, KServe-internal
annotations …) and near-misses that must pass, each with the problem classes (`codes`) the
denial must name.

Every model named in `# Attested:` (and every pinned model of a realistic manifest that
expects to be allowed) is signed into a real folder store; the rest never is. Each file is
decided by `admission.review` and, all of them, over HTTPS by `mlbom admission serve`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import admission
import attest
from admission.manifests import admission_review
from admission.policy_loader import load_policy
from attest import keys
from attest.stores import Attestation, open_store
from mlbom.references import parse
from tests.builders import DATA, minimal_bom
from tests.webhook import running_webhook

CORPUS = DATA / "corpus"
REALISTIC = sorted((CORPUS / "realistic").glob("*.yaml"))
BYPASS = sorted((CORPUS / "bypass").glob("*.yaml"))


@dataclass
class Case:
    path: Path
    obj: dict
    allow: bool
    codes: list[str] = field(default_factory=list)
    attested: list[str] = field(default_factory=list)
    models: list[tuple[str, str]] = field(default_factory=list)  # (container, reference)
    origin: str | None = None


def case(path: Path) -> Case:
    text = path.read_text()
    (obj,) = [d for d in yaml.safe_load_all(text) if d]
    found = Case(path, obj, allow=False)
    for line in text.splitlines():
        if not line.startswith("#"):
            continue
        key, _, value = line[1:].strip().partition(": ")
        if key in ("Origin", "Bypass"):
            found.origin = value
        elif key == "Attested":
            found.attested.append(value.strip())
        elif key == "Expect":
            verdict, *codes = value.split()
            found.allow = verdict == "allow"
            found.codes = codes
        elif key == "Expect-model":
            container, _, reference = value.partition(": ")
            found.models.append((container.strip(), reference.strip()))
    return found


def _pinned(reference: str) -> bool:
    try:
        return reference.startswith(("hf://", "oci://")) and parse(reference).pinned
    except Exception:
        return False


@pytest.fixture(scope="module")
def corpus_policy(tmp_path_factory):
    """A folder store holding a signed attestation of every model the corpus attests."""
    root = tmp_path_factory.mktemp("corpus")
    key = keys.generate("ecdsa-p256")
    keys.write_key_pair(key, root / "signer.key", root / "signer.pub", None)
    store = open_store(str(root / "store"))
    attested = {r for c in map(case, BYPASS) for r in c.attested}
    attested |= {r for c in map(case, REALISTIC) if c.allow for _, r in c.models if _pinned(r)}
    for reference in sorted(attested):
        bom = minimal_bom(reference)
        store.push(parse(reference), Attestation(json.dumps(bom).encode(), attest.sign(bom, key=key).encode()))  # fmt: skip
    policy = root / "policy.yaml"
    policy.write_text(yaml.safe_dump({
        "apiVersion": "mlbom.dev/v1", "kind": "AdmissionPolicy",
        "stores": [str(root / "store")],
        "trust": {"signers": [{"name": "corpus", "key": {"path": str(root / "signer.pub")}}]},
    }))  # fmt: skip
    return policy


def decide(policy: Path, obj: dict):
    ((_, decision),) = admission.review([obj], policy=load_policy(policy))
    return decision


def test_the_corpus_is_large_and_cited():
    assert len(REALISTIC) >= 60 and len(BYPASS) >= 60
    for path in REALISTIC:
        c = case(path)
        assert c.origin and c.origin.startswith("http"), path.name
        assert c.models, path.name
    classes = {case(p).origin.split(":", 1)[0] for p in BYPASS}  # type: ignore[union-attr]
    assert len(classes) >= 10, classes


@pytest.mark.parametrize("path", REALISTIC, ids=lambda p: p.name)
def test_realistic_manifest(corpus_policy, path):
    c = case(path)
    decision = decide(corpus_policy, c.obj)
    assert decision.allowed == c.allow, decision.reason
    found = [m.reference for a in decision.accounts for m in a.all_models()]
    found += [p.reference for a in decision.accounts for ct in a.containers for p in ct.paths]
    for container, reference in c.models if c.allow else []:  # every model of an allowed pod
        if reference.startswith(("hf://", "oci://")):
            assert any(reference.lower() == f.lower() for f in found), (container, reference, found)
    if not c.allow:
        assert decision.reason  # a denial says why


@pytest.mark.parametrize("path", BYPASS, ids=lambda p: p.name)
def test_bypass_attempt(corpus_policy, path):
    c = case(path)
    decision = decide(corpus_policy, c.obj)
    assert decision.allowed == c.allow, decision.reason
    codes = {p.code for p in decision.problems}
    assert set(c.codes) <= codes, (c.codes, decision.reason)


@pytest.fixture(scope="module")
def corpus_webhook(corpus_policy, tmp_path_factory):
    with running_webhook(corpus_policy, tmp_path_factory.mktemp("corpus-tls")) as hook:
        yield hook


def test_the_whole_corpus_over_https(corpus_webhook):
    wrong = []
    for path in [*REALISTIC, *BYPASS]:
        c = case(path)
        review = admission_review(c.obj)
        status, body = corpus_webhook.post(json.dumps(review).encode())
        assert status == 200, (path.name, body)
        if body["response"]["allowed"] != c.allow:
            wrong.append((path.name, body["response"].get("status")))
    assert not wrong, wrong


def test_review_json_lists_each_container_and_its_models(corpus_policy):
    path = CORPUS / "realistic" / "vllm-speculative-draft-model.yaml"
    run = subprocess.run(
        [sys.executable, "-m", "mlbom", "admission", "review", str(path), "--policy",
         str(corpus_policy), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    (result,) = json.loads(run.stdout)
    (container,) = result["pods"][0]["containers"]
    assert (container["role"], container["runtime"]) == ("inference", "vLLM")
    assert [m["model"] for m in container["models"]] == [
        "hf://facebook/opt-6.7b",
        "hf://facebook/opt-125m",
    ]
    assert "unpinned" in {p["code"] for p in result["problems"]}


def test_an_update_that_swaps_a_running_pods_images_is_refused(corpus_policy):
    """A Pod UPDATE may change images only: the new ones would start on volumes the old
    ones wrote, beside init containers that do not run again."""
    import asyncio
    import copy

    from admission.reviewer import Reviewer, parse_review

    reviewer = Reviewer.load(corpus_policy)
    pod = next(c.obj for c in map(case, REALISTIC) if c.allow and c.obj["kind"] == "Pod")
    swapped = copy.deepcopy(pod)
    swapped["spec"]["containers"][0]["image"] = "registry.example/other/server:2"

    def decide(obj: dict, old: dict | None) -> bool:
        review = admission_review(obj)
        review["request"] |= {"operation": "UPDATE", "oldObject": old}
        return asyncio.run(reviewer.review(parse_review(review))).allowed

    assert decide(pod, pod)  # an UPDATE that changes no image (labels, say) is judged as ever
    assert not decide(swapped, pod)
    assert not decide(pod, None)  # an UPDATE without the pod it changes
    legacy = {"apiVersion": "v1", "kind": "EphemeralContainers", "metadata": {"name": pod["metadata"]["name"]},
              "ephemeralContainers": [{"name": "debug", "image": "busybox", "targetContainerName": "x"}]}  # fmt: skip
    assert not decide_create(corpus_policy, legacy)


def decide_create(policy: Path, obj: dict) -> bool:
    return decide(policy, obj).allowed


def test_placement_renames_stay_accelerators(corpus_policy):
    from admission.policy_loader import parse_policy

    policy = parse_policy(
        "apiVersion: mlbom.dev/v1\nkind: AdmissionPolicy\nstores: [/s]\n"
        "trust: {signers: [{name: k, keyless: {issuer: https://i, subject: s}}]}\n"
        "confidential: {gpuResourceRenames: {nvidia.com/gpu: nvidia.com/GH100_H100_PCIE}}\n"
        "inference: {gpuResources: [nvidia.com/gpu]}\n"
    )
    assert policy.inference.why("python:3.12", {"nvidia.com/GH100_H100_PCIE": 1})
