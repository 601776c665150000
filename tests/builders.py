"""Real model files for tests, written with the formats' own writers in tmp_path."""

from __future__ import annotations

import datetime
import json
import pickle
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from mlbom.references import parse
from tests.hub_standin import File

ROOT = Path(__file__).resolve().parent.parent  # the checkout
DATA = ROOT / "tests" / "data"  # real manifests, public bundles, the corpus

CARD = """---
license: apache-2.0
language: [en, de]
library_name: transformers
pipeline_tag: text-classification
tags: [sentiment]
datasets:
- stanfordnlp/sst2
- imdb
base_model: google-bert/bert-base-uncased
base_model_relation: finetune
model-index:
- name: acme/sentiment-bert
  results:
  - task: {type: text-classification}
    dataset: {name: SST-2, type: stanfordnlp/sst2, split: validation, revision: abc123}
    metrics:
    - {type: accuracy, value: 0.93}
    - {type: f1, value: 0.92}
---

# acme/sentiment-bert

A BERT model fine-tuned for sentiment.

## Intended uses

Classifying product reviews.

## Out-of-scope use

Medical or legal text.

## Bias, Risks, and Limitations

[More Information Needed]

## Ethical considerations

Reviews may encode demographic bias.
"""


def safetensors_file(
    path: Path, shapes: dict[str, tuple[int, ...]], metadata: dict | None = None
) -> Path:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: np.ones(s, dtype=np.float16) for k, s in shapes.items()}, str(path), metadata=metadata
    )
    return path


def hf_folder(root: Path) -> Path:
    """A transformers-style model folder: card, config, tokenizer config, safetensors."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text(CARD)
    (root / "config.json").write_text(json.dumps({
        "architectures": ["BertForSequenceClassification"], "model_type": "bert",
        "_name_or_path": "google-bert/bert-base-uncased", "torch_dtype": "float16",
        "transformers_version": "4.57.1", "max_position_embeddings": 512,
    }))  # fmt: skip
    (root / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    (root / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    safetensors_file(root / "model.safetensors", {"a": (4, 8), "b": (8,)}, {"format": "pt"})
    return root


def gguf_file(path: Path, *, tensors: int = 2) -> Path:
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("Tiny Llama Q8")
    writer.add_license("mit")
    writer.add_context_length(4096)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_base_model_count(1)
    writer.add_base_model_name(0, "Llama-3.2-1B")
    writer.add_base_model_organization(0, "meta-llama")
    writer.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    for i in range(tensors):
        writer.add_tensor(f"blk.{i}.weight", np.ones((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def onnx_file(
    path: Path, *, external: bool = False, custom_domain: str | None = "com.acme"
) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((64, 64), dtype=np.float32), name="W")
    nodes = [helper.make_node("MatMul", ["X", "W"], ["Y"])]
    opsets = [helper.make_opsetid("", 17)]
    if custom_domain:
        nodes.append(helper.make_node("Fancy", ["Y"], ["Z"], domain=custom_domain))
        opsets.append(helper.make_opsetid(custom_domain, 1))
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("Z" if custom_domain else "Y", TensorProto.FLOAT, [1, 64])],
        initializer=[weight],
    )  # fmt: skip
    model = helper.make_model(
        graph, producer_name="acme-exporter", producer_version="2.1", opset_imports=opsets
    )
    helper.set_model_props(model, {"author": "acme", "task": "demo"})
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:
        onnx.save_model(
            model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0
        )
    else:
        onnx.save_model(model, str(path))
    return path


class _Reduce:
    def __init__(self, fn: object, args: tuple) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple:
        return self.fn, self.args


def pickle_bytes(globals_: list[tuple[str, str]], protocol: int = 4) -> bytes:
    """A pickle that imports each (module, name) and calls it, written by the real pickler.

    Stand-in modules are put in sys.modules only while pickling (pickle checks that the
    name resolves), so nothing real such as os.system is touched and nothing runs."""
    names = {m for m, _ in globals_}
    names |= {".".join(m.split(".")[:i]) for m in names for i in range(1, m.count(".") + 1)}
    saved = {n: sys.modules.get(n) for n in names}
    try:
        for n in names:
            sys.modules[n] = types.ModuleType(n)
        payload = []
        for module, name in globals_:

            def fn(*args: object) -> None:
                return None

            fn.__module__, fn.__qualname__, fn.__name__ = module, name, name
            setattr(sys.modules[module], name, fn)
            payload.append(_Reduce(fn, ("arg",)))
        return pickle.dumps({"state": payload}, protocol=protocol)
    finally:
        for n, original in saved.items():
            if original is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = original


def torch_zip(
    path: Path, globals_: list[tuple[str, str]], *, extra_members: dict[str, bytes] | None = None
) -> Path:
    """The layout of torch.save's zip format: `<name>/data.pkl` plus storages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle_bytes(globals_, protocol=2))
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/data/0", b"\x00" * 64)
        for name, data in (extra_members or {}).items():
            z.writestr(name, data)
    return path


