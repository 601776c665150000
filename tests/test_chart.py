"""The Helm chart of the admission webhook (deploy/mlbom-admission).

The chart is rendered by Helm's own template engine and linter (the Helm v4 Go SDK, through
the `helm-python-sdk` wheel's libhelm_c), the way `helm template` and `helm lint` do, with no
helm binary and no cluster. Every rendered object is validated strictly (unknown fields are
errors) against the Kubernetes OpenAPI schemas of `kubernetes-validate`, for the oldest
Kubernetes the chart supports and the newest the package knows. The custom resources
(cert-manager's Issuer and Certificate, the Prometheus Operator's ServiceMonitor) are not in
those schemas: they are checked against the subset of their CRDs' schemas that the chart
uses, unknown fields refused, below.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections import Counter

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.builders import ROOT

CHART = ROOT / "deploy" / "mlbom-admission"
RELEASE = "mlbom"
NAMESPACE = "mlbom-system"
FULLNAME = "mlbom-mlbom-admission"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest known.
KUBE_VERSIONS = ["1.28", kubernetes_validate.latest_version()]
SELECTOR = {"app.kubernetes.io/name": "mlbom-admission", "app.kubernetes.io/instance": RELEASE}
DIGEST = "sha256:" + "ab" * 32


def _ca_bundle() -> str:
    """base64 of a real self-signed PEM certificate for the service."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlbom test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


CA_BUNDLE = _ca_bundle()
PROVIDED_TLS = {
    "certManager": {"enabled": False},
    "tls": {"secretName": "mlbom-webhook-tls", "caBundle": CA_BUNDLE},
}
MONITORING = {
    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "networkPolicy": {
        "enabled": True,
        "metricsFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
        "egress": [{"ports": [{"port": 443, "protocol": "TCP"}]}],
    },
}
STORES = [
    {"url": "oci://registry.example.com/acme/models"},
    {"name": "attestations", "persistentVolumeClaim": {"claimName": "mlbom-attestations"}},
    {"url": "hf://acme/llm"},
    {"name": "team-a", "configMap": {"name": "team-a-attestations"}},
    {"name": "signed", "secret": {"secretName": "signed-attestations"}},
    {"name": "scratch", "emptyDir": {}, "mountPath": "/var/lib/mlbom/scratch"},
]
EVERYTHING = {
    "image": {"digest": DIGEST},
    "policy": {"content": "# the policy as text\nrules: []\n"},
    "stores": STORES,
    "registryCredentials": {"secretName": "registry-credentials"},
    "huggingface": {"tokenSecret": {"name": "hf-token"}, "endpoint": "https://hub.example.com"},
    "trust": {"secretName": "sigstore-trust"},
    "decisionLog": {"persistentVolumeClaim": "mlbom-decisions"},
    "server": {"host": "::"},
    "certManager": {"issuerRef": {"name": "cluster-ca", "kind": "ClusterIssuer"}},
    "webhook": {
        "excludeNamespaces": ["cert-manager", "kube-system"],
        "namespaceSelectorExpressions": [
            {"key": "mlbom.dev/enforce", "operator": "In", "values": ["true"]}
        ],
        "objectSelector": {
            "matchExpressions": [{"key": "mlbom.dev/skip", "operator": "DoesNotExist"}]
        },
        "matchConditions": [
            {
                "name": "not-nodes",
                "expression": "!request.userInfo.username.startsWith('system:node:')",
            }
        ],
        "annotations": {"example.com/owner": "platform"},
    },
    "mutating": {"enabled": True},
    "placement": {"discover": True},
    "podAntiAffinity": "hard",
    "priorityClassName": "system-cluster-critical",
    "podDisruptionBudget": {"minAvailable": 2},
    "debug": True,
    **MONITORING,
}
SCENARIOS = {
    "defaults": None,
    "provided-tls": PROVIDED_TLS,
    "mutating": {"mutating": {"enabled": True}},
    "monitoring": MONITORING,
    "provided-tls-mutating": {**PROVIDED_TLS, "mutating": {"enabled": True}},
    "everything": EVERYTHING,
}


@pytest.fixture(scope="module")
def chart():
    with helm.Chart.load(CHART) as loaded:
        yield loaded


class Rendered:
    """The output of `helm template RELEASE CHART -n NAMESPACE` with some values."""

    def __init__(self, manifests: dict[str, str]) -> None:
        self.notes = manifests.pop("mlbom-admission/templates/NOTES.txt", "")
        self.objects = [
            doc
            for name, text in sorted(manifests.items())
            for doc in yaml.safe_load_all(text)
            if doc is not None
        ]

    def kinds(self) -> Counter[str]:
        return Counter(o["kind"] for o in self.objects)

    def one(self, kind: str) -> dict:
        found = [o for o in self.objects if o["kind"] == kind]
        assert len(found) == 1, (kind, self.kinds())
        return found[0]

    def pod(self) -> dict:
        return self.one("Deployment")["spec"]["template"]

    def container(self) -> dict:
        (container,) = self.pod()["spec"]["containers"]
        return container

    def volumes(self) -> dict[str, dict]:
        return {v["name"]: v for v in self.pod()["spec"]["volumes"]}

    def mounts(self) -> dict[str, dict]:
        return {m["name"]: m for m in self.container()["volumeMounts"]}


