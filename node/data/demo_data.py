"""Deterministic, seeded synthetic demo data for Corridor nodes.

Two generators:

* :func:`generate_camtrap` writes a Camtrap DP 1.0.2 package (deployments, media,
  observations, plus an ``individuals`` resource) for one side of the Russia-China
  border: Land of the Leopard NP (``ru``) or Northeast Tiger and Leopard NP (``cn``).
  Rows are written as they are generated, so memory stays flat in the number of
  observations; only per-deployment and per-individual state is held.
* :func:`generate_bird_counts` writes a Darwin Core sampling-event dataset
  (events + occurrences) of monthly flyway counts of three target species.

Everything is derived from ``random.Random`` seeded with a string built from the
arguments, so the same arguments give byte-identical files on every run and every
machine. Nothing reads the clock, the environment or ``uuid4``.

All people, camera serials and counts are fictional. Park names and coordinates are
real enough to look right on a map; nothing here is real monitoring data.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import uuid
from bisect import bisect
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import cache
from itertools import accumulate, pairwise
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple

from policies.vocabulary import (
    DEPLOYMENT_FIELDS,
    INDIVIDUAL_FIELDS,
    MEDIA_FIELDS,
    OBSERVATION_FIELDS,
)

__all__ = [
    "CAMTRAP_SCHEMA_URLS",
    "CENSUS_WINDOW",
    "DEPLOYMENT_FIELDS",
    "EVENT_FIELDS",
    "GENOTYPED",
    "INDIVIDUAL_FIELDS",
    "MEDIA_FIELDS",
    "OBSERVATION_FIELDS",
    "OCCURRENCE_FIELDS",
    "GeneratedPackage",
    "Individual",
    "Side",
    "border_longitude",
    "camera_count",
    "cross_border_truth",
    "generate_bird_counts",
    "generate_camtrap",
    "genotype",
    "individual_registry",
]

Side = Literal["ru", "cn"]

CAMTRAP_PROFILE_URL = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/camtrap-dp-profile.json"
CAMTRAP_SCHEMA_URLS: dict[str, str] = {
    name: f"https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/{name}-table-schema.json"
    for name in ("deployments", "media", "observations")
}

# Column order of the published 1.0.2 table schemas (Camtrap DP requires it).
EVENT_FIELDS = (
    "eventID", "eventDate", "samplingProtocol", "sampleSizeValue", "sampleSizeUnit",
    "samplingEffort", "locationID", "locality", "country", "countryCode", "decimalLatitude",
    "decimalLongitude", "geodeticDatum", "coordinateUncertaintyInMeters",
)
OCCURRENCE_FIELDS = (
    "occurrenceID", "eventID", "basisOfRecord", "scientificName", "individualCount",
    "occurrenceStatus", "vernacularName", "taxonRank", "kingdom",
)

PROGRESS_EVERY = 10_000  # observations between progress() calls
_NAMESPACE = uuid.UUID("6f0c3a52-8d1e-5b7a-9c4e-2f1d0b3a6e58")  # fixed: deterministic ids
_EPOCH = date(1970, 1, 1)
_SURVEY_FIRST = date(2023, 1, 1)
_SURVEY_LAST = date(2024, 12, 31)
_MACHINE = "CorridorNet demo classifier v1 (synthetic)"


def _rng(*parts: object) -> random.Random:
    """A generator seeded from a string; str seeds are hashed with SHA-512, so stable."""
    return random.Random("corridor-demo/" + "/".join(map(str, parts)))  # noqa: S311 - not crypto


def _weighted(rng: random.Random, values: Sequence[Any], cum: Sequence[float]) -> Any:
    """Pick one of ``values`` with cumulative weights ``cum`` (faster than choices())."""
    return values[bisect(cum, rng.random() * cum[-1])]


# --------------------------------------------------------------------------- clock


class _Clock:
    """Formats epoch seconds as Camtrap DP local datetimes with a fixed offset.

    Built from cached pieces (date per day, "THH:MM:" per minute, "SS+hh:mm" per
    second) rather than ``strftime``: several times faster, which matters at
    millions of timestamps.
    """

    _MINUTES = tuple(f"T{m // 60:02d}:{m % 60:02d}:" for m in range(1440))

    def __init__(self, offset_hours: int) -> None:
        self.offset = offset_hours * 3600
        sign = "+" if offset_hours >= 0 else "-"
        self.suffix = f"{sign}{abs(offset_hours):02d}:00"
        self._seconds = tuple(f"{s:02d}{self.suffix}" for s in range(60))
        self._days: dict[int, str] = {}

    def format(self, ts: int) -> str:
        """``2023-05-01T22:14:05+10:00`` for an epoch second."""
        day, sec = divmod(ts + self.offset, 86400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = (_EPOCH + timedelta(days=day)).isoformat()
        minute, second = divmod(sec, 60)
        return prefix + self._MINUTES[minute] + self._seconds[second]

    def local_date(self, ts: int) -> date:
        """The local calendar date of an epoch second."""
        return _EPOCH + timedelta(days=(ts + self.offset) // 86400)

    def at(self, day: date, seconds_of_day: int) -> int:
        """Epoch second of a local wall-clock time on ``day``."""
        return (day - _EPOCH).days * 86400 + seconds_of_day - self.offset


# ----------------------------------------------------------------------- geography

# Simplified Russia-China border west of Peter the Great Gulf, (lat, lon) south→north.
_BORDER = (
    (42.40, 130.64), (42.70, 130.68), (42.90, 130.78), (43.05, 130.92),
    (43.25, 131.08), (43.45, 131.18), (43.70, 131.24),
)


def border_line() -> list[tuple[float, float]]:
    """The simplified border as (longitude, latitude) points, south to north (for maps)."""
    return [(lon, lat) for lat, lon in _BORDER]


def border_longitude(lat: float) -> float:
    """Longitude of the simplified border line at ``lat`` (Russia east, China west)."""
    if lat <= _BORDER[0][0]:
        return _BORDER[0][1]
    for (lat0, lon0), (lat1, lon1) in pairwise(_BORDER):
        if lat <= lat1:
            return lon0 + (lon1 - lon0) * (lat - lat0) / (lat1 - lat0)
    return _BORDER[-1][1]


def _km(lat0: float, lon0: float, lat1: float, lon1: float) -> float:
    """Equirectangular distance in km; plenty for a 100 km study area."""
    dy = (lat1 - lat0) * 111.2
    dx = (lon1 - lon0) * 111.2 * math.cos(math.radians((lat0 + lat1) / 2))
    return math.hypot(dx, dy)


def _border_km(lat: float, lon: float) -> float:
    return abs(lon - border_longitude(lat)) * 111.2 * math.cos(math.radians(lat))


# --------------------------------------------------------------------------- sides


@dataclass(frozen=True)
class _SideProfile:
    side: Side
    prefix: str
    member_id: str
    utc_offset_hours: int
    park: str
    park_short: str
    language: str  # ISO 639-3 code of the local vernacular names
    lat_range: tuple[float, float]
    far_lon: float  # eastern limit (ru) or western limit (cn) of the camera area
    lon_cap: float  # cn cameras stay west of this even where the border bends east
    sectors: tuple[str, ...]
    staff: tuple[str, ...]
    experts: tuple[str, ...]
    camera_models: tuple[str, ...]
    habitats: tuple[str, ...]

    def on_side(self, lat: float, lon: float, margin: float = 0.02) -> bool:
        """Whether a point lies in this side's camera area, ``margin`` degrees off the border."""
        lat0, lat1 = self.lat_range
        if not lat0 <= lat <= lat1:
            return False
        border = border_longitude(lat)
        if self.side == "ru":
            return border + margin <= lon <= self.far_lon
        return self.far_lon <= lon <= min(border - margin, self.lon_cap)


