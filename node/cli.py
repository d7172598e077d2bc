"""``corridor node``: set up a node, import and list its data, serve it."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.serving import run_simple

from corridor.anchor import AnchorError, read_anchor_for
from corridor.backup import Layout
from corridor.backup_cli import backup_commands
from corridor.cli_context import ServiceContext
from corridor.config import SettingsError, validate_identity
from corridor.console import err, fail, out
from corridor.db import make_engine
from corridor.doctor import doctor_command
from corridor.errors import CorridorError
from corridor.files import written_whole
from corridor.keystore import (
    KeystoreError,
    activate_key,
    add_key,
    create_keystore,
    load_signing_key,
    public_keys,
)
from corridor.keystore import retire_key as retire_local_key
from corridor.listing import format_option, print_rows
from corridor.wording import latitude_range, longitude_range, plural, rows_summary
from crypto.trustlist import TrustList, TrustListRejected
from node.app import create_app
from node.data import demo_data
from node.data.catalog import catalog_entry, sign_entry
from node.data.datasets import current_datasets, get_dataset
from node.data.importer import Importer, ImportRefused, ImportResult
from node.data.mapped import MappingError, load_mapping, map_files, shipped_mapping
from node.data.policy_store import (
    PolicyFileError,
    cursor_key,
    get_policy,
    read_policy_file,
    set_policy,
)
from node.data.sources import SourceError
from node.data.validation import ProblemLog
from node.db import MIGRATIONS_DIR, upgrade
from node.exchange.agreements import bounded
from node.exchange.agreements_cli import COMMANDS as AGREEMENT_COMMANDS
from node.exchange.agreements_cli import (
    node_context,
    registry_failure,
    sync_agreements_command,
)
from node.exchange.census import census_tables, dataset_census
from node.exchange.doctor import node_findings
from node.exchange.oauth_client import TokenError
from node.exchange.package import ExportError, dataset_plan, exporter_for
from node.exchange.packages_cli import packages
from node.exchange.refresher import start_refresher
from node.exchange.registry_client import (
    RegistryClient,
    RegistryError,
    RegistryUnreachable,
    client_for,
)
from node.exchange.rows import export_dwc, export_dwca, received_to_dwc
from node.exchange.token_cli import token
from node.exchange.trust_store import TrustStore, install_anchor
from node.links.cli import links, overlap
from node.log.cli import log_group
from node.log.exchange_log import LOG
from node.models import PROFILE_CAMTRAP
from node.settings import (
    CONFIG_FILE,
    DEFAULT_DB_FILE,
    KEYS_DIR,
    NodeSettings,
    load_settings,
    render_config,
)
from node.web.users_cli import users
from policies.census import CensusError, CensusWindow
from policies.errors import PolicyError
from policies.policy import DEFAULT_POLICY_DOCUMENT
from policies.taxonomy import search_names, vernacular_names
from policies.terms import load_terms

# A progress bar is drawn only for inputs larger than this (a few thousand rows).
PROGRESS_THRESHOLD_BYTES = 256 * 1024
PROGRESS_THRESHOLD_ROWS = 5_000



@click.group()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default="current directory",
              help="The node directory (config, keys, database).")
@click.pass_context
def node(ctx: click.Context, directory: Path) -> None:
    """Run a sovereign node: its data, its keys, its rules."""
    ctx.obj = ServiceContext(directory, load_settings, upgrade)
    ctx.call_on_close(ctx.obj.close)


@node.command()
@click.option("--member-id", required=True, help="Member id, e.g. ru-lotl.")
@click.option("--name", required=True, help="Institution name.")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 code, e.g. RU.")
@click.option("--url", default=None, help="The node's public base URL (https://...).")
@click.option("--registry", "registry_url", default=None, help="The registry's URL.")
@click.option("--anchor", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="The registry's anchor file (from 'corridor registry anchor').")
@click.pass_context
def init(ctx: click.Context, member_id: str, name: str, country: str, url: str | None,
         registry_url: str | None, anchor: Path | None) -> None:
    """Create config, signing key and database in the node directory."""
    directory = node_context(ctx).directory
    if (registry_url is None) != (anchor is None):
        fail("--registry and --anchor go together: the anchor pins that registry's key")
    try:
        settings = init_node(directory, member_id, name, country, url,
                             registry_url=registry_url, anchor=anchor)
    except SettingsError as e:
        fail(str(e))
    out.print(f"Initialised node [bold]{member_id}[/] ({name}, {settings.country}) in {directory}")
    out.print(f"  signing key  {public_keys(settings.keys_dir).to_jwks()['keys'][0]['kid']}"
              "  (in keys/, mode 0600)")
    out.print(f"  database     {settings.database_url}")


def init_node(directory: Path, member_id: str, name: str, country: str,
              url: str | None = None, database_url: str | None = None, *,
              registry_url: str | None = None, anchor: Path | None = None) -> NodeSettings:
    """Create a node directory: config, signing key, migrated database, pinned anchor.

    Raises:
        SettingsError: bad identity or anchor, or the directory is already a node.
    """
    country = country.upper()
    validate_identity(member_id, country)
    if (directory / CONFIG_FILE).exists():
        raise SettingsError(f"{directory} is already a node directory ({CONFIG_FILE} exists)")
    if anchor is not None and registry_url is not None:
        try:
            read_anchor_for(anchor, registry_url)
        except AnchorError as e:
            raise SettingsError(str(e)) from e
    directory.mkdir(parents=True, exist_ok=True)
    if anchor is not None and registry_url is not None:
        install_anchor(directory, anchor, registry_url)
    try:
        create_keystore(directory / "keys")
    except KeystoreError as e:
        raise SettingsError(str(e)) from e
    (directory / CONFIG_FILE).write_text(
        render_config(member_id, name, country, url, database_url, registry_url), "utf-8")
    settings = load_settings(directory)
    upgrade(make_engine(settings.database_url))
    return settings


@contextmanager
def _progress(label: str, *, rows: bool = False
              ) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """Yield (on_total, on_advance) callbacks driving a rich progress bar.

    The bar appears only for long work: inputs over PROGRESS_THRESHOLD_BYTES,
    or over PROGRESS_THRESHOLD_ROWS when counting rows.
    """
    columns: list[Any] = [TextColumn("[bold]{task.description}"), BarColumn()]
    if rows:
        columns += [MofNCompleteColumn(), TimeRemainingColumn()]
    else:
        columns += [DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    progress = Progress(*columns, console=err, transient=True)
    threshold = PROGRESS_THRESHOLD_ROWS if rows else PROGRESS_THRESHOLD_BYTES
    state: dict[str, Any] = {"task": None}

    def on_total(total: int) -> None:
        if total >= threshold and state["task"] is None:
            progress.start()
            state["task"] = progress.add_task(label, total=total)

    def on_advance(n: int) -> None:
        if state["task"] is not None:
            progress.advance(state["task"], n)

    try:
        yield on_total, on_advance
    finally:
        if state["task"] is not None:
            progress.stop()


def _report_refusal(refused: ImportRefused, what: str) -> NoReturn:
    err.print(f"[bold red]refused:[/] {what} has {plural(refused.total, 'problem')}; "
              "nothing was imported.")
    for problem in refused.problems:
        err.print(f"  {problem}", markup=False, soft_wrap=True)
    if refused.total > len(refused.problems):
        err.print(f"  ... and {refused.total - len(refused.problems)} more")
    sys.exit(1)


def _print_result(result: ImportResult) -> None:
    counts = rows_summary(result.counts)
    out.print(f"Imported [bold]{result.name}[/] v{result.version} ({result.profile}): {counts}")


def _importer(ctx: click.Context) -> Importer:
    return importer_for(node_context(ctx).settings, node_context(ctx).engine)


def importer_for(settings: NodeSettings, engine: Engine) -> Importer:
    """An importer into the (migrated) database at ``engine``, sized by the settings."""
    return Importer(engine, batch_rows=settings.import_batch_rows,
                    max_problems=settings.max_problems_reported)


@node.group("import")
def import_() -> None:
    """Import a dataset (all or nothing; re-importing makes a new version)."""


@import_.command("camtrap-dp")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", default=None, help="Dataset name (default: the package's name).")
@click.pass_context
def import_camtrap(ctx: click.Context, path: Path, name: str | None) -> None:
    """Import a Camtrap DP 1.0 package: a directory or zip with datapackage.json."""
    try:
        with _progress(f"importing {path.name}") as (on_total, on_bytes):
            result = _importer(ctx).import_camtrap(path, name=name, on_bytes=on_bytes,
                                                        on_total=on_total)
    except SourceError as e:
        fail(str(e))
    except ImportRefused as refused:
        _report_refusal(refused, str(path))
    _print_result(result)


@import_.command("dwc")
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("occurrences", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", "name", required=True, help="Dataset name, e.g. flyway-counts.")
@click.option("--title", default=None, help="Human-readable title.")
@click.pass_context
def import_dwc(ctx: click.Context, events: Path, occurrences: Path, name: str,
               title: str | None) -> None:
    """Import a Darwin Core sampling-event dataset: EVENTS.csv and OCCURRENCES.csv."""
    try:
        with _progress(f"importing {name}") as (on_total, on_bytes):
            result = _importer(ctx).import_dwc(events, occurrences, name=name, title=title,
                                                    on_bytes=on_bytes, on_total=on_total)
    except SourceError as e:
        fail(str(e))
    except ImportRefused as refused:
        _report_refusal(refused, f"{events.name} + {occurrences.name}")
    _print_result(result)


@import_.command("mapped")
@click.argument("spec")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", "name", default=None,
              help="Dataset name (default: the mapping's name).")
@click.pass_context
def import_mapped(ctx: click.Context, spec: str, files: tuple[Path, ...],
                  name: str | None) -> None:
    """Import a table in its own format through a mapping to Darwin Core (SPEC: a YAML
    file, or a shipped mapping: everglades-wading-birds, taiwan-black-faced-spoonbill).

    FILES are the table and the files its code lists and joins read, by name.
    Refused whole, each problem named, if a row cannot be mapped or imported;
    rows whose reported terms (such as coordinates) resolve to nothing are
    imported without them and listed.
    """
    log = ProblemLog()
    try:
        mapping = load_mapping(shipped_mapping(spec))
        with tempfile.TemporaryDirectory(prefix="corridor-mapped-") as work:
            mapped = map_files(mapping, files, log, Path(work))
            if log:
                _report_refusal(ImportRefused(log), f"{mapping.table} (mapped by {spec})")
            with _progress(f"importing {name or mapping.name}") as (on_total, on_bytes):
                result = _importer(ctx).import_dwc(
                    mapped.events, mapped.occurrences, name=name or mapping.name,
                    title=mapping.title, on_bytes=on_bytes, on_total=on_total)
    except (MappingError, SourceError) as e:
        fail(str(e.detail if isinstance(e, MappingError) else e))
    except ImportRefused as refused:
        _report_refusal(refused, f"{mapping.table} after mapping (Darwin Core events.csv and "
                                 "occurrences.csv)")
    _print_result(result)
    if mapped.reported:
        out.print(f"{len(mapped.reported):,} rows imported with terms that resolve to nothing "
                  "(left empty, not guessed):")
        for line in mapped.reported[:20]:
            out.print(f"  {line}", markup=False)
        if len(mapped.reported) > 20:
            out.print(f"  ... and {len(mapped.reported) - 20:,} more")


#: The columns of ``datasets --format json|csv``.
DATASET_COLUMNS = ("name", "version", "profile", "title", "rows", "species", "start", "end",
                   "west", "south", "east", "north")


@node.command()
@format_option()
@click.pass_context
def datasets(ctx: click.Context, fmt: str) -> None:
    """List datasets (current versions) with their row counts and coverage."""
    with node_context(ctx).session() as session:
        rows = current_datasets(session)
        if fmt != "table":
            print_rows([{"name": d.name, "version": d.version, "profile": d.profile,
                         "title": d.title,
                         "rows": d.counts if fmt == "json" else rows_summary(d.counts),
                         "species": len(d.taxa), "start": d.temporal_start,
                         "end": d.temporal_end, "west": d.bbox_west, "south": d.bbox_south,
                         "east": d.bbox_east, "north": d.bbox_north} for d in rows],
                       DATASET_COLUMNS, fmt)
            return
        if not rows:
            out.print("No datasets yet. Import one with 'corridor node import ...'.")
            return
        out.print(dataset_summary(rows))


def dataset_summary(rows: Any) -> str:
    """A block of lines per dataset: readable at any width, and grep-able."""
    blocks = []
    for d in rows:
        counts = rows_summary(d.counts)
        lines = [f"[bold]{d.name}[/]  v{d.version}  {d.profile}  {d.title}",
                 f"  rows     {counts}",
                 f"  species  {len(d.taxa)}"]
        if d.temporal_start:
            lines.append(f"  dates    {d.temporal_start} .. {d.temporal_end} (UTC)")
        if d.bbox_west is not None:
            lines.append(f"  area     {latitude_range(d.bbox_south, d.bbox_north)}, "
                         f"{longitude_range(d.bbox_west, d.bbox_east)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


@node.command("export-dwc")
@click.argument("dataset", required=False)
@click.option("--package", "package_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Convert a package this node received instead of one of its datasets "
                   "(verified against the trust list first).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A .zip gets a Darwin Core Archive (occurrence.csv, multimedia.csv, "
                   "meta.xml, eml.xml); a .csv gets the occurrence table alone.")
@click.pass_context
def export_dwc_command(ctx: click.Context, dataset: str | None, package_path: Path | None,
                       out_path: Path) -> None:
    """Convert camera-trap data to Darwin Core, for GBIF, an IPT or other tools.

    DATASET is one of this node's datasets, converted whole (it is the owner's
    own data). With --package, a received package is converted instead: what
    the agreement released, nothing more.
    """
    if (dataset is None) == (package_path is None):
        fail("give either DATASET (one of this node's) or --package FILE (a received package)")
    if out_path.suffix.lower() not in (".zip", ".csv"):
        fail(f"--out {out_path}: end the name in .zip (a Darwin Core Archive) "
             "or .csv (the occurrence table alone)")
    archive = out_path.suffix.lower() == ".zip"
    context = node_context(ctx)
    what = dataset or str(package_path)
    try:
        if package_path is not None:
            try:
                trust_list = TrustStore(context.settings.directory).current()
            except AnchorError:
                trust_list = None
            if trust_list is None:
                fail("this node has no trust list to verify the package with: join a "
                     "registry (`corridor node init --anchor`) and run `corridor node sync`")
            rows = received_to_dwc(package_path, trust_list, out_path, archive=archive,
                                   now=datetime.now(UTC))
        elif archive:
            rows = export_dwca(context.engine, what, out_path, now=datetime.now(UTC))
        else:
            rows = {"occurrence": export_dwc(context.engine, what, out_path)}
    except CorridorError as e:
        fail(f"cannot convert {what}: {e.detail}")
    except ValueError as e:
        fail(f"cannot convert {what}: {e}")
    if archive:
        out.print(f"Wrote a Darwin Core Archive to {out_path}: "
                  f"{plural(rows['occurrence'], 'occurrence')}, "
                  f"{plural(rows['multimedia'], 'media record')}, meta.xml, eml.xml")
    else:
        out.print(f"Wrote {plural(rows['occurrence'], 'occurrence')} to {out_path}")


@node.command("generate-demo")
@click.option("--observations", default=20_000, show_default=True,
              type=click.IntRange(1, 1_000_000), help="Camera-trap observations to generate.")
@click.option("--seed", default=2024, show_default=True, help="Random seed (same seed, same data).")
@click.option("--side", type=click.Choice(["ru", "cn"]), default=None,
              help="Border side (default: from the node's country).")
@click.option("--no-import", is_flag=True, help="Only write the files, do not import them.")
@click.pass_context
def generate_demo(ctx: click.Context, observations: int, seed: int, side: str | None,
                  no_import: bool) -> None:
    """Generate synthetic two-country camera-trap and bird-count data, then import it."""
    settings = node_context(ctx).settings
    chosen = side or ("cn" if settings.country == "CN" else "ru")
    target = settings.directory / "demo-data"
    results = generate_and_import(settings, target, side=chosen, observations=observations,
                                  seed=seed, do_import=not no_import)
    if no_import:
        out.print(f"Wrote demo data to {target}")
    for result in results:
        _print_result(result)


def generate_and_import(settings: NodeSettings, target: Path, *, side: str, observations: int,
                        seed: int, do_import: bool = True,
                        bird_counts: bool = True,
                        bird_countries: Collection[str] | None = None) -> list[ImportResult]:
    """Generate one side's camera-trap package (and the bird counts); import them."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    with _progress(f"generating {side} camera-trap data", rows=True) as (on_total, on_advance):
        on_total(observations)
        done = [0]

        def count(n: int) -> None:
            on_advance(n - done[0])
            done[0] = n

        package = demo_data.generate_camtrap(target / f"camtrap-{side}", side=side,  # type: ignore[arg-type]
                                             observations=observations, seed=seed, progress=count)
    if bird_counts:
        events, occurrences = demo_data.generate_bird_counts(target / "bird-counts", seed=seed,
                                                             countries=bird_countries)
    if not do_import:
        return []
    engine = make_engine(settings.database_url)
    upgrade(engine)
    importer = importer_for(settings, engine)
    results = []
    try:
        with _progress("importing camera-trap data") as (on_total, on_bytes):
            results.append(importer.import_camtrap(package.path, on_bytes=on_bytes,
                                                   on_total=on_total))
        if bird_counts:
            results.append(importer.import_dwc(
                events, occurrences, name="flyway-counts",
                title="Flyway crane and spoonbill counts (synthetic)"))
    except ImportRefused as refused:
        _report_refusal(refused, "generated demo data")
    finally:
        engine.dispose()
    return results


