"""``corridor demo``: a throw-away federation on this machine, and the exchange it exists for.

It starts a registry and two national-park nodes (Russia's Land of the
Leopard, China's NTLNP) as real HTTP servers on loopback, generates and
imports each side's synthetic camera-trap data, and walks through one data-use
agreement: the Russian node asks for the Chinese leopard and tiger records;
the Chinese owner narrows the terms and approves; Russia accepts, fetches a
signed, policy-filtered package and verifies it; China revokes; the next
fetch is refused. Every step goes through the same code as the CLI and the
web pages.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from audit.checks import reconcile, verify_log
from audit.sources import HttpSource
from corridor.cli_context import ServiceContext
from corridor.db import make_engine, make_session_factory
from corridor.keystore import load_signing_key
from corridor.lease import Lease
from corridor.outbound import partner_client
from corridor.package_reader import verify_package
from corridor.tlog import LogEntry
from corridor.wording import plural, rows_summary
from deploy.demo_individuals import individuals_truth, match_crossers
from deploy.federation import (
    LoopbackFederation,
    agree,
    camtrap_dataset,
    publish_camtrap,
    stored_trust_list,
)
from deploy.loopback import LoopbackServer
from node.cli import dataset_summary, generate_and_import
from node.data.datasets import current_datasets
from node.data.demo_data import CENSUS_WINDOW, border_line
from node.data.importer import ImportResult
from node.db import upgrade
from node.exchange.agreement_sync import push
from node.exchange.agreements import act
from node.exchange.census_cli import run_census
from node.exchange.fetch import FetchRefused, fetch_package
from node.exchange.joint_cli import run_joint_count
from node.exchange.joint_output import write_csv, write_geojson, write_individuals, write_map
from node.exchange.refresher import start_refresher
from node.exchange.registry_client import RegistryClient, client_for
from node.log.witness import COSIGNED, checkpoint_and_submit
from node.settings import NodeSettings, load_settings
from node.web.users import add_user
from policies.census import CensusWindow
from policies.counts import CAMTRAP_METRICS, Query
from policies.crossers import JointIndividuals
from policies.suppression import derived
from registry.log.witness import sign_registry_checkpoint, start_checkpointer
from registry.settings import RegistrySettings
from registry.web.users import add_user as add_registry_user

out = Console(highlight=False)

CATS = ["Panthera pardus orientalis", "Panthera tigris altaica"]
FLYWAY_SPECIES = ["Platalea minor", "Grus monacha", "Antigone vipio"]
#: The demo's census year: the last year of its survey counts.
CENSUS_YEAR = 2024
FLYWAY = "flyway-counts"
#: The grid of the demo's joint count, in degrees (the cats' sensitivity allows 0.1°).
JOINT_CELL = "0.1"


@dataclass(frozen=True)
class DemoMember:
    """One institution of the demo federation."""

    member_id: str
    name: str
    country: str
    side: str
    bird_counts: bool
    #: The flyway sites whose counts this member holds (country codes).
    bird_countries: tuple[str, ...] = ()


MEMBERS: Sequence[DemoMember] = (
    DemoMember("ru-lotl", "Land of the Leopard National Park", "RU", "ru", True, ("RU", "MN")),
    # In this two-member demo, cn-ntlnp also holds the counts of the southern flyway
    # partners' wintering sites.
    DemoMember("cn-ntlnp", "Northeast China Tiger and Leopard National Park", "CN", "cn", True,
               ("CN", "HK", "JP", "KR", "TW")),
)
REQUESTER, PROVIDER = "ru-lotl", "cn-ntlnp"


@dataclass
class Federation:
    """The running demo: its loopback federation and what the story produced."""

    root: Path
    net: LoopbackFederation | None = None
    logins: dict[str, tuple[str, str]] = field(default_factory=dict)
    facts: list[tuple[str, str]] = field(default_factory=list)
    auditor: tuple[str, str] = ("auditor", "")
    seed: int = 2024
    #: The story's agreements, in the order they were made (their pages are printed).
    agreements: list[str] = field(default_factory=list)

    @property
    def servers(self) -> dict[str, LoopbackServer]:
        """Each service's server, by member id and ``"registry"``."""
        return {} if self.net is None else self.net.servers

    @property
    def nodes(self) -> dict[str, NodeSettings]:
        """Each node's settings, by member id."""
        return {} if self.net is None else self.net.nodes

    @property
    def registry(self) -> RegistrySettings | None:
        """The registry's settings, once it runs."""
        return None if self.net is None else self.net.registry

    def stop(self) -> None:
        """Stop every server and close the demo's database engines."""
        if self.net is not None:
            self.net.stop()
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to put the demo (default: a temporary directory, removed at the end).")
@click.option("--observations", default=20_000, show_default=True,
              type=click.IntRange(100, 1_000_000), help="Camera-trap observations per country.")