SAFE_TORCH = [("torch._utils", "_rebuild_tensor_v2"), ("collections", "OrderedDict")]
EVIL = [("os", "system")]


def safetensors_head(shapes: dict[str, tuple[int, ...]]) -> tuple[bytes, int]:
    """The header of an F16 safetensors file and the file's full size, for files whose
    (zero) tensor data is never written: a stand-in server serves the rest."""
    tensors, offset = {}, 0
    for name, shape in shapes.items():
        size = 2 * int(np.prod(shape))
        tensors[name] = {
            "dtype": "F16",
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    header = json.dumps({"__metadata__": {"format": "pt"}, **tensors}).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header, 8 + len(header) + offset


def ca_chain(folder: Path, *, leaf_usage: str = "code-signing", intermediate_expired: bool = False, leaf_curve: ec.EllipticCurve | None = None) -> dict:  # fmt: skip
    """A root CA, an intermediate and a signing certificate as PEM files, and the leaf's key."""
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)

    def cert(name, key, issuer, issuer_key, ca, start, end, usage=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        )  # fmt: skip
        if ca:  # keyCertSign, cRLSign
            builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)  # fmt: skip
        elif usage == "code-signing":  # digitalSignature
            builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)  # fmt: skip
            builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)  # fmt: skip
        else:  # keyEncipherment for a TLS server
            builder = builder.add_extension(x509.KeyUsage(False, False, True, False, False, False, False, False, False), critical=True)  # fmt: skip
            builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)  # fmt: skip
        return builder.sign(issuer_key, hashes.SHA256())

    root_key, mid_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    leaf_key = ec.generate_private_key(leaf_curve or ec.SECP256R1())
    root = cert("root-ca", root_key, "root-ca", root_key, True, now - 10 * day, now + 100 * day)
    mid_end = now - 2 * day if intermediate_expired else now + 50 * day
    mid = cert("publisher-ca", mid_key, "root-ca", root_key, True, now - 10 * day, mid_end)
    leaf = cert("model-publisher", leaf_key, "publisher-ca", mid_key, False, now - day, now + 10 * day, leaf_usage)  # fmt: skip
    paths = {}
    for name, c in (("root", root), ("mid", mid), ("leaf", leaf)):
        paths[name] = folder / f"{name}.pem"
        paths[name].write_bytes(c.public_bytes(serialization.Encoding.PEM))
    paths["key"] = folder / "leaf.key"
    paths["key"].write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    return paths


# -- a Hub repository for the Hub stand-in (tests/hub_standin.py) ---------------------------

REPO = "acme/sentiment-bert"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHARDS = [{f"layer.{i}.weight": (1024, 2048) for i in range(k, k + 5)} for k in (0, 5)]
WEIGHTS = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
           "tiny.Q8_0.gguf", "pytorch_model.bin", "onnx/model.onnx", "consolidated.pt")  # fmt: skip


