"""The owner's policies, one per dataset, validated before they are stored."""

from __future__ import annotations

import hmac
from datetime import datetime
from hashlib import sha256
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from corridor.errors import Unavailable
from corridor.keystore import load_session_secret
from corridor.yaml_files import YamlFileError, read_yaml_file
from node.data.datasets import get_dataset
from node.log.exchange_log import LOG
from node.models import DatasetPolicy
from policies.errors import PolicyError
from policies.policy import Policy, default_policy, load_policy


class PolicyFileError(Unavailable):
    """The policy file, or the node secret its keys derive from, cannot be read."""

    title = "Policy unavailable"
    public = False


def read_policy_file(path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON policy file (JSON is YAML) into a mapping."""
    try:
        data = read_yaml_file(path)
    except YamlFileError as e:
        raise PolicyFileError(str(e)) from e
    if not isinstance(data, dict):
        raise PolicyFileError(f"{path}: a policy must be a mapping at the top level")
    return data


def set_policy(session: Session, dataset: str, document: dict[str, Any], now: datetime) -> Policy:
    """Validate and store a dataset's policy; log it if it changed (the caller commits).

    The ``policy.changed`` entry (DESIGN.md §10) carries the digests of the
    new and previous policies (:meth:`Policy.digest`), not the document.

    Raises:
        DatasetNotFound: no such dataset.
        PolicyError: the document is invalid (with the dotted field and reason).
    """
    get_dataset(session, dataset)
    policy = load_policy(document)
    try:
        previous: str | None = get_policy(session, dataset)[0].digest()
    except PolicyError:
        previous = None  # a stored policy this version cannot read: replaced all the same
    row = session.get(DatasetPolicy, dataset)
    if row is None:
        session.add(DatasetPolicy(dataset=dataset, document=document, updated_at=now))
    else:
        row.document, row.updated_at = document, now
    if policy.digest() != previous:
        LOG.append(session, "policy.changed", now, dataset=dataset,
                   policy_digest=policy.digest(), previous_digest=previous)
    return policy


def get_policy(session: Session, dataset: str) -> tuple[Policy, dict[str, Any] | None]:
    """The dataset's policy and its stored document (None: the default policy applies)."""
    row = session.get(DatasetPolicy, dataset)
    if row is None:
        return default_policy(), None
    return load_policy(row.document), row.document


def pseudonym_key(keys_dir: Path, scope: str) -> bytes:
    """The key that pseudonymizes individual IDs for one agreement (or preview) ``scope``.

    Derived from the node's secret, so IDs are stable within an agreement and
    unlinkable across agreements, and nobody without the node's secret can
    reverse them.
    """
    secret = load_session_secret(keys_dir)
    if secret is None:
        raise PolicyFileError(f"{keys_dir}: no node secret to derive pseudonym keys from")
    return hmac.new(secret.encode(), f"corridor-pseudonym:{scope}".encode(), sha256).digest()


def cursor_key(keys_dir: Path) -> bytes:
    """The key that seals this node's export cursors (:mod:`crypto.sealed`).

    Derived from the node's secret like :func:`pseudonym_key`, with its own
    label, so cursors can be checked by every worker of the node and by
    nobody else.
    """
    secret = load_session_secret(keys_dir)
    if secret is None:
        raise PolicyFileError(f"{keys_dir}: no node secret to derive the cursor key from")
    return hmac.new(secret.encode(), b"corridor-cursor-key", sha256).digest()
