"""The node's read API over real HTTP: metadata only, OpenAPI 3.1, problem+json errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from corridor.db import make_engine
from node.app import create_app
from node.data.importer import Importer
from node.settings import NodeSettings

pytestmark = pytest.mark.storage


@pytest.fixture
def live(node_settings: NodeSettings, camtrap_example: Path, live_server: Any) -> Any:
    Importer(make_engine(node_settings.database_url)).import_camtrap(camtrap_example)
    return live_server(create_app({"CORRIDOR_SETTINGS": node_settings}))


def get_json(live: Any, path: str) -> tuple[int, str, Any]:
    status, headers, body = live.request("GET", path)
    return status, headers.get("Content-Type", ""), json.loads(body)


def test_list_datasets_gives_metadata_only(live: Any) -> None:
    status, ctype, body = get_json(live, "/datasets")
    assert status == 200 and ctype.startswith("application/json")
    (dataset,) = body["datasets"]
    assert dataset["name"] == "camtrap-dp-example-dataset"
    assert dataset["counts"]["observations"] == 549
    assert dataset["coverage"] == {"start": "2020-05-30", "end": "2021-04-18",
                                   "bbox": [4, 50, 6, 52]}  # whole degrees, outward
    text = json.dumps(body)
    # No rows, no camera coordinates (4.013 is a camera's longitude), no personal e-mail.
    for leak in ("deploymentID", "00a2c20d", "51.181", "observationID", "4.013", "5.659", "@"):
        assert leak not in text, leak


def test_get_one_dataset(live: Any) -> None:
    status, _, body = get_json(live, "/datasets/camtrap-dp-example-dataset")
    assert status == 200
    assert body["version"] == 1 and body["profile"] == "camtrap-dp"
    assert body["licenses"][0]["name"] == "CC0-1.0"
    assert body["coverage"]["bbox"] == [4, 50, 6, 52]
    # Institutions only: the people who set up the cameras are not public.
    assert body["contributors"] and all(set(c) <= {"title", "path", "role"}
                                        for c in body["contributors"])
    assert "@" not in json.dumps(body["contributors"])


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/datasets/no-such-thing", 404),
    ("GET", "/nowhere", 404),
    ("POST", "/datasets", 405),
    ("DELETE", "/datasets/camtrap-dp-example-dataset", 405),
])
def test_errors_are_problem_json(live: Any, method: str, path: str, status: int) -> None:
    got, headers, body = live.request(method, path)
    assert got == status
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"]
    assert "Traceback" not in body.decode()


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded",
                                          "application/json"])
def test_oversize_body_refused_before_a_view_reads_it(live: Any, content_type: str) -> None:
    # The node's API takes no bodies; its pages do. /login takes a POST, so the
    # size limit (not a missing route, 405) is what answers, with the error page.
    status, headers, body = live.request("POST", "/login", body=b"x" * (2 * 1024 * 1024),
                                         headers={"Content-Type": content_type})
    assert status == 413, body[:300]
    assert headers["Content-Type"].startswith("text/html")
    assert "Request Entity Too Large" in body.decode(), body[:500]


def test_openapi_document_is_3_1_and_lists_the_routes(live: Any) -> None:
    status, _, spec = get_json(live, "/openapi.json")
    assert status == 200
    assert spec["openapi"] == "3.1.0"
    assert {"/datasets", "/datasets/{name}"} <= set(spec["paths"])
    assert "Dataset" in spec["components"]["schemas"]


def test_an_operators_error_answers_503_without_naming_its_files(
        node_settings: NodeSettings, live_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    from flask import Blueprint

    from corridor.keystore import KeystoreError

    app = create_app({"CORRIDOR_SETTINGS": node_settings})
    probe = Blueprint("probe", __name__)
    secret_path = f"{node_settings.keys_dir}/0123.pem"

    @probe.route("/probe/keys")
    def keys() -> str:
        raise KeystoreError(f"{secret_path}: readable by others (mode 644); run 'chmod 600'")

    app.register_blueprint(probe)
    srv = live_server(app)
    with caplog.at_level("ERROR", logger="corridor.web"):
        status, headers, body = srv.request("GET", "/probe/keys")
    assert status == 503
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body) == {"type": "about:blank", "title": "Signing keys unavailable",
                                "status": 503}
    assert secret_path not in body.decode()
    assert any(secret_path in r.getMessage() for r in caplog.records)  # the operator's copy