@click.option("--seed", default=2024, show_default=True, help="Random seed of the demo data.")
@click.option("--keep", is_flag=True,
              help="Leave the registry and nodes running (until Ctrl-C) and print their "
                   "URLs and owner logins.")
def demo(directory: Path | None, observations: int, seed: int, keep: bool) -> None:
    """Run the local demo federation: a registry, two border parks, one data-use agreement."""
    throwaway = directory is None
    root = Path(tempfile.mkdtemp(prefix="corridor-demo-")) if directory is None else directory
    if directory is not None and directory.exists() and any(directory.iterdir()):
        raise click.UsageError(f"{directory} is not empty; give a new or empty directory")
    started = time.monotonic()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise here
    out.rule("[bold]Corridor demo")
    out.print(f"Working in {root} (one sub-directory per service)\n")
    fed = Federation(root)
    try:
        fed.seed = seed
        _start(fed, observations=observations, seed=seed)
        _story(fed)
        _joint_count(fed)
        _census(fed)
        _audit(fed)
        _summary(fed, time.monotonic() - started)
        if keep:
            _serve_until_interrupted(fed)
    finally:
        fed.stop()
        if throwaway and not keep:
            shutil.rmtree(root, ignore_errors=True)
            out.print(f"[dim]Removed {root} (use --dir or --keep to keep it).[/]")


def step(text: str) -> None:
    """Print one step of the story in plain words."""
    out.print(f"[bold cyan]>[/] {text}")


def _start(fed: Federation, *, observations: int, seed: int) -> None:
    """Registry and nodes up, data imported, members admitted, trust lists synced."""
    net = fed.net = LoopbackFederation.start(fed.root, name="NEASPEC demo registry")
    step(f"The registry runs at {net.registry_server.url}. Its public key goes to every park "
         f"in a file, {net.anchor.name} (the \"anchor\"): with it a node can tell the real "
         "registry's signed member list from a forgery.")
    for member in MEMBERS:
        results: list[ImportResult] = []

        def generate(settings: NodeSettings, member: DemoMember = member,
                     results: list[ImportResult] = results) -> None:
            results.extend(generate_and_import(
                settings, settings.directory / "demo-data", side=member.side,
                observations=observations, seed=seed, bird_counts=member.bird_counts,
                bird_countries=member.bird_countries))

        settings = net.add_node(member.member_id, member.name, member.country,
                                prepare=generate)
        held = "; ".join(f"{r.name} ({rows_summary(r.counts)})"
                         for r in results)
        step(f"{member.name} ({member.member_id}) runs at {net.servers[member.member_id].url} "
             f"and holds {held}.")
        fed.logins[member.member_id] = _owner_login(settings)
        net.admit(member.member_id)
    net.sync()
    step("Both parks joined the registry with signed requests; the operator admitted them; "
         "each node verified and stored the trust list (the registry's signed list of "
         "members and their keys).")


def _owner_login(settings: NodeSettings) -> tuple[str, str]:
    """Create the node's owner account for the web pages; returns (user, password)."""
    password = secrets.token_urlsafe(12)
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        add_user(session, "owner", password, "owner", now=datetime.now(UTC))
        session.commit()
    engine.dispose()
    return ("owner", password)


_ENGINES: dict[str, Any] = {}


def _session(settings: NodeSettings | RegistrySettings) -> Session:
    """A session on a service's database (one engine per service for the whole demo)."""
    return _sessions(settings)()


def _sessions(settings: NodeSettings | RegistrySettings) -> sessionmaker[Session]:
    if settings.database_url not in _ENGINES:
        _ENGINES[settings.database_url] = make_engine(settings.database_url)
    return make_session_factory(_ENGINES[settings.database_url])


def _held_rows(settings: NodeSettings) -> dict[str, int]:
    """Rows per resource of the node's camera-trap dataset (as counted at import)."""
    with _session(settings) as session:
        return {k: int(v) for k, v in camtrap_dataset(session).counts.items()}


