"""The ``corridor`` command: one entry point for nodes, the registry and the demo."""

from __future__ import annotations

import click

from corridor.audit_cli import audit
from corridor.demo import demo
from corridor.verify import verify
from node.cli import node
from registry.cli import registry
from registry.users_cli import users as registry_users


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="corridor")
def main() -> None:
    """Corridor: signed, policy-filtered data sharing for transboundary wildlife monitoring.

    Each institution runs a sovereign node over its own data; partners receive
    only signed, policy-filtered extracts. Start with 'corridor demo'.
    """


# registry.cli stays free of web concerns; its audit accounts are added here.
registry.add_command(registry_users)
main.add_command(node)
main.add_command(registry)
main.add_command(demo)
main.add_command(verify)
main.add_command(audit)