_SIDES: dict[str, _SideProfile] = {
    "ru": _SideProfile(
        side="ru", prefix="RU", member_id="ru-lotl", utc_offset_hours=10,
        park="Land of the Leopard National Park", park_short="LotL", language="rus",
        lat_range=(42.80, 43.40), far_lon=131.45, lon_cap=180.0,
        sectors=("Kedrovaya Pad", "Barsovy", "Nezhinskoe", "Borisovskoe Plateau",
                 "Gvozdevo", "Narva"),
        # Obviously fictional names: Testov ("test"), Primerova ("example"), Demov ("demo").
        staff=("Ivan Testov", "Olga Primerova", "Dmitri Demov", "Anna Obraztsova"),
        experts=("Elena Fiktivnaya", "Pavel Makettov"),
        camera_models=("Reconyx-HF2X", "Bushnell-Core DS-4K", "Browning-Dark Ops Pro XD"),
        habitats=("Korean pine-broadleaf forest on a ridge",
                  "Mongolian oak forest on a south-facing slope",
                  "Riparian valley with Manchurian ash and elm",
                  "Secondary birch-oak forest near abandoned fields",
                  "Larch and oak forest on a rocky crest"),
    ),
    "cn": _SideProfile(
        side="cn", prefix="CN", member_id="cn-ntlnp", utc_offset_hours=8,
        park="Northeast Tiger and Leopard National Park", park_short="NTLNP", language="zho",
        lat_range=(43.00, 43.60), far_lon=130.40, lon_cap=131.10,
        sectors=("Hunchun", "Chunhua", "Machuanzi", "Yangpao", "Jingxin", "Wangqing"),
        # Obviously fictional names: Shili (示例 example), Ceshi (测试 test), Yanshi (演示 demo).
        staff=("Li Shili", "Wang Ceshi", "Zhang Yanshi", "Chen Moni"),
        experts=("Liu Xuni", "Zhao Jiashe"),
        camera_models=("Ltl Acorn-6210MC", "Reconyx-HF2X", "Bushnell-Core DS-4K"),
        habitats=("Mongolian oak forest on a slope",
                  "Korean pine-broadleaf mixed forest",
                  "Riparian forest along a mountain stream",
                  "Secondary forest with cattle grazing",
                  "Birch-larch forest on a ridge"),
    ),
}


def _side_profile(side: str) -> _SideProfile:
    try:
        return _SIDES[side]
    except KeyError:
        raise ValueError(f"side must be 'ru' or 'cn', not {side!r}") from None


# --------------------------------------------------------------------------- taxa


@dataclass(frozen=True)
class _Activity:
    """Diel activity as a mixture of normal peaks (solar hours) plus a uniform part."""

    peaks: tuple[tuple[float, float], ...]  # (mean solar hour, sd hours)
    cum: tuple[float, ...]  # cumulative weights, peaks then uniform

    @classmethod
    def of(cls, uniform: float, *peaks: tuple[float, float, float]) -> _Activity:
        """Build from a uniform weight and (mean hour, sd hours, weight) peaks."""
        weights = [w for _, _, w in peaks] + [uniform]
        return cls(tuple((m, s) for m, s, _ in peaks), tuple(accumulate(weights)))

    def sample(self, rng: random.Random) -> int:
        """Seconds after solar midnight."""
        i = bisect(self.cum, rng.random() * self.cum[-1])
        if i >= len(self.peaks):
            return int(rng.random() * 86400)
        mean, sd = self.peaks[i]
        return int((rng.gauss(mean, sd) % 24.0) * 3600) % 86400


_CATLIKE = _Activity.of(0.15, (22.5, 2.5, 0.45), (5.0, 1.2, 0.25), (18.8, 1.0, 0.15))
_CREPUSCULAR = _Activity.of(0.2, (5.5, 1.3, 0.4), (18.7, 1.3, 0.4))
_NOCTURNAL = _Activity.of(0.15, (0.0, 3.0, 0.85))
_BOAR = _Activity.of(0.3, (22.0, 3.0, 0.5), (6.0, 2.0, 0.2))
_DIURNAL = _Activity.of(0.05, (12.0, 2.8, 0.95))
_ANY = _Activity.of(1.0)


@dataclass(frozen=True)
class _Taxon:
    key: str
    scientific_name: str  # "" where the observation is not of an animal taxon
    observation_type: str
    guild: str  # cat | prey | domestic | human | vehicle | blank | unknown
    rank: str
    vernacular: dict[str, str]
    weight: dict[str, float]  # % of events by side, before per-camera modulation
    activity: _Activity
    group_sizes: tuple[int, ...] = (1,)
    group_cum: tuple[float, ...] = (1.0,)
    id_prefix: str = ""
    behaviors: tuple[str, ...] = ()


def _groups(*pairs: tuple[int, float]) -> dict[str, Any]:
    return {"group_sizes": tuple(n for n, _ in pairs),
            "group_cum": tuple(accumulate(w for _, w in pairs))}


_PREY_BEHAVIORS = ("walking", "foraging", "running", "vigilant")
_TAXA: tuple[_Taxon, ...] = (
    _Taxon("roe", "Capreolus pygargus", "animal", "prey", "species",
           {"eng": "Siberian roe deer", "rus": "сибирская косуля", "zho": "狍"},
           {"ru": 22, "cn": 18}, _CREPUSCULAR, **_groups((1, 70), (2, 22), (3, 8)),
           behaviors=_PREY_BEHAVIORS),
    _Taxon("sika", "Cervus nippon", "animal", "prey", "species",
           {"eng": "sika deer", "rus": "пятнистый олень", "zho": "梅花鹿"},
           {"ru": 14, "cn": 8}, _CREPUSCULAR,
           **_groups((1, 50), (2, 20), (3, 15), (4, 8), (5, 4), (6, 3)),
           behaviors=_PREY_BEHAVIORS),
    _Taxon("boar", "Sus scrofa", "animal", "prey", "species",
           {"eng": "wild boar", "rus": "кабан", "zho": "野猪"},
           {"ru": 12, "cn": 12}, _BOAR,
           **_groups((1, 45), (2, 15), (3, 12), (4, 10), (5, 8), (6, 5), (8, 5)),
           behaviors=("walking", "foraging", "rooting", "wallowing")),
    _Taxon("wapiti", "Cervus canadensis", "animal", "prey", "species",
           {"eng": "wapiti", "rus": "изюбрь", "zho": "马鹿"},
           {"ru": 4, "cn": 5}, _CREPUSCULAR, **_groups((1, 70), (2, 20), (3, 10)),
           behaviors=_PREY_BEHAVIORS),
    _Taxon("raccoondog", "Nyctereutes procyonoides", "animal", "prey", "species",
           {"eng": "raccoon dog", "rus": "енотовидная собака", "zho": "貉"},
           {"ru": 6, "cn": 5}, _NOCTURNAL, **_groups((1, 80), (2, 20)),
           behaviors=("walking", "foraging")),
    _Taxon("badger", "Meles leucurus", "animal", "prey", "species",
           {"eng": "Asian badger", "rus": "азиатский барсук", "zho": "亚洲狗獾"},
           {"ru": 5, "cn": 5}, _NOCTURNAL, **_groups((1, 90), (2, 10)),
           behaviors=("walking", "foraging", "digging")),
    _Taxon("hare", "Lepus mandshuricus", "animal", "prey", "species",
           {"eng": "Manchurian hare", "rus": "маньчжурский заяц", "zho": "东北兔"},
           {"ru": 4, "cn": 4}, _NOCTURNAL, behaviors=("running", "foraging")),
    _Taxon("sable", "Martes zibellina", "animal", "prey", "species",
           {"eng": "sable", "rus": "соболь", "zho": "紫貂"},
           {"ru": 3, "cn": 3}, _CREPUSCULAR, behaviors=("running", "walking")),
    _Taxon("leopard", "Panthera pardus orientalis", "animal", "cat", "subspecies",
           {"eng": "Far Eastern leopard", "rus": "дальневосточный леопард", "zho": "远东豹"},
           {"ru": 5, "cn": 3}, _CATLIKE, id_prefix="PPO",
           behaviors=("walking", "scent marking", "resting", "scratching")),
    _Taxon("tiger", "Panthera tigris altaica", "animal", "cat", "subspecies",
           {"eng": "Amur tiger", "rus": "амурский тигр", "zho": "东北虎"},
           {"ru": 3, "cn": 3}, _CATLIKE, id_prefix="PTA",
           behaviors=("walking", "scent marking", "resting")),
    _Taxon("cattle", "Bos taurus", "animal", "domestic", "species",
           {"eng": "domestic cattle", "rus": "домашний бык", "zho": "黄牛"},
           {"ru": 0.5, "cn": 7}, _DIURNAL,
           **_groups((1, 30), (2, 20), (3, 15), (5, 15), (8, 10), (12, 10)),
           behaviors=("grazing", "walking")),
    _Taxon("human", "", "human", "human", "", {}, {"ru": 7, "cn": 10}, _DIURNAL,
           **_groups((1, 60), (2, 30), (3, 10))),
    _Taxon("vehicle", "", "vehicle", "vehicle", "", {}, {"ru": 3, "cn": 5}, _DIURNAL),
    _Taxon("blank", "", "blank", "blank", "", {}, {"ru": 10.5, "cn": 11}, _ANY),
    _Taxon("unknown", "", "unknown", "unknown", "", {}, {"ru": 1, "cn": 1}, _NOCTURNAL),
)


