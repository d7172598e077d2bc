"""One root for the errors the services and tools report: :class:`corridor.errors.CorridorError`.

Every exception class defined outside the foundations is a ``CorridorError``
(so it carries an HTTP status and title, and the CLI and pages print it the
same way), except the few listed below with the reason they are not.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from corridor.errors import CorridorError

PACKAGES = ("corridor", "node", "registry", "audit", "deploy")

#: Exceptions that are deliberately not ours to report, and why.
NOT_OURS = {
    # The registry's answer as the node received it: they carry the registry's
    # HTTP status, not one the node would answer with; wrapped where caught.
    "node.exchange.registry_client.RegistryError",
    "node.exchange.registry_client.RegistryUnreachable",
    "node.exchange.oauth_client.TokenError",
    # Raised inside libraries' own error handling, so they must be the libraries' kind:
    # an httpx transport error (a refused address is a failed connection) and an
    # OAuth2 error that authlib renders as RFC 6749 JSON at the token endpoint.
    "corridor.outbound.InwardAddress",
    "registry.exchange.oauth.InvalidTargetError",
    # Internal signals that never leave the module that raises them.
    "node.data.validation.FieldProblem",
    "corridor.pages.FormInvalid",
}


def _exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if info.name.endswith(("wsgi", ".migrations.env")) or ".versions." in info.name:
                continue  # these run on import (a service directory, Alembic's context)
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == info.name \
                        and not cls.__name__.startswith("_"):
                    found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return list(found.values())


def test_every_service_error_has_the_one_root() -> None:
    classes = _exception_classes()
    assert len(classes) > 20, "the walk found too few exception classes"
    strays = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes
                    if not issubclass(c, CorridorError)
                    and f"{c.__module__}.{c.__qualname__}" not in NOT_OURS)
    assert strays == []


@pytest.mark.parametrize("name", sorted(NOT_OURS))
def test_each_exception_listed_as_not_ours_still_exists(name: str) -> None:
    module, _, cls = name.rpartition(".")
    assert isinstance(getattr(importlib.import_module(module), cls), type)


def test_operators_errors_keep_their_details_off_the_wire() -> None:
    from corridor.anchor import AnchorError
    from corridor.config import SettingsError
    from corridor.keystore import KeystoreError
    from node.data.policy_store import PolicyFileError

    for cls in (AnchorError, KeystoreError, SettingsError, PolicyFileError):
        assert not cls.public, cls
        assert 500 <= cls.status < 600, cls