def render(chart, values: dict | None = None) -> Rendered:
    return Rendered(chart.render(values, name=RELEASE, namespace=NAMESPACE))


# --- The custom resources: the fields of their CRDs (cert-manager.io/v1,
# monitoring.coreos.com/v1) that the chart writes, anything else refused.


def _closed(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "required": list(required),
    }


_STRING = {"type": "string", "minLength": 1}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = _closed(
    {
        "name": {**_STRING, "maxLength": 63, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"const": NAMESPACE},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    ("name", "namespace"),
)
_DURATION = {"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(h|m|s|ms))+$"}
_KEY_USAGES = [
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
    "server auth", "client auth", "code signing", "email protection", "s/mime",
    "ipsec end system", "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
    "microsoft sgc", "netscape sgc",
]  # fmt: skip
_CUSTOM_RESOURCES = {
    ("cert-manager.io/v1", "Issuer"): _closed(
        {
            "apiVersion": {},
            "kind": {},
            "metadata": _METADATA,
            "spec": _closed({"selfSigned": _closed({})}, ("selfSigned",)),
        },
        ("apiVersion", "kind", "metadata", "spec"),
    ),
    ("cert-manager.io/v1", "Certificate"): _closed(
        {
            "apiVersion": {},
            "kind": {},
            "metadata": _METADATA,
            "spec": _closed(
                {
                    "secretName": _STRING,
                    "dnsNames": {"type": "array", "items": _STRING, "minItems": 1},
                    "duration": _DURATION,
                    "renewBefore": _DURATION,
                    "privateKey": _closed(
                        {
                            "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                            "size": {"type": "integer"},
                            "rotationPolicy": {"enum": ["Never", "Always"]},
                        }
                    ),
                    "usages": {"type": "array", "items": {"enum": _KEY_USAGES}},
                    "issuerRef": _closed(
                        {"name": _STRING, "kind": _STRING, "group": _STRING}, ("name",)
                    ),
                },
                ("secretName", "issuerRef"),
            ),
        },
        ("apiVersion", "kind", "metadata", "spec"),
    ),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _closed(
        {
            "apiVersion": {},
            "kind": {},
            "metadata": _METADATA,
            "spec": _closed(
                {
                    "selector": _closed({"matchLabels": _STRING_MAP}),
                    "namespaceSelector": _closed(
                        {"matchNames": {"type": "array", "items": _STRING}}
                    ),
                    "endpoints": {
                        "type": "array",
                        "items": _closed(
                            {
                                "port": _STRING,
                                "path": _STRING,
                                "scheme": {"enum": ["http", "https"]},
                                "interval": _DURATION,
                                "scrapeTimeout": _DURATION,
                                "tlsConfig": {"type": "object"},
                                "relabelings": {"type": "array"},
                                "metricRelabelings": {"type": "array"},
                            }
                        ),
                    },
                },
                ("selector", "endpoints"),
            ),
        },
        ("apiVersion", "kind", "metadata", "spec"),
    ),
}


def validate(obj: dict, version: str) -> None:
    custom = _CUSTOM_RESOURCES.get((obj["apiVersion"], obj["kind"]))
    if custom is not None:
        jsonschema.validate(obj, custom)
    else:
        kubernetes_validate.validate(obj, version, strict=True)


# --- The chart as a whole


def test_chart_metadata(chart):
    meta = chart.metadata
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "mlbom-admission"
    assert meta["kubeVersion"] == ">=1.28.0-0"
    assert chart.schema is not None  # values.schema.json ships with the chart


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lint(scenario):
    report = helm.lint(
        CHART, SCENARIOS[scenario], strict=True, namespace=NAMESPACE, kube_version="v1.28.0"
    )
    assert report["errors"] == [], report
    # only informational messages ("icon is recommended"): no warnings, no errors
    assert all(m["severity"] <= 1 for m in report["messages"]), report


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_is_schema_valid(chart, scenario, version):
    rendered = render(chart, SCENARIOS[scenario])
    assert rendered.objects
    for obj in rendered.objects:
        try:
            validate(obj, version)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as e:
            path = ".".join(str(p) for p in e.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} at {path}: {e.message}")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_standard_labels_and_namespace(chart, scenario):
    for obj in render(chart, SCENARIOS[scenario]).objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "mlbom-admission"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/component"] == "admission-webhook"
        assert labels["app.kubernetes.io/part-of"] == "mlbom"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["helm.sh/chart"] == "mlbom-admission-0.1.0"
        cluster_scoped = {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
                          "ClusterRole", "ClusterRoleBinding"}  # fmt: skip
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"]["namespace"] == NAMESPACE


def test_default_objects(chart):
    rendered = render(chart)
    assert rendered.kinds() == Counter(
        [
            "ServiceAccount",
            "ConfigMap",
            "Service",
            "Deployment",
            "PodDisruptionBudget",
            "Issuer",
            "Certificate",
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
            # the background scan's: list what it decides, write its reports and its Lease
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
        ]
    )
    assert "kube-system, mlbom-system" in rendered.notes


# --- The Deployment


def test_deployment_is_replicated_non_root_and_read_only(chart):
    rendered = render(chart)
    deployment = rendered.one("Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["selector"]["matchLabels"] == SELECTOR
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = rendered.pod()
    assert SELECTOR.items() <= pod["metadata"]["labels"].items()
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 65532
    assert security["fsGroup"] == 65532
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    container = rendered.container()
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["spec"]["automountServiceAccountToken"] is True  # the background scan's
    without = render(chart, {"scan": {"enabled": False}}).pod()
    assert without["spec"]["automountServiceAccountToken"] is False
    # writable places for a read-only root: caches, /tmp, the decision log
    mounts = rendered.mounts()
    assert {m["mountPath"] for m in mounts.values() if not m.get("readOnly")} == {
        "/var/cache/mlbom",
        "/tmp",
        "/var/log/mlbom",
    }


def test_pods_spread_over_nodes(chart):
    spec = render(chart).pod()["spec"]
    by_key = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}
    node = by_key["kubernetes.io/hostname"]
    assert node["whenUnsatisfiable"] == "DoNotSchedule"
    assert node["maxSkew"] == 1
    assert node["labelSelector"] == {"matchLabels": SELECTOR}
    assert node["matchLabelKeys"] == ["pod-template-hash"]
    assert by_key["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert "affinity" not in spec

    hard = render(chart, {"podAntiAffinity": "hard"}).pod()["spec"]["affinity"]
    (term,) = hard["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchLabels": SELECTOR},
    }
    soft = render(chart, {"podAntiAffinity": "soft"}).pod()["spec"]["affinity"]
    (weighted,) = soft["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert weighted["podAffinityTerm"]["labelSelector"] == {"matchLabels": SELECTOR}


def test_pod_disruption_budget_covers_the_pods(chart):
    rendered = render(chart)
    pdb = rendered.one("PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": SELECTOR}}
    assert render(chart, {"podDisruptionBudget": {"minAvailable": 2}}).one("PodDisruptionBudget")[
        "spec"
    ] == {"minAvailable": 2, "selector": {"matchLabels": SELECTOR}}


def test_probes_over_https_on_the_webhook_port(chart):
    container = render(chart).container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"https": 8443, "metrics": 9090}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert get["scheme"] == "HTTPS"
        assert ports[get["port"]] == 8443


