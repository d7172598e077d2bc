"""Imports point one way: foundations ← shared base ← services and audit ← composition root.

Every module's imports are read (module-level and function-local alike) and
each arrow is checked against docs/architecture.md:

* ``crypto`` imports the standard library, cryptography, joserfc and PyNaCl only;
  ``policies`` the same plus ``crypto``;
* the shared base ``corridor`` imports the foundations, never a service;
* ``node``, ``registry`` and ``audit`` import the base and the foundations,
  never each other;
* nothing imports the composition root ``deploy``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: Our top-level packages, each with the packages of ours it may import.
MAY_IMPORT: dict[str, set[str]] = {
    "crypto": set(),
    "policies": {"crypto"},
    "corridor": {"crypto", "policies"},
    "node": {"corridor", "crypto", "policies"},
    "registry": {"corridor", "crypto", "policies"},
    "audit": {"corridor", "crypto", "policies"},
    "deploy": {"corridor", "crypto", "policies", "node", "registry", "audit"},
}

#: Third-party packages the foundations may import besides the standard library.
FOUNDATION_LIBRARIES = {"cryptography", "joserfc", "nacl"}
FOUNDATIONS = {"crypto", "policies"}


def imported_names(source: str, module: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, relative ones resolved."""
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            elif node.module is not None:
                yield node.lineno, node.module


def violations(package: str, module: str, source: str) -> list[str]:
    """Every import of ``module`` (in our top-level ``package``) that breaks the layering."""
    found = []
    for line, name in imported_names(source, module):
        top = name.split(".")[0]
        if top == package or top == "__future__":
            continue
        if top in MAY_IMPORT:
            if top not in MAY_IMPORT[package]:
                found.append(f"{module}:{line} imports {name}")
        elif package in FOUNDATIONS and top not in sys.stdlib_module_names \
                and top not in FOUNDATION_LIBRARIES:
            found.append(f"{module}:{line} imports {name} (foundations: stdlib, "
                         "cryptography, joserfc and PyNaCl only)")
    return found


def _modules() -> Iterator[tuple[str, str, Path]]:
    for package in MAY_IMPORT:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            if "migrations" in parts and "versions" in parts:
                continue
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield package, module, path


def test_every_import_points_down_the_layers() -> None:
    modules = list(_modules())
    assert len(modules) > 100, "the walk found too few modules to be looking at this repository"
    broken = [v for package, module, path in modules
              for v in violations(package, module, path.read_text(encoding="utf-8"))]
    assert broken == [], "imports that point up or sideways:\n" + "\n".join(broken)


@pytest.mark.parametrize(("package", "source", "expected"), [
    ("corridor", "from node.settings import load_settings", "imports node.settings"),
    ("corridor", "def f():\n    import registry.log\n", "imports registry.log"),
    ("node", "from registry.models import Member", "imports registry.models"),
    ("registry", "import node", "imports node"),
    ("audit", "from node.exchange.trust_store import TrustStore", "imports node.exchange"),
    ("node", "from deploy.loopback import LoopbackServer", "imports deploy.loopback"),
    ("crypto", "import httpx", "foundations: stdlib"),
    ("crypto", "from policies.policy import Policy", "imports policies.policy"),
    ("policies", "from corridor.clock import now", "imports corridor.clock"),
])
def test_the_check_sees_an_arrow_that_points_the_wrong_way(package: str, source: str,
                                                           expected: str) -> None:
    found = violations(package, f"{package}.example", source)
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(("package", "source"), [
    ("crypto", "import hashlib\nfrom cryptography.hazmat.primitives import hashes\n"
               "from joserfc import jws"),
    ("policies", "from crypto.canonical import canonical_json"),
    ("node", "from corridor.db import make_engine\nfrom node.models import Dataset"),
    ("deploy", "from node.cli import node\nfrom registry.cli import registry"),
    ("node", "from .models import Dataset"),
])
def test_the_check_lets_downward_arrows_through(package: str, source: str) -> None:
    assert violations(package, f"{package}.sub.example", source) == []


def test_a_relative_import_is_read_as_the_module_it_names() -> None:
    names = [name for _, name in imported_names("from ..registry import x", "node.a.b")]
    assert names == ["node.registry"]
    assert violations("corridor", "corridor.example",
                      "from . import db\nfrom .tlog import LOG") == []