def _story(fed: Federation) -> None:
    """Request -> narrowed approval -> acceptance -> fetch -> verify -> revoke -> refusal."""
    ru, cn = fed.nodes[REQUESTER], fed.nodes[PROVIDER]
    ru_client, cn_client = client_for(ru), client_for(cn)
    now = datetime.now(UTC)
    entry = publish_camtrap(cn, _session, now=now)
    step(f"cn-ntlnp published {entry['id']} in the catalog (a description, never rows).")

    until = (now + timedelta(days=365)).date().isoformat()
    terms = {"provider": PROVIDER, "dataset": entry["id"], "purpose": "joint-monitoring",
             "tier": "generalized", "until": until}
    narrowed = {**terms, "taxa": CATS, "until": (now + timedelta(days=180)).date().isoformat()}
    agreement_id = agree(ru, cn, _session, terms=terms, narrowed=narrowed, now=now,
                         justification="Joint census of Amur leopards and tigers that cross "
                                       "the border",
                         reason="Leopards and tigers only, for six months")
    fed.agreements.append(agreement_id)
    step(f"ru-lotl asked for {entry['id']} (joint monitoring, generalized tier, until {until}): "
         f"request {agreement_id}.")
    step("cn-ntlnp pulled the request from the registry; its owner narrowed it to leopards "
         f"and tigers until {narrowed['until']} and approved, signing the agreement.")
    step("ru-lotl accepted the narrowed terms (its signature completes the agreement); "
         "cn-ntlnp's own copy now says active.")

    received = ru.directory / "received"
    received.mkdir(exist_ok=True)
    package_path = received / f"{agreement_id}.zip"
    result = _fetch(ru, ru_client, agreement_id, package_path)
    assert not isinstance(result, str), result
    rows = rows_summary(result.rows)
    step(f"ru-lotl got a five-minute access pass (token) from the registry and fetched "
         f"{package_path.name} from "
         f"cn-ntlnp: {rows}.")
    held = _held_rows(cn)
    step("Only what the released observations reach left cn-ntlnp: "
         + ", ".join(f"{result.rows.get(k, 0):,} of {held[k]:,} {k}"
                     for k in ("media", "deployments", "individuals"))
         + " (the rest would tell when other animals passed which camera).")
    report_ = verify_package(package_path, stored_trust_list(ru))
    assert report_.ok, report_.failure
    step(f"ru-lotl verified it offline: {len(report_.checks)} checks passed (signature by "
         f"{report_.signer_member}, every file's SHA-256 and size).")
    fed.facts.append(("package", f"{package_path} ({result.size:,} bytes, {rows})"))

    with _session(cn) as session:
        row = act(session, me=PROVIDER, key=cn_client.key, keys_dir=cn.keys_dir,
                  agreement_id=agreement_id, action="revoke", now=datetime.now(UTC),
                  reason="Demo: a camera site was found by poachers")
        session.commit()
        push(session, cn_client, row)
    step("cn-ntlnp's owner revoked the agreement; the registry was told.")
    refused = _fetch(ru, ru_client, agreement_id, received / "after-revocation.zip")
    assert isinstance(refused, str), "a revoked agreement must not be served"
    step(f"ru-lotl tried again and was refused: {refused}")
    fed.facts += [("agreement", f"{agreement_id}: requested, narrowed, accepted, fetched, "
                                "revoked"), ("refusal", refused)]


def _aggregate_agreement(fed: Federation, requester: str, provider: str) -> str:
    """An active aggregate-tier agreement: ``requester`` may ask ``provider`` for counts."""
    now = datetime.now(UTC)
    entry = publish_camtrap(fed.nodes[provider], _session, now=now)
    terms = {"provider": provider, "dataset": entry["id"], "purpose": "joint-monitoring",
             "tier": "aggregate", "until": (now + timedelta(days=365)).date().isoformat()}
    agreement = agree(fed.nodes[requester], fed.nodes[provider], _session, terms=terms, now=now,
                      justification="Joint count of the cats on both sides",
                      reason="Summary counts under our thresholds")
    fed.agreements.append(agreement)
    return agreement


