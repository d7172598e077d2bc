"""marshmallow schemas: the registry API's wire format."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

MAX_JWS = 64 * 1024


class StrictSchema(Schema):
    """Unknown fields are an error, never silently dropped."""

    class Meta:
        unknown = RAISE
        ordered = True


class JoinRequestSchema(StrictSchema):
    """A membership request: a compact JWS signed by one of the keys it carries."""

    request = fields.String(required=True, validate=validate.Length(min=10, max=MAX_JWS))


class MemberStatusSchema(StrictSchema):
    """Where a membership stands."""

    member_id = fields.String()
    status = fields.String()


class TrustListSchema(StrictSchema):
    """The current signed trust list (verify ``jws``; the other fields are for display)."""

    version = fields.Integer()
    issued_at = fields.DateTime(format="iso")
    expires_at = fields.DateTime(format="iso")
    jws = fields.String(metadata={"description": "compact JWS, typ corridor-trust-list+jwt"})


class JWKSSchema(Schema):
    """A JSON Web Key Set (RFC 7517 §5)."""

    keys = fields.List(fields.Dict())


class NewKeySchema(StrictSchema):
    """A key to add for rotation, with proof that the caller holds its private half."""

    jwk = fields.Dict(required=True, metadata={"description": "public Ed25519 JWK"})
    proof = fields.String(required=True, validate=validate.Length(min=10, max=8192),
                          metadata={"description": "JWS by the new key, typ "
                                    "corridor-key-proof+jwt, over {member_id, kid, iat}"})


class KeyChangeSchema(StrictSchema):
    """The outcome of a key change."""

    member_id = fields.String()
    kid = fields.String()
    state = fields.String()
    trust_list_version = fields.Integer()


class NewAgreementSchema(StrictSchema):
    """A request for access: the requester's signed ``request`` event."""

    event = fields.String(required=True, validate=validate.Length(min=10, max=MAX_JWS),
                          metadata={"description": "compact JWS, typ "
                                    "corridor-agreement-event+jwt, action request"})


class AgreementEventsSchema(StrictSchema):
    """Signed events that continue an agreement's history (oldest first)."""

    events = fields.List(fields.String(validate=validate.Length(min=10, max=MAX_JWS)),
                         required=True, validate=validate.Length(min=1, max=20))


class AgreementQuerySchema(StrictSchema):
    """Filters for the caller's agreements."""

    role = fields.String(validate=validate.OneOf(["requester", "provider"]))
    state = fields.List(fields.String(validate=validate.Length(max=16)),
                        validate=validate.Length(max=8))


class AgreementSchema(StrictSchema):
    """An agreement as a party sees it: summary plus its verifiable history."""

    id = fields.String()
    requester = fields.String()
    provider = fields.String()
    dataset = fields.String()
    state = fields.String()
    terms = fields.Dict()
    updated_at = fields.DateTime(format="iso")
    events = fields.List(fields.String(), metadata={"description": "signed events, oldest "
                                                    "first; verify with policies.agreements"})


class AgreementListSchema(StrictSchema):
    """The caller's agreements."""

    agreements = fields.List(fields.Nested(AgreementSchema))