def test_args_are_the_serve_command(chart):
    container = render(chart).container()
    assert container["command"] == ["mlbom"]
    assert container["args"] == [
        "admission", "serve",
        "--policy", "/etc/mlbom/policy.yaml",
        "--tls-cert", "/var/run/secrets/mlbom/tls/tls.crt",
        "--tls-key", "/var/run/secrets/mlbom/tls/tls.key",
        "--port", "8443",
        "--metrics-port", "9090",
        "--scan-interval", "300",
    ]  # fmt: skip


def test_one_store_flag_per_store(chart):
    rendered = render(
        chart, {"stores": STORES, "server": {"host": "::"}, "extraArgs": ["--later-flag"]}
    )
    assert rendered.container()["args"] == [
        "admission", "serve",
        "--policy", "/etc/mlbom/policy.yaml",
        "--store", "oci://registry.example.com/acme/models",
        "--store", "/var/lib/mlbom/stores/attestations",
        "--store", "hf://acme/llm",
        "--store", "/var/lib/mlbom/stores/team-a",
        "--store", "/var/lib/mlbom/stores/signed",
        "--store", "/var/lib/mlbom/scratch",
        "--tls-cert", "/var/run/secrets/mlbom/tls/tls.crt",
        "--tls-key", "/var/run/secrets/mlbom/tls/tls.key",
        "--host", "::",
        "--port", "8443",
        "--metrics-port", "9090",
        "--scan-interval", "300",
        "--later-flag",
    ]  # fmt: skip
    volumes, mounts = rendered.volumes(), rendered.mounts()
    assert volumes["store-attestations"]["persistentVolumeClaim"] == {
        "claimName": "mlbom-attestations",
        "readOnly": True,
    }
    assert volumes["store-team-a"]["configMap"] == {"name": "team-a-attestations"}
    assert volumes["store-signed"]["secret"] == {"secretName": "signed-attestations"}
    assert volumes["store-scratch"]["emptyDir"] == {}
    assert {
        n: (m["mountPath"], m["readOnly"]) for n, m in mounts.items() if n.startswith("store-")
    } == {
        "store-attestations": ("/var/lib/mlbom/stores/attestations", True),
        "store-team-a": ("/var/lib/mlbom/stores/team-a", True),
        "store-signed": ("/var/lib/mlbom/stores/signed", True),
        "store-scratch": ("/var/lib/mlbom/scratch", False),
    }


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_args_parse_as_the_real_serve_command(chart, scenario):
    """The container's command line is accepted by `mlbom admission serve` itself."""
    from mlbom.cli import main

    admission = main.commands.get("admission")
    if admission is None or "serve" not in getattr(admission, "commands", {}):
        pytest.skip("`mlbom admission serve` is not in this checkout")
    container = render(chart, SCENARIOS[scenario]).container()
    assert container["command"][0] == "mlbom"
    args = container["args"]
    top = main.make_context("mlbom", [*container["command"][1:], *args])
    assert top.params["debug"] is bool((SCENARIOS[scenario] or {}).get("debug"))
    assert args[:2] == ["admission", "serve"]
    ctx = admission.commands["serve"].make_context("serve", args[2:])
    stores = [args[i + 1] for i, a in enumerate(args) if a == "--store"]
    assert list(ctx.params["stores"]) == stores
    assert str(ctx.params["policy_path"]) == "/etc/mlbom/policy.yaml"
    assert ctx.params["port"] == 8443
    assert ctx.params["metrics_port"] == 9090


