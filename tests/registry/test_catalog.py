"""The registry's catalog: signed entries in, search out, and never a row or a fine coordinate.

Service-level tests run the real checks on a real, migrated registry database
(SQLite, or PostgreSQL with CORRIDOR_TEST_DATABASE_URL); the HTTP tests run a
live registry with real OAuth2 tokens.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from corridor.db import make_engine
from corridor.errors import BadRequest, Conflict, CorridorError, Forbidden, NotFound
from crypto.canonical import canonical_json
from crypto.jws import sign_compact, verify_compact
from crypto.keys import KeySet, SigningKey
from node.data.catalog import CATALOG_TYP, catalog_entry, sign_entry
from node.data.datasets import get_dataset
from node.data.importer import Importer
from node.exchange.oauth_client import TokenClient
from node.models import Dataset
from registry.db import upgrade
from registry.exchange.catalog import BBox, get_entry, publish_entry, search
from registry.exchange.catalog_api import catalog_blueprint
from registry.membership.members import set_status
from registry.models import (
    MEMBER_ACTIVE,
    MEMBER_PENDING,
    MEMBER_SUSPENDED,
    CatalogEntry,
    CatalogTaxon,
    Member,
    MemberKey,
)

if TYPE_CHECKING:
    from tests.registry.conftest import RegistryHarness

pytestmark = pytest.mark.storage

NOW = datetime(2025, 3, 1, 9, 30, 15, tzinfo=UTC)


# -- fixtures ------------------------------------------------------------------


@pytest.fixture
def registry_url(make_database_url: Callable[[str], str]) -> str:
    """A registry database of its own (the suite's ``database_url`` is the node's)."""
    return make_database_url("registry")


@pytest.fixture
def registry_engine(registry_url: str) -> Iterator[sa.Engine]:
    """The registry schema, migrated."""
    eng = make_engine(registry_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session(registry_engine: sa.Engine) -> Iterator[Session]:
    with Session(registry_engine, expire_on_commit=False) as s:
        yield s


class Members:
    """Member institutions with their signing keys, written straight into the registry DB."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.keys: dict[str, SigningKey] = {}

    def add(self, member_id: str, country: str, *, status: str = MEMBER_ACTIVE) -> SigningKey:
        key = SigningKey.generate()
        self.session.add(Member(member_id=member_id, name=f"{member_id} institution",
                                country=country, node_url=f"https://{member_id}.example",
                                status=status, requested_at=NOW, request_jws="-"))
        self.session.flush()
        self.session.add(MemberKey(member_id=member_id, kid=key.kid, jwk=key.public_key.to_jwk(),
                                   added_at=NOW))
        self.session.commit()
        self.keys[member_id] = key
        return key


@pytest.fixture
def members(session: Session) -> Members:
    m = Members(session)
    m.add("ru-lotl", "RU")
    m.add("cn-ntlnp", "CN")
    m.add("mn-wwf", "MN")
    return m


def dataset(name: str = "tigers", **overrides: Any) -> Dataset:
    values: dict[str, Any] = {
        "name": name, "version": 1, "profile": "camtrap-dp",
        "title": "Camera traps, Land of the Leopard", "description": "Amur tigers and prey.",
        "licenses": [{"name": "CC-BY-4.0", "scope": "data"}],
        "taxa": ["Panthera tigris altaica", "Sus scrofa"], "counts": {"observations": 10},
        "temporal_start": "2022-01-01", "temporal_end": "2022-12-31",
        "bbox_west": 130.81, "bbox_south": 42.6, "bbox_east": 131.9, "bbox_north": 43.4,
    }
    values.update(overrides)
    return Dataset(**values)


COUNTRY = {"ru-lotl": "RU", "cn-ntlnp": "CN", "mn-wwf": "MN", "kr-nie": "KR"}


def document(member: str = "ru-lotl", ds: Dataset | None = None, *, now: datetime = NOW,
             **fields: Any) -> dict[str, Any]:
    doc = catalog_entry(ds or dataset(), member_id=member, country=COUNTRY[member],
                        contact="science@example.org", tiers=["aggregate", "generalized"],
                        now=now)
    doc.update(fields)
    return doc


def publish(session: Session, members: Members, member: str = "ru-lotl",
            doc: dict[str, Any] | None = None, *, signer: str | None = None,
            now: datetime = NOW) -> CatalogEntry:
    jws = sign_entry(doc if doc is not None else document(member),
                     members.keys[signer or member])
    entry = publish_entry(session, jws, sender=member, now=now)
    session.commit()
    return entry


def refused(session: Session, error: type[CorridorError], *args: Any, **kwargs: Any) -> str:
    with pytest.raises(error) as info:
        publish(session, *args, **kwargs)
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(CatalogEntry)) == 0
    return str(info.value.detail)


# -- publishing ----------------------------------------------------------------


def test_publish_stores_the_verified_entry(session: Session, members: Members) -> None:
    entry = publish(session, members)
    assert (entry.member_id, entry.dataset, entry.country) == ("ru-lotl", "tigers", "RU")
    assert (entry.west, entry.south, entry.east, entry.north) == (130, 42, 132, 44)
    assert (entry.temporal_start, entry.temporal_end) == ("2022-01-01", "2022-12-31")
    assert entry.published_at == NOW
    assert entry.document == document()
    names = set(session.scalars(sa.select(CatalogTaxon.name)
                                .where(CatalogTaxon.entry_id == entry.id)))
    assert names == {"Panthera tigris altaica", "Panthera tigris tigris",
                     "Panthera tigris amurensis", "Sus scrofa"}


