"""Signed, policy-filtered packages: what a partner gets, and that it verifies."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corridor.db import make_engine
from corridor.keystore import load_signing_key, public_keys
from corridor.package_reader import verify_package
from node.cli import generate_and_import, init_node
from node.data.datasets import get_dataset
from node.data.importer import Importer
from node.exchange.package import (
    CAMTRAP_RESOURCES,
    CURSOR_PURPOSE,
    CamtrapExporter,
    Cursor,
    ExportError,
)
from node.models import Deployment, Media, Observation
from node.settings import NodeSettings
from policies.engine import compile as compile_plan
from policies.policy import DEFAULT_POLICY_DOCUMENT, load_policy
from policies.terms import load_terms
from tests.packages import assert_frictionless_valid

pytestmark = pytest.mark.storage

CATS = ("Panthera tigris altaica", "Panthera pardus orientalis")
CAMTRAP_EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "camtrap-dp-example"
KEY = b"k" * 32


def export(settings: NodeSettings, name: str, policy: dict[str, Any], *, tier: str,
           now: datetime, requester: str = "cn-ntlnp", since: str | None = None,
           out: Path) -> tuple[Any, Any]:
    engine = make_engine(settings.database_url)
    with sa.orm.Session(engine) as session:
        dataset = get_dataset(session, name)
    plan = compile_plan(load_policy(policy), load_terms({"purpose": "joint-monitoring",
                                                         "tier": tier}),
                        requester, now, pseudonym_key=KEY, resources=CAMTRAP_RESOURCES)
    with out.open("wb") as fh:
        result = CamtrapExporter(engine, dataset, plan, provider=settings.member_id,
                                 key=load_signing_key(settings.keys_dir), now=now, cursor_key=KEY,
                                 recipient=requester, since=since).write(fh)
    assert_frictionless_valid(out)
    return plan, result


def read(package: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(package) as zf:
        return list(csv.DictReader(io.StringIO(zf.read(name).decode())))


def descriptor(package: Path) -> dict[str, Any]:
    with zipfile.ZipFile(package) as zf:
        data: dict[str, Any] = json.loads(zf.read("datapackage.json"))
    return data


@pytest.fixture
def demo_node(tmp_path: Path, database_url: str) -> NodeSettings:
    settings = init_node(tmp_path / "ru", "ru-lotl", "Land of the Leopard", "RU",
                         database_url=database_url)
    generate_and_import(settings, tmp_path / "gen", side="ru", observations=4000, seed=7,
                        bird_counts=False)
    return settings


def test_generalized_export_hides_cat_cameras_and_fresh_records(
    demo_node: NodeSettings, tmp_path: Path
) -> None:
    policy = json.loads(json.dumps(DEFAULT_POLICY_DOCUMENT))
    # The demo data ends in 2024: an embargo of 800 days from this "now" cuts into it.
    now = datetime(2025, 6, 1, tzinfo=UTC)
    policy["embargo_days"] = {name: 400 for name in CATS}
    out = tmp_path / "generalized.zip"
    plan, result = export(demo_node, "corridor-demo-ru-lotl", policy, tier="generalized",
                          now=now, out=out)

    observations = read(out, "observations.csv")
    cat_cameras = {o["deploymentID"] for o in observations if o["scientificName"] in CATS}
    engine = make_engine(demo_node.database_url)
    with engine.connect() as conn:  # every camera that EVER saw a cat, not only in this export
        all_cat_cameras = set(conn.scalars(sa.select(Observation.deploymentID).where(
            Observation.scientificName.in_(CATS)).distinct()))
    assert cat_cameras and cat_cameras <= all_cat_cameras
    deployments = {d["deploymentID"]: d for d in read(out, "deployments.csv")}
    # Only cameras with a released observation leave; each cat camera among them is rounded.
    assert set(deployments) == {o["deploymentID"] for o in observations}
    for camera in all_cat_cameras & set(deployments):
        for coordinate in ("latitude", "longitude"):
            value = Decimal(deployments[camera][coordinate])
            assert value == value.quantize(Decimal("0.1")), (camera, coordinate, value)
    # No other file of the package carries a coordinate at all.
    for name in ("media.csv", "observations.csv", "individuals.csv"):
        header = read(out, name)[0].keys()
        assert not {"latitude", "longitude", "decimalLatitude"} & set(header)

    cutoff = now - timedelta(days=400)
    for o in observations:
        if o["scientificName"] in CATS:
            start = datetime.fromisoformat(o["eventStart"])
            assert start <= cutoff + timedelta(days=1), o  # coarsened to the day
    assert result.dropped["embargo"] > 0
    assert all(o["individualID"] == "" or o["individualID"].startswith("ind-")
               for o in observations)
    assert all(o["classifiedBy"] == "" for o in observations)

    meta = descriptor(out)
    # How many records the rules held back is the owner's to know: a count that grows
    # between fetches would tell the partner when embargoed animals were last seen.
    assert "dropped" not in meta["corridor"]
    explanation = "\n".join(meta["corridor"]["plan"]["explanation"])
    assert "rounded to 0.1° for Panthera pardus orientalis (category 2" in explanation
    assert "embargo 400 days" in explanation
    assert meta["coordinatePrecision"] == 0.1
    assert meta["corridor"]["plan"]["digest"] == plan.digest()
    assert meta["dataGeneralizations"] and meta["informationWithheld"]
    report = verify_package(out, public_keys(demo_node.keys_dir))
    assert report.ok, report.failure


def test_generalized_package_is_itself_valid_camtrap_dp(
    demo_node: NodeSettings, tmp_path: Path, make_database_url: Any
) -> None:
    out = tmp_path / "generalized.zip"
    export(demo_node, "corridor-demo-ru-lotl", dict(DEFAULT_POLICY_DOCUMENT), tier="generalized",
           now=datetime.now(UTC), out=out)
    from node.db import upgrade

    other = make_engine(make_database_url("partner"))
    upgrade(other)
    imported = Importer(other).import_camtrap(out)  # validates every row against the schemas
    assert imported.counts["observations"] == 4000


def _rows(engine: sa.Engine, model: Any, dataset_id: int) -> list[tuple[Any, ...]]:
    table = model.__table__
    keep = [c for c in table.c if c.name not in ("dataset_id",)]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(*keep).where(table.c.dataset_id == dataset_id)
            .order_by(table.c.source_row))]


def test_full_export_round_trips_to_identical_rows(
    tmp_path: Path, database_url: str, camtrap_example: Path, make_database_url: Any
) -> None:
    provider = init_node(tmp_path / "a", "ru-lotl", "A", "RU", database_url=database_url)
    a = make_engine(provider.database_url)
    first = Importer(a).import_camtrap(camtrap_example)
    policy = {"tiers": {"full": {"apply_sensitivity": False}}, "purposes": ["research"],
              "partners": ["*"]}
    out = tmp_path / "full.zip"
    plan = compile_plan(load_policy(policy), load_terms({"purpose": "research", "tier": "full"}),
                        "cn-ntlnp", datetime.now(UTC), resources=CAMTRAP_RESOURCES)
    with sa.orm.Session(a) as session:
        dataset = get_dataset(session, first.name)
    with out.open("wb") as fh:
        CamtrapExporter(a, dataset, plan, provider="ru-lotl",
                        key=load_signing_key(provider.keys_dir), now=datetime.now(UTC),
                        cursor_key=KEY).write(fh)
    assert verify_package(out, public_keys(provider.keys_dir)).ok

    b = make_engine(make_database_url("other"))
    from node.db import upgrade

    upgrade(b)
    second = Importer(b).import_camtrap(out)
    # The example's one individual (a fox) is named by no observation: it stays home.
    assert second.counts == {"deployments": 4, "media": 423, "observations": 549,
                             "individuals": 0}
    for model in (Deployment, Media, Observation):
        assert _rows(a, model, first.dataset_id) == _rows(b, model, second.dataset_id), model


def test_aggregate_tier_refuses_row_export(demo_node: NodeSettings, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="aggregate-only"):
        export(demo_node, "corridor-demo-ru-lotl", dict(DEFAULT_POLICY_DOCUMENT),
               tier="aggregate", now=datetime.now(UTC), out=tmp_path / "x.zip")


def test_bad_cursor_is_refused() -> None:
    with pytest.raises(ExportError, match="not issued by this node"):
        Cursor.decode("garbage!", KEY)


@pytest.fixture(scope="module")
def example_node(tmp_path_factory: pytest.TempPathFactory) -> NodeSettings:
    if not CAMTRAP_EXAMPLE.exists():
        pytest.skip("reference data not found")
    settings = init_node(tmp_path_factory.mktemp("cursor") / "n", "ru-lotl", "A", "RU")
    engine = make_engine(settings.database_url)
    Importer(engine).import_camtrap(CAMTRAP_EXAMPLE)
    return settings


EMBARGO_POLICY = {"tiers": {"full": {"apply_sensitivity": False}}, "purposes": ["research"],
                  "partners": ["*"],
                  "embargo_days": {"Anas platyrhynchos": 30, "Rattus norvegicus": 60,
                                   "Ardea cinerea": 10}}


def _exported_ids(settings: NodeSettings, now: datetime, since: str | None,
                  out: Path) -> tuple[list[str], str]:
    engine = make_engine(settings.database_url)
    with sa.orm.Session(engine) as session:
        dataset = get_dataset(session, "camtrap-dp-example-dataset")
    plan = compile_plan(load_policy(EMBARGO_POLICY),
                        load_terms({"purpose": "research", "tier": "full"}), "cn-ntlnp", now,
                        resources=CAMTRAP_RESOURCES)
    with out.open("wb") as fh:
        result = CamtrapExporter(engine, dataset, plan, provider="ru-lotl",
                                 key=load_signing_key(settings.keys_dir), now=now,
                                 cursor_key=KEY, since=since).write(fh)
    return [o["observationID"] for o in read(out, "observations.csv")], result.cursor


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=4))
def test_cursor_never_skips_or_repeats_a_row(
    example_node: NodeSettings, tmp_path: Path, steps: list[int]
) -> None:
    # The example runs 2020-05-30 .. 2021-04-18; walk "now" through it in random steps.
    now = datetime(2020, 6, 1, tzinfo=UTC)
    seen: list[str] = []
    cursor = None
    for i, days in enumerate(steps):
        now += timedelta(days=days)
        ids, cursor = _exported_ids(example_node, now, cursor, tmp_path / f"{i}.zip")
        seen += ids
    final, _ = _exported_ids(example_node, now, None, tmp_path / "final.zip")
    assert len(seen) == len(set(seen)), "a row was sent twice"
    assert sorted(seen) == sorted(final), "a row was skipped"


def test_survey_package_generalizes_locations_and_drops_category_1(
    tmp_path: Path, database_url: str, arocha: Path
) -> None:
    settings = init_node(tmp_path / "ke", "ke-arocha", "A Rocha Kenya", "KE",
                         database_url=database_url)
    engine = make_engine(settings.database_url)
    Importer(engine).import_dwc(arocha / "events.csv", arocha / "occurrences.csv",
                                name="waterbirds")
    policy = {"tiers": {"generalized": {"coarsen_time": "month"}}, "purposes": ["research"],
              "partners": ["*"],
              "sensitivity": {"Limosa lapponica": 2, "Hydroprogne caspia": 1}}
    with sa.orm.Session(engine) as session:
        dataset = get_dataset(session, "waterbirds")
    plan = compile_plan(load_policy(policy), load_terms({"purpose": "research",
                                                         "tier": "generalized"}),
                        "cn-ntlnp", datetime.now(UTC), resources=("event", "occurrence"))
    out = tmp_path / "birds.zip"
    from node.exchange.package import DwcExporter

    with out.open("wb") as fh:
        result = DwcExporter(engine, dataset, plan, provider="ke-arocha",
                             key=load_signing_key(settings.keys_dir),
                             now=datetime.now(UTC), cursor_key=KEY).write(fh)
    assert verify_package(out, public_keys(settings.keys_dir)).ok
    events = read(out, "event.csv")
    occurrences = read(out, "occurrence.csv")
    assert len(events) == 257
    # Both sites recorded the godwit (category 2): every event is rounded to 0.1 degree.
    for e in events:
        for term in ("decimalLatitude", "decimalLongitude"):
            value = Decimal(e[term])
            assert value == value.quantize(Decimal("0.1")), e
        assert len(e["eventDate"]) == 7  # coarsened to the month
        assert e["eventTime"] == ""      # finer time terms blanked with it
    assert not any(o["scientificName"] == "Hydroprogne caspia" for o in occurrences)
    assert result.dropped["category_1"] == 116
    assert len(occurrences) == 7644 - 116
    assert read(out, "event.csv")[0].keys() == events[0].keys()


def _embargo_plan(now: datetime) -> Any:
    return compile_plan(load_policy(EMBARGO_POLICY),
                        load_terms({"purpose": "research", "tier": "full"}), "cn-ntlnp", now,
                        resources=CAMTRAP_RESOURCES)


def _crafted(settings: NodeSettings, now: datetime, **fields: Any) -> str:
    """A cursor sealed with the node's own key, as only an insider could make it."""
    engine = make_engine(settings.database_url)
    with sa.orm.Session(engine) as session:
        dataset = get_dataset(session, "camtrap-dp-example-dataset")
    cursor = {"scope": "preview:ru-lotl", "dataset": dataset.name, "version": dataset.version,
              "basis": _embargo_plan(now).basis_digest(), "observations": 0, "media": 0,
              "cutoffs": {}, **fields}
    return Cursor(**cursor).encode(KEY)