@node.group(invoke_without_command=True)
@click.pass_context
def keys(ctx: click.Context) -> None:
    """Print the node's public JWKS (or rotate and retire keys)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = node_context(ctx).settings
    try:
        jwks = public_keys(settings.keys_dir).to_jwks()
    except KeystoreError as e:
        fail(str(e))
    click.echo(json.dumps(jwks, indent=2))


@keys.command()
@click.pass_context
def rotate(ctx: click.Context) -> None:
    """Make a new signing key, register it at the registry, and sign with it from now on.

    The old key stays valid (both are in the trust list) until 'keys retire OLD_KID'.
    """
    settings = node_context(ctx).settings
    client = _registry_client(settings)
    old = client.key
    new = add_key(settings.keys_dir)
    try:
        result = client.add_key(new)
    except (RegistryError, TokenError) as e:
        fail(f"the registry did not accept the new key, so nothing changed: {e}")
    activate_key(settings.keys_dir, new.kid)
    # Keys live in files, not in the database: the entry gets its own transaction,
    # written once the new key is in place (a failure here leaves the rotation done
    # but unlogged, and says so).
    _log_key_event(ctx, "key.rotated", kid=new.kid, previous_kid=old.kid)
    out.print(f"Signing with new key {new.kid} (trust list version "
              f"{result['trust_list_version']}). Old key {old.kid} stays valid until "
              f"'corridor node keys retire {old.kid}' (wait until partners have synced).")


@keys.command("retire")
@click.argument("kid")
@click.pass_context
def retire(ctx: click.Context, kid: str) -> None:
    """Retire an old key at the registry, then here."""
    settings = node_context(ctx).settings
    client = _registry_client(settings)
    if kid == client.key.kid:
        fail("that is the active key; run 'corridor node keys rotate' first")
    try:
        result = client.retire_key(kid)
        retire_local_key(settings.keys_dir, kid)
    except (RegistryError, TokenError, KeystoreError) as e:
        fail(str(e))
    _log_key_event(ctx, "key.retired", kid=kid)  # own transaction, as in rotate
    out.print(f"Retired key {kid} (trust list version {result['trust_list_version']}).")


def _log_key_event(ctx: click.Context, type_: str, **fields: str) -> None:
    """Append a key event to the exchange log in its own transaction."""
    try:
        with node_context(ctx).session() as session:
            LOG.append(session, type_, datetime.now(UTC), **fields)
            session.commit()
    except SQLAlchemyError as e:
        fail(f"the key change is done, but it could not be written to the exchange log: {e}")


@node.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the database schema to the newest migration and say which it is.

    Run it after upgrading Corridor and before starting gunicorn (the systemd
    units run it as ExecStartPre); every other command migrates too.
    """
    node_context(ctx).migrate_command(MIGRATIONS_DIR)


