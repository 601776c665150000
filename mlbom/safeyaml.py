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


def load(text: str) -> Any:
    """One document; raises `yaml.YAMLError` (incl. `AliasRefused`)."""
    return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


def load_all(text: str) -> Iterator[Any]:
    """Every document of a multi-document stream (`---`); raises `yaml.YAMLError`."""
    return yaml.load_all(text, Loader=NoAliasLoader)
