"""Node fixtures: initialised node directories on the test database."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from node.cli import init_node
from node.settings import NodeSettings


@pytest.fixture
def node_settings(tmp_path: Path, database_url: str) -> NodeSettings:
    """A freshly initialised node (ru-lotl) whose database is the test database."""
    return init_node(tmp_path / "node", "ru-lotl", "Land of the Leopard National Park", "RU",
                     database_url=database_url)


@pytest.fixture
def example_copy(camtrap_example: Path, tmp_path: Path) -> Callable[[str], Path]:
    """``example_copy(name)``: a writable copy of the Camtrap DP example package."""

    def copy(name: str) -> Path:
        dst = tmp_path / name
        shutil.copytree(camtrap_example, dst,
                        ignore=shutil.ignore_patterns("dwc_expected", "schemas_*"))
        for path in dst.iterdir():
            path.chmod(0o644)
        return dst

    return copy
