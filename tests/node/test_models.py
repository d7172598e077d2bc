"""The camera-trap tables carry every Camtrap DP 1.0.2 field, same name, same type."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from corridor.db import table_of
from node.data.validation import SCHEMA_DIR
from node.models import Deployment, Media, Observation

# Table Schema type -> the SQL type the column must have. Datetimes are kept as
# their verbatim ISO 8601 text (with offset) plus a *_utc companion column.
EXPECTED = {
    "string": sa.String, "integer": sa.Integer, "number": sa.Float,
    "boolean": sa.Boolean, "datetime": sa.String, "any": sa.String,
}


@pytest.mark.parametrize(("resource", "model"), [
    ("deployments", Deployment), ("media", Media), ("observations", Observation)])
def test_every_schema_field_is_a_column_of_the_right_type(resource: str, model: type) -> None:
    schema = json.loads((SCHEMA_DIR / f"{resource}-table-schema.json").read_text("utf-8"))
    table = table_of(model)
    for field in schema["fields"]:
        column = table.c[field["name"]]  # KeyError names a missing field
        assert isinstance(column.type, EXPECTED[field["type"]]), field["name"]
        required = field.get("constraints", {}).get("required", False)
        assert column.nullable is not required or column.primary_key, field["name"]
        if field["type"] == "datetime":
            assert f"{field['name']}_utc" in table.c
    extra = set(table.c.keys()) - {f["name"] for f in schema["fields"]}
    assert all(name == "dataset_id" or name == "source_row" or name.endswith("_utc")
               for name in extra), extra


@pytest.mark.storage
def test_migrations_match_the_models(engine: sa.Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from node.db import Base

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
