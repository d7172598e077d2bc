"""``corridor node request|decide|revoke|fetch``: data-use agreements from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Column, Table
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from corridor.anchor import AnchorError
from corridor.cli_context import ServiceContext, service_context
from corridor.console import err, fail, out
from corridor.errors import CorridorError
from corridor.keystore import KeystoreError, load_signing_key
from corridor.listing import format_option, print_rows
from corridor.outbound import partner_client
from corridor.pages import is_development_url
from corridor.wording import rows_summary
from corridor.yaml_files import YamlFileError, read_yaml_file
from crypto.trustlist import TrustList, TrustListRejected
from node.exchange.agreement_sync import file_request, push, refresh_one, sync_agreements
from node.exchange.agreements import STORE, act, local, restore
from node.exchange.counts_table import counts_table
from node.exchange.fetch import FetchRefused, fetch_package
from node.exchange.oauth_client import TokenError
from node.exchange.preview import preview
from node.exchange.registry_client import (
    RegistryClient,
    RegistryError,
    RegistryUnreachable,
    client_for,
    unreachable,
)
from node.exchange.trust_store import TrustStore, TrustUnavailable
from node.models import Agreement as AgreementRow
from node.settings import NodeSettings
from policies.agreement_terms import check_narrowing
from policies.agreements import ACTIVE, APPROVED, REQUESTED, AgreementError
from policies.errors import PolicyError
from policies.policy import PURPOSES


def node_context(ctx: click.Context) -> ServiceContext[NodeSettings]:
    """The node directory of ``--dir``: its settings and database, made once per run."""
    found: ServiceContext[NodeSettings] = service_context(ctx)
    return found


def registry_of(settings: NodeSettings) -> RegistryClient:
    """The node's registry client, or a clear exit."""
    try:
        return client_for(settings)
    except (RegistryError, KeystoreError) as e:
        fail(str(e))


def registry_failure(settings: NodeSettings, error: RegistryError | TokenError) -> str:
    """What a failed registry call means: an outage explained, or the registry's refusal."""
    down = isinstance(error, RegistryUnreachable) or (
        isinstance(error, TokenError) and error.error == "request_failed")
    if not down:
        return str(error)
    try:
        stored = TrustStore(settings.directory).current()
    except (AnchorError, TrustListRejected):
        stored = None
    cause = error.description if isinstance(error, TokenError) else error
    return unreachable(settings.registry_url or "?", cause, stored, datetime.now(UTC))


def trust_list_of(settings: NodeSettings) -> TrustList:
    """The stored, unexpired trust list, or a clear exit."""
    try:
        return TrustStore(settings.directory).valid(datetime.now(UTC))
    except TrustUnavailable as e:
        fail(f"{e.detail}; run 'corridor node sync'")


def _tell_registry(session: Session, settings: NodeSettings, row: AgreementRow) -> str:
    """Push this node's new events; say whether the registry has them."""
    try:
        sent = push(session, registry_of(settings), row)
    except RegistryError as e:
        return f"the registry refused it: {e}"
    return ("the registry has it" if sent
            else "the registry is unreachable; it will be sent at the next 'sync'")


def show_agreement(session: Session, row: AgreementRow) -> None:
    """Print an agreement: parties, terms, state and history."""
    agreement = restore(session, row)
    out.print(f"[bold]{row.id}[/]  {row.state.upper()}")
    out.print(f"  requester  {row.requester}\n  provider   {row.provider}\n"
              f"  dataset    {row.dataset}")
    for key in ("purpose", "tier", "until", "taxa", "time_from", "time_to", "bbox", "fields"):
        if key in row.terms:
            value = row.terms[key]
            shown = ", ".join(value) if isinstance(value, list) and key == "taxa" else value
            out.print(f"  {key:<10} {shown}", markup=False)
    out.print("  history:")
    for event in agreement.events:
        why = f" - {event.reason}" if event.reason else ""
        out.print(f"    {event.seq}. {event.at:%Y-%m-%d %H:%M} UTC  {event.action:<8} by "
                  f"{event.actor}{why}", markup=False)


