"""``corridor registry``: set up and run the registry, decide on members.

``log`` and ``witness`` (the exchange log, members' cosigned checkpoints) live in
:mod:`registry.log.cli`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
from werkzeug.serving import run_simple

from corridor.backup import Layout
from corridor.backup_cli import backup_commands
from corridor.cli_context import ServiceContext, service_context
from corridor.config import SettingsError
from corridor.console import fail, out
from corridor.db import make_engine, make_session_factory
from corridor.doctor import doctor_command
from corridor.errors import CorridorError
from corridor.keystore import KeystoreError, create_keystore, load_signing_key
from corridor.listing import format_option, print_rows
from crypto.keys import KeySet
from crypto.trustlist import ANCHOR_TYP
from registry.app import create_app
from registry.db import MIGRATIONS_DIR, upgrade
from registry.log.cli import log, witness
from registry.membership.members import check_node_url, list_members, member_kids, set_status
from registry.membership.trust import publish_trust_list
from registry.models import MEMBER_ACTIVE, MEMBER_SUSPENDED
from registry.settings import (
    CONFIG_FILE,
    DEFAULT_DB_FILE,
    RegistrySettings,
    load_settings,
    render_config,
)
from registry.web.users_cli import users


def registry_context(ctx: click.Context) -> ServiceContext[RegistrySettings]:
    """The registry directory of ``--dir``: its settings and database, made once per run."""
    found: ServiceContext[RegistrySettings] = service_context(ctx)
    return found


@click.group()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default="current directory",
              help="The registry directory (config, keys, database).")
@click.pass_context
def registry(ctx: click.Context, directory: Path) -> None:
    """Run the registry: members, keys, trust list, catalog, access tokens."""
    ctx.obj = ServiceContext(directory, load_settings, upgrade)
    ctx.call_on_close(ctx.obj.close)


def init_registry(directory: Path, name: str, url: str, *, development: bool,
                  database_url: str | None = None) -> RegistrySettings:
    """Create a registry directory: config, signing key, migrated database.

    Raises:
        SettingsError: bad URL, or the directory is already a registry.
    """
    try:
        check_node_url(url, development=development)
    except CorridorError as e:
        raise SettingsError(str(e.detail).replace("node URL", "registry URL", 1)
                            + ("" if development else " (a registry on this machine, on "
                               "http:// loopback, needs --development)")) from e
    if (directory / CONFIG_FILE).exists():
        raise SettingsError(f"{directory} is already a registry directory")
    directory.mkdir(parents=True, exist_ok=True)
    try:
        create_keystore(directory / "keys")
    except KeystoreError as e:
        raise SettingsError(str(e)) from e
    (directory / CONFIG_FILE).write_text(
        render_config(name, url.rstrip("/"), development=development,
                      database_url=database_url), "utf-8")
    settings = load_settings(directory)
    upgrade(make_engine(settings.database_url))
    return settings


@registry.command()
@click.option("--name", required=True, help='e.g. "NEASPEC Registry".')
@click.option("--url", required=True, help="The registry's public base URL (https://...).")
@click.option("--development", is_flag=True,
              help="Accept http:// URLs on loopback addresses (local demo and tests only).")
@click.pass_context
def init(ctx: click.Context, name: str, url: str, development: bool) -> None:
    """Create config, signing key and database in the registry directory."""
    try:
        settings = init_registry(registry_context(ctx).directory, name, url,
                                 development=development)
    except SettingsError as e:
        fail(str(e))
    key = load_signing_key(settings.keys_dir)
    out.print(f"Initialised registry [bold]{name}[/] at {settings.url}")
    out.print(f"  signing key  {key.kid}  (keys/, mode 0600)")
    out.print("  next: 'corridor registry anchor > anchor.json' and give that file to members")


def anchor_document(settings: RegistrySettings) -> dict[str, object]:
    """What a node pins at init: the registry's URL and public keys."""
    key = load_signing_key(settings.keys_dir)
    return {"typ": ANCHOR_TYP, "name": settings.name, "registry_url": settings.issuer,
            **KeySet([key.public_key]).to_jwks()}


@registry.command()
@click.pass_context
def anchor(ctx: click.Context) -> None:
    """Print the anchor (URL and public JWKS) that nodes pin at 'node init --anchor'."""
    click.echo(json.dumps(anchor_document(registry_context(ctx).settings), indent=2))


