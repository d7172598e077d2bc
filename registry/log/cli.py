"""``corridor registry log`` and ``corridor registry witness``: the exchange log and the witness.

``log status`` shows the registry's log and its newest checkpoint; ``log
checkpoint`` signs one now (the server also does it every
``checkpoint_interval`` seconds). ``witness list`` shows the newest checkpoint
the registry cosigned per member; ``witness refusals`` prints the evidence
kept for every checkpoint refused as inconsistent, both notes in full.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import click

from corridor.cli_context import ServiceContext, service_context
from corridor.console import out
from corridor.keystore import load_signing_key
from corridor.listing import format_option, print_rows
from registry.log.exchange_log import LOG
from registry.log.witness import refusals, sign_registry_checkpoint, witnessed
from registry.settings import RegistrySettings

__all__ = ["log", "witness"]


def _registry(ctx: click.Context) -> ServiceContext[RegistrySettings]:
    found: ServiceContext[RegistrySettings] = service_context(ctx)
    return found


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at is not None else "-"


@click.group()
def log() -> None:
    """The registry's exchange log and its signed checkpoints."""


@log.command("status")
@click.pass_context
def log_status(ctx: click.Context) -> None:
    """Size and root of the log, and its newest checkpoint."""
    with _registry(ctx).session() as session:
        size = LOG.size(session)
        out.print(f"entries     {size}")
        out.print(f"root        {_b64(LOG.root(session, size))}", markup=False)
        latest = LOG.latest_checkpoint(session)
        if latest is None:
            out.print("checkpoint  none yet ('corridor registry log checkpoint' signs one)")
            return
        out.print(f"checkpoint  size {latest.size}, signed {_when(latest.signed_at)} UTC"
                  + (f", {size - latest.size} entries since" if size > latest.size else ""))


@log.command("checkpoint")
@click.pass_context
def log_checkpoint(ctx: click.Context) -> None:
    """Sign a checkpoint of the log now (nothing new if one exists at this size)."""
    settings = _registry(ctx).settings
    key = load_signing_key(settings.keys_dir)
    with _registry(ctx).session() as session:
        row = sign_registry_checkpoint(session, key, datetime.now(UTC))
    if row is None:
        out.print("The log is empty: nothing to sign.")
        return
    out.print(f"Checkpoint at size {row.size}, signed {_when(row.signed_at)} UTC:")
    click.echo(row.note, nl=False)


@click.group()
def witness() -> None:
    """Members' checkpoints the registry cosigned, and those it refused."""


@witness.command("list")
@format_option()
@click.pass_context
def witness_list(ctx: click.Context, fmt: str) -> None:
    """The newest cosigned checkpoint of every member."""
    with _registry(ctx).session() as session:
        rows = [{"member": row.member, "size": row.size, "root": _b64(row.root),
                 "cosigned_utc": _when(row.cosigned_at)} for row in witnessed(session)]
    print_rows(rows, ["member", "size", "root", "cosigned_utc"], fmt,
               title="Witnessed checkpoints", empty="No checkpoint cosigned yet.")


@witness.command("refusals")
@click.option("--member", help="Only this member's refusals.")
@click.pass_context
def witness_refusals(ctx: click.Context, member: str | None) -> None:
    """Every refused checkpoint with its evidence: the cosigned note, the offered one, the proof."""
    with _registry(ctx).session() as session:
        rows = refusals(session, member)
        if not rows:
            out.print("No checkpoint refused.")
            return
        for row in rows:
            out.print(f"[bold]refusal {row.id}[/]  {row.member}  {_when(row.at)} UTC")
            out.print(f"  reason: {row.reason}", markup=False)
            # Notes are printed verbatim (click, not rich): they are the evidence.
            out.print("  cosigned note:")
            click.echo(row.cosigned_note or "(none)\n", nl=False)
            out.print("  offered note:")
            click.echo(row.offered_note, nl=False)
            out.print(f"  proof ({len(row.proof)} hashes):")
            for item in row.proof:
                click.echo(f"    {item}")