def show_preview(session: Session, ctx: click.Context, row: AgreementRow) -> None:
    """Print what approving ``row`` would release (or what it releases): as the request page."""
    context = node_context(ctx)
    settings = context.settings
    try:
        key = load_signing_key(settings.keys_dir)
    except KeystoreError as e:
        fail(str(e))
    shown = preview(session, context.engine, row, keys_dir=settings.keys_dir, key=key,
                    provider=settings.member_id, now=datetime.now(UTC))
    title = "What approval would release" if row.state == REQUESTED else "What it releases"
    out.print(f"[bold]{title}[/]")
    if shown.refusal:
        out.print(f"  Approval would be refused: {shown.refusal}", markup=False)
        return
    for number, line in enumerate(shown.lines, 1):
        out.print(f"  {number}. {line}", markup=False)
    if not shown.no_rows:
        table = Table("resource", Column("rows in the package", justify="right"))
        for resource, rows in shown.rows.items():
            table.add_row(resource, f"{rows:,}")
        out.print(table)
        dropped = "; ".join(f"{why.replace('_', ' ')} {n:,}" for why, n in shown.dropped.items())
        if dropped:
            out.print(f"  Observations left out: {dropped}", markup=False)
        return
    out.print(f"  No row package: {shown.no_rows}", markup=False)
    if shown.counts is None or shown.query is None:
        out.print(f"  No counts to show: {shown.no_counts}", markup=False)
        return
    out.print(f"  The counts the partner would get for the most detailed query the rules "
              f"allow: {shown.query.describe()}; {shown.suppressed:,} of "
              f"{len(shown.counts.counts):,} cell rows suppressed.", markup=False)
    out.print(counts_table("Totals", shown.counts))


@click.group("request")
def request_group() -> None:
    """Ask partners for data, and follow your requests."""


@request_group.command("create")
@click.option("--dataset", required=True, help="provider/dataset, e.g. cn-ntlnp/leopards-2024.")
@click.option("--purpose", required=True, type=click.Choice(PURPOSES))
@click.option("--tier", required=True, help="Access tier, e.g. generalized.")
@click.option("--until", required=True, help="Last day of the agreement, YYYY-MM-DD.")
@click.option("--taxon", "taxa", multiple=True, help="Only this taxon (repeat for several).")
@click.option("--from", "time_from", default=None, help="Only records from this date.")
@click.option("--to", "time_to", default=None, help="Only records up to this date.")
@click.option("--bbox", default=None, help="Only records inside west,south,east,north.")
@click.option("--justification", required=True, help="Why you need the data (the owner reads it).")
@click.pass_context
def request_create(ctx: click.Context, dataset: str, purpose: str, tier: str, until: str,
                   taxa: tuple[str, ...], time_from: str | None, time_to: str | None,
                   bbox: str | None, justification: str) -> None:
    """File a request for a partner's dataset at the registry."""
    settings = node_context(ctx).settings
    provider, slash, name = dataset.partition("/")
    if not slash or not provider or not name:
        fail(f"--dataset {dataset}: name the provider too, as PROVIDER/DATASET (e.g. "
             "cn-ntlnp/leopards-2024); 'corridor node catalog' lists them")
    terms: dict[str, Any] = {"provider": provider, "dataset": dataset, "purpose": purpose,
                             "tier": tier, "until": until}
    if taxa:
        terms["taxa"] = list(taxa)
    if time_from:
        terms["time_from"] = time_from
    if time_to:
        terms["time_to"] = time_to
    if bbox:
        try:
            terms["bbox"] = [float(v) for v in bbox.split(",")]
        except ValueError:
            fail("--bbox must be four numbers: west,south,east,north")
    client = registry_of(settings)
    with node_context(ctx).session() as session:
        try:
            row = file_request(session, client, key=load_signing_key(settings.keys_dir),
                               keys_dir=settings.keys_dir, terms=terms,
                               justification=justification, now=datetime.now(UTC))
        except PolicyError as e:
            fail(f"request not filed: {e}")
        except (RegistryError, TokenError) as e:
            fail(f"request refused: {e}")
    out.print(f"Request [bold]{row.id}[/] filed: {dataset}, {purpose}, {tier} tier, until "
              f"{until}. {provider} decides; see 'corridor node request show {row.id}'.")


