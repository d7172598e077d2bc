"""A federation on one machine: a registry and nodes, each a real HTTP server on loopback.

What ``corridor demo``, the test suite and the benchmarks start. The registry
is initialised in development mode (``http://`` loopback URLs), its anchor
written beside it, and each node is initialised with that anchor, as an
operator would with ``corridor node init --registry URL --anchor FILE``.
Joining is left to the caller (:meth:`LoopbackFederation.admit` does it the
way a node and an operator would, through the registry's API), so that tests
can drive it through the CLI instead.

Not for production: there, each service runs under gunicorn (``deploy/``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from corridor.keystore import public_keys
from deploy.loopback import LoopbackServer
from node.app import create_app as create_node_app
from node.cli import init_node
from node.exchange.registry_client import client_for
from node.exchange.trust_store import TrustStore
from node.settings import NodeSettings
from registry.app import create_app as create_registry_app
from registry.cli import anchor_document, change_member_status, init_registry
from registry.models import MEMBER_ACTIVE
from registry.settings import RegistrySettings

__all__ = ["ANCHOR_FILE", "LoopbackFederation"]

#: The registry's anchor, written in the registry's directory.
ANCHOR_FILE = "anchor.json"


@dataclass
class LoopbackFederation:
    """A registry and the nodes added to it, served on loopback from one directory.

    :ivar root: one sub-directory per service (``registry/``, ``<member-id>/``).
    :ivar registry: the registry's settings; its server is ``servers["registry"]``.
    :ivar anchor: the anchor file nodes pin (the registry's URL and keys).
    :ivar nodes: each node's settings, by member id.
    :ivar servers: each service's server, by member id and ``"registry"``.
    """

    root: Path
    registry: RegistrySettings
    anchor: Path
    start_server: Callable[[], LoopbackServer] = LoopbackServer
    nodes: dict[str, NodeSettings] = field(default_factory=dict)
    servers: dict[str, LoopbackServer] = field(default_factory=dict)

    @classmethod
    def start(cls, root: Path, *, name: str = "Corridor registry",
              database_url: str | None = None,
              start_server: Callable[[], LoopbackServer] = LoopbackServer
              ) -> LoopbackFederation:
        """Initialise and serve a registry in ``root/registry``; no nodes yet.

        :param database_url: the registry's database (default: SQLite in its directory).
        :param start_server: makes each service's server (the tests pass one
            that they stop at teardown and can send requests through).
        """
        server = start_server()
        settings = init_registry(root / "registry", name, server.url, development=True,
                                 database_url=database_url)
        server.mount(create_registry_app({"CORRIDOR_SETTINGS": settings}))
        anchor = settings.directory / ANCHOR_FILE
        anchor.write_text(json.dumps(anchor_document(settings), indent=2), encoding="utf-8")
        return cls(root, settings, anchor, start_server, servers={"registry": server})

    @property
    def registry_server(self) -> LoopbackServer:
        """The registry's server."""
        return self.servers["registry"]

    def add_node(self, member_id: str, name: str, country: str, *,
                 clock: Callable[[], datetime] | None = None,
                 prepare: Callable[[NodeSettings], object] | None = None) -> NodeSettings:
        """Initialise ``root/<member_id>`` as a node pinned to this registry, and serve it.

        :param clock: the node app's clock (tests move it by hand).
        :param prepare: runs after init and before the node serves (e.g. import data).
        """
        server = self.start_server()
        settings = init_node(self.root / member_id, member_id, name, country, server.url,
                             registry_url=self.registry.issuer, anchor=self.anchor)
        if prepare is not None:
            prepare(settings)
        config: dict[str, object] = {"CORRIDOR_SETTINGS": settings}
        if clock is not None:
            config["CORRIDOR_CLOCK"] = clock
        server.mount(create_node_app(config))
        self.nodes[member_id], self.servers[member_id] = settings, server
        return settings

    def admit(self, member_id: str) -> None:
        """The node asks to join (signed) and the operator admits it (see :meth:`sync`)."""
        settings = self.nodes[member_id]
        client_for(settings).join(name=settings.name, country=settings.country,
                                  node_url=self.servers[member_id].url,
                                  keys=public_keys(settings.keys_dir))
        change_member_status(self.registry, member_id, MEMBER_ACTIVE, datetime.now(UTC))

    def sync(self) -> None:
        """Every node fetches, verifies and stores the current trust list."""
        for settings in self.nodes.values():
            TrustStore(settings.directory).update(client_for(settings).trust_list(),
                                                  datetime.now(UTC))

    def stop(self) -> None:
        """Stop every server."""
        for server in self.servers.values():
            server.stop()