def test_entry_signed_by_another_member_is_refused(session: Session, members: Members) -> None:
    # cn-ntlnp signs ru-lotl's entry; ru-lotl sends it: not ru-lotl's key.
    detail = refused(session, BadRequest, members, "ru-lotl", signer="cn-ntlnp")
    assert "signature does not verify with ru-lotl's active keys" in detail
    # ... and cn-ntlnp cannot send its own correctly signed entry under ru-lotl's name.
    jws = sign_entry(document("cn-ntlnp"), members.keys["cn-ntlnp"])
    with pytest.raises(BadRequest):
        publish_entry(session, jws, sender="ru-lotl", now=NOW)


def test_entry_outside_the_senders_namespace_is_refused(session: Session,
                                                        members: Members) -> None:
    # Signed by cn-ntlnp's own key, but describing a ru-lotl dataset.
    doc = document("ru-lotl", country="CN")
    detail = refused(session, Forbidden, members, "cn-ntlnp", doc)
    assert "outside the sender's namespace" in detail
    doc = document("ru-lotl", id="cn-ntlnp/tigers")
    refused(session, Forbidden, members, "ru-lotl", doc)
    doc = document("ru-lotl", id="ru-lotl/other")
    refused(session, Forbidden, members, "ru-lotl", doc)


@pytest.mark.parametrize("status", [MEMBER_PENDING, MEMBER_SUSPENDED])
def test_only_active_members_publish(session: Session, members: Members, status: str) -> None:
    members.add("kr-nie", "KR", status=status)
    detail = refused(session, Forbidden, members, "kr-nie")
    assert "not an active member" in detail
    with pytest.raises(Forbidden):
        publish_entry(session, "a.b.c", sender="xx-nobody", now=NOW)


def test_retired_key_no_longer_signs(session: Session, members: Members) -> None:
    row = session.get(MemberKey, ("ru-lotl", members.keys["ru-lotl"].kid))
    assert row is not None
    row.retired_at = NOW - timedelta(days=1)
    session.commit()
    refused(session, BadRequest, members)


def test_wrong_typ_is_refused(session: Session, members: Members) -> None:
    key = members.keys["ru-lotl"]
    for typ in ("corridor-trust-list+jwt", "JWT", None):
        jws = sign_compact(canonical_json(document()), key, typ=typ)
        with pytest.raises(BadRequest, match="signature"):
            publish_entry(session, jws, sender="ru-lotl", now=NOW)


@pytest.mark.parametrize("iat_shift", [-601, 601, -86400])
def test_stale_or_future_entries_are_refused(session: Session, members: Members,
                                             iat_shift: int) -> None:
    signed_at = NOW + timedelta(seconds=iat_shift)
    detail = refused(session, BadRequest, members, "ru-lotl", document(now=signed_at))
    assert "stale" in detail


def test_entry_within_the_clock_skew_is_accepted(session: Session, members: Members) -> None:
    publish(session, members, doc=document(now=NOW - timedelta(seconds=599)))


def test_published_at_must_match_iat(session: Session, members: Members) -> None:
    refused(session, BadRequest, members, "ru-lotl",
            document(published_at="2020-01-01T00:00:00Z"))


def test_oversize_entry_is_refused(session: Session, members: Members) -> None:
    doc = document(description="x" * 70_000)
    detail = refused(session, BadRequest, members, "ru-lotl", doc)
    assert "signature" in detail  # the size check is part of verification


def test_non_canonical_payload_is_refused(session: Session, members: Members) -> None:
    key = members.keys["ru-lotl"]
    pretty = json.dumps(document(), indent=2).encode()
    with pytest.raises(BadRequest, match="canonical"):
        publish_entry(session, sign_compact(pretty, key, typ=CATALOG_TYP), sender="ru-lotl",
                      now=NOW)
    duplicated = canonical_json(document())[:-1] + b',"title":"other"}'
    with pytest.raises(BadRequest):
        publish_entry(session, sign_compact(duplicated, key, typ=CATALOG_TYP),
                      sender="ru-lotl", now=NOW)
    # 130.0 is another spelling of 130 in JSON; canonical JSON writes 130.
    whole_float = canonical_json(document()).replace(b'"bbox":[130,', b'"bbox":[130.0,')
    assert whole_float != canonical_json(document())
    with pytest.raises(BadRequest, match="canonical"):
        publish_entry(session, sign_compact(whole_float, key, typ=CATALOG_TYP),
                      sender="ru-lotl", now=NOW)
    for payload in (b"[1,2]", b"not json", b'"text"', b'{"iat":NaN}'):
        with pytest.raises(BadRequest):
            publish_entry(session, sign_compact(payload, key, typ=CATALOG_TYP),
                          sender="ru-lotl", now=NOW)


def test_unknown_and_missing_fields_are_refused(session: Session, members: Members) -> None:
    detail = refused(session, BadRequest, members, "ru-lotl",
                     document(observations=[{"lat": 43.1, "lon": 131.2}]))
    assert "unknown field(s) in catalog entry: observations" in detail
    doc = document()
    del doc["licence"]
    assert "lacks licence" in refused(session, BadRequest, members, "ru-lotl", doc)
    refused(session, BadRequest, members, "ru-lotl",
            document(spatial={"bbox": [130, 42, 132, 44], "points": []}))
    refused(session, BadRequest, members, "ru-lotl",
            document(temporal={"start": "2022-01-01", "end": None, "cameras": 3}))


@pytest.mark.parametrize("bbox", [
    [130.5, 42, 132, 44],          # fractional degrees
    [130, 42, 132, 43.999],
    [181, 42, 182, 44],            # out of range
    [-181, 42, 132, 44],
    [130, -91, 132, 44],
    [130, 42, 132, 91],
    [132, 42, 130, 44],            # west east of east
    [130, 44, 132, 42],            # south north of north
    [130, 42, 132],
    [130, 42, 132, 44, 0],
    [True, 42, 132, 44],
    ["130", 42, 132, 44],
    {"west": 130},
    "130,42,132,44",
])
def test_bad_bounding_boxes_are_refused(session: Session, members: Members, bbox: Any) -> None:
    detail = refused(session, BadRequest, members, "ru-lotl", document(spatial={"bbox": bbox}))
    assert "bbox" in detail