@node.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8400, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the node's API (development server; use gunicorn node.wsgi:app in production)."""
    settings = node_context(ctx).settings
    node_context(ctx).migrate()  # the schema is brought up to date before serving
    app = create_app({"CORRIDOR_SETTINGS": settings})
    start_refresher(settings)
    run_simple(host, port, app, threaded=True)


def temp_node_dir() -> Path:
    """A fresh temporary directory for throw-away nodes."""
    return Path(tempfile.mkdtemp(prefix="corridor-"))


def _registry_client(settings: NodeSettings) -> RegistryClient:
    try:
        return client_for(settings)
    except (RegistryError, KeystoreError) as e:
        fail(str(e))


@node.command()
@click.pass_context
def join(ctx: click.Context) -> None:
    """Ask the registry for membership (signed by this node's key)."""
    settings = node_context(ctx).settings
    if not settings.url:
        fail("this node has no public URL; set url in node.toml ([node] url = \"https://...\")")
    client = _registry_client(settings)
    keys = public_keys(settings.keys_dir)
    try:
        result = client.join(name=settings.name, country=settings.country, node_url=settings.url,
                             keys=keys)
    except RegistryError as e:
        fail(str(e))
    kids = " ".join(k.kid for k in keys.verify_keys())
    out.print(f"Membership request for [bold]{settings.member_id}[/] filed at "
              f"{settings.registry_url}: {result['status']}. The registry operator admits it.")
    out.print(f"Tell the operator your key id by a channel they trust: {kids}", soft_wrap=True)


