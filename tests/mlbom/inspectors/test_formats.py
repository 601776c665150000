"""Format facts read from headers only: safetensors shards, GGUF, ONNX, pickles."""

from __future__ import annotations

import hashlib
import json
import pickle
import zipfile
from pathlib import Path

from tests.builders import (
    EVIL,
    SAFE_TORCH,
    file_component,
    gguf_file,
    onnx_file,
    pickle_bytes,
    prop,
    props,
    safetensors_file,
    torch_zip,
)


def test_sharded_safetensors(cli, tmp_path):
    folder = tmp_path / "sharded"
    safetensors_file(folder / "model-00001-of-00002.safetensors", {"a": (10, 10)})
    safetensors_file(folder / "model-00002-of-00002.safetensors", {"b": (5,)})
    (folder / "model.safetensors.index.json").write_text(json.dumps({
        "metadata": {"total_size": 210},
        "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"},
    }))  # fmt: skip
    bom, err = cli.bom(folder)
    assert "could not be inspected" not in err
    assert prop(bom["metadata"]["component"], "mlbom:parameter-count") == "105"
    index = file_component(bom, "model.safetensors.index.json")
    assert prop(index, "mlbom:shard-count") == "2" and prop(index, "mlbom:total-size") == "210"

    (folder / "model-00002-of-00002.safetensors").unlink()
    bom, err = cli.bom(folder)
    assert "model-00002-of-00002.safetensors" in err
    assert "shards missing" in prop(
        file_component(bom, "model.safetensors.index.json"), "mlbom:inspection-error"
    )


def test_parameter_count_is_not_summed_across_formats(cli, tmp_path):
    folder = tmp_path / "both"
    safetensors_file(folder / "model.safetensors", {"a": (10, 10)})
    gguf_file(folder / "model-q8.gguf", tensors=2)  # 2 x 16 parameters
    gguf_file(folder / "model-f16.gguf", tensors=2)
    bom, _ = cli.bom(folder)
    assert prop(bom["metadata"]["component"], "mlbom:parameter-count") == "100"


def test_gguf_header(cli, tmp_path):
    path = gguf_file(tmp_path / "tiny.Q8_0.gguf")
    bom, _ = cli.bom(path)  # a single model file
    m = bom["metadata"]["component"]
    assert m["name"] == "Tiny Llama Q8"
    assert m["licenses"] == [{"license": {"id": "MIT"}}]
    assert m["modelCard"]["modelParameters"]["architectureFamily"] == "llama"
    (base,) = m["pedigree"]["ancestors"]
    assert base["name"] == "meta-llama/Llama-3.2-1B"
    assert base["purl"] == "pkg:huggingface/meta-llama/Llama-3.2-1B"
    f = file_component(bom, "tiny.Q8_0.gguf")
    assert prop(f, "mlbom:quantization") == "MOSTLY_Q8_0"
    assert prop(f, "mlbom:context-length") == "4096"
    assert prop(f, "mlbom:tensor-count") == "2" and prop(f, "mlbom:parameter-count") == "32"
    template = b"{% for m in messages %}{{ m.content }}{% endfor %}"
    assert prop(f, "mlbom:chat-template:sha256") == hashlib.sha256(template).hexdigest()


def test_onnx_without_loading_weights(cli, tmp_path):
    folder = tmp_path / "onnx"
    onnx_file(folder / "model.onnx")
    bom, _ = cli.bom(folder)
    f = file_component(bom, "model.onnx")
    assert prop(f, "mlbom:onnx:producer") == "acme-exporter 2.1"
    assert sorted(props(f, "mlbom:onnx:opset")) == ["ai.onnx:17", "com.acme:1"]
    assert prop(f, "mlbom:onnx:custom-domain") == "com.acme"
    assert prop(f, "mlbom:onnx:metadata:author") == "acme"
    assert prop(f, "mlbom:parameter-count") == str(64 * 64)
    assert prop(f, "mlbom:onnx:ir-version") is not None


