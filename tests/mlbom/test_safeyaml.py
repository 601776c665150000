"""mlbom.safeyaml, the one home of YAML loading: the alias-refusing loader and the bounded
composer, each refusal a `yaml.YAMLError` of its own class (the policy's messages are tested
in test_policy.py)."""

from __future__ import annotations

import pytest
import yaml

from mlbom import safeyaml

BOUNDS = {"max_nodes": 1000, "max_depth": 16, "max_aliases": 4}


def test_load_refuses_aliases_and_counts_nodes():
    assert safeyaml.load("a: [1, 2]\n") == {"a": [1, 2]}
    with pytest.raises(safeyaml.AliasRefused):
        safeyaml.load("a: &x 1\nb: *x\n")
    with pytest.raises(safeyaml.TooLarge):
        safeyaml.load("[" + ", ".join(["x"] * 100) + "]", max_nodes=50)
    assert list(safeyaml.load_all("a: 1\n---\nb: 2\n")) == [{"a": 1}, {"b": 2}]


def test_compose_keeps_the_node_tree_and_expands_aliases():
    root, data = safeyaml.compose("a: &x [1, 2]\nb:\n  c: *x\n", **BOUNDS)
    assert data == {"a": [1, 2], "b": {"c": [1, 2]}}
    assert isinstance(root, yaml.MappingNode)
    key, value = root.value[1]
    assert (key.value, key.start_mark.line) == ("b", 1)
    assert value.value[0][1] is root.value[0][1]  # the alias is the anchored node
    assert safeyaml.compose("# nothing\n", **BOUNDS) == (None, None)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("a: &x 1\nb: [*x, *x, *x, *x, *x]\n", safeyaml.AliasRefused, "more than 4 YAML aliases"),
        ("a: &x [*x]\n", safeyaml.AliasRefused, "a YAML alias refers to a value that contains it"),
        ("[" * 17 + "]" * 17, safeyaml.TooDeep, "values nested more than 16 deep"),
        (
            "a: &x " + "[" * 10 + "]" * 10 + "\nb: " + "[" * 10 + "*x" + "]" * 10 + "\n",
            safeyaml.TooDeep,
            "values nested more than 16 deep",
        ),
        (
            "a: &x [" + ", ".join(["v"] * 300) + "]\nb: [*x, *x, *x, *x]\n",
            safeyaml.TooLarge,
            "more than 1000 values once its aliases are expanded",
        ),
    ],
)
def test_compose_refuses_each_bound_with_its_own_error(text, error, message):
    with pytest.raises(error) as e:
        safeyaml.compose(text, **BOUNDS)
    assert isinstance(e.value, safeyaml.Refused)
    assert isinstance(e.value, yaml.YAMLError)  # what every reader of YAML catches
    assert str(e.value) == message


def test_compose_leaves_bad_yaml_to_pyyaml_errors():
    with pytest.raises(yaml.reader.ReaderError):
        safeyaml.compose("a: \x07\n", **BOUNDS)
    with pytest.raises(yaml.constructor.ConstructorError):
        safeyaml.compose("!!python/object/apply:os.system [echo]\n", **BOUNDS)
    with pytest.raises(yaml.composer.ComposerError):
        safeyaml.compose("a: 1\n---\nb: 2\n", **BOUNDS)