@pytest.mark.parametrize("cutoffs", [
    {},  # "nothing was released before"
    {"Anas platyrhynchos": datetime(2100, 1, 1, tzinfo=UTC)},  # "it was all released"
    {"Anas platyrhynchos": datetime(1900, 1, 1, tzinfo=UTC),
     "Rattus norvegicus": datetime(1900, 1, 1, tzinfo=UTC)},
])
def test_a_crafted_cursor_releases_nothing_the_plan_holds_back(
        example_node: NodeSettings, tmp_path: Path, cutoffs: dict[str, datetime]) -> None:
    now = datetime(2021, 1, 10, tzinfo=UTC)  # mid-dataset: the embargoes hold rows back
    whole, _ = _exported_ids(example_node, now, None, tmp_path / "whole.zip")
    crafted = _crafted(example_node, now, cutoffs=cutoffs)
    ids, _ = _exported_ids(example_node, now, crafted, tmp_path / "crafted.zip")
    assert set(ids) <= set(whole), "a crafted cursor brought back rows the plan withholds"
    rows = read(tmp_path / "crafted.zip", "observations.csv")
    for name, days in EMBARGO_POLICY["embargo_days"].items():  # type: ignore[attr-defined]
        held = [r for r in rows if r["scientificName"] == name
                and datetime.fromisoformat(r["eventStart"]) > now - timedelta(days=days)]
        assert not held, f"{name}: embargoed rows released"
    media = {m["mediaID"] for m in read(tmp_path / "crafted.zip", "media.csv")}
    whole_media = {m["mediaID"] for m in read(tmp_path / "whole.zip", "media.csv")}
    assert media <= whole_media


