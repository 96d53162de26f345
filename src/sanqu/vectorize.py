"""Vectorization: class rasters to valid polygons, one feature per 4-connected patch.

Whole-area stage. GDAL's polygonizer (through ``rasterio.features.shapes``) traces
cell edges with 4-connectivity, the same connectivity as :mod:`sanqu.patches`, so
each raster patch becomes one polygon whose area equals its cell count times
the cell area. Polygons that come out invalid (rings touching themselves at a
corner) are repaired with ``shapely.make_valid`` and counted.

Smoothing (:func:`smooth_coverage`) works on a *coverage*: the polygons of one
class raster, which tile the study area. Its shared edges are made identical
(``shapely.coverage_clean``) and then simplified once each
(``shapely.coverage_simplify``, Visvalingam-Whyatt), so neighbours move together
and no gap or overlap appears. The study area's outline is kept on cell edges,
so every delivered coverage (spaces, lines, evaluation results) has exactly the
same outline. :func:`space_and_line_layers` smooths one coverage of the finest
pieces (space × line) and dissolves it, so each line stays inside its space and
the lines stay disjoint after smoothing.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from rasterio.features import shapes
from shapely.geometry import shape

from .config import SPACES
from .grid import Grid


def polygonize(values: np.ndarray, grid: Grid, *, mask: np.ndarray | None = None,
               names: dict[int, str] | None = None) -> gpd.GeoDataFrame:
    """Polygons of the patches of a class raster.

    Parameters
    ----------
    values : numpy.ndarray of uint8 or bool
        Classes; cells where ``mask`` is False (or value 0 when no mask) are skipped.
    grid : Grid
        Georeferencing of ``values``.
    mask : numpy.ndarray of bool, optional
        Cells to vectorize.
    names : dict, optional
        Class value → name, written to a ``name`` column.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``id`` (1..n), ``code`` (class value), ``name``, ``area_ha``,
        ``geometry`` (Polygon, valid), sorted by code then trace order.
    """
    arr = values.astype(np.uint8, copy=False)
    if mask is None:
        mask = arr > 0
    geoms: list[shapely.Geometry] = []
    codes: list[int] = []
    if mask.any():
        for geom, val in shapes(arr, mask=mask, connectivity=4, transform=grid.transform):
            geoms.append(shape(geom))
            codes.append(int(val))
    geo = np.array(geoms, dtype=object)
    if len(geo):
        bad = ~shapely.is_valid(geo)
        if bad.any():
            geo[bad] = [_repair(g) for g in geo[bad]]
    order = np.argsort(np.asarray(codes, dtype=np.int64), kind="stable")
    geo = geo[order] if len(geo) else geo
    code_arr = np.asarray(codes, dtype=np.int64)[order]
    df = gpd.GeoDataFrame(
        {
            "id": np.arange(1, len(geo) + 1, dtype=np.int64),
            "code": code_arr,
            "name": [(names or {}).get(int(c), str(int(c))) for c in code_arr],
            "area_ha": shapely.area(geo) / 10_000 if len(geo) else np.zeros(0),
        },
        geometry=gpd.GeoSeries(list(geo), crs=grid.crs),
    )
    return df


def _repair(geom: shapely.Geometry) -> shapely.Geometry:
    """Make a polygon valid, keeping only its polygonal parts."""
    fixed = shapely.make_valid(geom)
    parts = [g for g in shapely.get_parts(fixed) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if len(parts) != 1 else parts[0]


def smooth_coverage(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """Simplify a coverage's shared edges once each, keeping its outline.

    Parameters
    ----------
    geoms : numpy.ndarray of Polygon
        Valid polygons that tile an area (no overlaps; edges may carry different
        vertices on either side, as GDAL's polygonizer leaves them).
    tolerance : float
        Visvalingam-Whyatt tolerance in CRS units: roughly the square root of the
        largest triangle area removed. One cell size removes single-cell steps.
        0 returns the polygons unchanged.

    Returns
    -------
    numpy.ndarray of Polygon
        Same length and order; still a valid coverage with the same outline.

    Examples
    --------
    >>> steps = shapely.Polygon([(0, 0), (3, 0), (3, 1), (2, 1), (2, 2), (1, 2), (1, 3), (0, 3)])
    >>> rest = shapely.box(0, 0, 3, 3).difference(steps)
    >>> out = smooth_coverage(np.array([steps, rest]), 1.0)
    >>> [g.wkt for g in out]  # the staircase became one diagonal edge, shared by both
    ['POLYGON ((1 3, 3 1, 3 0, 0 0, 0 3, 1 3))', 'POLYGON ((1 3, 3 1, 3 3, 1 3))']
    >>> bool(shapely.coverage_is_valid(out)), float(out[0].area + out[1].area)
    (True, 9.0)
    """
    if tolerance <= 0 or len(geoms) == 0:
        return geoms
    matched = shapely.coverage_clean(geoms, snapping_distance=0)
    return shapely.coverage_simplify(matched, tolerance, simplify_boundary=False)


def dissolve(geoms: np.ndarray) -> np.ndarray:
    """Merge polygons of one coverage into connected polygons (shared edges removed).

    Parts touching only at a corner stay separate polygons, as 4-connected patches
    do. Parts come north to south, then west to east.

    Examples
    --------
    >>> cells = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1),
    ...                   shapely.box(2, 1, 3, 2)])
    >>> [g.wkt for g in dissolve(cells)]
    ['POLYGON ((2 2, 3 2, 3 1, 2 1, 2 2))', 'POLYGON ((0 0, 0 1, 1 1, 2 1, 2 0, 1 0, 0 0))']
    """
    if len(geoms) == 0:
        return np.array([], dtype=object)
    merged = shapely.coverage_union_all(geoms)
    parts = shapely.get_parts(merged)
    parts = parts[shapely.area(parts) > 0]
    bounds = shapely.bounds(parts)
    order = np.lexsort((bounds[:, 0], -bounds[:, 3]))
    return parts[order]


def frame(geoms: np.ndarray, crs: object, code: int, name: str) -> gpd.GeoDataFrame:
    """A layer of polygons with the plain fields ``id``, ``code``, ``name``, ``area_ha``."""
    geoms = np.asarray(geoms, dtype=object)
    return gpd.GeoDataFrame(
        {
            "id": np.arange(1, len(geoms) + 1, dtype=np.int64),
            "code": np.full(len(geoms), code, dtype=np.int64),
            "name": [name] * len(geoms),
            "area_ha": shapely.area(geoms) / 10_000 if len(geoms) else np.zeros(0),
        },
        geometry=gpd.GeoSeries(list(geoms), crs=crs),
    )


#: Order of the three lines in the coverage pieces (index 1, 2, 3; 0 = no line).
LINE_ORDER = ("red_line", "farmland", "ugb")


def space_and_line_layers(zones: np.ndarray, lines: dict[str, np.ndarray], grid: Grid,
                          tolerance: float, space_names: dict[str, str],
                          line_names: dict[str, str]) -> dict[str, gpd.GeoDataFrame]:
    """Polygons of the three spaces and the three lines from one smoothed coverage.

    Every study cell is one piece class ``space * 4 + line`` (line 0 when it is in no
    line). The pieces' polygons are smoothed together (:func:`smooth_coverage`) and
    dissolved per space and per line, so lines stay disjoint and inside their space.

    Parameters
    ----------
    zones : numpy.ndarray of uint8
        Space codes (:data:`sanqu.config.SPACES`), 0 outside the study area.
    lines : dict of numpy.ndarray of bool
        The three line rasters by name (:data:`LINE_ORDER`).
    grid : Grid
        Georeferencing.
    tolerance : float
        Smoothing tolerance in metres (0: cell edges).
    space_names, line_names : dict
        Layer key → Chinese name, in space code order and in :data:`LINE_ORDER`.

    Returns
    -------
    dict of GeoDataFrame
        Space layers then line layers, with ``id``, ``code``, ``name``, ``area_ha``;
        a line's ``code`` is the code of its space.
    """
    pieces = zones.astype(np.uint8) * 4
    for i, key in enumerate(LINE_ORDER, start=1):
        pieces[lines[key]] = pieces[lines[key]] + i
    df = polygonize(pieces, grid, mask=zones > 0)
    geoms = smooth_coverage(df.geometry.values, tolerance)
    piece = df["code"].to_numpy()
    out: dict[str, gpd.GeoDataFrame] = {}
    for (key, name), code in zip(space_names.items(), SPACES.values(), strict=True):
        out[key] = frame(dissolve(geoms[piece // 4 == code]), grid.crs, code, name)
    for i, (key, code) in enumerate(zip(LINE_ORDER, SPACES.values(), strict=True), start=1):
        out[key] = frame(dissolve(geoms[piece % 4 == i]), grid.crs, code, line_names[key])
    return out
