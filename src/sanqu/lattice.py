"""Polygons on a grid's cell edges: recognise them and count the cells they cover.

Polygons traced from a raster (and not smoothed or reprojected since) have every
vertex on a cell corner and every edge along a row or column line. Such a
polygon is exactly a set of whole cells, so relations between layers (overlap,
gap, containment) can be checked cell by cell, in time proportional to the
vertices plus the cells, instead of by overlaying polygons (which grows faster
than the area: the topology gate's unions and containment tests took most of a
run at 4 M cells).

:func:`cell_counts` finds, for every cell, how many polygons cover it. Each
vertical edge of a ring adds ±1 to the cells to its east on the rows it spans
(the winding number of the ring around each cell centre); written as a 2-D
difference, an edge touches only two entries, and two cumulative sums give the
counts. Shells count +1 inside and holes −1, whatever their orientation, so a
valid polygon counts 1 on its cells and 0 elsewhere, and overlapping polygons add
up.
"""

from __future__ import annotations

import numpy as np
import shapely

from .grid import Grid

#: How far (in cells) a vertex may lie from a cell corner and still be on it.
CORNER_TOLERANCE = 1e-6


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
    >>> from affine import Affine
    >>> from pyproj import CRS
    >>> g = Grid(CRS.from_epsg(4527), Affine(10, 0, 0, 0, -10, 30), (3, 3))
    >>> ring = shapely.box(0, 0, 30, 30).difference(shapely.box(10, 10, 20, 20))
    >>> cell_counts(np.array([ring, shapely.box(0, 20, 20, 30)]), g).tolist()
    [[2, 2, 1], [1, 0, 1], [1, 1, 1]]
    >>> cell_counts(np.array([shapely.box(0, 0, 15, 10)]), g) is None
    True
    """
    t = grid.transform
    if t.b != 0 or t.d != 0:
        return None
    height, width = grid.shape
    diff = np.zeros((height + 1, width + 1), dtype=np.int16)
    parts = shapely.get_parts(np.asarray(geoms, dtype=object))
    if len(parts) == 0:
        return diff[:height, :width]
    rings, polygon = shapely.get_rings(parts, return_index=True)
    shell = np.r_[True, polygon[1:] != polygon[:-1]]  # each polygon's rings: shell first
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    col, row = (xy[:, 0] - t.c) / t.a, (xy[:, 1] - t.f) / t.e
    del xy
    c, r = np.rint(col), np.rint(row)
    if len(c) and max(np.abs(col - c).max(), np.abs(row - r).max()) > CORNER_TOLERANCE:
        return None
    del col, row
    c, r = c.astype(np.int64), r.astype(np.int64)
    if len(c) and (c.min() < 0 or r.min() < 0 or c.max() > width or r.max() > height):
        return None
    start = np.flatnonzero(ring[:-1] == ring[1:])  # each vertex to the next of its ring
    dc, dr = c[start + 1] - c[start], r[start + 1] - r[start]
    if np.any((dc != 0) & (dr != 0)):
        return None
    # twice the signed area of each ring, in (column, row) units
    area2 = np.bincount(ring[start], weights=c[start] * r[start + 1] - c[start + 1] * r[start],
                        minlength=len(rings))
    # a ring with positive area2 counts -1 inside with the edge sign below: make
    # shells count +1 and holes -1
    inside = np.where(shell, -1, 1) * np.sign(area2).astype(np.int64)
    vertical = start[dr != 0]
    sign = np.sign(r[vertical + 1] - r[vertical]) * inside[ring[vertical]]
    top = np.minimum(r[vertical], r[vertical + 1])
    bottom = np.maximum(r[vertical], r[vertical + 1])
    cols = c[vertical]
    flat = diff.reshape(-1)
    np.add.at(flat, top * (width + 1) + cols, sign.astype(np.int16))
    np.add.at(flat, bottom * (width + 1) + cols, (-sign).astype(np.int16))
    np.cumsum(diff, axis=0, out=diff)
    np.cumsum(diff, axis=1, out=diff)
    return diff[:height, :width]
