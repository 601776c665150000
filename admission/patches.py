"""RFC 6902 JSON Patch, as the API server applies the mutating webhook's answer: the
operations mlbom writes (`add`, `remove`, `replace`) on a copy of the object. The offline
review applies mlbom's own mutation this way before it decides, as the cluster does."""

from __future__ import annotations

import copy
from typing import Any

from mlbom.errors import BadInputError


def apply(obj: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    """`obj` with `patch` applied (the original is left as it was)."""
    result = copy.deepcopy(obj)
    for op in patch:
        *parents, last = _tokens(op["path"])
        target: Any = result
        for token in parents:
            target = target[_index(target, token)] if isinstance(target, list) else target[token]
        kind = op["op"]
        if isinstance(target, list):
            at = len(target) if last == "-" and kind == "add" else _index(target, last, kind == "add")  # fmt: skip
            if kind == "add":
                target.insert(at, copy.deepcopy(op["value"]))
            elif kind == "remove":
                del target[at]
            else:
                target[at] = copy.deepcopy(op["value"])
        elif isinstance(target, dict):
            if kind in ("remove", "replace") and last not in target:
                raise BadInputError(f"the patch {kind}s {op['path']}, which is not there")
            if kind == "remove":
                del target[last]
            else:
                target[last] = copy.deepcopy(op["value"])
        else:
            raise BadInputError(f"the patch reaches into a value at {op['path']}")
    return result


def _tokens(pointer: str) -> list[str]:
    if not pointer.startswith("/"):
        raise BadInputError(f"{pointer!r} is not a JSON Pointer")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _index(target: list[Any], word: str, end_allowed: bool = False) -> int:
    if not word.isdecimal() or (word.startswith("0") and len(word) > 1):
        raise BadInputError(f"{word!r} is not an array index")
    at = int(word)
    if at > len(target) or (at == len(target) and not end_allowed):
        raise BadInputError(f"the array index {at} is out of range")
    return at
