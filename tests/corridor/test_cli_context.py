"""One run of a service command builds its settings and database once, and only if used."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text

from corridor.cli_context import ServiceContext, service_context
from node.cli import init_node
from node.db import upgrade
from node.settings import NodeSettings, load_settings


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    init_node(tmp_path / "node", "ru-lotl", "Land of the Leopard", "RU")
    return tmp_path / "node"


def test_the_schema_is_migrated_once_per_run_and_released_at_the_end(node_dir: Path) -> None:
    migrations: list[Engine] = []

    def migrate(engine: Engine) -> None:
        migrations.append(engine)
        upgrade(engine)

    svc: ServiceContext[NodeSettings] = ServiceContext(node_dir, load_settings, migrate)
    assert svc.settings.member_id == "ru-lotl" and migrations == []  # settings alone: no DB
    with svc.session() as session:
        assert session.execute(text("select count(*) from datasets")).scalar() == 0
    with svc.session() as session, svc.sessions() as other:
        assert session.bind is other.bind is svc.engine
    assert len(migrations) == 1
    svc.close()
    svc.close()  # idempotent
    with svc.session() as session:  # a later use opens it again, migrating again
        session.execute(text("select 1"))
    assert len(migrations) == 2


def test_a_directory_that_is_not_a_node_is_one_line_and_exit_1(tmp_path: Path) -> None:
    @click.command()
    @click.pass_context
    def show(ctx: click.Context) -> None:
        ctx.obj = ServiceContext(tmp_path, load_settings, upgrade)
        click.echo(service_context(ctx).settings.member_id)

    result = CliRunner().invoke(show, [])
    assert result.exit_code == 1
    assert "is not a Corridor node directory" in result.output
    assert "Traceback" not in result.output


def test_a_command_outside_a_service_group_says_where_it_belongs() -> None:
    @click.command()
    @click.pass_context
    def orphan(ctx: click.Context) -> None:
        service_context(ctx)

    result = CliRunner().invoke(orphan, [])
    assert result.exit_code == 2 and "corridor node" in result.output
