"""Polygons on a grid's cell edges: recognise them, count the cells they cover, check them.

Polygons traced from a raster (and not smoothed or reprojected since) have every
vertex on a cell corner and every edge along a row or column line. Such a
polygon is exactly a set of whole cells, so relations between layers (overlap,
gap, containment) and most of a polygon's validity can be checked cell by cell,
in time proportional to the vertices plus the cells, instead of by overlaying
polygons (which grows faster than the area: the topology gate's unions,
containment tests and GEOS's validity test of polygons with 10⁵ holes took most
of a run at 4 M cells).

:func:`cell_counts` finds, for every cell, how many polygons cover it. Each
vertical edge of a ring adds ±1 to the cells to its east on the rows it spans
(the winding number of the ring around each cell centre); written as a 2-D
difference, an edge touches only two entries, and two cumulative sums give the
counts. Shells count +1 inside and holes −1, whatever their orientation, so a
valid polygon counts 1 on its cells and 0 elsewhere, and overlapping polygons add
up. :func:`valid_on_cells` uses the same sums, weighted by polygon, to check
validity (see there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from numba import njit
from scipy import ndimage

from .grid import Grid

#: How far (in cells) a vertex may lie from a cell corner and still be on it.
CORNER_TOLERANCE = 1e-6


@dataclass(frozen=True)
class _Rings:
    """The rings of some polygons in cell units: corners, and each ring's polygon."""

    rings: np.ndarray  # the rings, LinearRings
    col: np.ndarray  # corner column (lattice), int64
    row: np.ndarray  # corner row, int64
    ring: np.ndarray  # ring of each corner
    polygon: np.ndarray  # polygon of each ring
    shell: np.ndarray  # whether each ring is its polygon's shell
    start: np.ndarray  # corners that start a segment (each corner but a ring's last)
    area2: np.ndarray  # twice the signed area of each ring, in (column, row) units


