"""Vectorization: class rasters to valid polygons, one feature per 4-connected patch.

Whole-area stage. GDAL's polygonizer (through ``rasterio.features.shapes``) traces
cell edges with 4-connectivity, the same connectivity as :mod:`sanqu.patches`, so
each raster patch becomes one polygon whose area equals its cell count times
the cell area. Several classes are traced in one pass over a class raster.

Geometries are built in bulk (``shapely.linearrings`` / ``shapely.polygons``
with index arrays) rather than one GeoJSON mapping at a time. Tracing along cell
edges, a ring can only be invalid by passing twice through one cell corner (a
"pinch", where cells of a patch touch diagonally). GDAL splits such boundaries
into rings that touch at the corner, which is valid (property-tested on random
rasters in tests/test_vectorize.py); as a guard, any polygon having a ring with a
repeated vertex is checked by GEOS and repaired with ``shapely.make_valid``.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from rasterio.features import shapes

from .grid import Grid
from .patches import label_classes


def polygonize(values: np.ndarray, grid: Grid, *,
               names: dict[int, str] | None = None) -> gpd.GeoDataFrame:
    """Polygons of the patches of a class raster, every class in one pass.

    Parameters
    ----------
    values : numpy.ndarray of uint8 or bool
        Classes; 0 (False) is not vectorized.
    grid : Grid
        Georeferencing of ``values``.
    names : dict, optional
        Class value → name, written to a ``name`` column.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``id`` (1..n), ``code`` (class value), ``name``, ``area_ha``,
        ``geometry`` (valid Polygon), sorted by code, then in trace order.

    Examples
    --------
    >>> from affine import Affine
    >>> from pyproj import CRS
    >>> g = Grid(CRS.from_epsg(4527), Affine(100, 0, 0, 0, -100, 300), (3, 3))
    >>> df = polygonize(np.array([[1, 1, 0], [1, 2, 0], [0, 0, 2]], np.uint8), g)
    >>> df[["code", "area_ha"]].values.tolist()
    [[1.0, 3.0], [2.0, 1.0], [2.0, 1.0]]
    """
    arr = values.astype(np.uint8, copy=False)
    labels, label_class = label_classes(arr)
    patch, geoms, suspects = _trace(labels, grid)
    del labels
    codes = label_class[patch]
    if suspects.size:
        bad = suspects[~shapely.is_valid(geoms[suspects])]
        geoms[bad] = [_repair(g) for g in geoms[bad]]
    order = np.argsort(codes, kind="stable")
    codes, geoms = codes[order], geoms[order]
    return gpd.GeoDataFrame(
        {
            "id": np.arange(1, len(geoms) + 1, dtype=np.int64),
            "code": codes,
            "name": [(names or {}).get(int(c), str(int(c))) for c in codes],
            "area_ha": shapely.area(geoms) / 10_000,
        },
        geometry=gpd.GeoSeries(geoms, crs=grid.crs),
    )


#: Vertices gathered before a batch of polygons is built (bounds the memory of tracing).
BATCH_VERTICES = 2_000_000


def _trace(labels: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run GDAL's polygonizer on patch labels and build the polygons in batches.

    Returns the label of each polygon, the polygons, and the indices of polygons
    with a ring that repeats a vertex (the only ones that may be invalid).
    """
    codes: list[int] = []
    built: list[np.ndarray] = []
    suspects: list[np.ndarray] = []
    rings: list[np.ndarray] = []
    ring_polygon: list[int] = []
    pending = 0
    first = 0  # index of the first polygon of the pending batch

    def flush() -> None:
        nonlocal rings, ring_polygon, pending, first
        polys, bad = _build(rings, np.asarray(ring_polygon) - first)
        built.append(polys)
        suspects.append(bad + first)
        first += polys.size
        rings, ring_polygon, pending = [], [], 0

    if labels.any():
        for i, (geom, val) in enumerate(shapes(labels, mask=labels > 0, connectivity=4,
                                               transform=grid.transform)):
            codes.append(int(val))
            for ring in geom["coordinates"]:
                rings.append(np.asarray(ring, dtype=np.float64))
                ring_polygon.append(i)
                pending += len(ring)
            if pending >= BATCH_VERTICES:
                flush()
        if rings:
            flush()
    if not built:
        return np.zeros(0, np.int64), np.zeros(0, dtype=object), np.zeros(0, np.int64)
    return (np.asarray(codes, dtype=np.int64), np.concatenate(built),
            np.concatenate(suspects))


def _build(rings: list[np.ndarray], ring_polygon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polygons from rings (shell first) and the polygons with a ring repeating a vertex."""
    sizes = np.fromiter((len(r) for r in rings), dtype=np.int64, count=len(rings))
    coords = np.concatenate(rings)
    ring_of = np.repeat(np.arange(len(rings)), sizes)
    linear = shapely.linearrings(coords, indices=ring_of)
    polys = np.asarray(shapely.polygons(linear, indices=ring_polygon), dtype=object)
    # a repeated vertex within one ring (ignoring the closing one) marks a pinch
    keep = np.ones(coords.shape[0], dtype=bool)
    keep[np.cumsum(sizes) - 1] = False
    x, y, r = coords[keep, 0], coords[keep, 1], ring_of[keep]
    order = np.lexsort((y, x, r))
    x, y, r = x[order], y[order], r[order]
    dup = (r[1:] == r[:-1]) & (x[1:] == x[:-1]) & (y[1:] == y[:-1])
    return polys, np.unique(ring_polygon[r[1:][dup]])


def _repair(geom: shapely.Geometry) -> shapely.Geometry:
    """Make a polygon valid, keeping only its polygonal parts."""
    fixed = shapely.make_valid(geom)
    parts = [g for g in shapely.get_parts(fixed) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if len(parts) != 1 else parts[0]