@pytest.mark.parametrize("fields", [
    {"dataset": "Tigers!", "id": "ru-lotl/Tigers!"},
    {"dataset": "x" * 65, "id": "ru-lotl/" + "x" * 65},
    {"profile": "csv"},
    {"country": "CN"},
    {"title": ""},
    {"title": "t" * 301},
    {"description": "d" * 4001},
    {"description": 5},
    {"contact": "ring\x07"},
    {"description": "Camera C12 stands at 43.1234, 131.5678 near the river."},
    {"title": "Den at 43.12 N, 131.56 E"},
    {"taxa": "Panthera tigris"},
    {"taxa": ["Grus vipio", "grus  vipio"]},
    {"taxa": [""]},
    {"taxa": ["x" * 201]},
    {"taxa": [7]},
    {"counts": {"observations": -1}},
    {"counts": {"observations": 1.5}},
    {"counts": {"Observations!": 1}},
    {"counts": [1, 2]},
    {"tiers": ["raw"]},
    {"tiers": ["full", "full"]},
    {"tiers": "full"},
    {"version": 0},
    {"version": "1"},
    {"temporal": {"start": "2022-02-30", "end": None}},
    {"temporal": {"start": "2022-12-31", "end": "2022-01-01"}},
    {"temporal": {"start": "2022-01-01T00:00:00Z", "end": None}},
    {"temporal": None},
    {"published_at": "2025-03-01 09:30:15"},
    {"iat": 1740821415.5},
    {"iat": True},
])
def test_malformed_fields_are_refused(session: Session, members: Members,
                                      fields: dict[str, Any]) -> None:
    refused(session, BadRequest, members, "ru-lotl", document(**fields))


def test_benign_numbers_in_text_are_fine(session: Session, members: Members) -> None:
    publish(session, members, doc=document(
        description="Camtrap DP 1.0.2, 2.5 km transects; licence CC BY 4.0."))


def test_newer_entry_replaces_older(session: Session, members: Members) -> None:
    first = publish(session, members)
    later = NOW + timedelta(minutes=5)
    doc = document(ds=dataset(version=2, taxa=["Uncia uncia"]), now=later)
    second = publish(session, members, doc=doc, now=later)
    assert second.id == first.id
    assert session.scalar(sa.select(sa.func.count()).select_from(CatalogEntry)) == 1
    assert second.document["version"] == 2 and second.published_at == later
    names = set(session.scalars(sa.select(CatalogTaxon.name)))
    assert names == {"Panthera uncia", "Uncia uncia", "Felis uncia"}


def test_older_or_equal_entry_does_not_replace_newer(session: Session,
                                                     members: Members) -> None:
    publish(session, members)
    earlier = document(ds=dataset(title="older"), now=NOW - timedelta(minutes=1))
    with pytest.raises(Conflict):
        publish(session, members, doc=earlier)
    session.rollback()
    same_second = document(ds=dataset(title="same second"))
    with pytest.raises(Conflict):
        publish(session, members, doc=same_second)
    session.rollback()
    assert get_entry(session, "ru-lotl", "tigers").title == "Camera traps, Land of the Leopard"


def test_resending_the_same_entry_changes_nothing(session: Session, members: Members) -> None:
    jws = sign_entry(document(), members.keys["ru-lotl"])
    first = publish_entry(session, jws, sender="ru-lotl", now=NOW)
    session.commit()
    again = publish_entry(session, jws, sender="ru-lotl", now=NOW + timedelta(seconds=30))
    assert again.id == first.id and again.jws == jws


# -- search --------------------------------------------------------------------


@pytest.fixture
def catalog(session: Session, members: Members) -> Session:
    """Four entries from three members in three countries."""
    publish(session, members, "ru-lotl", document("ru-lotl", dataset(
        "tigers", taxa=["Panthera tigris altaica", "Capreolus pygargus"]),
        title="Land of the Leopard camera traps 100%_done"))
    publish(session, members, "ru-lotl", document("ru-lotl", dataset(
        "cranes", profile="dwc-event", title="Khanka crane counts",
        description="Monthly counts of White-naped Cranes.", taxa=["Grus vipio", "Grus monacha"],
        temporal_start="2015-03-01", temporal_end="2019-11-30",
        bbox_west=131.9, bbox_south=44.5, bbox_east=132.9, bbox_north=45.3)))
    publish(session, members, "cn-ntlnp", document("cn-ntlnp", dataset(
        "leopards", title="NTLNP camera traps", description="Far Eastern leopards.",
        taxa=["Panthera pardus orientalis", "Panthera tigris tigris"],
        temporal_start="2023-01-01", temporal_end="2023-06-30",
        bbox_west=129.9, bbox_south=42.2, bbox_east=131.3, bbox_north=43.9)))
    publish(session, members, "mn-wwf", document("mn-wwf", dataset(
        "daurian-cranes", profile="dwc-event", title="Daurian steppe cranes",
        description=None, taxa=["Antigone vipio"], temporal_start=None, temporal_end=None,
        bbox_west=None, bbox_south=None, bbox_east=None, bbox_north=None)))
    return session


def ids(result: tuple[list[CatalogEntry], int]) -> list[str]:
    return [f"{e.member_id}/{e.dataset}" for e in result[0]]


def test_search_without_filters_lists_everything_by_id(catalog: Session) -> None:
    entries, total = search(catalog)
    assert total == 4
    assert ids((entries, total)) == ["cn-ntlnp/leopards", "mn-wwf/daurian-cranes",
                                     "ru-lotl/cranes", "ru-lotl/tigers"]


