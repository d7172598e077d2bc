"""``corridor census``: the flyway census from every node, signed, verified and added up.

Run from a node's directory. Each ``--agreement`` asks that agreement's
provider for its census (``POST /agreements/<id>/census``); ``--own DATASET``
adds this node's own survey dataset. Every answer is verified (the
provider's signature from the stored trust list, this agreement, this node
as recipient) and logged as ``census.received``; the totals are then added
per country and over the flyway (:func:`policies.census.merge_census`). Only
country totals cross a border: no site and no single count.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from corridor.cli_context import ServiceContext
from corridor.console import fail, out
from corridor.errors import CorridorError
from corridor.files import written_whole
from corridor.keystore import load_signing_key
from corridor.outbound import partner_client
from corridor.pages import is_development_url
from crypto.canonical import canonical_json
from node.data.datasets import get_dataset
from node.db import upgrade
from node.exchange.agreements_cli import registry_of, trust_list_of
from node.exchange.census import census_tables, dataset_census, sign_census, verify_census
from node.exchange.fetch import FetchRefused, post_for_json, requested_from
from node.log.exchange_log import LOG
from node.models import PROFILE_CAMTRAP
from node.settings import NodeSettings, load_settings
from policies.census import CensusError, CensusWindow, merge_census, released_census

__all__ = ["census", "run_census"]

#: Largest census answer read from a provider.
MAX_CENSUS_BYTES = 1024 * 1024


def run_census(context: ServiceContext[NodeSettings], *, agreements: list[str],
               own: str | None, taxa: list[str], year: int,
               window: CensusWindow) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Each source's verified, signed census (by source), and their sum.

    :raises FetchRefused: a provider refused or its answer does not verify.
    :raises CorridorError: this node's own dataset is missing or not a survey dataset.
    :raises CensusError: the censuses cannot be added up.
    """
    settings = context.settings
    me = settings.member_id
    sources: dict[str, dict[str, Any]] = {}
    query = {"taxa": taxa, "year": year,
             "window": f"{window.month:02d}-{window.first_day:02d}..{window.month:02d}-"
                       f"{window.last_day:02d}"}
    if agreements:
        client, trust_list = registry_of(settings), trust_list_of(settings)
        with partner_client(development=is_development_url(settings.url)) as http:
            for agreement in agreements:
                with context.session() as session:
                    row, provider, token = requested_from(session, client, trust_list,
                                                          agreement, token=client.counts_token)
                    url = provider.node_url.rstrip("/") + f"/agreements/{agreement}/census"
                    signed = post_for_json(http, url, token=token, body=query,
                                           max_bytes=MAX_CENSUS_BYTES, who=row.provider)
                    try:
                        result = verify_census(signed, trust_list, provider=row.provider,
                                               recipient=me, agreement=agreement)
                    except ValueError as e:
                        raise FetchRefused(f"{row.provider}'s census does not verify: {e}") \
                            from e
                    if row.provider in sources:
                        raise CensusError(f"two censuses from {row.provider}: give one "
                                          "agreement per provider")
                    LOG.append(session, "census.received", datetime.now(UTC),
                               member=row.provider, agreement=agreement,
                               content_sha256=_digest(result))
                    session.commit()
                    sources[row.provider] = signed
    if own:
        with context.session() as session:
            dataset = get_dataset(session, own)
            if dataset.profile == PROFILE_CAMTRAP:
                raise CorridorError(f"{own} is a camera-trap dataset; the census reads survey "
                                    "counts")
            released = released_census(dataset_census(session, dataset, taxa=taxa, year=year,
                                                      window=window))
            signed = sign_census(released, load_signing_key(settings.keys_dir), provider=me,
                                 recipient=me, agreement=None, dataset=dataset,
                                 issued_at=datetime.now(UTC))
            LOG.append(session, "census.computed", datetime.now(UTC), member=me,
                       dataset=dataset.name, version=dataset.version,
                       content_sha256=_digest(signed["result"]))
            session.commit()
        sources[me] = signed
    return sources, merge_census([s["result"] for s in sources.values()])


def _digest(result: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(result)).hexdigest()


@click.command("census")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default="current directory",
              help="This node's directory (its keys, trust list and agreements).")
@click.option("--agreement", "agreements", multiple=True,
              help="An active agreement with a provider of survey counts (repeat).")
@click.option("--own", default=None, help="Also count this node's own survey DATASET.")
@click.option("--taxon", "taxa", multiple=True, required=True,
              help="Species (repeat); synonyms are resolved.")
@click.option("--year", type=click.IntRange(1900, 2200), required=True,
              help="The census year (the year before is shown beside it).")
@click.option("--window", default="01-17..01-19", show_default=True,
              help="The census window, MM-DD..MM-DD within one month, in local dates.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the sum and every signed source result here (JSON).")
def census(directory: Path, agreements: tuple[str, ...], own: str | None,
           taxa: tuple[str, ...], year: int, window: str, out_file: Path | None) -> None:
    """The flyway census across nodes: each node's country totals, signed, added up."""
    if not agreements and not own:
        raise click.UsageError("give at least one --agreement (or --own DATASET)")
    try:
        parsed = CensusWindow.parse(window)
    except CensusError as e:
        raise click.BadParameter(str(e), param_hint="--window") from e
    context = ServiceContext(directory, load_settings, upgrade)
    try:
        sources, merged = run_census(context, agreements=list(agreements), own=own,
                                     taxa=list(taxa), year=year, window=parsed)
    except FetchRefused as e:
        fail(f"census stopped: {e}")
    except CensusError as e:
        fail(f"cannot add up: {e}")
    except CorridorError as e:
        fail(str(e.detail))
    finally:
        context.close()
    for name, signed in sources.items():
        result = signed["result"]
        out.print(f"  {name}: {result['dataset']['name']} v{result['dataset']['version']}, "
                  "signature verified" + (" (this node)" if name == context.settings.member_id
                                          else ""))
    out.print(f"Census {merged['window']} from {len(sources)} node(s), against {year - 1}:")
    out.print(census_tables(merged))
    if out_file is not None:
        with written_whole(out_file) as part:
            part.write_text(json.dumps({"census": merged, "sources": sources},
                                       ensure_ascii=False, indent=2), encoding="utf-8")
        out.print(f"Wrote {out_file}.")
