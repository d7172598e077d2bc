"""``corridor node|registry doctor``: check a service directory and say what to fix.

The shared checks (configuration, ``keys/``, the database and its
migrations) are here; each service adds its own (the node: its trust list
and its clock against the registry's) through :func:`doctor_command`. Each
check gives a :class:`Finding`: ``ok``, ``warn`` (works now, will not for
long, or cannot be checked) or ``fail`` (the service cannot do its work),
with the fix in words. The command exits 1 when any check fails.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal

import click
import httpx
from rich.table import Table
from sqlalchemy.engine import make_url

from corridor.cli_context import ServiceContext, service_context
from corridor.config import SettingsError
from corridor.console import out
from corridor.db import make_engine, make_session_factory
from corridor.health import Check, database_check
from corridor.keystore import KeystoreError, load_signing_key

__all__ = [
    "CLOCK_FAIL_SECONDS",
    "CLOCK_WARN_SECONDS",
    "Finding",
    "clock_finding",
    "database_finding",
    "doctor_command",
    "from_check",
    "keys_findings",
]

Level = Literal["ok", "warn", "fail"]

#: Skew beyond the token leeway (crypto.jwt's 30 s): tokens are refused.
CLOCK_FAIL_SECONDS = 30
#: Skew worth fixing before it grows.
CLOCK_WARN_SECONDS = 5


@dataclass(frozen=True)
class Finding:
    """One check's verdict and what to do about it."""

    check: str
    level: Level
    detail: str
    fix: str = ""


def from_check(name: str, check: Check, fix: str = "") -> Finding:
    """A readiness-probe verdict (:mod:`corridor.health`) as a finding."""
    return Finding(name, "ok" if check.ok else "fail", check.detail, "" if check.ok else fix)