def sync_trust_list(settings: NodeSettings, client: RegistryClient) -> tuple[TrustList, bool]:
    """Fetch, verify and store the registry's trust list."""
    return TrustStore(settings.directory).update(client.trust_list(), datetime.now(UTC))


@node.command()
@click.pass_context
def sync(ctx: click.Context) -> None:
    """Fetch the registry's trust list, then exchange agreements (send decisions, get requests)."""
    settings = node_context(ctx).settings
    client = _registry_client(settings)
    try:
        trust_list, changed = sync_trust_list(settings, client)
    except RegistryUnreachable as e:
        fail(registry_failure(settings, e))
    except (RegistryError, TrustListRejected) as e:
        fail(str(e))
    members = ", ".join(sorted(trust_list.members)) or "none yet"
    verb = "Stored" if changed else "Unchanged:"
    out.print(f"{verb} trust list version {trust_list.version} (expires "
              f"{trust_list.expires_at:%Y-%m-%d %H:%M} UTC); members: {members}")
    if settings.member_id in trust_list.members:
        sync_agreements_command(ctx)


@node.command()
@click.argument("dataset")
@click.option("--tier", "tiers", multiple=True, default=("aggregate",), show_default=True,
              type=click.Choice(["aggregate", "generalized", "full"]),
              help="Access tiers offered (repeat the option for several).")