@request_group.command("list")
@click.option("--offline", is_flag=True, help="Do not ask the registry for news first.")
@format_option()
@click.pass_context
def request_list(ctx: click.Context, offline: bool, fmt: str) -> None:
    """List the agreements this node is a party to (after pulling news from the registry).

    Ids are never shortened; with --format json or csv, news from the
    registry goes to stderr so that stdout holds the listing only.
    """
    settings = node_context(ctx).settings
    with node_context(ctx).session() as session:
        if not offline:
            _sync(session, settings, quiet=True, to=out if fmt == "table" else err)
        rows = [{"id": row.id, "role": row.role,
                 "other party": row.provider if row.role == "requester" else row.requester,
                 "dataset": row.dataset, "tier": row.terms.get("tier"), "state": row.state,
                 "until": row.terms.get("until")}
                for row in STORE.of_member(session, settings.member_id)]
    print_rows(rows, ["id", "role", "other party", "dataset", "tier", "state", "until"], fmt,
               empty="No requests or agreements yet.")


@request_group.command("show")
@click.argument("agreement_id")
@click.option("--document", "document_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the signed agreement document to this file.")
@click.option("--offline", is_flag=True, help="Show this node's copy without asking the registry.")
@click.pass_context
def request_show(ctx: click.Context, agreement_id: str, document_path: Path | None,
                 offline: bool) -> None:
    """Show one request or agreement, with its signed history."""
    settings = node_context(ctx).settings
    with node_context(ctx).session() as session:
        if not offline:
            try:
                refresh_one(session, registry_of(settings), trust_list_of(settings),
                            agreement_id, datetime.now(UTC))
            except RegistryError as e:
                if e.status != 404 or STORE.get(session, agreement_id) is None:
                    fail(str(e))
            except (AgreementError, PolicyError) as e:
                fail(f"the registry's copy of {agreement_id} does not verify: {e}")
        try:
            row = local(session, agreement_id, settings.member_id)
        except CorridorError as e:
            fail(str(e.detail))
        show_agreement(session, row)
        if row.provider == settings.member_id and row.state in (REQUESTED, APPROVED, ACTIVE):
            show_preview(session, ctx, row)
        if document_path is not None:
            try:
                signed = restore(session, row).signed_document()
            except AgreementError as e:
                fail(str(e))
            document_path.write_text(json.dumps(signed, indent=2) + "\n")
            out.print(f"Signed agreement document written to {document_path}")


def _requester_action(ctx: click.Context, agreement_id: str, action: str,
                      reason: str | None) -> None:
    settings = node_context(ctx).settings
    with node_context(ctx).session() as session:
        try:
            refresh_one(session, registry_of(settings), trust_list_of(settings), agreement_id,
                        datetime.now(UTC))
        except RegistryError as e:
            fail(str(e))
        except (AgreementError, PolicyError) as e:
            fail(f"the registry's copy of {agreement_id} does not verify: {e}")
        row = _act(session, settings, agreement_id, action, reason=reason)
        status = _tell_registry(session, settings, row)
    out.print(f"{agreement_id} is now [bold]{row.state}[/] ({status}).")


@request_group.command("accept")
@click.argument("agreement_id")
@click.pass_context
def request_accept(ctx: click.Context, agreement_id: str) -> None:
    """Accept the provider's offer (as approved, or with its narrowed terms)."""
    _requester_action(ctx, agreement_id, "accept", None)


