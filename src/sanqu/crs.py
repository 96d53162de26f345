"""CRS of the deliverables: CGCS2000 Gauss-Krüger zones, datum notes and GCJ-02.

Planning databases are delivered in CGCS2000 with a 3-degree Gauss-Krüger
projection (methodology.md §5). Two forms of the same zone circulate: eastings
prefixed with the zone number (``39 500 000``, EPSG:4513-4533 for zones 25-45)
and plain eastings with the central meridian in the name (``500 000``,
EPSG:4534-4554 for CM 75°E-135°E). :func:`gk_epsg` gives either; :func:`output_crs`
picks the zone of a study area from its centre unless the config fixes it.

Chinese web maps (Amap/高德, DataV, Tencent) publish GCJ-02 coordinates, an
obfuscated offset of WGS84 by several hundred metres, while labelling them
EPSG:4326. :func:`gcj02_to_wgs84` undoes it with the public formula, inverted by
fixed-point iteration (no network, no lookup tables).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer

from .errors import ConfigError

#: First and last zone of China's 3-degree Gauss-Krüger grid (CM 75°E … 135°E).
ZONES = (25, 45)

#: CGCS2000 geographic CRS, the datum of every deliverable.
CGCS2000 = CRS.from_epsg(4490)

#: Datums whose transformation to CGCS2000 PROJ does without shift parameters at no
#: loss (WGS84 and CGCS2000 agree to a few centimetres).
_SHIFT_FREE = {"World Geodetic System 1984", "World Geodetic System 1984 ensemble", "China 2000",
               "China Geodetic Coordinate System 2000"}


def gk_zone(lon: float) -> int:
    """The 3-degree Gauss-Krüger zone holding longitude ``lon`` (°E).

    Zone ``n`` spans ``3n - 1.5`` to ``3n + 1.5`` degrees; a longitude on a zone
    edge belongs to the zone east of it.

    Examples
    --------
    >>> gk_zone(117.46), gk_zone(112.4999), gk_zone(112.5)
    (39, 37, 38)
    """
    return math.floor((lon + 1.5) / 3.0)


def gk_epsg(zone: int, form: str = "zone") -> int:
    """EPSG code of CGCS2000 3-degree Gauss-Krüger ``zone``.

    Parameters
    ----------
    zone : int
        Zone number, 25 … 45 (central meridian ``3 * zone`` °E).
    form : {"zone", "cm"}
        ``zone``: eastings prefixed with the zone number (EPSG:4513-4533);
        ``cm``: false easting 500 000 m, named by central meridian (EPSG:4534-4554).

    Examples
    --------
    >>> gk_epsg(39), gk_epsg(38, "cm"), gk_epsg(37, "cm")
    (4527, 4547, 4546)
    """
    lo, hi = ZONES
    if not lo <= zone <= hi:
        raise ValueError(f"expected a zone {lo}-{hi}, got {zone}")
    if form not in ("zone", "cm"):
        raise ValueError(f"expected form 'zone' or 'cm', got {form!r}")
    return (4513 if form == "zone" else 4534) + zone - lo


def parse_crs(text: str | int) -> CRS:
    """A projected, metre-based CRS from ``EPSG:nnnn``, a bare code, WKT or a PROJ string.

    Raises
    ------
    ValueError
        If the text is no CRS, or the CRS is geographic or not in metres.

    Examples
    --------
    >>> parse_crs("EPSG:4547").name
    'CGCS2000 / 3-degree Gauss-Kruger CM 114E'
    """
    try:
        crs = CRS.from_user_input(text)
    except Exception:  # pyproj raises its own CRSError for every kind of bad text
        raise ValueError(f"expected a CRS such as 'EPSG:4527', got {text!r}") from None
    if not crs.is_projected:
        raise ValueError(f"expected a projected CRS in metres, got {crs.name!r} (geographic)")
    units = {a.unit_name for a in crs.axis_info}
    if units != {"metre"}:
        raise ValueError(f"expected a projected CRS in metres, got units {sorted(units)}")
    return crs


def output_crs(setting: str, centre_lon: float, study: CRS, *, form: str = "zone",
               zone: int | None = None) -> CRS:
    """The CRS the vector deliverables are written in.

    Parameters
    ----------
    setting : str
        ``auto`` (CGCS2000 3-degree GK, zone from ``centre_lon`` unless ``zone``),
        ``study`` (the study grid's CRS) or an explicit projected CRS.
    centre_lon : float
        Longitude (°E, CGCS2000) of the study area's centre.
    study : pyproj.CRS
        CRS of the study grid.
    form : {"zone", "cm"}
        Form of the GK CRS for ``auto`` (see :func:`gk_epsg`).
    zone : int, optional
        Fixed zone for ``auto``.

    Raises
    ------
    ConfigError
        If ``auto`` falls outside zones 25-45.

    Examples
    --------
    >>> jiyuan_centre = 112.41  # straddles 112°30'E; most of the area lies west of it
    >>> output_crs("auto", jiyuan_centre, CRS.from_epsg(4547)).to_epsg()
    4525
    >>> output_crs("auto", jiyuan_centre, CRS.from_epsg(4547), form="cm", zone=38).to_epsg()
    4547
    """
    if setting == "study":
        return study
    if setting != "auto":
        return parse_crs(setting)
    chosen = zone if zone is not None else gk_zone(centre_lon)
    lo, hi = ZONES
    if not lo <= chosen <= hi:
        raise ConfigError(
            f"outputs.crs: auto: the study area's centre ({centre_lon:.3f}°E) lies in zone "
            f"{chosen}, outside China's 3-degree zones {lo}-{hi}; set outputs.crs to an EPSG code")
    return CRS.from_epsg(gk_epsg(chosen, form))


def centre_lon(x: float, y: float, crs: CRS) -> float:
    """Longitude (°E, CGCS2000) of point ``(x, y)`` given in ``crs``.

    Examples
    --------
    >>> round(centre_lon(39_500_000, 3_540_000, CRS.from_epsg(4527)), 6)
    117.0
    """
    t = Transformer.from_crs(crs, CGCS2000, always_xy=True)
    lon, _ = t.transform(x, y)
    return float(lon)


def datum_note(src: CRS, dst: CRS) -> str:
    """A warning when PROJ can move ``src`` to ``dst`` only without a datum shift.

    Beijing 1954 and Xian 1980 have no public transformation to CGCS2000 in the
    EPSG registry; PROJ then keeps latitude and longitude unchanged across the
    datums ("ballpark"), which misplaces features by tens of metres up to about
    150 m. A CRS with ``+towgs84`` parameters (from the local surveying bureau)
    avoids that. WGS84 ↔ CGCS2000 needs no shift at mapping scales.

    Examples
    --------
    >>> datum_note(CRS.from_epsg(2415), CRS.from_epsg(4527)).split(":")[0]
    'datum Beijing 1954 → China 2000'
    >>> datum_note(CRS.from_epsg(4326), CRS.from_epsg(4527))
    ''
    """
    a, b = _datum_name(src), _datum_name(dst)
    if a == b or {a, b} <= _SHIFT_FREE:
        return ""
    t = Transformer.from_crs(src, dst, always_xy=True)
    if "ballpark" not in t.description.lower():
        return ""
    return (f"datum {a} → {b}: PROJ has no shift parameters (ballpark transformation), "
            "positions may be off by up to ~150 m; give the input a CRS with +towgs84 "
            "parameters for an exact shift")


def _datum_name(crs: CRS) -> str:
    geo = crs.geodetic_crs
    datum = geo.datum if geo is not None else None
    return datum.name if datum is not None else crs.name


def reproject(geoms: np.ndarray, src: CRS, dst: CRS, cell: float) -> np.ndarray:
    """Reproject polygons, with a vertex at least every cell first.

    A straight edge bends under a change of projection; cut into cell-long pieces,
    every layer bends it the same way whatever vertices its own edge had, so the
    coverages keep one common outline (to within a few nanometres).
    """
    dense = shapely.segmentize(np.asarray(geoms, dtype=object), cell)
    return gpd.GeoSeries(list(dense), crs=src).to_crs(dst).values.to_numpy()


# ---------------------------------------------------------------- GCJ-02

_A = 6378245.0  # Krasovsky semi-major axis used by the GCJ-02 formula
_EE = 0.00669342162296594323  # its first eccentricity squared


def _in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The formula's own rough box: outside it GCJ-02 equals WGS84."""
    return (lon > 72.004) & (lon < 137.8347) & (lat > 0.8293) & (lat < 55.8271)


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 105.0, lat - 35.0
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + common
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + common
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (_A / sqrt_magic * np.cos(rad) * np.pi)
    inside = _in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(coords: np.ndarray) -> np.ndarray:
    """GCJ-02 lon/lat of WGS84 lon/lat, by the public formula.

    Parameters
    ----------
    coords : numpy.ndarray, shape (n, 2)
        Longitude, latitude in degrees.

    Examples
    --------
    >>> wgs84_to_gcj02(np.array([[112.6, 35.1], [0.0, 51.5]])).round(6).tolist()
    [[112.605939, 35.099167], [0.0, 51.5]]
    """
    xy = np.asarray(coords, dtype=np.float64)
    dlon, dlat = _offset(xy[:, 0], xy[:, 1])
    return np.column_stack([xy[:, 0] + dlon, xy[:, 1] + dlat])


def gcj02_to_wgs84(coords: np.ndarray, *, tol: float = 1e-10, max_iter: int = 30) -> np.ndarray:
    """WGS84 lon/lat of GCJ-02 lon/lat: :func:`wgs84_to_gcj02` inverted by iteration.

    Fixed-point iteration ``w ← w - (f(w) - g)`` converges because the offset
    varies slowly (a few metres per kilometre); 3-4 steps reach ``tol`` degrees.

    Parameters
    ----------
    coords : numpy.ndarray, shape (n, 2)
        GCJ-02 longitude, latitude in degrees.
    tol : float
        Largest residual ``|f(w) - g|`` accepted, in degrees (1e-10° ≈ 0.01 mm).
    max_iter : int
        Iterations at most.

    Examples
    --------
    >>> g = np.array([[112.605939, 35.099167]])
    >>> w = gcj02_to_wgs84(g)
    >>> bool(np.abs(wgs84_to_gcj02(w) - g).max() < 1e-10), w.round(5).tolist()
    (True, [[112.6, 35.1]])
    """
    target = np.asarray(coords, dtype=np.float64)
    w = target.copy()
    for _ in range(max_iter):
        diff = wgs84_to_gcj02(w) - target
        w -= diff
        if np.abs(diff).max(initial=0.0) < tol:
            break
    return w