# --------------------------------------------------------------------- individuals


@dataclass(frozen=True)
class Individual:
    """A tiger or leopard of the simulated population, and its name in each park's catalogue.

    ``individual_id`` is the generator's own identity for the animal (``PPO-017``);
    it never appears in the generated data. Each park names the animals its
    cameras can record in its own scheme (``ru_id`` such as ``PPO-RU-017``,
    ``cn_id`` such as ``CN-L07``), numbered in its own order, so the same animal
    has unrelated names on the two sides, as in the field. Which names belong
    together is the hidden ground truth (:func:`cross_border_truth`).
    """

    individual_id: str
    scientific_name: str
    sex: Literal["female", "male"]
    life_stage: Literal["adult", "subadult"]
    home_range: Literal["ru", "cn", "both"]  # "both": a border crosser
    home_latitude: float
    home_longitude: float
    ru_id: str | None = None
    cn_id: str | None = None

    def local_id(self, side: Side) -> str:
        """This animal's ID in ``side``'s catalogue (it must range on that side)."""
        local = self.ru_id if side == "ru" else self.cn_id
        if local is None:
            raise ValueError(f"{self.individual_id} does not range on the {side} side")
        return local

    @property
    def transboundary(self) -> bool:
        """True for individuals recorded on both sides of the border."""
        return self.home_range == "both"

    def ranges_on(self, side: Side) -> bool:
        """Whether this individual can be recorded by ``side``'s cameras."""
        return self.home_range in (side, "both")


# (id prefix, scientific name, residents ru, residents cn, border crossers, range sd km)
_POPULATIONS = (
    ("PPO", "Panthera pardus orientalis", 12, 6, 7, 8.0),
    ("PTA", "Panthera tigris altaica", 6, 4, 5, 15.0),
)
#: The Chinese catalogue's letter per taxon (``CN-L07`` a leopard, ``CN-T03`` a tiger).
_CN_LETTER = {"PPO": "L", "PTA": "T"}
_RANGE_KM = {prefix: sd for prefix, _, _, _, _, sd in _POPULATIONS}


@cache
def individual_registry(seed: int = 2024) -> tuple[Individual, ...]:
    """The shared catalogue of 25 leopards and 15 tigers for ``seed``.

    It does not depend on the side, so both parks use the same IDs for the same
    animals; the ``both`` subset are border crossers, recorded on each side.
    """
    rng = _rng("individuals", seed)
    out: list[Individual] = []
    for prefix, name, n_ru, n_cn, n_both, _ in _POPULATIONS:
        ranges: list[Literal["ru", "cn", "both"]] = []
        ranges += ["ru"] * n_ru
        ranges += ["cn"] * n_cn
        ranges += ["both"] * n_both
        rng.shuffle(ranges)
        for number, home_range in enumerate(ranges, start=1):
            lat, lon = _home_centre(home_range, rng)
            out.append(Individual(
                individual_id=f"{prefix}-{number:03d}",
                scientific_name=name,
                sex="female" if rng.random() < 0.55 else "male",
                life_stage="adult" if rng.random() < 0.85 else "subadult",
                home_range=home_range,
                home_latitude=round(lat, 4),
                home_longitude=round(lon, 4),
            ))
    return tuple(_with_local_ids(out, seed))


def _with_local_ids(animals: list[Individual], seed: int) -> list[Individual]:
    """Give each animal its name in the catalogue of each side it ranges on.

    Each park numbers its own animals per taxon in an order of its own (a
    separate random stream, so the rest of the data does not change with it).
    """
    rng = _rng("local-ids", seed)
    names: dict[tuple[str, str], str] = {}
    for prefix, *_ in _POPULATIONS:
        for side in ("ru", "cn"):
            ranging = [a.individual_id for a in animals
                       if a.individual_id.startswith(prefix) and a.home_range in (side, "both")]
            rng.shuffle(ranging)
            for number, animal in enumerate(ranging, start=1):
                names[side, animal] = (f"{prefix}-RU-{number:03d}" if side == "ru"
                                       else f"CN-{_CN_LETTER[prefix]}{number:02d}")
    return [replace(a, ru_id=names.get(("ru", a.individual_id)),
                    cn_id=names.get(("cn", a.individual_id))) for a in animals]


def cross_border_truth(seed: int = 2024) -> dict[str, tuple[str, str]]:
    """The hidden ground truth: each border crosser's RU and CN names, by taxon's animal.

    ``{generator id: (ru local id, cn local id)}`` for every animal that ranges
    on both sides. Only tests and the demo's final check may use it: the
    parks learn it by comparing photographs (the match ledger).
    """
    return {a.individual_id: (a.local_id("ru"), a.local_id("cn"))
            for a in individual_registry(seed) if a.transboundary}


def _home_centre(home_range: str, rng: random.Random) -> tuple[float, float]:
    """A home-range centre: inside one side, or astride the border for crossers."""
    if home_range == "both":
        lat = rng.uniform(43.02, 43.38)  # where both camera areas face each other
        return lat, border_longitude(lat) + rng.uniform(-0.04, 0.04)
    profile = _SIDES[home_range]
    while True:
        lat = rng.uniform(*profile.lat_range)
        lon = rng.uniform(130.40, 131.45)
        if profile.on_side(lat, lon, margin=0.05):
            return lat, lon


# ------------------------------------------------------------------ camera layout


@dataclass(frozen=True)
class _Location:
    location_id: str
    name: str
    lat: float
    lon: float
    uncertainty: int
    feature_type: str
    habitat: str
    camera_id: str
    camera_model: str
    camera_height: float
    camera_heading: int
    camera_tilt: int
    camera_delay: int
    detection_distance: float
    border_km: float
    array: str
    activity: float  # relative trigger rate of this station
    taxon_cum: tuple[float, ...]  # cumulative event weights over _TAXA
    individuals: dict[str, tuple[tuple[Individual, ...], tuple[float, ...]]]


@dataclass(frozen=True)
class _Deployment:
    deployment_id: str
    location: _Location
    start: int  # epoch seconds
    end: int
    setup_by: str
    groups: str
    comment: str
    classified_at: int  # when the human expert processed the card
    machine_at: int  # when the classifier ran

    @property
    def weight(self) -> float:
        """Expected share of events: trigger rate times days deployed."""
        return self.location.activity * (self.end - self.start) / 86400


def camera_count(observations: int) -> int:
    """Camera stations per side: 60 for 20k observations, growing gently to 400."""
    return max(60, min(400, round(60 * math.sqrt(max(observations, 1) / 20_000))))


_FEATURES = ("trailGame", "roadDirt", "trailHiking", "waterSource", "roadPaved")
_FEATURE_CUM = tuple(accumulate((45, 30, 10, 10, 5)))