@click.option("--contact", default=None, help="Contact e-mail shown in the catalog.")
@click.pass_context
def publish(ctx: click.Context, dataset: str, tiers: tuple[str, ...], contact: str | None) -> None:
    """Publish a dataset's description (never its rows) in the registry's catalog."""
    settings = node_context(ctx).settings
    client = _registry_client(settings)
    with node_context(ctx).session() as session:
        try:
            ds = get_dataset(session, dataset)
            policy, _ = get_policy(session, dataset)
        except (PolicyError, PolicyFileError) as e:  # before CorridorError: it is one
            fail(f"cannot publish: {e}")
        except CorridorError as e:
            fail(str(e.detail))
    entry = catalog_entry(ds, member_id=settings.member_id, country=settings.country,
                          contact=contact, tiers=tiers, now=datetime.now(UTC), policy=policy)
    try:
        client.publish(sign_entry(entry, client.key))
    except (RegistryError, TokenError) as e:
        fail(str(e))
    out.print(f"Published [bold]{entry['id']}[/] ({entry['title']}) with tiers "
              f"{', '.join(tiers)}.")


@node.command()
@click.argument("text", required=False)
@click.option("--taxon", default=None,
              help="A scientific name (its synonyms match too), a genus, family, order or "
                   "class (the species below it match), or a common name in English, Russian, "
                   "Chinese, Korean, Japanese or Mongolian (e.g. heron, журавль, 鹭).")
