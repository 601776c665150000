"""YAML from untrusted files (model cards, policies, manifests): the safe loader, without
anchors and aliases, so that a small document cannot expand exponentially."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml


class AliasRefused(yaml.YAMLError):
    """The document uses an anchor alias, which mlbom refuses."""


class NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise AliasRefused("YAML aliases are refused (a small file could expand without bound)")
        return super().compose_node(parent, index)


# libyaml, when PyYAML has it, parses a hundred times faster than the pure-Python loader:
# its events are checked for aliases first (the C composer has no hook), then it loads.
_FAST = getattr(yaml, "CSafeLoader", None)


def _refuse_aliases(text: str) -> None:
    for event in yaml.parse(text, Loader=_FAST):
        if isinstance(event, yaml.AliasEvent):
            raise AliasRefused("YAML aliases are refused (a small file could expand without bound)")


def load(text: str) -> Any:
    """One document; raises `yaml.YAMLError` (incl. `AliasRefused`)."""
    if _FAST is None:
        return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    _refuse_aliases(text)
    return yaml.load(text, Loader=_FAST)  # noqa: S506 - libyaml's safe loader, no aliases


def load_all(text: str) -> Iterator[Any]:
    """Every document of a multi-document stream (`---`); raises `yaml.YAMLError`."""
    if _FAST is None:
        return yaml.load_all(text, Loader=NoAliasLoader)
    _refuse_aliases(text)
    return yaml.load_all(text, Loader=_FAST)
