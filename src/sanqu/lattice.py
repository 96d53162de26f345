"""Polygons on a grid's cell edges: recognise them, count the cells they cover, check them.

Polygons traced from a raster (and not smoothed or reprojected since) have every
vertex on a cell corner and every edge along a row or column line. Such a
polygon is exactly a set of whole cells, so relations between layers (overlap,
gap, containment) and a polygon's validity can be checked cell by cell, in time
proportional to the vertices plus the cells, instead of by overlaying polygons
and by GEOS's validity test (both grow faster than the area: the topology gate's
unions, containment tests and validity tests took most of a run at 4 M cells).

:func:`cover` finds, for every cell, how many of a layer's polygons cover it,
and checks each polygon's validity on the cells. Each vertical edge of a ring
adds ±1 to the cells to its east on the rows it spans (the winding number of the
ring around each cell centre); written as a 2-D difference, an edge touches only
two entries, and two cumulative sums give the counts. Shells count +1 inside and
holes −1, whatever their orientation, so a valid polygon counts 1 on its cells
and 0 elsewhere, and overlapping polygons add up. Validity uses the same sums,
weighted by polygon (see :func:`cover`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numba import njit

from .batches import batch_bounds
from .grid import Grid
from .trace import _grow, _label_row, _root

#: How far (in cells) a vertex may lie from a cell corner and still be on it.
CORNER_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Rings:
    """Polygon features as rings on a grid's corner lattice, no GEOS objects.

    Ring ``k`` is the corners ``offsets[k]`` to ``offsets[k + 1] - 1`` of ``col``
    and ``row``, closed (its last corner is its first). The rings of a feature
    follow each other, features in order; a feature's parts each start with
    their shell. Made from GEOS polygons (:func:`rings_of`) or straight from the
    tracer (:func:`sanqu.vectorize.traced`), whose rings then go to the gate
    (:func:`cover`) and to the files (:meth:`wkb`) without becoming GEOS objects:
    two or four bytes a corner instead of GEOS's 16 and more.

    Attributes
    ----------
    col, row : numpy.ndarray of uint16 or int32
        Corner column and row (lattice of cell corners).
    offsets : numpy.ndarray of int64
        First corner of each ring, and the end.
    polygon : numpy.ndarray of int64
        Feature of each ring (ascending).
    shell : numpy.ndarray of bool
        Whether each ring is a shell (the first ring of a part).
    area2 : numpy.ndarray of int64
        Twice the signed area of each ring, in (column, row) units.
    length : numpy.ndarray of int64
        Length of each ring in cell edges.
    features : int
        Number of features (each has a ring).
    grid : Grid
        The grid the corners are on.
    """

    col: np.ndarray
    row: np.ndarray
    offsets: np.ndarray
    polygon: np.ndarray
    shell: np.ndarray
    area2: np.ndarray
    length: np.ndarray
    features: int
    grid: Grid

    @classmethod
    def of(cls, col: np.ndarray, row: np.ndarray, offsets: np.ndarray, polygon: np.ndarray,
           shell: np.ndarray, features: int, grid: Grid) -> Rings:
        """Rings from their corners, measuring each ring's area and length."""
        area2, length = _measure(col, row, offsets)
        return cls(col, row, offsets, polygon, shell, area2, length, features, grid)

    @classmethod
    def concat(cls, parts: list[Rings], grid: Grid) -> Rings:
        """The features of ``parts``, one after another (the one part itself when alone)."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            none = np.zeros(0, np.int64)
            return cls(none.astype(np.int32), none.astype(np.int32), np.zeros(1, np.int64),
                       none, none.astype(bool), none, none, 0, grid)
        starts = np.cumsum([0] + [len(p.col) for p in parts])
        firsts = np.cumsum([0] + [p.features for p in parts])
        return cls(
            col=np.concatenate([p.col for p in parts]),
            row=np.concatenate([p.row for p in parts]),
            offsets=np.concatenate([*(p.offsets[:-1] + s for p, s in zip(parts, starts[:-1],
                                                                          strict=True)),
                                    starts[-1:]]).astype(np.int64),
            polygon=np.concatenate([p.polygon + f for p, f in zip(parts, firsts[:-1],
                                                                  strict=True)]),
            shell=np.concatenate([p.shell for p in parts]),
            area2=np.concatenate([p.area2 for p in parts]),
            length=np.concatenate([p.length for p in parts]),
            features=int(firsts[-1]), grid=grid)

    def __len__(self) -> int:
        return self.features

    def parts(self) -> np.ndarray:
        """Number of parts (Polygons) of each feature."""
        return np.bincount(self.polygon[self.shell], minlength=self.features)

    def twice_cells(self) -> np.ndarray:
        """Twice the area of each feature in cells (shells less holes, whatever their turn)."""
        ring = np.abs(self.area2)
        twice = np.bincount(self.polygon, weights=np.where(self.shell, ring, -ring),
                            minlength=self.features)
        return np.rint(twice).astype(np.int64)

    def cells(self) -> np.ndarray:
        """Area of each feature in cells."""
        return self.twice_cells() // 2

    def areas(self) -> np.ndarray:
        """Area of each feature in square CRS units."""
        return self.cells() * self.grid.cell_area

    def vertices(self) -> np.ndarray:
        """Number of vertices of each feature."""
        return np.bincount(self.polygon, weights=np.diff(self.offsets),
                           minlength=self.features).astype(np.int64)

    def first_rings(self) -> np.ndarray:
        """The first ring of each feature, and the number of rings."""
        return np.searchsorted(self.polygon, np.arange(self.features + 1))

    def take(self, features: np.ndarray) -> Rings:
        """The features ``features`` (indices), in that order.

        Examples
        --------
        >>> g = Grid.square(10, (1, 3))
        >>> r = rings_of(np.array([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)]), g)
        >>> r.take(np.array([1, 0])).geometries()[0].bounds
        (20.0, 0.0, 30.0, 10.0)
        """
        features = np.asarray(features, dtype=np.int64)
        first = self.first_rings()
        count = (first[1:] - first[:-1])[features]  # rings of each picked feature
        ring = np.repeat(first[features] - np.cumsum(count) + count, count) + np.arange(count.sum())
        col, row, offsets = gather_rings(self.col, self.row, self.offsets[ring],
                                         self.offsets[ring + 1])
        return Rings(col, row, offsets, np.repeat(np.arange(len(features)), count),
                     self.shell[ring], self.area2[ring], self.length[ring], len(features),
                     self.grid)

    def between(self, a: int, b: int) -> Rings:
        """Features ``a`` to ``b - 1``, their corners views of these (not copied).

        Examples
        --------
        >>> g = Grid.square(10, (1, 3))
        >>> r = rings_of(np.array([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)]), g)
        >>> part = r.between(1, 2)
        >>> part.geometries()[0].bounds, np.shares_memory(part.col, r.col)
        ((20.0, 0.0, 30.0, 10.0), True)
        """
        ra, rb = self._ring_range(a, b)
        c0, c1 = int(self.offsets[ra]), int(self.offsets[rb])
        return Rings(self.col[c0:c1], self.row[c0:c1], self.offsets[ra:rb + 1] - c0,
                     self.polygon[ra:rb] - a, self.shell[ra:rb], self.area2[ra:rb],
                     self.length[ra:rb], b - a, self.grid)

    def corner_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The first row and first column each feature reaches (its north and west edges)."""
        if not self.features:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        starts = self.offsets[self.first_rings()[:-1]]
        return np.minimum.reduceat(self.row, starts), np.minimum.reduceat(self.col, starts)

    def _ring_range(self, a: int, b: int) -> tuple[int, int]:
        """The rings of features ``a`` to ``b - 1``."""
        return (int(np.searchsorted(self.polygon, a)), int(np.searchsorted(self.polygon, b)))

    def wkb(self, a: int = 0, b: int | None = None, *, views: bool = False) -> np.ndarray:
        """Features ``a`` to ``b - 1`` as MultiPolygon WKB (little-endian, 2D), as GEOS writes it.

        Each is ``bytes``, or a ``bytearray`` when alone (a large feature is not
        copied; OGR reads both). With ``views`` several features are memoryviews
        of one buffer instead of copies of it, for readers that take any
        bytes-like object (the native GeoPackage and shapefile writers, not OGR):
        a chunk of evaluation levels is hundreds of megabytes.

        Examples
        --------
        >>> g = Grid.square(10, (2, 2))
        >>> r = rings_of(np.array([shapely.MultiPolygon([shapely.box(0, 0, 10, 10)])]), g)
        >>> shapely.from_wkb(bytes(r.wkb()[0])).wkt
        'MULTIPOLYGON (((10 0, 10 10, 0 10, 0 0, 10 0)))'
        """
        b = self.features if b is None else b
        r0, r1 = self._ring_range(a, b)
        offsets = self.offsets[r0:r1 + 1]
        polygon = self.polygon[r0:r1]
        shell = self.shell[r0:r1]
        rings = np.bincount(polygon - a, minlength=b - a)
        parts = np.bincount(polygon[shell] - a, minlength=b - a)
        points = np.bincount(polygon - a, weights=np.diff(offsets), minlength=b - a)
        size = 9 + 9 * parts + 4 * rings + 16 * points.astype(np.int64)
        ends = np.cumsum(size)
        total = int(ends[-1]) if len(ends) else 0
        # one (maybe large) feature is written in place, not copied; many are sliced
        buffer = bytearray(total) if b - a == 1 else np.empty(total, dtype=np.uint8)
        t = self.grid.transform
        _write_wkb(self.col, self.row, offsets, polygon - a, shell, parts,
                   np.array(t[:6], dtype=np.float64), np.frombuffer(buffer, dtype=np.uint8))
        out = np.empty(b - a, dtype=object)
        if b - a == 1:
            out[0] = buffer
        elif views:
            whole = memoryview(buffer)
            out[:] = [whole[s:e] for s, e in zip((ends - size).tolist(), ends.tolist(),
                                                 strict=True)]
        else:
            out[:] = [buffer[s:e].tobytes() for s, e in zip((ends - size).tolist(),
                                                            ends.tolist(), strict=True)]
        return out

    def geometries(self) -> np.ndarray:
        """The features as shapely MultiPolygons (GEOS objects: for the API and for repairs)."""
        # shapely reads no bytearray (a lone feature's WKB); bytes(b) of bytes is b itself
        return shapely.from_wkb(np.array([bytes(w) for w in self.wkb()], dtype=object))