def _joint_count(fed: Federation) -> None:
    """Aggregate agreements each way, then the joint count of the cats across the border."""
    to_cn = _aggregate_agreement(fed, REQUESTER, PROVIDER)
    to_ru = _aggregate_agreement(fed, PROVIDER, REQUESTER)
    step(f"Each park granted the other aggregate access (counts only, no record): {to_cn} "
         f"and {to_ru}.")
    ru = fed.nodes[REQUESTER]
    assert fed.net is not None
    links = match_crossers(fed.net, _session, proposer=REQUESTER, confirmer=PROVIDER,
                           seed=fed.seed, step=step)
    with _session(ru) as session:
        own = camtrap_dataset(session).name
    query = Query.build(metrics=CAMTRAP_METRICS, taxa=CATS, cell_size=JOINT_CELL, unit="year",
                        first="2023", last="2024")
    out_dir = fed.root / "joint-count"
    context = ServiceContext(ru.directory, load_settings, upgrade)
    try:
        result = run_joint_count(context, query, agreements=[to_cn], own=own,
                                 work=out_dir / "sources", individuals=True)
    finally:
        context.close()
    sources = result.sources
    write_csv(out_dir / "counts.csv", sources, result.joint)
    write_geojson(out_dir / "cells.geojson", sources, result.joint)
    write_map(out_dir / "map.png", sources, result.joint, border=border_line(),
              title="Amur leopard and tiger, joint RAI 2023-2024 (0.1° cells)")
    step(f"ru-lotl ran the joint count: signed counts from cn-ntlnp (verified) and from its "
         f"own node, merged on the {JOINT_CELL}° grid, per year (RAI: independent "
         "events per 100 camera-days).")
    for name, released in [*sources.items(), ("joint", result.joint)]:
        for row in released.totals:
            values = derived(row, released.kind)
            taxon = values["taxon"].split()[1]
            if "suppressed" in values:
                out.print(f"    {name:<9} {taxon:<7} {values['period']}  suppressed")
                continue
            out.print(f"    {name:<9} {taxon:<7} {values['period']}  {values['events']:>5,} events"
                      f"  {values['camera_days']:>9,.0f} camera-days  RAI {values['rai']:6.2f}"
                      f"  {values['cameras']:>4} cameras", markup=False)
    suppressed = sum(1 for r in result.joint.counts if "suppressed" in r)
    step(f"{suppressed} of {len(result.joint.counts)} joint cell rows are suppressed (fewer "
         "than 3 events or cameras at a source, or protecting such a cell); the map and "
         f"table are in {out_dir}.")
    fed.facts.append(("joint", f"{out_dir / 'counts.csv'}, {out_dir / 'map.png'}"))
    assert result.individuals is not None
    write_individuals(out_dir / "individuals.csv", result.individuals)
    _individuals(fed, result.individuals, links)


def _individuals(fed: Federation, joint: JointIndividuals, links: Sequence[str]) -> None:
    """Print the joint count of individuals and check it against the generator's truth."""
    ru, cn = fed.nodes[REQUESTER], fed.nodes[PROVIDER]
    truth = individuals_truth(ru, cn, fed.seed)
    step(f"Counted once across the border: distinct individuals per year from the signed "
         f"counts and the {len(links)} confirmed links (no camera record changed hands):")
    wrong = []
    for row in joint.rows:
        taxon = row["taxon"].split()[1]
        if "suppressed" in row:
            out.print(f"    {taxon:<7} {row['period']}  suppressed ({row['suppressed']})",
                      markup=False)
            continue
        seen_ru, seen_cn = truth.get((row["taxon"], row["period"]), (set(), set()))
        expected = (len(seen_ru - seen_cn), len(seen_cn - seen_ru), len(seen_ru & seen_cn),
                    len(seen_ru | seen_cn))
        got = (row[f"only {REQUESTER}"], row[f"only {PROVIDER}"], row["both"], row["total"])
        if got != expected:
            wrong.append(f"{taxon} {row['period']}: {got} != truth {expected}")
        out.print(f"    {taxon:<7} {row['period']}  only RU {got[0]:>3}  only CN {got[1]:>3}  "
                  f"both {got[2]:>3}  total {got[3]:>3}  (RU {row[REQUESTER]}, CN "
                  f"{row[PROVIDER]}, {len(row['cells'])} cells with crossers)", markup=False)
    if wrong:
        raise click.ClickException("the joint count of individuals does not match the "
                                   "generator's truth: " + "; ".join(wrong))
    step("That equals the generator's hidden truth for the animals the cameras recorded "
         "(only RU, only CN, both, total).")
    fed.facts.append(("animals", f"{fed.root / 'joint-count' / 'individuals.csv'} "
                                 f"({len(links)} confirmed links; matches the generator's "
                                 "truth)"))