def _grid_points(profile: _SideProfile, n: int, rng: random.Random) -> list[tuple[float, float]]:
    """``n`` points on a jittered grid over the side's camera area, north to south."""
    lat0, lat1 = profile.lat_range
    lon_lo, lon_hi = 130.40, 131.45
    coslat = math.cos(math.radians((lat0 + lat1) / 2))
    step = math.sqrt((lat1 - lat0) * (lon_hi - lon_lo) * coslat / (2 * n))
    while True:
        cells = []
        rows = int((lat1 - lat0) / step) + 1
        cols = int((lon_hi - lon_lo) * coslat / step) + 1
        for r in range(rows):
            for c in range(cols):
                lat = lat1 - (r + 0.5) * step
                lon = lon_lo + (c + 0.5) * step / coslat
                if profile.on_side(lat, lon, margin=0.03):
                    cells.append((lat, lon))
        if len(cells) >= n:
            break
        step *= 0.95
    chosen = sorted(rng.sample(range(len(cells)), n))
    points = []
    for i in chosen:
        lat, lon = cells[i]
        jlat = lat + rng.uniform(-0.35, 0.35) * step
        jlon = lon + rng.uniform(-0.35, 0.35) * step / coslat
        points.append((jlat, jlon) if profile.on_side(jlat, jlon) else (lat, lon))
    return points


def _layout(profile: _SideProfile, n: int, registry: Sequence[Individual],
            rng: random.Random) -> list[_Location]:
    """Camera stations with their fixed attributes and local species/individual mix."""
    eligible = [ind for ind in registry if ind.ranges_on(profile.side)]
    locations = []
    for number, (lat, lon) in enumerate(_grid_points(profile, n, rng), start=1):
        lat, lon = round(lat, 5), round(lon, 5)
        feature = _weighted(rng, _FEATURES, _FEATURE_CUM)
        road = feature in ("roadDirt", "roadPaved")
        cat_affinity = rng.lognormvariate(0, 0.4) * (1.6 if feature in ("trailGame",
                                                                       "roadDirt") else 1.0)
        disturbance = rng.lognormvariate(0, 0.7)
        weights = []
        for taxon in _TAXA:
            w = taxon.weight[profile.side]
            if taxon.guild == "cat":
                w *= cat_affinity
            elif taxon.guild in ("human", "domestic"):
                w *= disturbance
            elif taxon.guild == "vehicle":
                w *= disturbance * (2.5 if road else 0.15)
            elif taxon.guild == "prey":
                w *= rng.lognormvariate(0, 0.3)
            elif taxon.guild == "blank" and feature == "waterSource":
                w *= 1.5
            weights.append(w)
        individuals = {}
        for prefix in _RANGE_KM:
            pool = tuple(ind for ind in eligible if ind.individual_id.startswith(prefix))
            sd = _RANGE_KM[prefix]
            # Gaussian home-range use plus a small floor: wanderers turn up anywhere.
            iw = [0.03 + math.exp(-(_km(lat, lon, i.home_latitude, i.home_longitude) ** 2)
                                  / (2 * sd * sd)) for i in pool]
            individuals[prefix] = (pool, tuple(accumulate(iw)))
        sector = profile.sectors[int((lon - 130.40) / 1.05 * len(profile.sectors))
                                 % len(profile.sectors)]
        border_km = _border_km(lat, lon)
        locations.append(_Location(
            location_id=f"{profile.prefix}-L{number:03d}",
            name=f"{sector} {number:03d}",
            lat=lat, lon=lon,
            uncertainty=rng.choice((5, 10, 10, 15, 20, 30)),
            feature_type=feature,
            habitat=rng.choice(profile.habitats),
            camera_id=f"{profile.prefix}-C{rng.randrange(10_000, 100_000)}",
            camera_model=rng.choice(profile.camera_models),
            camera_height=round(rng.uniform(0.4, 0.9), 2),
            camera_heading=rng.randrange(0, 360),
            camera_tilt=rng.choice((0, 0, -5, -10)),
            camera_delay=rng.choice((0, 1, 5, 10, 30)),
            detection_distance=round(rng.uniform(5.0, 20.0), 1),
            border_km=border_km,
            array=f"{profile.prefix}-{'north' if lat >= 43.15 else 'south'}",
            activity=rng.lognormvariate(0, 0.6) * (1.3 if road else 1.0),
            taxon_cum=tuple(accumulate(weights)),
            individuals=individuals,
        ))
    return locations


_SEASONS = ("winter", "winter", "spring", "spring", "spring", "summer",
            "summer", "summer", "autumn", "autumn", "autumn", "winter")
_COMMENTS = ("", "", "", "", "", "", "Batteries replaced at retrieval",
             "Memory card nearly full at retrieval", "Lens fogged on some mornings",
             "Camera found turned slightly by an animal")


def _schedule(profile: _SideProfile, locations: Sequence[_Location], clock: _Clock,
              rng: random.Random) -> list[_Deployment]:
    """Back-to-back deployments of 60-121 days per station across 2023-2024."""
    deployments: list[_Deployment] = []
    for loc in locations:
        day = _SURVEY_FIRST + timedelta(days=rng.randrange(5, 120))
        start = clock.at(day, rng.randrange(9 * 3600, 17 * 3600))
        while True:
            length = rng.randrange(60, 122)
            if day + timedelta(days=length) > _SURVEY_LAST:
                length = (_SURVEY_LAST - day).days
                if length < 60:
                    break
            end_day = day + timedelta(days=length)
            end = clock.at(end_day, rng.randrange(9 * 3600, 17 * 3600))
            session = f"{day.year}-{_SEASONS[day.month - 1]}"
            deployments.append(_Deployment(
                deployment_id=f"{profile.prefix}-D{len(deployments) + 1:04d}",
                location=loc,
                start=start,
                end=end,
                setup_by=rng.choice(profile.staff),
                groups=f"array:{loc.array} | session:{session}",
                comment=rng.choice(_COMMENTS),
                classified_at=clock.at(end_day + timedelta(days=rng.randrange(7, 45)),
                                       rng.randrange(9 * 3600, 18 * 3600)),
                machine_at=end + rng.randrange(3600, 3 * 86400),
            ))
            gap = rng.choice((0, 0, 0, 1, 3, 7, 14))
            if gap == 0:  # re-armed on the same visit
                day, start = end_day, end + rng.randrange(600, 2400)
            else:
                day = end_day + timedelta(days=gap)
                start = clock.at(day, rng.randrange(9 * 3600, 17 * 3600))
    return deployments


