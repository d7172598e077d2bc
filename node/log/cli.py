"""``corridor node log``: the node's exchange log, its checkpoints and their witnessing."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import click
from rich.markup import escape
from rich.table import Table
from sqlalchemy import func, select

from corridor.console import fail, out
from node.exchange.agreements_cli import node_context, registry_of, trust_list_of
from node.log.exchange_log import LOG
from node.log.witness import COSIGNED, NOT_SUBMITTED, checkpoint_and_submit
from node.models import LogEntry

__all__ = ["log_group"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@click.group("log")
def log_group() -> None:
    """The node's exchange log: checkpoints, and the registry witnessing them."""


@log_group.command("checkpoint")
@click.option("--no-submit", is_flag=True, help="Sign only; do not send it to the registry.")
@click.pass_context
def checkpoint(ctx: click.Context, no_submit: bool) -> None:
    """Sign a checkpoint of the log now and have the registry witness it."""
    settings = node_context(ctx).settings
    client = None if no_submit else registry_of(settings)
    trust_list = None if no_submit else trust_list_of(settings)
    result = checkpoint_and_submit(settings, client, node_context(ctx).sessions,
                                   trust_list, datetime.now(UTC))
    if result.size == 0:
        out.print("The log is empty: nothing to checkpoint.")
        return
    out.print(f"Checkpoint of [bold]{result.size}[/] entries\n  root     {result.root_b64}")
    if result.outcome == COSIGNED:
        out.print("  witness  cosigned by the registry")
    elif result.outcome == NOT_SUBMITTED:
        out.print("  witness  not submitted")
    else:
        fail(f"  witness  {result.outcome}: {result.detail}")


@log_group.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show the log's size and its latest checkpoint, witnessed or not."""
    settings = node_context(ctx).settings
    with node_context(ctx).session() as session:
        size = LOG.size(session)
        latest = LOG.latest_checkpoint(session)
        counts = {str(kind): int(n) for kind, n in session.execute(
            select(LogEntry.type, func.count()).group_by(LogEntry.type))}
    out.print(f"Exchange log of [bold]{settings.member_id}[/]: {size} entries")
    if counts:
        table = Table("type", "entries")
        for kind, n in sorted(counts.items()):
            table.add_row(kind, str(n))
        out.print(table)
    if latest is None:
        out.print("No checkpoint yet; run 'corridor node log checkpoint'.")
        return
    out.print(f"Latest checkpoint: {latest.size} entries, signed "
              f"{latest.signed_at:%Y-%m-%d %H:%M} UTC\n  root     {_b64(latest.root)}")
    if latest.cosigned_at is not None:
        out.print(f"  witness  cosigned by the registry {latest.cosigned_at:%Y-%m-%d %H:%M} UTC")
    elif latest.witness_problem:
        out.print(f"  witness  [red]refused:[/] {escape(latest.witness_problem)}")
    else:
        out.print("  witness  not cosigned yet")
    if size > latest.size:
        out.print(f"{size - latest.size} entries since the latest checkpoint.")
