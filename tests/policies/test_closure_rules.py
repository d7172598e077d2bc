"""The plan's closure rules and the metadata rules: effort, scrubbing, rules that touch
the dataset, the cursor's basis, and what a descriptor may say (policies/disclosure.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.disclosure import (
    people_withheld,
    released_contributors,
    rounded_outward,
    scrub_properties,
)
from policies.engine import Plan, compile
from policies.errors import PolicyError
from policies.policy import load_policy
from policies.terms import load_terms

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
DWC = ("event", "occurrence")
CAMTRAP = ("deployments", "media", "observations", "individuals")


def _plan(tier: dict[str, Any], *, now: datetime = NOW, resources: tuple[str, ...] = DWC,
          taxa_present: list[str] | None = None, terms: dict[str, Any] | None = None,
          embargo: int = 30) -> Plan:
    policy = load_policy({"tiers": {"t": tier}, "purposes": ["research"], "partners": ["*"],
                          "sensitivity": {"Limosa lapponica": 1},
                          "embargo_days": {"Platalea alba": embargo}})
    return compile(policy, load_terms({"purpose": "research", "tier": "t", **(terms or {})}),
                   "cn-ntlnp", now, resources=resources, taxa_present=taxa_present)


def test_effort_is_released_only_when_the_tier_says_so_and_the_plan_says_it() -> None:
    assert not _plan({}).release_effort
    assert "only survey events with a released occurrence" in _plan({}).explain()[-1]
    plan = _plan({"release_effort": True})
    assert plan.release_effort and "(effort: zero counts)" in plan.explain()[-1]
    cameras = _plan({"release_effort": True}, resources=CAMTRAP)
    assert any("effort; generalized like the others" in line for line in cameras.explain())


def test_effort_contradicts_an_aggregate_tier() -> None:
    with pytest.raises(PolicyError, match="release_effort"):
        _plan({"aggregate_only": True, "release_effort": True})


def test_withholding_a_person_field_scrubs_the_free_text_that_repeats_it() -> None:
    plan = _plan({"withhold_fields": {"occurrence": ["recordedBy"]}})
    assert plan.scrub_people and plan.scrub["event"] == {"dynamicProperties"}
    # Nothing withheld (no generalized taxon in the data, so no verbatim coordinates): no scrub.
    plain = _plan({}, taxa_present=["Platalea alba"])
    assert not plain.scrub_people and not plain.scrub
    # Generalized locations withhold the verbatim coordinates, which free text may repeat.
    assert _plan({}).scrub["event"] == {"dynamicProperties"} and not _plan({}).scrub_people


def test_only_the_rules_that_touch_the_dataset_are_explained() -> None:
    everything = "\n".join(_plan({}).explain())
    assert "Limosa lapponica" in everything and "Panthera" in everything  # the defaults too
    spoonbills = "\n".join(_plan({}, taxa_present=["Platalea alba"]).explain())
    assert "Platalea alba" in spoonbills
    assert "Limosa" not in spoonbills and "Panthera" not in spoonbills
    # A synonym or a subspecies in the data still brings its rule in.
    tigers = "\n".join(_plan({}, taxa_present=["Panthera tigris"]).explain())
    assert "Panthera tigris altaica" in tigers


def test_the_basis_ignores_moving_cutoffs_but_not_the_rules() -> None:
    today, later = _plan({}), _plan({}, now=NOW + timedelta(days=3))
    assert today.digest() != later.digest()  # the embargo cutoff moved
    assert today.basis_digest() == later.basis_digest()
    assert _plan({}, embargo=60).basis_digest() != today.basis_digest()
    assert _plan({}, terms={"taxa": ["Platalea alba"]}).basis_digest() != today.basis_digest()
    assert _plan({"release_effort": True}).basis_digest() != today.basis_digest()


# --- disclosure ----------------------------------------------------------------------------


@pytest.mark.parametrize(("box", "step", "expected"), [
    ((4.013, 50.699, 5.659, 51.496), 0.1, (4.0, 50.6, 5.7, 51.5)),
    ((4.013, 50.699, 5.659, 51.496), 1.0, (4.0, 50.0, 6.0, 52.0)),
    ((131.2, 43.1, 131.2, 43.1), 0.1, (131.2, 43.1, 131.3, 43.2)),  # a point: one step wide
    ((179.95, 89.95, 179.99, 89.99), 0.1, (179.9, 89.9, 180.0, 90.0)),  # clamped inside
    ((-3.3302, 39.967, -3.33, 39.968), 0.01, (-3.34, 39.96, -3.33, 39.97)),
])
def test_an_extent_is_rounded_outward(box: tuple[float, float, float, float], step: float,
                                      expected: tuple[float, ...]) -> None:
    assert rounded_outward(*box, step=step) == expected


@given(st.floats(-179.0, 179.0), st.floats(-89.0, 89.0), st.floats(0, 1), st.floats(0, 1),
       st.sampled_from([0.001, 0.01, 0.1, 1.0]))
def test_a_rounded_extent_always_contains_the_original(west: float, south: float,
                                                       width: float, height: float,
                                                       step: float) -> None:
    east, north = west + width, south + height
    w, s, e, n = rounded_outward(west, south, east, north, step)
    assert w <= west and s <= south and e >= east and n >= north


def test_a_bad_step_or_corner_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        rounded_outward(0, 0, 1, 1, 0)
    with pytest.raises(ValueError, match="not finite"):
        rounded_outward(float("nan"), 0, 1, 1, 0.1)


CONTRIBUTORS = [
    {"title": "Axel Neukermans", "email": "axel.neukermans@inbo.be",
     "path": "https://orcid.org/0000-0003-0272-9180", "role": "contributor",
     "organization": "Research Institute for Nature and Forest (INBO)"},
    {"title": "Danny Van der beeck", "email": "daniel.vanderbeeck@gmail.com"},
    {"title": "Research Institute for Nature and Forest (INBO)", "path": "https://inbo.be",
     "role": "rightsHolder", "email": "info@inbo.be"},
    "not an object",
]


def test_contributors_without_people_keep_only_institutions() -> None:
    kept = released_contributors(CONTRIBUTORS, people_hidden=True)
    assert kept == [{"title": "Research Institute for Nature and Forest (INBO)",
                     "path": "https://inbo.be", "role": "rightsHolder"}]
    assert "@" not in json.dumps(kept)
    assert len(released_contributors(CONTRIBUTORS, people_hidden=False)) == 3


def test_people_fields_are_recognised_per_resource() -> None:
    assert people_withheld({"deployments": frozenset({"setupBy"})})
    assert people_withheld({"occurrence": frozenset({"recordedBy"})})
    assert not people_withheld({"media": frozenset({"filePath"})})


AROCHA = '{coverage: "", water: "high", participants: "DT, CJ", CWAC_sitecode: "NA", }'


@pytest.mark.parametrize(("text", "people", "withheld", "expected"), [
    (AROCHA, True, (), {"coverage": "", "water": "high", "CWAC_sitecode": "NA"}),
    ('{"observer": "D. Turner", "tide": "low"}', True, (), {"tide": "low"}),
    ('{"Artist": "ranger 7", "Make": "Reconyx"}', True, (), {"Make": "Reconyx"}),
    ('{"habitat": "reed", "tide": "low"}', False, ("habitat",), {"tide": "low"}),
])
def test_free_text_follows_the_fields_it_repeats(text: str, people: bool,
                                                 withheld: tuple[str, ...],
                                                 expected: dict[str, str]) -> None:
    scrubbed = scrub_properties(text, drop_people=people, withheld=withheld)
    assert scrubbed is not None and json.loads(scrubbed) == expected


def test_free_text_that_cannot_be_read_is_blanked_and_clean_text_is_untouched() -> None:
    assert scrub_properties("participants were DT and CJ", drop_people=True) == ""
    assert scrub_properties('{"tide": "low"}', drop_people=True) == '{"tide": "low"}'
    assert scrub_properties(None, drop_people=True) is None
    assert scrub_properties("", drop_people=True) == ""