def _census(fed: Federation) -> None:
    """The flyway's coordinated winter census: both nodes' survey counts, signed, added up."""
    now = datetime.now(UTC)
    entry = publish_camtrap(fed.nodes[PROVIDER], _session, now=now, dataset_name=FLYWAY)
    terms = {"provider": PROVIDER, "dataset": entry["id"], "purpose": "joint-monitoring",
             "tier": "aggregate", "until": (now + timedelta(days=365)).date().isoformat()}
    agreement = agree(fed.nodes[REQUESTER], fed.nodes[PROVIDER], _session, terms=terms,
                      now=now, justification="The coordinated winter census",
                      reason="Country totals only")
    fed.agreements.append(agreement)
    context = ServiceContext(fed.nodes[REQUESTER].directory, load_settings, upgrade)
    try:
        sources, result = run_census(context, agreements=[agreement], own=FLYWAY,
                                     taxa=FLYWAY_SPECIES, year=CENSUS_YEAR,
                                     window=CensusWindow(*CENSUS_WINDOW))
    finally:
        context.close()
    out_file = fed.root / "census.json"
    out_file.write_text(json.dumps({"census": result, "sources": sources}, indent=2,
                                   ensure_ascii=False), encoding="utf-8")
    step(f"The flyway census, {result['window']} (per site the highest count in the window, "
         f"zeros kept): {PROVIDER}'s signed country totals (agreement {agreement}, verified) "
         f"added to {REQUESTER}'s own; no site or single count crossed:")
    for species in result["species"]:
        countries = ", ".join(f"{r['country']} {r['total']:,}" for r in species["countries"]
                              if r["total"] is not None)
        total = species["flyway"]
        change = total["change_percent"]
        out.print(f"    {species['taxon']:<16} flyway {total['total'] or 0:>6,} "
                  f"({CENSUS_YEAR - 1}: {total['previous'] or 0:,}"
                  + ("" if change is None else f", {change:+.1f}%") + f")  {countries}",
                  markup=False)
    left = sum(s["outside_window"] for s in result["species"])
    step(f"{left} counts made outside the window were left out of the totals.")
    fed.facts.append(("census", f"{out_file} ({len(sources)} nodes, "
                                f"{len(result['species'])} species)"))


def _audit(fed: Federation) -> None:
    """Checkpoints witnessed, then an auditor verifies every log and reconciles them."""
    registry = fed.registry
    assert registry is not None
    now = datetime.now(UTC)
    user, password = fed.auditor = ("auditor", secrets.token_urlsafe(12))
    for member_id, settings in fed.nodes.items():
        with _session(settings) as session:
            add_user(session, user, password, "auditor", now=now)
            session.commit()
        witnessed = checkpoint_and_submit(settings, client_for(settings), _sessions(settings),
                                          stored_trust_list(settings), now)
        assert witnessed.outcome == COSIGNED, witnessed
        step(f"{member_id} signed a checkpoint of its exchange log (a fingerprint of all "
             f"{witnessed.size} entries so far) and the registry cosigned it as witness: "
             "neither side can later rewrite what was recorded without it showing.")
    with _session(registry) as session:
        add_registry_user(session, user, password, "auditor", now=now)
        session.commit()
        checkpoint = sign_registry_checkpoint(session, load_signing_key(registry.keys_dir), now)
        assert checkpoint is not None
    assert fed.net is not None
    anchor = fed.net.anchor
    entries: dict[str, list[LogEntry]] = {}
    with httpx.Client() as http:
        for name, server in fed.servers.items():
            source = HttpSource(server.url, (user, password), http)
            keys = source.trusted_keys(anchor)
            verdict = verify_log(source, keys.registry, keys.members)
            entries[name] = list(source.entries(0, verdict.entries))
            witness = "cosigned by the registry, " if verdict.witnessed else ""
            step(f"audit verify {server.url} ({name}): checkpoint of {verdict.checkpoint.size} "
                 f"entries signed by {verdict.signed_by}, {witness}every entry re-hashed: "
                 "the fingerprint (root hash) matches; the log is intact.")
    registry_entries = entries.pop("registry")
    result = reconcile(registry_entries, entries)
    assert result.ok, result.mismatches
    unused = sum(1 for m in result.mismatches if m.kind == "token never used")
    refused = sum(1 for m in result.mismatches if m.kind == "token refused")
    counted = result.counts
    step(f"audit reconcile: {plural(result.served, 'package')} served, {result.received} "
         f"received, {result.matched} matched with its receipt and with a token the registry "
         f"logged; {plural(counted.served, 'counts result')} served, {counted.received} "
         f"received, {counted.matched} matched"
         + (f"; {plural(refused, 'agreement token')} presented and refused" if refused else "")
         + (f"; {plural(unused, 'agreement token')} never used" if unused else "") + ".")
    fed.facts.append(("audit", f"{len(entries) + 1} logs verified; {result.matched} of "
                               f"{result.served} packages and {counted.matched} of "
                               f"{counted.served} counts results reconciled"))


