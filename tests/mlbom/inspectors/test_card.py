"""Facts, not templates: what a card template left is no fact; parameters held in ONNX
Constant nodes count; a GGUF's author and organization make and supply the model; a PEFT
adapter's task_type is a task; SOURCE_DATE_EPOCH makes the BOM byte for byte reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.builders import file_component, gguf_file, prop, safetensors_file

# The Hub's default card, as `transformers` pushes it (huggingface_hub's template, rendered
# with no values), abridged; PEFT's default card is the same with `library_name: peft`
# and its framework versions at the end.
HUB_DEFAULT_CARD = """---
library_name: {library}
tags: []
---

# Model Card for Model ID

<!-- Provide a quick summary of what the model is/does. -->



## Model Details

### Model Description

<!-- Provide a longer summary of what this model is. -->

{description}

- **Developed by:** [More Information Needed]
- **Funded by [optional]:** [More Information Needed]
- **Model type:** [More Information Needed]
- **License:** [More Information Needed]

### Model Sources [optional]

<!-- Provide the basic links for the model. -->

- **Repository:** [More Information Needed]

## Uses

<!-- Address questions around how the model is intended to be used, including the foreseeable users of the model and those affected by the model. -->

### Direct Use

<!-- This section is for the model use without fine-tuning or plugging into a larger ecosystem/app. -->

[More Information Needed]

### Downstream Use [optional]

<!-- This section is for the model use when fine-tuned for a task, or when plugged into a larger ecosystem/app -->

[More Information Needed]

### Out-of-Scope Use

<!-- This section addresses misuse, malicious use, and uses that the model will not work well for. -->

[More Information Needed]

## Bias, Risks, and Limitations

<!-- This section is meant to convey both technical and sociotechnical limitations. -->

[More Information Needed]

### Recommendations

<!-- This section is meant to convey recommendations with respect to the bias, risk, and technical limitations. -->

Users (both direct and downstream) should be made aware of the risks, biases and limitations of the model. More information needed for further recommendations.

## How to Get Started with the Model

Use the code below to get started with the model.

[More Information Needed]

## Environmental Impact

<!-- Total emissions (in grams of CO2eq) and additional considerations, such as electricity usage, that are relevant to calculating the carbon footprint of the model. -->