def test_ports_follow_the_server_values(chart):
    rendered = render(chart, {"server": {"port": 9443, "metricsPort": 9100}})
    args = rendered.container()["args"]
    assert args[args.index("--port") + 1] == "9443"
    assert args[args.index("--metrics-port") + 1] == "9100"
    service = rendered.one("Service")
    assert {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        "https": (443, "https"),
        "metrics": (9100, "metrics"),
    }
    assert {p["name"]: p["containerPort"] for p in rendered.container()["ports"]} == {
        "https": 9443,
        "metrics": 9100,
    }


def test_credentials_and_trust_are_mounted(chart):
    rendered = render(chart, EVERYTHING)
    container = rendered.container()
    env = {e["name"]: e for e in container["env"]}
    assert env["DOCKER_CONFIG"]["value"] == "/var/run/secrets/mlbom/docker"
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "hf-token", "key": "token"}}
    assert env["HF_ENDPOINT"]["value"] == "https://hub.example.com"
    volumes, mounts = rendered.volumes(), rendered.mounts()
    assert volumes["docker-config"]["secret"]["items"] == [
        {"key": ".dockerconfigjson", "path": "config.json"}
    ]
    assert mounts["docker-config"]["mountPath"] == env["DOCKER_CONFIG"]["value"]
    assert volumes["trust"]["secret"]["secretName"] == "sigstore-trust"
    assert mounts["trust"] == {
        "name": "trust",
        "mountPath": "/var/run/secrets/mlbom/trust",
        "readOnly": True,
    }
    # the decision log: one folder per pod on the shared volume
    assert volumes["decision-log"]["persistentVolumeClaim"] == {"claimName": "mlbom-decisions"}
    assert mounts["decision-log"]["subPathExpr"] == "$(POD_NAME)"
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert container["image"] == f"ghcr.io/mlbom/mlbom@{DIGEST}"
    assert rendered.pod()["spec"]["priorityClassName"] == "system-cluster-critical"
    assert container["command"] == ["mlbom", "--debug"]
    assert "WARNING: the image is pulled by tag" not in rendered.notes


def test_defaults_mount_no_credentials(chart):
    rendered = render(chart)
    env = {e["name"] for e in rendered.container()["env"]}
    assert env == {"POD_NAME", "POD_NAMESPACE", "XDG_CACHE_HOME", "HF_HOME"}
    assert set(rendered.volumes()) == {"policy", "tls", "decision-log", "cache", "tmp"}
    assert rendered.volumes()["decision-log"] == {
        "name": "decision-log",
        "emptyDir": {"sizeLimit": "1Gi"},
    }
    assert rendered.container()["image"] == "ghcr.io/mlbom/mlbom:0.1.0"
    assert "WARNING: the image is pulled by tag" in rendered.notes


# --- The policy


