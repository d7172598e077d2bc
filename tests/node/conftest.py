"""Node fixtures: initialised node directories on the test database."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.cli import init_node
from node.settings import NodeSettings


@pytest.fixture
def node_settings(tmp_path: Path, database_url: str) -> NodeSettings:
    """A freshly initialised node (ru-lotl) whose database is the test database."""
    return init_node(tmp_path / "node", "ru-lotl", "Land of the Leopard National Park", "RU",
                     database_url=database_url)