def _allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder)."""
    whole = sum(weights)
    quotas = [total * w / whole for w in weights]
    counts = [int(q) for q in quotas]
    order = sorted(range(len(quotas)), key=lambda i: (counts[i] - quotas[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


# -------------------------------------------------------------------------- events


class _Event(NamedTuple):  # a tuple, not a dataclass: cheap to build by the million
    ts: int  # epoch second of the first image
    taxon: _Taxon | None  # None: the camera-setup event at the start of a deployment
    individual: Individual | None
    cubs: bool  # a second observation row: juvenile(s) with their mother


def _plan_events(dep: _Deployment, rows: int, rng: random.Random) -> list[_Event]:
    """Choose what each event of a deployment shows and when, sorted by time.

    Produces exactly ``rows`` observation rows. Times follow each taxon's activity
    pattern in local *solar* time, so both sides see the same diel rhythm whatever
    their clocks say.
    """
    loc = dep.location
    events: list[_Event] = []
    used = 0
    if rows >= 3:
        events.append(_Event(dep.start + rng.randrange(5, 90), None, None, False))
        used = 1
    lo, hi = dep.start + 600, dep.end - 300
    solar_shift = round(loc.lon * 240)  # seconds of solar time ahead of UTC
    first_day = (lo + solar_shift) // 86400
    days = (hi + solar_shift) // 86400 - first_day + 1
    random_ = rng.random
    while used < rows:
        taxon: _Taxon = _weighted(rng, _TAXA, loc.taxon_cum)
        ts = 0
        for _ in range(8):  # rejection: the drawn time must fall inside the deployment
            day = first_day + int(random_() * days)
            ts = day * 86400 + taxon.activity.sample(rng) - solar_shift
            if lo <= ts <= hi:
                break
        else:
            ts = lo + int(random_() * (hi - lo))
        individual = None
        cubs = False
        if taxon.id_prefix and random_() < 0.85:
            pool, cum = loc.individuals[taxon.id_prefix]
            individual = _weighted(rng, pool, cum)
            cubs = (individual.sex == "female" and individual.life_stage == "adult"
                    and used + 2 <= rows and random_() < 0.08)
        events.append(_Event(ts, taxon, individual, cubs))
        used += 2 if cubs else 1
    events.sort(key=itemgetter(0))
    return events


@dataclass
class _Sighting:
    detections: int
    first: int
    last: int
    near_border: bool  # recorded by a camera within NEAR_BORDER_KM of the border


#: A park flags the animals its cameras recorded this close to the border (km).
NEAR_BORDER_KM = 5.0


@dataclass(frozen=True)
class _Card:
    """Per-deployment strings, formatted once rather than per row."""

    deployment_id: str
    folder: str  # "media/<deploymentID>/"
    near_border: bool
    by_human: tuple[str, str, str, str]  # classificationMethod … classificationProbability
    machine_at: str


class _CamtrapWriter:
    """Streams media and observation rows for planned events to their CSV files."""

    def __init__(self, out_dir: Path, profile: _SideProfile, clock: _Clock,
                 rng: random.Random, progress: Callable[[int], None] | None) -> None:
        self.profile = profile
        self.clock = clock
        self.rng = rng
        self.progress = progress
        self.media_count = 0
        self.observation_count = 0
        self.event_count = 0
        self.sightings: dict[str, _Sighting] = {}
        self._next_report = PROGRESS_EVERY
        self._reported = 0
        # These two files hold millions of rows made only of generated IDs, timestamps,
        # numbers and the fixed vocabulary checked here, so rows are joined directly:
        # csv.writer costs ~4x more per row and nothing would need quoting.
        _require_plain_csv(profile.prefix, *profile.experts, _MACHINE, *_FIXED_TEXT,
                           *(t.scientific_name for t in _TAXA),
                           *(b for t in _TAXA for b in t.behaviors))
        self._media = (out_dir / "media.csv").open("w", encoding="utf-8", newline="")
        self._obs = (out_dir / "observations.csv").open("w", encoding="utf-8", newline="")
        self._media.write(",".join(MEDIA_FIELDS) + "\n")
        self._obs.write(",".join(OBSERVATION_FIELDS) + "\n")

    def __enter__(self) -> _CamtrapWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._media.close()
        self._obs.close()

    def write_deployment(self, dep: _Deployment, events: Sequence[_Event]) -> None:
        """Write every event of one deployment: its images, then its observations."""
        fmt, experts = self.clock.format, self.profile.experts
        # One expert processes a whole memory card.
        expert = experts[int(self.rng.random() * len(experts))]
        card = _Card(dep.deployment_id, f"media/{dep.deployment_id}/",
                     dep.location.border_km <= NEAR_BORDER_KM,
                     ("human", expert, fmt(dep.classified_at), ""), fmt(dep.machine_at))
        frame = 0  # the camera's own image counter restarts with each deployment
        for event in events:
            frame = self._write_event(card, event, frame)
            if self.observation_count >= self._next_report:
                self._report()
                self._next_report += PROGRESS_EVERY

    def finish(self) -> None:
        """Report the final count if the last progress call did not."""
        if self._reported != self.observation_count or self.observation_count == 0:
            self._report()

    def _report(self) -> None:
        self._reported = self.observation_count
        if self.progress is not None:
            self.progress(self.observation_count)

    def _write_event(self, card: _Card, event: _Event, frame: int) -> int:
        """Write an event's 1-3 images and its observation row(s); return the frame counter."""
        random_, fmt, prefix = self.rng.random, self.clock.format, self.profile.prefix
        taxon = event.taxon
        guild = taxon.guild if taxon else "setup"
        if taxon is None:
            n_media = 2
        else:
            u = random_()
            n_media = 1 if u < 0.25 else 2 if u < 0.5 else 3  # most cameras shoot bursts of 3
        public = "false" if guild in _PRIVATE_GUILDS else "true"
        favorite = "true" if guild == "cat" and random_() < 0.05 else ""
        ts = event.ts
        lines = []
        first = stamp = fmt(ts)
        for i in range(n_media):
            if i:  # burst interval, or a re-trigger while the animal is still in view
                ts += 1 if random_() < 0.6 else 2 + int(random_() * 28)
                stamp = fmt(ts)
            frame += 1
            self.media_count += 1
            name = f"IMG_{frame:05d}.JPG"
            lines.append(f"{prefix}-M{self.media_count:07d},{card.deployment_id},"
                         f"activityDetection,{stamp},{card.folder}{name},{public},{name},"
                         f"image/jpeg,,{favorite},\n")
        self._media.write("".join(lines))
        self.event_count += 1
        # eventStart/eventEnd are the first and last image times.
        head = (card.deployment_id, "", f"{prefix}-E{self.event_count:07d}", first, stamp,
                "event")
        for row in self._observation_rows(card, event):
            self.observation_count += 1
            self._obs.write(
                ",".join((f"{prefix}-O{self.observation_count:07d}", *head, *row)) + "\n")
        return frame

    def _observation_rows(self, card: _Card, event: _Event) -> list[tuple[str, ...]]:
        """Fields from observationType to observationComments, one tuple per row."""
        random_, taxon = self.rng.random, event.taxon
        if taxon is None:
            return [("human", "setup", "", "1", "", "", "", "", *_EMPTY_POSITION,
                     *card.by_human, "", _SETUP_COMMENT)]
        count = _weighted(self.rng, taxon.group_sizes, taxon.group_cum)
        sex = life_stage = individual_id = tags = behavior = ""
        if taxon.behaviors and random_() < 0.5:
            behavior = taxon.behaviors[int(random_() * len(taxon.behaviors))]
        classification = card.by_human
        if taxon.guild == "cat":
            life_stage = "adult"
            if event.individual is not None:
                ind = event.individual
                individual_id = ind.local_id(self.profile.side)
                sex, life_stage = ind.sex, ind.life_stage
                tags = _ID_TAG
                self._sighted(individual_id, event.ts, card.near_border)
        elif taxon.guild in _MACHINE_GUILDS and random_() < 0.6:
            classification = ("machine", _MACHINE, card.machine_at,
                              f"{0.55 + 0.44 * random_():.3f}")
        if taxon.guild == "prey" and count == 1 and random_() < 0.35:
            sex, life_stage = ("female" if random_() < 0.5 else "male"), "adult"
        shown = "" if taxon.guild == "blank" else str(count)
        rows: list[tuple[str, ...]] = [(
            taxon.observation_type, "", taxon.scientific_name, shown, life_stage, sex, behavior,
            individual_id, *_EMPTY_POSITION, *classification, tags, "")]
        if event.cubs:
            rows.append((taxon.observation_type, "", taxon.scientific_name,
                         "1" if random_() < 0.5 else "2", "juvenile", "", _CUB_BEHAVIOR, "",
                         *_EMPTY_POSITION, *classification, "", _CUB_COMMENT))
        return rows

    def _sighted(self, individual_id: str, ts: int, near_border: bool) -> None:
        seen = self.sightings.get(individual_id)
        if seen is None:
            self.sightings[individual_id] = _Sighting(1, ts, ts, near_border)
        else:
            seen.detections += 1
            seen.first = min(seen.first, ts)
            seen.last = max(seen.last, ts)
            seen.near_border = seen.near_border or near_border


_SETUP_COMMENT = "Camera set up"
_CUB_COMMENT = "With the identified mother"
_CUB_BEHAVIOR = "following"
_ID_TAG = "idMethod:coat-pattern"
_FIXED_TEXT = (_SETUP_COMMENT, _CUB_COMMENT, _CUB_BEHAVIOR, _ID_TAG)


def _require_plain_csv(*values: str) -> None:
    """Refuse text that would need CSV quoting in the directly joined files."""
    for value in values:
        if any(c in value for c in ',"\r\n'):
            raise ValueError(f"{value!r} would need CSV quoting")