@pytest.mark.parametrize(("text", "expected"), [
    ("camera", ["cn-ntlnp/leopards", "ru-lotl/tigers"]),
    ("CAMERA TRAPS", ["cn-ntlnp/leopards", "ru-lotl/tigers"]),
    ("white-naped", ["ru-lotl/cranes"]),                  # description
    ("mn-wwf/", ["mn-wwf/daurian-cranes"]),               # id
    ("ru-lotl/cr", ["ru-lotl/cranes"]),
    ("100%", ["ru-lotl/tigers"]),                         # % is literal
    ("%", ["ru-lotl/tigers"]),
    ("0%_d", ["ru-lotl/tigers"]),                         # _ is literal
    ("_", ["ru-lotl/tigers"]),
    ("s_d", []),
    ("\\", []),
    ("nothing like this", []),
])
def test_search_by_text(catalog: Session, text: str, expected: list[str]) -> None:
    assert ids(search(catalog, text=text)) == expected


@pytest.mark.parametrize(("taxon", "expected"), [
    # Published as "Grus vipio" (ru) and "Antigone vipio" (mn): either name finds both.
    ("Antigone vipio", ["mn-wwf/daurian-cranes", "ru-lotl/cranes"]),
    ("Grus vipio", ["mn-wwf/daurian-cranes", "ru-lotl/cranes"]),
    ("  grus VIPIO", ["mn-wwf/daurian-cranes", "ru-lotl/cranes"]),
    ("Grus monacha", ["ru-lotl/cranes"]),
    # Amur tiger under the CCTF name (cn) and under altaica (ru).
    ("Panthera tigris altaica", ["cn-ntlnp/leopards", "ru-lotl/tigers"]),
    ("Panthera tigris tigris", ["cn-ntlnp/leopards", "ru-lotl/tigers"]),
    ("Panthera pardus japonensis", ["cn-ntlnp/leopards"]),
    ("Capreolus capreolus pygargus", ["ru-lotl/tigers"]),
    # A species finds its subspecies.
    ("Panthera tigris", ["cn-ntlnp/leopards", "ru-lotl/tigers"]),
    ("Panthera pardus", ["cn-ntlnp/leopards"]),
    ("Platalea minor", []),
])
def test_search_by_taxon_includes_synonyms(catalog: Session, taxon: str,
                                           expected: list[str]) -> None:
    assert ids(search(catalog, taxon=taxon)) == expected


@pytest.mark.parametrize(("taxon", "expected"), [
    # Genus, family, order, class: every species below, under any of its names.
    ("Panthera", ["cn-ntlnp/leopards", "ru-lotl/tigers"]),
    # Antigone vipio was Grus vipio: the old genus still finds it.
    ("Grus", ["mn-wwf/daurian-cranes", "ru-lotl/cranes"]),
    ("Antigone", ["mn-wwf/daurian-cranes", "ru-lotl/cranes"]),
    ("Gruidae", ["mn-wwf/daurian-cranes", "ru-lotl/cranes"]),
    ("Felidae", ["cn-ntlnp/leopards", "ru-lotl/tigers"]),
    ("Cervidae", ["ru-lotl/tigers"]),
    ("Artiodactyla", ["ru-lotl/tigers"]),
    ("Mammalia", ["cn-ntlnp/leopards", "ru-lotl/tigers"]),
    ("Aves", ["mn-wwf/daurian-cranes", "ru-lotl/cranes"]),
    ("Anatidae", []),
    # Common names in the backbone's six languages: a word, or part of a CJK name.
    ("crane", ["mn-wwf/daurian-cranes", "ru-lotl/cranes"]),
    ("White-naped", ["mn-wwf/daurian-cranes", "ru-lotl/cranes"]),
    ("deer", ["ru-lotl/tigers"]),
    ("тигр", ["cn-ntlnp/leopards", "ru-lotl/tigers"]),
    ("鹤", ["mn-wwf/daurian-cranes", "ru-lotl/cranes"]),
    ("東北虎", []),                          # traditional script: not in the backbone
    ("东北虎", ["cn-ntlnp/leopards", "ru-lotl/tigers"]),
    ("두루미", ["mn-wwf/daurian-cranes", "ru-lotl/cranes"]),
    ("ヒョウ", ["cn-ntlnp/leopards"]),
    ("тогоруу", ["mn-wwf/daurian-cranes", "ru-lotl/cranes"]),
    ("er", []),                              # too short to be a word of a name
    ("heron", []),
])
def test_search_by_higher_taxon_and_common_name(catalog: Session, taxon: str,
                                                expected: list[str]) -> None:
    assert ids(search(catalog, taxon=taxon)) == expected


def test_a_genus_outside_the_backbone_finds_its_species_by_prefix(
        session: Session, members: Members) -> None:
    publish(session, members, "ru-lotl", document("ru-lotl", dataset(
        "voles", taxa=["Myodes rufocanus", "Myodesia x", "Microtus fortis"])))
    assert ids(search(session, taxon="Myodes")) == ["ru-lotl/voles"]
    assert ids(search(session, taxon="Myode")) == []       # a prefix is a whole genus
    assert ids(search(session, taxon="Microtus_")) == []   # _ is literal


def test_the_gadwall_is_found_under_either_genus(session: Session, members: Members) -> None:
    publish(session, members, "ru-lotl", document("ru-lotl", dataset(
        "ducks", taxa=["Anas strepera"])))
    for query in ("Mareca strepera", "Anas strepera", "Mareca", "Anas", "Anatidae",
                  "Gadwall", "赤膀鸭", "серая утка"):
        assert ids(search(session, taxon=query)) == ["ru-lotl/ducks"], query


def test_search_by_country(catalog: Session) -> None:
    assert ids(search(catalog, country="RU")) == ["ru-lotl/cranes", "ru-lotl/tigers"]
    assert ids(search(catalog, country="mn")) == ["mn-wwf/daurian-cranes"]
    assert ids(search(catalog, country="JP")) == []


