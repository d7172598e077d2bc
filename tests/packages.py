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
