"""``corridor audit``: the auditor's commands (DESIGN.md §10).

``audit verify`` proves one service's log was not rewritten; ``audit
reconcile`` matches what nodes say they sent with what recipients say they
received and with the tokens the registry issued. Both read services through
their auditor API (URL) or straight from a service directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from audit.checks import AuditFailure, Reconciliation, Verdict, reconcile, verify_log
from audit.sources import (
    Credentials,
    DirectorySource,
    HttpSource,
    TrustedKeys,
    open_source,
)
from corridor.console import err, out
from corridor.tlog import LogEntry

__all__ = ["audit"]

PASSWORD_ENV = "CORRIDOR_AUDIT_PASSWORD"  # noqa: S105 (the variable's name)


@click.group()
def audit() -> None:
    """Prove what the exchange logs say, and that nobody rewrote them.

    TARGET is a service's URL (read through its auditor API, with an auditor
    account: --user and the password in $CORRIDOR_AUDIT_PASSWORD, or
    --credentials) or a node's or the registry's directory on this machine.
    """


def _credentials(user: str | None, credentials: Path | None) -> Credentials:
    default = None
    if user is not None:
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            password = click.prompt(f"password for {user}", hide_input=True, err=True)
        default = (user, str(password))
    return Credentials(default, credentials)


def _keys(source: HttpSource | DirectorySource, anchor: Path | None) -> TrustedKeys:
    if isinstance(source, HttpSource):
        if anchor is None:
            raise AuditFailure("give --anchor (the registry anchor file) to check a service "
                               "by URL")
        return source.trusted_keys(anchor)
    return source.trusted_keys(anchor)


def _verify(source: HttpSource | DirectorySource, anchor: Path | None,
            since: bytes | None, allow_unwitnessed: bool) -> Verdict:
    keys = _keys(source, anchor)
    with Progress(TextColumn("  entries"), BarColumn(), MofNCompleteColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("verify", total=None)
        verdict = verify_log(source, keys.registry, keys.members,
                             since=since, require_witness=not allow_unwitnessed,
                             progress=lambda done, total: bar.update(task, completed=done,
                                                                     total=total))
    return verdict


def _report(verdict: Verdict) -> None:
    cp = verdict.checkpoint
    out.print(f"{verdict.label}: log {verdict.origin}")
    out.print(f"  ✓ checkpoint of {cp.size} entries signed by {verdict.signed_by}")
    if verdict.signed_by != "corridor-registry":
        out.print("  ✓ cosigned by the registry witness" if verdict.witnessed
                  else "  ! NOT cosigned by the registry witness (--allow-unwitnessed)")
    if verdict.since_size is not None:
        out.print(f"  ✓ consistent with the saved checkpoint of {verdict.since_size} entries")
    out.print(f"  ✓ {verdict.entries} entries read in order; the root recomputed from the "
              f"first {cp.size} equals the signed root")
    for note in verdict.notes:
        out.print(f"  · {note}")


@audit.command()
@click.argument("target")
@click.option("--anchor", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The registry anchor file (required for a URL): the keys you trust.")
@click.option("--since-checkpoint", "since_path", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The checkpoint you saved last time: prove the log only grew since.")
@click.option("--save-checkpoint", "save_path", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Save the verified checkpoint here (for the next --since-checkpoint).")
@click.option("--user", help=f"Auditor account at a URL (password in ${PASSWORD_ENV}).")
@click.option("--credentials", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="TOML file of auditor accounts per URL.")
@click.option("--allow-unwitnessed", is_flag=True,
              help="Accept a node checkpoint the registry has not cosigned yet.")
def verify(target: str, anchor: Path | None, since_path: Path | None, save_path: Path | None,
           user: str | None, credentials: Path | None, allow_unwitnessed: bool) -> None:
    """Verify one service's log: checkpoint signatures, consistency, every entry, the root.

    Prints a verdict; on failure names the first bad entry and exits 1.
    """
    since = since_path.read_bytes() if since_path is not None and since_path.exists() else None
    try:
        with httpx.Client() as http:
            source = open_source(target, _credentials(user, credentials), http)
            try:
                verdict = _verify(source, anchor, since, allow_unwitnessed)
            finally:
                if isinstance(source, DirectorySource):
                    source.__exit__(None, None, None)
    except AuditFailure as e:
        where = f" at entry {e.index}" if e.index is not None else ""
        out.print(f"{target}: [bold red]FAILED{where}[/]: {e}")
        raise SystemExit(1) from e
    _report(verdict)
    if save_path is not None:
        save_path.write_bytes(verdict.note)
        out.print(f"  saved the checkpoint to {save_path}")
    out.print("[bold green]VERDICT: the log is intact[/]")


@audit.command("reconcile")
@click.option("--registry", "registry_target", required=True, metavar="URL-or-DIR",
              help="The registry.")
@click.option("--node", "node_targets", required=True, multiple=True, metavar="URL-or-DIR",
              help="A node (repeat for each node to match).")
@click.option("--anchor", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The registry anchor file (required for URLs).")
@click.option("--user", help=f"Auditor account (password in ${PASSWORD_ENV}).")
@click.option("--credentials", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="TOML file of auditor accounts per URL.")
def reconcile_command(registry_target: str, node_targets: tuple[str, ...],
                      anchor: Path | None, user: str | None,
                      credentials: Path | None) -> None:
    """Match packages and counts results served and received, and tokens issued, across logs.

    Every log is verified first. Prints every unmatched or mismatched item
    (missing receipt, digest mismatch, package served without a token; and,
    as notes, tokens refused or never presented) and exits 1 if anything but
    such notes is found.
    """
    creds = _credentials(user, credentials)
    try:
        with httpx.Client() as http:
            registry_entries, _ = _verified_entries(registry_target, creds, http, anchor)
            nodes: dict[str, list[LogEntry]] = {}
            for target in node_targets:
                entries, verdict = _verified_entries(target, creds, http, anchor)
                nodes[verdict.signed_by] = entries
    except AuditFailure as e:
        where = f" at entry {e.index}" if e.index is not None else ""
        out.print(f"[bold red]FAILED{where}[/]: {e}")
        raise SystemExit(1) from e
    result = reconcile(registry_entries, nodes)
    _print_reconciliation(result)
    if not result.ok:
        raise SystemExit(1)


def _verified_entries(target: str, creds: Credentials, http: httpx.Client,
                      anchor: Path | None) -> tuple[list[LogEntry], Verdict]:
    source = open_source(target, creds, http)
    try:
        verdict = _verify(source, anchor, None, False)
        out.print(f"  ✓ {target}: {verdict.origin}, {verdict.entries} entries verified")
        return list(source.entries(0, verdict.entries)), verdict
    finally:
        if isinstance(source, DirectorySource):
            source.__exit__(None, None, None)


def _print_reconciliation(result: Reconciliation) -> None:
    out.print(f"packages served: {result.served}, received: {result.received}, "
              f"agreement tokens issued: {result.tokens}; fully matched: {result.matched}")
    counted = result.counts
    out.print(f"counts results served: {counted.served}, received: {counted.received}; "
              f"fully matched: {counted.matched}")
    for m in result.mismatches:
        mark = "[bold red]✗[/]" if m.serious else "·"
        out.print(f"  {mark} {m.kind}: {m.where}: {m.detail}")
    out.print("[bold green]RECONCILED: every package and counts result served is matched[/]"
              if result.ok else "[bold red]NOT RECONCILED[/]")
