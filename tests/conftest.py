from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from mlbom.cli import main


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test gets its own hash cache, never the developer's."""
    monkeypatch.setenv("MLBOM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def assert_valid(text: str, spec: str = "1.6") -> dict:
    version = {"1.6": SchemaVersion.V1_6, "1.7": SchemaVersion.V1_7}[spec]
    error = JsonStrictValidator(version).validate_str(text)
    assert error is None, error
    return json.loads(text)


class Cli:
    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str | Path, code: int = 0) -> tuple[str, str]:
        result = self.runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result.stdout, result.stderr

    def bom(self, *args: str | Path, code: int = 0) -> tuple[dict, str]:
        out, err = self("generate", *args, code=code)
        return assert_valid(out), err


@pytest.fixture
def cli() -> Cli:
    return Cli()


def props(component: dict, name: str) -> list[str]:
    return [p["value"] for p in component.get("properties", []) if p["name"] == name]


def prop(component: dict, name: str) -> str | None:
    values = props(component, name)
    assert len(values) <= 1, values
    return values[0] if values else None


def file_component(bom: dict, path: str) -> dict:
    return next(c for c in bom["components"] if c["type"] == "file" and c["name"] == path)
