"""Opening a data package on disk for the offline checks of :mod:`crypto.package_check`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from crypto.keys import KeySet
from crypto.package_check import VerifyReport, check_package
from crypto.trustlist import TrustList

__all__ = ["verify_package"]


def verify_package(path: Path, keys: KeySet | TrustList, *,
                   on_check: Callable[[str], None] | None = None) -> VerifyReport:
    """Verify the package file at ``path`` (:func:`crypto.package_check.check_package`).

    Never raises for a bad or unreadable file: the report says what failed.
    """
    try:
        source = path.open("rb")
    except OSError as e:
        return VerifyReport(failure=f"{path.name}: cannot read ({e.strerror or e})")
    with source:
        return check_package(source, path.name, keys, on_check=on_check)