@click.option("--country", default=None, help="ISO country code of the provider.")
@click.option("--from", "date_from", default=None, help="Coverage overlaps from this date.")
@click.option("--to", "date_to", default=None, help="Coverage overlaps up to this date.")
@click.option("--bbox", default=None, help="west,south,east,north in degrees.")
@format_option()
@click.pass_context
def catalog(ctx: click.Context, text: str | None, taxon: str | None, country: str | None,
            date_from: str | None, date_to: str | None, bbox: str | None, fmt: str) -> None:
    """Search the federation's catalog with this node's credentials."""
    settings = node_context(ctx).settings
    client = _registry_client(settings)
    try:
        result = client.search(q=text, taxon=taxon, country=country, **{"from": date_from},
                               to=date_to, bbox=bbox)
    except (RegistryError, TokenError) as e:
        fail(registry_failure(settings, e))
    entries = result.get("entries", [])
    if fmt != "table":
        print_rows([_catalog_row(entry, whole=fmt == "json") for entry in entries],
                   CATALOG_COLUMNS, fmt)
        return
    wanted = search_names(taxon) if taxon else None
    if taxon and wanted is not None and wanted.matched:
        out.print(f"Taxon {taxon.strip()!r} read as {_taxa_meant(wanted.matched)}.\n")
    if not entries:
        out.print("No datasets match.")
        return
    total = int(result.get("total", len(entries)))
    out.print(f"{plural(total, 'dataset')} in the catalog "
              f"{'matches' if total == 1 else 'match'}:\n")
    for entry in entries:
        temporal = entry.get("temporal") or {}
        spatial = entry.get("spatial") or {}
        bbox = spatial.get("bbox") if isinstance(spatial, dict) else None
        lines = [f"[bold]{entry['id']}[/]  {entry.get('country', '')}  {entry.get('profile', '')}"
                 f"  {entry.get('title', '')}",
                 f"  taxa     {len(entry.get('taxa', []))}: "
                 f"{', '.join(entry.get('taxa', [])[:6])}"
                 + (" ..." if len(entry.get("taxa", [])) > 6 else ""),
                 f"  dates    {temporal.get('start') or '?'} .. {temporal.get('end') or '?'}",
                 f"  tiers    {', '.join(entry.get('tiers', []))}"]
        if wanted is not None:
            hits = [t for t in entry.get("taxa", []) if wanted.answers(t)]
            lines.append(f"  matched  {', '.join(hits[:6]) or '(a synonym)'}"
                         + (" ..." if len(hits) > 6 else ""))
        if bbox and len(bbox) == 4:
            west, south, east, north = bbox
            lines.append(f"  area     {latitude_range(south, north, 0)}, "
                         f"{longitude_range(west, east, 0)} (whole degrees)")
        out.print("\n".join(lines) + "\n")


