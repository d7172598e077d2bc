"""Small helpers shared by the services' settings modules."""

from __future__ import annotations

import ipaddress
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from corridor.errors import CorridorError

MEMBER_ID_RE = re.compile(r"[a-z]{2}-[a-z0-9][a-z0-9-]{1,30}")
COUNTRY_RE = re.compile(r"[A-Z]{2}")


class SettingsError(CorridorError):
    """A service directory or its configuration is missing or invalid."""

    title = "Service misconfigured"
    public = False


def toml_string(value: str) -> str:
    """Quote a string as a TOML basic string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def validate_identity(member_id: str, country: str) -> None:
    """Refuse malformed member ids and country codes with a one-line reason."""
    if not MEMBER_ID_RE.fullmatch(member_id):
        raise SettingsError(
            f"member id {member_id!r} must look like 'ru-lotl': a 2-letter country prefix, "
            "a dash, then 2-31 lower-case letters, digits or dashes"
        )
    if not COUNTRY_RE.fullmatch(country):
        raise SettingsError(f"country {country!r} must be an ISO 3166-1 alpha-2 code such as RU")


#: Most reverse proxies a service may be told to trust for ``X-Forwarded-*``.
MAX_PROXIES = 5


def proxies_setting(value: object) -> int:
    """The ``proxies`` setting: how many reverse proxies to trust, 0 to :data:`MAX_PROXIES`.

    A negative count would make ProxyFix read an ``X-Forwarded-For`` entry the
    client wrote itself, so anything but a small whole number is refused.

    :raises SettingsError: not a whole number from 0 to :data:`MAX_PROXIES`.
    """
    if type(value) is not int or not 0 <= value <= MAX_PROXIES:
        raise SettingsError(f"proxies = {value!r}: must be a whole number from 0 to "
                            f"{MAX_PROXIES} (1 behind one TLS reverse proxy)")
    return value


def time_zone_setting(value: object) -> str:
    """The ``time_zone`` setting: an IANA zone name (``Asia/Vladivostok``) the pages show times in.

    :raises SettingsError: not a zone this machine's time-zone database knows.
    """
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"time_zone = {value!r}: give an IANA zone name such as "
                            "'Asia/Vladivostok' or 'UTC'")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise SettingsError(f"time_zone = {value!r} is not a known time zone (IANA names "
                            "such as 'Asia/Vladivostok', 'Asia/Harbin', 'UTC')") from e
    return value



Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Who may read ``/metrics`` unless the config says otherwise: this host only.
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def metrics_from_setting(value: object) -> tuple[Network, ...]:
    """The ``metrics_from`` setting: the networks that may read ``/metrics``
    (``["127.0.0.1/32", "10.0.0.0/8"]``; a bare address is one host; ``[]``: nobody).
    Absent (``None``): :data:`LOOPBACK`.

    :raises SettingsError: not a list, or an entry that is not an address or a network
        with its host bits clear.
    """
    if value is None:
        return LOOPBACK
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"metrics_from = {value!r}: give a list of networks such as "
                            '["127.0.0.1/32", "10.0.0.0/8"] ([] turns it off)')
    networks = []
    for entry in value:
        try:
            networks.append(ipaddress.ip_network(entry.strip()))
        except ValueError as e:
            raise SettingsError(f"metrics_from: {entry!r} is not a network ({e})") from e
    return tuple(networks)
