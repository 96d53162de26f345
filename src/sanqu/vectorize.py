"""Vectorization: class rasters to valid polygons, one feature per 4-connected patch.

Whole-area stage. The patches of a class raster (4-connected, the same
connectivity as :mod:`sanqu.patches`; any number of classes, e.g. a class
combined with an administrative unit) are labelled in one pass
(:func:`sanqu.trace.label_regions`), and :mod:`sanqu.trace` walks
every patch's boundary along the cell edges in one pass, so each raster patch
becomes one polygon whose area equals its cell count times the cell area. Where
cells of a patch touch only at a corner the boundary is split into rings that
touch there, which is valid (property-tested with GEOS on random rasters in
tests/test_vectorize.py). Geometries are built in bulk from coordinate and offset
arrays (``shapely.from_ragged_array``), in batches of bounded size.

Smoothing (:func:`smooth_coverage`) works on a *coverage*: the polygons of one
class raster, which tile the study area. Its shared edges are made identical
(``shapely.coverage_clean``) and then simplified once each
(``shapely.coverage_simplify``, Visvalingam-Whyatt), so neighbours move together
and no gap or overlap appears. The study area's outline is kept on cell edges,
so every delivered coverage (spaces, lines, evaluation results) has exactly the
same outline. :func:`space_and_line_layers` smooths one coverage of the finest
pieces (space × line or UGB sub-zone) and dissolves it, so each line stays
inside its space and the lines stay disjoint after smoothing.
"""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numba import njit

from .batches import batch_bounds
from .config import SPACES
from .export import RingLayer
from .grid import Grid
from .lattice import Rings, concat_features, feature_areas, gather_parts
from .trace import trace_bands, trace_regions


def polygonize(values: np.ndarray, grid: Grid, *,
               names: dict[int, str] | None = None) -> gpd.GeoDataFrame:
    """Polygons of the patches of a class raster, every class in one pass.

    Parameters
    ----------
    values : numpy.ndarray of int or bool
        Classes (any integer type); 0 (False) is not vectorized.
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
    return _frame(*_trace(values), grid, names)


def _trace(values: np.ndarray, dtype: type = np.int32, *, trim: bool = True
           ) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The rings of the patches of a class raster, and each patch's class.

    The rings are :func:`sanqu.trace.trace_regions`' (corners as ``dtype``, maybe in
    the tracer's buffers without ``trim``); the patch labels are dropped before
    any polygon is built.
    """
    return trace_regions(values, dtype, trim=trim)


def _frame(rings: tuple[np.ndarray, ...], label_class: np.ndarray, grid: Grid,
           names: dict[int, str] | None = None) -> gpd.GeoDataFrame:
    """The polygons of traced rings as :func:`polygonize`'s table."""
    patch, geoms = _polygons(rings, grid)
    codes = label_class[patch]
    order = np.argsort(codes, kind="stable")
    codes, geoms = codes[order], geoms[order]
    return gpd.GeoDataFrame(
        {
            "id": np.arange(1, len(geoms) + 1, dtype=np.int64),
            "code": codes,
            "name": _names(codes, names or {}),
            "area_ha": shapely.area(geoms) / 10_000,
        },
        geometry=gpd.GeoSeries(geoms, crs=grid.crs),
    )


def _names(codes: np.ndarray, names: dict[int, str]) -> np.ndarray:
    """The name of each code (the code as text when unnamed), one lookup per distinct code."""
    distinct, inverse = np.unique(codes, return_inverse=True)
    return np.array([names.get(int(c), str(int(c))) for c in distinct], dtype=object)[inverse]