def test_policy_configmap_holds_the_policy_from_values(chart):
    policy = {
        "apiVersion": "mlbom.dev/v1",
        "require": {
            "signed": True,
            "signers": [{"key": "/var/run/secrets/mlbom/trust/release.pub"}],
        },
    }
    rendered = render(chart, {"policy": {"content": policy}})
    configmap = rendered.one("ConfigMap")
    assert configmap["metadata"]["name"] == f"{FULLNAME}-policy"
    shipped = yaml.safe_load(configmap["data"]["policy.yaml"])
    placement = shipped.pop("confidential")  # the chart's placement values fill it in
    load_time = shipped.pop("loadTimeVerification")  # and its image is the verifier
    assert shipped == policy
    assert load_time == {"image": "ghcr.io/mlbom/mlbom:0.1.0"}
    digest = "sha256:" + "ab" * 32
    pinned = render(chart, {"policy": {"content": policy}, "image": {"digest": digest}})
    shipped = yaml.safe_load(pinned.one("ConfigMap")["data"]["policy.yaml"])
    assert shipped["loadTimeVerification"] == {"image": f"ghcr.io/mlbom/mlbom@{digest}"}
    own = {**policy, "loadTimeVerification": {"image": "mirror.example/mlbom@" + digest, "default": "required"}}  # fmt: skip
    shipped = yaml.safe_load(render(chart, {"policy": {"content": own}}).one("ConfigMap")["data"]["policy.yaml"])  # fmt: skip
    assert shipped["loadTimeVerification"] == own["loadTimeVerification"]  # the policy's wins
    assert placement["runtimeClasses"]["sev-snp"] == "kata-qemu-nvidia-gpu-snp"
    assert placement["gpuNodeSelector"] == {"nvidia.com/cc.ready.state": "true"}
    volume = rendered.volumes()["policy"]["configMap"]
    assert volume == {
        "name": f"{FULLNAME}-policy",
        "items": [{"key": "policy.yaml", "path": "policy.yaml"}],
    }
    assert rendered.mounts()["policy"]["mountPath"] + "/policy.yaml" == "/etc/mlbom/policy.yaml"
    # a new policy rolls the pods
    checksum = rendered.pod()["metadata"]["annotations"]["checksum/policy"]
    other = render(chart, {"policy": {"content": {**policy, "require": {"signed": False}}}})
    assert other.pod()["metadata"]["annotations"]["checksum/policy"] != checksum


def test_example_policy_through_the_chart_is_a_valid_policy(chart):
    """examples/policy.yaml given as policy.content reaches the pods as a policy that the
    policy schema of mlbom accepts, and its decision log lands on the log volume."""
    example = CHART.parent.parent / "examples" / "policy.yaml"
    schema_file = CHART.parent.parent / "schemas" / "policy.schema.json"
    if not (example.exists() and schema_file.exists()):
        pytest.skip("the admission policy's schema and example are not in this checkout")
    policy = yaml.safe_load(example.read_text())
    rendered = render(chart, {"policy": {"content": policy}})
    shipped = yaml.safe_load(rendered.one("ConfigMap")["data"]["policy.yaml"])
    own = policy.get("confidential", {})
    assert {k: v for k, v in shipped.items() if k != "confidential"} == {
        k: v for k, v in policy.items() if k != "confidential"
    }
    assert {k: shipped["confidential"][k] for k in own} == own  # the policy's own entries win
    assert "runtimeClassDetails" in shipped["confidential"]  # the chart's placement defaults
    schema = json.loads(schema_file.read_text())
    jsonschema.Draft202012Validator(schema).validate(shipped)
    assert shipped["decisionLog"].startswith(rendered.mounts()["decision-log"]["mountPath"] + "/")
    assert "WARNING: the policy's decisionLog" not in rendered.notes
    elsewhere = render(chart, {"policy": {"content": {**policy, "decisionLog": "/data/d.jsonl"}}})
    assert "WARNING: the policy's decisionLog /data/d.jsonl" in elsewhere.notes


def test_policy_as_text_is_kept_as_it_is(chart):
    text = "# comments survive\nrequire:\n  signed: true\n"
    configmap = render(chart, {"policy": {"content": text}}).one("ConfigMap")
    assert configmap["data"]["policy.yaml"] == text


def test_existing_policy_configmap(chart):
    rendered = render(chart, {"policy": {"existingConfigMap": "site-policy", "key": "strict.yaml"}})
    assert "ConfigMap" not in rendered.kinds()
    assert rendered.volumes()["policy"]["configMap"] == {
        "name": "site-policy",
        "items": [{"key": "strict.yaml", "path": "policy.yaml"}],
    }
    assert "annotations" not in rendered.pod()["metadata"]


# --- The webhook configurations