def gather_rings(col: np.ndarray, row: np.ndarray, start: np.ndarray, end: np.ndarray,
                 dtype: type | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The corners ``start[k]:end[k]`` of each ring ``k``, one ring after another.

    Returns the corners (as ``dtype``, default ``col``'s) and the new ring offsets.
    """
    offsets = np.r_[0, np.cumsum(end - start)].astype(np.int64)
    out_col = np.empty(int(offsets[-1]), dtype=dtype or col.dtype)
    out_row = np.empty_like(out_col)
    _place(col, row, start, end, offsets[:-1], out_col, out_row)
    return out_col, out_row, offsets


def gather_parts(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], order: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rings of several corner buffers in ``order``, copied once (no joined copy first).

    Each part is ``(col, row, ring_end)``, the end of each of its rings in its own
    buffers; ``order`` lists the rings of all parts, numbered one part after
    another. Returns the corners and the new ring offsets, as :func:`gather_rings`.
    """
    ends = [np.asarray(e, dtype=np.int64) for _, _, e in parts]
    starts = [np.r_[0, e[:-1]][:len(e)].astype(np.int64) for e in ends]
    length = np.concatenate([e - s for e, s in zip(ends, starts, strict=True)])
    offsets = np.r_[0, np.cumsum(length[order])].astype(np.int64)
    dest = np.empty(len(order), dtype=np.int64)
    dest[order] = offsets[:-1]
    out_col = np.empty(int(offsets[-1]), dtype=parts[0][0].dtype)
    out_row = np.empty_like(out_col)
    first = 0
    for (col, row, _), start, end in zip(parts, starts, ends, strict=True):
        _place(col, row, start, end, dest[first:first + len(end)], out_col, out_row)
        first += len(end)
    return out_col, out_row, offsets


@njit(cache=True, nogil=True)
def _place(col: np.ndarray, row: np.ndarray, start: np.ndarray, end: np.ndarray,
           dest: np.ndarray, out_col: np.ndarray, out_row: np.ndarray) -> None:
    """Copy the corners ``start[k]:end[k]`` of each ring ``k`` to ``dest[k]`` onwards."""
    for i in range(start.size):
        d = dest[i]
        for j in range(start[i], end[i]):
            out_col[d] = col[j]
            out_row[d] = row[j]
            d += 1


def concat_features(parts: list[np.ndarray | Rings]) -> np.ndarray | Rings:
    """Features given in parts (a result's levels, a layer's sub-zones), one part after another.

    Rings when every part is rings, else GEOS polygons (rings made into them).
    """
    if parts and all(isinstance(p, Rings) for p in parts):
        return Rings.concat(parts, parts[0].grid)
    return np.concatenate([np.zeros(0, dtype=object),
                           *(p.geometries() if isinstance(p, Rings) else np.asarray(p, dtype=object)
                             for p in parts if len(p))])


def feature_areas(geoms: np.ndarray | Rings) -> np.ndarray:
    """Area of each feature in square CRS units: from the cells of rings, else by GEOS."""
    if isinstance(geoms, Rings):
        return geoms.areas()
    return shapely.area(np.asarray(geoms, dtype=object)) if len(geoms) else np.zeros(0)


@njit(cache=True, nogil=True)
def _put_u32(out: np.ndarray, k: int, v: int) -> int:
    for j in range(4):
        out[k + j] = (v >> (8 * j)) & 0xFF
    return k + 4


@njit(cache=True, nogil=True)
def _write_wkb(col: np.ndarray, row: np.ndarray, offsets: np.ndarray, feature: np.ndarray,
               shell: np.ndarray, parts: np.ndarray, t: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` with one MultiPolygon WKB per feature, rings in order.

    ``feature`` (from 0) is each ring's feature, ``parts`` each feature's parts;
    coordinates are ``t`` (affine a, b, c, d, e, f) applied to the corners.
    """
    k = 0
    n = feature.size
    for i in range(n):
        if i == 0 or feature[i] != feature[i - 1]:
            out[k] = 1
            k = _put_u32(out, k + 1, 6)
            k = _put_u32(out, k, parts[feature[i]])
        if shell[i]:
            m = 1
            while i + m < n and not shell[i + m] and feature[i + m] == feature[i]:
                m += 1
            out[k] = 1
            k = _put_u32(out, k + 1, 3)
            k = _put_u32(out, k, m)
        m = offsets[i + 1] - offsets[i]
        k = _put_u32(out, k, m)
        xy = out[k:k + 16 * m].view(np.float64)  # unaligned: x86 and arm64 read it
        for j in range(m):
            c, r = np.float64(col[offsets[i] + j]), np.float64(row[offsets[i] + j])
            xy[2 * j] = t[2] + c * t[0] + r * t[1]
            xy[2 * j + 1] = t[5] + c * t[3] + r * t[4]
        k += 16 * m


@njit(cache=True, nogil=True)
def _corners(xy: np.ndarray, key: np.ndarray, split: bool, x0: float, y0: float, dx: float,
             dy: float, height: int, width: int, col: np.ndarray, row: np.ndarray
             ) -> tuple[np.ndarray, int]:
    """Column and row of every vertex (into ``col``, ``row``), and where each ring starts.

    A ring ends where ``key`` changes and, with ``split``, where it comes back to
    its first corner (the coordinates of a polygon's rings follow each other).
    The status is 0, or 1 when a vertex is off the corners or the grid, 2 when an
    edge is oblique (with ``split``, maybe a ring cut short: see :func:`_read`).
    """
    n = xy.shape[0]
    offsets = np.empty(n + 1, dtype=np.int64)
    rings = 0
    first = 0
    for i in range(n):
        fc = (xy[i, 0] - x0) / dx
        fr = (xy[i, 1] - y0) / dy
        c = np.rint(fc)
        r = np.rint(fr)
        if abs(fc - c) > CORNER_TOLERANCE or abs(fr - r) > CORNER_TOLERANCE:
            return offsets[:1], 1
        if c < 0 or r < 0 or c > width or r > height:
            return offsets[:1], 1
        col[i] = int(c)
        row[i] = int(r)
        if i == 0 or key[i] != key[i - 1] or (split and i - 1 > first and col[i - 1] == col[first]
                                              and row[i - 1] == row[first]):
            offsets[rings] = i
            rings += 1
            first = i
        elif col[i] != col[i - 1] and row[i] != row[i - 1]:
            return offsets[:1], 2
    offsets[rings] = n
    return offsets[:rings + 1], 0


@njit(cache=True, nogil=True)
def _measure(col: np.ndarray, row: np.ndarray, offsets: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Twice the signed area and the length of each ring."""
    n = offsets.size - 1
    area2 = np.zeros(n, dtype=np.int64)
    length = np.zeros(n, dtype=np.int64)
    for k in range(n):
        for i in range(offsets[k], offsets[k + 1] - 1):
            c0, r0, c1, r1 = np.int64(col[i]), np.int64(row[i]), col[i + 1], row[i + 1]
            area2[k] += c0 * r1 - c1 * r0
            length[k] += abs(c1 - c0) + abs(r1 - r0)
    return area2, length


#: Vertices read from GEOS at a time (bounds the copies of parts and coordinates).
BATCH_VERTICES = 4_000_000


def _read(parts: np.ndarray, grid: Grid, col: np.ndarray, row: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray] | None:
    """Corners of Polygons into ``col``, ``row``; ring offsets and each ring's polygon.

    The coordinates of all polygons are read at once and cut into rings where a
    ring closes; a ring touching itself at its first corner would be cut there
    too, which the ring count per polygon (or an oblique edge) shows: the
    polygons are then read ring by ring. None when off the corners.
    """
    t = grid.transform
    height, width = grid.shape
    xy, polygon = shapely.get_coordinates(parts, return_index=True)
    offsets, status = _corners(xy, polygon, True, t.c, t.f, t.a, t.e, height, width, col, row)
    if status == 1:
        return None
    ring_polygon = polygon[offsets[:-1]]
    expected = shapely.get_num_interior_rings(parts) + 1
    if status == 2 or not np.array_equal(np.bincount(ring_polygon, minlength=len(parts)),
                                         expected):
        rings, ring_polygon = shapely.get_rings(parts, return_index=True)
        xy, ring = shapely.get_coordinates(rings, return_index=True)
        del rings
        offsets, status = _corners(xy, ring, False, t.c, t.f, t.a, t.e, height, width, col, row)
        if status:
            return None
    return offsets, ring_polygon


def rings_of(geoms: np.ndarray | Rings, grid: Grid) -> Rings | None:
    """Rings of polygons (Polygon or MultiPolygon features) on ``grid``'s corner lattice.

    The features are read :data:`BATCH_VERTICES` at a time (a MultiPolygon's
    parts are copies: only a batch's exist at once). Each ring's ``polygon`` is
    its feature. None when a vertex is off the corners. Rings are returned as they are.
    """
    if isinstance(geoms, Rings):
        return geoms
    geoms = np.asarray(geoms, dtype=object)
    size = shapely.get_num_coordinates(geoms)
    # corners as 2-byte integers when the grid allows (16 bytes a vertex of GEOS read as 4)
    col = np.empty(int(size.sum()), dtype=np.uint16 if max(grid.shape) < 2**16 else np.int32)
    row = np.empty_like(col)
    bounds = batch_bounds(np.cumsum(size), BATCH_VERTICES)
    offsets, feature, shell = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, bool)]
    done = 0
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        batch = geoms[a:b]
        if (shapely.get_type_id(batch) == shapely.GeometryType.POLYGON).all():
            parts, owner = batch, np.arange(len(batch))
        else:
            parts, owner = shapely.get_parts(batch, return_index=True)
        got = _read(parts, grid, col[done:], row[done:])
        if got is None:
            return None
        ring_offsets, ring_part = got
        del parts
        offsets.append(ring_offsets[:-1] + done)
        feature.append(owner[ring_part] + a)
        shell.append(np.r_[True, ring_part[1:] != ring_part[:-1]] if len(ring_part) else
                     np.zeros(0, bool))
        done += int(ring_offsets[-1])
    offsets.append(np.array([done]))
    return Rings.of(col, row, np.concatenate(offsets), np.concatenate(feature),
                    np.concatenate(shell), len(geoms), grid)


@njit(cache=True, nogil=True)
def _wind(col: np.ndarray, row: np.ndarray, offsets: np.ndarray, inside: np.ndarray,
          out: np.ndarray, number: np.ndarray, numbered: np.ndarray) -> None:
    """Add each ring's winding times ``inside[ring]`` to ``out`` (and to ``numbered``).

    When ``numbered`` has rows, the winding times ``inside[ring] * number[ring]``
    goes there in the same pass. The outputs are zeroed and one row and column
    larger than the grid: vertical edges go in as 2-D differences, then both
    prefix sums are taken in one pass over the rows.
    """
    height, width = out.shape[0] - 1, out.shape[1] - 1
    both = numbered.shape[0] > 0
    for k in range(offsets.size - 1):
        for s in range(offsets[k], offsets[k + 1] - 1):
            if row[s + 1] == row[s]:
                continue
            top, bottom = min(row[s], row[s + 1]), max(row[s], row[s + 1])
            v = inside[k] if row[s + 1] > row[s] else -inside[k]
            out[top, col[s]] += v
            out[bottom, col[s]] -= v
            if both:
                w = v * number[k]
                numbered[top, col[s]] += w
                numbered[bottom, col[s]] -= w
    carry = np.zeros(width + 1, dtype=out.dtype)
    carry2 = np.zeros(width + 1, dtype=numbered.dtype)
    for r in range(height):
        running = out.dtype.type(0)
        running2 = numbered.dtype.type(0)
        for c in range(width):
            carry[c] += out[r, c]
            running += carry[c]
            out[r, c] = running
            if both:
                carry2[c] += numbered[r, c]
                running2 += carry2[c]
                numbered[r, c] = running2


def _paint(g: Rings, shape: tuple[int, int], numbered: bool = False
           ) -> tuple[np.ndarray, np.ndarray | None]:
    """Winding numbers per cell summed over polygons, and the same weighted by number.

    With ``numbered`` the second sum weights each polygon by its number (1..n).
    Shells wind +1 and holes −1 around the cells inside them. Returns the count
    (int16) and the numbered sum (or None): int16 under 2¹⁵ polygons (a coverage
    of a few features, e.g. an evaluation result's levels by unit: 200 MB less at
    10⁸ cells), else int32. Sums are taken modulo the type's range, so a cell
    covered once holds its polygon's number exactly; where the count is not 0
    or 1 the numbered sum is not read.
    """
    height, width = shape
    # a ring with a positive signed area winds -1 around its inside with the edge
    # sign of _wind; shells are made +1, holes -1
    inside = (np.where(g.shell, -1, 1) * np.sign(g.area2)).astype(np.int16)
    count = np.zeros((height + 1, width + 1), dtype=np.int16)
    if numbered:
        dtype = np.int16 if g.features < 2**15 else np.int32
        number = (g.polygon + 1).astype(dtype)
        paint = np.zeros((height + 1, width + 1), dtype=dtype)
    else:
        number, paint = np.zeros(0, np.int32), np.zeros((0, 0), np.int32)
    _wind(g.col, g.row, g.offsets, inside, count, number, paint)
    return count[:height, :width], paint[:height, :width] if numbered else None


def cell_counts(geoms: np.ndarray | Rings, grid: Grid) -> np.ndarray | None:
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
    g = rings_of(geoms, grid)
    return None if g is None else _paint(g, grid.shape)[0]


@dataclass(frozen=True)
class Cover:
    """What a layer's polygons cover on the cells (:func:`cover`).

    Attributes
    ----------
    count : numpy.ndarray of int16 or None
        Number of polygons covering each cell (more than 1: an overlap); None
        when ``paint`` is given (every cell is then covered at most once).
    valid : numpy.ndarray of bool or None
        Validity of each feature; None when some cells are covered twice or
        "negatively" (a hole outside its shell): polygons cannot then be told
        apart by their cells, and the caller asks GEOS.
    paint : numpy.ndarray of int16 or int32, or None
        The feature covering each cell (1..n in the order given, 0 for none; int16
        under 2¹⁵ features); None when ``valid`` is, or there is no polygon.
    """

    count: np.ndarray | None
    valid: np.ndarray | None
    paint: np.ndarray | None = None


def cover(geoms: np.ndarray | Rings, grid: Grid) -> Cover | None:
    """Cells covered by polygons on the cell edges, and each polygon's validity.

    A polygon is valid (OGC) when its rings are simple, its holes lie inside its
    shell, apart from each other, not nested, the rings meet at most at single
    points, and its interior is connected; a MultiPolygon when its parts are
    valid and meet at most at points. For a feature (Polygon or MultiPolygon)
    on the cell edges:

    - the winding sum :math:`w` (shells +1, holes −1) of a feature is 0 or 1 on
      every cell iff its holes lie inside their shells, apart and not nested, and
      its parts do not overlap. The features are painted together, each weighted
      by its number: where exactly one covers a cell the paint names it; a
      feature is right when the cells painted with its number are as many as its
      area in cells (a region where :math:`w < 0`, even under another feature,
      leaves more cells with :math:`w = 1` than its area);
    - rings never share an edge iff every unit edge of the rings separates the
      feature's cells from others: its rings' length equals the edges around its
      painted cells;
    - each part's interior is connected iff the feature's cells are as many
      4-connected patches as it has parts (parts sharing no edge, each has its
      own patches);
    - a ring is simple iff it never comes back to a corner it passed. With the
      checks above, a corner met twice has all four of its edges on the rings
      and the feature's cells on one diagonal around it (a *pinch*), and the
      rings turn there: so only corners that are pinches are looked up, and the
      feature is invalid if one ring meets the same pinch twice (two rings
      meeting there, a hole touching its shell or another hole, or two parts
      touching, are valid).

    Parameters
    ----------
    geoms : numpy.ndarray of Polygon or MultiPolygon, or Rings
        The features, not empty, in ``grid``'s CRS (or their rings on ``grid``).
    grid : Grid
        A north-up grid.

    Returns
    -------
    Cover or None
        None when a vertex is not on a cell corner or an edge is not along a row
        or column line (smoothed or reprojected polygons), or a polygon reaches
        beyond the grid.

    Examples
    --------
    >>> g = Grid.square(10, (3, 3))
    >>> frame = shapely.box(0, 0, 30, 30).difference(shapely.box(10, 10, 20, 20))
    >>> c = cover(np.array([frame, shapely.box(0, 20, 20, 30)]), g)
    >>> c.count.tolist(), c.valid, c.paint
    ([[2, 2, 1], [1, 0, 1], [1, 1, 1]], None, None)
    >>> c = cover(np.array([frame, shapely.box(10, 10, 20, 20)]), g)
    >>> c.valid.tolist(), c.paint.tolist()
    ([True, True], [[1, 1, 1], [1, 2, 1], [1, 1, 1]])
    >>> side_by_side = shapely.MultiPolygon([shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)])
    >>> cover(np.array([side_by_side]), g).valid.tolist()
    [False]
    >>> cover(np.array([shapely.box(0, 0, 15, 10)]), g) is None
    True
    """
    g = rings_of(geoms, grid)
    if g is None:
        return None
    n = g.features
    count, paint = _paint(g, grid.shape, numbered=n > 0)
    if n == 0 or count.min() < 0 or count.max() > 1:
        return Cover(count, None if n else np.zeros(0, dtype=bool))
    if paint.min() < 0 or paint.max() > n:
        return Cover(count, None)
    del count  # 0 or 1: the paint says which
    cells, around, pinched, corners = _tally(paint, n)
    length = np.bincount(g.polygon, weights=g.length, minlength=n)
    ok = g.twice_cells() == 2 * cells[1:]
    ok &= length.astype(np.int64) == around[1:]
    ok[g.polygon[_touching_itself(g.col, g.row, g.offsets, g.polygon, pinched, corners,
                                  grid.shape[1])]] = False
    ok &= _patches(paint, n)[1:] == g.parts()
    return Cover(None, ok, paint)


@njit(cache=True, nogil=True)
def _patches(paint: np.ndarray, n: int) -> np.ndarray:
    """Number of 4-connected patches of each value 1..n of ``paint`` (index 0: none).

    The first pass of :func:`sanqu.trace.label_regions` (its union-find over
    provisional labels), keeping two rows of labels rather than a raster of them.
    """
    height, width = paint.shape
    above = np.zeros(width, dtype=np.int32)
    here = np.zeros(width, dtype=np.int32)
    parent = np.empty(1024, dtype=np.int32)
    value = np.empty(1024, dtype=paint.dtype)
    m = 0
    for r in range(height):
        up = r - 1 if r > 0 else 0
        parent, value, m = _label_row(paint[r], paint[up], r > 0, here, above, parent, value, m)
        above, here = here, above
    out = np.zeros(n + 1, dtype=np.int64)
    for k in range(1, m + 1):
        if _root(parent, k) == k:
            out[value[k]] += 1
    return out


@njit(cache=True, nogil=True)
def _tally(paint: np.ndarray, n: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per value 0..n of ``paint``: its cells, the cell edges between them and others, pinches.

    Edges on the grid's border count as edges to others. A value is *pinched*
    where two of its cells meet only at a corner, the other two cells there
    having other values. Also the pinch corners, a bit each (corner
    ``row * (width + 1) + col``, bit ``k & 7`` of byte ``k >> 3``). A run of one
    value along a row is counted in locals, added to its totals where it ends.
    """
    height, width = paint.shape
    cells = np.zeros(n + 1, dtype=np.int64)
    around = np.zeros(n + 1, dtype=np.int64)
    pinched = np.zeros(n + 1, dtype=np.bool_)
    corners = np.zeros(((height + 1) * (width + 1) + 7) // 8, dtype=np.uint8)
    for r in range(height):
        here = paint[r]
        last = r + 1 == height
        under = paint[r + 1] if not last else here
        run = here[0]
        run_cells = 0
        run_edges = 1  # the west border edge of the row's first cell
        for c in range(width):
            p = here[c]
            if p != run:
                cells[run] += run_cells
                around[run] += run_edges
                run, run_cells, run_edges = p, 0, 0
            run_cells += 1
            run_edges += r == 0  # the north border
            if c + 1 < width:
                right = here[c + 1]
                if right != p:
                    run_edges += 1
                    around[right] += 1
            else:
                run_edges += 1  # the east border
            if last:
                run_edges += 1  # the south border
                continue
            below = under[c]
            if below != p:
                run_edges += 1
                around[below] += 1
            if c + 1 < width:  # the four cells with a corner at (r + 1, c + 1)
                right = here[c + 1]
                q = under[c + 1]
                pinch = False
                if q == p and right != p and below != p:
                    pinched[p] = pinch = True
                if right == below and right != p and q != right:
                    pinched[right] = pinch = True
                if pinch:
                    k = (r + 1) * (width + 1) + c + 1
                    corners[k >> 3] |= np.uint8(1 << (k & 7))
        cells[run] += run_cells
        around[run] += run_edges
    return cells, around, pinched, corners


@njit(cache=True, nogil=True)
def _touching_itself(col: np.ndarray, row: np.ndarray, offsets: np.ndarray,
                     polygon: np.ndarray, pinched: np.ndarray, corners: np.ndarray,
                     width: int) -> np.ndarray:
    """Rings that pass a pinch twice (see :func:`cover`).

    Only the rings of ``pinched`` polygons (by paint value) are walked, and only
    their vertices on a pinch corner (bits of ``corners``, :func:`_tally`, for a
    grid ``width`` cells wide) looked at: each is marked in a bitmap of the ring's
    pinches, which is cleared after the ring. A pinch of another polygon is met
    once at most: a ring passes a corner twice only where its own polygon has
    cells on one diagonal around it, and its boundary all four edges (the other
    checks of :func:`cover` hold, or the polygon is invalid anyway).
    """
    keys = np.empty(1024, dtype=np.int64)  # one ring's pinch corners
    seen = np.zeros_like(corners)
    bad = np.zeros(offsets.size - 1, dtype=np.bool_)
    for k in range(offsets.size - 1):
        if not pinched[polygon[k] + 1]:
            continue
        m = 0
        for i in range(offsets[k], offsets[k + 1] - 1):
            r, c = np.int64(row[i]), np.int64(col[i])
            key = r * (width + 1) + c
            bit = np.uint8(1 << (key & 7))
            if not corners[key >> 3] & bit:
                continue  # no pinch here (none on the grid's border)
            if c == col[i + 1] and r == row[i + 1]:
                continue  # a repeated vertex (the closing one too) is one pass
            if seen[key >> 3] & bit:
                bad[k] = True
                break
            seen[key >> 3] |= bit
            if m == keys.size:
                keys = _grow(keys)
            keys[m] = key
            m += 1
        for j in range(m):  # every bit set in these bytes is this ring's
            seen[keys[j] >> 3] = 0
    return bad


@njit(cache=True, nogil=True)
def or_bits(plane: np.ndarray, paint: np.ndarray, bits: np.ndarray) -> None:
    """``plane |= bits[paint]``, cell by cell (no temporary raster)."""
    height, width = plane.shape
    for r in range(height):
        for c in range(width):
            plane[r, c] |= bits[paint[r, c]]


#: Set bits of each byte value (for :func:`plane_flags`).
_BITS_SET = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)


@njit(cache=True, nogil=True)
def _flags(plane: np.ndarray, mask: np.ndarray, group: np.uint8, bits_set: np.ndarray
           ) -> tuple[bool, bool, bool]:
    height, width = plane.shape
    twice = none_inside = some_outside = False
    for r in range(height):
        for c in range(width):
            k = bits_set[plane[r, c] & group]
            if k > 1:
                twice = True
            if mask[r, c]:
                if k == 0:
                    none_inside = True
            elif k > 0:
                some_outside = True
    return twice, none_inside, some_outside


def plane_flags(plane: np.ndarray, mask: np.ndarray, group: int) -> tuple[bool, bool, bool]:
    """Of ``plane``'s ``group`` bits: two on a cell; none on a ``mask`` cell; one outside it.

    One pass and no temporary raster, for the gate's clean case
    (:class:`sanqu.topology._OnCells`): where one of them is true, the gate
    finds the cells again to describe them.

    Examples
    --------
    >>> plane = np.array([[1, 2], [3, 0]], dtype=np.uint8)
    >>> plane_flags(plane, np.array([[True, True], [True, False]]), 0b11)
    (True, False, False)
    >>> plane_flags(plane, np.ones((2, 2), bool), 0b01)
    (False, True, False)
    """
    return _flags(plane, mask, np.uint8(group), _BITS_SET)


@njit(cache=True, nogil=True)
def any_without(inner: np.ndarray, inner_bit: np.uint8, outer: np.ndarray,
                outer_bit: np.uint8) -> bool:
    """Whether a cell has ``inner_bit`` set in ``inner`` but not ``outer_bit`` in ``outer``."""
    height, width = inner.shape
    for r in range(height):
        for c in range(width):
            if inner[r, c] & inner_bit and not outer[r, c] & outer_bit:
                return True
    return False