# Images of big cats (poaching risk), people and number plates are not public.
_PRIVATE_GUILDS = frozenset({"cat", "human", "vehicle", "setup"})
# What the classifier is trusted with; cats, people and vehicles get a human look.
_MACHINE_GUILDS = frozenset({"prey", "domestic", "blank"})
# individualPositionRadius … bboxHeight: not measured on event-level observations.
_EMPTY_POSITION = ("",) * 7


# ------------------------------------------------------------------ package files


@dataclass(frozen=True)
class GeneratedPackage:
    """What :func:`generate_camtrap` wrote, with row counts per resource."""

    path: Path  # directory containing datapackage.json + CSVs
    deployments: int
    media: int
    observations: int
    individuals: int


def _write_deployments(path: Path, deployments: Sequence[_Deployment], clock: _Clock) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(DEPLOYMENT_FIELDS)
        for dep in deployments:
            loc = dep.location
            tags = "zone:border" if loc.border_km < 5 else "zone:interior"
            out.writerow((
                dep.deployment_id, loc.location_id, loc.name, f"{loc.lat:.5f}",
                f"{loc.lon:.5f}", loc.uncertainty, clock.format(dep.start),
                clock.format(dep.end), dep.setup_by, loc.camera_id, loc.camera_model,
                loc.camera_delay, f"{loc.camera_height:.2f}", "", loc.camera_tilt,
                loc.camera_heading, f"{loc.detection_distance:.1f}", "false", "false",
                loc.feature_type, loc.habitat, dep.groups,
                f"{tags} | borderDistanceKm:{loc.border_km:.1f}", dep.comment,
            ))


#: Share of a park's recorded animals it has genotyped (from scat or hair samples).
GENOTYPED = 0.6


def genotype(animal: Individual, side: Side, seed: int) -> str:
    """The animal's code on the common marker panel, if ``side`` genotyped it, else "".

    The code depends on the animal only, so both parks that genotype one animal
    hold the same code (as a shared microsatellite panel gives); whether a
    park genotyped it is drawn per side from a stream of its own.
    """
    if _rng("genotyped", side, seed, animal.individual_id).random() >= GENOTYPED:
        return ""
    code = hashlib.sha256(f"panel|{seed}|{animal.individual_id}".encode()).hexdigest()
    return f"MS-{code[:12].upper()}"


def _write_individuals(path: Path, registry: Sequence[Individual],
                       sightings: dict[str, _Sighting], clock: _Clock, side: Side,
                       seed: int) -> int:
    """Individuals recorded in this package, under this park's own catalogue IDs."""
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(INDIVIDUAL_FIELDS)
        for ind in sorted((i for i in registry if i.ranges_on(side)),
                          key=lambda i: i.local_id(side)):
            seen = sightings.get(ind.local_id(side))
            if seen is None:
                continue
            note = (f"Recorded within {NEAR_BORDER_KM:g} km of the border: a candidate for "
                    "matching with the other side's catalogue" if seen.near_border else "")
            out.writerow((ind.local_id(side), ind.scientific_name, ind.sex, ind.life_stage,
                          "true" if seen.near_border else "false", clock.format(seen.first),
                          clock.format(seen.last), seen.detections, genotype(ind, side, seed),
                          note))
            rows += 1
    return rows


#: Each park's catalogue scheme, as a pattern and in words.
_ID_SCHEMES: dict[Side, tuple[str, str]] = {
    "ru": ("^(PPO|PTA)-RU-[0-9]{3}$",
           "This park's catalogue ID: PPO-RU-nnn a Far Eastern leopard, PTA-RU-nnn an Amur "
           "tiger."),
    "cn": ("^CN-[LT][0-9]{2}$",
           "This park's catalogue ID: CN-Lnn a Far Eastern leopard, CN-Tnn an Amur tiger."),
}


def _individuals_schema(side: Side) -> dict[str, Any]:
    """The ``individuals`` resource's table schema, with ``side``'s ID scheme."""
    pattern, described = _ID_SCHEMES[side]
    schema: dict[str, Any] = json.loads(json.dumps(_INDIVIDUALS_SCHEMA))
    schema["fields"][0]["description"] = described
    schema["fields"][0]["constraints"]["pattern"] = pattern
    return schema


_INDIVIDUALS_SCHEMA: dict[str, Any] = {
    "name": "individuals",
    "title": "Individuals",
    "description": "Recognised tigers and leopards recorded in this package, under this "
                   "park's own catalogue IDs (the other park names the same animal "
                   "differently; matches are agreed in Corridor's match ledger); "
                   "observations.individualID refers to individualID.",
    "missingValues": [""],
    "primaryKey": "individualID",
    "fields": [
        {"name": "individualID", "type": "string",
         "constraints": {"required": True, "unique": True}},
        {"name": "scientificName", "type": "string", "constraints": {"required": True}},
        {"name": "sex", "type": "string",
         "constraints": {"required": False, "enum": ["female", "male"]}},
        {"name": "lifeStage", "type": "string",
         "constraints": {"required": False, "enum": ["adult", "subadult", "juvenile"]}},
        {"name": "transboundary", "type": "boolean",
         "description": f"Recorded within {NEAR_BORDER_KM:g} km of the border (a candidate "
                        "for matching across it).",
         "constraints": {"required": True}},
        {"name": "firstSeen", "type": "datetime", "format": "%Y-%m-%dT%H:%M:%S%z",
         "description": "First detection in this package.", "constraints": {"required": True}},
        {"name": "lastSeen", "type": "datetime", "format": "%Y-%m-%dT%H:%M:%S%z",
         "description": "Last detection in this package.", "constraints": {"required": True}},
        {"name": "detections", "type": "integer",
         "description": "Event-level observations of this individual in this package.",
         "constraints": {"required": True, "minimum": 1}},
        {"name": "genotype", "type": "string",
         "description": "Code on the marker panel both parks use (empty: not genotyped); "
                        "the same animal has the same code on either side.",
         "constraints": {"required": False}},
        {"name": "notes", "type": "string", "constraints": {"required": False}},
    ],
}


