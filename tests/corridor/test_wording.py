"""Counts and coordinates as people read them."""

from __future__ import annotations

from corridor.wording import article, latitude_range, longitude_range, plural, rows_summary


def test_counts_take_the_noun_their_number_needs() -> None:
    assert plural(1, "problem") == "1 problem"
    assert plural(0, "problem") == "0 problems"
    assert plural(2345, "occurrence") == "2,345 occurrences"
    assert plural(2, "medium", "media") == "2 media"
    assert rows_summary({"deployments": 4, "media": 1, "observations": 549,
                         "individuals": 1}) == (
        "4 deployments, 1 medium, 549 observations, 1 individual")
    assert rows_summary({"event": 257, "occurrence": 1, "other": 3}) == (
        "257 events, 1 occurrence, 3 other")
    assert rows_summary({"events": 1, "occurrences": 2}) == "1 event, 2 occurrences"


def test_field_names_take_their_article() -> None:
    assert f"{article('eventID')} eventID" == "an eventID"
    assert f"{article('deploymentID')} deploymentID" == "a deploymentID"


def test_coordinates_read_with_their_hemisphere() -> None:
    assert latitude_range(-3.33, -3.167) == "3.330 .. 3.167 S"
    assert latitude_range(43.1, 43.6) == "43.100 .. 43.600 N"
    assert latitude_range(-0.5, 1.2) == "0.500 S .. 1.200 N"
    assert longitude_range(39.5, 40.1, 1) == "39.5 .. 40.1 E"
    assert longitude_range(-70.2, -69.8) == "70.200 .. 69.800 W"
    assert longitude_range(-1, 2, 0) == "1 W .. 2 E"
