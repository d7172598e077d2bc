"""The node's read API (metadata only; rows leave only in signed packages)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from node.datasets import current_datasets, get_dataset, metadata_view
from node.extensions import db
from node.schemas import DatasetListSchema, DatasetSchema

blp = Blueprint("datasets", __name__, url_prefix="/datasets",
                description="Dataset metadata (no observation rows).")


@blp.route("")
class Datasets(MethodView):
    """The node's datasets."""

    @blp.response(200, DatasetListSchema)
    def get(self) -> dict[str, Any]:
        """List the current version of every dataset."""
        return {"datasets": [metadata_view(d) for d in current_datasets(db.session())]}


@blp.route("/<string:name>")
class DatasetItem(MethodView):
    """One dataset."""

    @blp.response(200, DatasetSchema)
    def get(self, name: str) -> dict[str, Any]:
        """Metadata of one dataset (current version)."""
        return metadata_view(get_dataset(db.session(), name))
