"""marshmallow schemas: the node API's wire format (loaded and dumped at the edge)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields


class CoverageSchema(Schema):
    """Temporal and spatial coverage of a dataset."""

    class Meta:
        unknown = RAISE

    start = fields.String(allow_none=True, metadata={"description": "first date (UTC), ISO 8601"})
    end = fields.String(allow_none=True, metadata={"description": "last date (UTC), ISO 8601"})
    bbox = fields.List(fields.Float(), allow_none=True,
                       metadata={"description": "[west, south, east, north] in degrees"})


class DatasetSchema(Schema):
    """Dataset metadata: never rows, never coordinates finer than the bounding box."""

    class Meta:
        unknown = RAISE
        ordered = True

    name = fields.String(required=True)
    version = fields.Integer(required=True)
    profile = fields.String(required=True, metadata={"description": "camtrap-dp or dwc-event"})
    title = fields.String(required=True)
    description = fields.String(allow_none=True)
    licenses = fields.List(fields.Dict())
    contributors = fields.List(fields.Dict())
    taxa = fields.List(fields.String())
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    coverage = fields.Nested(CoverageSchema)
    imported_at = fields.DateTime(format="iso")


class DatasetListSchema(Schema):
    """A page of datasets."""

    class Meta:
        unknown = RAISE

    datasets = fields.List(fields.Nested(DatasetSchema))


class WhoAmISchema(Schema):
    """Who a verified access token belongs to."""

    member_id = fields.String(metadata={"description": "the caller (token subject)"})
    node = fields.String(metadata={"description": "this node's member id"})
    scope = fields.List(fields.String())
    trust_list_version = fields.Integer(allow_none=True)


class JWKSSchema(Schema):
    """A JSON Web Key Set (RFC 7517 §5)."""

    keys = fields.List(fields.Dict())


class PackageQuerySchema(Schema):
    """The only parameter a fetch takes: what is covered comes from the agreement alone."""

    class Meta:
        unknown = RAISE

    since = fields.String(load_default=None, metadata={
        "description": "cursor from a previous package of the same agreement: only what "
                       "is new or changed since"})