def repo_files(tmp_path: Path) -> dict[str, File]:
    """The files of REPO at COMMIT: sharded safetensors, GGUF, ONNX, pickles that import
    os.system (one with the Hub's own scan result), a card, configs and a tokenizer."""
    (head, size), (head2, size2) = (safetensors_head(shard) for shard in SHARDS)  # 20 MiB each
    gguf = gguf_file(tmp_path / "tiny.gguf").read_bytes()
    onnx = onnx_file(tmp_path / "model.onnx").read_bytes()
    torch = torch_zip(tmp_path / "consolidated.pt", EVIL).read_bytes()
    config = {"architectures": ["BertForSequenceClassification"], "model_type": "bert"}
    index = {"metadata": {"total_size": 2 * (size - len(head))},
             "weight_map": {"layer.0.weight": "model-00001-of-00002.safetensors"}}  # fmt: skip
    scan = {"status": "unsafe", "avScan": {"virusFound": False},
            "pickleImportScan": {"highestSafetyLevel": "dangerous",
                                 "imports": [{"module": "os", "name": "system", "safety": "dangerous"}]}}  # fmt: skip
    return {
        ".gitattributes": File(b"*.safetensors filter=lfs\n", 0, lfs=False),
        "README.md": File(CARD.encode(), 0, lfs=False),
        "config.json": File(json.dumps(config).encode(), 0, lfs=False),
        "tokenizer.json": File(b'{"version": "1.0"}' + b" " * 5000, 0),  # small, yet in LFS
        "model.safetensors.index.json": File(json.dumps(index).encode(), 0, lfs=False),
        WEIGHTS[0]: File(
            head, size, security={"status": "safe", "avScan": {}, "pickleImportScan": {}}
        ),
        WEIGHTS[1]: File(head2, size2),
        WEIGHTS[2]: File(gguf, len(gguf) + (8 << 20)),
        WEIGHTS[3]: File(pickle_bytes(EVIL), 4 << 20, security=scan),
        WEIGHTS[4]: File(onnx, 0),
        WEIGHTS[5]: File(torch, 0),
    }


def minimal_bom(reference: str) -> dict:
    """A minimal valid ML-BOM of the model `reference` names (one weight file)."""
    ref = parse(reference)
    if ref.kind == "hf":
        org, _, name = ref.name.rpartition("/")
        purl = f"pkg:huggingface/{org + '/' if org else ''}{name}@{ref.digest}"
    else:
        purl = f"pkg:oci/{ref.name.rsplit('/', 1)[-1]}@{ref.digest}?repository_url={ref.name}"
    return {
        "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
        "metadata": {"component": {"type": "machine-learning-model", "name": ref.name,
                                   "bom-ref": "model", "purl": purl}},
        "components": [{"type": "file", "name": "model.safetensors", "bom-ref": "f",
                        "hashes": [{"alg": "SHA-256", "content": "ab" * 32}]}],
    }  # fmt: skip


# -- reading what a BOM says --------------------------------------------------------------


def assert_valid(text: str, spec: str = "1.6") -> dict:
    version = {"1.6": SchemaVersion.V1_6, "1.7": SchemaVersion.V1_7}[spec]
    error = JsonStrictValidator(version).validate_str(text)
    assert error is None, error
    return json.loads(text)


def props(component: dict, name: str) -> list[str]:
    return [p["value"] for p in component.get("properties", []) if p["name"] == name]


def prop(component: dict, name: str) -> str | None:
    values = props(component, name)
    assert len(values) <= 1, values
    return values[0] if values else None


def file_component(bom: dict, path: str) -> dict:
    return next(c for c in bom["components"] if c["type"] == "file" and c["name"] == path)


# -- pods --------------------------------------------------------------------------------------


def vllm_pod(name: str, namespace: str, model: str) -> dict:
    repo, _, commit = model.removeprefix("hf://").partition("@")
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.10.0",
                                 "args": [repo, "--revision", commit],
                                 "resources": {"limits": {"nvidia.com/gpu": 1}}}]},
        "status": {"phase": "Running"},
    }  # fmt: skip