EXPECTED_RULES = {
    ("", "v1", "pods", "CREATE"),
    ("", "v1", "pods", "UPDATE"),
    ("", "v1", "pods/ephemeralcontainers", "UPDATE"),
    *(
        (group, "v1", resource, op)
        for group, resources in (
            ("apps", ["deployments", "statefulsets", "daemonsets", "replicasets"]),
            ("batch", ["jobs", "cronjobs"]),
        )
        for resource in resources
        for op in ("CREATE", "UPDATE")
    ),
    *(
        (group, "*", resource, op)
        for group, resources in (
            ("serving.kserve.io", ["inferenceservices", "llminferenceservices"]),
            ("leaderworkerset.x-k8s.io", ["leaderworkersets"]),
            ("llm-d.ai", ["modelservices"]),
            ("apps.nvidia.com", ["nimservices", "nimcaches"]),
            ("kubeai.org", ["models"]),
            ("ray.io", ["rayservices"]),
            ("ome.io", ["inferenceservices", "basemodels", "clusterbasemodels"]),
        )
        for resource in resources
        for op in ("CREATE", "UPDATE")
    ),
}
# the values that turn each group of serving resources off
SERVING_SWITCHES = {
    "kserve": "serving.kserve.io", "leaderWorkerSet": "leaderworkerset.x-k8s.io",
    "llmd": "llm-d.ai", "nim": "apps.nvidia.com", "kubeai": "kubeai.org", "kuberay": "ray.io",
    "ome": "ome.io",
}  # fmt: skip


def flat_rules(webhook: dict) -> set[tuple[str, str, str, str]]:
    return {
        (group, version, resource, op)
        for rule in webhook["rules"]
        for group in rule["apiGroups"]
        for version in rule["apiVersions"]
        for resource in rule["resources"]
        for op in rule["operations"]
    }


def assert_common_webhook(webhook: dict, path: str, excluded: list[str]) -> None:
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["timeoutSeconds"] == 10
    assert webhook["sideEffects"] == "NoneOnDryRun"
    assert webhook["admissionReviewVersions"] == ["v1"]
    assert webhook["clientConfig"]["service"] == {
        "name": FULLNAME,
        "namespace": NAMESPACE,
        "path": path,
        "port": 443,
    }
    (expression, *_) = webhook["namespaceSelector"]["matchExpressions"]
    assert expression == {
        "key": "kubernetes.io/metadata.name",
        "operator": "NotIn",
        "values": excluded,
    }
    rules = flat_rules(webhook)
    assert not any(op in {"DELETE", "*"} for *_, op in rules), rules
    assert not any(r.endswith(("/status", "/scale", "/*")) or r == "*" for _, _, r, _ in rules), (
        rules
    )


def test_validating_webhook(chart):
    rendered = render(chart)
    configuration = rendered.one("ValidatingWebhookConfiguration")
    assert configuration["metadata"]["name"] == FULLNAME
    (webhook,) = configuration["webhooks"]
    assert webhook["name"] == f"validate.{FULLNAME}.{NAMESPACE}.svc"
    assert_common_webhook(webhook, "/validate", ["kube-system", NAMESPACE])
    assert flat_rules(webhook) == EXPECTED_RULES
    assert all(
        rule["scope"] == ("Cluster" if rule["resources"] == ["clusterbasemodels"] else "Namespaced")
        for rule in webhook["rules"]
    )
    assert "caBundle" not in webhook["clientConfig"]
    assert "matchConditions" not in webhook
    # the Service the API server calls reaches the container's webhook port
    service = rendered.one("Service")
    assert service["spec"]["selector"] == SELECTOR
    (https,) = (
        p
        for p in service["spec"]["ports"]
        if p["port"] == webhook["clientConfig"]["service"]["port"]
    )
    assert https["targetPort"] == "https"
    assert "MutatingWebhookConfiguration" in rendered.kinds()  # placement is on by default


def test_release_namespace_is_always_excluded(chart):
    configuration = Rendered(
        chart.render(
            {"webhook": {"excludeNamespaces": ["cert-manager"]}}, name=RELEASE, namespace="security"
        )
    ).one("ValidatingWebhookConfiguration")
    (webhook,) = configuration["webhooks"]
    assert webhook["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "kube-system",
        "security",
        "cert-manager",
    ]
    assert webhook["clientConfig"]["service"]["namespace"] == "security"


def test_webhook_options(chart):
    rendered = render(chart, EVERYTHING)
    (webhook,) = rendered.one("ValidatingWebhookConfiguration")["webhooks"]
    assert_common_webhook(webhook, "/validate", ["kube-system", NAMESPACE, "cert-manager"])
    assert webhook["namespaceSelector"]["matchExpressions"][1] == {
        "key": "mlbom.dev/enforce",
        "operator": "In",
        "values": ["true"],
    }
    assert webhook["objectSelector"] == EVERYTHING["webhook"]["objectSelector"]
    assert webhook["matchConditions"] == EVERYTHING["webhook"]["matchConditions"]
    for switch, group in SERVING_SWITCHES.items():
        without = render(chart, {"webhook": {switch: False}})
        (webhook,) = without.one("ValidatingWebhookConfiguration")["webhooks"]
        assert flat_rules(webhook) == {r for r in EXPECTED_RULES if r[0] != group}, switch