def keys_findings(keys_dir: Path) -> list[Finding]:
    """``keys/``: a 0700 directory of the service user, its files 0600, the active key readable."""
    try:
        info = keys_dir.lstat()
    except FileNotFoundError:
        return [Finding("keys", "fail", f"{keys_dir} does not exist",
                        "restore it from a backup ('restore'); a new key means rejoining")]
    problems: list[str] = []
    fixes: list[str] = []
    if not stat.S_ISDIR(info.st_mode):
        return [Finding("keys", "fail", f"{keys_dir} is not a directory", "restore it")]
    if stat.S_IMODE(info.st_mode) & 0o077:
        problems.append(f"keys/ is mode {stat.S_IMODE(info.st_mode):o}")
        fixes.append(f"chmod 700 {keys_dir}")
    if info.st_uid != os.geteuid():
        problems.append(f"keys/ belongs to uid {info.st_uid}, not this user ({os.geteuid()})")
        fixes.append(f"chown -R the service user {keys_dir}")
    for path in sorted(keys_dir.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            problems.append(f"{path.name} is a symbolic link")
            fixes.append(f"replace {path} with the file itself")
        elif path.is_file() and mode & 0o077:
            problems.append(f"{path.relative_to(keys_dir)} is mode {mode:o}")
            fixes.append(f"chmod 600 {path}")
    try:
        kid = load_signing_key(keys_dir).kid
    except (KeystoreError, ValueError) as e:
        return [Finding("keys", "fail", f"the active signing key cannot be read: {e}",
                        "; ".join(fixes) or "restore keys/ from a backup")]
    if problems:
        return [Finding("keys", "fail", "; ".join(problems), "; ".join(fixes))]
    return [Finding("keys", "ok", f"mode 0700, files 0600; active key {kid}")]


def config_finding(config: Path, database_url: str) -> Finding:
    """The config file is readable and, if it names a database password, private."""
    mode = stat.S_IMODE(config.stat().st_mode)
    if make_url(database_url).password and database_url in config.read_text("utf-8") \
            and mode & 0o077:
        return Finding("config", "warn", f"{config.name} names a database password and is "
                                         f"mode {mode:o}",
                       f"chmod 600 {config}, or pass the URL in the environment instead")
    return Finding("config", "ok", f"{config.name} read")


def database_finding(database_url: str, migrations: Path) -> Finding:
    """The database answers and its schema is at the newest migration."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database \
            and not Path(url.database).is_file():  # opening it would create an empty one
        return Finding("database", "fail", f"no database file at {url.database}",
                       "restore it from a backup ('restore'), or fix database_url")
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            check = database_check(session, migrations)
    finally:
        engine.dispose()
    return from_check("database", check, "start the database server, check database_url; "
                                         "then run 'migrate'")


def clock_finding(url: str, http: httpx.Client,
                  clock: Callable[[], float] = time.time) -> Finding:
    """This machine's clock against the ``Date`` the service at ``url`` answers with."""
    started = clock()
    try:
        response = http.get(f"{url.rstrip('/')}/livez")
    except httpx.HTTPError as e:
        return Finding("clock", "warn", f"could not reach {url} to compare clocks "
                                        f"({type(e).__name__})",
                       "check the network path to the registry")
    finished = clock()
    try:
        theirs = parsedate_to_datetime(response.headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return Finding("clock", "warn", f"{url} sent no usable Date header", "")
    # Date has whole seconds: the skew is known to within a second plus half the round trip.
    skew = theirs + 0.5 - (started + finished) / 2
    margin = 0.5 + (finished - started) / 2
    shown = f"{skew:+.1f} s (± {margin:.1f} s) against {url}"
    if abs(skew) - margin > CLOCK_FAIL_SECONDS:
        return Finding("clock", "fail", f"this clock is off by {shown}: tokens are refused "
                                        f"beyond {CLOCK_FAIL_SECONDS} s",
                       "synchronise the clock (chrony or systemd-timesyncd)")
    if abs(skew) - margin > CLOCK_WARN_SECONDS:
        return Finding("clock", "warn", f"this clock is off by {shown}",
                       "synchronise the clock (chrony or systemd-timesyncd)")
    return Finding("clock", "ok", f"within {CLOCK_WARN_SECONDS} s: {shown}")


_MARK = {"ok": "[green]✓ ok[/]", "warn": "[yellow]! warn[/]", "fail": "[bold red]✗ FAIL[/]"}


def doctor_command(kind: str, config_file: str, migrations: Path,
                   service_checks: Callable[[ServiceContext[Any]], list[Finding]]
                   ) -> click.Command:
    """The ``doctor`` command of a service: the shared checks, then ``service_checks``."""

    @click.command(help=f"""Check this {kind}'s configuration, keys, database and
    {'trust list and clock' if kind == 'node' else 'signing key'}; say what to fix.

    Exits 1 if any check fails (warnings do not).""")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                  show_default=True)
    @click.pass_context
    def doctor(ctx: click.Context, fmt: str) -> None:
        context = service_context(ctx)
        findings = _findings(context, kind, config_file, migrations, service_checks)
        if fmt == "json":
            click.echo(json.dumps([asdict(f) for f in findings], indent=2, ensure_ascii=False))
        else:
            table = Table(show_header=True, header_style="bold")
            for column in ("check", "verdict", "detail", "fix"):
                table.add_column(column, overflow="fold")
            for f in findings:
                table.add_row(f.check, _MARK[f.level], f.detail, f.fix)
            out.print(table)
            failed = sum(f.level == "fail" for f in findings)
            warned = sum(f.level == "warn" for f in findings)
            out.print(f"{len(findings)} checks: {failed} failed, {warned} warnings")
        if any(f.level == "fail" for f in findings):
            raise SystemExit(1)

    return doctor


def _findings(context: ServiceContext[Any], kind: str, config_file: str, migrations: Path,
              service_checks: Callable[[ServiceContext[Any]], list[Finding]]) -> list[Finding]:
    try:
        settings = context.read_settings()
    except SettingsError as e:
        return [Finding("config", "fail", str(e), f"run 'corridor {kind} --dir DIR init' or "
                                                  "restore the directory from a backup")]
    findings = [config_finding(context.directory / config_file, settings.database_url),
                *keys_findings(settings.keys_dir),
                database_finding(settings.database_url, migrations)]
    return findings + service_checks(context)
