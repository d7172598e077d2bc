"""``corridor registry users``: the accounts that read the registry's audit pages and API."""

from __future__ import annotations

from corridor.users_cli import users_group
from registry.web.users import ACCOUNTS

users = users_group(
    service="registry", accounts=ACCOUNTS,
    help="Accounts for the registry's audit pages and log API (auditor, admin).",
    role_help="auditor and admin both read the exchange log and the witness evidence.")
