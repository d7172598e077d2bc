"""Counts as a terminal table: the totals per taxon and period of one release."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from policies.suppression import Released, derived

__all__ = ["counts_table"]


def counts_table(title: str, released: Released) -> Table:
    """A rich table of a release's totals per taxon and period (suppressed ones say so)."""
    kind = released.kind
    table = Table(title=title, title_justify="left")
    columns = (("taxon", "period", "cells", "events", "camera_days", "rai", "cameras",
                "individuals") if kind == "camtrap"
               else ("taxon", "period", "cells", "visits", "surveys", "sum", "max"))
    for name in columns:
        table.add_column(name.replace("_", "-"), justify="left" if name in ("taxon", "period")
                         else "right")
    for row in released.totals:
        values = derived(row, kind)
        if "suppressed" in values:
            table.add_row(values["taxon"], values["period"], str(values.get("cells", "")),
                          *["suppressed"] + [""] * (len(columns) - 4))
            continue
        table.add_row(*[_cell(values.get(name)) for name in columns])
    return table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
