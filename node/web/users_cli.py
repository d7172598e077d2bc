"""``corridor node users``: the accounts that sign in to the node's web pages."""

from __future__ import annotations

from corridor.users_cli import users_group
from node.web.users import ACCOUNTS

users = users_group(
    service="node", accounts=ACCOUNTS,
    help="Accounts for the node's web pages (owner, auditor, admin).",
    role_help="owner and admin decide requests; auditor and admin read the exchange log.")
