"""HTTP API of the registry's witness (DESIGN.md §10): members' nodes get checkpoints cosigned.

* ``GET /witness/<member>`` (public: checkpoints hold no data): the newest
  checkpoint of that member the registry cosigned, ``{"member", "size",
  "note"}``; 404 if there is none.
* ``POST /witness/<member>`` (bearer token with scope ``witness:submit`` whose
  client is ``member``): body ``{"note": signed checkpoint note, "old_size":
  size the registry cosigned last (0 at first), "proof": [standard base64
  32-byte hashes]}`` (RFC 9162 consistency proof). Answers 200 ``{"note":
  the note with the registry's cosignature}``. Refusals, all problem+json:
  400 malformed JSON; 401 no or bad token; 403 missing scope or another
  member's log; 413 body over :data:`MAX_BODY`; 422 wrong fields or types,
  more than 65 hashes, bad base64, or a note that does not verify with the
  member's keys and origin; 409 stale ``old_size`` (``size`` in the problem
  says the registry's) or a checkpoint inconsistent with the cosigned one
  (kept as evidence, see :mod:`registry.log.witness`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from corridor.errors import Forbidden, NotFound
from corridor.web import limit_body
from crypto.checkpoint import MAX_NOTE_SIZE
from crypto.merkle import HASH_SIZE, MAX_TREE_SIZE
from crypto.tokens import WITNESS_SCOPE
from registry import context
from registry.db import db
from registry.exchange.auth import current_client, require_token
from registry.log.exchange_log import log_refusal
from registry.log.witness import Submission, latest, submit
from registry.membership.members import active_keys

__all__ = ["MAX_BODY", "MAX_PROOF", "witness_blueprint"]

#: Largest request body accepted, in bytes (a full-size note plus a full proof fit).
MAX_BODY = 32 * 1024
#: Most hashes in a consistency proof (RFC 9162: at most about log2 of 2**64, plus one).
MAX_PROOF = 65

witness_blueprint = Blueprint(
    "witness", __name__, url_prefix="/witness",
    description="The registry witnesses members' exchange logs: it cosigns a checkpoint "
                "only if it extends the last one it cosigned.")


limit_body(witness_blueprint, MAX_BODY)  # enforced by werkzeug as the body is read (413)


class HashField(fields.Field[bytes]):
    """A 32-byte hash in standard, padded base64 (RFC 4648 §4), canonical spelling only."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bytes:
        if not isinstance(value, str) or len(value) > 64:
            raise ValidationError("not a base64 string of a 32-byte hash")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ValidationError("not standard base64") from e
        if len(raw) != HASH_SIZE or base64.b64encode(raw).decode("ascii") != value:
            raise ValidationError(f"not the standard base64 of a {HASH_SIZE}-byte hash")
        return raw


class StrictInteger(fields.Integer):
    """A JSON integer: no strings, floats or booleans."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationError("not an integer")
        result: int = super()._deserialize(value, attr, data, **kwargs)
        return result


class SubmissionSchema(Schema):
    """A checkpoint to cosign and the proof that it extends the one cosigned last."""

    class Meta:
        unknown = RAISE
        ordered = True

    note = fields.String(required=True, validate=validate.Length(min=1, max=MAX_NOTE_SIZE),
                         metadata={"description": "signed checkpoint note (C2SP tlog-checkpoint)"})
    old_size = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_TREE_SIZE),
                             metadata={"description": "size of the checkpoint the registry "
                                                      "cosigned last (0 for the first)"})
    proof = fields.List(HashField(metadata={"type": "string", "format": "byte"}),
                        required=True, validate=validate.Length(max=MAX_PROOF),
                        metadata={"description": "RFC 9162 consistency proof, standard base64"})


class WitnessedSchema(Schema):
    """The newest cosigned checkpoint of a member."""

    member = fields.String()
    size = fields.Integer()
    note = fields.String(metadata={"description": "the member's note with the registry's "
                                                  "cosignature"})


class CosignedSchema(Schema):
    """A cosigned checkpoint."""

    note = fields.String()


@witness_blueprint.route("/<string:member_id>")
class Witness(MethodView):
    """One member's witnessed checkpoint."""

    @witness_blueprint.response(200, WitnessedSchema)
    def get(self, member_id: str) -> dict[str, Any]:
        """The newest checkpoint of the member the registry cosigned."""
        row = latest(db.session(), member_id)
        if row is None:
            raise NotFound(f"the registry cosigned no checkpoint of {member_id[:40]}")
        return {"member": row.member, "size": row.size, "note": row.note}

    @require_token(WITNESS_SCOPE)
    @witness_blueprint.arguments(SubmissionSchema)
    @witness_blueprint.response(200, CosignedSchema)
    @witness_blueprint.alt_response(409, "CONFLICT")
    def post(self, body: dict[str, Any], member_id: str) -> dict[str, Any]:
        """Cosign the caller's checkpoint if it is consistent with the last one cosigned."""
        caller = current_client()
        if caller != member_id:
            log_refusal(db.session(), "witness.refused", context.now(), member=caller,
                        reason="a checkpoint of another member's log", log_of=member_id)
            raise Forbidden("a member submits checkpoints of its own log only")
        session = db.session()
        note = submit(session, Submission(member_id, body["note"], body["old_size"],
                                          tuple(body["proof"])),
                      keys=active_keys(session, member_id), witness_key=context.signing_key(),
                      now=context.now())
        session.commit()
        return {"note": note}
