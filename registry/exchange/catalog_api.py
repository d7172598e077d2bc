# flask-smorest ships no type hints; its route decorators are the only untyped ones
# (pyproject.toml relaxes the same check for registry.api and node.api).
"""The catalog's HTTP API: members publish signed dataset descriptions; members search them.

* ``POST /catalog`` (scope ``catalog:write``): body ``{"entry": "<compact JWS>"}``;
  the entry must be signed by one of the *calling* member's keys and sit in its
  namespace; a newer entry for the same dataset replaces the older one. Answers
  the stored entry.
* ``GET /catalog`` (scope ``catalog:read``): search; each entry is the signed
  document plus ``signature``, the JWS to verify it offline with the trust list.
* ``GET /catalog/<member>/<dataset>`` (scope ``catalog:read``): one entry.

Every error is RFC 9457 problem+json (:mod:`corridor.web`).
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from sqlalchemy.exc import IntegrityError

from corridor.errors import BadRequest, Conflict, CorridorError
from registry import context
from registry.db import db
from registry.exchange.auth import current_client, require_token
from registry.exchange.catalog import (
    MAX_ENTRY_SIZE,
    MAX_PER_PAGE,
    BBox,
    document_with_signature,
    get_entry,
    publish_entry,
    search,
)
from registry.log.exchange_log import log_refusal

catalog_blueprint = Blueprint(
    "catalog", __name__, url_prefix="/catalog",
    description="Signed dataset descriptions published by member nodes (never data rows).")

MAX_PAGE = 1_000_000


class _Strict(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


class BBoxField(fields.Field[BBox]):
    """``west,south,east,north`` in decimal degrees, as a query parameter."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> BBox:
        parts = str(value).split(",")
        if len(parts) != 4:
            raise ValidationError("bbox must be four numbers: west,south,east,north")
        try:
            numbers = [float(p) for p in parts]
        except ValueError as e:
            raise ValidationError("bbox must be four numbers: west,south,east,north") from e
        try:
            # NaN fails every comparison in BBox and is refused with the range message.
            return BBox(*numbers)
        except BadRequest as e:
            raise ValidationError(str(e.detail)) from e


class PublishSchema(_Strict):
    """A catalog entry to publish."""

    entry = fields.String(required=True, validate=validate.Length(min=10, max=MAX_ENTRY_SIZE),
                          metadata={"description": "compact JWS, typ corridor-catalog+jwt, "
                                                   "signed by one of the caller's keys"})


class SearchSchema(_Strict):
    """Search filters; all optional, all combined."""

    q = fields.String(validate=validate.Length(min=1, max=200),
                      metadata={"description": "substring of title, description or id"})
    taxon = fields.String(validate=validate.Length(min=1, max=200),
                          metadata={"description": "scientific name; synonyms match too"})
    country = fields.String(validate=validate.Regexp(r"^[A-Za-z]{2}$"),
                            metadata={"description": "ISO 3166-1 alpha-2 of the member"})
    date_from = fields.Date(data_key="from", metadata={"description": "coverage ends on/after"})
    date_to = fields.Date(data_key="to", metadata={"description": "coverage starts on/before"})
    bbox = BBoxField(metadata={"description": "west,south,east,north in degrees; coverage "
                                              "intersects", "type": "string",
                               "example": "130,42,132,44"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class TemporalSchema(Schema):
    """Temporal coverage, UTC dates."""

    start = fields.String(allow_none=True)
    end = fields.String(allow_none=True)


class SpatialSchema(Schema):
    """Spatial coverage: a bounding box in whole degrees, rounded outward."""

    bbox = fields.List(fields.Integer(), allow_none=True,
                       metadata={"description": "[west, south, east, north], whole degrees"})


class EntrySchema(Schema):
    """A catalog entry as signed by its publisher, plus the signature itself."""

    class Meta:
        ordered = True

    id = fields.String()
    member_id = fields.String()
    dataset = fields.String()
    country = fields.String()
    title = fields.String()
    description = fields.String(allow_none=True)
    profile = fields.String()
    taxa = fields.List(fields.String())
    temporal = fields.Nested(TemporalSchema)
    spatial = fields.Nested(SpatialSchema)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    licence = fields.String(allow_none=True)
    contact = fields.String(allow_none=True)
    tiers = fields.List(fields.String())
    version = fields.Integer()
    published_at = fields.String()
    iat = fields.Integer()
    signature = fields.String(metadata={"description": "compact JWS over the canonical "
                                                       "JSON of the other fields"})


class PageSchema(Schema):
    """One page of search results."""

    class Meta:
        ordered = True

    entries = fields.List(fields.Nested(EntrySchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


@catalog_blueprint.route("")
class Catalog(MethodView):
    """Publish and search."""

    @require_token("catalog:write")
    @catalog_blueprint.arguments(PublishSchema)
    @catalog_blueprint.response(200, EntrySchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Publish (or replace) the calling member's description of one dataset."""
        session = db.session()
        try:
            entry = publish_entry(session, body["entry"], sender=current_client(),
                                  now=context.now())
            session.commit()
        except IntegrityError as e:
            # Two publications of a new dataset raced; the other one won.
            session.rollback()
            raise Conflict("this dataset's entry was published concurrently; retry") from e
        except CorridorError as e:
            log_refusal(session, "catalog.refused", context.now(), member=current_client(),
                        reason=str(e.detail or e.title))
            raise
        return document_with_signature(entry)

    @require_token("catalog:read")
    # webargs ignores unknown query parameters unless told otherwise.
    @catalog_blueprint.arguments(SearchSchema, location="query", unknown=RAISE)
    @catalog_blueprint.response(200, PageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Search the entries of active members."""
        entries, total = search(
            db.session(), text=args.get("q"), taxon=args.get("taxon"),
            country=args.get("country"), date_from=args.get("date_from"),
            date_to=args.get("date_to"), bbox=args.get("bbox"), page=args["page"],
            per_page=args["per_page"])
        return {"entries": [document_with_signature(e) for e in entries], "total": total,
                "page": args["page"], "per_page": args["per_page"]}


@catalog_blueprint.route("/<string:member>/<string:dataset>")
class CatalogItem(MethodView):
    """One entry."""

    @require_token("catalog:read")
    @catalog_blueprint.response(200, EntrySchema)
    def get(self, member: str, dataset: str) -> dict[str, Any]:
        """One dataset's entry (404 when absent or its member is not active)."""
        return document_with_signature(get_entry(db.session(), member, dataset))