@njit(cache=True)
def _corners(xy: np.ndarray, ring: np.ndarray, x0: float, y0: float, dx: float, dy: float,
             height: int, width: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Column and row of every vertex; False if one is off the corners or an edge is oblique."""
    n = xy.shape[0]
    col = np.empty(n, dtype=np.int64)
    row = np.empty(n, dtype=np.int64)
    for i in range(n):
        fc = (xy[i, 0] - x0) / dx
        fr = (xy[i, 1] - y0) / dy
        c = np.rint(fc)
        r = np.rint(fr)
        if abs(fc - c) > CORNER_TOLERANCE or abs(fr - r) > CORNER_TOLERANCE:
            return col, row, False
        if c < 0 or r < 0 or c > width or r > height:
            return col, row, False
        col[i] = int(c)
        row[i] = int(r)
        if i > 0 and ring[i] == ring[i - 1] and col[i] != col[i - 1] and row[i] != row[i - 1]:
            return col, row, False
    return col, row, True


def _rings(parts: np.ndarray, grid: Grid) -> _Rings | None:
    """Rings of Polygons on the lattice of ``grid``'s cell corners, or None if off it."""
    t = grid.transform
    height, width = grid.shape
    rings, polygon = shapely.get_rings(parts, return_index=True)
    shell = np.r_[True, polygon[1:] != polygon[:-1]] if len(polygon) else np.zeros(0, bool)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    c, r, on = _corners(xy, ring, t.c, t.f, t.a, t.e, height, width)
    if not on:
        return None
    start = np.flatnonzero(ring[:-1] == ring[1:])  # each vertex to the next of its ring
    area2 = np.bincount(ring[start], weights=c[start] * r[start + 1] - c[start + 1] * r[start],
                        minlength=len(polygon))
    return _Rings(rings, c, r, ring, polygon, shell, start, area2)


@njit(cache=True)
def _wind(col: np.ndarray, row: np.ndarray, ring: np.ndarray, start: np.ndarray,
          inside: np.ndarray, out: np.ndarray) -> None:
    """Add each ring's winding, times ``inside[ring]``, to ``out``.

    ``out`` is zeroed and one row and column larger than the grid: vertical edges go in
    as 2-D differences, then both prefix sums are taken in one pass over the rows.
    """
    height, width = out.shape[0] - 1, out.shape[1] - 1
    for k in range(start.size):
        s = start[k]
        if row[s + 1] == row[s]:
            continue
        v = inside[ring[s]] if row[s + 1] > row[s] else -inside[ring[s]]
        out[min(row[s], row[s + 1]), col[s]] += v
        out[max(row[s], row[s + 1]), col[s]] -= v
    carry = np.zeros(width + 1, dtype=out.dtype)
    for r in range(height):
        running = out.dtype.type(0)
        for c in range(width):
            carry[c] += out[r, c]
            running += carry[c]
            out[r, c] = running


def _paint(g: _Rings, shape: tuple[int, int], weight: np.ndarray | None,
           dtype: type) -> np.ndarray:
    """Sum over polygons of ``weight[polygon]`` × winding number, per cell.

    Shells wind +1 and holes −1 around the cells inside them (``weight`` None: 1).
    """
    height, width = shape
    c, r, ring, start = g.col, g.row, g.ring, g.start
    # a ring with a positive signed area winds -1 around its inside with the edge
    # sign of _wind; shells are made +1, holes -1
    inside = np.where(g.shell, -1, 1) * np.sign(g.area2).astype(np.int64)
    if weight is not None:
        inside = inside * weight[g.polygon]
    out = np.zeros((height + 1, width + 1), dtype=dtype)
    _wind(c, r, ring, start, inside.astype(dtype), out)
    return out[:height, :width]


def cell_counts(geoms: np.ndarray, grid: Grid) -> np.ndarray | None:
    """Number of polygons covering each cell, or None if one is off the cell edges.

    Parameters
    ----------
    geoms : numpy.ndarray of Polygon or MultiPolygon
        Valid polygons in ``grid``'s CRS.
    grid : Grid
        A north-up grid.

    Returns
    -------
    numpy.ndarray of int16, shape ``grid.shape``, or None
        None when a vertex is not on a cell corner or an edge is not along a
        row or column line (smoothed or reprojected polygons), or a polygon
        reaches beyond the grid.

    Examples
    --------
    >>> g = Grid.square(10, (3, 3))
    >>> ring = shapely.box(0, 0, 30, 30).difference(shapely.box(10, 10, 20, 20))
    >>> cell_counts(np.array([ring, shapely.box(0, 20, 20, 30)]), g).tolist()
    [[2, 2, 1], [1, 0, 1], [1, 1, 1]]
    >>> cell_counts(np.array([shapely.box(0, 0, 15, 10)]), g) is None
    True
    """
    parts = shapely.get_parts(np.asarray(geoms, dtype=object))
    g = _rings(parts, grid)
    return None if g is None else _paint(g, grid.shape, None, np.int16)


def valid_on_cells(parts: np.ndarray, grid: Grid,
                   ring_simple: Callable[[np.ndarray], np.ndarray]) -> np.ndarray | None:
    """Validity of polygons on the cell edges, checked ring by ring and on the cells.

    A polygon is valid (OGC) when its rings are simple, its holes lie inside its
    shell, apart from each other, not nested, the rings meet at most at single
    points, and its interior is connected. For a polygon on the cell edges:

    - each ring alone is checked by ``ring_simple`` (GEOS: cheap, unlike GEOS's
      validity test of a polygon with 10⁵ holes, which dominated the gate);
    - the winding sum :math:`w` (shell +1, holes −1) of a polygon is 0 or 1 on
      every cell iff its holes lie inside the shell, apart and not nested. The
      polygons are painted together, each weighted by its number: where exactly
      one covers a cell the paint names it; a polygon is right when the cells
      painted with its number are as many as its area in cells (a region where
      :math:`w < 0`, even under another polygon, leaves more cells with
      :math:`w = 1` than its area);
    - rings meet only at points iff every unit edge of the rings separates the
      polygon's cells from others: its rings' length equals the edges around its
      painted cells;
    - the interior is connected iff its cells are one 4-connected patch.

    Parameters
    ----------
    parts : numpy.ndarray of Polygon
        The polygons (single parts) in ``grid``'s CRS.
    grid : Grid
        A north-up grid.
    ring_simple : callable
        Simplicity of an array of LinearRings (e.g. ``shapely.is_simple``).

    Returns
    -------
    numpy.ndarray of bool or None
        Per polygon. None when a polygon is off the cell edges, or when polygons
        overlap or touch along an edge (their cells cannot then be told apart;
        the caller checks those with GEOS and reports the overlap).

    Examples
    --------
    >>> g = Grid.square(1, (4, 4))
    >>> frame = shapely.box(0, 0, 4, 4).difference(shapely.box(1, 1, 3, 3))
    >>> hole_on_shell = shapely.Polygon(frame.exterior, [[(0, 1), (1, 1), (1, 2), (0, 2)]])
    >>> valid_on_cells(np.array([frame, hole_on_shell]), g, shapely.is_simple) is None
    True
    >>> valid_on_cells(np.array([frame]), g, shapely.is_simple).tolist()
    [True]
    >>> valid_on_cells(np.array([hole_on_shell]), g, shapely.is_simple).tolist()
    [False]
    """
    parts = np.asarray(parts, dtype=object)
    g = _rings(parts, grid)
    if g is None:
        return None
    n = len(parts)
    ok = np.zeros(n, dtype=bool)
    if n == 0:
        return ok
    ok[:] = True
    ok[g.polygon[~ring_simple(g.rings)]] = False  # each ring alone
    count = _paint(g, grid.shape, None, np.int16)
    if count.min() < 0 or count.max() > 1:
        return None
    del count
    paint = _paint(g, grid.shape, np.arange(1, n + 1, dtype=np.int64), np.int32)
    if paint.min() < 0 or paint.max() > n:
        return None
    cells = np.bincount(paint.reshape(-1), minlength=n + 1)[1:]
    # area (twice) and length of each polygon in cells, from its corners
    c, r, s = g.col, g.row, g.start
    ring_area2 = np.abs(g.area2)
    area2 = np.bincount(g.polygon, weights=np.where(g.shell, ring_area2, -ring_area2),
                        minlength=n)
    length = np.bincount(g.polygon[g.ring[s]],
                         weights=np.abs(c[s + 1] - c[s]) + np.abs(r[s + 1] - r[s]), minlength=n)
    ok &= np.rint(area2).astype(np.int64) == 2 * cells
    around, touching = _edges_around(paint, n)
    if touching:
        return None
    ok &= length.astype(np.int64) == around
    ok &= _patches(paint, n) == 1
    return ok


def _edges_around(paint: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
    """Per polygon number 1..n, the cell edges between its cells and any others.

    Also whether two polygons share an edge (their cells are then adjacent).
    """
    out = np.zeros(n + 1, dtype=np.int64)
    touching = False
    for a, b in ((paint[:, :-1], paint[:, 1:]), (paint[:-1, :], paint[1:, :])):
        differ = a != b
        a, b = a[differ], b[differ]
        touching = touching or bool(np.any((a > 0) & (b > 0)))
        out += np.bincount(a, minlength=n + 1)
        out += np.bincount(b, minlength=n + 1)
    for border in (paint[0], paint[-1], paint[:, 0], paint[:, -1]):
        out += np.bincount(border, minlength=n + 1)
    return out[1:], touching


def _patches(paint: np.ndarray, n: int) -> np.ndarray:
    """Number of 4-connected patches of each polygon's cells (no two polygons adjacent)."""
    labels, count = ndimage.label(paint > 0)
    owner = np.zeros(count + 1, dtype=np.int64)
    owner[labels.reshape(-1)] = paint.reshape(-1)  # one polygon per patch: any cell names it
    return np.bincount(owner[1:], minlength=n + 1)[1:]
