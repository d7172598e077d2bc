"""``corridor node users``: the accounts that sign in to the node's web pages."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
from sqlalchemy.orm import Session

from corridor.config import SettingsError
from corridor.console import fail, out
from corridor.db import make_engine, make_session_factory
from node.db import upgrade
from node.settings import load_settings
from node.users import MIN_PASSWORD_LENGTH, ROLES, UserError, add_user, list_users, remove_user


@contextmanager
def _database(ctx: click.Context) -> Iterator[Session]:
    """A session on the node's (migrated) database."""
    directory: Path = ctx.obj["dir"]
    try:
        settings = load_settings(directory)
    except SettingsError as e:
        fail(str(e))
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


@click.group()
def users() -> None:
    """Accounts for the node's web pages (owner, auditor, admin)."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="owner and admin decide requests; auditor only looks.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input (for scripts).")
@click.pass_context
def add(ctx: click.Context, username: str, role: str, password_stdin: bool) -> None:
    """Create an account; asks for its password twice (hidden)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"Password (at least {MIN_PASSWORD_LENGTH} characters)",
                                hide_input=True, confirmation_prompt=True)
    with _database(ctx) as session:
        try:
            add_user(session, username, password, role, now=datetime.now(UTC))
        except UserError as e:
            fail(str(e))
        session.commit()
    out.print(f"Added user [bold]{username}[/] ({role})")


@users.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List the accounts, their roles and last sign-in."""
    with _database(ctx) as session:
        accounts = list_users(session)
        if not accounts:
            out.print("No users yet; add one with 'corridor node users add NAME --role owner'")
        for user in accounts:
            last = (f"{user.last_login_at:%Y-%m-%d %H:%M} UTC" if user.last_login_at
                    else "never signed in")
            out.print(f"{user.username:<24} {user.role:<8} created "
                      f"{user.created_at:%Y-%m-%d}  last sign-in {last}", markup=False)


@users.command("remove")
@click.argument("username")
@click.pass_context
def remove(ctx: click.Context, username: str) -> None:
    """Delete an account; its open sessions end at their next request."""
    with _database(ctx) as session:
        try:
            remove_user(session, username)
        except UserError as e:
            fail(str(e))
        session.commit()
    out.print(f"Removed user {username}", markup=False)