def unit_keys(values: np.ndarray, unit: np.ndarray, n_units: int, span: int) -> np.ndarray:
    """Class and administrative unit as one integer key per cell: ``rank * span + value``.

    ``rank`` is the unit index (1..n) with cells in no unit (0) ranked last,
    ``n + 1``; the key is 0 where ``values`` is 0. Two bytes a cell (uint16) when
    every key fits, else four (int32).

    Examples
    --------
    >>> unit_keys(np.array([1, 2, 0, 3]), np.array([2, 0, 1, 1], np.uint16), 2, 4).tolist()
    [9, 14, 0, 7]
    """
    if np.shape(values) != np.shape(unit):
        raise ValueError(f"classes {np.shape(values)} and units {np.shape(unit)} differ in shape")
    key = np.empty(np.shape(values), dtype=np.uint16 if (n_units + 2) * span <= 2**16
                   else np.int32)
    _keys(np.ascontiguousarray(values).ravel(), np.ascontiguousarray(unit).ravel(),
          n_units + 1, span, key.ravel())
    return key


@njit(cache=True, nogil=True)
def _keys(values: np.ndarray, unit: np.ndarray, last: int, span: int, out: np.ndarray) -> None:
    """:func:`unit_keys` cell by cell, in one pass (unit 0 ranked ``last``)."""
    for i in range(values.size):
        v = values[i]
        u = unit[i]
        out[i] = 0 if v == 0 else (last if u == 0 else u) * span + v


