"""The engine: (policy, terms, requester, now) -> plan, its steps, lines, digest and camera rule."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.canonical import canonical_json
from policies.engine import AREA_APPLIES_TO, PSEUDONYMIZED_FIELDS, TIME_FIELDS, Plan, compile
from policies.errors import PolicyError, TermsRefused
from policies.policy import PURPOSES, Policy, default_policy, load_policy
from policies.terms import Terms, load_terms
from policies.transforms import round_coordinate

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
KEY = b"agreement-key-0123456789abcdef!!"
CAMTRAP = ("deployments", "media", "observations", "individuals")
DWC = ("event", "occurrence")

POLICY: dict[str, Any] = {
    "tiers": {
        "aggregate": {"aggregate_only": True},
        "generalized": {
            "coarsen_time": "day",
            "withhold_fields": {
                "observations": ["classifiedBy", "observationComments"],
                "media": ["filePath", "fileName", "exifData"],
                "deployments": ["setupBy", "locationName"],
            },
            "pseudonymize_individuals": True,
        },
        "full": {"apply_sensitivity": False},
    },
    "sensitivity": {"Capreolus pygargus": 1},
    "embargo_days": {"Panthera tigris altaica": 90, "Panthera pardus orientalis": 90},
    "purposes": list(PURPOSES),
    "partners": ["*"],
    "max_duration_days": 730,
}


def _policy(**changes: Any) -> Policy:
    doc = copy.deepcopy(POLICY)
    doc.update(changes)
    return load_policy(doc)


def _plan(terms: dict[str, Any] | None = None, *, policy: Policy | None = None,
          requester: str = "cn-ntlnp", now: datetime = NOW, key: bytes | None = KEY,
          resources: tuple[str, ...] | None = CAMTRAP) -> Plan:
    doc = {"purpose": "joint-monitoring", "tier": "generalized", **(terms or {})}
    return compile(policy or _policy(), load_terms(doc), requester, now, pseudonym_key=key,
                   resources=resources)


# --- refusals ------------------------------------------------------------------------------


def test_compile_checks_the_terms_first() -> None:
    with pytest.raises(TermsRefused,
                       match=r"^fields\.observations\.classifiedBy: terms would widen"):
        _plan({"fields": {"observations": ["classifiedBy"]}})
    with pytest.raises(TermsRefused, match=r"^requester:"):
        _plan(policy=_policy(partners=["ru-lotl"]), requester="cn-ntlnp")


def test_compile_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _plan(now=datetime(2026, 11, 22, 10, 30))


@pytest.mark.parametrize("key", [None, b"", b"short"])
def test_pseudonymizing_tier_needs_a_real_key(key: bytes | None) -> None:
    with pytest.raises(PolicyError, match=r"^pseudonym_key: tier generalized pseudonymizes"):
        _plan(key=key)


def test_tiers_without_pseudonyms_need_no_key_and_keep_none() -> None:
    plan = _plan({"tier": "full"}, key=KEY)
    assert not plan.pseudonymize and plan.pseudonym_key is None
    assert _plan({"tier": "aggregate"}, key=None).pseudonym_key is None


def test_unknown_resources_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown resources: photos"):
        _plan(resources=("photos",))


# --- the generalized plan ------------------------------------------------------------------

KINDS_IN_ORDER = ["projection", "scrub", "filter-taxa", "drop-taxa", "filter-time",
                  "filter-area", "embargo", "generalize", "generalize-camera", "pseudonymize",
                  "coarsen-time", "closure"]


def test_steps_come_in_the_documented_order() -> None:
    plan = _plan({"taxa": ["Panthera pardus orientalis", "Capreolus pygargus"],
                  "time_from": "2024-01-01", "time_to": "2024-12-31",
                  "bbox": [130, 42, 132, 44]})
    kinds = [step.kind for step in plan.steps]
    # exifData, the one free-text field of a camera-trap dataset, is withheld: no scrub.
    assert sorted(set(kinds), key=KINDS_IN_ORDER.index) == [
        k for k in KINDS_IN_ORDER if k != "scrub"]
    positions = [KINDS_IN_ORDER.index(k) for k in kinds]
    assert positions == sorted(positions)


def test_generalized_plan_attributes() -> None:
    plan = _plan()
    assert (plan.tier, plan.purpose, plan.requester) == ("generalized", "joint-monitoring",
                                                         "cn-ntlnp")
    assert not plan.aggregate_only
    assert plan.withheld["observations"] == {"classifiedBy", "observationComments"}
    assert plan.withheld["deployments"] == {"setupBy", "locationName"}
    assert plan.withheld["media"] == {"filePath", "fileName", "exifData"}
    assert set(plan.withheld) == {"deployments", "media", "observations", "individuals",
                                  "event", "occurrence"}
    assert plan.withheld["event"] == frozenset()      # not a resource of this dataset
    assert plan.drop_taxa >= {"Capreolus pygargus", "Capreolus capreolus pygargus"}
    assert plan.taxa is None and plan.bbox is None
    assert plan.time_from is None and plan.time_to is None
    assert plan.default_precision is None
    assert plan.coarsen_time == "day"
    assert plan.pseudonymize and plan.pseudonym_key == KEY


def test_sensitive_taxa_and_their_synonyms_get_their_category_rounding() -> None:
    precision = _plan().taxon_precision
    for name in ("Panthera tigris altaica", "Panthera tigris tigris", "Panthera tigris amurensis",
                 "Panthera pardus orientalis", "Panthera pardus japonensis",
                 "Panthera uncia", "Uncia uncia", "Felis uncia"):
        assert precision[name] == 0.1, name
    for name in ("Platalea minor", "Grus monacha", "Antigone monacha", "Antigone vipio",
                 "Grus vipio"):
        assert precision[name] == 0.01, name
    # A record identified only to species may be the sensitive subspecies.
    assert precision["Panthera pardus"] == 0.1 and precision["Panthera tigris"] == 0.1
    assert "Capreolus pygargus" not in precision       # category 1: dropped, not rounded
    assert "Cervus canadensis" not in precision


def test_embargo_expands_synonyms_and_cuts_off_at_midnight_before_now_minus_days() -> None:
    plan = _plan()
    cutoff = datetime(2026, 8, 24, tzinfo=UTC)   # 2026-11-22T10:30Z - 90 days, floored
    assert cutoff <= NOW - timedelta(days=90) < cutoff + timedelta(days=1)
    for name in ("Panthera tigris altaica", "Panthera tigris tigris", "Panthera tigris",
                 "Panthera pardus orientalis", "Panthera pardus japonensis"):
        assert plan.embargo[name] == cutoff, name
    assert "Panthera uncia" not in plan.embargo


def test_the_plan_explains_itself() -> None:
    lines = _plan().explain()
    assert lines[0] == "tier generalized for cn-ntlnp, purpose joint-monitoring"
    assert "observations: classifiedBy, observationComments withheld (tier generalized)" in lines
    assert ("observations: records of Panthera tigris altaica newer than 2026-08-24 00:00 UTC"
            " (embargo 90 days) withheld") in lines
    assert ("observations: records of Capreolus pygargus withheld entirely (category 1);"
            " their number is reported") in lines
    assert any(line.startswith("deployments: latitude/longitude rounded to 0.1° for Panthera"
                               " pardus orientalis (category 2") for line in lines)
    assert any(line.startswith("deployments: latitude/longitude rounded to 0.01° for Grus"
                               " monacha (category 3)") for line in lines)
    assert ("deployments: a camera that recorded any generalized taxon is generalized for all"
            " its rows and its deployment record") in lines
    assert any("pseudonym keyed to this agreement" in line for line in lines)
    assert any("coarsened to the start of the day" in line for line in lines)
    assert lines == [lines[0], *(step.line for step in _plan().steps)]


def test_lines_name_only_the_resources_of_the_dataset() -> None:
    camtrap = "\n".join(_plan(resources=CAMTRAP).explain())
    dwc = "\n".join(_plan(resources=DWC).explain())
    assert "event" not in camtrap.replace("eventStart", "").replace("eventEnd", "")
    assert "occurrence" not in camtrap
    assert "deployments" not in dwc and "observations" not in dwc
    assert "event: latitude/longitude rounded to 0.1° for Panthera uncia (category 2)" in dwc
    assert "occurrence.organismID: replaced by a pseudonym" in dwc
    everything = "\n".join(_plan(resources=None).explain())
    assert "observations/occurrence: records of Panthera tigris altaica" in everything


def test_generalizing_also_blanks_fields_that_would_locate_or_time_more_finely() -> None:
    policy = _policy(tiers={"open": {"coarsen_time": "month"}})
    plan = _plan({"tier": "open"}, policy=policy, resources=None)
    assert plan.withheld["media"] == {"exifData"}
    assert {"verbatimLatitude", "verbatimLongitude", "footprintWKT", "eventTime",
            "verbatimEventDate", "day", "startDayOfYear"} <= plan.withheld["event"]
    assert any("exifData withheld (would locate records more finely" in line
               for line in plan.explain())
    full = _plan({"tier": "full"}, resources=None)
    assert all(not fields for fields in full.withheld.values())


def test_terms_narrow_fields_but_keep_keys_and_required_fields() -> None:
    plan = _plan({"fields": {"observations": ["scientificName", "count"]}})
    released = {"scientificName", "count", "observationID", "deploymentID", "mediaID",
                "eventStart", "eventEnd", "observationLevel", "observationType"}
    assert "individualID" in plan.withheld["observations"]
    assert not released & plan.withheld["observations"]
    assert plan.withheld["media"] == {"filePath", "fileName", "exifData"}   # not narrowed


def test_terms_filters_become_plan_filters() -> None:
    plan = _plan({"taxa": ["Grus vipio"], "time_from": "2024-01-01", "time_to": "2024-12-31",
                  "bbox": [130.5, 42.4, 131.6, 43.6]})
    assert plan.taxa == frozenset({"Antigone vipio", "Grus vipio"})
    assert plan.in_taxa("Grus  VIPIO") and plan.in_taxa("Antigone vipio")
    assert not plan.in_taxa("Grus monacha")
    assert plan.time_from == datetime(2024, 1, 1, tzinfo=UTC)
    assert plan.time_to == datetime(2025, 1, 1, tzinfo=UTC)     # end exclusive
    assert plan.bbox == (130.5, 42.4, 131.6, 43.6)
    area = next(s for s in plan.steps if s.kind == "filter-area")
    assert area.params["applies_to"] == AREA_APPLIES_TO
    assert "whole cell it is rounded to is inside" in area.line


def test_full_tier_skips_sensitivity_but_not_embargo() -> None:
    plan = _plan({"tier": "full"})
    assert plan.taxon_precision == {} and plan.drop_taxa == frozenset()
    assert plan.embargo_cutoff("Panthera tigris altaica") == datetime(2026, 8, 24, tzinfo=UTC)
    assert plan.deployment_precision(["Panthera pardus orientalis"]) is None
    assert [s.kind for s in plan.steps] == ["embargo", "embargo", "closure"]
    assert plan.data_generalizations() == ""


def test_aggregate_plan_is_filters_then_one_aggregate_step() -> None:
    plan = _plan({"tier": "aggregate"}, key=None)
    assert plan.aggregate_only
    assert [s.kind for s in plan.steps] == ["drop-taxa", "embargo", "embargo", "aggregate"]
    assert not plan.pseudonymize and plan.coarsen_time is None
    assert all(not f for f in plan.withheld.values())
    cells = plan.steps[-1].params["min_cell_degrees"]
    assert cells["Panthera uncia"] == 0.1 and cells["Platalea minor"] == 0.01
    assert "aggregate counts only" in plan.data_generalizations()


def test_default_precision_rounds_every_location() -> None:
    policy = _policy(tiers={"coarse": {"default_precision": 0.01, "apply_sensitivity": False}})
    plan = _plan({"tier": "coarse"}, policy=policy)
    assert plan.default_precision == 0.01
    assert plan.deployment_precision([]) == 0.01
    assert plan.deployment_precision(["Cervus canadensis"]) == 0.01
    assert "every latitude/longitude rounded to at least 0.01°" in "\n".join(plan.explain())


def test_default_policy_compiles() -> None:
    plan = compile(default_policy(), Terms(purpose="research", tier="generalized"), "ru-lotl",
                   NOW, pseudonym_key=KEY)
    assert plan.deployment_precision(["Panthera tigris altaica"]) == 0.1


# --- taxon matching in any spelling -----------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("Panthera pardus orientalis", 0.1),
    ("panthera  PARDUS orientalis", 0.1),
    ("Panthera pardus", 0.1),                      # species of a sensitive subspecies
    ("Panthera uncia uncioides", 0.1),             # subspecies of a sensitive species
    ("Uncia uncia", 0.1),
    ("Grus vipio Pallas, 1811", 0.01),             # authorship
    ("Grus japonensis", None),
    ("Cervus canadensis xanthopygus", None),
    ("", None),
])
def test_precision_of_any_spelling(name: str, expected: float | None) -> None:
    assert _plan().precision_of(name) == expected


def test_dropped_and_embargoed_names_in_any_spelling() -> None:
    plan = _plan()
    assert plan.is_dropped("Capreolus capreolus pygargus")
    assert plan.is_dropped("capreolus PYGARGUS")
    assert not plan.is_dropped("Capreolus capreolus")
    assert plan.embargo_cutoff("Panthera tigris") == datetime(2026, 8, 24, tzinfo=UTC)
    assert plan.embargo_cutoff("Panthera uncia") is None


# --- generalization follows the camera ------------------------------------------------------


@pytest.mark.parametrize(("taxa", "expected"), [
    ([], None),
    (["Cervus canadensis xanthopygus", "Sus scrofa"], None),
    (["Sus scrofa", "Grus monacha"], 0.01),
    (["Grus monacha", "Panthera tigris altaica"], 0.1),    # the coarsest wins
    (["Panthera tigris tigris"], 0.1),                     # synonym
    (["Capreolus pygargus"], 0.1),                         # category 1 counts as coarsest
    (["", "Sus scrofa"], None),
])
def test_deployment_precision(taxa: list[str], expected: float | None) -> None:
    assert _plan().deployment_precision(taxa) == expected


POOL = ["Sus scrofa", "Cervus canadensis xanthopygus", "Grus monacha", "Grus vipio",
        "Platalea minor", "Panthera uncia", "Panthera pardus", "Capreolus pygargus",
        "Meles leucurus", "Lynx lynx", "Panthera tigris tigris"]
PLANS = {
    "generalized": _plan(),
    "overrides": _plan(policy=_policy(sensitivity={"Lynx lynx": 4, "Meles leucurus": 3})),
    "default 0.001": _plan({"tier": "coarse"}, policy=_policy(
        tiers={"coarse": {"default_precision": 0.001}},
        sensitivity={"Sus scrofa": 4})),
}


@given(st.sampled_from(sorted(PLANS)), st.sets(st.sampled_from(POOL)),
       st.sets(st.sampled_from(POOL)))
def test_adding_taxa_never_makes_a_camera_finer(plan_name: str, some: set[str],
                                                more: set[str]) -> None:
    plan = PLANS[plan_name]
    before = plan.deployment_precision(some) or 0.0
    after = plan.deployment_precision(some | more) or 0.0
    assert after >= before
    for name in more:
        taxon_rule = plan.precision_of(name) or (0.1 if plan.is_dropped(name) else 0.0)
        assert after >= taxon_rule


@given(st.sets(st.sampled_from(POOL), min_size=1),
       st.floats(min_value=-90, max_value=90, allow_nan=False))
def test_no_released_coordinate_is_finer_than_its_category(taxa: set[str],
                                                           latitude: float) -> None:
    plan = PLANS["generalized"]
    precision = plan.deployment_precision(taxa)
    if precision is None:
        return
    released = round_coordinate(latitude, precision)
    for name in taxa:
        allowed = plan.precision_of(name)
        if allowed is not None:
            steps = released / allowed
            assert abs(steps - round(steps)) < 1e-6   # on the category's grid (or coarser)


# --- identity: JSON, digest, texts ------------------------------------------------------------


def test_plan_json_is_canonical_and_has_no_key() -> None:
    plan = _plan({"time_from": "2024-01-01", "bbox": [130, 42, 132, 44]})
    document = plan.to_json()
    text = canonical_json(document).decode()
    assert KEY.decode() not in text and KEY.hex() not in text
    assert "pseudonym_key" not in document
    assert KEY.decode() not in repr(plan)
    assert json.loads(text)["embargo"]["Panthera tigris altaica"] == "2026-08-24T00:00:00Z"
    assert document["time_from"] == "2024-01-01T00:00:00Z"
    assert [s["kind"] for s in document["steps"]] == [s.kind for s in plan.steps]


def test_digest_is_sha256_of_canonical_json_and_stable() -> None:
    plan = _plan()
    expected = "sha256:" + hashlib.sha256(canonical_json(plan.to_json())).hexdigest()
    assert plan.digest() == expected
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", plan.digest())
    assert _plan().digest() == plan.digest()                        # deterministic
    assert _plan(now=NOW + timedelta(hours=5)).digest() == plan.digest()   # same UTC day
    assert _plan(key=b"another-agreement-key-0123456789").digest() == plan.digest()


BASE_TERMS = {"time_from": "2024-01-01", "time_to": "2024-12-31", "bbox": [130, 42, 132, 44]}
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("purpose", {"terms": {"purpose": "research"}}),
    ("tier", {"terms": {"tier": "full"}}),
    ("requester", {"requester": "ru-lotl"}),
    ("time_from", {"terms": {"time_from": "2024-01-02"}}),
    ("time_to", {"terms": {"time_to": "2024-12-30"}}),
    ("bbox", {"terms": {"bbox": [130, 42, 132, 44.5]}}),
    ("taxa", {"terms": {"taxa": ["Panthera uncia"]}}),
    ("fields", {"terms": {"fields": {"observations": ["count"]}}}),
    ("now (next day)", {"now": NOW + timedelta(days=1)}),
    ("embargo days", {"policy": _policy(embargo_days={"Panthera tigris altaica": 30})}),
    ("sensitivity", {"policy": _policy(sensitivity={"Panthera uncia": 3})}),
    ("withheld field", {"policy": _policy(tiers={**POLICY["tiers"], "generalized": {
        **POLICY["tiers"]["generalized"], "withhold_fields": {"observations": ["sex"]}}})}),
    ("coarsening", {"policy": _policy(tiers={**POLICY["tiers"], "generalized": {
        **POLICY["tiers"]["generalized"], "coarsen_time": "month"}})}),
    ("default precision", {"policy": _policy(tiers={**POLICY["tiers"], "generalized": {
        **POLICY["tiers"]["generalized"], "default_precision": 0.1}})}),
    ("pseudonyms", {"policy": _policy(tiers={**POLICY["tiers"], "generalized": {
        **POLICY["tiers"]["generalized"], "pseudonymize_individuals": False}})}),
    ("resources", {"resources": DWC}),
]


@pytest.mark.parametrize("change", [pytest.param(c, id=name) for name, c in VARIANTS])
def test_digest_changes_with_any_change_of_the_plan(change: dict[str, Any]) -> None:
    base = _plan(BASE_TERMS)
    terms = {**BASE_TERMS, **change.get("terms", {})}
    other = _plan(terms, policy=change.get("policy"), requester=change.get("requester",
                  "cn-ntlnp"), now=change.get("now", NOW),
                  resources=change.get("resources", CAMTRAP))
    assert other.to_json() != base.to_json()
    assert other.digest() != base.digest()


def test_a_changed_step_line_changes_the_digest() -> None:
    plan = _plan()
    edited = replace(plan, steps=(replace(plan.steps[0], line="nothing withheld"),
                                  *plan.steps[1:]))
    assert edited.digest() != plan.digest()


def test_package_texts() -> None:
    plan = _plan()
    generalizations = plan.data_generalizations()
    assert ("coordinates rounded to 0.1° at every location that recorded Capreolus pygargus,"
            " Panthera pardus orientalis, Panthera tigris altaica or Panthera uncia"
            in generalizations)
    assert "0.01° at every location that recorded Antigone vipio, Grus monacha or Platalea" \
        " minor" in generalizations
    assert "never randomized" in generalizations
    assert "timestamps coarsened to the day" in generalizations
    assert "pseudonyms" in generalizations
    withheld = plan.information_withheld()
    assert withheld.startswith("fields withheld: deployments.locationName, deployments.setupBy,"
                               " media.exifData")
    assert "event." not in withheld                      # not a resource of this dataset
    assert "all records of Capreolus pygargus (sensitivity category 1)" in withheld
    assert ("records of Panthera pardus orientalis newer than 2026-08-24 00:00 UTC"
            " (embargo 90 days)") in withheld
    nothing = _plan({"tier": "open"}, policy=_policy(tiers={"open": {"apply_sensitivity": False}},
                                                     embargo_days={}))
    assert nothing.data_generalizations() == "" and nothing.information_withheld() == ""
    assert nothing.explain() == ["tier open for cn-ntlnp, purpose joint-monitoring",
                                 nothing.steps[-1].line]
    assert [s.kind for s in nothing.steps] == ["closure"]


def test_step_tables_cover_the_resources() -> None:
    assert set(TIME_FIELDS) <= {"deployments", "media", "observations", "individuals", "event",
                                "occurrence"}
    assert PSEUDONYMIZED_FIELDS["observations"] == ("individualID",)
    plan = _plan(resources=None)
    coarsen = next(s for s in plan.steps if s.kind == "coarsen-time")
    assert coarsen.params["fields"]["observations"] == ("eventStart", "eventEnd")
    assert coarsen.params["unit"] == "day"


def test_time_window_uses_utc_dates() -> None:
    plan = _plan({"time_from": date(2024, 3, 1).isoformat(), "time_to": "2024-03-31"})
    local_midnight = datetime(2024, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=10)))
    assert plan.time_from is not None and plan.time_to is not None
    assert not plan.time_from <= local_midnight < plan.time_to   # 2024-02-29 14:30 UTC


def test_the_area_holds_a_rounded_position_only_if_its_whole_cell_is_inside() -> None:
    plan = _plan({"bbox": [131.0, 43.0, 131.5, 43.2]})
    assert plan.in_area(43.0, 131.5) and plan.in_area(43.2, 131.0)  # edges included
    assert not plan.in_area(42.999, 131.2) and not plan.in_area(None, 131.2)
    # Shown as 43.1 N at 0.1°: the cell 43.05 .. 43.15 N lies inside.
    assert plan.in_area(43.1, 131.2, precision=0.1)
    # Shown as 43.2 N: the cell reaches 43.25 N, past the north edge, wherever in it
    # the record was.
    assert plan.in_area(43.2, 131.2) and not plan.in_area(43.2, 131.2, precision=0.1)
    assert not plan.in_area(43.0, 131.3, precision=0.01)  # 42.995 .. 43.005 N
    assert _plan().in_area(None, None, precision=1.0)  # no area: everything passes