@request_group.command("withdraw")
@click.argument("agreement_id")
@click.option("--reason", default=None, help="Why (shown to the provider).")
@click.pass_context
def request_withdraw(ctx: click.Context, agreement_id: str, reason: str | None) -> None:
    """Withdraw a request that is not yet in force."""
    _requester_action(ctx, agreement_id, "withdraw", reason)


def _act(session: Session, settings: NodeSettings, agreement_id: str, action: str, *,
         terms: dict[str, Any] | None = None, reason: str | None = None) -> AgreementRow:
    try:
        row = act(session, me=settings.member_id, key=load_signing_key(settings.keys_dir),
                  keys_dir=settings.keys_dir, agreement_id=agreement_id, action=action,
                  now=datetime.now(UTC), terms=terms, reason=reason)
        session.commit()
    except CorridorError as e:
        fail(str(e.detail))
    except PolicyError as e:  # includes AgreementError, TermsRefused, TermsNotNarrower
        fail(f"cannot {action} {agreement_id}: {e}")
    return row


@click.command("decide")
@click.argument("agreement_id")
@click.argument("decision", type=click.Choice(["approve", "refuse"]))
@click.option("--narrow-terms", "narrow_file",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Approve with these narrower terms (YAML or JSON; the requester must accept).")
@click.option("--reason", default=None,
              help="Why (recorded, signed, shown to the requester); required unless --dry-run.")
@click.option("--dry-run", is_flag=True,
              help="Print the plan and the rows per resource this decision would release; "
                   "sign nothing.")
@click.pass_context
def decide(ctx: click.Context, agreement_id: str, decision: str, narrow_file: Path | None,
           reason: str | None, dry_run: bool) -> None:
    """Approve or refuse a request addressed to this node.

    Try it first with --dry-run (and --narrow-terms): the plan and the rows
    per resource are printed, as on the request page, and nothing is signed.
    """
    if not dry_run and not (reason and reason.strip()):
        fail("give --reason: it is signed into the agreement's history and shown to the "
             "requester (or use --dry-run to see what the decision would release)")
    settings = node_context(ctx).settings
    terms: dict[str, Any] | None = None
    if narrow_file is not None:
        if decision != "approve":
            fail("--narrow-terms goes with approve")
        try:
            loaded = read_yaml_file(narrow_file)
        except YamlFileError as e:
            fail(str(e))
        if not isinstance(loaded, dict):
            fail(f"{narrow_file} must hold a mapping of terms")
        terms = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in loaded.items()}
    with node_context(ctx).session() as session:
        try:
            current = local(session, agreement_id, settings.member_id)
        except CorridorError as e:
            fail(str(e.detail))
        if terms is not None:
            terms = {**current.terms, **terms}
        action = "refuse" if decision == "refuse" else ("narrow" if terms else "approve")
        if dry_run:
            _dry_run(session, ctx, current, terms, action)
            return
        row = _act(session, settings, agreement_id, action, terms=terms, reason=reason)
        status = _tell_registry(session, settings, row)
        verb = {"approve": "Approved", "narrow": "Approved with narrowed terms",
                "refuse": "Refused"}[action]
        out.print(f"{verb}: {agreement_id} is now [bold]{row.state}[/] ({status}).")
        if action != "refuse":
            show_preview(session, ctx, row)


def _dry_run(session: Session, ctx: click.Context, current: AgreementRow,
             terms: dict[str, Any] | None, action: str) -> None:
    """Print what ``action`` (with ``terms`` if narrowing) would release; change nothing."""
    if current.provider != node_context(ctx).settings.member_id:
        fail(f"{current.id} is this node's own request; its provider decides it")
    if action == "refuse":
        out.print(f"Refusing {current.id} would release nothing. Nothing was signed "
                  "(--dry-run).")
        return
    candidate = current
    if terms is not None:
        try:
            check_narrowing(terms, current.terms)
        except PolicyError as e:
            fail(f"cannot narrow {current.id}: {e}")
        # A copy outside the session: the stored agreement keeps its terms.
        candidate = AgreementRow(**{a.key: getattr(current, a.key)
                                    for a in sa_inspect(AgreementRow).column_attrs})
        candidate.terms = terms
    show_preview(session, ctx, candidate)
    out.print(f"Nothing was signed (--dry-run). To {action}: the same command with --reason "
              "and without --dry-run.")