def _datapackage(profile: _SideProfile, seed: int, locations: Sequence[_Location],
                 deployments: Sequence[_Deployment], clock: _Clock) -> dict[str, Any]:
    """Package metadata in the shape of the Camtrap DP 1.0.2 example."""
    lats = [loc.lat for loc in locations]
    lons = [loc.lon for loc in locations]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    start = clock.local_date(min(d.start for d in deployments))
    end = clock.local_date(max(d.end for d in deployments))
    created = end + timedelta(days=30)
    title = f"Synthetic camera-trap observations of Amur tigers and Far Eastern leopards, " \
            f"{profile.park} (Corridor demo)"
    person_a, person_b = profile.experts
    resources: list[dict[str, Any]] = [
        {"name": name, "path": f"{name}.csv", "profile": "tabular-data-resource",
         "format": "csv", "mediatype": "text/csv", "encoding": "utf-8",
         "schema": CAMTRAP_SCHEMA_URLS[name]}
        for name in ("deployments", "media", "observations")
    ]
    resources.append({
        "name": "individuals", "path": "individuals.csv", "profile": "tabular-data-resource",
        "format": "csv", "mediatype": "text/csv", "encoding": "utf-8",
        "description": "Custom resource, not part of the Camtrap DP model: the recognised "
                       "individuals recorded in this package.",
        "schema": _individuals_schema(profile.side),
    })
    taxonomic = [
        {"scientificName": t.scientific_name, "taxonRank": t.rank,
         "vernacularNames": {"eng": t.vernacular["eng"],
                             profile.language: t.vernacular[profile.language]}}
        for t in sorted(_TAXA, key=lambda t: t.scientific_name)
        if t.scientific_name and t.weight[profile.side] > 0
    ]
    domain = f"{profile.member_id}.example.org"
    return {
        "resources": resources,
        "profile": CAMTRAP_PROFILE_URL,
        "name": f"corridor-demo-{profile.member_id}",
        "id": str(uuid.uuid5(_NAMESPACE, f"camtrap/{profile.side}/{seed}")),
        "created": f"{created.isoformat()}T09:00:00Z",
        "title": title,
        "contributors": [
            {"title": person_a, "email": f"{person_a.lower().replace(' ', '.')}@{domain}",
             "role": "principalInvestigator", "organization": profile.park},
            {"title": person_b, "email": f"{person_b.lower().replace(' ', '.')}@{domain}",
             "role": "contact", "organization": profile.park},
            {"title": profile.park, "role": "rightsHolder"},
            {"title": profile.park, "role": "publisher"},
        ],
        "description": f"{title}. SYNTHETIC DATA generated by corridor node.data.demo_data "
                       f"(seed {seed}) for demonstrations and tests; the individuals, people, "
                       f"cameras and detections are fictional. Camera stations lie on a "
                       f"jittered grid on the {profile.side.upper()} side of the border; "
                       f"individual IDs are shared with the partner park's packages.",
        "version": "1.0.0",
        "keywords": ["camera traps", "Amur tiger", "Far Eastern leopard", "transboundary",
                     "synthetic data"],
        "licenses": [
            {"name": "CC-BY-4.0", "path": "https://creativecommons.org/licenses/by/4.0/",
             "scope": "data"},
            {"name": "CC-BY-NC-4.0", "path": "https://creativecommons.org/licenses/by-nc/4.0/",
             "scope": "media"},
        ],
        "bibliographicCitation": f"{profile.park} ({created.year}). {title}. Version 1.0.0. "
                                 f"Synthetic dataset, seed {seed}.",
        "project": {
            "id": str(uuid.uuid5(_NAMESPACE, f"project/{seed}")),
            "title": "Transboundary monitoring of Amur tigers and Far Eastern leopards "
                     "(Corridor demo)",
            "acronym": "CORRIDOR-DEMO",
            "description": "Joint camera-trap monitoring by Land of the Leopard National Park "
                           "(Russia) and Northeast Tiger and Leopard National Park (China), "
                           "simulated for Corridor demonstrations.",
            "samplingDesign": "systematicRandom",
            "captureMethod": ["activityDetection"],
            "individualAnimals": True,
            "observationLevel": ["event"],
        },
        "coordinatePrecision": 0.0001,
        "spatial": {
            "type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                             [west, south]]],
        },
        "temporal": {"start": start.isoformat(), "end": end.isoformat()},
        "taxonomic": taxonomic,
    }


