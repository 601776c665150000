"""YAML from untrusted files (model cards, policies, manifests), the one home of YAML loading
in mlbom. Two readers, both PyYAML's safe loader under bounds, so that a small document
cannot expand exponentially or recurse without end:

- `load` and `load_all`: the data, anchors and aliases refused (model cards, manifests);
- `compose`: the node tree as well (its marks give line numbers), with aliases allowed but
  counted, and bounded by what they expand to and by nesting (the admission policy).

Every refusal is a `yaml.YAMLError`: `Refused` (`AliasRefused`, `TooLarge`, `TooDeep`) for
a bound, PyYAML's own errors for text that is not YAML.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml


class Refused(yaml.YAMLError):
    """A document refused for a bound its reader sets, not for its syntax."""


class AliasRefused(Refused):
    """The document uses an anchor alias mlbom refuses: any, where aliases are not allowed;
    more than its reader allows; or one inside the value it names."""


class TooLarge(Refused):
    """The document holds more nodes than its reader allows (aliases expanded, for
    `compose`)."""


class TooDeep(Refused):
    """The document nests values deeper than its reader allows."""


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


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader that counts what aliases would expand to, so that a small file cannot
    become a huge (or cyclic) object; and bounds nesting, since the composer recurses."""

    def __init__(self, stream: str, max_nodes: int, max_depth: int, max_aliases: int) -> None:
        super().__init__(stream)
        self._max_nodes, self._max_depth, self._max_aliases = max_nodes, max_depth, max_aliases
        self._depth = 0
        self._aliases = 0
        # id(node) → (values in it, its depth), once aliases are expanded
        self._sizes: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > self._max_aliases:
                raise AliasRefused(f"more than {self._max_aliases} YAML aliases")
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:  # the alias is inside its own anchor
                raise AliasRefused("a YAML alias refers to a value that contains it")
            return node
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                raise TooDeep(f"values nested more than {self._max_depth} deep")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        size = 1 + sum(self._sizes[id(c)][0] for c in children)
        depth = 1 + max((self._sizes[id(c)][1] for c in children), default=0)
        if size > self._max_nodes:
            raise TooLarge(f"more than {self._max_nodes} values once its aliases are expanded")
        if depth > self._max_depth:  # nesting through aliases: later walks recurse too
            raise TooDeep(f"values nested more than {self._max_depth} deep")
        self._sizes[id(node)] = (size, depth)
        return node


def compose(
    text: str, *, max_nodes: int, max_depth: int, max_aliases: int
) -> tuple[yaml.Node | None, Any]:
    """One document as its node tree (None when empty) and its data. Aliases are allowed,
    at most `max_aliases` of them, and count as the values they stand for: at most
    `max_nodes` values and `max_depth` levels of nesting once they are expanded. Raises
    `Refused` for a bound, PyYAML's `yaml.YAMLError`s otherwise (a `ReaderError` for a
    character YAML does not allow, a `MarkedYAMLError` with its place for bad syntax or a
    tag the safe loader does not know)."""
    # The pure-Python loader: libyaml's composer has no hook to count aliases or depth.
    loader = _BoundedLoader(text, max_nodes, max_depth, max_aliases)  # reads: ReaderError here
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return root, data
