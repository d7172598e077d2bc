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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from corridor.keystore import public_keys
from crypto.trustlist import TrustList
from deploy.loopback import LoopbackServer
from node.app import create_app as create_node_app
from node.cli import init_node
from node.data.catalog import catalog_entry, sign_entry
from node.data.datasets import current_datasets
from node.data.policy_store import get_policy
from node.exchange.agreement_sync import file_request, push, refresh_one, sync_agreements
from node.exchange.agreements import act
from node.exchange.registry_client import client_for
from node.exchange.trust_store import TrustStore
from node.models import PROFILE_CAMTRAP, Dataset
from node.settings import NodeSettings
from registry.app import create_app as create_registry_app
from registry.cli import anchor_document, change_member_status, init_registry
from registry.models import MEMBER_ACTIVE
from registry.settings import RegistrySettings

__all__ = ["ANCHOR_FILE", "LoopbackFederation", "agree", "camtrap_dataset",
           "publish_camtrap", "stored_trust_list"]

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


# --- one agreement, as both parties' code makes it --------------------------------------

#: How a caller opens a session on a node's database.
SessionOf = Callable[[NodeSettings], Session]


def camtrap_dataset(session: Session) -> Dataset:
    """The node's current camera-trap dataset."""
    return next(d for d in current_datasets(session) if d.profile == PROFILE_CAMTRAP)


def stored_trust_list(settings: NodeSettings) -> TrustList:
    """The node's stored trust list (it has synced)."""
    trust_list = TrustStore(settings.directory).current()
    assert trust_list is not None, f"{settings.member_id} has no trust list; sync first"
    return trust_list


def publish_camtrap(settings: NodeSettings, session_of: SessionOf, *,
                    now: datetime, dataset_name: str | None = None) -> dict[str, Any]:
    """Publish a dataset of the node in the catalog (tiers aggregate, generalized): its
    camera-trap dataset, or ``dataset_name``."""
    client = client_for(settings)
    with session_of(settings) as session:
        dataset = (camtrap_dataset(session) if dataset_name is None
                   else next(d for d in current_datasets(session) if d.name == dataset_name))
        policy, _ = get_policy(session, dataset.name)
        entry = catalog_entry(dataset, member_id=settings.member_id, country=settings.country,
                              contact=None, tiers=("aggregate", "generalized"), now=now,
                              policy=policy)
    client.publish(sign_entry(entry, client.key))
    return entry


def agree(asking: NodeSettings, giving: NodeSettings, session_of: SessionOf, *,
          terms: Mapping[str, Any], justification: str, reason: str, now: datetime,
          narrowed: Mapping[str, Any] | None = None) -> str:
    """File ``terms``, have ``giving`` approve (or narrow to ``narrowed``), accept; the id.

    Every step goes through the nodes' own code and the registry, as the CLI
    would: the request is filed and pushed, the provider pulls and signs its
    decision, the requester pulls it and signs the acceptance, the provider
    syncs. Returns the id of the agreement, active on both sides.
    """
    ask_client, give_client = client_for(asking), client_for(giving)
    with session_of(asking) as session:
        agreement_id = file_request(session, ask_client, key=ask_client.key,
                                    keys_dir=asking.keys_dir, terms=dict(terms),
                                    justification=justification, now=now).id
    with session_of(giving) as session:
        report = sync_agreements(session, give_client, stored_trust_list(giving), now)
        assert agreement_id in report.new_requests, report
        row = act(session, me=giving.member_id, key=give_client.key, keys_dir=giving.keys_dir,
                  agreement_id=agreement_id, action="narrow" if narrowed else "approve",
                  now=now, terms=dict(narrowed) if narrowed else None, reason=reason)
        session.commit()
        push(session, give_client, row)
    with session_of(asking) as session:
        refresh_one(session, ask_client, stored_trust_list(asking), agreement_id, now)
        row = act(session, me=asking.member_id, key=ask_client.key, keys_dir=asking.keys_dir,
                  agreement_id=agreement_id, action="accept", now=now)
        session.commit()
        push(session, ask_client, row)
    with session_of(giving) as session:
        sync_agreements(session, give_client, stored_trust_list(giving), now)
    assert row.state == "active", f"{agreement_id} is {row.state}, not active"
    return agreement_id