@pytest.mark.parametrize(("field", "value"), [
    ("version", 10**30), ("version", 0), ("observations", -10**30), ("media", 10**30),
    ("observations", True), ("version", 1.5),
    ("cutoffs", {"Anas platyrhynchos": "2021-01-01T00:00:00"}),  # no time zone
    ("cutoffs", {"Anas platyrhynchos": 1e300}), ("version", float("inf")),
    ("cutoffs", {"x": [[[[[]]]]]}),
    ("scope", ""), ("dataset", "x" * 300),
])
def test_a_sealed_cursor_with_an_impossible_field_is_refused(
        example_node: NodeSettings, field: str, value: Any) -> None:
    now = datetime(2021, 1, 10, tzinfo=UTC)
    good = Cursor.decode(_crafted(example_node, now), KEY)
    names = {"scope": "a", "dataset": "d", "version": "v", "basis": "b", "observations": "o",
             "media": "m", "cutoffs": "c"}
    payload: dict[str, Any] = {"a": good.scope, "d": good.dataset, "v": good.version,
                               "b": good.basis, "o": 0, "m": 0, "c": {}}
    payload[names[field]] = value
    # Sealed by hand (not every value here is canonical JSON), with the node's key.
    body = json.dumps(payload).encode()
    mac = hmac.new(KEY, b"corridor-sealed\x00" + CURSOR_PURPOSE.encode() + b"\x00" + body,
                   hashlib.sha256).digest()
    token = base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + \
        base64.urlsafe_b64encode(mac).decode().rstrip("=")
    with pytest.raises(ExportError, match="malformed") as refused:
        Cursor.decode(token, KEY)
    assert refused.value.reason == "forged"  # type: ignore[attr-defined]


def test_a_cursor_for_an_older_version_or_policy_is_stale(example_node: NodeSettings) -> None:
    from node.exchange.package import CursorRefused

    now = datetime(2021, 1, 10, tzinfo=UTC)
    engine = make_engine(example_node.database_url)
    with sa.orm.Session(engine) as session:
        dataset = get_dataset(session, "camtrap-dp-example-dataset")
    old = Cursor.decode(_crafted(example_node, now, version=dataset.version + 1), KEY)
    with pytest.raises(CursorRefused, match="re-imported") as refused:
        old.check(scope="preview:ru-lotl", dataset=dataset, basis=old.basis)
    assert refused.value.reason == "stale"
    with pytest.raises(CursorRefused, match="changed what this agreement releases"):
        Cursor.decode(_crafted(example_node, now), KEY).check(
            scope="preview:ru-lotl", dataset=dataset, basis="sha256:other")
    with pytest.raises(CursorRefused, match="another agreement") as foreign:
        Cursor.decode(_crafted(example_node, now), KEY).check(
            scope="ru-lotl.0123456789abcdef", dataset=dataset, basis=old.basis)
    assert foreign.value.reason == "foreign"
