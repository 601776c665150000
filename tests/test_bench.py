"""The benchmarks under bench/ import only what tests/ keeps for sharing (builders and
stand-ins), and every name they import is there: a test module moved or renamed must not
leave `make bench` broken."""

from __future__ import annotations

import ast
import importlib

import pytest

from tests.builders import ROOT

BENCHES = sorted((ROOT / "bench").glob("bench_*.py"))


@pytest.mark.parametrize("bench", BENCHES, ids=lambda p: p.name)
def test_the_benchmark_imports_resolve(bench):
    for node in ast.walk(ast.parse(bench.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests."):
            assert not node.module.split(".")[-1].startswith("test_"), node.module
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