def test_onnx_external_data(cli, tmp_path):
    folder = tmp_path / "onnx-ext"
    onnx_file(folder / "model.onnx", external=True, custom_domain=None)
    bom, err = cli.bom(folder)
    f = file_component(bom, "model.onnx")
    assert prop(f, "mlbom:onnx:external-data") == "weights.bin"
    assert prop(f, "mlbom:onnx:custom-domain") is None
    assert prop(f, "mlbom:parameter-count") == str(64 * 64)
    assert "could not be inspected" not in err
    (folder / "weights.bin").unlink()
    bom, err = cli.bom(folder)
    assert "weights.bin is missing" in err


def test_onnx_strip_keeps_everything_but_weights(tmp_path):
    import onnx

    from mlbom.inspectors.onnx import _strip_weights

    path = onnx_file(tmp_path / "m.onnx")
    with open(path, "rb") as f:
        stripped, weights = _strip_weights(f, path.stat().st_size)
    original = onnx.load(str(path))
    del original.graph.initializer[:]
    assert onnx.ModelProto.FromString(stripped) == original
    assert weights.count == 1 and len(stripped) < path.stat().st_size - 64 * 64 * 4


def test_pickle_with_dangerous_global(cli, tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle_bytes(EVIL + SAFE_TORCH))
    bom, err = cli.bom(folder)
    f = file_component(bom, "model.pkl")
    assert props(f, "mlbom:unsafe-import") == ["os.system"]
    assert prop(f, "bsi:component:executable") == "executable"
    assert props(bom["metadata"]["component"], "mlbom:unsafe-import") == ["os.system"]
    assert "os.system" in err


def test_fail_on_unsafe_exits_1_after_writing(cli, tmp_path):
    folder = tmp_path / "evil"
    torch_zip(folder / "pytorch_model.bin", [("builtins", "eval"), *SAFE_TORCH])
    out = tmp_path / "bom.json"
    _, err = cli("generate", folder, "--fail-on", "unsafe", "-o", out, code=1)
    assert "builtins.eval" in err
    bom = json.loads(out.read_text())
    f = file_component(bom, "pytorch_model.bin")
    assert prop(f, "mlbom:format") == "pytorch" and prop(f, "bsi:component:archive") == "archive"


def test_safe_pytorch_zip_and_protocols(cli, tmp_path):
    folder = tmp_path / "safe"
    torch_zip(folder / "pytorch_model.bin", SAFE_TORCH)
    (folder / "p0.pkl").write_bytes(pickle_bytes(SAFE_TORCH, protocol=0))
    (folder / "p5.pkl").write_bytes(pickle_bytes([("posix", "system")], protocol=5))
    (folder / "p0-evil.pkl").write_bytes(pickle_bytes([("subprocess", "Popen")], protocol=0))
    cli("generate", folder, "--fail-on", "unsafe", code=1)
    bom, _ = cli.bom(folder)
    assert props(file_component(bom, "pytorch_model.bin"), "mlbom:unsafe-import") == []
    assert props(file_component(bom, "p0.pkl"), "mlbom:unsafe-import") == []
    assert props(file_component(bom, "p5.pkl"), "mlbom:unsafe-import") == ["posix.system"]
    assert props(file_component(bom, "p0-evil.pkl"), "mlbom:unsafe-import") == ["subprocess.Popen"]


def test_legacy_torch_save_layout(cli, tmp_path):
    """Old torch.save: several pickles back to back, then raw storage bytes."""
    folder = tmp_path / "legacy"
    folder.mkdir()
    data = b"".join(
        pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {"le": True})
    )
    data += pickle_bytes([("torch._utils", "_rebuild_tensor"), ("webbrowser", "open")], protocol=2)
    data += pickle.dumps(["0"], protocol=2) + b"\x00\x01" * 1000
    (folder / "model.pt").write_bytes(data)
    bom, _ = cli.bom(folder)
    assert props(file_component(bom, "model.pt"), "mlbom:unsafe-import") == ["webbrowser.open"]