@pytest.mark.parametrize(("date_from", "date_to", "expected"), [
    (date(2022, 12, 31), None, ["cn-ntlnp/leopards", "ru-lotl/tigers"]),
    (date(2023, 1, 1), None, ["cn-ntlnp/leopards"]),
    (None, date(2015, 3, 1), ["ru-lotl/cranes"]),
    (None, date(2015, 2, 28), []),
    (date(2019, 6, 1), date(2022, 1, 1), ["ru-lotl/cranes", "ru-lotl/tigers"]),
    (date(2020, 1, 1), date(2021, 12, 31), []),
])
def test_search_by_date_range_overlap(catalog: Session, date_from: date | None,
                                      date_to: date | None, expected: list[str]) -> None:
    assert ids(search(catalog, date_from=date_from, date_to=date_to)) == expected


@pytest.mark.parametrize(("box", "expected"), [
    # tigers [130,42,132,44], cranes [131,44,133,46], leopards [129,42,132,44].
    ((131.5, 42.5, 131.6, 42.6), ["cn-ntlnp/leopards", "ru-lotl/tigers"]),
    ((132.5, 45.5, 140.0, 50.0), ["ru-lotl/cranes"]),
    ((129.0, 44.0, 129.5, 44.0), ["cn-ntlnp/leopards"]),  # corners touch
    ((0.0, 0.0, 10.0, 10.0), []),
    ((-180.0, -90.0, 180.0, 90.0), ["cn-ntlnp/leopards", "ru-lotl/cranes", "ru-lotl/tigers"]),
])
def test_search_by_bbox_intersection(catalog: Session, box: tuple[float, float, float, float],
                                     expected: list[str]) -> None:
    assert ids(search(catalog, bbox=BBox(*box))) == expected


def test_filters_combine(catalog: Session) -> None:
    assert ids(search(catalog, taxon="Grus vipio", country="RU", text="khanka",
                      date_from=date(2016, 1, 1),
                      bbox=BBox(130, 40, 135, 50))) == ["ru-lotl/cranes"]
    assert ids(search(catalog, taxon="Grus vipio", country="CN")) == []


def test_pagination(catalog: Session) -> None:
    all_ids = ids(search(catalog))
    pages = [search(catalog, page=p, per_page=3) for p in (1, 2, 3)]
    assert [r[1] for r in pages] == [4, 4, 4]
    assert ids(pages[0]) + ids(pages[1]) == all_ids
    assert ids(pages[2]) == []
    assert ids(search(catalog, page=2, per_page=1)) == all_ids[1:2]
    assert len(search(catalog, per_page=100)[0]) == 4


