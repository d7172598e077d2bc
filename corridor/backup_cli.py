"""``corridor node|registry backup`` and ``restore``: one pair of commands, two services.

Each service hands :func:`backup_commands` its :class:`corridor.backup.Layout`;
the commands find the directory and settings in the service's
:class:`corridor.cli_context.ServiceContext`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from corridor.backup import BackupError, Layout, restore_backup, write_backup
from corridor.cli_context import service_context
from corridor.console import err, fail, out

__all__ = ["backup_commands"]


@contextmanager
def _bar(label: str) -> Iterator[Callable[[int, int | None], None]]:
    with Progress(TextColumn(f"  {label}"), BarColumn(), DownloadColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def backup_commands(layout: Layout) -> list[click.Command]:
    """The ``backup`` and ``restore`` commands of the service ``layout`` describes."""
    kind = layout.kind

    @click.command(help=f"""Back up this {kind}: configuration, keys, trust store and database.

    Safe while the {kind} serves: SQLite is copied through its online backup
    API (writers wait for the copy), PostgreSQL dumped with pg_dump (which must
    be installed, of the server's major version). The file holds the private
    keys: it is written mode 0600; keep it as you keep keys/. Received package
    files and demo data are not included.""")
    @click.option("--out", "out_path", required=True, metavar="FILE",
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="The backup file to write (.tar.gz); never overwritten.")
    @click.pass_context
    def backup(ctx: click.Context, out_path: Path) -> None:
        context = service_context(ctx)
        settings = context.settings
        context.migrate()  # a backup records the newest schema, never a half-migrated one
        try:
            with _bar("database") as progress:
                summary = write_backup(layout, context.directory, settings.database_url,
                                       out_path, progress=progress)
        except BackupError as e:
            fail(str(e))
        out.print(f"Backed up the {kind} in {context.directory} to [bold]{summary.path}[/] "
                  f"({summary.bytes:,} bytes, mode 0600)")
        out.print(f"  {summary.files} files (config, keys, trust store) and the "
                  f"{summary.database} database at migration {summary.revision}")
        out.print("  It holds the private keys: store it as you store keys/.")
        out.print(f"  Restore: corridor {kind} --dir NEW-DIR restore --from {summary.path}")

    @click.command(help=f"""Restore a {kind} backup into a new, empty directory (--dir).

    Every file is checked against the backup's manifest before anything is
    put in place; a damaged backup leaves nothing behind. A SQLite database
    goes to the new directory; a PostgreSQL dump into the empty database
    --database-url names (or ${layout.database_env}). Verify the restored
    log afterwards with 'corridor audit verify DIR'.""")
    @click.option("--from", "backup_path", required=True, metavar="FILE",
                  type=click.Path(dir_okay=False, exists=True, path_type=Path),
                  help="The backup file ('backup --out').")
    @click.option("--database-url", default=None, metavar="URL",
                  help="Where the database goes (default: the directory's SQLite file, or "
                       f"${layout.database_env}); a PostgreSQL dump needs an empty database.")
    @click.pass_context
    def restore(ctx: click.Context, backup_path: Path, database_url: str | None) -> None:
        directory = service_context(ctx).directory
        from_env = database_url is None and bool(os.environ.get(layout.database_env))
        url = database_url or os.environ.get(layout.database_env) or None
        try:
            with _bar("restore") as progress:
                summary = restore_backup(layout, backup_path, directory, database_url=url,
                                         url_from_env=from_env, progress=progress)
        except BackupError as e:
            fail(f"{e} (nothing was restored)")
        out.print(f"Restored the {kind} into [bold]{summary.directory}[/]: {summary.files} "
                  f"files and the {summary.database} database ({summary.database_url}) at "
                  f"migration {summary.revision}")
        out.print(f"  Next: corridor audit verify {summary.directory}")

    return [backup, restore]