def test_failure_policy_ignore_is_explicit(chart):
    rendered = render(
        chart, {"webhook": {"failurePolicy": "Ignore"}, "mutating": {"enabled": True}}
    )
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        assert rendered.one(kind)["webhooks"][0]["failurePolicy"] == "Ignore"
    assert "WARNING: failurePolicy is Ignore" in rendered.notes


def test_mutating_webhook(chart):
    rendered = render(chart, {"mutating": {"enabled": True}})
    validating = rendered.one("ValidatingWebhookConfiguration")
    mutating = rendered.one("MutatingWebhookConfiguration")
    (webhook,) = mutating["webhooks"]
    assert webhook["name"] == f"mutate.{FULLNAME}.{NAMESPACE}.svc"
    assert_common_webhook(webhook, "/mutate", ["kube-system", NAMESPACE])
    assert webhook["reinvocationPolicy"] == "IfNeeded"
    assert ("", "v1", "pods", "CREATE") in flat_rules(webhook)
    assert ("apps", "v1", "deployments", "UPDATE") in flat_rules(webhook)
    assert not any(op == "DELETE" for *_, op in flat_rules(webhook))
    assert mutating["metadata"]["name"] > "inferenceservice.serving.kserve.io"  # after KServe
    assert mutating["metadata"]["annotations"] == validating["metadata"]["annotations"]
    # the same selection of namespaces as the validating webhook
    assert webhook["namespaceSelector"] == validating["webhooks"][0]["namespaceSelector"]


# --- Certificates


def test_cert_manager_certificate_for_the_service(chart):
    rendered = render(chart)
    issuer = rendered.one("Issuer")
    assert issuer["spec"] == {"selfSigned": {}}
    certificate = rendered.one("Certificate")
    spec = certificate["spec"]
    assert f"{FULLNAME}.{NAMESPACE}.svc" in spec["dnsNames"]
    assert spec["issuerRef"] == {
        "name": issuer["metadata"]["name"],
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    assert "server auth" in spec["usages"]
    assert rendered.volumes()["tls"]["secret"]["secretName"] == spec["secretName"]
    assert rendered.mounts()["tls"]["mountPath"] == "/var/run/secrets/mlbom/tls"
    annotations = rendered.one("ValidatingWebhookConfiguration")["metadata"]["annotations"]
    assert annotations == {
        "cert-manager.io/inject-ca-from": f"{NAMESPACE}/{certificate['metadata']['name']}"
    }


def test_existing_issuer(chart):
    rendered = render(
        chart, {"certManager": {"issuerRef": {"name": "cluster-ca", "kind": "ClusterIssuer"}}}
    )
    assert "Issuer" not in rendered.kinds()
    assert rendered.one("Certificate")["spec"]["issuerRef"] == {
        "name": "cluster-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }


def test_provided_certificate(chart):
    rendered = render(chart, {**PROVIDED_TLS, "mutating": {"enabled": True}})
    assert not {"Issuer", "Certificate"} & set(rendered.kinds())
    assert rendered.volumes()["tls"]["secret"]["secretName"] == "mlbom-webhook-tls"
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        configuration = rendered.one(kind)
        assert "cert-manager.io/inject-ca-from" not in configuration["metadata"].get(
            "annotations", {}
        )
        assert configuration["webhooks"][0]["clientConfig"]["caBundle"] == CA_BUNDLE
        assert base64.b64decode(CA_BUNDLE).startswith(b"-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({}, "caBundle"),
        ({"secretName": "mlbom-webhook-tls"}, "caBundle"),
        ({"caBundle": CA_BUNDLE}, "secretName"),
        (
            {
                "secretName": "mlbom-webhook-tls",
                "caBundle": base64.b64encode(b"not a certificate").decode(),
            },
            "PEM",
        ),
    ],
)
def test_provided_certificate_needs_secret_and_ca(chart, tls, message):
    with pytest.raises(helm.HelmError, match=message):
        render(chart, {"certManager": {"enabled": False}, "tls": tls})


# --- Monitoring and network policy


def test_service_monitor_and_network_policy(chart):
    rendered = render(chart, MONITORING)
    monitor = rendered.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["scheme"]) == (
        "metrics",
        "/metrics",
        "http",
    )
    assert "metrics" in {p["name"] for p in rendered.one("Service")["spec"]["ports"]}

    policy = rendered.one("NetworkPolicy")["spec"]
    assert policy["podSelector"] == {"matchLabels": SELECTOR}
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    webhook_rule, metrics_rule = policy["ingress"]
    assert webhook_rule == {"ports": [{"port": "https", "protocol": "TCP"}]}  # from anywhere
    assert metrics_rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert metrics_rule["from"] == MONITORING["networkPolicy"]["metricsFrom"]
    dns, https = policy["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert https == {"ports": [{"port": 443, "protocol": "TCP"}]}

    open_egress = render(chart, {"networkPolicy": {"enabled": True}}).one("NetworkPolicy")
    assert open_egress["spec"]["policyTypes"] == ["Ingress"]
    assert not {"ServiceMonitor", "NetworkPolicy"} & set(render(chart).kinds())


# --- values.schema.json


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
        ({"securityContext": {"readOnlyRootFilesystem": False, "allowPrivilegeEscalation": False}}, "readOnlyRootFilesystem"),
        ({"securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": True}}, "allowPrivilegeEscalation"),
        ({"replicas": 3}, "replicas"),
        ({"image": {"digest": "sha256:abc"}}, "digest"),
        ({"webhook": {"timeoutSeconds": 31}}, "timeoutSeconds"),
        ({"webhook": {"failurePolicy": "fail"}}, "failurePolicy"),
        ({"mutating": {"rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["DELETE"], "resources": ["pods"]}]}}, "operations"),
        ({"stores": [{"name": "two", "emptyDir": {}, "configMap": {"name": "x"}}]}, "stores"),
        ({"stores": [{"url": "https://example.com/attestations"}]}, "stores"),
        ({"trust": {"secretName": "a", "configMapName": "b"}}, "trust"),
        ({"podAntiAffinity": "always"}, "podAntiAffinity"),
    ],
)  # fmt: skip
def test_schema_refuses(chart, values, message):
    with pytest.raises(helm.HelmValuesError, match=message):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmError):
        render(chart, values)


