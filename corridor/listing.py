"""Listings on the command line: a rich table for people, JSON or CSV for scripts.

Every listing command takes ``--format table|json|csv`` (:data:`FORMAT_OPTION`)
and prints its rows with :func:`print_rows`. The table never shortens an id
(ids fold rather than truncate); JSON and CSV carry every value whole.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click
from rich.table import Table

from corridor.console import out

__all__ = ["FORMATS", "format_option", "print_rows"]

FORMATS = ("table", "json", "csv")

F = TypeVar("F", bound=Callable[..., Any])


def format_option() -> Callable[[F], F]:
    """The ``--format`` option of a listing command."""
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
                        show_default=True, help="A table for reading, or JSON / CSV for scripts.")


def print_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str, *,
               title: str | None = None, empty: str = "Nothing to list.") -> None:
    """Print ``rows`` (only ``columns``, in that order) as ``fmt``.

    In the table the first column (the id) is never wrapped or cut; the
    others fold to make room for it.
    """
    if fmt == "json":
        click.echo(json.dumps([{c: row.get(c) for c in columns} for row in rows],
                              ensure_ascii=False, indent=2))
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if row.get(c) is None else row.get(c) for c in columns]
                          for row in rows])
        click.echo(buffer.getvalue(), nl=False)
        return
    if not rows:
        out.print(empty)
        return
    table = Table(title=title)
    for i, column in enumerate(columns):
        if i == 0:
            width = max([len(column), *(len(str(r.get(column) or "")) for r in rows)])
            table.add_column(column, no_wrap=True, min_width=width)
        else:
            table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(table)
