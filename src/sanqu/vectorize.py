"""Vectorization: class rasters to valid polygons, one feature per 4-connected patch.

Whole-area stage. GDAL's polygonizer (through ``rasterio.features.shapes``) traces
cell edges with 4-connectivity, the same connectivity as :mod:`sanqu.patches`, so
each raster patch becomes one polygon whose area equals its cell count times
the cell area. Polygons that come out invalid (rings touching themselves at a
corner) are repaired with ``shapely.make_valid`` and counted.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from rasterio.features import shapes
from shapely.geometry import shape

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
