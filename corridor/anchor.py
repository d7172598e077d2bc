"""The registry anchor: the file, given out of band, that pins the registry's URL and keys.

Nodes copy it at ``init``; recipients and auditors hand it to ``verify`` and
``audit``. Everything that trusts the federation starts from this file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from corridor.errors import Unavailable
from crypto.errors import InvalidKey
from crypto.keys import KeySet
from crypto.trustlist import ANCHOR_TYP

__all__ = ["AnchorError", "read_anchor", "read_anchor_for"]


class AnchorError(Unavailable):
    """The anchor file is missing or malformed."""

    title = "Registry anchor unavailable"
    public = False


def read_anchor(path: Path) -> tuple[str, KeySet]:
    """Parse an anchor file: (registry URL, registry keys)."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        if data.get("typ") != ANCHOR_TYP:
            raise AnchorError(f"{path}: not a Corridor anchor (typ {data.get('typ')!r})")
        return str(data["registry_url"]).rstrip("/"), KeySet.from_jwks({"keys": data["keys"]})
    except AnchorError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, InvalidKey) as e:
        raise AnchorError(f"{path}: cannot read the anchor ({e})") from e


def read_anchor_for(source: Path, registry_url: str) -> KeySet:
    """Read an anchor and check that it names ``registry_url``."""
    url, keys = read_anchor(source)
    if url != registry_url.rstrip("/"):
        raise AnchorError(f"the anchor is for {url}, not for {registry_url}")
    return keys