@registry.group()
def members() -> None:
    """List members and decide on membership requests."""


@members.command("list")
@format_option()
@click.pass_context
def members_list(ctx: click.Context, fmt: str) -> None:
    """Every member and applicant with its status."""
    with registry_context(ctx).session() as session:
        rows = [{"member": m.member_id, "status": m.status, "country": m.country,
                 "name": m.name, "node_url": m.node_url,
                 "key_ids": " ".join(member_kids(session, m.member_id)),
                 "requested_utc": m.requested_at.strftime("%Y-%m-%d %H:%M")}
                for m in list_members(session)]
    print_rows(rows, ["member", "status", "country", "name", "node_url", "key_ids",
                      "requested_utc"], fmt, title="Members",
               empty="No members or requests yet.")
    if fmt == "table" and rows:
        out.print("Before admitting, confirm the key ids with the institution by a channel "
                  "you trust; [bold]admit ID --kid KID[/] refuses if they differ.")


def change_member_status(settings: RegistrySettings, member_id: str, status: str,
                         now: datetime) -> int:
    """Admit or suspend a member and publish the new trust list; returns its version.

    Raises:
        CorridorError: no such member, or the change is not allowed.
    """
    engine = make_engine(settings.database_url)
    upgrade(engine)
    try:
        with make_session_factory(engine)() as session:
            set_status(session, member_id, status, now)
            row = publish_trust_list(session, key=load_signing_key(settings.keys_dir),
                                     registry_url=settings.issuer, ttl=settings.trust_list_ttl,
                                     now=now, reason=f"{member_id} {status}")
            session.commit()
            return row.version
    finally:
        engine.dispose()


def _decide(ctx: click.Context, member_id: str, status: str,
            kids: tuple[str, ...] = ()) -> None:
    settings = registry_context(ctx).settings
    if kids:
        with registry_context(ctx).session() as session:
            held = set(member_kids(session, member_id))
        if held != set(kids):
            fail(f"{member_id} holds key ids {', '.join(sorted(held)) or 'none'}, not "
                 f"{', '.join(sorted(kids))}: not admitted (has its request been replaced?)")
    try:
        version = change_member_status(settings, member_id, status, datetime.now(UTC))
    except CorridorError as e:
        fail(str(e.detail))
    out.print(f"{member_id} is now {status}; trust list version {version} published.")


@members.command()
@click.argument("member_id")
@click.option("--kid", "kids", multiple=True, metavar="KID",
              help="A key id the institution confirmed to you (repeat for each); admit "
                   "refuses unless the request holds exactly these.")
@click.pass_context
def admit(ctx: click.Context, member_id: str, kids: tuple[str, ...]) -> None:
    """Admit a member (its keys enter the next trust list)."""
    _decide(ctx, member_id, MEMBER_ACTIVE, kids)


@members.command()
@click.argument("member_id")
@click.pass_context
def suspend(ctx: click.Context, member_id: str) -> None:
    """Suspend a member: no more tokens, and it leaves the trust list."""
    _decide(ctx, member_id, MEMBER_SUSPENDED)


@registry.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the database schema to the newest migration and say which it is.

    Run it after upgrading Corridor and before starting gunicorn (the systemd
    units run it as ExecStartPre); every other command migrates too.
    """
    registry_context(ctx).migrate_command(MIGRATIONS_DIR)


@registry.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8300, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the registry (development server; use gunicorn registry.wsgi:app in production)."""
    settings = registry_context(ctx).settings
    registry_context(ctx).migrate()  # the schema is brought up to date before serving
    app = create_app({"CORRIDOR_SETTINGS": settings, "CORRIDOR_CHECKPOINTER": True})
    run_simple(host, port, app, threaded=True)


#: What ``backup`` saves and ``restore`` puts back of a registry directory.
BACKUP_LAYOUT = Layout("registry", CONFIG_FILE, DEFAULT_DB_FILE,
                       "CORRIDOR_REGISTRY_DATABASE_URL", MIGRATIONS_DIR,
                       members=("anchor.json", "keys"))

for _command in (log, witness, users, *backup_commands(BACKUP_LAYOUT),
                 doctor_command("registry", CONFIG_FILE, MIGRATIONS_DIR, lambda _context: [])):
    registry.add_command(_command)
