"""Whether outside tools accept a package: the Frictionless validator, offline.

A received package names the published Camtrap DP 1.0.2 profile and table
schemas by URL. These machines (and many park networks) have no internet, so
the check points those URLs at the copies bundled in ``node/data`` — the same
files, pinned by version; the profile's reference to the generic Data Package
schema is left to frictionless's own descriptor checks — and then runs
``frictionless`` over the whole package: every table against its schema,
primary and foreign keys across tables, and the descriptor against the
Camtrap DP profile.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import frictionless
from frictionless import system, validate

SCHEMAS = Path(__file__).resolve().parents[1] / "node" / "data" / "camtrap-dp-1.0.2"
GEOJSON = Path(frictionless.__file__).parent / "assets" / "profiles" / "geojson.json"
_PUBLISHED = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/"


def _local(url: Any, root: Path) -> Any:
    if not (isinstance(url, str) and url.startswith(_PUBLISHED)):
        return url
    local = SCHEMAS / url.removeprefix(_PUBLISHED)
    assert local.is_file(), f"no bundled copy of {url}"
    if local.name != "camtrap-dp-profile.json":
        return str(local)
    # The profile's first part is a $ref to the generic Data Package schema on
    # specs.frictionlessdata.io; frictionless checks that part itself, offline.
    # Its GeoJSON reference goes to the copy of that schema frictionless ships.
    text = local.read_text("utf-8").replace('"http://json.schemastore.org/geojson.json"',
                                            json.dumps(GEOJSON.as_uri()))
    profile = json.loads(text)
    profile["allOf"] = [part for part in profile["allOf"]
                        if not str(part.get("$ref", "")).startswith("https://")]
    copy = root / "camtrap-dp-profile.offline.json"
    copy.write_text(json.dumps(profile), "utf-8")
    return str(copy)


def frictionless_errors(package: Path) -> list[str]:
    """What the Frictionless validator finds wrong with a package zip (empty: valid)."""
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(package) as archive:
        archive.extractall(tmp)
        root = Path(tmp)
        descriptor = json.loads((root / "datapackage.json").read_text("utf-8"))
        descriptor["profile"] = _local(descriptor.get("profile"), root)
        for resource in descriptor.get("resources", []):
            resource["schema"] = _local(resource.get("schema"), root)
        (root / "offline.json").write_text(json.dumps(descriptor), "utf-8")
        with system.use_context(trusted=True):
            report = validate(str(root / "offline.json"))
        problems = [f"{e.type}: {e.note}" for e in report.errors]
        for task in report.tasks:
            problems += [f"{task.name}: {e.type}: {e.message}" for e in task.errors]
        return problems


def assert_frictionless_valid(package: Path) -> None:
    """Fail with every problem the Frictionless validator reports."""
    problems = frictionless_errors(package)
    assert not problems, "\n".join(problems[:20])


def intact_descriptor(package: Path) -> dict[str, Any] | None:
    """The descriptor of a Camtrap DP package zip exactly as it was exported, else None.

    Exactly as exported: a ``datapackage.json`` with a profile, every
    resource present with the ``bytes`` and ``sha256`` hash it declares and a
    Table Schema. Tampered copies, truncated files and hand-built fixtures
    fail this and are no evidence either way about the exporter.
    """
    try:
        with zipfile.ZipFile(package) as archive:
            descriptor = json.loads(archive.read("datapackage.json"))
            if not (isinstance(descriptor, dict) and descriptor.get("profile")):
                return None
            resources = descriptor.get("resources")
            if not isinstance(resources, list) or not resources:
                return None
            for resource in resources:
                if not isinstance(resource, dict) or not resource.get("schema"):
                    return None
                data = archive.read(str(resource.get("path")))
                digest = "sha256:" + hashlib.sha256(data).hexdigest()
                if len(data) != resource.get("bytes") or digest != resource.get("hash"):
                    return None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return descriptor


def is_increment(descriptor: dict[str, Any]) -> bool:
    """Whether a package is an increment (``fetch --since``) rather than a whole dataset."""
    corridor = descriptor.get("corridor")
    return isinstance(corridor, dict) and corridor.get("incremental") is True


def exported_package_problems(root: Path) -> tuple[int, dict[Path, list[str]]]:
    """Validate every intact package zip under ``root``: (how many, problems per package).

    An increment carries only the rows added since the previous package, so
    its observations may name media and deployments that an earlier package
    sent: unresolved foreign keys are expected there and only there.
    """
    checked = 0
    found: dict[Path, list[str]] = {}
    for package in sorted(root.rglob("*.zip")):
        descriptor = intact_descriptor(package)
        if descriptor is None:
            continue
        checked += 1
        problems = frictionless_errors(package)
        if is_increment(descriptor):
            problems = [p for p in problems if ": foreign-key: " not in p]
        if problems:
            found[package] = problems
    return checked, found
