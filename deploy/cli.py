"""The ``corridor`` command: the composition root that mounts every service's commands.

Nothing imports this module. The command groups are found, the way Flask finds
its CLI commands, through the entry-point group :data:`COMMANDS_GROUP`
declared in ``setup.cfg`` (``node``, ``registry``, ``audit``, ``verify``,
``demo``): a new capability adds its group there, not here.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click

__all__ = ["COMMANDS_GROUP", "main"]

#: Entry-point group of the top-level commands: ``name = module:click_command``.
COMMANDS_GROUP = "corridor.commands"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="corridor")
def main() -> None:
    """Corridor: signed, policy-filtered data sharing for transboundary wildlife monitoring.

    Each institution runs a sovereign node over its own data; partners receive
    only signed, policy-filtered extracts. Start with 'corridor demo'.
    """


def _mount() -> None:
    for entry in entry_points(group=COMMANDS_GROUP):
        command = entry.load()
        if not isinstance(command, click.Command):
            raise TypeError(f"entry point {entry.name} = {entry.value} is not a click command")
        main.add_command(command, entry.name)


_mount()