@click.command("revoke")
@click.argument("agreement_id")
@click.option("--reason", required=True, help="Why (recorded, signed, shown to the requester).")
@click.pass_context
def revoke(ctx: click.Context, agreement_id: str, reason: str) -> None:
    """Revoke an active agreement: this node refuses its next fetch."""
    settings = node_context(ctx).settings
    with node_context(ctx).session() as session:
        row = _act(session, settings, agreement_id, "revoke", reason=reason)
        status = _tell_registry(session, settings, row)
    out.print(f"Revoked {agreement_id}: this node refuses its fetches from now on ({status}).")


@click.command("fetch")
@click.argument("agreement_id")
@click.option("--out", "out_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Where to write FILE.zip.")
@click.option("--since", default=None, help="Cursor: only what is new since that package.")
@click.option("--from-start", is_flag=True,
              help="Fetch everything, ignoring the last package's cursor.")
@click.pass_context
def fetch(ctx: click.Context, agreement_id: str, out_path: Path, since: str | None,
          from_start: bool) -> None:
    """Fetch an agreement's package from its provider, verify it and keep a receipt."""
    settings = node_context(ctx).settings
    client = registry_of(settings)
    trust_list = trust_list_of(settings)
    with node_context(ctx).session() as session, Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), console=out, transient=True) as progress:
        task = progress.add_task(f"Fetching {agreement_id}", total=None)
        try:
            result = fetch_package(session, client, trust_list, agreement_id=agreement_id,
                                   out=out_path, since=since, now=datetime.now(UTC),
                                   http=partner_client(development=is_development_url(settings.url)),
                                   on_bytes=lambda n: progress.advance(task, n),
                                   resume=not from_start)
        except FetchRefused as e:  # before CorridorError: it is one
            fail(f"fetch refused: {e}")
        except CorridorError as e:
            fail(str(e.detail))
    rows = rows_summary(result.rows) or "no rows"
    kind = "incremental, since the last package" if result.since else "complete"
    out.print(f"Fetched and verified {out_path} ({result.size:,} bytes, {kind}): {rows}.")
    out.print(f"  sha256  {result.sha256}\n  cursor  {result.cursor}")


def _sync(session: Session, settings: NodeSettings, *, quiet: bool = False,
          to: Console = out) -> None:
    """Push decisions and pull agreements; print what changed (to ``to``)."""
    try:
        report = sync_agreements(session, registry_of(settings), trust_list_of(settings),
                                 datetime.now(UTC))
    except (RegistryError, TokenError) as e:
        if quiet:
            to.print(f"(not synced with the registry: {registry_failure(settings, e)})")
            return
        fail(registry_failure(settings, e))
    for agreement_id in report.new_requests:
        row = local(session, agreement_id, settings.member_id)
        to.print(f"New request [bold]{row.id}[/] from {row.requester} for {row.dataset} "
                  f"({row.terms.get('purpose')}, {row.terms.get('tier')} tier)")
    if not quiet or report.updated:
        for agreement_id in report.updated:
            row = local(session, agreement_id, settings.member_id)
            to.print(f"Agreement {row.id} is now {row.state}")
    for problem in report.problems:
        to.print(f"[red]Problem:[/] {problem}")
    if not quiet:
        to.print(f"Agreements: {len(report.new_requests)} new request(s), "
                  f"{len(report.updated)} updated, {report.pushed} event(s) sent.")


def sync_agreements_command(ctx: click.Context) -> None:
    """The agreements half of ``corridor node sync``."""
    settings = node_context(ctx).settings
    with node_context(ctx).session() as session:
        _sync(session, settings)


COMMANDS = [request_group, decide, revoke, fetch]
