"""``corridor node users`` and ``corridor registry users``: one command group, two services.

Each service hands :func:`users_group` its accounts (:class:`corridor.users.Accounts`),
and finds the service's directory and database in the
:class:`corridor.cli_context.ServiceContext` its command group made; the
commands, prompts and messages are the same on both.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from datetime import UTC, datetime

import click
from sqlalchemy.orm import Session

from corridor.cli_context import service_context
from corridor.console import fail, out
from corridor.listing import format_option, print_rows
from corridor.users import MIN_PASSWORD_LENGTH, Accounts, UserError

__all__ = ["users_group"]


def users_group(*, service: str, accounts: Accounts, help: str,
                role_help: str) -> click.Group:
    """The ``users`` group (add, list, remove, unlock) of one service.

    :param service: ``node`` or ``registry``, as typed after ``corridor``.
    :param help: the group's help line.
    :param role_help: the help of ``--role``: what each role may do.
    """

    def open_database(ctx: click.Context) -> AbstractContextManager[Session]:
        return service_context(ctx).session()

    @click.group(help=help)
    def users() -> None:
        pass

    @users.command("add")
    @click.argument("username")
    @click.option("--role", type=click.Choice(accounts.roles), required=True, help=role_help)
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
        with open_database(ctx) as session:
            try:
                accounts.add(session, username, password, role, now=datetime.now(UTC))
            except UserError as e:
                fail(str(e))
            session.commit()
        out.print(f"Added user [bold]{username}[/] ({role})")

    @users.command("list")
    @format_option()
    @click.pass_context
    def list_(ctx: click.Context, fmt: str) -> None:
        """List the accounts, their roles and last sign-in."""
        with open_database(ctx) as session:
            rows = [{"user": user.username, "role": user.role,
                     "created": f"{user.created_at:%Y-%m-%d}",
                     "last_sign_in": (f"{user.last_login_at:%Y-%m-%d %H:%M} UTC"
                                      if user.last_login_at else "never")}
                    for user in accounts.all(session)]
        print_rows(rows, ["user", "role", "created", "last_sign_in"], fmt, title="Users",
                   empty=f"No users yet; add one with 'corridor {service} users add NAME "
                         f"--role {accounts.roles[0]}'")

    @users.command("remove")
    @click.argument("username")
    @click.pass_context
    def remove(ctx: click.Context, username: str) -> None:
        """Delete an account; its open sessions end at their next request."""
        with open_database(ctx) as session:
            try:
                accounts.remove(session, username)
            except UserError as e:
                fail(str(e))
            session.commit()
        out.print(f"Removed user {username}", markup=False)

    @users.command("unlock")
    @click.argument("username", required=False)
    @click.option("--address", default=None, metavar="IP",
                  help="Also (or only) clear the lockout of this client address.")
    @click.pass_context
    def unlock(ctx: click.Context, username: str | None, address: str | None) -> None:
        """End a sign-in lockout now (an account's, an address's, or both)."""
        if username is None and address is None:
            fail("name an account, --address IP, or both")
        with open_database(ctx) as session:
            cleared = accounts.guard.unlock(session, username, address)
            session.commit()
        what = " and ".join(x for x in (username and f"account {username}",
                                        address and f"address {address}") if x)
        out.print(f"Cleared the failed sign-ins of {what}" if cleared
                  else f"No failed sign-ins recorded for {what}", markup=False)

    return users