@pytest.mark.parametrize("kwargs", [
    {"page": 0}, {"per_page": 0}, {"per_page": 101},
    {"date_from": date(2022, 1, 2), "date_to": date(2022, 1, 1)},
])
def test_bad_search_parameters(catalog: Session, kwargs: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        search(catalog, **kwargs)


def test_bad_search_boxes() -> None:
    for box in ((10, 0, 5, 1), (0, 10, 1, 5), (-181, 0, 0, 1), (0, 0, 0, 91),
                (float("nan"), 0, 1, 1)):
        with pytest.raises(BadRequest):
            BBox(*box)


def test_suspended_members_entries_disappear(catalog: Session) -> None:
    set_status(catalog, "ru-lotl", MEMBER_SUSPENDED, NOW)
    catalog.commit()
    assert ids(search(catalog)) == ["cn-ntlnp/leopards", "mn-wwf/daurian-cranes"]
    assert ids(search(catalog, taxon="Grus vipio")) == ["mn-wwf/daurian-cranes"]
    with pytest.raises(NotFound):
        get_entry(catalog, "ru-lotl", "tigers")
    set_status(catalog, "ru-lotl", MEMBER_ACTIVE, NOW)
    catalog.commit()
    assert search(catalog)[1] == 4
    assert get_entry(catalog, "ru-lotl", "tigers").dataset == "tigers"


def test_get_entry_of_unknown_dataset(catalog: Session) -> None:
    for member, name in (("ru-lotl", "nothing"), ("xx-none", "tigers")):
        with pytest.raises(NotFound):
            get_entry(catalog, member, name)


# -- invariant: the registry holds no rows, identifiers or fine coordinates ---------


_JWS = re.compile(r"[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}")
# A decimal number standing alone: not inside a version ("1.0.2"), a URL path
# (".../zero/1.0/..."), a licence id ("CC0-1.0"), an IP address or a time.
_DECIMAL = re.compile(r"(?<![\w./:-])-?\d{1,3}\.\d+(?![\w./:])")


def _b64(segment: str) -> str:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode("utf-8",
                                                                                "replace")


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _flatten(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _flatten(v)
    elif isinstance(value, str):
        yield value
        for match in _JWS.finditer(value):  # look inside signed documents too
            header, payload, _ = match.group(0).split(".")
            for part in (header, payload):
                text = _b64(part)
                yield text
                with contextlib.suppress(ValueError):
                    yield from _flatten(json.loads(text))
    else:
        yield value


def registry_dump(engine: sa.Engine) -> dict[tuple[str, str], list[Any]]:
    """Every value of every column of every table, JSON decoded and JWS payloads opened."""
    inspector = sa.inspect(engine)
    dump: dict[tuple[str, str], list[Any]] = {}
    meta = sa.MetaData()
    with engine.connect() as conn:
        for name in inspector.get_table_names():
            table = sa.Table(name, meta, autoload_with=conn)
            for row in conn.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    if isinstance(value, str) and value[:1] in "[{":
                        with contextlib.suppress(ValueError):
                            value = json.loads(value)
                    dump.setdefault((name, column), []).extend(_flatten(value))
    return dump


def source_identifiers(camtrap: Path, arocha: Path) -> set[str]:
    def column(path: Path, name: str) -> set[str]:
        with path.open(newline="", encoding="utf-8") as fh:
            return {row[name] for row in csv.DictReader(fh) if row[name]}

    return (column(camtrap / "deployments.csv", "deploymentID")
            | column(camtrap / "deployments.csv", "locationID")
            | column(camtrap / "media.csv", "mediaID")
            | column(camtrap / "observations.csv", "observationID")
            | column(camtrap / "observations.csv", "eventID")
            | column(arocha / "events.csv", "eventID")
            | column(arocha / "occurrences.csv", "occurrenceID")
            | {"Reinaert"})  # the example's named individual


def assert_no_raw_data(registry_engine: sa.Engine, identifiers: set[str]) -> None:
    dump = registry_dump(registry_engine)
    assert dump.get(("catalog", "document")), "nothing was published"
    problems: list[str] = []
    for (table, column), values in dump.items():
        for value in values:
            if isinstance(value, float) and not value.is_integer():
                problems.append(f"{table}.{column}: float {value}")
            text = str(value)
            leaked = [i for i in identifiers if i in text]
            if leaked:
                problems.append(f"{table}.{column}: identifiers {leaked[:3]}")
            if table.startswith("catalog"):
                for number in _DECIMAL.findall(text):
                    if -180 <= float(number) <= 180:
                        problems.append(f"{table}.{column}: coordinate-like {number}")
    assert not problems, problems[:20]


def test_registry_database_holds_no_raw_data(
        session: Session, members: Members, registry_engine: sa.Engine, engine: sa.Engine,
        camtrap_example: Path, arocha: Path) -> None:
    importer = Importer(engine)
    importer.import_camtrap(camtrap_example)
    importer.import_dwc(arocha / "events.csv", arocha / "occurrences.csv", name="arocha",
                        title="Waterbird counts at Sabaki River Mouth and Mida Creek")
    with Session(engine) as node_session:
        for member, name in (("ru-lotl", "camtrap-dp-example-dataset"),
                             ("cn-ntlnp", "arocha")):
            doc = document(member, get_dataset(node_session, name))
            publish(session, members, member, doc)
    assert search(session, taxon="Limosa lapponica")[1] == 1
    assert_no_raw_data(registry_engine, source_identifiers(camtrap_example, arocha))


def test_the_scan_would_catch_a_leak(session: Session, members: Members,
                                     registry_engine: sa.Engine) -> None:
    """The invariant check is not vacuous: smuggled rows and coordinates are found."""
    publish(session, members)
    entry = get_entry(session, "ru-lotl", "tigers")
    entry.document = {**entry.document, "x": [{"observationID": "705e6036", "lat": 51.181}]}
    session.commit()
    with pytest.raises(AssertionError) as info:
        assert_no_raw_data(registry_engine, {"705e6036"})
    assert "identifiers" in str(info.value) and "float 51.181" in str(info.value)


# -- over HTTP, with real tokens ---------------------------------------------------

PROBLEM = "application/problem+json"


class CatalogClient:
    """The live registry, its members, and helpers that talk to /catalog with real tokens."""

    def __init__(self, registry: RegistryHarness) -> None:
        self.registry = registry
        self.tokens: dict[str, TokenClient] = {}
        for member_id in ("ru-lotl", "cn-ntlnp", "mn-wwf"):
            institution = registry.add_member(member_id)
            # The node's own OAuth client (it caches tokens by the registry's clock).
            self.tokens[member_id] = TokenClient(
                registry.url, registry.token_endpoint, member_id, institution.key,
                http=registry.http, clock=registry.clock)

    def key(self, member: str) -> SigningKey:
        return self.registry.members[member].key

    def now(self) -> datetime:
        return self.registry.clock()

    def bearer(self, member: str, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[member].token('registry', scope)}"}

    def document(self, member: str = "ru-lotl", ds: Dataset | None = None,
                 **fields: Any) -> dict[str, Any]:
        return document(member, ds, now=self.now(), **fields)

    def post(self, member: str, body: Any = None, *, content: bytes | None = None,
             scope: str = "catalog:write", headers: dict[str, str] | None = None,
             ) -> httpx.Response:
        all_headers = {**self.bearer(member, scope), **(headers or {})}
        if content is not None:
            return self.registry.http.post("/catalog", content=content,
                                           headers={"Content-Type": "application/json",
                                                    **all_headers})
        return self.registry.http.post("/catalog", json=body, headers=all_headers)

    def publish(self, member: str = "ru-lotl", doc: dict[str, Any] | None = None, *,
                signer: str | None = None) -> httpx.Response:
        jws = sign_entry(doc if doc is not None else self.document(member),
                         self.key(signer or member))
        return self.post(member, {"entry": jws})

    def get(self, path: str, params: Any = None, *, member: str = "cn-ntlnp",
            scope: str = "catalog:read") -> httpx.Response:
        return self.registry.http.get(path, params=params, headers=self.bearer(member, scope))


@pytest.fixture
def http(registry: RegistryHarness) -> CatalogClient:
    """A live registry serving the catalog API, with three active members."""
    if "catalog" not in registry.app.blueprints:  # until create_app registers it
        api = registry.app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
        api.register_blueprint(catalog_blueprint)
    return CatalogClient(registry)


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"]
    return body


def test_publish_and_fetch_over_http(http: CatalogClient) -> None:
    doc = http.document()
    response = http.publish(doc=doc)
    assert response.status_code == 200, response.text
    body = response.json()
    signature = body.pop("signature")
    assert body == doc
    # Anyone holding the member's keys (from the trust list) re-verifies offline.
    verified = verify_compact(signature, KeySet([http.key("ru-lotl").public_key]),
                              expected_typ=CATALOG_TYP)
    assert json.loads(verified.payload) == doc
    fetched = http.get("/catalog/ru-lotl/tigers")
    assert fetched.status_code == 200
    assert fetched.json() == {**doc, "signature": signature}


def test_entry_signed_by_another_member_is_refused_over_http(http: CatalogClient) -> None:
    problem = problem_of(http.publish("ru-lotl", signer="cn-ntlnp"), 400)
    assert "signature does not verify" in problem["detail"]
    # cn-ntlnp's own, validly signed entry, sent with ru-lotl's token.
    jws = sign_entry(http.document("cn-ntlnp"), http.key("cn-ntlnp"))
    problem_of(http.post("ru-lotl", {"entry": jws}), 400)


def test_entry_outside_the_senders_namespace_is_refused_over_http(http: CatalogClient) -> None:
    doc = http.document("ru-lotl", country="CN")
    problem = problem_of(http.publish("cn-ntlnp", doc), 403)
    assert "outside the sender's namespace" in problem["detail"]


@pytest.mark.parametrize(("content", "status"), [
    (b'{"entry": "abc.def', 400),             # malformed JSON
    (b"\xff\xfe not utf-8", 400),
    (b"[]", 422),                             # not an object
    (b"{}", 422),                             # no entry
    (b'{"entry": 5}', 422),
    (b'{"entry": "a.b.c.d.e.f", "extra": 1}', 422),
    (b'{"entry": "short"}', 422),
])
def test_malformed_bodies_are_problems(http: CatalogClient, content: bytes, status: int) -> None:
    problem_of(http.post("ru-lotl", content=content), status)


def test_oversize_bodies_are_refused(http: CatalogClient) -> None:
    problem_of(http.post("ru-lotl", {"entry": "a" * (300 * 1024)}), 413)
    # Under the app-wide limit, but larger than any entry may be.
    problem_of(http.post("ru-lotl", {"entry": "a." * (40 * 1024) + "b"}), 422)


@pytest.mark.parametrize("change", [
    {"observations": [{"observationID": "x1"}]},
    {"spatial": {"bbox": [130.5, 42, 132, 44]}},
    {"spatial": {"bbox": [130, 42, 132, 43.25]}},
    {"spatial": {"bbox": [-200, 42, 132, 44]}},
    {"spatial": {"bbox": [130, 42, 132, 95]}},
    {"description": "Den at 43.1234, 131.5678."},
])
def test_bad_documents_are_refused_over_http(http: CatalogClient, change: dict[str, Any]) -> None:
    problem_of(http.publish(doc=http.document(**change)), 400)


def test_wrong_typ_is_refused_over_http(http: CatalogClient) -> None:
    jws = sign_compact(canonical_json(http.document()), http.key("ru-lotl"), typ="JWT")
    problem_of(http.post("ru-lotl", {"entry": jws}), 400)


def test_replayed_stale_entry_is_refused_over_http(http: CatalogClient) -> None:
    jws = sign_entry(http.document(), http.key("ru-lotl"))
    http.registry.clock.advance(11 * 60)
    problem = problem_of(http.post("ru-lotl", {"entry": jws}), 400)
    assert "stale" in problem["detail"]


def test_replaying_an_older_entry_is_a_conflict(http: CatalogClient) -> None:
    old = sign_entry(http.document(), http.key("ru-lotl"))
    assert http.post("ru-lotl", {"entry": old}).status_code == 200
    http.registry.clock.advance(60)
    assert http.publish(doc=http.document(ds=dataset(title="Newer"))).status_code == 200
    problem_of(http.post("ru-lotl", {"entry": old}), 409)
    assert http.get("/catalog/ru-lotl/tigers").json()["title"] == "Newer"


def test_tokens_and_scopes_are_required(http: CatalogClient) -> None:
    jws = sign_entry(http.document(), http.key("ru-lotl"))
    no_token = http.registry.http.post("/catalog", json={"entry": jws})
    problem_of(no_token, 401)
    problem_of(http.post("ru-lotl", {"entry": jws}, scope="catalog:read"), 403)
    problem_of(http.registry.http.get("/catalog"), 401)
    problem_of(http.get("/catalog", scope="catalog:write"), 403)
    problem_of(http.registry.http.get("/catalog/ru-lotl/tigers"), 401)


@pytest.fixture
def published(http: CatalogClient) -> CatalogClient:
    """Three members' entries, published over HTTP."""
    docs = [
        ("ru-lotl", dataset("tigers", taxa=["Panthera tigris altaica"])),
        ("ru-lotl", dataset("cranes", profile="dwc-event", title="Khanka crane counts",
                            taxa=["Grus vipio"], temporal_start="2015-03-01",
                            temporal_end="2019-11-30", bbox_west=131.9, bbox_south=44.5,
                            bbox_east=132.9, bbox_north=45.3)),
        ("cn-ntlnp", dataset("leopards", title="NTLNP camera traps",
                             taxa=["Panthera pardus orientalis"], temporal_start="2023-01-01",
                             temporal_end="2023-06-30")),
        ("mn-wwf", dataset("daurian-cranes", profile="dwc-event", title="Daurian cranes",
                           taxa=["Antigone vipio", "Grus monacha"], bbox_west=115.2,
                           bbox_south=49.6, bbox_east=116.1, bbox_north=50.2)),
    ]
    for member, ds in docs:
        response = http.publish(member, http.document(member, ds))
        assert response.status_code == 200, response.text
    return http


def found(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["entries"]]


def test_search_over_http(published: CatalogClient) -> None:
    body = published.get("/catalog").json()
    assert set(body) == {"entries", "total", "page", "per_page"}
    assert (body["total"], body["page"], body["per_page"]) == (4, 1, 20)
    assert [e["id"] for e in body["entries"]] == [
        "cn-ntlnp/leopards", "mn-wwf/daurian-cranes", "ru-lotl/cranes", "ru-lotl/tigers"]
    assert all(e["signature"].count(".") == 2 for e in body["entries"])
    get = published.get
    assert found(get("/catalog", {"q": "CRANE"})) == ["mn-wwf/daurian-cranes",
                                                      "ru-lotl/cranes"]
    # Published by ru-lotl as "Grus vipio", found as "Antigone vipio", and the reverse.
    assert found(get("/catalog", {"taxon": "Antigone vipio"})) == ["mn-wwf/daurian-cranes",
                                                                   "ru-lotl/cranes"]
    assert found(get("/catalog", {"taxon": "Grus vipio"})) == ["mn-wwf/daurian-cranes",
                                                               "ru-lotl/cranes"]
    assert found(get("/catalog", {"taxon": "Panthera tigris tigris"})) == ["ru-lotl/tigers"]
    assert found(get("/catalog", {"country": "ru"})) == ["ru-lotl/cranes", "ru-lotl/tigers"]
    assert found(get("/catalog", {"from": "2023-02-01", "to": "2023-03-01"})) == [
        "cn-ntlnp/leopards"]
    assert found(get("/catalog", {"bbox": "110,45,120,55"})) == ["mn-wwf/daurian-cranes"]
    assert found(get("/catalog", {"bbox": "132.5,44.5,140,46"})) == ["ru-lotl/cranes"]
    assert found(get("/catalog", {"bbox": "131.5,43.5,131.6,44.5"})) == [
        "cn-ntlnp/leopards", "ru-lotl/cranes", "ru-lotl/tigers"]
    assert found(get("/catalog", {"taxon": "Grus vipio", "country": "MN", "q": "daurian"})) == [
        "mn-wwf/daurian-cranes"]


def test_pagination_over_http(published: CatalogClient) -> None:
    first = published.get("/catalog", {"per_page": 3}).json()
    second = published.get("/catalog", {"per_page": 3, "page": 2}).json()
    assert (first["total"], second["total"], second["page"], second["per_page"]) == (4, 4, 2, 3)
    assert [e["id"] for e in first["entries"] + second["entries"]] == [
        "cn-ntlnp/leopards", "mn-wwf/daurian-cranes", "ru-lotl/cranes", "ru-lotl/tigers"]
    assert published.get("/catalog", {"page": 9}).json()["entries"] == []


BAD_QUERIES: list[dict[str, str]] = [
    {"page": "0"}, {"page": "x"}, {"per_page": "101"}, {"per_page": "0"}, {"per_page": "1.5"},
    {"page": "99999999999999999999"},
    {"bbox": "1,2,3"}, {"bbox": "a,b,c,d"}, {"bbox": "nan,0,1,1"}, {"bbox": "0,0,inf,1"},
    {"bbox": "10,0,5,1"}, {"bbox": "0,-91,1,1"}, {"bbox": ""},
    {"from": "2020-13-01"}, {"to": "yesterday"}, {"country": "RUS"}, {"country": "1A"},
    {"q": ""}, {"q": "x" * 201}, {"taxon": "t" * 201}, {"sort": "title"},
    {"from": "2022-02-01", "to": "2022-01-01"},
]


def test_bad_query_parameters_are_problems(published: CatalogClient) -> None:
    # One registry for all cases (each would otherwise start its own).
    wrong = []
    for params in BAD_QUERIES:
        response = published.get("/catalog", params)
        if not (400 <= response.status_code < 500
                and response.headers["Content-Type"] == PROBLEM):
            wrong.append((params, response.status_code, response.text[:200]))
    assert not wrong


def test_suspended_members_entries_disappear_over_http(published: CatalogClient) -> None:
    published.registry.set_status("ru-lotl", MEMBER_SUSPENDED)
    assert found(published.get("/catalog")) == ["cn-ntlnp/leopards", "mn-wwf/daurian-cranes"]
    assert found(published.get("/catalog", {"taxon": "Antigone vipio"})) == [
        "mn-wwf/daurian-cranes"]
    problem_of(published.get("/catalog/ru-lotl/tigers"), 404)


@pytest.mark.parametrize("path", ["/catalog/ru-lotl/nothing", "/catalog/xx-none/tigers",
                                  "/catalog/ru-lotl", "/catalog/a/b/c"])
def test_unknown_entries_are_404_problems(published: CatalogClient, path: str) -> None:
    problem_of(published.get(path), 404)


@pytest.fixture
def node_engine(make_database_url: Callable[[str], str]) -> Iterator[sa.Engine]:
    """A node database separate from the registry's (the registry fixture uses database_url)."""
    from node.db import upgrade as upgrade_node

    eng = make_engine(make_database_url("node"))
    upgrade_node(eng)
    yield eng
    eng.dispose()


def test_registry_holds_no_raw_data_after_publishing_over_http(
        http: CatalogClient, node_engine: sa.Engine, camtrap_example: Path,
        arocha: Path) -> None:
    """DESIGN.md §2.1 end to end: real imports, real node-side entries, real tokens."""
    importer = Importer(node_engine)
    importer.import_camtrap(camtrap_example)
    importer.import_dwc(arocha / "events.csv", arocha / "occurrences.csv", name="arocha")
    registry = http.registry
    with Session(node_engine) as node_session:
        for member, name in (("ru-lotl", "camtrap-dp-example-dataset"), ("mn-wwf", "arocha")):
            # What the node CLI does: build, sign, fetch a token, POST.
            entry = catalog_entry(get_dataset(node_session, name), member_id=member,
                                  country=member[:2].upper(), contact=None,
                                  tiers=["aggregate"], now=registry.clock())
            response = registry.http.post(
                "/catalog", json={"entry": sign_entry(entry, http.key(member))},
                headers={"Authorization": "Bearer " + http.tokens[member].token(
                    "registry", "catalog:write")})
            assert response.status_code == 200, response.text
    assert found(http.get("/catalog", {"taxon": "Vulpes vulpes"})) == [
        "ru-lotl/camtrap-dp-example-dataset"]
    assert_no_raw_data(make_engine(registry.settings.database_url),
                       source_identifiers(camtrap_example, arocha))