def traced(values: np.ndarray, grid: Grid, *, per_patch: bool = True,
           by: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[Rings, np.ndarray]:
    """The rings of a class raster's patches as features, no GEOS objects made.

    One feature per patch, ordered as :func:`polygonize` orders its polygons
    (by class, then in trace order); or, without ``per_patch``, one feature per
    class (ascending) whose parts are its patches in that order; ``by`` orders
    the features by a key of their classes instead (stable). Written to files and
    checked from the rings (:class:`sanqu.lattice.Rings`), the features never
    become GEOS objects.

    Returns
    -------
    rings : Rings
        The features.
    codes : numpy.ndarray of int64
        The class of each feature.

    Examples
    --------
    >>> g = Grid.square(1, (2, 3))
    >>> rings, codes = traced(np.array([[1, 0, 1], [2, 2, 0]], np.uint8), g, per_patch=False)
    >>> codes.tolist(), rings.parts().tolist(), rings.cells().tolist()
    ([1, 2], [2, 1], [2, 2])
    """
    small = max(grid.shape) < 2**16  # corners as 2-byte integers when the grid allows
    corner = np.uint16 if small else np.int32
    parts, label_class = trace_bands(values, corner)  # each band's rings, not joined
    ring_label = np.concatenate([p[3] for p in parts])
    code = label_class[1:].astype(np.int64)  # of each patch label 1..m
    if per_patch:
        feature = np.empty(len(code), dtype=np.int64)
        feature[np.argsort(code, kind="stable")] = np.arange(len(code))
        codes = np.sort(code, kind="stable")
    else:
        codes, feature = np.unique(code, return_inverse=True)
    if by is not None:  # the features in the order of their keys (stable)
        perm = np.argsort(by(codes), kind="stable")
        rank = np.empty_like(perm)
        rank[perm] = np.arange(len(perm))
        feature, codes = rank[feature], codes[perm]
    key = feature[ring_label - 1] * (len(code) + 1) + ring_label
    order = np.argsort(key, kind="stable")  # a patch's shell is its first ring
    del key
    col, row, offsets = gather_parts([(p[0], p[1], p[4]) for p in parts], order)
    del parts
    label = ring_label[order]
    return Rings.of(col, row, offsets, feature[label - 1],
                    np.r_[True, label[1:] != label[:-1]][:len(label)], len(codes), grid), codes


def traced_by_unit(values: np.ndarray, unit: np.ndarray, n_units: int, grid: Grid, span: int,
                   *, per_patch: bool = True, by_class: bool = False
                   ) -> tuple[Rings, np.ndarray, np.ndarray]:
    """:func:`traced` of a class raster combined with the unit raster (:func:`unit_keys`).

    Features are ordered by unit (index order, cells in no unit last), then class;
    with ``by_class``, by class, then unit (each class's features then follow each
    other: :meth:`sanqu.lattice.Rings.between` takes them without a copy).

    Returns
    -------
    rings : Rings
        One feature per patch of equal class and unit, or per class and unit.
    classes, units : numpy.ndarray of int64
        The class and unit index (0: in no unit) of each feature.

    Examples
    --------
    >>> g = Grid.square(1, (2, 3))
    >>> rings, classes, units = traced_by_unit(np.array([[1, 1, 1], [0, 1, 0]]),
    ...     np.array([[1, 2, 0], [1, 2, 2]], np.uint16), 2, g, 2, per_patch=False)
    >>> classes.tolist(), units.tolist(), rings.cells().tolist()
    ([1, 1, 1], [1, 2, 0], [1, 2, 1])
    """
    keys = unit_keys(values, unit, n_units, span)
    rings, codes = traced(keys, grid, per_patch=per_patch,
                          by=(lambda c: c % span * (n_units + 2) + c // span) if by_class else None)
    del keys
    return rings, *_class_and_unit(codes, n_units, span)


def _class_and_unit(codes: np.ndarray, n_units: int, span: int) -> tuple[np.ndarray, np.ndarray]:
    """The class and unit index (0: in no unit) of :func:`unit_keys` keys."""
    units = codes // span
    units[units == n_units + 1] = 0
    return codes % span, units


def polygonize_by_unit(values: np.ndarray, unit: np.ndarray, n_units: int, grid: Grid,
                       span: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polygons of the patches of equal class and administrative unit, in one pass.

    The class raster is combined with the unit raster (:func:`unit_keys`) and
    polygonized once, so a patch of a class that crosses unit borders becomes one
    polygon per unit, cut along cell edges where the unit raster changes.

    Parameters
    ----------
    values : numpy.ndarray of int
        Classes 1 … ``span - 1``; 0 is not vectorized.
    unit : numpy.ndarray of uint16
        Unit index per cell (1..n), 0 in no unit.
    n_units : int
        Number of units.
    grid : Grid
        Georeferencing of both rasters.
    span : int
        More than the largest class.

    Returns
    -------
    geoms : numpy.ndarray of Polygon
        Ordered by unit (index order, cells in no unit last), then class, then
        north to south.
    classes, units : numpy.ndarray of int64
        The class and unit index (0: in no unit) of each polygon.

    Examples
    --------
    >>> from affine import Affine
    >>> from pyproj import CRS
    >>> g = Grid(CRS.from_epsg(4527), Affine(1, 0, 0, 0, -1, 2), (2, 3))
    >>> geoms, classes, units = polygonize_by_unit(
    ...     np.array([[1, 1, 1], [0, 2, 2]]), np.array([[1, 2, 0], [1, 2, 2]], np.uint16), 2, g, 4)
    >>> classes.tolist(), units.tolist(), shapely.area(geoms).tolist()
    ([1, 1, 2, 1], [1, 2, 2, 0], [1.0, 1.0, 2.0, 1.0])
    """
    keys = unit_keys(values, unit, n_units, span)
    rings, label_class = _trace(keys)
    del keys
    df = _frame(rings, label_class, grid)
    del rings
    return df.geometry.values.to_numpy(), *_class_and_unit(df["code"].to_numpy(), n_units, span)


#: Corners gathered into one batch of polygons (bounds the memory of building them).
BATCH_VERTICES = 2_000_000


def _polygons(rings: tuple[np.ndarray, ...], grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Build the polygons of traced patches (:func:`sanqu.trace.trace_rings`) in batches.

    Returns the label of each polygon (ascending) and the polygons.
    """
    col, row, ring_label, ring_end = rings
    if len(ring_label) == 0:
        return np.zeros(0, np.int64), np.zeros(0, dtype=object)
    ring_start = np.r_[0, ring_end[:-1]]
    order = np.argsort(ring_label, kind="stable")  # a patch's shell is its first ring
    ring_label, ring_start, ring_end = ring_label[order], ring_start[order], ring_end[order]
    patch, first_ring = np.unique(ring_label, return_index=True)
    # batches end at a patch's last ring once enough corners are gathered
    corners = np.cumsum(ring_end - ring_start)
    patch_corners = corners[np.r_[first_ring[1:], len(ring_label)] - 1]
    bounds = batch_bounds(patch_corners, BATCH_VERTICES)
    t = grid.transform
    built = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        r0, r1 = first_ring[a], first_ring[b] if b < len(patch) else len(ring_label)
        sizes = ring_end[r0:r1] - ring_start[r0:r1]
        coords = _coordinates(col, row, ring_start[r0:r1], ring_end[r0:r1],
                              np.array(t[:6], dtype=np.float64))
        ring_offsets = np.r_[0, np.cumsum(sizes)]
        polygon_offsets = np.r_[first_ring[a:b], r1] - r0
        built.append(shapely.from_ragged_array(shapely.GeometryType.POLYGON, coords,
                                               (ring_offsets, polygon_offsets)))
    return patch.astype(np.int64), np.concatenate(built)


@njit(cache=True)
def _coordinates(col: np.ndarray, row: np.ndarray, start: np.ndarray, end: np.ndarray,
                 t: np.ndarray) -> np.ndarray:
    """The corners ``start[k]:end[k]`` of each ring, in order, as map coordinates.

    ``t`` holds the affine transform's a, b, c, d, e, f.
    """
    out = np.empty(((end - start).sum(), 2), dtype=np.float64)
    k = 0
    for i in range(start.size):
        for j in range(start[i], end[i]):
            c, r = np.float64(col[j]), np.float64(row[j])
            out[k, 0] = t[2] + c * t[0] + r * t[1]
            out[k, 1] = t[5] + c * t[3] + r * t[4]
            k += 1
    return out


def node_cells(geoms: np.ndarray, grid: Grid) -> np.ndarray:
    """Polygons traced on ``grid``'s cell edges, with every shared edge carrying the same vertices.

    The tracer (like GDAL's polygonizer) keeps only the corners where a ring turns, so where a third
    polygon meets an edge (a T-junction) one side has a vertex the other lacks, and
    the polygons are not an edge-matched coverage. Every vertex lies on the lattice
    of cell corners, so the missing vertices are found by sorting: each axis-parallel
    segment receives the vertices of any polygon that lie inside it. Coordinates
    are recomputed from the integer corner indices, identical for all polygons.
    (``shapely.coverage_clean`` does the same for any coverage, ten times slower.)

    Examples
    --------
    >>> from affine import Affine
    >>> from pyproj import CRS
    >>> g = Grid(CRS.from_epsg(4527), Affine(1, 0, 0, 0, -1, 2), (2, 2))
    >>> cov = np.array([shapely.box(0, 0, 2, 1), shapely.box(0, 1, 1, 2), shapely.box(1, 1, 2, 2)])
    >>> bool(shapely.coverage_is_valid(cov)), bool(shapely.coverage_is_valid(node_cells(cov, g)))
    (False, True)
    >>> node_cells(cov, g)[0].wkt  # the bottom box gained the T-junction at (1, 1)
    'POLYGON ((2 0, 2 1, 1 1, 0 1, 0 0, 2 0))'
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return geoms
    t = grid.transform
    rings, ring_poly = shapely.get_rings(geoms, return_index=True)
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    col = np.rint((xy[:, 0] - t.c) / t.a).astype(np.int64)
    row = np.rint((xy[:, 1] - t.f) / t.e).astype(np.int64)
    # segments: each vertex to the next one of its ring (the closing vertex starts none)
    start = np.flatnonzero(ring_of[:-1] == ring_of[1:])
    c0, r0, c1, r1 = col[start], row[start], col[start + 1], row[start + 1]
    span = np.int64(max(col.max(), row.max()) + 2)
    by_row = np.unique(row * span + col)  # corner keys row-major, for horizontal segments
    by_col = np.unique(col * span + row)  # and column-major, for vertical segments
    horizontal = r0 == r1
    lo_key = np.where(horizontal, r0 * span + np.minimum(c0, c1), c0 * span + np.minimum(r0, r1))
    hi_key = np.where(horizontal, r0 * span + np.maximum(c0, c1), c0 * span + np.maximum(r0, r1))
    lo = np.where(horizontal, np.searchsorted(by_row, lo_key, "right"),
                  np.searchsorted(by_col, lo_key, "right"))
    hi = np.where(horizontal, np.searchsorted(by_row, hi_key, "left"),
                  np.searchsorted(by_col, hi_key, "left"))
    inner = hi - lo
    # output: each segment's start vertex, then its inner vertices in walking order
    out_len = 1 + inner
    first = np.cumsum(out_len) - out_len
    keys = np.empty(int(out_len.sum()), dtype=np.int64)
    keys[first] = np.where(horizontal, r0 * span + c0, c0 * span + r0)
    seg = np.repeat(np.arange(len(start)), inner)
    k = np.arange(len(seg)) - np.repeat(np.cumsum(inner) - inner, inner)
    forward = np.where(horizontal, c1 > c0, r1 > r0)[seg]
    pick = np.where(forward, lo[seg] + k, hi[seg] - 1 - k)
    pos = np.repeat(first + 1, inner) + k
    keys[pos] = np.where(horizontal[seg], by_row[np.minimum(pick, len(by_row) - 1)],
                         by_col[np.minimum(pick, len(by_col) - 1)])
    is_h = np.repeat(horizontal, out_len)
    out_row = np.where(is_h, keys // span, keys % span)
    out_col = np.where(is_h, keys % span, keys // span)
    coords = np.column_stack([t.c + out_col * t.a, t.f + out_row * t.e])
    ring_index = np.repeat(ring_of[start], out_len)
    linear = shapely.linearrings(coords, indices=ring_index)
    return np.asarray(shapely.polygons(linear, indices=ring_poly), dtype=object)


#: Pieces of at most this many cells keep their cell edges when a coverage is smoothed.
KEEP_CELLS = 4


def smooth_coverage(geoms: np.ndarray, tolerance: float, grid: Grid,
                    keep_area: float = 0.0) -> np.ndarray:
    """Simplify a coverage's shared edges once each, keeping its outline and small pieces.

    Parameters
    ----------
    geoms : numpy.ndarray of Polygon
        Valid polygons traced on ``grid``'s cell edges that tile an area (no
        overlaps; edges may carry different vertices on either side, as the tracer
        leaves them: :func:`node_cells` matches them first).
    tolerance : float
        Visvalingam-Whyatt tolerance in CRS units: roughly the square root of the
        largest triangle area removed. One cell size removes single-cell steps.
        0 only makes the shared edges identical (no simplification).
    grid : Grid
        The grid the polygons were traced on.
    keep_area : float
        Pieces of at most this area keep their edges, and so do their neighbours
        along them: a one-cell hole would otherwise become a triangle of half its
        area, which is what shifts areas most (farmland full of one-cell holes grew
        by 1.3 % on the sample before pieces of up to :data:`KEEP_CELLS` cells were
        kept).

    Returns
    -------
    numpy.ndarray of Polygon
        Same length and order; still a valid coverage with the same outline.

    Examples
    --------
    >>> from affine import Affine
    >>> from pyproj import CRS
    >>> g = Grid(CRS.from_epsg(4527), Affine(1, 0, 0, 0, -1, 3), (3, 3))
    >>> steps = shapely.Polygon([(0, 0), (3, 0), (3, 1), (2, 1), (2, 2), (1, 2), (1, 3), (0, 3)])
    >>> rest = shapely.box(0, 0, 3, 3).difference(steps)
    >>> out = smooth_coverage(np.array([steps, rest]), 1.0, g)
    >>> [g.wkt for g in out]  # the staircase became one diagonal edge, shared by both
    ['POLYGON ((3 1, 1 3, 0 3, 0 0, 3 0, 3 1))', 'POLYGON ((3 1, 1 3, 3 3, 3 1))']
    >>> bool(shapely.coverage_is_valid(out)), float(out[0].area + out[1].area)
    (True, 9.0)
    """
    if len(geoms) == 0:
        return geoms
    matched = node_cells(geoms, grid)
    if tolerance <= 0:
        return matched
    # left out, a small piece's edges become outline edges of the rest, which stay put
    big = shapely.area(matched) > keep_area
    out = matched.copy()
    out[big] = shapely.coverage_simplify(matched[big], tolerance, simplify_boundary=False)
    return out


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
    return north_to_south(parts[shapely.area(parts) > 0])


def north_to_south(parts: np.ndarray) -> np.ndarray:
    """Polygons ordered by their top edge, north first, then by their west edge."""
    bounds = shapely.bounds(parts).reshape(-1, 4)
    return parts[np.lexsort((bounds[:, 0], -bounds[:, 3]))]


def frame(geoms: np.ndarray | Rings, crs: object, code: int, name: str
          ) -> gpd.GeoDataFrame | RingLayer:
    """A layer of polygons with the plain fields ``id``, ``code``, ``name``, ``area_ha``.

    Rings make a :class:`sanqu.export.RingLayer`, GEOS polygons a GeoDataFrame.
    """
    return _layer(geoms, crs, _plain_fields(geoms, code, name))


def _plain_fields(geoms: np.ndarray | Rings, code: int, name: str) -> dict[str, object]:
    """``id``, ``code``, ``name`` and ``area_ha`` of the features ``geoms``."""
    return {
        "id": np.arange(1, len(geoms) + 1, dtype=np.int64),
        "code": np.full(len(geoms), code, dtype=np.int64),
        "name": [name] * len(geoms),
        "area_ha": feature_areas(geoms) / 10_000,
    }


def _layer(geoms: np.ndarray | Rings, crs: object, fields: dict[str, object]
           ) -> gpd.GeoDataFrame | RingLayer:
    """``fields`` and the features ``geoms`` as one layer."""
    if isinstance(geoms, Rings):
        return RingLayer(pd.DataFrame(fields), geoms, crs)
    return gpd.GeoDataFrame(fields, geometry=gpd.GeoSeries(list(np.asarray(geoms, dtype=object)),
                                                           crs=crs))


#: Line codes inside a coverage piece: 0 no line, 1 red line, 2 farmland, 2 + z UGB sub-zone z.
RED, FARM, UGB_FIRST = 1, 2, 3


def line_codes(red: np.ndarray, farm: np.ndarray, ugb_zone: np.ndarray) -> np.ndarray:
    """One raster of the lines: :data:`RED`, :data:`FARM`, ``UGB_FIRST - 1 + z`` for UGB sub-zone z.

    Examples
    --------
    >>> line_codes(np.array([1, 0, 0, 0], bool), np.array([0, 1, 0, 0], bool),
    ...            np.array([0, 0, 3, 0], np.uint8)).tolist()
    [1, 2, 5, 0]
    """
    if not np.shape(red) == np.shape(farm) == np.shape(ugb_zone):
        raise ValueError("the line rasters differ in shape")
    code = np.empty(np.shape(red), dtype=np.uint8)
    _codes(*(np.ascontiguousarray(a).ravel() for a in (red, farm, ugb_zone)), code.ravel())
    return code


@njit(cache=True, nogil=True)
def _codes(red: np.ndarray, farm: np.ndarray, ugb_zone: np.ndarray, out: np.ndarray) -> None:
    """:func:`line_codes` cell by cell, in one pass (the lines never overlap)."""
    for i in range(out.size):
        z = ugb_zone[i]
        out[i] = RED * red[i] + FARM * farm[i] + (z + (UGB_FIRST - 1) if z > 0 else 0)


def space_and_line_layers(zones: np.ndarray, red: np.ndarray, farm: np.ndarray,
                          ugb_zone: np.ndarray, grid: Grid, tolerance: float,
                          names: dict[str, str], ugb_zones: dict[int, str], *,
                          rings: bool = False) -> dict[str, gpd.GeoDataFrame | RingLayer]:
    """Polygons of the three spaces and the three lines from one smoothed coverage.

    Every study cell is one piece class ``space * 8 + line`` (line code 0 when it is
    in no line, see :data:`RED`). The pieces' polygons are smoothed together
    (:func:`smooth_coverage`) and dissolved per space, per line and per UGB sub-zone,
    so lines stay disjoint and inside their space. Without smoothing (``tolerance``
    0) the same polygons come straight from two rasters, the spaces and the lines,
    which is much cheaper than dissolving pieces; with ``rings`` they are then
    kept as rings (:func:`traced`), never GEOS objects.

    Parameters
    ----------
    zones : numpy.ndarray of uint8
        Space codes (:data:`sanqu.config.SPACES`), 0 outside the study area.
    red, farm : numpy.ndarray of bool
        Red line and permanent farmland.
    ugb_zone : numpy.ndarray of uint8
        UGB sub-zone per cell (1 … 3, see ``ugb_zones``), 0 outside the UGB.
    grid : Grid
        Georeferencing.
    tolerance : float
        Smoothing tolerance in metres (0: cell edges).
    names : dict
        Layer key → Chinese name: ``eco_space``, ``agri_space``, ``urban_space``,
        ``red_line``, ``farmland``, ``ugb``.
    ugb_zones : dict
        Sub-zone number → name.
    rings : bool
        Without smoothing, give :class:`sanqu.export.RingLayer` layers.

    Returns
    -------
    dict of GeoDataFrame or RingLayer
        Space layers then line layers, with ``id``, ``code``, ``name``, ``area_ha``; a
        line's ``code`` is the code of its space; ``ugb`` adds ``zone`` and ``zone_name``.
        Polygons come north to south, then west to east.
    """
    line_code = line_codes(red, farm, ugb_zone)
    select: Callable[[bool, int], np.ndarray | Rings]
    if tolerance <= 0 and rings:
        traces = {True: traced(zones, grid), False: traced(line_code, grid)}
        edges = {k: r.corner_bounds() for k, (r, _) in traces.items()}

        def select(of_space: bool, code: int) -> np.ndarray | Rings:
            (r, codes), (top, west) = traces[of_space], edges[of_space]
            pick = np.flatnonzero(codes == code)
            return r.take(pick[np.lexsort((west[pick], top[pick]))])
    else:
        if tolerance <= 0:
            spaces, lines = polygonize(zones, grid), polygonize(line_code, grid)
            geoms = np.concatenate([spaces.geometry.values, lines.geometry.values])
            space = np.r_[spaces["code"].to_numpy(), np.zeros(len(lines), np.int64)]
            line = np.r_[np.zeros(len(spaces), np.int64), lines["code"].to_numpy()]
            combine = north_to_south
        else:
            line_code += zones.astype(np.uint8) * 8
            df = polygonize(line_code, grid)
            geoms = smooth_coverage(df.geometry.values, tolerance, grid,
                                    KEEP_CELLS * grid.cell_area)
            space, line = df["code"].to_numpy() // 8, df["code"].to_numpy() % 8
            combine = dissolve

        def select(of_space: bool, code: int) -> np.ndarray | Rings:
            return combine(geoms[(space if of_space else line) == code])
    del line_code
    eco, agri, urban = SPACES.values()
    out: dict[str, gpd.GeoDataFrame | RingLayer] = {}
    for key, code in zip(("eco_space", "agri_space", "urban_space"), SPACES.values(),
                         strict=True):
        out[key] = frame(select(True, code), grid.crs, code, names[key])
    out["red_line"] = frame(select(False, RED), grid.crs, eco, names["red_line"])
    out["farmland"] = frame(select(False, FARM), grid.crs, agri, names["farmland"])
    out["ugb"] = ugb_frame([select(False, UGB_FIRST - 1 + z) for z in ugb_zones],
                           grid.crs, urban, names["ugb"], ugb_zones)
    return out


def ugb_frame(parts: list[np.ndarray | Rings], crs: object, code: int, name: str,
              ugb_zones: dict[int, str]) -> gpd.GeoDataFrame | RingLayer:
    """The UGB layer from its polygons (or rings) per sub-zone (in ``ugb_zones`` order)."""
    geoms = concat_features(parts)
    zone = np.concatenate([np.full(len(p), z, dtype=np.int64)
                           for p, z in zip(parts, ugb_zones, strict=True)])
    return _layer(geoms, crs, {**_plain_fields(geoms, code, name), "zone": zone,
                               "zone_name": [ugb_zones[int(z)] for z in zone]})
