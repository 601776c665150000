from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mlbom.cli import main
from tests.builders import assert_valid


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test gets its own hash cache, never the developer's."""
    monkeypatch.setenv("MLBOM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


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
