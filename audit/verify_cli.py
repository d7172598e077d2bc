"""``corridor verify``: a recipient's or auditor's offline check of a data package or counts.

A ``.json`` file is a signed counts result (:func:`corridor.counts_reader.check_counts`:
signature, signer, and with ``--agreement``/``--recipient`` whose it is); anything
else is a package (:func:`crypto.package_check.check_package`). This
command finds the keys (a trust list, optionally checked against the registry
anchor, or a JWKS file), prints each check as it passes and exits 1 naming the
first that fails. Nothing leaves the machine.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import click

from corridor.anchor import AnchorError, read_anchor
from corridor.console import err, fail, out
from corridor.counts_reader import check_counts, read_counts
from corridor.package_reader import verify_package
from crypto.errors import InvalidKey
from crypto.keys import KeySet
from crypto.trustlist import TrustList, TrustListRejected, load_trusted

__all__ = ["verify"]


@click.command()
@click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--trust-list", "trust_list_path", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A trust list (as a node keeps it in DIR/trust/trust-list.jws): "
                   "any member's key may have signed.")
@click.option("--key", "jwks_path", metavar="JWKS_FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The signer's public keys, as 'corridor node keys' prints them.")
@click.option("--anchor", "anchor_path", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The registry anchor: check the trust list against it first.")
@click.option("--agreement", default=None,
              help="Counts results: it must be this agreement's.")
@click.option("--recipient", default=None,
              help="Counts results: it must be addressed to this member.")
def verify(package: Path, trust_list_path: Path | None, jwks_path: Path | None,
           anchor_path: Path | None, agreement: str | None, recipient: str | None) -> None:
    """Check a data package or a counts result (FILE.json) offline.

    Packages: signature, each file's size and SHA-256, safe paths. Counts
    results: the provider's signature over the canonical result, and whose
    result it is. Prints each check as it passes; exits 1 naming the first
    that fails.
    """
    if (trust_list_path is None) == (jwks_path is None):
        raise click.UsageError("give exactly one of --trust-list or --key")
    if anchor_path is not None and trust_list_path is None:
        raise click.UsageError("--anchor checks a trust list; give --trust-list too")
    keys: KeySet | TrustList
    if trust_list_path is not None:
        keys = _trust_list(trust_list_path, anchor_path)
    else:
        assert jwks_path is not None
        keys = _jwks(jwks_path)
    if package.suffix.lower() == ".json":
        _verify_counts(package, keys, agreement=agreement, recipient=recipient)
        return
    report = verify_package(package, keys, on_check=_print_check)
    if not report.ok:
        err.print(f"FAILED: {report.failure}", markup=False, highlight=False)
        sys.exit(1)
    out.print(f"OK: {package.name} is complete and signed", markup=False)


def _verify_counts(path: Path, keys: KeySet | TrustList, *, agreement: str | None,
                   recipient: str | None) -> None:
    try:
        document = read_counts(path)
    except ValueError as e:
        fail(str(e))
    report = check_counts(document, keys, agreement=agreement, recipient=recipient,
                          on_check=_print_check)
    if not report.ok or report.result is None:
        err.print(f"FAILED: {report.failure}", markup=False, highlight=False)
        sys.exit(1)
    result = report.result
    index = (result.get("log") or {}).get("index")
    out.print(f"OK: {path.name} is a counts result signed by {result['provider']} for "
              f"{result.get('recipient')} under {result.get('agreement') or 'its own policy'} "
              f"(dataset {result['dataset']['name']} v{result['dataset']['version']}, plan "
              f"{result['plan']['digest'][:19]}…, log index {index})", markup=False)


def _print_check(line: str) -> None:
    out.print(f"✓ {line}", markup=False)


def _jwks(path: Path) -> KeySet:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(document, dict) and "kty" in document:
            document = {"keys": [document]}  # a single JWK
        return KeySet.from_jwks(document)
    except (OSError, ValueError, InvalidKey) as e:
        fail(f"{path}: not a usable JWKS ({e})")


def _trust_list(path: Path, anchor_path: Path | None) -> TrustList:
    try:
        jws = path.read_text(encoding="ascii").strip()
    except (OSError, ValueError) as e:
        fail(f"{path}: cannot read the trust list ({e})")
    if anchor_path is None:
        trust_list = _self_signed_trust_list(path, jws)
        out.print("! trust list: not checked against a registry anchor (give --anchor); "
                  "its member keys are taken as they are", markup=False)
    else:
        try:
            registry_url, anchor = read_anchor(anchor_path)
        except AnchorError as e:
            fail(str(e))
        try:
            trust_list = load_trusted(jws, anchor=anchor)
        except TrustListRejected as e:
            err.print(f"FAILED: trust list: {e}", markup=False, highlight=False)
            sys.exit(1)
        if trust_list.registry_url.rstrip("/") != registry_url:
            err.print(f"FAILED: trust list: issued by {trust_list.registry_url}, the anchor is "
                      f"for {registry_url}", markup=False, highlight=False)
            sys.exit(1)
        _print_check(f"trust list: version {trust_list.version} of {registry_url}, "
                     f"{len(trust_list.members)} members, signed by the anchored registry key "
                     f"(valid until {trust_list.expires_at:%Y-%m-%d %H:%M} UTC)")
    return trust_list


def _self_signed_trust_list(path: Path, jws: str) -> TrustList:
    """A trust list checked only against the registry keys it names itself (no anchor)."""
    try:
        segment = jws.split(".")[1]
        document = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        registry_keys = KeySet.from_jwks(document["registry"]["keys"])
        return load_trusted(jws, anchor=registry_keys)
    except (IndexError, KeyError, TypeError, ValueError, InvalidKey, TrustListRejected) as e:
        fail(f"{path}: not a readable trust list ({e})")