def test_values_file_is_commented():
    """Every key of values.yaml has a comment above it, or its parent has one right above."""
    lines = (CHART / "values.yaml").read_text().splitlines()

    def commented(i: int) -> bool:
        # a comment in the lines right above, up to a blank line or a key of the same depth
        indent = len(lines[i]) - len(lines[i].lstrip())
        for line in reversed(lines[:i]):
            if not line.strip():
                return False
            if line.lstrip().startswith("#"):
                return True
            if len(line) - len(line.lstrip()) <= indent:
                return False
        return False

    undocumented = []
    parents: list[tuple[int, int]] = []  # (indent, line) of the enclosing keys
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        parents = [(d, j) for d, j in parents if d < indent]
        if not commented(i) and not (parents and commented(parents[-1][1])):
            undocumented.append(stripped)
        parents.append((indent, i))
    assert undocumented == [], undocumented


def test_rendering_is_deterministic(chart):
    first = chart.render(EVERYTHING, name=RELEASE, namespace=NAMESPACE)
    assert chart.render(EVERYTHING, name=RELEASE, namespace=NAMESPACE) == first


def test_discover_adds_its_flag_read_only_rbac_and_the_token(chart):
    rendered = render(chart, {"placement": {"discover": True}, "scan": {"enabled": False}})
    assert "--discover" in rendered.container()["args"]
    assert rendered.pod()["spec"]["automountServiceAccountToken"] is True
    role = rendered.one("ClusterRole")
    assert role["rules"] == [
        {"apiGroups": ["node.k8s.io"], "resources": ["runtimeclasses"], "verbs": ["list", "watch"]},
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]},
    ]
    binding = rendered.one("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["namespace"] == NAMESPACE
    policy = yaml.safe_load(rendered.one("ConfigMap")["data"]["policy.yaml"] or "{}") or {}
    assert "discover" not in (policy.get("confidential") or {})  # a chart value, not policy
    default = render(chart, {"scan": {"enabled": False}})
    assert "--discover" not in default.container()["args"]
    assert "ClusterRole" not in default.kinds()


def test_the_scan_reads_what_it_decides_and_writes_only_its_reports_and_lease(chart):
    rendered = render(chart)
    args = rendered.container()["args"]
    assert args[args.index("--scan-interval") + 1] == "300"
    (role,) = [o for o in rendered.objects if o["kind"] == "ClusterRole"]
    writes = [r for r in role["rules"] if set(r["verbs"]) - {"list", "watch"}]
    assert writes == [{"apiGroups": ["wgpolicyk8s.io"], "resources": ["policyreports", "clusterpolicyreports"],
                       "verbs": ["get", "list", "create", "update"]}]  # fmt: skip
    reads = {(g, res) for r in role["rules"] for g in r["apiGroups"] for res in r["resources"] if r not in writes}  # fmt: skip
    assert {("", "pods"), ("apps", "deployments"), ("serving.kserve.io", "inferenceservices"), ("ray.io", "rayservices")} <= reads  # fmt: skip
    lease = rendered.one("Role")
    assert lease["metadata"]["namespace"] == NAMESPACE
    assert {tuple(r["verbs"]) for r in lease["rules"]} == {("get", "update"), ("create",)}
    assert all(r["resources"] == ["leases"] for r in lease["rules"])
    env = {e["name"]: e for e in rendered.container()["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    slower = render(chart, {"scan": {"intervalSeconds": 900}}).container()["args"]
    assert slower[slower.index("--scan-interval") + 1] == "900"
