"""YAML from untrusted files (model cards, policies, manifests): the safe loader, without
anchors and aliases, so that a small document cannot expand exponentially."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml


class AliasRefused(yaml.YAMLError):
    """The document uses an anchor alias, which mlbom refuses."""


class TooLarge(yaml.YAMLError):
    """The document holds more nodes than its reader allows."""


class NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise AliasRefused("YAML aliases are refused (a small file could expand without bound)")
        return super().compose_node(parent, index)


# libyaml, when PyYAML has it, parses a hundred times faster than the pure-Python loader:
# its events are checked for aliases first (the C composer has no hook), then it loads.
_FAST = getattr(yaml, "CSafeLoader", None)


def _check_events(text: str, max_nodes: int | None) -> None:
    """Aliases refused; with `max_nodes`, a document whose building would take long too."""
    for count, event in enumerate(yaml.parse(text, Loader=_FAST or NoAliasLoader)):
        if isinstance(event, yaml.AliasEvent):
            raise AliasRefused("YAML aliases are refused (a small file could expand without bound)")
        if max_nodes is not None and count > max_nodes:
            raise TooLarge(f"it holds more than {max_nodes} YAML nodes")


def load(text: str, *, max_nodes: int | None = None) -> Any:
    """One document; raises `yaml.YAMLError` (incl. `AliasRefused`, `TooLarge`)."""
    if _FAST is None and max_nodes is None:
        return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    _check_events(text, max_nodes)
    return yaml.load(text, Loader=_FAST or NoAliasLoader)  # noqa: S506 - safe loaders, no aliases


def load_all(text: str) -> Iterator[Any]:
    """Every document of a multi-document stream (`---`); raises `yaml.YAMLError`."""
    if _FAST is None:
        return yaml.load_all(text, Loader=NoAliasLoader)
    _check_events(text, None)
    return yaml.load_all(text, Loader=_FAST)