def _taxa_meant(names: tuple[str, ...], shown: int = 5) -> str:
    """The backbone taxa a query matched, with an English common name where there is one."""
    def one(name: str) -> str:
        common = vernacular_names(name, "en")
        return f"{common[0]} ({name})" if common else name
    listed = ", ".join(one(n) for n in names[:shown])
    return listed + (f" and {plural(len(names) - shown, 'more taxon', 'more taxa')}"
                     if len(names) > shown else "")


#: The columns of ``catalog --format json|csv``.
CATALOG_COLUMNS = ("id", "country", "profile", "title", "taxa", "start", "end", "tiers",
                   "bbox", "version", "published_at")


def _catalog_row(entry: dict[str, Any], *, whole: bool) -> dict[str, Any]:
    """One catalogue entry as a listing row; lists joined by ``;`` for CSV (``whole``: kept)."""
    temporal = entry.get("temporal") or {}
    spatial = entry.get("spatial") or {}
    bbox = spatial.get("bbox") if isinstance(spatial, dict) else None

    def listed(values: Any) -> Any:
        values = list(values or [])
        return values if whole else "; ".join(str(v) for v in values)

    return {**{k: entry.get(k) for k in ("id", "country", "profile", "title", "version",
                                         "published_at")},
            "taxa": listed(entry.get("taxa")), "tiers": listed(entry.get("tiers")),
            "start": temporal.get("start"), "end": temporal.get("end"),
            "bbox": listed(bbox) if bbox else None}


@node.command("policy")
@click.argument("dataset")
@click.option("--set", "policy_file", type=click.Path(exists=True, dir_okay=False,
                                                      path_type=Path),
              help="A YAML or JSON policy file (see docs/policy.md); validated, then stored.")
@click.option("--show", is_flag=True, help="Print the dataset's policy (the default if none set).")
@click.pass_context
def policy_command(ctx: click.Context, dataset: str, policy_file: Path | None,
                   show: bool) -> None:
    """Set or show what partners may see of a dataset."""
    if (policy_file is None) == (not show):
        fail("give exactly one of --set FILE or --show")
    with node_context(ctx).session() as session:
        try:
            if policy_file is not None:
                set_policy(session, dataset, read_policy_file(policy_file), datetime.now(UTC))
                session.commit()
                out.print(f"Policy for [bold]{dataset}[/] stored.")
                return
            get_dataset(session, dataset)
            _, document = get_policy(session, dataset)
        except (PolicyError, PolicyFileError) as e:
            fail(f"policy refused: {e}")
        except CorridorError as e:
            fail(str(e.detail))
    if document is None:
        out.print(f"# No policy set for {dataset}: the default policy applies.")
        document = DEFAULT_POLICY_DOCUMENT
    click.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


@node.command("export")
@click.argument("dataset")
@click.option("--tier", required=True, help="Access tier of the dataset's policy.")
@click.option("--purpose", default="research", show_default=True,
              help="Purpose the partner would state.")