def test_torchscript_is_marked(cli, tmp_path):
    folder = tmp_path / "ts"
    torch_zip(
        folder / "model.pt",
        SAFE_TORCH,
        extra_members={"archive/code/__torch__/model.py": b"def f(): pass"},
    )
    bom, _ = cli.bom(folder)
    f = file_component(bom, "model.pt")
    assert prop(f, "mlbom:format") == "torchscript" and prop(f, "mlbom:torchscript") == "true"


def test_bin_that_is_not_a_pickle(cli, tmp_path):
    folder = tmp_path / "openvino"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 16)
    bom, err = cli.bom(folder)
    assert prop(file_component(bom, "weights.bin"), "mlbom:format") == "binary"
    assert "could not be inspected" not in err


def test_custom_code_is_recorded(cli, tmp_path):
    folder = tmp_path / "remote-code"
    safetensors_file(folder / "model.safetensors", {"w": (2,)})
    (folder / "config.json").write_text(
        json.dumps({"auto_map": {"AutoModel": "modeling_acme.AcmeModel"}})
    )
    (folder / "modeling_acme.py").write_text("import os\n")
    bom, _ = cli.bom(folder)
    assert props(bom["metadata"]["component"], "mlbom:custom-code") == ["modeling_acme"]
    assert prop(file_component(bom, "modeling_acme.py"), "bsi:component:executable") == "executable"
    assert prop(bom["metadata"]["component"], "bsi:component:executable") == "executable"


def test_adapter_and_diffusers_configs(cli, tmp_path):
    folder = tmp_path / "lora"
    safetensors_file(folder / "adapter_model.safetensors", {"lora_A": (4, 2)})
    (folder / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "org/base", "peft_type": "LORA"})
    )
    bom, _ = cli.bom(folder)
    (base,) = bom["metadata"]["component"]["pedigree"]["ancestors"]
    assert base["name"] == "org/base" and prop(base, "mlbom:lineage:relation") == "adapter"
    assert prop(bom["metadata"]["component"], "mlbom:peft-type") == "LORA"

    pipeline = tmp_path / "diffusers"
    safetensors_file(pipeline / "unet" / "diffusion_pytorch_model.safetensors", {"w": (2,)})
    (pipeline / "unet" / "config.json").write_text(json.dumps({"model_type": "not-top-level"}))
    (pipeline / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionPipeline"})
    )
    bom, _ = cli.bom(pipeline)
    params = bom["metadata"]["component"]["modelCard"]["modelParameters"]
    assert params["architectureFamily"] == "diffusers"  # a sub-folder config does not decide
    assert params["modelArchitecture"] == "StableDiffusionPipeline"


def test_zip_member_names_do_not_matter(cli, tmp_path):
    """Members are read, never extracted: a hostile name is harmless."""
    folder = tmp_path / "z"
    path = torch_zip(folder / "model.pt", SAFE_TORCH)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("../../../etc/evil.pkl", pickle_bytes(EVIL, protocol=2))
    bom, _ = cli.bom(folder)
    assert props(file_component(bom, "model.pt"), "mlbom:unsafe-import") == ["os.system"]
    assert not (tmp_path.parent / "etc").exists()


def test_gguf_datasets(tmp_path):
    import gguf

    from mlbom.inspectors import Context
    from mlbom.inspectors import gguf as inspector
    from mlbom.sources.local import LocalBlob

    path = tmp_path / "d.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_dataset_count(1)
    w.add_dataset_name(0, "fineweb")
    w.add_dataset_organization(0, "HuggingFaceFW")
    w.add_tensor("t", __import__("numpy").zeros(3, dtype="float32"))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    result = inspector.inspect(LocalBlob("d.gguf", path, path.stat().st_size), Context(frozenset()))
    assert [d.name for d in result.info.datasets] == ["HuggingFaceFW/fineweb"]


def test_unknown_files_are_listed(cli, tmp_path: Path):
    folder = tmp_path / "misc"
    folder.mkdir()
    (folder / "weights.xyz").write_bytes(b"\x00" * 10)
    bom, _ = cli.bom(folder)
    assert prop(file_component(bom, "weights.xyz"), "bsi:component:structured") == "unstructured"
