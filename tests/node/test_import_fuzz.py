"""Hypothesis over import files: any change to a Camtrap DP package or its descriptor is
imported or refused with the problems named (ImportRefused, SourceError), never a crash,
and a refusal writes nothing. The hand-picked hostile cases are in test_import_hostile.py."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from node.data.importer import Importer, ImportRefused
from node.data.sources import SourceError
from node.models import Dataset

pytestmark = pytest.mark.storage

FILES = ("deployments.csv", "media.csv", "observations.csv")
#: Cell values that have broken CSV readers and type parsers elsewhere.
NASTY = st.one_of(
    st.sampled_from(["", '"', '""', ",", "\n", "\r\n", "\x00", "NaN", "inf", "-0", "1e309",
                     "9" * 40, "2020-02-30T00:00:00Z", "2020-01-01T00:00:00", "true ", "🐯",
                     "\ufeff", "x" * 5000]),
    st.text(max_size=30))
FIZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None,
                max_examples=40)
_names = itertools.count()


def datasets(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(sa.select(sa.func.count()).select_from(Dataset)) or 0)


def import_or_refuse(engine: sa.Engine, package: Path) -> None:
    """Import ``package``: success, or a named refusal that left the database as it was."""
    before = datasets(engine)
    try:
        Importer(engine).import_camtrap(package, name=f"fuzz-{next(_names)}")
    except ImportRefused as refused:
        assert refused.problems and all(p.reason for p in refused.problems)
        assert datasets(engine) == before
    except SourceError as e:
        assert str(e)
        assert datasets(engine) == before
    else:
        assert datasets(engine) == before + 1
    shutil.rmtree(package)


@FIZZ
@given(file=st.sampled_from(FILES), row=st.integers(0, 600), column=st.integers(0, 40),
       value=NASTY)
# Both found here, on PostgreSQL only: a NUL, and an id longer than its column.
@example(file="deployments.csv", row=1, column=0, value="\x00")
@example(file="deployments.csv", row=1, column=0, value="x" * 5000)
def test_any_one_cell_changed_is_imported_or_refused_by_name(
        engine: sa.Engine, example_copy: Callable[[str], Path], file: str, row: int,
        column: int, value: str) -> None:
    package = example_copy(f"cell-{next(_names)}")
    path = package / file
    lines = path.read_text(encoding="utf-8").split("\n")
    at = row % len(lines)
    cells = lines[at].split(",")
    cells[column % len(cells)] = value
    lines[at] = ",".join(cells)
    path.write_text("\n".join(lines), encoding="utf-8")
    import_or_refuse(engine, package)


@FIZZ
@given(file=st.sampled_from(FILES), position=st.integers(0), edit=st.sampled_from(
    ["cut", "insert", "flip"]), data=st.binary(min_size=1, max_size=40))
def test_any_bytes_cut_inserted_or_flipped_are_imported_or_refused(
        engine: sa.Engine, example_copy: Callable[[str], Path], file: str, position: int,
        edit: str, data: bytes) -> None:
    package = example_copy(f"bytes-{next(_names)}")
    path = package / file
    raw = bytearray(path.read_bytes())
    at = position % len(raw)
    if edit == "cut":
        del raw[at:]
    elif edit == "insert":
        raw[at:at] = data
    else:
        raw[at] ^= data[0]
    path.write_bytes(bytes(raw))
    import_or_refuse(engine, package)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@FIZZ
@given(field=st.sampled_from(["resources", "profile", "name", "temporal", "spatial",
                              "taxonomic", "contributors", "project", "created"]),
       resource_field=st.sampled_from([None, "name", "path", "schema", "profile", "format"]),
       value=JSON)
@example(field="resources", resource_field="name", value=[])  # found here: was a TypeError
def test_any_descriptor_field_changed_is_imported_or_refused(
        engine: sa.Engine, example_copy: Callable[[str], Path], field: str,
        resource_field: str | None, value: Any) -> None:
    package = example_copy(f"descriptor-{next(_names)}")
    path = package / "datapackage.json"
    descriptor = json.loads(path.read_text(encoding="utf-8"))
    if resource_field is None or field != "resources":
        descriptor[field] = value
    else:
        descriptor["resources"][0][resource_field] = value
    path.write_text(json.dumps(descriptor), encoding="utf-8")
    import_or_refuse(engine, package)