@click.option("--as", "requester", default=None,
              help="Preview as this partner (member id); default: this node itself.")
@click.option("--since", default=None, help="Cursor from a previous package: only what is new.")
@click.option("--out", "out_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Where to write FILE.zip.")
@click.pass_context
def export_command(ctx: click.Context, dataset: str, tier: str, purpose: str,
                   requester: str | None, since: str | None, out_path: Path) -> None:
    """Write a signed, policy-filtered package: the owner's preview of what a partner gets."""
    settings = node_context(ctx).settings
    engine = node_context(ctx).engine
    who = requester or settings.member_id
    now = datetime.now(UTC)
    with node_context(ctx).session() as session:
        try:
            terms = load_terms({"purpose": purpose, "tier": tier})
            ds, plan = dataset_plan(session, dataset, terms, who, now, keys_dir=settings.keys_dir,
                                    pseudonym_scope=f"preview:{who}")
        except (PolicyError, PolicyFileError) as e:
            fail(f"cannot export: {e}")
        except CorridorError as e:
            fail(str(e.detail))
    try:
        with written_whole(out_path) as part, part.open("wb") as fh:
            exporter = exporter_for(engine, ds, plan, provider=settings.member_id,
                                    key=load_signing_key(settings.keys_dir), now=now,
                                    cursor_key=cursor_key(settings.keys_dir),
                                    recipient=who, since=since)
            result = exporter.write(fh)
        with node_context(ctx).session() as session:
            # A file that can leave the node is on the record like a package served.
            LOG.append(session, "package.previewed", now, member=who, dataset=ds.name,
                       version=ds.version, tier=tier, purpose=purpose,
                       plan_digest=result.plan_digest, rows=dict(result.rows),
                       since=bounded(since), content_sha256=result.content_sha256)
            session.commit()
    except ExportError as e:
        fail(str(e))
    rows = rows_summary(result.rows)
    out.print(f"Wrote {out_path} ({tier} tier, for {who}): {rows}")
    if result.dropped:
        out.print("Left out: " + ", ".join(f"{n:,} ({k.replace('_', ' ')})"
                                           for k, n in result.dropped.items()))
    out.print("Plan:")
    for line in plan.explain():
        out.print(f"  - {line}", markup=False)
    out.print(f"Cursor for the next incremental export: {result.cursor}")


@node.command("census")
@click.argument("dataset_name", metavar="DATASET")
@click.option("--taxon", "taxa", multiple=True, required=True,
              help="Species to count (repeat); synonyms are resolved.")
@click.option("--year", type=click.IntRange(1900, 2200), required=True,
              help="The census year (the year before is shown beside it).")
@click.option("--window", default="01-17..01-19", show_default=True,
              help="The census window, MM-DD..MM-DD within one month, in local dates.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Tables for reading, or JSON for scripts.")
@click.pass_context
def census_cmd(ctx: click.Context, dataset_name: str, taxa: tuple[str, ...], year: int,
               window: str, fmt: str) -> None:
    """The coordinated census over a survey dataset: per site the maximum count inside the
    window, zero counts kept, per-country and flyway totals with the previous year and the
    change; counts of the month outside the window are listed and left out."""
    try:
        parsed = CensusWindow.parse(window)
    except CensusError as e:
        raise click.BadParameter(str(e), param_hint="--window") from e
    with node_context(ctx).session() as session:
        try:
            dataset = get_dataset(session, dataset_name)
        except CorridorError as e:
            fail(str(e.detail))
        if dataset.profile == PROFILE_CAMTRAP:
            fail(f"{dataset_name} is a camera-trap dataset; the census reads survey counts")
        result = dataset_census(session, dataset, taxa=taxa, year=year, window=parsed)
    if fmt == "json":
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    out.print(f"Census {result['window']} ({dataset_name}), against {year - 1}:")
    out.print(census_tables(result))


#: What ``backup`` saves and ``restore`` puts back of a node directory.
BACKUP_LAYOUT = Layout("node", CONFIG_FILE, DEFAULT_DB_FILE, "CORRIDOR_NODE_DATABASE_URL",
                       MIGRATIONS_DIR, members=("anchor.json", KEYS_DIR, "trust"))

for _command in (*AGREEMENT_COMMANDS, users, log_group, links, overlap, packages, token,
                 *backup_commands(BACKUP_LAYOUT),
                 doctor_command("node", CONFIG_FILE, MIGRATIONS_DIR, node_findings)):
    node.add_command(_command)