def generate_camtrap(out_dir: Path, *, side: Side, observations: int = 20_000,
                     seed: int = 2024,
                     progress: Callable[[int], None] | None = None) -> GeneratedPackage:
    """Write a synthetic Camtrap DP 1.0.2 package for one park into ``out_dir``.

    ``observations`` is the exact number of observation rows. Media and observations
    are streamed to disk, so memory does not grow with it. ``progress`` is called
    with the number of observations written so far, about every 10,000 rows and once
    at the end. The same ``(side, observations, seed)`` always gives byte-identical
    files; ``datapackage.json`` is written last.
    """
    profile = _side_profile(side)
    if observations < 0:
        raise ValueError("observations must be >= 0")
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = _Clock(profile.utc_offset_hours)
    registry = individual_registry(seed)
    cameras = camera_count(observations)
    layout_rng = _rng("layout", side, seed, cameras)
    locations = _layout(profile, cameras, registry, layout_rng)
    deployments = _schedule(profile, locations, clock, layout_rng)
    _write_deployments(out_dir / "deployments.csv", deployments, clock)

    event_rng = _rng("events", side, seed, observations)
    quotas = _allocate(observations, [d.weight for d in deployments])
    with _CamtrapWriter(out_dir, profile, clock, event_rng, progress) as writer:
        for dep, rows in zip(deployments, quotas, strict=True):
            writer.write_deployment(dep, _plan_events(dep, rows, event_rng))
        writer.finish()
    n_individuals = _write_individuals(out_dir / "individuals.csv", registry,
                                       writer.sightings, clock, side, seed)
    descriptor = _datapackage(profile, seed, locations, deployments, clock)
    (out_dir / "datapackage.json").write_text(
        json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return GeneratedPackage(path=out_dir, deployments=len(deployments),
                            media=writer.media_count,
                            observations=writer.observation_count,
                            individuals=n_individuals)


# --------------------------------------------------------------------- bird counts

# Monthly multipliers, January first.
_BREEDING = (0, 0, 0, 0.3, 0.9, 1, 1, 0.9, 0.5, 0.1, 0, 0)
_PASSAGE = (0, 0, 0.4, 1, 0.6, 0.05, 0, 0.1, 0.6, 1, 0.4, 0)
_WINTER = (1, 1, 0.7, 0.2, 0, 0, 0, 0, 0, 0.2, 0.8, 1)


@dataclass(frozen=True)
class _BirdSpecies:
    key: str
    names: tuple[str, str]  # (accepted name, name used by sites that keep the old genus)
    vernacular: str
    trend: float  # yearly growth factor


_SPOONBILL = _BirdSpecies("PLAMIN", ("Platalea minor", "Platalea minor"),
                          "Black-faced Spoonbill", 1.06)
_HOODED = _BirdSpecies("GRUMON", ("Grus monacha", "Grus monacha"), "Hooded Crane", 1.0)
_WHITE_NAPED = _BirdSpecies("ANTVIP", ("Antigone vipio", "Grus vipio"), "White-naped Crane",
                            0.97)
_BIRDS = (_SPOONBILL, _HOODED, _WHITE_NAPED)


@dataclass(frozen=True)
class _Site:
    code: str
    locality: str
    country: str
    country_code: str
    lat: float
    lon: float
    uncertainty_m: int
    months: tuple[int, ...]
    visits: int  # counts per surveyed month
    protocol: str
    old_names: bool  # reports White-naped Crane as Grus vipio
    # species key -> ((peak count, seasonal multipliers), ...)
    expected: dict[str, tuple[tuple[float, tuple[float, ...]], ...]]


_WATERBIRD = "Waterbird count (total count from vantage points)"
_ROOST = "Crane roost count (evening flight-in)"
_SITES = (
    _Site("TUMEN", "Tumen River estuary, Khasan district", "Russia", "RU", 42.3470, 130.6680,
          5000, tuple(range(3, 12)), 1, _WATERBIRD, True,
          {"PLAMIN": ((35, _BREEDING),), "GRUMON": ((20, _PASSAGE),),
           "ANTVIP": ((60, _PASSAGE),)}),
    _Site("KHANKA", "Khanka Lake, Khanka Nature Reserve", "Russia", "RU", 44.9530, 132.4210,
          8000, tuple(range(3, 12)), 1, _WATERBIRD, True,
          {"PLAMIN": ((2, _BREEDING),), "GRUMON": ((150, _PASSAGE),),
           "ANTVIP": ((40, _BREEDING), (300, _PASSAGE))}),
    _Site("MURAV", "Muraviovka Park, Amur River floodplain", "Russia", "RU", 49.8550,
          127.6800, 6000, tuple(range(4, 11)), 1, _ROOST, True,
          {"GRUMON": ((400, _PASSAGE),), "ANTVIP": ((60, _BREEDING), (200, _PASSAGE))}),
    _Site("DAURIA", "Daursky Nature Reserve, Torey Lakes", "Russia", "RU", 50.0700, 115.6200,
          10000, tuple(range(4, 11)), 1, _ROOST, True,
          {"GRUMON": ((300, _PASSAGE),), "ANTVIP": ((30, _BREEDING), (500, _PASSAGE))}),
    _Site("KHURKH", "Khurkh River valley", "Mongolia", "MN", 48.3030, 110.4770, 4000,
          tuple(range(5, 10)), 1, _ROOST, True,
          {"GRUMON": ((10, _PASSAGE),), "ANTVIP": ((80, _BREEDING),)}),
    _Site("YANCHENG", "Yancheng coastal wetlands, Jiangsu", "China", "CN", 33.6100, 120.5000,
          10000, tuple(range(1, 13)), 2, _WATERBIRD, False,
          {"PLAMIN": ((60, _PASSAGE), (20, _WINTER)), "GRUMON": ((30, _WINTER),),
           "ANTVIP": ((10, _WINTER),)}),
    _Site("IZUMI", "Izumi crane wintering grounds, Kagoshima", "Japan", "JP", 32.0920,
          130.3000, 3000, (1, 2, 3, 10, 11, 12), 2, _ROOST, False,
          {"PLAMIN": ((5, _WINTER),), "GRUMON": ((12000, _WINTER),),
           "ANTVIP": ((1500, _WINTER),)}),
    _Site("CHEORWON", "Cheorwon Basin", "Republic of Korea", "KR", 38.2500, 127.2200, 6000,
          (1, 2, 3, 10, 11, 12), 1, _ROOST, False,
          {"GRUMON": ((300, _WINTER),), "ANTVIP": ((3000, _WINTER),)}),
    _Site("GANGHWA", "Ganghwa Island tidal flats, Han River estuary", "Republic of Korea",
          "KR", 37.6200, 126.4500, 5000, tuple(range(3, 12)), 1, _WATERBIRD, False,
          {"PLAMIN": ((400, _BREEDING), (150, _PASSAGE))}),
)
_BIRD_YEARS = (2022, 2023, 2024)

#: The coordinated winter census: every wintering site counted in one January window.
CENSUS_WINDOW = (1, 17, 19)
_CENSUS = "Coordinated winter census (total count, census window)"
#: Sites counted only in the census (their regular counts are kept elsewhere).
_CENSUS_ONLY = (
    _Site("ZENGWEN", "Zengwen River estuary, Tainan", "Taiwan", "TW", 23.0450, 120.0880, 3000,
          (), 1, _CENSUS, False, {"PLAMIN": ((2600, _WINTER),)}),
    _Site("MAIPO", "Mai Po and Inner Deep Bay", "Hong Kong, China", "HK", 22.4900, 114.0330,
          2000, (), 1, _CENSUS, False, {"PLAMIN": ((380, _WINTER),)}),
    _Site("HADO", "Hado-ri wetland, Jeju", "Republic of Korea", "KR", 33.5100, 126.8900, 2000,
          (), 1, _CENSUS, False, {"PLAMIN": ((45, _WINTER),)}),
)


def _poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw; normal approximation for large means."""
    if lam <= 0:
        return 0
    if lam > 60:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _bird_count(site: _Site, species: _BirdSpecies, year: int, month: int,
                rng: random.Random) -> int:
    mean = sum(peak * season[month - 1] for peak, season in site.expected.get(species.key, ()))
    mean *= species.trend ** (year - _BIRD_YEARS[0])
    # Gamma-Poisson: counts are overdispersed (flocks arrive and leave together).
    return _poisson(rng, mean * rng.gammavariate(4.0, 0.25)) if mean > 0 else 0


def generate_bird_counts(out_dir: Path, *, seed: int = 2024,
                         countries: Collection[str] | None = None) -> tuple[Path, Path]:
    """Write a Darwin Core sampling-event dataset of flyway counts; return its two files.

    ``countries`` keeps only the sites of those country codes (each partner
    holds its own sites); the counts are the same as in the whole dataset.

    ``events.csv`` holds one row per count (site visit); ``occurrences.csv`` one row
    per target species and count, with ``occurrenceStatus`` ``absent`` and
    ``individualCount`` 0 where the species was looked for and not found. Russian
    and Mongolian sites report White-naped Crane under the synonym *Grus vipio*.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = _rng("birds", seed)
    events_path, occurrences_path = out_dir / "events.csv", out_dir / "occurrences.csv"
    with events_path.open("w", encoding="utf-8", newline="") as ef, \
            occurrences_path.open("w", encoding="utf-8", newline="") as of:
        events, occurrences = csv.writer(ef, lineterminator="\n"), csv.writer(of,
                                                                              lineterminator="\n")
        events.writerow(EVENT_FIELDS)
        occurrences.writerow(OCCURRENCE_FIELDS)
        kept = _Kept(events, occurrences, countries)
        for site in _SITES:
            kept.site = site
            for year in _BIRD_YEARS:
                for month in site.months:
                    for visit in range(site.visits):
                        low = 3 if site.visits == 1 or visit == 0 else 17
                        day = date(year, month, rng.randrange(low, low + 11))
                        event_id = f"{site.code}-{day:%Y%m%d}"
                        observers, minutes = rng.randint(1, 4), rng.randrange(90, 361, 15)
                        kept.writerow((
                            event_id, day.isoformat(), site.protocol, minutes, "minutes",
                            f"{observers} observer{'s' if observers > 1 else ''}, "
                            f"{minutes / 60:.2f} h", site.code, site.locality, site.country,
                            site.country_code, f"{site.lat:.4f}", f"{site.lon:.4f}",
                            "EPSG:4326", site.uncertainty_m,
                        ))
                        for species in _BIRDS:
                            n = _bird_count(site, species, year, month, rng)
                            kept.occurrences.writerow((
                                f"{event_id}-{species.key}", event_id, "HumanObservation",
                                species.names[1 if site.old_names else 0], n,
                                "present" if n else "absent", species.vernacular, "species",
                                "Animalia",
                            ))
        _write_census(kept, kept.occurrences, seed)
    return events_path, occurrences_path


class _Kept:
    """Writers that drop the rows of sites outside ``countries`` (the draws still happen)."""

    def __init__(self, events: Any, occurrences: Any, countries: Collection[str] | None
                 ) -> None:
        self._events, self._countries = events, countries
        self.site: _Site | None = None
        self.occurrences = _KeptOccurrences(self, occurrences)

    def keeps(self) -> bool:
        return self._countries is None or (self.site is not None
                                           and self.site.country_code in self._countries)

    def writerow(self, row: Sequence[Any]) -> None:
        if self.keeps():
            self._events.writerow(row)


class _KeptOccurrences:
    def __init__(self, kept: _Kept, occurrences: Any) -> None:
        self._kept, self._occurrences = kept, occurrences

    def writerow(self, row: Sequence[Any]) -> None:
        if self._kept.keeps():
            self._occurrences.writerow(row)


def _write_census(events: Any, occurrences: Any, seed: int) -> None:
    """Census counts of every wintering site in the January window, from their own streams.

    Most sites are counted once in the window, some twice (the census takes
    their maximum) and some also a few days after it (a count the census
    lists but leaves out). A separate random stream per site and year keeps
    the regular counts as they were.
    """
    month, first, last = CENSUS_WINDOW
    wintering = [s for s in _SITES if month in s.months] + list(_CENSUS_ONLY)
    for year in _BIRD_YEARS:
        for site in wintering:
            if isinstance(events, _Kept):
                events.site = site
            rng = _rng("census", seed, site.code, year)
            days = [first, last] if rng.random() < 0.4 else [first + 1]
            if rng.random() < 0.3:
                days.append(last + 5)
            for day in (date(year, month, d) for d in days):
                event_id = f"{site.code}-C{day:%Y%m%d}"
                events.writerow((
                    event_id, day.isoformat(), _CENSUS, 240, "minutes", "census team, 4.00 h",
                    site.code, site.locality, site.country, site.country_code,
                    f"{site.lat:.4f}", f"{site.lon:.4f}", "EPSG:4326", site.uncertainty_m))
                for species in _BIRDS:
                    n = _census_count(site, species, year, month, rng)
                    occurrences.writerow((
                        f"{event_id}-{species.key}", event_id, "HumanObservation",
                        species.names[1 if site.old_names else 0], n,
                        "present" if n else "absent", species.vernacular, "species",
                        "Animalia"))


def _census_count(site: _Site, species: _BirdSpecies, year: int, month: int,
                  rng: random.Random) -> int:
    """A census count: the whole wintering flock, so close to the site's mean (+-10 %)."""
    mean = sum(peak * season[month - 1] for peak, season in site.expected.get(species.key, ()))
    mean *= species.trend ** (year - _BIRD_YEARS[0])
    return _poisson(rng, mean * (0.9 + 0.2 * rng.random())) if mean > 0 else 0
