"""The admission policy: the file format (schema, example), every class of problem a policy
file can have, hostile YAML, and what the loaded policy decides about BOMs, namespaces,
pods and confidential computing."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import sigstore
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jsonschema import Draft202012Validator

import mlbom
import schemas
from admission import policy as policy_module
from admission.discovery.runtimes import Sources
from admission.policy import (
    Confidential,
    InferenceSelector,
    Modes,
    Policy,
    Requirements,
    RuntimeClassDetails,
)
from admission.policy_loader import PolicyError, load_policy, parse_policy
from attest import keys
from mlbom.errors import EXIT_BAD_INPUT, BadInputError
from tests.builders import EVIL, ROOT, SAFE_TORCH, torch_zip

EXAMPLE = ROOT / "examples" / "policy.yaml"
TINY = ROOT / "examples" / "tiny-sentiment"

HEAD = """\
apiVersion: mlbom.dev/v1
kind: AdmissionPolicy
stores: [/srv/attestations]
"""
KEYLESS = """\
trust:
  signers:
    - name: ci
      keyless: {issuer: https://token.actions.githubusercontent.com, subject: https://github.com/acme/m/.github/workflows/r.yml@refs/heads/main}
"""


def policy(body: str = "", *, trust: str = KEYLESS, base_dir: Path | None = None) -> Policy:
    return parse_policy(HEAD + trust + textwrap.dedent(body), base_dir=base_dir)


def problems(body: str = "", *, trust: str = KEYLESS, base_dir: Path | None = None) -> list[str]:
    with pytest.raises(PolicyError) as e:
        policy(body, trust=trust, base_dir=base_dir)
    assert isinstance(e.value, BadInputError)
    assert e.value.exit_code == EXIT_BAD_INPUT
    return e.value.problems


def one_problem(body: str = "", **kwargs: object) -> str:
    found = problems(body, **kwargs)  # type: ignore[arg-type]
    assert len(found) == 1, found
    return found[0]


def requirements(**kwargs: object) -> Requirements:
    return Requirements(**kwargs)  # type: ignore[arg-type]


def bom_with(
    *, licenses: list | None = None, components: list | None = None, **component: object
) -> dict:
    model: dict = {"type": "machine-learning-model", "name": "m", **component}
    if licenses is not None:
        model["licenses"] = licenses
    return {"metadata": {"component": model}, "components": components or []}


def write_public_key(path: Path, key: object) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


# --- the file format ----------------------------------------------------------------------


def test_the_example_loads_with_every_section():
    p = load_policy(EXAMPLE)
    assert p.stores == ("/var/lib/mlbom/attestations", "oci://registry.example/models")
    assert [s.name for s in p.signers] == ["release-ci", "release-tags", "airgap"]
    ci, tags, airgap = (s.signer for s in p.signers)
    assert ci.issuer == "https://token.actions.githubusercontent.com" and ci.identity
    assert tags.identity_regexp and tags.identity is None
    # the key path is relative to the policy's folder, and loads as attest.keys does
    expected = keys.load_public_key(EXAMPLE.parent / "keys" / "release.pub")
    assert keys.hint(airgap.key) == keys.hint(expected)  # type: ignore[arg-type]
    assert p.requirements.dataset_provenance == "required"
    assert p.requirements.denied_licenses == ("AGPL-3.0-only", "AGPL-3.0-or-later")
    assert p.mode_for("team-a") == "warn" and p.mode_for("kube-system") is None
    assert p.confidential.tolerations[0]["operator"] == "Exists"
    assert p.verification.deadline_seconds == 8
    assert p.decision_log == Path("/var/log/mlbom/decisions.jsonl")


def test_the_schema_is_valid_and_describes_every_field():
    schema = schemas.load("policy.schema.json")
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == "https://mlbom.dev/schemas/policy.schema.json"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, where
            for name, sub in node.get("properties", {}).items():
                assert sub.get("description"), f"{where}.{name} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(schema, "$")


def test_the_schema_defaults_are_the_ones_the_code_uses():
    props = schemas.load("policy.schema.json")["properties"]
    cc, inference = props["confidential"]["properties"], props["inference"]["properties"]
    verification = props["verification"]["properties"]
    default = Policy(stores=("/x",), signers=())
    assert props["modes"]["properties"]["exclude"]["default"] == list(default.modes.exclude)
    assert props["modes"]["properties"]["default"]["default"] == default.modes.default
    assert inference["images"]["default"] == list(default.inference.images)
    assert inference["gpuResources"]["default"] == list(default.inference.gpu_resources)
    assert cc["tees"]["default"] == list(default.confidential.tees)
    assert cc["runtimeClasses"]["default"] == dict(default.confidential.runtime_classes)
    assert cc["nodeSelectors"]["default"] == {
        t: dict(s) for t, s in default.confidential.node_selectors.items()
    }
    assert cc["gpuNodeSelector"]["default"] == dict(default.confidential.gpu_node_selector)
    assert cc["gpuResourceRenames"]["default"] == dict(default.confidential.gpu_resource_renames)
    assert cc["replaceableRuntimeClasses"]["default"] == list(
        default.confidential.replaceable_runtime_classes
    )
    assert {
        name: RuntimeClassDetails.from_runtime_class(details)
        for name, details in cc["runtimeClassDetails"]["default"].items()
    } == dict(default.confidential.runtime_class_details)
    settings = default.verification
    assert verification["deadlineSeconds"]["default"] == settings.deadline_seconds
    assert verification["cacheSuccessSeconds"]["default"] == settings.cache_success_seconds
    assert verification["cacheFailureSeconds"]["default"] == settings.cache_failure_seconds
    assert verification["cacheEntries"]["default"] == settings.cache_entries
    reqs = props["requirements"]["properties"]
    assert reqs["unsafePickleImports"]["default"] == default.requirements.unsafe_pickle_imports
    assert reqs["datasetProvenance"]["default"] == default.requirements.dataset_provenance
    # and parsing a minimal policy gives the same defaults
    minimal = policy()
    assert minimal.modes == default.modes
    assert minimal.inference == default.inference
    assert minimal.confidential == default.confidential
    assert minimal.verification == default.verification
    assert minimal.requirements == default.requirements


def test_a_minimal_policy():
    p = policy()
    assert p.stores == ("/srv/attestations",)
    assert p.trusted_root is None and p.trust_config is None and p.decision_log is None
    assert p.mode_for("default") == "enforce"
    assert p.mode_for("kube-system") is None  # excluded by default
    assert p.requirements.unsafe_pickle_imports == "deny"
    assert p.bom_problems(mlbom.generate(TINY, version="1").to_dict()) == []


def test_policy_values_are_read_only():
    p = load_policy(EXAMPLE)
    with pytest.raises(TypeError):
        p.confidential.runtime_classes["tdx"] = "runc"  # type: ignore[index]
    with pytest.raises(TypeError):
        p.confidential.node_selectors["tdx"]["x"] = "y"  # type: ignore[index]
    details = p.confidential.runtime_class_details["kata-qemu-nvidia-gpu-snp"]
    with pytest.raises(TypeError):
        details.overhead["memory"] = "1Gi"  # type: ignore[index]
    with pytest.raises(TypeError):
        p.confidential.runtime_class_details["x"] = details  # type: ignore[index]
    with pytest.raises(AttributeError):
        details.tolerations = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p.modes.default = "audit"  # type: ignore[misc]


def test_relative_paths_are_relative_to_the_policy_folder(tmp_path):
    (tmp_path / "keys").mkdir()
    write_public_key(tmp_path / "keys" / "k.pub", ec.generate_private_key(ec.SECP384R1()))
    text = HEAD.replace("/srv/attestations", "attestations") + textwrap.dedent("""\
        trust:
          signers: [{name: k, key: {path: keys/k.pub}}]
        decisionLog: log/decisions.jsonl
        """)
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    p = load_policy(path)
    assert p.stores == (str(tmp_path / "attestations"),)
    assert p.decision_log == tmp_path / "log" / "decisions.jsonl"
    assert p.signers[0].signer.key is not None


def test_inline_pem_keys_and_keyless_regexps():
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    trust = "trust:\n  signers:\n    - name: inline\n      key:\n        pem: |\n"
    trust += textwrap.indent(pem, " " * 10)
    trust += "    - name: tags\n      keyless: {issuer: https://issuer.example, subjectRegExp: 'https://x/.*@refs/tags/v.*'}\n"
    p = policy(trust=trust)
    assert p.signers[0].signer.key is not None
    assert p.signers[1].signer.identity_regexp == "https://x/.*@refs/tags/v.*"


def test_a_trusted_root_is_loaded_at_start_up(tmp_path):
    shipped = Path(sigstore.__file__).parent / "_store"
    roots = sorted(shipped.glob("*sigstore.dev/trusted_root.json"))
    if not roots:
        pytest.skip("sigstore ships no trusted root in this version")
    (tmp_path / "root.json").write_bytes(roots[0].read_bytes())
    p = policy(trust="trust:\n  trustedRoot: root.json\n" + KEYLESS.split("\n", 1)[1], base_dir=tmp_path)  # fmt: skip
    assert p.trusted_root == tmp_path / "root.json"
    (tmp_path / "bad.json").write_text('{"mediaType": "nope"}')
    found = one_problem(trust="trust:\n  trustedRoot: bad.json\n" + KEYLESS.split("\n", 1)[1], base_dir=tmp_path)  # fmt: skip
    assert found.startswith("trust.trustedRoot: ") and "is not a Sigstore trusted root" in found


# --- every class of problem, collected -----------------------------------------------------


def test_an_unknown_field_names_the_closest_known_one():
    found = one_problem("requirements:\n  datasetProvnance: required\n")
    assert found == (
        "requirements.datasetProvnance: unknown field; did you mean datasetProvenance? (line 9)"
    )
    assert "known fields: apiVersion, kind, stores" in one_problem("colour: blue\n")


def test_a_wrong_type_says_what_is_expected():
    assert one_problem("inference: {images: vllm}\n") == (
        'inference.images: must be a list, not the string "vllm" (line 8)'
    )
    found = one_problem("confidential:\n  gpuNodeSelector: {nvidia.com/cc.ready.state: true}\n")
    assert found.startswith(
        'confidential.gpuNodeSelector["nvidia.com/cc.ready.state"]: must be a string, not the boolean true: quote it'
    )
    assert "must be a whole number" in one_problem("verification: {cacheEntries: 1.5}\n")


def test_a_bad_regexp():
    trust = "trust:\n  signers:\n    - name: ci\n      keyless: {issuer: https://i.example, subjectRegExp: '(unclosed'}\n"
    found = one_problem(trust=trust)
    assert found.startswith("trust.signers[0].keyless.subjectRegExp: not a regular expression: ")
    assert found.endswith("(line 7)")


def test_a_missing_key_file(tmp_path):
    trust = "trust:\n  signers: [{name: k, key: {path: nowhere.pub}}]\n"
    found = one_problem(trust=trust, base_dir=tmp_path)
    assert found == (
        f"trust.signers[0].key.path: cannot read the key {tmp_path / 'nowhere.pub'}: "
        "No such file or directory (line 5)"
    )


def test_an_unsupported_key_type(tmp_path):
    write_public_key(tmp_path / "rsa.pub", rsa.generate_private_key(65537, 2048))
    write_public_key(tmp_path / "p521.pub", ec.generate_private_key(ec.SECP521R1()))
    (tmp_path / "junk.pub").write_text("not a key")
    trust = textwrap.dedent("""\
        trust:
          signers:
            - {name: rsa, key: {path: rsa.pub}}
            - {name: p521, key: {path: p521.pub}}
            - {name: junk, key: {path: junk.pub}}
            - {name: inline, key: {pem: "-----BEGIN PUBLIC KEY-----"}}
        """)
    found = problems(trust=trust, base_dir=tmp_path)
    assert found == [
        f"trust.signers[0].key.path: {tmp_path / 'rsa.pub'}: unsupported key type: use an ECDSA P-256 or P-384 key, or Ed25519 (line 6)",
        f"trust.signers[1].key.path: {tmp_path / 'p521.pub'}: unsupported key type: use an ECDSA P-256 or P-384 key, or Ed25519 (line 7)",
        f"trust.signers[2].key.path: {tmp_path / 'junk.pub'} is not a PEM public key (line 8)",
        "trust.signers[3].key.pem: not a PEM public key (line 9)",
    ]


@pytest.mark.parametrize(
    "key", [rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP521R1())]
)
def test_an_inline_key_of_an_unsupported_type(key):
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    trust = "trust:\n  signers:\n    - name: inline\n      key:\n        pem: |\n"
    trust += textwrap.indent(pem, " " * 10)
    found = one_problem(trust=trust)
    assert found.startswith("trust.signers[0].key.pem: unsupported key type: use an ECDSA P-256")


def test_an_invalid_mode():
    assert one_problem("modes: {default: block}\n") == (
        'modes.default: must be one of enforce, warn, audit, not "block" (line 8)'
    )
    assert one_problem("modes:\n  namespaces: {team-a: deny}\n") == (
        'modes.namespaces.team-a: must be one of enforce, warn, audit, not "deny" (line 9)'
    )
    assert one_problem("modes:\n  namespaces: {Team_A: warn}\n") == (
        'modes.namespaces: "Team_A" is not a valid Kubernetes namespace name (line 9)'
    )


def test_every_problem_is_collected_into_one_error(tmp_path):
    text = textwrap.dedent("""\
        apiVersion: mlbom.dev/v2
        kind: AdmissionPolicy
        stores: [s3://bucket/models]
        trust:
          trustedRoot: a.json
          trustConfig: b.json
          signers:
            - name: a
              keyless: {issuer: https://i.example, subject: x}
              key: {path: k.pub}
            - name: a
            - name: c
              keyless: {issuer: not-a-url, subject: x}
        requirements:
          requiredFields: [metadata..version]
          licenses: {allow: ["MIT["]}
          unsafePickleImports: maybe
        modes:
          namespaces: {kube-system: audit}
        confidential:
          tees: [sev-snp, cca, sev-snp]
          tolerations: [{key: x, operator: Maybe}]
        verification: {deadlineSeconds: 0, cacheSuccessSeconds: -1}
        on: true
        """)
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as e:
        load_policy(path)
    assert e.value.problems == [
        'apiVersion: must be mlbom.dev/v1, not "mlbom.dev/v2" (line 1)',
        "stores[0]: unsupported store s3://bucket/models: give a folder, oci://REGISTRY/REPO or hf://ORG/REPO (line 3)",
        "trust: give trustedRoot or trustConfig, not both (a trust config holds its own trusted root) (line 5)",
        "trust.signers[0]: give exactly one of keyless and key (both keyless and key are given) (line 8)",
        f"trust.signers[0].key.path: cannot read the key {tmp_path / 'k.pub'}: No such file or directory (line 10)",
        "trust.signers[1]: give exactly one of keyless and key (neither is given) (line 11)",
        "trust.signers[1].name: another signer is already named a (line 11)",
        'trust.signers[2].keyless.issuer: "not-a-url" is not a valid https URL (line 13)',
        'requirements.requiredFields[0]: "metadata..version" is not a valid dotted path into the BOM (for example metadata.component.version) (line 15)',
        "requirements.licenses.allow[0]: the glob MIT[ has an unclosed [ (write [[] for a literal [) (line 16)",
        'requirements.unsafePickleImports: must be one of deny, allow, not "maybe" (line 17)',
        "modes.namespaces.kube-system: the namespace is also excluded (modes.exclude): give it a mode or exclude it, not both (line 19)",
        "confidential.tees[1]: the TEE cca has no runtime class: add one under confidential.runtimeClasses (line 21)",
        "confidential.tees[1]: the TEE cca has no node selector: add one under confidential.nodeSelectors (line 21)",
        "confidential.tees[2]: sev-snp is listed twice (line 21)",
        'confidential.tolerations[0].operator: must be one of Equal, Exists, not "Maybe" (line 22)',
        "verification.cacheSuccessSeconds: must be at least 0, not -1 (line 23)",
        "verification.deadlineSeconds: must be more than 0, not 0 (line 23)",
        "on: the key 'on' is read as a boolean: quote it (line 24)",
    ]
    message = str(e.value)
    assert message.startswith(f"{path}: the policy has 19 problems:\n  apiVersion: ")
    assert "hint: fix them and check again with `mlbom admission check-policy FILE`" in message


def test_required_sections_and_duplicate_keys():
    with pytest.raises(PolicyError) as e:
        parse_policy("apiVersion: mlbom.dev/v1\nkind: AdmissionPolicy\nkind: AdmissionPolicy\n")
    assert e.value.problems == [
        "stores: required field is missing (line 1)",
        "trust: required field is missing (line 1)",
        "kind: the key is given twice (line 3)",
    ]
    assert (
        one_problem(trust="trust:\n  signers: []\n") == "trust.signers: must not be empty (line 5)"
    )


def test_a_tee_of_ones_own_needs_its_runtime_class_and_node_selector():
    p = policy("""\
        confidential:
          tees: [cca, tdx]
          runtimeClasses: {cca: kata-cca, tdx: kata-tdx-custom}
          nodeSelectors: {cca: {example.com/cca: "true"}}
          gpuNodeSelector: {}
          gpuResourceRenames: {}
        """)
    cc = p.confidential
    assert cc.tees == ("cca", "tdx")
    # entries given override the built-in ones per TEE; the others stay
    assert dict(cc.runtime_classes) == {
        "sev-snp": "kata-qemu-nvidia-gpu-snp",
        "tdx": "kata-tdx-custom",
        "cca": "kata-cca",
    }
    assert dict(cc.node_selectors["tdx"]) == {
        "feature.node.kubernetes.io/cpu-security.tdx.enabled": "true"
    }
    assert dict(cc.node_selectors["cca"]) == {"example.com/cca": "true"}
    assert dict(cc.gpu_node_selector) == {} and dict(cc.gpu_resource_renames) == {}
    vendor = policy('confidential:\n  nodeSelectors: {sev-snp: {amd.feature.node.kubernetes.io/snp: "true"}}\n')  # fmt: skip
    assert dict(vendor.confidential.node_selectors["sev-snp"]) == {
        "amd.feature.node.kubernetes.io/snp": "true"
    }
    assert "is empty" in one_problem("confidential:\n  nodeSelectors: {tdx: {}}\n")


def test_runtime_classes_that_are_replaced_and_what_runtime_classes_hold():
    p = policy("""\
        confidential:
          replaceableRuntimeClasses: [nvidia, runc, nvidia, runsc]
          runtimeClassDetails:
            kata-qemu-nvidia-gpu-snp:
              overhead: {podFixed: {memory: 16384Mi, cpu: "1"}}
              scheduling:
                nodeSelector: {katacontainers.io/kata-runtime: "true"}
                tolerations: [{key: kata, operator: Exists, effect: NoSchedule}]
            kata-cca: {}
        """)
    cc = p.confidential
    assert cc.replaceable_runtime_classes == ("nvidia", "runc", "runsc")
    # an entry given replaces the built-in one of that class; the other stays
    snp = cc.runtime_class_details["kata-qemu-nvidia-gpu-snp"]
    assert dict(snp.overhead) == {"memory": "16384Mi", "cpu": "1"}
    assert dict(snp.node_selector) == {"katacontainers.io/kata-runtime": "true"}
    assert [dict(t) for t in snp.tolerations] == [
        {"key": "kata", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert cc.runtime_class_details["kata-cca"] == RuntimeClassDetails()
    tdx = cc.runtime_class_details["kata-qemu-nvidia-gpu-tdx"]
    assert dict(tdx.overhead) == {"cpu": "1", "memory": "10240Mi"}  # kata-deploy's
    assert policy("confidential: {replaceableRuntimeClasses: []}\n").confidential.replaceable_runtime_classes == ()  # fmt: skip
    assert RuntimeClassDetails.from_runtime_class(
        {"kind": "RuntimeClass", "handler": "h", "overhead": {"podFixed": {"cpu": "250m"}}}
    ) == RuntimeClassDetails(overhead={"cpu": "250m"})  # type: ignore[arg-type]


def test_runtime_class_details_problems():
    assert one_problem(
        "confidential:\n  runtimeClassDetails: {kata-x: {overhead: {podFixed: {memory: 2}}}}\n"
    ).startswith(
        "confidential.runtimeClassDetails.kata-x.overhead.podFixed.memory: must be a string, not the number 2: quote it"
    )
    assert one_problem(
        "confidential:\n  runtimeClassDetails: {kata-x: {overhead: {podFixed: {memory: 2 GB}}}}\n"
    ).startswith(
        'confidential.runtimeClassDetails.kata-x.overhead.podFixed.memory: "2 GB" is not a valid Kubernetes quantity'
    )
    assert one_problem(
        "confidential:\n  runtimeClassDetails: {kata-x: {overhead: {fixed: {}}}}\n"
    ).startswith(
        "confidential.runtimeClassDetails.kata-x.overhead.fixed: unknown field; did you mean podFixed?"
    )
    assert "is not a valid RuntimeClass name" in one_problem(
        "confidential:\n  replaceableRuntimeClasses: [Nvidia]\n"
    )
    assert "must be a string" in one_problem(
        "confidential:\n  runtimeClassDetails: {kata-x: {scheduling: {nodeSelector: {a: true}}}}\n"
    )


# --- hostile YAML ------------------------------------------------------------------------------


def billion_laughs(levels: int = 9) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (billion_laughs(), "refused: more than 100000 values once its aliases are expanded"),
        ("a: &a x\nb: [" + ", ".join(["*a"] * 65) + "]\n", "refused: more than 64 YAML aliases"),
        ("a: &a [*a]\n", "refused: a YAML alias refers to a value that contains it"),
        ("[" * 5000 + "]" * 5000, "refused: values nested more than 64 deep"),
        (
            "a: &a " + "[" * 40 + "x" + "]" * 40 + "\nb: " + "[" * 40 + "*a" + "]" * 40 + "\n",
            "refused: values nested more than 64 deep",
        ),
        (
            "!!python/object/apply:os.system [echo]\n",
            "line 1, column 1: not valid YAML: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system' (a policy is plain YAML: no tags)",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "line 2, column 1: not valid YAML: expected a single document in the stream but found another document",
        ),
        ("a: \x07\n", "character #x0007 at offset 3 is not YAML text"),
        ("", "the policy is empty"),
        ("# only a comment\n", "the policy is empty"),
        ("- a list\n", "(top level): must be a mapping, not a list (line 1)"),
    ],
)
def test_hostile_yaml_is_refused(text, expected):
    with pytest.raises(PolicyError) as e:
        parse_policy(text)
    assert e.value.problems[0] == expected


def test_a_few_aliases_are_fine():
    p = policy(
        "modes:\n  exclude: &system [kube-system, kube-public]\n"
        "confidential:\n  required: {namespaces: *system}\n"
    )
    assert p.confidential.required_namespaces == ("kube-system", "kube-public")


def test_huge_and_binary_files(tmp_path):
    huge = tmp_path / "huge.yaml"
    huge.write_text(HEAD + KEYLESS + "#" * (1 << 20) + "\n")
    with pytest.raises(PolicyError, match="larger than 1 MiB"):
        load_policy(huge)
    with pytest.raises(PolicyError, match="larger than 1 MiB"):
        parse_policy("#" * ((1 << 20) + 1))
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    with pytest.raises(PolicyError, match="the file is binary, not YAML"):
        load_policy(binary)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("stores: [/caf\xe9]\n".encode("latin-1"))
    with pytest.raises(PolicyError, match=r"not UTF-8 text \(byte 13\)"):
        load_policy(latin)
    with pytest.raises(BadInputError, match="cannot read the policy") as e:
        load_policy(tmp_path / "missing.yaml")
    assert not isinstance(e.value, PolicyError)


# --- licences -------------------------------------------------------------------------------


def test_denied_and_allowed_licences():
    rules = requirements(allowed_licenses=("Apache-2.0", "MIT", "LicenseRef-*"), denied_licenses=("AGPL-3.0-only",))  # fmt: skip
    ok = [{"license": {"id": "Apache-2.0"}}, {"license": {"id": "mit"}}]  # ids ignore case
    assert rules.problems(bom_with(licenses=ok)) == []
    assert rules.problems(bom_with(licenses=[{"license": {"name": "LicenseRef-acme"}}])) == []
    assert rules.problems(bom_with(licenses=[{"license": {"id": "AGPL-3.0-only"}}])) == [
        "licence AGPL-3.0-only is denied by the policy"
    ]
    assert rules.problems(bom_with(licenses=[{"license": {"id": "GPL-3.0-only"}}])) == [
        "licence GPL-3.0-only is not one the policy allows (Apache-2.0, MIT, LicenseRef-*)"
    ]
    assert rules.problems(bom_with(licenses=[{"license": {"name": "llama3.1"}}])) == [
        "licence llama3.1 is not one the policy allows (Apache-2.0, MIT, LicenseRef-*)"
    ]


def test_licence_expressions_are_checked_per_id():
    deny = requirements(denied_licenses=("AGPL-*",))
    allow = requirements(allowed_licenses=("Apache-2.0", "MIT", "GPL-2.0-only"))

    def expression(text: str) -> dict:
        return bom_with(licenses=[{"expression": text}])

    assert deny.problems(expression("MIT OR AGPL-3.0-only")) == [
        "licence AGPL-3.0-only (in MIT OR AGPL-3.0-only) is denied by the policy"
    ]
    assert deny.problems(expression("(MIT AND Apache-2.0)")) == []
    assert allow.problems(expression("Apache-2.0 AND (MIT OR BSD-3-Clause)")) == [
        "licence BSD-3-Clause (in Apache-2.0 AND (MIT OR BSD-3-Clause)) is not one the policy allows (Apache-2.0, MIT, GPL-2.0-only)"
    ]
    # the exception after WITH is not a licence
    assert allow.problems(expression("GPL-2.0-only WITH Classpath-exception-2.0")) == []
    assert allow.problems(expression("mit or apache-2.0")) == []  # lower-case operators


def test_a_model_without_a_licence():
    assert requirements(denied_licenses=("AGPL-3.0-only",)).problems(bom_with()) == []
    assert requirements(allowed_licenses=("MIT",)).problems(bom_with()) == [
        "the model declares no licence, and the policy allows only MIT: add license: to the model card's front matter"
    ]


def test_licences_of_a_generated_bom():
    bom = mlbom.generate(TINY, version="1").to_dict()  # Apache-2.0
    assert requirements(allowed_licenses=("apache-*",)).problems(bom) == []
    assert requirements(denied_licenses=("Apache-2.0",)).problems(bom) == [
        "licence Apache-2.0 is denied by the policy"
    ]


# --- required fields, unsafe imports, datasets -------------------------------------------------


def test_required_fields_say_how_to_fill_them():
    bom = mlbom.generate(TINY, version="1").to_dict()
    rules = requirements(
        required_fields=(
            "metadata.component.version",
            "metadata.component.licenses",
            "metadata.manufacturer",
            "formulation",
            "metadata.component.modelCard.modelParameters.task",
        )
    )
    assert rules.problems(bom) == [
        "required field metadata.manufacturer is missing: generate with --manufacturer",
        "required field formulation is missing: generate with --env or --requirements FILE in the training pipeline",
    ]
    made = mlbom.generate(TINY, version="1", manufacturer="Acme", datasets=["stanfordnlp/sst2@abc"])
    assert rules.problems(made.to_dict()) == []
    # through a list, every element must have the field: the dataset has no hashes
    assert requirements(required_fields=("components.hashes",)).problems(bom) == [
        "required field components.hashes is missing at components[0].hashes"
    ]
    assert requirements(required_fields=("components.name",)).problems(bom) == []
    bom["metadata"]["component"]["version"] = ""
    assert requirements(required_fields=("metadata.component.version",)).problems(bom) == [
        "required field metadata.component.version is missing: generate with --version"
    ]


def test_unsafe_pickle_imports(tmp_path):
    model = tmp_path / "model"
    torch_zip(model / "pytorch_model.bin", [*EVIL, *SAFE_TORCH])
    (model / "config.json").write_text(json.dumps({"model_type": "bert"}))
    bom = mlbom.generate(model, version="1").to_dict()
    assert requirements().problems(bom) == [
        "file pytorch_model.bin imports os.system when unpickled"
    ]
    assert requirements(unsafe_pickle_imports="allow").problems(bom) == []
    # a BOM that lists the import on the model only (no file components)
    model_only = bom_with(properties=[{"name": "mlbom:unsafe-import", "value": "builtins.eval"}])
    assert requirements().problems(model_only) == ["the model imports builtins.eval when unpickled"]
    assert requirements().problems(mlbom.generate(TINY, version="1").to_dict()) == []


def test_dataset_provenance():
    rules = requirements(dataset_provenance="required")
    unpinned = mlbom.generate(TINY, version="1").to_dict()
    assert rules.problems(unpinned) == [
        "dataset stanfordnlp/sst2 has no revision: generate with --dataset stanfordnlp/sst2@REV"
    ]
    assert requirements().problems(unpinned) == []  # optional by default
    pinned = mlbom.generate(TINY, version="1", datasets=["stanfordnlp/sst2@8d51e7e"]).to_dict()
    assert rules.problems(pinned) == []

    data = next(c for c in pinned["components"] if c["type"] == "data")
    del data["externalReferences"], data["data"][0]["contents"]
    assert rules.problems(pinned) == [
        "dataset stanfordnlp/sst2 has no source URL: name it by its Hub id (ORG/NAME) in the model card, or add its URL to the BOM"
    ]
    pinned["components"].remove(data)
    assert rules.problems(pinned) == [
        "dataset dataset:stanfordnlp/sst2 is named by the model card but is not in the BOM's components"
    ]
    del pinned["metadata"]["component"]["modelCard"]["modelParameters"]["datasets"]
    assert rules.problems(pinned) == [
        "the model names no training datasets: name them in the model card (datasets:) or generate with --dataset NAME@REVISION"
    ]
    inline = bom_with(
        modelCard={
            "modelParameters": {
                "datasets": [
                    {
                        "type": "dataset",
                        "name": "imdb",
                        "contents": {"url": "https://x.example/imdb"},
                    }
                ]
            }
        }
    )
    assert rules.problems(inline) == [
        "dataset imdb has no revision: generate with --dataset imdb@REV"
    ]


def test_a_malformed_bom_gives_problems_not_exceptions():
    rules = Requirements(
        required_fields=("metadata.component.version",),
        allowed_licenses=("MIT",),
        dataset_provenance="required",
    )
    for bom in [{}, {"metadata": []}, {"metadata": {"component": "x"}}, {"components": "x"},
                {"metadata": {"component": {"licenses": [1, {"license": 2}, {"expression": 3}],
                 "modelCard": {"modelParameters": {"datasets": [1, {"ref": 2}]}},
                 "properties": [1, {"name": "mlbom:unsafe-import"}]}}}]:  # fmt: skip
        assert rules.problems(bom)


def test_policy_bom_problems_are_capped():
    files = [
        {
            "type": "file",
            "name": f"f{i}.pkl",
            "properties": [{"name": "mlbom:unsafe-import", "value": "os.system"}],
        }
        for i in range(100)
    ]
    found = policy().bom_problems(bom_with(components=files))
    assert len(found) == policy_module.MAX_BOM_PROBLEMS
    assert found[-1] == "and 81 more problems"


# --- modes, inference pods, confidential computing -------------------------------------------


def test_mode_for():
    p = policy("modes:\n  default: audit\n  namespaces: {team-a: warn, prod: enforce}\n")
    assert [p.mode_for(n) for n in ("team-a", "prod", "other", "kube-system")] == [
        "warn",
        "enforce",
        "audit",
        None,
    ]
    none_excluded = policy("modes: {exclude: []}\n")
    assert none_excluded.mode_for("kube-system") == "enforce"
    replaced = policy("modes: {exclude: [monitoring]}\n")
    assert replaced.mode_for("monitoring") is None
    assert replaced.mode_for("kube-system") == "enforce"
    assert Modes().mode_for("kube-system") is None


def test_is_inference():
    p = policy()
    assert p.is_inference(["vllm/vllm-openai:v0.6.3"], {})
    assert p.is_inference(["docker.io/vllm/vllm-openai:latest"], {})  # Docker Hub forms
    assert p.is_inference(["index.docker.io/kserve/huggingfaceserver@sha256:" + "a" * 64], {})
    assert p.is_inference(["ghcr.io/huggingface/text-generation-inference:2.4"], {})
    assert not p.is_inference(["quay.io/vllm/vllm-openai:v1"], {})  # another registry
    assert not p.is_inference(["nginx:1.27", "busybox"], {"cpu": 2})
    assert p.is_inference(["python:3.12"], {"nvidia.com/gpu": 1})
    assert p.is_inference(["python:3.12"], {"nvidia.com/mig-1g.10gb": 1})
    assert not p.is_inference(["python:3.12"], {"nvidia.com/gpu": 0})
    custom = InferenceSelector(images=("docker.io/library/python*",), gpu_resources=())
    assert custom.matches(["python:3.12"], {}) and not custom.matches(["x"], {"nvidia.com/gpu": 1})
    assert policy("inference: {images: ['*/llm-*'], gpuResources: []}\n").is_inference(["acme/llm-server:1"], {})  # fmt: skip


def test_why_a_container_is_an_inference_container():
    p = policy()
    assert (
        p.inference.why("vllm/vllm-openai:v0.9", {})
        == "its image matches the policy's vllm/vllm-openai*"
    )
    assert p.inference.why("python:3.12", {"amd.com/gpu": 1}) == "it requests amd.com/gpu"
    assert p.inference.why("ghcr.io/llm-d/llm-d-routing-sidecar:v0.2.0", {}) is None  # a proxy
    assert p.inference.why("ghcr.io/llm-d/llm-d:v0.2.0", {}) is not None


def test_sources():
    default = policy()
    assert default.sources == Sources()  # huggingface.co only; nothing loaded at run time
    mirror = policy(
        "sources: {hubEndpoints: ['https://hf-mirror.example'], runtimeLoading: allow}\n"
    )
    assert mirror.sources.hub_endpoints == ("https://hf-mirror.example",)
    assert mirror.sources.runtime_loading and not mirror.sources.shared_caches
    assert problems("sources: {runtimeLoading: yes-please}\n")
    assert problems("sources: {hubEndpoints: ['not a url']}\n")
    assert problems("sources: {mirrors: []}\n")


def test_cc_required():
    p = load_policy(EXAMPLE)  # secure namespace, hf://secret-org/*, LicenseRef-proprietary
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert p.cc_required("secure", [], None)
    assert not p.cc_required("team-a", [f"hf://acme/open@{commit}"], None)
    assert p.cc_required("team-a", [f"hf://acme/open@{commit}", f"hf://secret-org/llm@{commit}"], None)  # fmt: skip
    assert p.cc_required("team-a", [f"hf://Secret-Org/LLM@{commit}"], None)  # case is ignored
    proprietary = bom_with(licenses=[{"license": {"name": "LicenseRef-Proprietary"}}])
    assert p.cc_required("team-a", [], proprietary)
    assert p.cc_required("team-a", [], bom_with(licenses=[{"expression": "MIT OR LicenseRef-proprietary"}]))  # fmt: skip
    assert not p.cc_required("team-a", [], bom_with(licenses=[{"license": {"id": "MIT"}}]))
    marked = bom_with(properties=[{"name": "mlbom:cc:required", "value": "true"}])
    assert p.cc_required("team-a", [], marked)


def test_model_globs_match_with_and_without_the_pin():
    cc = Confidential(
        required_models=("hf://acme/secret-model", "oci://registry.example/private/*")
    )
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert cc.required("ns", [f"hf://acme/secret-model@{commit}"], None)
    assert cc.required("ns", ["hf://acme/secret-model"], None)
    assert not cc.required("ns", [f"hf://acme/secret-model-2@{commit}"], None)
    assert cc.required("ns", ["oci://registry.example/private/llm@sha256:" + "b" * 64], None)
    assert "is not a valid model reference glob" in one_problem(
        "confidential:\n  required: {models: [secret-org/*]}\n"
    )
