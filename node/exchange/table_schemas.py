"""Table Schemas for the package resources Camtrap DP 1.0.2 does not define.

A ``tabular-data-resource`` must carry a Table Schema (Frictionless Data
Table Schema, https://specs.frictionlessdata.io/table-schema/). The three
Camtrap DP tables point at the published 1.0.2 schemas; the others —
``individuals``, ``cards`` and the Darwin Core survey tables ``event`` and
``occurrence`` — get one written here from the columns the package actually
holds, with the types and constraints the import checks (``node.data.validation``),
so that ``frictionless validate`` and other outside tools accept them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from node.data.validation import FieldSpec, TableSpec

#: Table Schema type of each import type (what is not named is ``string``).
_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean"}

#: The typed columns of ``individuals.csv`` and ``cards.csv`` (one row per animal).
_PER_INDIVIDUAL: Mapping[str, FieldSpec] = {
    "individualID": FieldSpec("individualID", "string", required=True, unique=True),
    "detections": FieldSpec("detections", "integer", minimum=0),
}


def _field(name: str, spec: FieldSpec | None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": "string"}
    if spec is None:
        return out
    out["type"] = _TYPES.get(spec.type, "string")
    constraints: dict[str, Any] = {}
    if spec.required:
        constraints["required"] = True
    if spec.unique:
        constraints["unique"] = True
    if spec.enum:
        constraints["enum"] = sorted(spec.enum)
    if spec.minimum is not None and out["type"] != "string":
        constraints["minimum"] = spec.minimum
    if spec.maximum is not None and out["type"] != "string":
        constraints["maximum"] = spec.maximum
    if constraints:
        out["constraints"] = constraints
    return out


def table_schema(header: Sequence[str], fields: Mapping[str, FieldSpec], *,
                 primary_key: str | None = None,
                 foreign_keys: Iterable[tuple[str, str, str]] = ()) -> dict[str, Any]:
    """A Table Schema for a CSV file with ``header``.

    :param fields: what is known of some columns (type, constraints); the
        others are strings.
    :param foreign_keys: ``(field, resource, field there)`` for each column
        that refers to another resource of the same package.
    """
    schema: dict[str, Any] = {"fields": [_field(n, fields.get(n)) for n in header],
                              "missingValues": [""]}
    if primary_key is not None and primary_key in header:
        schema["primaryKey"] = primary_key
    keys = [{"fields": name, "reference": {"resource": resource, "fields": there}}
            for name, resource, there in foreign_keys if name in header]
    if keys:
        schema["foreignKeys"] = keys
    return schema


def individuals_schema(header: Sequence[str]) -> dict[str, Any]:
    """``individuals.csv``: one row per released individual."""
    return table_schema(header, _PER_INDIVIDUAL, primary_key="individualID")


def cards_schema(header: Sequence[str]) -> dict[str, Any]:
    """``cards.csv``: one catalogue card per released individual, keyed like ``individuals``."""
    return table_schema(header, _PER_INDIVIDUAL, primary_key="individualID",
                        foreign_keys=[("individualID", "individuals", "individualID")])


def dwc_schema(spec: TableSpec, header: Sequence[str]) -> dict[str, Any]:
    """``event.csv`` or ``occurrence.csv`` of a survey package, typed as the import checks."""
    keys = [(name, resource, name) for name, resource in spec.foreign_keys]
    return table_schema(header, spec.by_name(), primary_key=spec.primary_key, foreign_keys=keys)