Carbon emissions can be estimated using the [Machine Learning Impact calculator](https://mlco2.github.io/impact#compute) presented in [Lacoste et al. (2019)](https://arxiv.org/abs/1910.09700).

- **Hardware Type:** [More Information Needed]

## Citation [optional]

**BibTeX:**

[More Information Needed]
{tail}"""
TRANSFORMERS_DESCRIPTION = (
    "This is the model card of a 🤗 transformers model that has been pushed on the Hub. "
    "This model card has been automatically generated."
)


def model_folder(root: Path, card: str | None = None, **configs: dict) -> Path:
    safetensors_file(root / "model.safetensors", {"w": (2, 2)})
    if card is not None:
        (root / "README.md").write_text(card)
    for name, data in configs.items():
        (root / f"{name}.json").write_text(json.dumps(data))
    return root


def test_hub_default_card_states_nothing(cli, tmp_path):
    card = HUB_DEFAULT_CARD.format(
        library="transformers", description=TRANSFORMERS_DESCRIPTION, tail=""
    )
    bom, _ = cli.bom(model_folder(tmp_path / "pushed", card))
    m = bom["metadata"]["component"]
    assert m["name"] == "pushed"  # the folder, not "Model ID"
    assert "description" not in m
    assert "considerations" not in m["modelCard"]
    assert prop(m, "mlbom:library") == "transformers"  # the front matter is still read


def test_peft_default_card_states_nothing_and_task_type_is_the_task(cli, tmp_path):
    card = HUB_DEFAULT_CARD.format(
        library="peft", description="", tail="### Framework versions\n\n- PEFT 0.13.2\n"
    )
    adapter = {"base_model_name_or_path": "org/base", "peft_type": "LORA", "task_type": "CAUSAL_LM"}
    bom, _ = cli.bom(model_folder(tmp_path / "lora", card, adapter_config=adapter))
    m = bom["metadata"]["component"]
    assert m["name"] == "lora" and "description" not in m
    assert "considerations" not in m["modelCard"]
    params = m["modelCard"]["modelParameters"]
    assert params["task"] == "text-generation"
    assert params["inputs"] == [{"format": "text"}] and params["outputs"] == [{"format": "text"}]


def test_card_pipeline_tag_beats_task_type(cli, tmp_path):
    card = "---\npipeline_tag: feature-extraction\n---\n# acme/embed\n\nEmbeds text.\n"
    adapter = {"peft_type": "LORA", "task_type": "SEQ_CLS"}
    bom, _ = cli.bom(model_folder(tmp_path / "a", card, adapter_config=adapter))
    params = bom["metadata"]["component"]["modelCard"]["modelParameters"]
    assert params["task"] == "feature-extraction"
    assert params["outputs"] == [{"format": "embedding"}]


@pytest.mark.parametrize(
    "task_type, task",
    [("SEQ_CLS", "text-classification"), ("SEQ_2_SEQ_LM", "text2text-generation"),
     ("TOKEN_CLS", "token-classification"), ("QUESTION_ANS", "question-answering"),
     ("FEATURE_EXTRACTION", "feature-extraction"), ("SOMETHING_ELSE", None)],
)  # fmt: skip
def test_task_types(tmp_path, task_type, task):
    from mlbom.inspectors import Context, config
    from mlbom.sources.local import LocalBlob

    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps({"task_type": task_type}))
    blob = LocalBlob("adapter_config.json", path, path.stat().st_size)
    assert config.inspect(blob, Context(frozenset())).info.task == task


def test_filled_sections_keep_their_facts_and_lose_placeholders(cli, tmp_path):
    card = (
        "# Model Card for acme/ner\n\n<!-- Provide a quick summary of what the model is/does. -->\n\n"
        "Finds names of people in news text.\n\n"
        "## Uses\n\n### Direct Use\n\nTagging names in English news.\n\n"
        "### Downstream Use [optional]\n\n[More Information Needed]\n\n"
        "## Bias, Risks, and Limitations\n\n- **Known gap:** poor on social media text\n"
        "- **Other:** [More Information Needed]\n- {{ bias_risks_limitations }}\n"
    )
    bom, _ = cli.bom(model_folder(tmp_path / "ner", card))
    m = bom["metadata"]["component"]
    assert m["name"] == "acme/ner"
    assert m["description"] == "Finds names of people in news text."
    considerations = m["modelCard"]["considerations"]
    assert considerations["useCases"] == ["Tagging names in English news."]
    assert considerations["technicalLimitations"] == ["- **Known gap:** poor on social media text"]


def test_template_title_and_jinja_leftovers_name_nothing(tmp_path):
    from mlbom.inspectors import Context, card
    from mlbom.sources.local import LocalBlob

    for title in ("# Model ID", "# Model Card for {{ model_id | default('Model ID', true) }}"):
        path = tmp_path / "README.md"
        path.write_text(f"{title}\n\n{{{{ model_summary }}}}\n\nReal words.\n")
        info = card.inspect(
            LocalBlob("README.md", path, path.stat().st_size), Context(frozenset())
        ).info
        assert info.name is None and info.description == "Real words."


def test_citation_and_framework_versions_are_no_description(tmp_path):
    from mlbom.inspectors import Context, card
    from mlbom.sources.local import LocalBlob

    path = tmp_path / "README.md"
    path.write_text(
        "# m\n\n## Citation\n\n**BibTeX:**\n\n### Framework versions\n\n- PEFT 0.13.2\n"
    )
    info = card.inspect(
        LocalBlob("README.md", path, path.stat().st_size), Context(frozenset())
    ).info
    assert info.description is None


def test_onnx_constant_nodes_count_as_parameters(cli, tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), name="W")
    nodes = [
        helper.make_node("Constant", [], ["a"], value=numpy_helper.from_array(np.ones((3, 3), np.float32))),
        helper.make_node("Constant", [], ["b"], value_floats=[1.0, 2.0, 3.0, 4.0]),
        helper.make_node("Constant", [], ["c"], value_int=7),
        helper.make_node("Constant", [], ["d"], value_string="not a parameter"),
        helper.make_node("MatMul", ["X", "W"], ["Y"]),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])], initializer=[weight],
    )  # fmt: skip
    folder = tmp_path / "onnx"
    folder.mkdir()
    onnx.save_model(helper.make_model(graph), str(folder / "model.onnx"))
    bom, _ = cli.bom(folder)
    assert prop(file_component(bom, "model.onnx"), "mlbom:parameter-count") == str(16 + 9 + 4 + 1)


def _gguf_with_makers(path: Path) -> Path:
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("Tiny")
    writer.add_author("Jane Doe")
    writer.add_organization("Acme Labs")
    writer.add_tensor("t", np.ones((2, 2), dtype=np.float32))
    writer.write_header_to_file(), writer.write_kv_data_to_file()
    writer.write_tensors_to_file(), writer.close()
    return path


def test_gguf_author_and_organization_make_and_supply_the_model(cli, tmp_path):
    path = _gguf_with_makers(tmp_path / "g" / "tiny.gguf")
    bom, _ = cli.bom(path)
    m = bom["metadata"]["component"]
    assert m["manufacturer"] == {"name": "Jane Doe"}
    assert m["supplier"] == {"name": "Acme Labs"}
    assert "manufacturer" not in bom["metadata"]  # the BOM's own maker is not the model's

    bom, _ = cli.bom(path, "--manufacturer", "ACME AI")
    m = bom["metadata"]["component"]
    assert m["manufacturer"]["name"] == "ACME AI" and "supplier" not in m


def test_source_date_epoch_makes_identical_bytes(cli, tmp_path, monkeypatch):
    folder = tmp_path / "repro"
    gguf_file(folder / "m.gguf")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    cli("generate", folder, "-o", first, "-q")
    cli("generate", folder, "-o", second, "-q")
    assert first.read_bytes() == second.read_bytes()
    doc = json.loads(first.read_text())
    assert doc["metadata"]["timestamp"].startswith("2023-11-14T22:13:20")
    serial = doc["serialNumber"]
    assert serial.startswith("urn:uuid:") and serial[9:][14] == "5"  # a UUID v5

    (folder / "notes.txt").write_text("changed")
    changed, _ = cli.bom(folder)
    assert changed["serialNumber"] != serial

    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    one, _ = cli.bom(folder)
    two, _ = cli.bom(folder)
    assert one["serialNumber"] != two["serialNumber"]  # random without SOURCE_DATE_EPOCH