def _fetch(settings: NodeSettings, client: RegistryClient, agreement_id: str,
           path: Path) -> Any:
    """Fetch through the node's own code; a refusal comes back as its message."""
    with _session(settings) as session:
        try:
            return fetch_package(session, client, stored_trust_list(settings),
                                 agreement_id=agreement_id,
                                 out=path, since=None, now=datetime.now(UTC),
                                 http=partner_client(development=True))
        except FetchRefused as e:
            return str(e)


#: Each node's pages: path and what it shows (the request pages are listed per agreement).
NODE_PAGES = (("/inbox", "requests to and from this node, pending first"),
              ("/agreements", "every agreement, in both roles"),
              ("/log", "this node's exchange log, entry by entry"),
              ("/ledger", "animals matched with a partner's, message by message"))
REGISTRY_PAGES = (("/log", "the registry's exchange log and its checkpoints"),
                  ("/witness", "the nodes' checkpoints the registry cosigned"))


def running_pages(fed: Federation) -> list[str]:
    """What ``--keep`` prints: every service's pages, with the logins that open them."""
    auditor, secret = fed.auditor
    registry = fed.servers["registry"].url
    lines = [f"registry  {registry}"]
    lines += [f"  {registry}{path:<14} {what}" for path, what in REGISTRY_PAGES]
    lines.append(f"  sign in at {registry}/login as auditor: user {auditor}  password {secret}")
    for member_id, settings in fed.nodes.items():
        url = fed.servers[member_id].url
        user, password = fed.logins[member_id]
        lines += ["", f"{member_id:<9} {url}"]
        lines += [f"  {url}{path:<14} {what}" for path, what in NODE_PAGES]
        lines += [f"  {url}/requests/{agreement}  one agreement: terms, plan, history"
                  for agreement in fed.agreements]
        lines.append(f"  sign in at {url}/login as the data owner: user {user}  "
                     f"password {password}")
        lines.append(f"  or as auditor: user {auditor}  password {secret}")
        lines.append(f"  CLI: corridor node --dir {settings.directory} request list")
    return lines


def _serve_until_interrupted(fed: Federation) -> None:
    # As 'corridor node serve' does: each node refreshes its trust list, pulls and
    # pushes agreement events every minute and checkpoints its log, so the pages
    # keep showing what the registry holds; the registry checkpoints its own log.
    refreshers = [stop for settings in fed.nodes.values()
                  if (stop := start_refresher(settings)) is not None]
    if (registry := fed.registry) is not None and (checkpointer := start_checkpointer(
            registry.database_url, load_signing_key(registry.keys_dir),
            registry.checkpoint_interval,
            Lease("registry-checkpointer", registry.directory, registry.database_url))):
        refreshers.append(checkpointer)
    out.rule("[bold]Still running (Ctrl-C stops everything)")
    for line in running_pages(fed):
        out.print(line, soft_wrap=True, markup=False)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        out.print("\nStopping.")
    finally:
        for stop in refreshers:
            stop.set()


def _summary(fed: Federation, seconds: float) -> None:
    """One screen: what each node holds, what was exchanged, what was refused."""
    out.print()
    for member in MEMBERS:
        settings = load_settings(fed.root / member.member_id)
        engine = make_engine(settings.database_url)
        with make_session_factory(engine)() as session:
            rows = current_datasets(session)
            out.rule(f"[bold]{member.member_id}[/]: what this node holds", align="left")
            out.print(dataset_summary(rows))
        engine.dispose()
    out.rule("[bold]What happened", align="left")
    for label, text in fed.facts:
        out.print(f"  {label:<10} {text}", markup=False)
    out.print(f"  {'time':<10} {seconds:.1f} s")
